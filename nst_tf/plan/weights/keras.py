"""Keras' VGG19 ImageNet weights (the course's second edition), read into ``VGGWeights``.

Keras distributes them as legacy HDF5 weight files,
``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` (convolutions only,
about 80 MB) and ``vgg19_weights_tf_dim_ordering_tf_kernels.h5`` (with the
dense layers, about 549 MB). Their layout:

* the root's attribute ``layer_names`` lists the layers in order (split into
  ``layer_names0``, ``layer_names1``, ... when long; bytes or str);
* each layer's group has an attribute ``weight_names`` (kernel first, then
  bias; empty for input, pooling and flatten layers) naming datasets inside
  the group. The names are spelled differently by Keras 1
  (``block1_conv1_W_1:0``) and Keras 2 (``block1_conv1/kernel:0``, a
  dataset inside a subgroup), so they are looked up through the attribute,
  as Keras' own loader does, never by spelling.

Only the 16 convolution datasets are read; the dense layers of the full file
are neither read nor checked.

A file may be hostile. The reader follows no HDF5 links but hard ones (an
external link would open another file), refuses datasets whose numbers lie
outside the file (external storage, virtual datasets), and checks every
weight's type (16-, 32- or 64-bit floats) and shape against VGG19's widths,
its filters (deflate, shuffle, fletcher32) and chunks, and every name list's
type, count and lengths, before reading it. HDF5 inflates a compressed chunk
into as much memory as it takes, so each is inflated here first, no further
than its declared size. What the reader holds is thus bounded by the real
network's weights, whatever the file declares.

Keras' kernels expect Caffe's input: BGR channels minus the means
(103.939, 116.779, 123.68). nst_tf feeds RGB minus ``CONFIG.MEANS``
(123.68, 116.779, 103.939), the same numbers in the reverse channel order, so
reversing conv1_1's input-channel axis gives identical activations; no other
layer sees the channel order.
"""

import math
import os
import zlib

import numpy as np

from ...ground.errors import WeightsFileError, quoted
from ..config import KERAS_VGG_MODEL
from ..networks.vgg19 import CONV_WIDTHS, VGGWeights
from .matfile import MAT_HEADERS, open_regular_file, weights_path

#: Keras' layer names for the convolutions -> the course's names, in computation order.
KERAS_CONV_LAYERS = {
    f"block{block}_conv{k}": f"conv{block}_{k}"
    for block, convs in enumerate((2, 2, 4, 4, 4), start=1)
    for k in range(1, convs + 1)
}

#: The dense layers of the file with the top; they hold weights that are not read.
KERAS_TOP_LAYERS = ("fc1", "fc2", "predictions")

#: Caffe's mean pixel in RGB order: what ``keras.applications.vgg19.preprocess_input``
#: subtracts, listed there as B, G, R = 103.939, 116.779, 123.68.
CAFFE_MEAN_RGB = np.array([123.68, 116.779, 103.939])

# Re-exported names: the file's name and place are facts of the course (config.py).
KERAS_WEIGHTS_FILE = os.path.basename(KERAS_VGG_MODEL)

KERAS_DOWNLOAD_HINT = (
    f"download {KERAS_WEIGHTS_FILE} (about 80 MB, Keras' VGG19 ImageNet weights) into pretrained-model/ "
    "with: python -m nst_tf.download --weights keras (see pretrained-model/README.md)"
)


def _fail(path, problem):
    """Raises ``WeightsFileError``: ``path`` (shown safely) and ``problem``, one line."""
    raise WeightsFileError(f"{quoted(path)}: {problem}")


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

EXPECTED_KINDS = (
    "expected MatConvNet's imagenet-vgg-verydeep-19.mat (a MATLAB 5.0 MAT-file) "
    f"or Keras' {KERAS_WEIGHTS_FILE} (an HDF5 file)"
)


def file_kind(handle, path):
    """ "mat" or "h5" for the open file ``handle`` (of ``path``), from its first bytes; ``WeightsFileError`` else.

    A MATLAB file opens with a 128-byte text header beginning
    "MATLAB 5.0 MAT-file" (MatConvNet's files). A MATLAB v7.3 file
    ("MATLAB 7.3 MAT-file") is HDF5 inside, after a 512-byte header; it is
    called "mat" as well, so that the .mat reader, not the Keras reader,
    reports that it cannot read it. An HDF5 file carries the 8-byte
    signature ``\\x89HDF\\r\\n\\x1a\\n`` at offset 0, or after a user block
    at 512, 1024, 2048, ...
    """
    size = os.fstat(handle.fileno()).st_size
    handle.seek(0)
    if handle.read(len(MAT_HEADERS[0])) in MAT_HEADERS:
        return "mat"
    offset = 0
    while offset + len(HDF5_SIGNATURE) <= size:
        handle.seek(offset)
        if handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
            handle.seek(0)
            return "h5"
        offset = 512 if offset == 0 else 2 * offset
    what = "is empty" if size == 0 else "is neither a MATLAB 5.0 MAT-file nor an HDF5 file"
    _fail(path, f"{what}; {EXPECTED_KINDS}")


# Bounds on what a file may make the reader hold; Keras' VGG19 files are far inside all of them.

#: Most names one list attribute (``layer_names``, ``weight_names``) may hold, its chunks
#: together; Keras' VGG19 has 27 layers with the top, a layer at most a few weights.
MAX_NAMES = 1024

#: Longest layer or weight name accepted, in bytes.
MAX_NAME_BYTES = 1024

#: HDF5 reads a list of variable-length strings whole, each string up to the
#: file's size (the same stored string may be named by every element): their
#: count times the file's size may not exceed this. Keras writes fixed-length names.
MAX_VARIABLE_LENGTH_BYTES = 256 << 20

#: Most chunks one weight may be stored in.
MAX_CHUNKS = 1 << 16

#: How far a chunk may exceed its weight's bytes (a chunked weight that was resized smaller).
CHUNK_SLACK_BYTES = 1 << 20

# HDF5's filter codes. HDF5 inflates a deflate-compressed chunk into as much
# memory as it takes, so each such chunk is inflated here first, up to its size.
DEFLATE, SHUFFLE, FLETCHER32 = 1, 2, 3
FILTER_NAMES = {DEFLATE: "deflate", SHUFFLE: "shuffle", FLETCHER32: "fletcher32"}

#: Widths of the floating-point numbers accepted, in bytes (float16, float32, float64).
FLOAT_SIZES = (2, 4, 8)

_OUTSIDE = "this reader reads nothing outside the weights file"


class _Reader:
    """Reads Keras' weights from one open HDF5 file, within the bounds above.

    Every object is reached through hard links only, and every weight's
    storage, type, shape and chunks are checked before any of its numbers is
    read, so that a file can neither make the reader touch other files nor
    allocate more than the real network's weights need.
    """

    def __init__(self, h5py, path, size):
        """A reader of one file.

        Args:
            h5py: the h5py module.
            path: the file's name, for messages.
            size: the file's length in bytes.
        """
        self.h5py, self.path, self.size = h5py, path, size

    def fail(self, problem):
        """Stops reading.

        Args:
            problem: what is wrong, one line.

        Raises:
            WeightsFileError: naming the file and ``problem``.
        """
        _fail(self.path, problem)

    def names(self, node, name, where):
        """Keras' list attribute ``name`` of ``node`` as str, joining chunks ``name0``, ``name1``, ...

        Args:
            node: an h5py group.
            name: the attribute, "layer_names" or "weight_names".
            where: what ``node`` is, for messages ("the root", "layer 'block1_conv1'").

        Returns:
            The names, or None when the attribute is absent.

        Raises:
            WeightsFileError: the attribute is not a list of names, or more than this reader accepts.
        """
        attrs = node.attrs
        if name in attrs:
            keys = [name]
        else:
            keys = []
            while f"{name}{len(keys)}" in attrs:
                if len(keys) == MAX_NAMES:
                    self.fail(f"{where} splits attribute {name!r} into more than {MAX_NAMES} parts")
                keys.append(f"{name}{len(keys)}")
            if not keys:
                return None
        names = []
        for key in keys:
            names += self._attribute_names(attrs, key, where, MAX_NAMES - len(names))
        return names

    def _attribute_names(self, attrs, key, where, room):
        """The names in attribute ``key``, at most ``room`` of them; their type and count are checked before reading.

        Args:
            attrs: an h5py attribute manager.
            key: the attribute's name.
            where: the attributes' owner, for messages.
            room: how many more names the list may take.

        Returns:
            A list of str; empty for an empty attribute of any type (Keras
            writes an empty list as a float64 array of length 0).

        Raises:
            WeightsFileError: the attribute is not a list of strings, or holds
                too many or too long ones.
        """
        attribute = attrs.get_id(key)
        shape = attribute.shape  # None for an empty (null) dataspace
        count = 0 if shape is None else math.prod(shape)
        if count == 0:
            return []
        label = f"attribute {key!r} of {where}"
        if len(shape) > 1:
            self.fail(f"{label} has shape {shape}; expected a list of names")
        if count > room:
            self.fail(f"{label} brings the list to more than {MAX_NAMES} names; not Keras' weights")
        string = self.h5py.check_string_dtype(attribute.dtype)
        if string is None:
            self.fail(f"{label} holds {attribute.dtype} values; expected names (strings)")
        if string.length is None and count * self.size > MAX_VARIABLE_LENGTH_BYTES:
            self.fail(
                f"{label} holds {count} variable-length strings, each up to the file's {self.size} bytes, "
                f"more than the {MAX_VARIABLE_LENGTH_BYTES} bytes this reader accepts; Keras writes fixed-length names"
            )
        if string.length is not None and string.length > MAX_NAME_BYTES:
            self.fail(f"{label} holds names of {string.length} bytes; expected at most {MAX_NAME_BYTES}")
        names = [
            item.decode("utf8", errors="replace") if isinstance(item, bytes) else str(item)
            for item in np.atleast_1d(attrs[key])
        ]
        if any(len(item) > MAX_NAME_BYTES for item in names):
            self.fail(f"{label} holds a name longer than {MAX_NAME_BYTES} characters")
        return names

    def child(self, group, name, label):
        """The object at the relative path ``name`` in ``group``, reached through hard links only.

        Args:
            group: an h5py group.
            name: a path such as "block1_conv1" or "block1_conv1/kernel:0".
            label: what ``name`` is, for messages ("layer 'block1_conv1'").

        Returns:
            The h5py object, or None when the path does not lead to one.

        Raises:
            WeightsFileError: a part of the path is a soft, external or
                user-defined link; such links are never followed.
        """
        node = group
        parts = name.split("/")
        for index, part in enumerate(parts):
            if part in ("", ".") or not isinstance(node, self.h5py.Group):
                return None
            link = node.get(part, getlink=True)
            if link is None:
                return None
            if not isinstance(link, self.h5py.HardLink):
                kind = {self.h5py.ExternalLink: "external link (to another file)", self.h5py.SoftLink: "soft link"}
                what = f"an HDF5 {kind.get(type(link), 'user-defined link')}"
                where = f"is {what}" if index == len(parts) - 1 else f"goes through {what}, {part!r}"
                self.fail(f"{label} {where}; this reader follows no links")
            node = node[part]
        return node

    def dataset(self, group, layer, name):
        """The dataset that ``layer``'s ``weight_names`` calls ``name``, its storage and type checked; nothing is read.

        Args:
            group: the layer's h5py group.
            layer: the layer's Keras name.
            name: the weight's name, a path inside ``group``.

        Returns:
            The h5py dataset.

        Raises:
            WeightsFileError: no such dataset, data kept outside the file
                (external storage, a virtual dataset, an unknown layout), or
                numbers other than 16-, 32- or 64-bit floating point.
        """
        label = f"weight {name!r} of layer {layer!r}"
        dataset = self.child(group, name, label)
        if not isinstance(dataset, self.h5py.Dataset):
            self.fail(f"layer {layer!r} lists weight {name!r}, which is not a dataset in the file")
        # Before the shape: an unlimited virtual dataset opens its source files to find its shape.
        h5d = self.h5py.h5d
        plist = dataset.id.get_create_plist()
        if plist.get_external_count():
            other = os.fsdecode(plist.get_external(0)[0])[:200]
            self.fail(f"{label} keeps its numbers in another file, {quoted(other)} (HDF5 external storage); {_OUTSIDE}")
        layout = plist.get_layout()
        if layout == getattr(h5d, "VIRTUAL", 3):
            self.fail(f"{label} is an HDF5 virtual dataset, whose numbers lie in other files; {_OUTSIDE}")
        if layout not in (h5d.COMPACT, h5d.CONTIGUOUS, h5d.CHUNKED):
            self.fail(f"{label} has HDF5 storage layout {layout}; expected contiguous, chunked or compact")
        dtype = dataset.dtype
        if dtype.kind != "f" or dtype.itemsize not in FLOAT_SIZES:
            self.fail(f"{label} has type {dtype}; expected floating-point numbers (float16, float32 or float64)")
        return dataset

    def read(self, dataset, label):
        """The numbers of ``dataset``, whose shape the caller has checked, as float32, after its chunks are checked.

        Args:
            dataset: an h5py dataset returned by ``dataset``.
            label: the weight, for messages.

        Returns:
            A float32 numpy array.

        Raises:
            WeightsFileError: filters other than deflate, shuffle and
                fletcher32, or chunks that could make HDF5 allocate more than
                the weight's size (see ``_check_chunks``).
        """
        plist = dataset.id.get_create_plist()
        filters = [plist.get_filter(index)[::3] for index in range(plist.get_nfilters())]
        codes = [code for code, _ in filters]
        deflate_last = codes[codes.index(DEFLATE) + 1 :] in ([], [FLETCHER32]) if DEFLATE in codes else True
        if not set(codes) <= set(FILTER_NAMES) or len(set(codes)) < len(codes) or not deflate_last:
            shown = ", ".join(f"{code} ({bytes(name[:40]).decode('ascii', 'replace')!r})" for code, name in filters)
            self.fail(
                f"{label} is stored through HDF5 filters {shown}; this reader accepts deflate (gzip), "
                "shuffle and fletcher32, each at most once, with nothing but fletcher32 after deflate"
            )
        if plist.get_layout() == self.h5py.h5d.CHUNKED:
            self._check_chunks(dataset, plist.get_chunk(), codes, label)
        return np.asarray(dataset[()], dtype=np.float32)

    def _check_chunks(self, dataset, chunk, codes, label):
        """Checks a chunked weight's chunk shape, count and stored chunks, and inflates each compressed chunk.

        Args:
            dataset: an h5py dataset of checked shape.
            chunk: its chunk shape.
            codes: its filter codes, in the order they were applied when writing.
            label: the weight, for messages.

        Raises:
            WeightsFileError: chunks larger than the weight, too many of
                them, a stored chunk larger than a chunk, or a compressed
                chunk that is corrupt or inflates to more than a chunk.
        """
        shape, itemsize = dataset.shape, dataset.dtype.itemsize
        if len(chunk) != len(shape) or min(chunk, default=1) < 1:
            self.fail(f"{label} of shape {shape} is stored in chunks of shape {chunk}; the file is damaged")
        chunk_bytes, weight_bytes = math.prod(chunk) * itemsize, math.prod(shape) * itemsize
        if chunk_bytes > weight_bytes + CHUNK_SLACK_BYTES:
            self.fail(f"{label} of {weight_bytes} bytes is stored in chunks of shape {chunk}, {chunk_bytes} bytes each")
        grid = math.prod(-(-size // side) for size, side in zip(shape, chunk))
        if grid > MAX_CHUNKS:
            self.fail(f"{label} is stored in {grid} chunks of shape {chunk}; expected at most {MAX_CHUNKS}")
        stored = []
        if hasattr(dataset.id, "chunk_iter"):
            # Every stored chunk, also any outside the shape; the callback stops the walk past ``grid``.
            dataset.id.chunk_iter(lambda info: stored.append(info) or len(stored) > grid or None)
        elif dataset.id.get_num_chunks() <= grid:
            stored = [dataset.id.get_chunk_info(index) for index in range(dataset.id.get_num_chunks())]
        else:
            stored = [None] * (grid + 1)
        if len(stored) > grid:
            self.fail(f"{label} holds more stored chunks than its {grid} chunks of shape {chunk}; the file is damaged")
        deflate = codes.index(DEFLATE) if DEFLATE in codes else None
        for info in stored:
            if info.size > chunk_bytes + chunk_bytes // 64 + 1024:
                self.fail(f"{label} has a stored chunk of {info.size} bytes, for {chunk_bytes} bytes of numbers")
            if deflate is not None and not info.filter_mask & (1 << deflate):
                self._check_inflated(dataset.id.read_direct_chunk(info.chunk_offset)[1], chunk_bytes, label)

    def _check_inflated(self, packed, chunk_bytes, label):
        """Inflates the deflate-compressed chunk ``packed``, no further than its size, and forgets the result.

        Args:
            packed: the chunk as stored (a zlib stream, maybe followed by a fletcher32 checksum).
            chunk_bytes: the chunk's size in bytes once inflated.
            label: the weight, for messages.

        Raises:
            WeightsFileError: the stream is corrupt or inflates to more than
                ``chunk_bytes`` and a checksum.
        """
        limit = chunk_bytes + 4  # a fletcher32 checksum applied before compression
        try:
            inflated = len(zlib.decompressobj().decompress(packed, limit + 1))
        except zlib.error as error:
            self.fail(f"{label} has a compressed chunk that is corrupt ({error}); the file is damaged")
        if inflated > limit:
            self.fail(f"{label} has a compressed chunk that inflates to more than its {chunk_bytes} bytes")

    def weighted_layers(self, root):
        """The layers ``layer_names`` lists that hold weights, checked to be VGG19's.

        Args:
            root: the h5py group holding Keras' layout (the file, or a saved model's "model_weights").

        Returns:
            Layer name -> (its h5py group, its weight names), for layers with weights.

        Raises:
            WeightsFileError: no ``layer_names``, a listed layer without a
                group, a convolution without weights, or weights of a layer
                VGG19 does not have.
        """
        layer_names = self.names(root, "layer_names", "the root" if root.name == "/" else f"group {root.name!r}")
        if layer_names is None:
            self.fail(f"HDF5 file without a 'layer_names' attribute; not Keras' weights file ({KERAS_WEIGHTS_FILE})")
        weighted = {}
        for layer in layer_names:
            group = self.child(root, layer, f"layer {layer!r}")
            if not isinstance(group, self.h5py.Group):
                self.fail(f"lists layer {layer!r} but has no group of that name; the file is damaged")
            weight_names = self.names(group, "weight_names", f"layer {layer!r}")
            if weight_names:
                weighted[layer] = (group, weight_names)
        missing = [layer for layer in KERAS_CONV_LAYERS if layer not in weighted]
        if missing:
            self.fail(
                f"has no weights for layer {missing[0]!r} ({len(missing)} of Keras' 16 VGG19 convolutions missing); "
                f"not Keras' VGG19 weights ({KERAS_WEIGHTS_FILE})"
            )
        extra = sorted(set(weighted) - set(KERAS_CONV_LAYERS) - set(KERAS_TOP_LAYERS))
        if extra:
            self.fail(f"has weights for layer {extra[0]!r}, which Keras' VGG19 does not have; not VGG19 weights")
        return weighted

    def conv_layer(self, group, weight_names, layer, in_channels):
        """One convolution's (kernel, bias) as float32; shapes are checked against VGG19's widths before reading.

        Args:
            group: the layer's h5py group.
            weight_names: its ``weight_names``.
            layer: its Keras name (block1_conv1 ...).
            in_channels: the previous convolution's output channels (3 for the first).

        Returns:
            (kernel of shape (3, 3, in_channels, out), bias of shape (out,)),
            out at most VGG19's width for the layer.

        Raises:
            WeightsFileError: not two weights, a wrong shape, a refused
                dataset (see ``dataset`` and ``read``), or NaN or infinite values.
        """
        name = KERAS_CONV_LAYERS[layer]
        if len(weight_names) != 2:
            self.fail(f"layer {layer!r} holds {len(weight_names)} weights; expected kernel and bias")
        kernel = self.dataset(group, layer, weight_names[0])
        width = CONV_WIDTHS[name]
        shape = kernel.shape
        if shape is None or len(shape) != 4 or shape[:3] != (3, 3, in_channels) or not 1 <= shape[3] <= width:
            expected = f"expected (3, 3, {in_channels}, out), out from 1 to {width}"
            self.fail(f"{layer} ({name}) kernel has shape {shape}; {expected}")
        bias = self.dataset(group, layer, weight_names[1])
        if bias.shape != shape[3:]:
            self.fail(f"{layer} ({name}) bias has shape {bias.shape}; expected ({shape[3]},)")
        # Shapes are checked before reading, so a wrong file is never loaded whole.
        kernel = self.read(kernel, f"weight {weight_names[0]!r} of layer {layer!r}")
        bias = self.read(bias, f"weight {weight_names[1]!r} of layer {layer!r}")
        if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
            self.fail(f"{layer} ({name}) weights contain NaN or infinite values")
        return kernel, bias

    def read_conv(self, root):
        """Course name -> (kernel, bias) from an open Keras weights file; see the module docstring.

        Args:
            root: the h5py group holding Keras' layout.

        Returns:
            The 16 convolutions in computation order, conv1_1's input channels in RGB order.

        Raises:
            WeightsFileError: see ``weighted_layers`` and ``conv_layer``.
        """
        weighted = self.weighted_layers(root)
        conv = {}
        in_channels = 3
        for layer, name in KERAS_CONV_LAYERS.items():
            conv[name] = self.conv_layer(*weighted[layer], layer, in_channels)
            in_channels = conv[name][0].shape[3]
        # BGR input channels (Caffe's order) to RGB, the order nst_tf feeds.
        kernel, bias = conv["conv1_1"]
        conv["conv1_1"] = (np.ascontiguousarray(kernel[:, :, ::-1, :]), bias)
        return conv


def read_vgg19_h5(path):
    """Reads the convolution weights of Keras' VGG19 weight file into ``VGGWeights``.

    Accepts ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` and the
    full file with the dense layers (not read), written by Keras 1 or 2,
    or the weights inside a whole model saved by Keras in HDF5.

    Args:
        path: the .h5 file.

    Returns:
        ``VGGWeights`` with kernels of shape (3, 3, in, out) for RGB input
        (conv1_1's input channels reversed from Keras' BGR), float32;
        ``mean_pixel`` Caffe's means in RGB order; layout "keras"; source ``path``.

    Raises:
        WeightsFileError: (an ``NSTError``) one line naming the file and the
            problem: it is missing, not a regular file, not HDF5, damaged,
            another network, holds kernels of the wrong shape or non-finite
            values, or would make the reader follow links, read other files
            or allocate more than the weights need.
    """
    path = weights_path(path)
    # h5py comes with Keras; imported here so that the .mat route never needs it.
    import h5py

    # h5py reads the file opened here, so a pipe or a device is refused before any read.
    with open_regular_file(path, missing_hint=KERAS_DOWNLOAD_HINT) as file:
        if file_kind(file, path) == "mat":
            _fail(path, "is a MATLAB .mat file, not Keras' HDF5 weights; read it with read_vgg19_mat or load_vgg_model")
        return _read_h5(h5py, file, path)


def _read_h5(h5py, file, path):
    """``read_vgg19_h5`` on the open regular file ``file``.

    Args:
        h5py: the h5py module.
        file: the file, open for binary reading.
        path: its name, for messages.

    Returns:
        ``VGGWeights``; see ``read_vgg19_h5``.

    Raises:
        WeightsFileError: see ``read_vgg19_h5``; h5py's errors on a damaged
            file become one line too.
    """
    reader = _Reader(h5py, path, os.fstat(file.fileno()).st_size)
    try:
        with h5py.File(file, "r") as root:
            if "layer_names" not in root.attrs:
                # A whole model saved by Keras keeps its weights in this group, in the same layout.
                model = reader.child(root, "model_weights", "group 'model_weights'")
                root = model if isinstance(model, h5py.Group) else root
            conv = reader.read_conv(root)
    except (WeightsFileError, MemoryError):
        raise
    except (OSError, LookupError, RuntimeError, ValueError, TypeError, ArithmeticError) as error:  # h5py's errors
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        _fail(path, f"cannot be read as an HDF5 file ({detail}); it may be truncated or damaged")
    return VGGWeights(conv=conv, mean_pixel=CAFFE_MEAN_RGB.copy(), layout="keras", source=path)

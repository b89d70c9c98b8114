"""Keras' VGG19 ImageNet weights (the course's second edition), read into ``VGGWeights``.

Keras' legacy HDF5 files (``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``, about 80 MB, and the full
``..._kernels.h5``, 549 MB) keep each layer in a group named as the layer, its weights directly (Keras 1:
``block1_conv1_W_1:0``) or in a subgroup (Keras 2: ``block1_conv1/kernel:0``; Keras 3: ``block1_conv1/kernel``);
the 4-axis dataset is the kernel. A whole model saved in HDF5 has this layout in ``model_weights``. Only the 16
convolutions are read: not the dense layers, nor the ``layer_names`` attributes (HDF5 reads a string list whole).

A file may be hostile: only hard links are followed, numbers outside the file (external storage, virtual
datasets) are refused, and each weight's type, shape, filters and chunks are checked before it is read; each
compressed chunk is inflated here first, no further than its declared size (HDF5 would inflate it whole). What
the reader holds is thus bounded by the real network's weights.

Keras' kernels expect Caffe's input, BGR minus (103.939, 116.779, 123.68); nst_tf feeds RGB minus
``CONFIG.MEANS``, the same numbers reversed, so conv1_1's input-channel axis is reversed.
"""

import math
import os
import zlib

import numpy as np

from ...ground.errors import WeightsFileError, quoted
from ..config import KERAS_VGG_MODEL
from ..locations import missing_weights_hint
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

#: Caffe's mean pixel in RGB order (``keras.applications.vgg19.preprocess_input`` lists it as B, G, R).
CAFFE_MEAN_RGB = np.array([123.68, 116.779, 103.939])

KERAS_WEIGHTS_FILE = os.path.basename(KERAS_VGG_MODEL)


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

    A MATLAB file opens with a 128-byte header "MATLAB 5.0 MAT-file"; a v7.3 one ("MATLAB 7.3 MAT-file",
    HDF5 inside) is "mat" too, so that the .mat reader reports it cannot read it. An HDF5 file carries its
    signature at offset 0, or after a user block at 512, 1024, 2048, ...
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
#: Most chunks one weight may be stored in.
MAX_CHUNKS = 1 << 16
#: How far a chunk may exceed its weight's bytes (a chunked weight that was resized smaller).
CHUNK_SLACK_BYTES = 1 << 20

# HDF5's filter codes, and (the dict) those accepted, in the order they are applied when writing.
DEFLATE, SHUFFLE, FLETCHER32 = 1, 2, 3
FILTER_NAMES = {SHUFFLE: "shuffle", DEFLATE: "deflate", FLETCHER32: "fletcher32"}

_OUTSIDE = "this reader reads nothing outside the weights file"

_KERAS_3_WEIGHTS = (
    "is a Keras 3 '.weights.h5' file, which this reader does not read; save the model in Keras' legacy HDF5 "
    "format instead, with model.save('vgg19.h5') (Keras 2: model.save_weights('vgg19.h5')), or use "
    f"{KERAS_WEIGHTS_FILE}"
)


class _Reader:
    """Reads Keras' weights from one open HDF5 file (``h5py`` the module, ``path`` the file's name for messages),
    through hard links only, checking each weight's storage, type, shape and chunks before reading it."""

    def __init__(self, h5py, path):
        self.h5py, self.path = h5py, path

    def fail(self, problem):
        _fail(self.path, problem)

    def child(self, parent, name, label):
        """The object a hard link ``name`` in group ``parent`` leads to, or None; ``label`` names it in messages.
        ``WeightsFileError`` for a soft, external or user-defined link: those are never followed."""
        link = parent.get(name, getlink=True)
        if link is None or isinstance(link, self.h5py.HardLink):
            return None if link is None else parent[name]
        kind = {self.h5py.ExternalLink: "external link (to another file)", self.h5py.SoftLink: "soft link"}
        self.fail(f"{label} is an HDF5 {kind.get(type(link), 'user-defined link')}; this reader follows no links")

    def weights_of(self, group, layer, prefix="", depth=3):
        """[(path in the layer, dataset)] in ``group`` and its subgroups, ``depth`` levels down; the walk stops
        at a third dataset (a convolution has two). ``WeightsFileError`` for a link other than a hard one."""
        found = []
        for name in group:
            path = prefix + name
            node = self.child(group, name, f"{path!r} in layer {layer!r}")
            if isinstance(node, self.h5py.Dataset):
                found.append((path, node))
            elif isinstance(node, self.h5py.Group) and depth > 1:
                found += self.weights_of(node, layer, f"{path}/", depth - 1)
            if len(found) > 2:
                break
        return found

    def dataset(self, dataset, label):
        """Checks ``dataset``'s storage and type, reading nothing: ``WeightsFileError`` for numbers kept
        outside the file (external storage, a virtual dataset) or other than floating point."""
        # Before the shape: an unlimited virtual dataset opens its source files to find its shape.
        plist = dataset.id.get_create_plist()
        if plist.get_external_count():
            other = os.fsdecode(plist.get_external(0)[0])[:200]
            self.fail(f"{label} keeps its numbers in another file, {quoted(other)} (HDF5 external storage); {_OUTSIDE}")
        if plist.get_layout() == getattr(self.h5py.h5d, "VIRTUAL", 3):
            self.fail(f"{label} is an HDF5 virtual dataset, whose numbers lie in other files; {_OUTSIDE}")
        if dataset.dtype.kind != "f":
            self.fail(f"{label} has type {dataset.dtype}; expected floating-point numbers")

    def read(self, dataset, label):
        """The numbers of ``dataset`` (of checked shape) as float32, once its filters and chunks are checked;
        ``WeightsFileError`` for filters other than shuffle, deflate and fletcher32 or refused chunks."""
        plist = dataset.id.get_create_plist()
        filters = [plist.get_filter(index)[::3] for index in range(plist.get_nfilters())]
        codes = [code for code, _ in filters]
        # In the order h5py and h5repack write them: a compressed chunk is then, as stored, the one deflate
        # stream (and a checksum) that HDF5 inflates first, and that is inflated here first.
        if codes != [code for code in FILTER_NAMES if code in codes]:
            shown = ", ".join(f"{code} ({bytes(name[:40]).decode('ascii', 'replace')!r})" for code, name in filters)
            self.fail(
                f"{label} is stored through HDF5 filters {shown}; this reader accepts shuffle, deflate (gzip) "
                "and fletcher32, each at most once and in that order"
            )
        if plist.get_layout() == self.h5py.h5d.CHUNKED:
            deflate = codes.index(DEFLATE) if DEFLATE in codes else None
            self._check_chunks(dataset, plist.get_chunk(), deflate, label)
        return np.asarray(dataset[()], dtype=np.float32)

    def _check_chunks(self, dataset, chunk, deflate, label):
        """Checks a chunked weight's chunk shape ``chunk``, count and stored chunks, and inflates each compressed
        one (``deflate``: the position of deflate among its filters, or None). ``WeightsFileError``: chunks larger
        than the weight, too many, a stored chunk larger than a chunk, or a compressed chunk that is corrupt or
        inflates to more than a chunk."""
        shape, itemsize = dataset.shape, dataset.dtype.itemsize
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
        for info in stored:
            if info.size > chunk_bytes + chunk_bytes // 64 + 1024:
                self.fail(f"{label} has a stored chunk of {info.size} bytes, for {chunk_bytes} bytes of numbers")
            if deflate is not None and not info.filter_mask & (1 << deflate):
                self._check_inflated(dataset.id.read_direct_chunk(info.chunk_offset)[1], chunk_bytes, label)

    def _check_inflated(self, packed, chunk_bytes, label):
        """Inflates the deflate stream ``packed`` no further than ``chunk_bytes`` and a checksum, and forgets
        the result; ``WeightsFileError`` if it is corrupt or inflates to more."""
        limit = chunk_bytes + 4  # a fletcher32 checksum applied before compression
        try:
            inflated = len(zlib.decompressobj().decompress(packed, limit + 1))
        except zlib.error as error:
            self.fail(f"{label} has a compressed chunk that is corrupt ({error}); the file is damaged")
        if inflated > limit:
            self.fail(f"{label} has a compressed chunk that inflates to more than its {chunk_bytes} bytes")

    def conv_groups(self, root):
        """Keras' layer name -> its h5py group, for VGG19's 16 convolutions; ``WeightsFileError`` when one is
        missing, the file is Keras 3's other format, or a layer VGG19 does not have holds weights."""
        groups = {layer: self.child(root, layer, f"layer {layer!r}") for layer in KERAS_CONV_LAYERS}
        missing = [layer for layer, group in groups.items() if not isinstance(group, self.h5py.Group)]
        if len(missing) == len(groups):
            if all(isinstance(self.child(root, key, f"group {key!r}"), self.h5py.Group) for key in ("layers", "vars")):
                self.fail(_KERAS_3_WEIGHTS)
            self.fail(f"HDF5 file without Keras' VGG19 layers (no group 'block1_conv1'); not {KERAS_WEIGHTS_FILE}")
        if missing:
            self.fail(
                f"has no weights for layer {missing[0]!r} ({len(missing)} of Keras' 16 VGG19 convolutions missing); "
                f"not Keras' VGG19 weights ({KERAS_WEIGHTS_FILE})"
            )
        for name in root:
            if name not in groups and name not in KERAS_TOP_LAYERS:
                group = self.child(root, name, f"layer {name!r}")
                if isinstance(group, self.h5py.Group) and self.weights_of(group, name):
                    self.fail(f"has weights for layer {name!r}, which Keras' VGG19 does not have; not VGG19 weights")
        return groups

    def conv_layer(self, group, layer, in_channels):
        """(kernel (3, 3, in_channels, out), bias (out,)) as float32 of the convolution ``layer`` (Keras' name)
        in ``group``, out at most VGG19's width; shapes are checked before reading, so a wrong file is never
        loaded whole. ``WeightsFileError``: not two weights, a wrong shape, a refused dataset, NaN or infinity.
        """
        name = KERAS_CONV_LAYERS[layer]
        found = self.weights_of(group, layer)
        if len(found) != 2:
            count = "more than 2" if len(found) > 2 else len(found)
            self.fail(f"layer {layer!r} holds {count} weights; expected kernel and bias")
        for path, dataset in found:
            self.dataset(dataset, f"weight {path!r} of layer {layer!r}")
        # Spelled differently by each Keras version, the kernel is told from the bias by its four axes.
        (kernel_path, kernel), (bias_path, bias) = sorted(found, key=lambda item: -len(item[1].shape or ()))
        width, shape = CONV_WIDTHS[name], kernel.shape
        if shape is None or len(shape) != 4 or shape[:3] != (3, 3, in_channels) or not 1 <= shape[3] <= width:
            expected = f"expected (3, 3, {in_channels}, out), out from 1 to {width}"
            self.fail(f"{layer} ({name}) kernel has shape {shape}; {expected}")
        if bias.shape != shape[3:]:
            self.fail(f"{layer} ({name}) bias has shape {bias.shape}; expected ({shape[3]},)")
        kernel = self.read(kernel, f"weight {kernel_path!r} of layer {layer!r}")
        bias = self.read(bias, f"weight {bias_path!r} of layer {layer!r}")
        if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
            self.fail(f"{layer} ({name}) weights contain NaN or infinite values")
        return kernel, bias

    def read_conv(self, root):
        """Course name -> (kernel, bias) from an open Keras weights file, conv1_1's input channels in RGB order."""
        groups = self.conv_groups(root)
        conv, in_channels = {}, 3
        for layer, name in KERAS_CONV_LAYERS.items():
            conv[name] = self.conv_layer(groups[layer], layer, in_channels)
            in_channels = conv[name][0].shape[3]
        # BGR input channels (Caffe's order) to RGB, the order nst_tf feeds.
        kernel, bias = conv["conv1_1"]
        conv["conv1_1"] = (np.ascontiguousarray(kernel[:, :, ::-1, :]), bias)
        return conv


def read_vgg19_h5(path):
    """Reads the convolution weights of Keras' VGG19 weight file ``path`` into ``VGGWeights``: float32 kernels
    (3, 3, in, out) for RGB input (conv1_1's input channels reversed from Keras' BGR), ``mean_pixel`` Caffe's
    means in RGB order, layout "keras", source ``path``. Accepts the "notop" file and the full one (dense layers
    not read), as Keras 1, 2 or 3 writes them in its legacy HDF5 format, or a whole model Keras saved in HDF5.

    Raises:
        WeightsFileError: one line naming the file and the problem: missing, not a regular file, not HDF5,
            damaged, Keras 3's ``.weights.h5`` format, another network, kernels of the wrong shape or
            non-finite values, or it would make the reader follow links, read other files or allocate more
            than the weights need.
    """
    path = weights_path(path)
    import h5py  # comes with Keras; imported here so that the .mat route never needs it

    # h5py reads the file opened here, so a pipe or a device is refused before any read.
    with open_regular_file(path, missing_hint=missing_weights_hint("keras")) as file:
        if file_kind(file, path) == "mat":
            _fail(path, "is a MATLAB .mat file, not Keras' HDF5 weights; read it with read_vgg19_mat or load_vgg_model")
        reader = _Reader(h5py, path)
        try:
            with h5py.File(file, "r") as root:
                # A whole model saved by Keras keeps its weights in this group, in the same layout.
                model = reader.child(root, "model_weights", "group 'model_weights'")
                conv = reader.read_conv(model if isinstance(model, h5py.Group) else root)
        except (WeightsFileError, MemoryError):
            raise
        except (OSError, LookupError, RuntimeError, ValueError, TypeError, ArithmeticError) as error:  # h5py's errors
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            _fail(path, f"cannot be read as an HDF5 file ({detail}); it may be truncated or damaged")
    return VGGWeights(conv=conv, mean_pixel=CAFFE_MEAN_RGB.copy(), layout="keras", source=path)

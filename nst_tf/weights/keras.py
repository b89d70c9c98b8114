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

Keras' kernels expect Caffe's input: BGR channels minus the means
(103.939, 116.779, 123.68). nst_tf feeds RGB minus ``CONFIG.MEANS``
(123.68, 116.779, 103.939), the same numbers in the reverse channel order, so
reversing conv1_1's input-channel axis gives identical activations; no other
layer sees the channel order.
"""

import os

import numpy as np

from ..config import KERAS_VGG_MODEL
from ..errors import WeightsFileError, quoted
from ..networks.vgg19 import VGGWeights
from .matfile import MAT_HEADERS, open_regular_file

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


def _attribute_list(node, name):
    """Keras' list attribute ``name`` of an HDF5 group as str, joining chunks ``name0``, ``name1``, ...

    None when the attribute is absent.
    """
    attrs = node.attrs
    if name in attrs:
        chunks = [attrs[name]]
    else:
        chunks = []
        while f"{name}{len(chunks)}" in attrs:
            chunks.append(attrs[f"{name}{len(chunks)}"])
        if not chunks:
            return None
    return [
        item.decode("utf8", errors="replace") if isinstance(item, bytes) else str(item)
        for chunk in chunks
        for item in np.atleast_1d(chunk)
    ]


def _dataset(h5py, group, layer, name, path):
    """The dataset that ``layer``'s ``weight_names`` calls ``name``; its values are not read yet."""
    dataset = group.get(name)
    if not isinstance(dataset, h5py.Dataset):
        _fail(path, f"layer {layer!r} lists weight {name!r}, which is not a dataset in the file")
    if dataset.dtype.kind != "f":
        _fail(path, f"weight {name!r} of layer {layer!r} has type {dataset.dtype}; expected floating-point numbers")
    return dataset


def _read_conv(h5py, root, path):
    """Course name -> (kernel, bias) from an open Keras weights file; see the module docstring."""
    layer_names = _attribute_list(root, "layer_names")
    if layer_names is None:
        _fail(path, f"HDF5 file without a 'layer_names' attribute; not Keras' weights file ({KERAS_WEIGHTS_FILE})")
    weighted = set()
    for layer in layer_names:
        group = root.get(layer)
        if not isinstance(group, h5py.Group):
            _fail(path, f"lists layer {layer!r} but has no group of that name; the file is damaged")
        if _attribute_list(group, "weight_names"):
            weighted.add(layer)
    missing = [layer for layer in KERAS_CONV_LAYERS if layer not in weighted]
    if missing:
        _fail(
            path,
            f"has no weights for layer {missing[0]!r} ({len(missing)} of Keras' 16 VGG19 convolutions missing); "
            f"not Keras' VGG19 weights ({KERAS_WEIGHTS_FILE})",
        )
    extra = sorted(weighted - set(KERAS_CONV_LAYERS) - set(KERAS_TOP_LAYERS))
    if extra:
        _fail(path, f"has weights for layer {extra[0]!r}, which Keras' VGG19 does not have; not VGG19 weights")

    conv = {}
    in_channels = 3
    for layer, name in KERAS_CONV_LAYERS.items():
        group = root[layer]
        weight_names = _attribute_list(group, "weight_names")
        if len(weight_names) != 2:
            _fail(path, f"layer {layer!r} holds {len(weight_names)} weights; expected kernel and bias")
        kernel = _dataset(h5py, group, layer, weight_names[0], path)
        if len(kernel.shape) != 4 or kernel.shape[:3] != (3, 3, in_channels):
            _fail(path, f"{layer} ({name}) kernel has shape {kernel.shape}; expected (3, 3, {in_channels}, out)")
        out_channels = kernel.shape[3]
        bias = _dataset(h5py, group, layer, weight_names[1], path)
        if bias.shape != (out_channels,):
            _fail(path, f"{layer} ({name}) bias has shape {bias.shape}; expected ({out_channels},)")
        # Shapes are checked before reading, so a wrong file is never loaded whole.
        kernel = np.asarray(kernel[()], dtype=np.float32)
        bias = np.asarray(bias[()], dtype=np.float32)
        if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
            _fail(path, f"{layer} ({name}) weights contain NaN or infinite values")
        conv[name] = (kernel, bias)
        in_channels = out_channels
    # BGR input channels (Caffe's order) to RGB, the order nst_tf feeds.
    kernel, bias = conv["conv1_1"]
    conv["conv1_1"] = (np.ascontiguousarray(kernel[:, :, ::-1, :]), bias)
    return conv


def read_vgg19_h5(path):
    """Reads the convolution weights of Keras' VGG19 weight file into ``VGGWeights``.

    Accepts ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` and the
    full file with the dense layers (not read), written by Keras 1 or 2,
    or the weights inside a whole model saved by Keras in HDF5. Returns
    ``VGGWeights`` with kernels of shape (3, 3, in, out) for RGB input
    (conv1_1's input channels reversed from Keras' BGR), float32;
    ``mean_pixel`` Caffe's means in RGB order; layout "keras"; source ``path``.

    Raises ``WeightsFileError`` (an ``NSTError``) naming the file and the
    problem when it is missing, not HDF5, damaged, another network, or
    holds kernels of the wrong shape or non-finite values.
    """
    path = os.fspath(path)
    # h5py comes with Keras; imported here so that the .mat route never needs it.
    import h5py

    # h5py reads the file opened here, so a pipe or a device is refused before any read.
    with open_regular_file(path, missing_hint=KERAS_DOWNLOAD_HINT) as file:
        if file_kind(file, path) == "mat":
            _fail(path, "is a MATLAB .mat file, not Keras' HDF5 weights; read it with read_vgg19_mat or load_vgg_model")
        return _read_h5(h5py, file, path)


def _read_h5(h5py, file, path):
    try:
        with h5py.File(file, "r") as root:
            if "layer_names" not in root.attrs and isinstance(root.get("model_weights"), h5py.Group):
                # A whole model saved by Keras keeps its weights in this group, in the same layout.
                root = root["model_weights"]
            conv = _read_conv(h5py, root, path)
    except (WeightsFileError, MemoryError):
        raise
    except (OSError, KeyError, RuntimeError, ValueError, TypeError) as error:  # h5py's errors for damaged files
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        _fail(path, f"cannot be read as an HDF5 file ({detail}); it may be truncated or damaged")
    return VGGWeights(conv=conv, mean_pixel=CAFFE_MEAN_RGB.copy(), layout="keras", source=path)

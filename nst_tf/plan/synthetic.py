"""Synthetic VGG-19 weights in MatConvNet's and Keras' exact file layouts.

The real imagenet-vgg-verydeep-19.mat (510 MB) is on no package registry, so tests, notebooks and benchmarks use
files written here: random weights of the right shapes for all 43 layers, the mean pixel and a class list, nested so
that ``scipy.io.loadmat`` returns what it does for the real file (the course's ``layers[0][i][0][0][2][0][0]``
works). ``write_vgg19_h5`` writes Keras' HDF5 weights with the SAME numbers as ``write_vgg19_mat`` for the same
``width_divisor`` and ``seed`` (conv1_1 in BGR, as Keras'), so both describe one network. ``width_divisor``
divides every channel width (64 ... 4096) for small files; 1 gives the real sizes.
"""

import os

import numpy as np
import scipy.io

from ..ground.errors import NSTError
from .config import CONFIG
from .networks.vgg19 import CONV_WIDTHS, MATCONVNET_LAYERS
from .weights.keras import KERAS_CONV_LAYERS

_LAYOUTS = ("new", "old")
_CLASSES = 1000
_KERAS_VERSIONS = (1, 2)


def _cell(items):
    cell = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        cell[0, i] = item
    return cell


def _layer_shapes(width_divisor):
    """name -> (kernel shape, bias length) for every layer that has weights."""
    shapes = {}
    in_channels = 3
    for name in MATCONVNET_LAYERS:
        if name.startswith("conv"):
            out = CONV_WIDTHS[name] // width_divisor
            shapes[name] = ((3, 3, in_channels, out), out)
            in_channels = out
    fc = 4096 // width_divisor
    shapes["fc6"] = ((7, 7, in_channels, fc), fc)
    shapes["fc7"] = ((1, 1, fc, fc), fc)
    shapes["fc8"] = ((1, 1, fc, _CLASSES), _CLASSES)
    return shapes


def _random_weights(rng, width_divisor, include_top):
    """name -> (kernel, bias (out,)), float32, from ``rng`` in the file's layer order (convolutions first, so
    stopping before the fully-connected layers leaves their numbers unchanged)."""
    weights = {}
    for name, (kernel_shape, bias_length) in _layer_shapes(width_divisor).items():
        if name.startswith("fc") and not include_top:
            break
        fan_in = int(np.prod(kernel_shape[:3]))
        kernel = rng.standard_normal(kernel_shape, dtype=np.float32)
        kernel *= np.float32(np.sqrt(2.0 / fan_in))
        bias = (0.01 * rng.standard_normal(bias_length)).astype(np.float32)
        weights[name] = (kernel, bias)
    return weights


def _check_width_divisor(width_divisor):
    if not isinstance(width_divisor, int) or width_divisor < 1 or 64 % width_divisor:
        raise NSTError(f"width_divisor must be a divisor of 64 (1, 2, 4, ..., 64); got {width_divisor!r}")


def _layer(name, weights, layout):
    """One layer's struct, its fields in the order of the real file's ``layout`` (the course indexes them)."""
    kind = "conv" if weights is not None else "softmax" if name == "prob" else name.rstrip("0123456789_")
    pad, stride = np.zeros((1, 4)), np.ones((1, 2))
    if kind == "conv":
        pad += weights[0, 0].shape[0] == 3
        if layout == "old":
            return {"weights": weights, "pad": pad, "type": kind, "name": name, "stride": stride}
        size = np.array(weights[0, 0].shape, dtype=float).reshape(1, 4)
        layer = {"name": name, "type": kind, "weights": weights, "size": size, "pad": pad, "stride": stride}
        layer["dilate"] = np.ones((1, 2))
    elif kind == "pool":
        pool, stride = np.full((1, 2), 2.0), np.full((1, 2), 2.0)
        if layout == "old":
            return {"name": name, "stride": stride, "pad": pad, "type": kind, "method": "max", "pool": pool}
        layer = {"name": name, "type": kind, "weights": _cell([]), "method": "max", "pool": pool, "stride": stride}
        layer["pad"] = pad
    elif layout == "old":
        return {"type": kind, "name": name}
    else:
        layer = {"name": name, "type": kind, "weights": _cell([])}
        if kind == "relu":
            layer["leak"] = np.zeros((1, 1))
    layer["precious"] = np.zeros((1, 1), dtype=bool)
    return layer


def vgg19_mat_contents(layout="new", width_divisor=1, seed=0):
    """The variables of a synthetic imagenet-vgg-verydeep-19.mat, for ``scipy.io.savemat``: layers are dicts in
    a (1, 43) object array, so a test can alter one (``contents["layers"][0, 2]["weights"][0, 0] = ...``).

    Raises:
        NSTError: ``layout`` is not "new" or "old", or ``width_divisor`` is not a divisor of 64.
    """
    if layout not in _LAYOUTS:
        raise NSTError(f"layout must be one of {', '.join(_LAYOUTS)}; got {layout!r}")
    _check_width_divisor(width_divisor)
    rng = np.random.default_rng(seed)
    weights = _random_weights(rng, width_divisor, include_top=True)
    bias_shape = (1, -1) if layout == "old" else (-1, 1)
    cells = {name: _cell([kernel, bias.reshape(bias_shape)]) for name, (kernel, bias) in weights.items()}
    layers = _cell([_layer(name, cells.get(name), layout) for name in MATCONVNET_LAYERS])
    means = CONFIG.MEANS.reshape(3).astype(np.float64)
    class_names = _cell([f"n{i:08d}" for i in range(_CLASSES)])
    descriptions = _cell([f"synthetic class {i}" for i in range(_CLASSES)])
    if layout == "new":
        normalization = {
            "imageSize": np.array([[224.0, 224.0, 3.0]]),
            "averageImage": means.astype(np.float32).reshape(1, 1, 3),
            "keepAspect": np.ones((1, 1), dtype=bool),
            "border": np.array([[32.0, 32.0]]),
            "cropSize": np.array([[0.875]]),
            "interpolation": "bilinear",
        }
        meta = {
            "inputs": {"name": "data", "size": np.array([[224.0, 224.0, 3.0, 10.0]])},
            "classes": {"name": class_names, "description": descriptions},
            "normalization": normalization,
        }
        return {"layers": layers, "meta": meta}
    # The old layout stores a 224x224 mean image; its per-channel mean is the mean pixel.
    ripple = rng.standard_normal((224, 224, 3))
    ripple -= ripple.mean(axis=(0, 1))
    average_image = (means + 5.0 * ripple).astype(np.float32)
    return {
        "layers": layers,
        "classes": {"name": class_names, "description": descriptions},
        "normalization": {
            "averageImage": average_image,
            "keepAspect": np.ones((1, 1)),
            "border": np.array([[32.0, 32.0]]),
            "imageSize": np.array([[224.0, 224.0, 3.0]]),
            "interpolation": "bilinear",
        },
    }


def write_vgg19_mat(path, layout="new", width_divisor=1, seed=0, compress=True, overwrite=False):
    """Writes a synthetic imagenet-vgg-verydeep-19.mat to ``path`` (its folder created) and returns the path.

    ``layout``: "new" (the file of MD5 106118b7...) or "old" (8ee32639...). ``width_divisor`` 1 is full size (575 MB
    of float32 before compression). ``compress``: zlib, as MATLAB's -v7. An existing file is replaced only with
    ``overwrite`` (a real model is not clobbered by mistake). ``NSTError`` for that, or as ``vgg19_mat_contents``.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise NSTError(f"{path} exists; pass overwrite=True to replace it")
    contents = vgg19_mat_contents(layout, width_divisor, seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    scipy.io.savemat(path, contents, do_compression=compress, oned_as="row")
    return path


def _keras_layers(include_top):
    """Keras' VGG19 layers in model order: (Keras name, course name of its weights or None)."""
    layers = [("input_1", None)]
    convs = list(KERAS_CONV_LAYERS.items())
    for i, (keras_name, name) in enumerate(convs):
        layers.append((keras_name, name))
        block = keras_name.split("_")[0]
        if i + 1 == len(convs) or not convs[i + 1][0].startswith(f"{block}_"):
            layers.append((f"{block}_pool", None))
    if include_top:
        layers += [("flatten", None), ("fc1", "fc6"), ("fc2", "fc7"), ("predictions", "fc8")]
    return layers


def _keras_weights(rng, width_divisor, include_top):
    """``write_vgg19_mat``'s numbers in Keras' layout: conv1_1 for BGR input, dense kernels flattened."""
    weights = _random_weights(rng, width_divisor, include_top=include_top)
    kernel, bias = weights["conv1_1"]
    weights["conv1_1"] = (np.ascontiguousarray(kernel[:, :, ::-1, :]), bias)
    for name in ("fc6", "fc7", "fc8"):
        if name in weights:
            kernel, bias = weights[name]
            weights[name] = (kernel.reshape(-1, kernel.shape[3]), bias)
    return weights


def _write_keras_layers(root, weights, layers, keras_version):
    """Keras' legacy HDF5 layout into the open file ``root``: attributes, one group per layer."""
    root.attrs["layer_names"] = np.array([layer.encode("utf8") for layer, _ in layers])
    if keras_version == 2:
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.2.4"
    for layer, name in layers:
        group = root.create_group(layer)
        if name is None:
            # What Keras stores for an empty list: a float64 array of length 0.
            group.attrs["weight_names"] = np.array([])
            continue
        if keras_version == 2:
            names = [f"{layer}/kernel:0", f"{layer}/bias:0"]
        else:
            names = [f"{layer}_W_1:0", f"{layer}_b_1:0"]
        group.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
        for weight_name, value in zip(names, weights[name]):
            group.create_dataset(weight_name, data=value)


def write_vgg19_h5(path, width_divisor=1, seed=0, include_top=False, keras_version=2, overwrite=False):
    """Writes a synthetic Keras VGG19 weights file to ``path`` (its folder created) and returns the path.

    Keras' legacy HDF5 layout: root attributes ``layer_names`` (input_1, block1_conv1, ..., block5_pool, and with
    ``include_top`` flatten, fc1, fc2, predictions) and, for ``keras_version`` 2, ``backend`` and ``keras_version``;
    a group per layer with ``weight_names`` (empty without weights); datasets named as Keras 2
    (``block1_conv1/kernel:0``) or Keras 1 (``block1_conv1_W_1:0``) names them. The numbers are ``write_vgg19_mat``'s
    (1: 80 MB without the top, 549 MB with it), conv1_1's input reversed (BGR), dense kernels flattened. An existing
    file is replaced only with ``overwrite``. ``NSTError`` for that, a bad ``width_divisor`` or ``keras_version``.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise NSTError(f"{path} exists; pass overwrite=True to replace it")
    _check_width_divisor(width_divisor)
    if keras_version not in _KERAS_VERSIONS or isinstance(keras_version, bool):
        raise NSTError(f"keras_version must be 1 or 2; got {keras_version!r}")
    import h5py

    weights = _keras_weights(np.random.default_rng(seed), width_divisor, include_top)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with h5py.File(path, "w") as root:
        _write_keras_layers(root, weights, _keras_layers(include_top), keras_version)
    return path

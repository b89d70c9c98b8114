"""MatConvNet's imagenet-vgg-verydeep-19.mat: the reader, free of TensorFlow.

``read_vgg19_mat(path)`` checks the structure first (``matfile``: loadmat can crash or exhaust memory on a damaged
file), reads it with ``scipy.io.loadmat`` and returns a ``VGGWeights`` of the 16 convolutions and the mean pixel;
the fully-connected layers (470 of its 510 MB) are dropped once parsed. Both MatConvNet layouts are read, struct
fields by name: the layouts order them differently, and old-layout relu and pool structs have other fields.
"""

import warnings

import numpy as np
import scipy.io

from ...ground.errors import WeightsFileError, quoted
from ..locations import missing_weights_hint
from ..networks.vgg19 import CONV_INDEX, MATCONVNET_LAYERS, VGGWeights
from .matfile import check_open_mat_file, open_regular_file, weights_path


def _fail(path, problem):
    raise WeightsFileError(f"{quoted(path)}: {problem}")


def _field(struct, name, path, where):
    """Field ``name`` of a loadmat struct (a (1, 1) record array)."""
    record = struct[0, 0] if isinstance(struct, np.ndarray) and struct.shape == (1, 1) else struct
    names = getattr(getattr(record, "dtype", None), "names", None) or ()
    if name not in names:
        _fail(path, f"{where} has no field {name!r} (fields: {', '.join(names) or 'none'})")
    return record[name]


def _string(value):
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)
        value = value[0] if value.size == 1 else "".join(map(str, value))
    return str(value)


def _numeric(value, path, what):
    """``value`` as a real numeric array; cell arrays, text, complex values and booleans are refused."""
    array = np.asarray(value)
    if array.dtype.kind == "c":
        _fail(path, f"{what} is complex; expected real numbers")
    if array.dtype.kind not in "fiu":
        kind = {"O": "a cell array", "U": "text", "S": "text", "b": "a logical array", "V": "a struct"}
        _fail(path, f"{what} is {kind.get(array.dtype.kind, f'of type {array.dtype}')}; expected a numeric array")
    return array


def _mean_pixel(mat, layout, path):
    if layout == "new":
        meta = mat["meta"]
        normalization = _field(meta, "normalization", path, "meta")
    else:
        normalization = mat["normalization"]
    average = _numeric(_field(normalization, "averageImage", path, "normalization"), path, "averageImage")
    if average.size == 0 or (average.shape[-1] != 3 and average.size != 3):
        _fail(path, f"averageImage has shape {average.shape}; expected 3 colour channels")
    # The new layout stores the mean pixel (1x1x3), the old a 224x224x3 mean image. A signalling NaN warns when
    # cast, a huge image overflows its sum: both end non-finite, refused below.
    with np.errstate(over="ignore", invalid="ignore"):
        average = average.astype(np.float64)
        mean_pixel = average.reshape(-1, 3).mean(axis=0)
    if not (np.isfinite(average).all() and np.isfinite(mean_pixel).all()):
        _fail(path, "averageImage contains NaN or infinite values")
    return mean_pixel


def _read_mat(path):
    # One open file for the check and for loadmat, so loadmat reads the file that was checked.
    with open_regular_file(
        path, missing_hint=missing_weights_hint("mat"), folder_problem="is a folder, not the .mat file"
    ) as file:
        check_open_mat_file(file, path)
        try:
            with warnings.catch_warnings():
                # loadmat warns, rather than fails, on some inconsistencies.
                warnings.simplefilter("error", scipy.io.matlab.MatReadWarning)
                return scipy.io.loadmat(file, variable_names=("layers", "meta", "normalization"))
        except MemoryError:
            raise
        # scipy raises many types (ValueError, OSError, zlib.error...) for damaged files.
        except Exception as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            _fail(path, f"cannot be read as a MATLAB .mat file ({detail}); it may be truncated or damaged")


def read_vgg19_mat(path):
    """The ``VGGWeights`` (convolution weights and mean pixel) of imagenet-vgg-verydeep-19.mat.

    ``WeightsFileError``, one line naming the file: missing, a bad link, unreadable or not a regular file (refused
    before any read), damaged, not a .mat file, another network, or weights not real finite numbers of VGG-19's shapes.
    """
    path = weights_path(path)
    mat = _read_mat(path)
    if "layers" not in mat:
        _fail(path, "has no 'layers' variable; not a MatConvNet simplenn model")
    layout = "new" if "meta" in mat else "old" if "normalization" in mat else None
    if layout is None:
        _fail(path, "has neither 'meta' (new layout) nor 'normalization' (old layout)")
    layers = mat["layers"]
    if layers.dtype != object or layers.ndim != 2:
        _fail(path, f"'layers' is not a cell array (shape {layers.shape}, type {layers.dtype})")
    layers = layers.reshape(-1)
    if layers.size < 37:
        _fail(path, f"'layers' holds {layers.size} layers; VGG-19 has 43")
    for i, expected in enumerate(MATCONVNET_LAYERS[:37]):
        name = _string(_field(layers[i], "name", path, f"layer {i}"))
        if name != expected:
            _fail(path, f"layer {i} is named {name!r}, expected {expected!r}; not MatConvNet's VGG-19")

    conv = {}
    in_channels = 3
    for name, i in CONV_INDEX.items():
        weights = _field(layers[i], "weights", path, f"layer {i} ({name})").reshape(-1)
        if weights.size != 2:
            _fail(path, f"{name} holds {weights.size} weight arrays; expected kernel and bias")
        # Kernels stay as stored, (height, width, in, out): tf.nn.conv2d's layout, and a correlation as in
        # MatConvNet, so no flip. (Some ports swap the first two axes, MatConvNet's images being width-major; the
        # course does not, harmlessly: content and Gram costs are sums over positions, unchanged by transposing.)
        kernel = _numeric(weights[0], path, f"{name} kernel")
        bias = _numeric(weights[1], path, f"{name} bias")
        if kernel.ndim != 4 or kernel.shape[:3] != (3, 3, in_channels):
            _fail(path, f"{name} kernel has shape {kernel.shape}; expected (3, 3, {in_channels}, out)")
        out_channels = kernel.shape[3]
        if bias.size != out_channels:
            _fail(path, f"{name} bias has {bias.size} values; expected {out_channels}")
        # Values beyond float32 become inf and signalling NaNs warn when cast; both are refused below.
        with np.errstate(over="ignore", invalid="ignore"):
            kernel = kernel.astype(np.float32, copy=False)
            bias = bias.reshape(out_channels).astype(np.float32)
        if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
            _fail(path, f"{name} weights contain NaN or infinite values")
        conv[name] = (kernel, bias)
        in_channels = out_channels
    mean_pixel = _mean_pixel(mat, layout, path)
    return VGGWeights(conv=conv, mean_pixel=mean_pixel, layout=layout, source=path)

"""VGG-19 from MatConvNet's imagenet-vgg-verydeep-19.mat, as a tf.Module.

Two parts, kept apart so that the module never touches the disk:

* ``read_vgg19_mat(path)`` checks the file's structure (``nst_tf.matfile``:
  loadmat can crash or exhaust memory on a damaged file), reads it with
  ``scipy.io.loadmat`` and returns a ``VGGWeights`` holding only the 16
  convolution kernels and biases and the mean pixel. The fully-connected
  layers (about 470 MB of the 510 MB) are dropped as soon as the file is
  parsed and never become tensors.
* ``VGG19(weights)`` holds those weights and computes the course's graph:
  3x3 convolutions (stride 1, SAME) plus bias and ReLU, and 2x2 average
  pooling (stride 2, SAME) after each block; ``pooling="max"`` gives Keras'
  max pooling instead.

``load_vgg_model(path)`` also reads Keras' VGG19 weight files
(``nst_tf.keras_weights``), telling the two kinds apart by their content.

Both MatConvNet layouts of the file are understood. Struct fields are read
by name, because the layouts order them differently (the "new" layout's
structs begin name, type, weights; the "old" layout's conv structs begin
weights, pad, type, name) and old-layout relu and pool structs carry other
fields altogether.
"""

import ctypes
import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.io
import tensorflow as tf

from .errors import NSTError, WeightsFileError
from .layers import CONV_INDEX, GRAPH_LAYERS, MATCONVNET_LAYERS, MIN_IMAGE_SIZE, POOLINGS
from .matfile import check_open_mat_file, display_path, open_regular_file

DOWNLOAD_HINT = (
    "download imagenet-vgg-verydeep-19.mat (about 510 MB, MatConvNet's pretrained models) "
    "into pretrained-model/ with: python -m nst_tf.download (see pretrained-model/README.md)"
)


@dataclass(frozen=True, eq=False)
class VGGWeights:
    """What the network needs from the .mat file, as NumPy arrays.

    Attributes:
        conv: layer name -> (kernel of shape (3, 3, in, out), bias of shape (out,)),
            float32, in the order of ``CONV_INDEX``.
        mean_pixel: the file's mean RGB pixel, shape (3,).
        layout: "new" or "old" (see module docstring).
        source: the path the weights were read from.
    """

    conv: dict
    mean_pixel: np.ndarray
    layout: str
    source: str


def _fail(path, problem):
    raise WeightsFileError(f"{display_path(path)}: {problem}")


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
    # The new layout stores the mean pixel itself (1x1x3); the old one a
    # 224x224x3 mean image, whose mean over height and width is that pixel.
    # (A signalling NaN warns when cast, a huge image overflows its sum:
    # both end as non-finite values, refused below.)
    with np.errstate(over="ignore", invalid="ignore"):
        average = average.astype(np.float64)
        mean_pixel = average.reshape(-1, 3).mean(axis=0)
    if not (np.isfinite(average).all() and np.isfinite(mean_pixel).all()):
        _fail(path, "averageImage contains NaN or infinite values")
    return mean_pixel


def _read_mat(path):
    # One open file for the check and for loadmat, so loadmat reads the file
    # that was checked. The check makes loadmat safe: see nst_tf.matfile.
    with open_regular_file(path, missing_hint=DOWNLOAD_HINT, folder_problem="is a folder, not the .mat file") as file:
        check_open_mat_file(file, path)
        try:
            with warnings.catch_warnings():
                # loadmat warns, rather than fails, on some inconsistencies.
                warnings.simplefilter("error", scipy.io.matlab.MatReadWarning)
                return scipy.io.loadmat(file, variable_names=("layers", "meta", "normalization"))
        except MemoryError:
            raise
        # scipy raises many types (ValueError, OSError, zlib.error...) for damaged files.
        except Exception as error:  # noqa: BLE001
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            _fail(path, f"cannot be read as a MATLAB .mat file ({detail}); it may be truncated or damaged")


def read_vgg19_mat(path):
    """Reads the convolution weights and mean pixel of imagenet-vgg-verydeep-19.mat.

    Returns a ``VGGWeights``. Raises ``WeightsFileError`` (an ``NSTError``),
    one line naming the file and the problem, when the path is missing, a
    dangling or looping link, unreadable, or not a regular file (a pipe or a
    device is refused before anything is read); when the file is damaged or
    not a .mat file; or when it is another network or holds kernels, biases
    or a mean image that are not real finite numbers of the right shapes.
    """
    path = os.fspath(path)
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
        # Kernels are kept as stored, (height, width, in, out) in MATLAB's
        # index order, which is tf.nn.conv2d's filter layout. MatConvNet, like
        # tf.nn.conv2d, computes a correlation, so no flip either. (Some ports
        # swap the first two axes because MatConvNet's images are width-major;
        # the course does not, and for style transfer that is harmless: the
        # network then sees every image transposed, and content and Gram
        # costs are sums over positions, unchanged by transposition.)
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


def _as(array, dtype):
    # An array already in ``dtype`` goes to tf.Variable directly: one copy, no temporary tensor.
    return array if array.dtype == dtype.as_numpy_dtype else tf.cast(array, dtype)


def _floating(dtype):
    try:
        dtype = tf.as_dtype(dtype)
    except TypeError:
        raise NSTError(f"dtype must be a floating-point type; got {dtype!r}") from None
    if not dtype.is_floating:
        raise NSTError(f"dtype must be a floating-point type; got {dtype.name}")
    return dtype


@dataclass(frozen=True)
class _Converted:
    """The part of ``VGGWeights`` that ``VGG19`` reads, for ``VGG19.astype``."""

    conv: dict
    source: str


def _check_pooling(pooling):
    if not isinstance(pooling, str) or pooling not in POOLINGS:
        raise NSTError(f"pooling must be one of {', '.join(map(repr, POOLINGS))}; got {pooling!r}")


class VGG19(tf.Module):
    """The course's VGG-19 graph (convolutions and average pooling) as a tf.Module.

    Calling the module on a float batch of shape (1, H, W, 3), H and W at
    least 32 (cast to the module's ``dtype``, float32 by default), returns
    a dict from layer name ("input", "conv1_1", ..., "avgpool5") to
    activation: the course's ``graph`` dict. Passing
    ``layers`` computes only up to the deepest requested layer and returns
    just those.

    ``pooling`` is "avg" (the course's: 2x2 average pooling, stride 2, SAME:
    an odd row or column is averaged alone) or "max" (Keras' VGG19 and the
    Keras L-BFGS variant: ``MaxPooling2D((2, 2))``, stride 2, VALID: an odd
    last row or column is dropped, so 75 rows become 37, not 38). The
    pooling outputs keep the course's names "avgpool1" ... "avgpool5" in both
    cases: one set of names serves every layer choice (style layers, content
    layer, the command line's options), and a name that changed with the
    pooling would make a layer list valid for one network and not the other.

    The weights are non-trainable ``tf.Variable``s: TensorFlow then places them
    on the GPU once, where a captured host constant would be copied to the
    device at every call of a ``tf.function``.
    """

    def __init__(self, weights, name="vgg19", dtype=tf.float32, pooling="avg"):
        super().__init__(name=name)
        _check_pooling(pooling)
        self.pooling = pooling
        self.dtype = _floating(dtype)
        with self.name_scope:
            self._conv = {
                layer: (
                    tf.Variable(_as(kernel, self.dtype), trainable=False, name=f"{layer}_kernel"),
                    tf.Variable(_as(bias, self.dtype), trainable=False, name=f"{layer}_bias"),
                )
                for layer, (kernel, bias) in weights.conv.items()
            }
        self.source = weights.source

    def astype(self, dtype):
        """This network with its weights cast to ``dtype`` (self if already so).

        The copy is made tensor to tensor, never through NumPy. Prefer
        building the network in the dtype it runs in
        (``load_vgg_model(path, dtype=...)``): then only one copy exists.
        """
        dtype = _floating(dtype)
        if dtype == self.dtype:
            return self
        conv = {layer: (tf.cast(kernel, dtype), tf.cast(bias, dtype)) for layer, (kernel, bias) in self._conv.items()}
        return VGG19(_Converted(conv, self.source), name=self.name, dtype=dtype, pooling=self.pooling)

    @property
    def layer_names(self):
        """The names this module can return, in computation order."""
        return ("input",) + GRAPH_LAYERS

    def _check_layers(self, layers):
        unknown = [name for name in layers if name not in self.layer_names]
        if unknown:
            raise NSTError(
                f"unknown VGG-19 layer {unknown[0]!r}; valid names: {', '.join(self.layer_names)}"
            )

    @staticmethod
    def _check_image(image):
        shape = image.shape
        if shape.rank != 4 or shape[-1] != 3:
            raise NSTError(f"image must have shape (1, height, width, 3); got {shape}")
        small = [d for d in shape[1:3] if d is not None and d < MIN_IMAGE_SIZE]
        if small:
            raise NSTError(
                f"image is {shape[2]}x{shape[1]} pixels; VGG-19's five poolings need at least "
                f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}"
            )

    def __call__(self, image, layers=None):
        """Runs the network on ``image``; see the class docstring."""
        wanted = self.layer_names if layers is None else tuple(layers)
        self._check_layers(wanted)
        try:
            image = tf.convert_to_tensor(image)
        except (TypeError, ValueError):
            raise NSTError(f"image must be an array or tensor of shape (1, height, width, 3); got {type(image).__name__}") from None
        self._check_image(image)
        if image.dtype != self.dtype:
            image = tf.cast(image, self.dtype)
        outputs = {"input": image}
        remaining = set(wanted) - {"input"}
        x = image
        for name in GRAPH_LAYERS:
            if not remaining:
                break
            if name.startswith("conv"):
                kernel, bias = self._conv[name]
                x = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + bias)
            elif self.pooling == "avg":
                x = tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="SAME")
            else:
                x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID")
            outputs[name] = x
            remaining.discard(name)
        return {name: outputs[name] for name in wanted}


def _release_freed_heap():
    # Parsing the file frees about 450 MB of arrays; glibc keeps some 20 MB of
    # that heap mapped (measured with benchmarks/bench.py --child-load: 106 MB
    # retained without this, 81 MB with it). malloc_trim hands it back. Only
    # glibc has it; elsewhere this does nothing.
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def load_vgg_model(path, dtype=tf.float32, pooling="avg"):
    """Reads a VGG-19 weights file and returns the ``VGG19`` module.

    The course's name for this step. The file is MatConvNet's
    imagenet-vgg-verydeep-19.mat (``read_vgg19_mat``) or Keras'
    vgg19_weights_tf_dim_ordering_tf_kernels(_notop).h5 (``read_vgg19_h5``),
    told apart by its first bytes (``weights_file_kind``), not its name.
    ``pooling``: see ``VGG19``. Raises ``WeightsFileError`` as those do.
    """
    # keras_weights imports this module, so it is imported on first use.
    from .keras_weights import read_vgg19_h5, weights_file_kind

    _check_pooling(pooling)  # before reading a file of hundreds of MB
    read = read_vgg19_h5 if weights_file_kind(path) == "h5" else read_vgg19_mat
    model = VGG19(read(path), dtype=dtype, pooling=pooling)
    _release_freed_heap()
    return model

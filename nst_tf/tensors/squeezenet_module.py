"""SqueezeNet 1.1 as a tf.Module: torchvision's ``features``, computed from weights already read.

``SqueezeNet(weights)`` holds the ``features`` parameters of a
``SqueezeNetWeights`` (read by ``nst_tf.plan.weights.squeezenet_reader.read_squeezenet``
from torchvision's ``squeezenet1_1-b8a52dc0.pth``, or made by
``random_squeezenet_weights``), its kernels turned from PyTorch's OIHW to
TensorFlow's HWIO once, here. It computes in NHWC exactly what torchvision
computes in NCHW (see ``squeezenet.py`` for the layers and their names);
the module never touches the disk.
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..ground.errors import NSTError
from ..plan.networks.squeezenet import FEATURE_PARAMETERS, FIRES, LAYERS, MIN_IMAGE_SIZE, PARAMETERS, SQUEEZENET_NETWORK
from .network_inputs import floating_dtype, in_dtype, network_input


@dataclass(frozen=True)
class _Converted:
    """Parameters already in HWIO (``SqueezeNet.astype``): state-dict key -> tensor."""

    params: dict
    source: str


def _hwio(weights):
    """``weights.params`` checked against ``PARAMETERS``, kernels transposed OIHW -> HWIO (NumPy arrays)."""
    params = getattr(weights, "params", None)
    if not isinstance(params, dict):
        raise NSTError(f"weights must be a SqueezeNetWeights; got {type(weights).__name__}")
    converted = {}
    for key in FEATURE_PARAMETERS:
        if key not in params:
            raise NSTError(f"weights lack {key}, a parameter of SqueezeNet 1.1's features")
        value = np.asarray(params[key])
        if value.shape != PARAMETERS[key] or value.dtype.kind != "f":
            raise NSTError(
                f"weights' {key} is {value.dtype} of shape {value.shape}; SqueezeNet 1.1's is floating-point "
                f"of shape {PARAMETERS[key]}"
            )
        converted[key] = np.ascontiguousarray(value.transpose(2, 3, 1, 0)) if value.ndim == 4 else value
    return converted


class SqueezeNet(tf.Module):
    """torchvision's SqueezeNet 1.1 ``features`` (CS231n's style-transfer network) as a tf.Module.

    Calling the module on a float batch of shape (N, H, W, 3), H and W at
    least 17, normalized as torchvision's ImageNet models expect
    (``normalization="imagenet"``), returns a dict from layer name to NHWC
    activation: "input" and the 13 layers ("conv1" ... "fire9"), each of
    which may also be asked for by its torchvision index ("0" ... "12").
    ``layers`` computes only up to the deepest requested layer and returns
    those, keyed by the names asked. The image is cast to the module's
    ``dtype`` (float32 by default).

    The layers are torchvision's: features.0 is a 3x3 convolution with
    stride 2 and no padding (its output before the ReLU, features.1); the
    poolings are 3x3 max poolings with stride 2 in ceil mode, computed as
    VALID poolings of the input padded with one row (column) of -inf at the
    bottom (right) where its size is even, exactly the windows PyTorch
    makes; a Fire module is a 1x1 "squeeze" convolution with ReLU, then the
    channel concatenation of the ReLUs of a 1x1 and a 3x3 (padding 1)
    "expand" convolution, in that order.

    ``pooling`` has one choice, "max". The weights are non-trainable
    ``tf.Variable``s, as VGG19's are (placed on the GPU once, not copied
    there at every call of a ``tf.function``).

    Raises:
        NSTError: ``weights`` lacks a ``features`` parameter or has one of
            another shape; ``dtype`` is not floating-point; ``pooling`` is
            not "max".
    """

    #: Its description: vocabulary and geometry (``nst_tf.plan.networks.squeezenet``).
    network = SQUEEZENET_NETWORK

    def __init__(self, weights, name="squeezenet", dtype=tf.float32, pooling="max"):
        super().__init__(name=name)
        SQUEEZENET_NETWORK.check_pooling(pooling)
        self.pooling = pooling
        self.dtype = floating_dtype(dtype)
        params = weights.params if isinstance(weights, _Converted) else _hwio(weights)
        with self.name_scope:
            self._params = {
                key: tf.Variable(in_dtype(value, self.dtype), trainable=False, name=key.replace(".", "_"))
                for key, value in params.items()
            }
        self.source = getattr(weights, "source", "<unknown>")  # for messages only

    def astype(self, dtype):
        """This network with its weights cast to ``dtype`` (self if already so), tensor to tensor."""
        dtype = floating_dtype(dtype)
        if dtype == self.dtype:
            return self
        params = {key: tf.cast(value, dtype) for key, value in self._params.items()}
        return SqueezeNet(_Converted(params, self.source), name=self.name, dtype=dtype, pooling=self.pooling)

    @property
    def layer_names(self):
        """The names this module returns by default, in computation order (each layer's index works too)."""
        return ("input",) + LAYERS

    @staticmethod
    def _check_image(image):
        if not (image.dtype.is_floating or image.dtype.is_integer):
            raise NSTError(f"image must hold real numbers; got dtype {image.dtype.name}")
        shape = image.shape
        if shape.rank != 4 or shape[-1] != 3:
            raise NSTError(f"image must have shape (1, height, width, 3); got {shape}")
        if any(d is not None and d < MIN_IMAGE_SIZE for d in shape[1:3]):
            raise NSTError(
                f"image is {shape[2]}x{shape[1]} pixels; SqueezeNet 1.1's stride-2 convolution and three "
                f"poolings need at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}"
            )
        if None in shape[1:3]:
            # Sizes known only when the traced function runs: TensorFlow's max pooling of an input smaller
            # than its window crashed the process (SIGFPE), so the size is asserted before any layer runs.
            check = tf.debugging.assert_greater_equal(
                tf.shape(image)[1:3],
                MIN_IMAGE_SIZE,
                message=f"SqueezeNet 1.1 needs images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}",
            )
            with tf.control_dependencies([check]):
                return tf.identity(image)
        return image

    def _wanted(self, layers):
        """(names asked, their canonical names) for ``layers``; ``NSTError`` for an unknown name."""
        if layers is None:
            return self.layer_names, self.layer_names
        names = tuple(SQUEEZENET_NETWORK.layer_list(layers))
        return names, tuple(name if name == "input" else SQUEEZENET_NETWORK.canonical(name) for name in names)

    def __call__(self, image, layers=None, lean_gradient=False):
        """Runs the network on ``image``; see the class docstring.

        ``lean_gradient`` is accepted for ``VGG19``'s interface and ignored:
        it serves ``TiledStyleCost``'s kept forward passes, and SqueezeNet is
        not computed in tiles.
        """
        names, canonical = self._wanted(layers)
        image = network_input(image, self.dtype, self._check_image)
        outputs = {"input": image}
        remaining = set(canonical) - {"input"}
        x = image
        for index, name in enumerate(LAYERS):
            if not remaining:
                break
            x = self._layer(index, x)
            outputs[name] = x
            remaining.discard(name)
        return {name: outputs[layer] for name, layer in zip(names, canonical)}

    def _layer(self, index, x):
        """features[index] applied to ``x``."""
        if index == 0:
            kernel, bias = self._pair("features.0")
            return tf.nn.conv2d(x, kernel, strides=2, padding="VALID") + bias
        if index == 1:
            return tf.nn.relu(x)
        if index in FIRES:
            return self._fire(index, x)
        return _ceil_max_pool(x)

    def _pair(self, prefix):
        return (tf.convert_to_tensor(self._params[f"{prefix}.{part}"]) for part in ("weight", "bias"))

    def _fire(self, index, x):
        squeezed = _conv_relu(x, *self._pair(f"features.{index}.squeeze"))
        return tf.concat(
            [
                _conv_relu(squeezed, *self._pair(f"features.{index}.expand1x1")),
                _conv_relu(squeezed, *self._pair(f"features.{index}.expand3x3")),
            ],
            axis=-1,
        )


def _conv_relu(x, kernel, bias):
    # 1x1 kernels: SAME adds no padding; 3x3 (stride 1): SAME is PyTorch's padding 1.
    return tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + bias)


def _even(x, axis):
    """1 where ``x`` has an even size along ``axis``, else 0: a Python int when the size is static."""
    size = x.shape[axis]
    return 1 - size % 2 if size is not None else 1 - tf.shape(x)[axis] % 2


def _ceil_max_pool(x):
    """``MaxPool2d(3, stride=2, ceil_mode=True)``: n positions give ``n // 2`` (n >= 2), as in PyTorch.

    A VALID 3x3 pooling with stride 2 gives ``(n - 1) // 2``, one fewer at
    even n; PyTorch's extra window there starts at n - 2 and holds the
    last two positions. Padding one position of -inf at the end of even
    axes gives exactly that window (-inf is never a window's maximum, and
    receives no gradient).
    """
    rows, columns = _even(x, 1), _even(x, 2)
    if not (isinstance(rows, int) and isinstance(columns, int) and rows == columns == 0):
        x = tf.pad(x, [[0, 0], [0, rows], [0, columns], [0, 0]], constant_values=float("-inf"))
    return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="VALID")

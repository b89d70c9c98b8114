"""SqueezeNet 1.1 as a tf.Module: torchvision's ``features``, computed from weights already read.

``SqueezeNet(weights)`` holds a ``SqueezeNetWeights``' ``features`` parameters (``read_squeezenet``'s, or
``random_squeezenet_weights``'), kernels turned from PyTorch's OIHW to HWIO once, and computes in NHWC exactly
what torchvision computes in NCHW (``nst_tf.plan.networks.squeezenet`` names the layers). It never touches disk.
"""

from types import SimpleNamespace

import numpy as np
from .quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from ..plan.networks.squeezenet import FEATURE_PARAMETERS, FIRES, LAYERS, MIN_IMAGE_SIZE, PARAMETERS, SQUEEZENET_NETWORK
from .network_inputs import floating_dtype, in_dtype, network_input


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

    Called on a float batch (N, H, W, 3), H and W at least 17, normalized as torchvision's ImageNet models expect,
    it returns layer name -> NHWC activation: "input" and the 13 layers ("conv1" ... "fire9", each also by its
    torchvision index "0" ... "12"); ``layers`` computes only up to the deepest asked and returns those, keyed
    as asked. As torchvision: features.0 a 3x3 convolution, stride 2, unpadded (ReLU: features.1); poolings 3x3
    max, stride 2, ceil mode; a Fire module a 1x1 "squeeze" convolution with ReLU, then the concatenated ReLUs of
    a 1x1 and a 3x3 (padding 1) "expand" convolution. The weights are non-trainable ``tf.Variable``s.

    Raises:
        NSTError: ``weights`` lacks a ``features`` parameter or has one of another shape; ``dtype`` is not
            floating-point; ``pooling`` is not "max" (its one choice).
    """

    #: Its description: vocabulary and geometry (``nst_tf.plan.networks.squeezenet``).
    network = SQUEEZENET_NETWORK

    def __init__(self, weights, name="squeezenet", dtype=tf.float32, pooling="max"):
        super().__init__(name=name)
        SQUEEZENET_NETWORK.check_pooling(pooling)
        self.pooling = pooling
        self.dtype = floating_dtype(dtype)
        params = weights.params if isinstance(weights, SimpleNamespace) else _hwio(weights)
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
        return SqueezeNet(
            SimpleNamespace(params=params, source=self.source), name=self.name, dtype=dtype, pooling=self.pooling
        )

    @property
    def layer_names(self):
        """The names this module returns by default, in computation order (each layer's index works too)."""
        return ("input",) + LAYERS

    def _wanted(self, layers):
        """(names asked, their canonical names) for ``layers``; ``NSTError`` for an unknown name."""
        if layers is None:
            return self.layer_names, self.layer_names
        names = tuple(SQUEEZENET_NETWORK.layer_list(layers))
        return names, tuple(name if name == "input" else SQUEEZENET_NETWORK.canonical(name) for name in names)

    def __call__(self, image, layers=None, lean_gradient=False):
        """Runs the network on ``image``; see the class docstring. ``lean_gradient``, ``VGG19``'s, is ignored:
        it serves ``TiledStyleCost``, and SqueezeNet is not computed in tiles."""
        names, canonical = self._wanted(layers)
        needs = "SqueezeNet 1.1's stride-2 convolution and three poolings need"
        image = network_input(image, self.dtype, MIN_IMAGE_SIZE, needs)
        if None in image.shape[1:3]:
            # Sizes known only when the traced function runs: TensorFlow's max pooling of an input smaller
            # than its window crashed the process (SIGFPE), so the size is asserted before any layer runs.
            message = f"SqueezeNet 1.1 needs images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}"
            with tf.control_dependencies(
                [tf.debugging.assert_greater_equal(tf.shape(image)[1:3], MIN_IMAGE_SIZE, message=message)]
            ):
                image = tf.identity(image)
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

    A VALID 3x3 pooling with stride 2 gives ``(n - 1) // 2``, one fewer at even n; PyTorch's extra window there
    starts at n - 2 and holds the last two positions. Padding even axes with one -inf at the end gives exactly
    that window (-inf is never a window's maximum, and receives no gradient).
    """
    rows, columns = _even(x, 1), _even(x, 2)
    if not (isinstance(rows, int) and isinstance(columns, int) and rows == columns == 0):
        x = tf.pad(x, [[0, 0], [0, rows], [0, columns], [0, 0]], constant_values=float("-inf"))
    return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="VALID")

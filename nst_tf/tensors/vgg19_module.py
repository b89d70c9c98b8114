"""VGG-19 as a tf.Module: the course's graph (3x3 convolutions, stride 1, SAME, plus bias and ReLU; 2x2 average
or max pooling after each block), computed from a ``VGGWeights`` already read. It never touches the disk;
``load_vgg_model(path)``, the course's name for the step, reads the file.
"""

from ..plan.locations import find_weights
from types import SimpleNamespace

from .quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from ..plan.networks.vgg19 import GRAPH_LAYERS, MIN_IMAGE_SIZE, VGG19_NETWORK
from ..plan.weights.readers import read_weights
from .network_inputs import floating_dtype, in_dtype, network_input


class VGG19(tf.Module):
    """The course's VGG-19 graph (convolutions and average pooling) as a tf.Module.

    Called on a float batch (1, H, W, 3), H and W at least 32, it returns the course's ``graph`` dict: layer name
    ("input", "conv1_1", ..., "avgpool5") -> activation; ``layers`` computes only up to the deepest asked.
    ``pooling`` "avg" is the course's (2x2, stride 2, SAME: an odd row or column is averaged alone); "max" is
    Keras' (``MaxPooling2D((2, 2))``, VALID: an odd last row or column is dropped, 75 rows become 37); the
    outputs keep the names "avgpool1" ... "avgpool5" either way. The weights are non-trainable ``tf.Variable``s:
    placed on the GPU once, where a captured host constant would be copied at every ``tf.function`` call.
    """

    #: Its description: vocabulary and tile geometry (``nst_tf.plan.networks.vgg19``).
    network = VGG19_NETWORK

    def __init__(self, weights, name="vgg19", dtype=tf.float32, pooling="avg"):
        super().__init__(name=name)
        if not isinstance(getattr(weights, "conv", None), dict):
            raise NSTError(f"weights must be the VGGWeights nst_tf.read_weights returns; got {type(weights).__name__}")
        VGG19_NETWORK.check_pooling(pooling)
        self.pooling = pooling
        self.dtype = floating_dtype(dtype)
        with self.name_scope:
            self._conv = {
                layer: (
                    tf.Variable(in_dtype(kernel, self.dtype), trainable=False, name=f"{layer}_kernel"),
                    tf.Variable(in_dtype(bias, self.dtype), trainable=False, name=f"{layer}_bias"),
                )
                for layer, (kernel, bias) in weights.conv.items()
            }
        self.source = getattr(weights, "source", "<unknown>")  # for messages only

    def astype(self, dtype):
        """This network with its weights cast to ``dtype`` (self if already so), tensor to tensor; building it in
        the dtype it runs in (``load_vgg_model(path, dtype=...)``) keeps only one copy."""
        dtype = floating_dtype(dtype)
        if dtype == self.dtype:
            return self
        conv = {layer: (tf.cast(kernel, dtype), tf.cast(bias, dtype)) for layer, (kernel, bias) in self._conv.items()}
        return VGG19(SimpleNamespace(conv=conv, source=self.source), name=self.name, dtype=dtype, pooling=self.pooling)

    @property
    def layer_names(self):
        """The names this module can return, in computation order."""
        return ("input",) + GRAPH_LAYERS

    def _check_layers(self, layers):
        unknown = [name for name in layers if name not in self.layer_names]
        if unknown:
            raise NSTError(f"unknown VGG-19 layer {unknown[0]!r}; valid names: {', '.join(self.layer_names)}")

    def __call__(self, image, layers=None, lean_gradient=False):
        """Runs the network on ``image``; see the class docstring. ``lean_gradient=True``: the same activations
        and gradients, but a ``tf.GradientTape`` keeps of the forward pass only each convolution's ReLU signs
        as booleans (1 byte per value, not 4) and where each maximum was (``TiledStyleCost`` keeps every tile's
        forward pass between its two passes so)."""
        wanted = self.layer_names if layers is None else tuple(layers)
        self._check_layers(wanted)
        image = network_input(image, self.dtype, MIN_IMAGE_SIZE, "VGG-19's five poolings need")
        outputs = {"input": image}
        remaining = set(wanted) - {"input"}
        conv, pool = _LEAN[self.pooling] if lean_gradient else _LAYERS[self.pooling]
        x = image
        for name in GRAPH_LAYERS:
            if not remaining:
                break
            if name.startswith("conv"):
                kernel, bias = self._conv[name]
                x = conv(x, tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias))
            else:
                x = pool(x)
            outputs[name] = x
            remaining.discard(name)
        return {name: outputs[name] for name in wanted}


def _conv_relu(x, kernel, bias):
    return tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + bias)


def _avg_pool(x):
    return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="SAME")


def _max_pool(x):
    return tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID")


# The lean gradients run the ops TensorFlow's own gradients of these layers run (Conv2DBackpropInput, ReLU's mask,
# AvgPoolGrad, max pooling's argmax), fed from a boolean mask or the argmax instead of the activations. The weights
# are arguments, not captured variables, so the gradient function owes them nothing (constants here: None).


@tf.custom_gradient
def _lean_conv_relu(x, kernel, bias):
    y = _conv_relu(x, kernel, bias)
    positive = y > 0
    shape = tf.shape(x)

    def gradient(upstream):
        # A scalar zero: tf.zeros_like(upstream) would allocate a third activation-sized buffer at the peak
        # of the backward pass.
        upstream = tf.where(positive, upstream, tf.zeros([], upstream.dtype))
        return (
            tf.raw_ops.Conv2DBackpropInput(
                input_sizes=shape, filter=kernel, out_backprop=upstream, strides=[1, 1, 1, 1], padding="SAME"
            ),
            None,
            None,
        )

    return y, gradient


@tf.custom_gradient
def _lean_avg_pool(x):
    shape = tf.shape(x)

    def gradient(upstream):
        return tf.raw_ops.AvgPoolGrad(
            orig_input_shape=shape, grad=upstream, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME"
        )

    return _avg_pool(x), gradient


@tf.custom_gradient
def _lean_max_pool(x):
    y, argmax = tf.nn.max_pool_with_argmax(x, ksize=2, strides=2, padding="VALID", include_batch_in_index=True)
    shape = tf.shape(x, out_type=tf.int64)

    def gradient(upstream):
        flat = tf.scatter_nd(tf.reshape(argmax, [-1, 1]), tf.reshape(upstream, [-1]), [tf.reduce_prod(shape)])
        return tf.reshape(flat, shape)

    return y, gradient


# {pooling: (convolution with ReLU, pooling)}, as computed and with the lean gradient.
_LAYERS = {"avg": (_conv_relu, _avg_pool), "max": (_conv_relu, _max_pool)}
_LEAN = {"avg": (_lean_conv_relu, _lean_avg_pool), "max": (_lean_conv_relu, _lean_max_pool)}


def load_vgg_model(path, dtype=tf.float32, pooling="avg"):
    """The course's name for this step: the ``VGG19`` module of a weights file ``read_weights`` reads
    (MatConvNet's .mat or Keras' .h5, told apart by their first bytes), found as the command finds it: at
    ``path``, else under its name in ``$NST_TF_HOME`` (``plan.locations.find_weights``). ``pooling``: see
    ``VGG19``. Raises ``WeightsFileError`` as ``read_weights`` does.
    """
    VGG19_NETWORK.check_pooling(pooling)  # before reading a file of hundreds of MB
    return VGG19(read_weights(find_weights(path)), dtype=dtype, pooling=pooling)

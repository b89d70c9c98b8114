"""The transformation network of a fast style model, as a Keras 3 model: ``build_transform_net(spec)``.

Layout (Johnson et al. 2016, with ``plan.fast_model.TransformSpec``'s channels c1, c2, c3)::

    pixels/255 -> 9x9 conv c1 -> 3x3 conv c2 stride 2 -> 3x3 conv c3 stride 2 -> blocks x [3x3 conv, 3x3 conv, + x]
    -> up x2, 3x3 conv c2 -> up x2, 3x3 conv c1 -> 9x9 conv 3 -> 127.5 (tanh + 1)

Every convolution but the last is followed by (conditional) instance normalization and ReLU (none after a
residual block's second). Convolutions pad by reflection, so borders carry no dark frame. The input is padded by
reflection to a multiple of 4 and the output cropped back, so any height and width come out as they went in.
"""

from .quiet import tensorflow as tf  # without its start-up lines

keras = tf.keras


class ConditionalInstanceNorm(keras.layers.Layer):
    """Instance normalization with one scale and shift per style (Dumoulin et al. 2017); with one style, Ulyanov
    et al.'s instance normalization with a learned affine map.

    Called on ``[x, style_weights]``: x (B, H, W, C), style_weights (B, styles), each row summing to 1 for a
    blend. Returns ``(x - mean) / sqrt(var + eps) * (w @ gamma) + (w @ beta)``, moments over H and W of each
    image and channel; shapes as x.
    """

    def __init__(self, styles, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.styles, self.epsilon = styles, epsilon
        # A tiled pass (``runs.fast_stylize``) normalizes every tile with the whole image's moments: ``record``
        # True keeps each eager call's (mean, variance) in ``recorded``; ``fixed`` (mean, variance) replaces them.
        self.record, self.recorded, self.fixed = False, None, None

    def build(self, input_shape):
        channels = input_shape[0][-1]
        self.gamma = self.add_weight(name="gamma", shape=(self.styles, channels), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(self.styles, channels), initializer="zeros")

    def call(self, inputs):
        x, weights = inputs
        if self.fixed is None:
            mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
            if self.record:
                self.recorded = (mean, variance)
        else:
            mean, variance = self.fixed
        scale = tf.matmul(weights, self.gamma)[:, None, None, :]
        shift = tf.matmul(weights, self.beta)[:, None, None, :]
        return (x - mean) * tf.math.rsqrt(variance + self.epsilon) * scale + shift

    def get_config(self):
        return {**super().get_config(), "styles": self.styles, "epsilon": self.epsilon}


class ReflectConv(keras.layers.Layer):
    """A ``size`` x ``size`` convolution of ``filters`` with ``stride``, padded by reflection (VALID after a
    ``size // 2`` reflected border): (B, H, W, C) -> (B, ceil(H / stride), ceil(W / stride), filters) for the
    even sides the network gives it. No bias unless ``bias``: an instance normalization follows every convolution
    but the last, and subtracting each channel's mean removes any constant a bias adds (its gradient is rounding
    noise, which Adam would turn into full steps)."""

    def __init__(self, filters, size, stride=1, bias=False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.size, self.stride, self.bias = filters, size, stride, bias
        self.conv = keras.layers.Conv2D(filters, size, strides=stride, padding="valid", use_bias=bias, name="conv")

    def call(self, x):
        pad = self.size // 2
        return self.conv(tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT"))

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "size": self.size,
            "stride": self.stride,
            "bias": self.bias,
        }


def _norm_relu(x, weights, styles, name, relu=True):
    x = ConditionalInstanceNorm(styles, name=f"{name}_norm")([x, weights])
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _upsample(x, weights, spec, filters, name):
    """x doubled in height and width to ``filters`` channels, as ``spec.upsampling`` says."""
    if spec.upsampling == "transposed":
        x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = _UpSampling(2, interpolation="nearest", name=f"{name}_up")(x)
        x = ReflectConv(filters, 3, name=f"{name}_conv")(x)
    return _norm_relu(x, weights, spec.styles, name)


class _PadToFour(keras.layers.Layer):
    """Pads (B, H, W, C) by reflection at the bottom and right to sides that are multiples of 4."""

    def call(self, x):
        shape = tf.shape(x)
        extra_h, extra_w = (-shape[1]) % 4, (-shape[2]) % 4
        return _with_channels(tf.pad(x, [[0, 0], [0, extra_h], [0, extra_w], [0, 0]], mode="REFLECT"), x)


class _UpSampling(keras.layers.UpSampling2D):
    """Keras' ``UpSampling2D`` with its channel count kept in the graph (see ``_with_channels``)."""

    def call(self, x):
        return _with_channels(super().call(x), x)


def _with_channels(x, like):
    """``x`` marked as having ``like``'s static channel count: a padding by computed amounts, or Keras' repeat,
    leaves it unknown in the saved graph, and TensorFlow Lite's converter needs it known for the convolution after
    (else it keeps TensorFlow's Conv2D, which its built-in operations lack). A reshape, which it converts, where
    ``tf.ensure_shape`` it does not."""
    shape = tf.shape(x)
    return tf.reshape(x, [shape[0], shape[1], shape[2], like.shape[-1]])


class _CropTo(keras.layers.Layer):
    """Crops the first input to the height and width of the second."""

    def call(self, inputs):
        x, like = inputs
        shape = tf.shape(like)
        return x[:, : shape[1], : shape[2], :]


def build_transform_net(spec, name="transform_net"):
    """The Keras model of ``spec`` (a ``TransformSpec``).

    Inputs: ``images`` (B, H, W, 3) float32 RGB in [0, 255], any H and W of at least 2 (reflection padding needs
    a side above the pad: images under 8 pixels a side are refused by the callers); ``style_weights``
    (B, spec.styles) float32, one-hot for one style, any convex mix to blend. Output: (B, H, W, 3) float32 in
    [0, 255]. The weights are Keras' initial ones; the output layer is named "stylized".
    """
    images = keras.Input((None, None, 3), name="images", dtype="float32")
    weights = keras.Input((spec.styles,), name="style_weights", dtype="float32")
    c1, c2, c3 = spec.channels
    x = _PadToFour(name="pad")(keras.layers.Rescaling(1 / 255.0, name="scale")(images))
    x = _norm_relu(ReflectConv(c1, 9, name="in_conv")(x), weights, spec.styles, "in")
    x = _norm_relu(ReflectConv(c2, 3, 2, name="down1_conv")(x), weights, spec.styles, "down1")
    x = _norm_relu(ReflectConv(c3, 3, 2, name="down2_conv")(x), weights, spec.styles, "down2")
    for block in range(spec.blocks):
        name = f"res{block + 1}"
        y = _norm_relu(ReflectConv(c3, 3, name=f"{name}a_conv")(x), weights, spec.styles, f"{name}a")
        y = _norm_relu(ReflectConv(c3, 3, name=f"{name}b_conv")(y), weights, spec.styles, f"{name}b", relu=False)
        x = keras.layers.Add(name=f"{name}_add")([x, y])
    x = _upsample(x, weights, spec, c2, "up1")
    x = _upsample(x, weights, spec, c1, "up2")
    x = ReflectConv(3, 9, bias=True, name="out_conv")(x)
    x = keras.layers.Activation("tanh", name="tanh")(x)
    x = keras.layers.Rescaling(127.5, offset=127.5, name="to_pixels")(x)
    out = _CropTo(name="stylized")([x, images])
    return keras.Model([images, weights], out, name=name)


def style_weights_for(spec, batch, weights=None):
    """A (batch, spec.styles) float32 tensor of style weights: ``weights`` (a sequence of ``spec.styles``
    numbers, already checked) on every row, or the first style's one-hot row."""
    row = [1.0] + [0.0] * (spec.styles - 1) if weights is None else [float(w) for w in weights]
    return tf.tile(tf.constant([row], tf.float32), [batch, 1])


def stylize_pixels(net, spec, images, weights=None):
    """``net`` (from ``build_transform_net(spec)``) on ``images`` (B, H, W, 3) float32 in [0, 255]; the
    stylized batch, same shape, float32 in [0, 255]."""
    images = tf.convert_to_tensor(images, tf.float32)
    return net([images, style_weights_for(spec, tf.shape(images)[0], weights)], training=False)

"""Stanford CS231n's style-transfer functions (assignment 3), as the assignment names them, in TensorFlow.

The graded ``content_loss``, ``gram_matrix``, ``style_loss`` and ``tv_loss`` and the helpers ``preprocess``,
``deprocess``, ``extract_features`` and ``rel_error``: tensors in and out (also in ``tf.function``), in their
inputs' dtype; wrong shapes, dtypes and types raise ``NSTError``. Activations are NHWC (the PyTorch edition's
NCHW; only ``gram_matrix`` cares). The network is SqueezeNet 1.1: the PyTorch edition indexes torchvision's
``features`` 0 ... 12 (content layer 3, style layers (1, 4, 6, 7)); the TensorFlow edition numbers them one lower
(``nst_tf.plan.networks.squeezenet`` names them). The Coursera ``costs.gram_matrix`` takes an unrolled matrix.
"""

import numbers

from .quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from .costs import as_tensor, check_same, shape_text
from .guided import guided_gram_matrix, guided_style_loss  # noqa: F401 (styles by region, in CS231n's forms)

#: The largest size ``preprocess`` takes: TensorFlow sizes images in 32-bit integers, and the longer side
#: grows with the aspect ratio.
MAX_SIZE = 2**15

#: torchvision's ImageNet normalization, as CS231n's SQUEEZENET_MEAN and SQUEEZENET_STD.
SQUEEZENET_MEAN = (0.485, 0.456, 0.406)
SQUEEZENET_STD = (0.229, 0.224, 0.225)


def _floating(x, name, rank=None, layout=None):
    """``x`` as a floating tensor, of static rank ``rank`` when given (``layout`` names its axes)."""
    x = as_tensor(x, name)
    if not x.dtype.is_floating:
        raise NSTError(f"{name} must be a floating-point tensor; got dtype {x.dtype.name}")
    if rank is not None and x.shape.rank != rank:
        raise NSTError(f"{name} must have shape {layout}; got {shape_text(x)}")
    return x


def _weight(weight, dtype, name):
    """A scalar weight (a real number or a scalar tensor) as a ``dtype`` tensor."""
    if isinstance(weight, numbers.Real) and not isinstance(weight, bool):
        try:
            return tf.constant(weight, dtype)
        except (TypeError, ValueError, OverflowError):  # 10**400: no float holds it
            raise NSTError(f"{name} must be a number a float holds; got {weight!r:.80}") from None
    try:
        tensor = tf.convert_to_tensor(weight)
    except (TypeError, ValueError):
        tensor = None
    if tensor is None or tensor.shape.rank != 0 or not (tensor.dtype.is_floating or tensor.dtype.is_integer):
        raise NSTError(f"{name} must be a number or a scalar tensor; got {weight!r:.80}")
    return tf.cast(tensor, dtype)


def _sequence(value, name):
    if not isinstance(value, (list, tuple)):
        raise NSTError(f"{name} must be a list or tuple; got {type(value).__name__}")
    return list(value)


def content_loss(content_weight, content_current, content_original):
    """Content loss ``content_weight * sum((content_current - content_original)**2)``, a scalar tensor in the
    features' dtype (not divided by the layer's size, unlike the Coursera cost), of features (1, H_l, W_l, C_l).
    ``NSTError`` for features not floating of rank 4 or differing in shape or dtype, or a weight not a number.
    """
    current = _floating(content_current, "content_current", 4, "(1, H_l, W_l, C_l)")
    original = _floating(content_original, "content_original", 4, "(1, H_l, W_l, C_l)")
    check_same(current, original, "content_current", "content_original")
    weight = _weight(content_weight, current.dtype, "content_weight")
    return weight * tf.reduce_sum(tf.square(current - original))


def gram_matrix(features, normalize=True):
    """Gram matrices (N, C, C) of NHWC features (N, H, W, C): ``G[n, c, d] = sum_{h, w} F[n, h, w, c] F[n, h, w, d]``,
    divided by ``H * W * C`` when ``normalize`` (the PyTorch edition takes NCHW; the TensorFlow edition returns
    (C, C)). ``NSTError`` unless ``features`` is floating of rank 4 and ``normalize`` a bool.
    """
    features = _floating(features, "features", 4, "(N, H, W, C)")
    if not isinstance(normalize, bool):
        raise NSTError(f"normalize must be True or False; got {normalize!r:.80}")
    shape = tf.shape(features)
    flat = tf.reshape(features, tf.stack([shape[0], shape[1] * shape[2], shape[3]]))
    gram = tf.matmul(flat, flat, transpose_a=True)
    if normalize:
        # The size is converted before multiplying: H * W * C overflows int32 for large activations.
        size = tf.cast(shape[1:], features.dtype)
        gram = gram / (size[0] * size[1] * size[2])
    return gram


def _feature(feats, key, position):
    """``feats[key]``: a list by integer index, a dict by key (an integer also as its string, "3")."""
    where = f"style_layers[{position}]"
    if isinstance(feats, dict):
        if not isinstance(key, (str, numbers.Integral)):
            raise NSTError(f"{where} must be a layer name or index; got {key!r:.40}")
        if key in feats:
            return feats[key]
        if isinstance(key, numbers.Integral) and not isinstance(key, bool) and str(key) in feats:
            return feats[str(key)]
        raise NSTError(f"{where} = {key!r:.40}: feats has no such layer (it holds {', '.join(map(str, feats))})")
    if isinstance(key, bool) or not isinstance(key, numbers.Integral) or not 0 <= key < len(feats):
        raise NSTError(f"{where} must be an index into feats' {len(feats)} activations; got {key!r:.40}")
    return feats[key]


def style_loss(feats, style_layers, style_targets, style_weights):
    """Style loss ``sum_i style_weights[i] * sum((G_i - style_targets[i])**2)``, a scalar tensor in the features'
    dtype, with ``G_i = gram_matrix(feats[style_layers[i]])`` (normalized).

    ``feats``: a list of (1, H_l, W_l, C_l) activations by layer (``extract_features``), or a dict (an integer
    key also finds "3"); ``style_layers``: e.g. [1, 4, 6, 7] (the PyTorch edition's; the TensorFlow edition's
    [0, 3, 5, 6] index its shorter list); ``style_targets``: the style's Gram matrices (1, C_l, C_l);
    ``style_weights``: numbers or scalar tensors. ``NSTError`` for other types, lists of unequal or no length,
    a layer not in ``feats``, a target of another shape or dtype, a weight not a number.
    """
    if not isinstance(feats, (list, tuple, dict)):
        raise NSTError(f"feats must be a list or dict of activations; got {type(feats).__name__}")
    layers = _sequence(style_layers, "style_layers")
    targets = _sequence(style_targets, "style_targets")
    weights = _sequence(style_weights, "style_weights")
    if not layers:
        raise NSTError("style_layers: give at least one layer")
    if not len(layers) == len(targets) == len(weights):
        raise NSTError(
            f"style_layers, style_targets and style_weights must have one entry per layer; got "
            f"{len(layers)}, {len(targets)} and {len(weights)}"
        )
    loss = None
    for i, (key, target, weight) in enumerate(zip(layers, targets, weights)):
        gram = gram_matrix(_feature(feats, key, i))
        target = _floating(target, f"style_targets[{i}]")
        check_same(gram, target, f"the Gram matrix of layer {key!r:.40}", f"style_targets[{i}]")
        term = _weight(weight, gram.dtype, f"style_weights[{i}]") * tf.reduce_sum(tf.square(gram - target))
        loss = term if loss is None else loss + term
    return loss


def tv_loss(img, tv_weight):
    """Total-variation loss ``tv_weight * (sum dh**2 + sum dw**2)`` over all channels of ``img`` (1, H, W, 3), a
    scalar tensor in its dtype; ``NSTError`` unless ``img`` is floating of rank 4 and ``tv_weight`` a number."""
    img = _floating(img, "img", 4, "(1, H, W, 3)")
    weight = _weight(tv_weight, img.dtype, "tv_weight")
    dh = img[:, 1:, :, :] - img[:, :-1, :, :]
    dw = img[:, :, 1:, :] - img[:, :, :-1, :]
    return weight * (tf.reduce_sum(tf.square(dh)) + tf.reduce_sum(tf.square(dw)))


def _normalizer(dtype):
    shape = (1, 1, 1, 3)
    return tf.reshape(tf.constant(SQUEEZENET_MEAN, dtype), shape), tf.reshape(tf.constant(SQUEEZENET_STD, dtype), shape)


def _resized_shape(height, width, size):
    """torchvision's ``Resize(size)``: the shorter side becomes ``size``, the longer ``int(size * long / short)``."""
    height, width = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
    size = tf.constant(size, tf.int64)
    short = tf.minimum(height, width)
    new_height = tf.where(height == short, size, size * height // short)
    new_width = tf.where(height == short, size * width // short, size)
    return tf.cast(new_height, tf.int32), tf.cast(new_width, tf.int32)


def preprocess(image, size):
    """CS231n's ``preprocess``: uint8 RGB ``image`` (H, W, 3) -> float32 (1, h, w, 3), the shorter side resized
    to ``size`` as torchvision's ``Resize(size)`` (bilinear, antialiased, rounded to 8 bits; skipped at that
    size), then ``(pixels / 255 - SQUEEZENET_MEAN) / SQUEEZENET_STD``. ``NSTError`` unless ``image`` is uint8
    (H, W, 3) and ``size`` a whole number from 1 to ``MAX_SIZE``.
    """
    image = as_tensor(image, "image")
    if image.dtype != tf.uint8:
        raise NSTError(f"image must hold uint8 pixels; got dtype {image.dtype.name}")
    if image.shape.rank != 3 or image.shape[-1] not in (None, 3):
        raise NSTError(f"image must have shape (H, W, 3); got {shape_text(image)}")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or not 1 <= size <= MAX_SIZE:
        raise NSTError(f"size must be a whole number of pixels from 1 to {MAX_SIZE}; got {size!r:.80}")
    if 0 in image.shape[:2]:
        raise NSTError(f"image holds no pixels; got shape {shape_text(image)}")
    pixels = tf.cast(image, tf.float32)
    shape = tf.shape(image)
    new_height, new_width = _resized_shape(shape[0], shape[1], int(size))

    def resized():
        scaled = tf.image.resize(pixels, tf.stack([new_height, new_width]), method="bilinear", antialias=True)
        return tf.round(tf.clip_by_value(scaled, 0.0, 255.0))

    same = tf.logical_and(tf.equal(new_height, shape[0]), tf.equal(new_width, shape[1]))
    pixels = tf.cond(same, lambda: pixels, resized)
    mean, std = _normalizer(tf.float32)
    return (pixels[None] / 255.0 - mean) / std


def deprocess(img, should_rescale=True):
    """CS231n's ``deprocess``: a normalized image (1, H, W, 3) or (H, W, 3) back to uint8 pixels (H, W, 3).

    ``img * SQUEEZENET_STD + SQUEEZENET_MEAN``, with ``should_rescale`` rescaled to fill [0, 1] (a constant image
    becomes 0, as the PyTorch edition does), clipped, times 255, rounded (the assignment truncates), so that
    ``deprocess(preprocess(x, s), False)`` is ``x`` at size ``s``. ``NSTError`` for another shape or dtype, or a
    ``should_rescale`` not a bool.
    """
    img = _floating(img, "img")
    if img.shape.rank == 3:
        img = img[None]
    if img.shape.rank != 4 or img.shape[0] not in (None, 1) or img.shape[-1] not in (None, 3):
        raise NSTError(f"img must have shape (1, H, W, 3) or (H, W, 3); got {shape_text(img)}")
    if not isinstance(should_rescale, bool):
        raise NSTError(f"should_rescale must be True or False; got {should_rescale!r:.80}")
    mean, std = _normalizer(img.dtype)
    img = img[0] * std[0] + mean[0]
    if should_rescale:
        low, high = tf.reduce_min(img), tf.reduce_max(img)
        img = tf.math.divide_no_nan(img - low, high - low)
    return tf.cast(tf.round(tf.clip_by_value(img, 0.0, 1.0) * 255.0), tf.uint8)


def extract_features(x, cnn):
    """CS231n's ``extract_features``: every layer's activation of ``x`` (N, H, W, 3), in ``cnn.network.layers``'
    order (for SqueezeNet, torchvision's features.0 ... 12); ``NSTError`` for a ``cnn`` not an nst_tf network."""
    network = getattr(cnn, "network", None)
    if not callable(cnn) or network is None:
        raise NSTError(f"cnn must be an nst_tf network module (SqueezeNet); got {type(cnn).__name__}")
    outputs = cnn(x, layers=list(network.layers))
    return [outputs[name] for name in network.layers]


def rel_error(x, y):
    """CS231n's relative error ``max(|x - y| / max(1e-8, |x| + |y|))``, elementwise, a float64 scalar tensor, for
    real tensors or values ``x`` and ``y`` of broadcastable shapes (``NSTError`` otherwise)."""
    x, y = as_tensor(x, "x"), as_tensor(y, "y")
    for name, value in (("x", x), ("y", y)):
        if not (value.dtype.is_floating or value.dtype.is_integer):
            raise NSTError(f"{name} must hold real numbers; got dtype {value.dtype.name}")
    try:
        tf.broadcast_static_shape(x.shape, y.shape)
    except ValueError:
        raise NSTError(f"x and y must have broadcastable shapes; got {shape_text(x)} and {shape_text(y)}") from None
    x, y = tf.cast(x, tf.float64), tf.cast(y, tf.float64)
    return tf.reduce_max(tf.abs(x - y) / tf.maximum(tf.constant(1e-8, tf.float64), tf.abs(x) + tf.abs(y)))

"""Bilinear warping of images by a dense flow, in TensorFlow: a few gathers (core TensorFlow has no dense warp
since TensorFlow Addons' ``dense_image_warp`` went unmaintained).
"""

from .quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError


def warp(image, flow):
    """``image`` sampled at each pixel displaced by ``flow``: ``out[p] = image[p + flow[p]]``, bilinear.

    ``image``: (B, H, W, C), floating; ``flow``: (B, H, W, 2), each output pixel's source displacement
    ``(dx, dy)`` (OpenCV's order): ``warp(frame t-1, flow from t to t-1)`` brings frame t-1 onto frame t.
    Returns (B, H, W, C) in the image's dtype. A source outside takes the nearest border pixel; a NaN
    displacement counts as none. Positions are float32 whatever the dtype (bfloat16 cannot count past 256).
    ``NSTError`` for an image not floating, or shapes that do not match or are not of rank 4.
    """
    image = tf.convert_to_tensor(image)
    if not image.dtype.is_floating:
        raise NSTError(f"warp needs a floating image; got {image.dtype.name} (convert it, e.g. with tf.cast)")
    flow = tf.cast(tf.convert_to_tensor(flow), tf.float32)
    if image.shape.rank != 4 or flow.shape.rank != 4 or flow.shape[-1] != 2:
        raise NSTError(f"warp needs an image (B, H, W, C) and a flow (B, H, W, 2); got {image.shape} and {flow.shape}")
    if not image.shape[:3].is_compatible_with(flow.shape[:3]):
        raise NSTError(f"the flow's shape {flow.shape} does not match the image's {image.shape}")
    # Positions are computed in floating point and cast to int32 only to index: oneDNN's int32
    # arithmetic logs an error line on CPUs without AVX-512 support for it.
    flow = tf.where(tf.math.is_nan(flow), tf.zeros_like(flow), flow)
    shape = tf.shape(image)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    rows, cols = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
    y = tf.clip_by_value(rows + flow[..., 1], 0.0, height - 1)
    x = tf.clip_by_value(cols + flow[..., 0], 0.0, width - 1)
    y0, x0 = tf.floor(y), tf.floor(x)
    wy, wx = (tf.cast(v, image.dtype)[..., None] for v in (y - y0, x - x0))
    y1, x1 = tf.minimum(y0 + 1, height - 1), tf.minimum(x0 + 1, width - 1)
    batch = tf.zeros_like(y0) + tf.reshape(tf.range(tf.cast(shape[0], tf.float32)), [-1, 1, 1])
    batch, y0, x0, y1, x1 = (tf.cast(v, tf.int32) for v in (batch, y0, x0, y1, x1))

    def at(r, c):
        # gather_nd with batch_dims=1 does int32 arithmetic inside; explicit batch indices do not.
        return tf.gather_nd(image, tf.stack([batch, r, c], axis=-1))

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy

"""Bilinear warping of images by a dense flow, in TensorFlow (tensors in, tensors out).

TensorFlow's core has no dense warp (``tfa.image.dense_image_warp`` went with
TensorFlow Addons, which is no longer maintained), and this one is a few
gathers, so it is written here.
"""

import tensorflow as tf

from ..errors import NSTError


def warp(image, flow):
    """``image`` sampled at each pixel displaced by ``flow``: ``out[p] = image[p + flow[p]]``, bilinear.

    Args:
        image: shape (B, H, W, C), floating.
        flow: shape (B, H, W, 2), the displacement ``(dx, dy)`` in pixels of
            each output pixel's source (columns first, as OpenCV gives
            flow): for the flow from frame t to frame t-1, ``warp(frame t-1,
            flow)`` is frame t-1 brought onto frame t.

    Returns:
        Shape (B, H, W, C), the image's dtype. A source outside the image
        takes the nearest border pixel (the consistency weights mark those
        pixels as not trusted).

    Raises:
        NSTError: the shapes do not match or are not of rank 4.
    """
    image = tf.convert_to_tensor(image)
    flow = tf.cast(tf.convert_to_tensor(flow), image.dtype)
    if image.shape.rank != 4 or flow.shape.rank != 4 or flow.shape[-1] != 2:
        raise NSTError(f"warp needs an image (B, H, W, C) and a flow (B, H, W, 2); got {image.shape} and {flow.shape}")
    if not image.shape[:3].is_compatible_with(flow.shape[:3]):
        raise NSTError(f"the flow's shape {flow.shape} does not match the image's {image.shape}")
    shape = tf.shape(image)
    height, width = shape[1], shape[2]
    rows, cols = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
    y = tf.clip_by_value(tf.cast(rows, image.dtype) + flow[..., 1], 0.0, tf.cast(height - 1, image.dtype))
    x = tf.clip_by_value(tf.cast(cols, image.dtype) + flow[..., 0], 0.0, tf.cast(width - 1, image.dtype))
    y0, x0 = tf.floor(y), tf.floor(x)
    wy, wx = (y - y0)[..., None], (x - x0)[..., None]
    y0, x0 = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    y1, x1 = tf.minimum(y0 + 1, height - 1), tf.minimum(x0 + 1, width - 1)

    def at(r, c):
        return tf.gather_nd(image, tf.stack([r, c], axis=-1), batch_dims=1)

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy

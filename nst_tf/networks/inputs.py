"""What every network module does first with its input: a tensor of its shape, in its dtype (TensorFlow)."""

import tensorflow as tf

from ..errors import NSTError


def network_input(image, dtype, check):
    """``image`` as a tensor, checked by ``check(tensor)`` (the network's shape rules), cast to ``dtype``.

    Raises:
        NSTError: ``image`` is not an array or tensor; or what ``check`` raises.
    """
    try:
        image = tf.convert_to_tensor(image)
    except (TypeError, ValueError):
        raise NSTError(
            f"image must be an array or tensor of shape (1, height, width, 3); got {type(image).__name__}"
        ) from None
    check(image)
    return image if image.dtype == dtype else tf.cast(image, dtype)

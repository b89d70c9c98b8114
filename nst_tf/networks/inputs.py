"""What the network modules share (TensorFlow): their dtype, their weights in it, their input checked and cast."""

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


def floating_dtype(dtype):
    """``dtype`` as a floating-point ``tf.DType``.

    Raises:
        NSTError: ``dtype`` is not a type, or not a floating-point one.
    """
    try:
        dtype = tf.as_dtype(dtype)
    except TypeError:
        raise NSTError(f"dtype must be a floating-point type; got {dtype!r}") from None
    if not dtype.is_floating:
        raise NSTError(f"dtype must be a floating-point type; got {dtype.name}")
    return dtype


def in_dtype(array, dtype):
    """A weights array in ``dtype``: as it is when it already is (one copy into a variable, no temporary)."""
    return array if array.dtype == dtype.as_numpy_dtype else tf.cast(array, dtype)

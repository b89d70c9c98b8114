"""What the network modules share (TensorFlow): their dtype, their weights in it, their input checked and cast."""

import tensorflow as tf

from ..ground.errors import NSTError


def network_input(image, dtype, check):
    """``image`` as a tensor, checked by ``check(tensor)`` (the network's shape rules), cast to ``dtype``.

    ``check`` may return the tensor to go on with (one that asserts sizes
    known only at run time), or None.

    Raises:
        NSTError: ``image`` is not an array or tensor, or holds no image; or what ``check`` raises.
    """
    try:
        image = tf.convert_to_tensor(image)
    except (TypeError, ValueError):
        raise NSTError(
            f"image must be an array or tensor of shape (1, height, width, 3); got {type(image).__name__}"
        ) from None
    if image.shape.rank and image.shape[0] == 0:
        raise NSTError(f"image must hold at least one image; got shape {image.shape}")
    checked = check(image)
    image = image if checked is None else checked
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

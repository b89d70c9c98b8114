"""What the network modules share (TensorFlow): their dtype, their weights in it, their input checked and cast."""

from .quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError


def network_input(image, dtype, min_size, needs):
    """``image`` as a tensor cast to ``dtype``: a batch (N >= 1, height, width, 3) of real numbers whose sides,
    where known, are at least ``min_size`` (``needs`` names what needs that). ``NSTError`` for anything else.
    """
    try:
        image = tf.convert_to_tensor(image)
    except (TypeError, ValueError):
        raise NSTError(
            f"image must be an array or tensor of shape (1, height, width, 3); got {type(image).__name__}"
        ) from None
    shape = image.shape
    if shape.rank and shape[0] == 0:
        raise NSTError(f"image must hold at least one image; got shape {shape}")
    if not (image.dtype.is_floating or image.dtype.is_integer):
        raise NSTError(f"image must hold real numbers; got dtype {image.dtype.name}")
    if shape.rank != 4 or shape[-1] != 3:
        raise NSTError(f"image must have shape (1, height, width, 3); got {shape}")
    if any(d is not None and d < min_size for d in shape[1:3]):
        raise NSTError(f"image is {shape[2]}x{shape[1]} pixels; {needs} at least {min_size}x{min_size}")
    return image if image.dtype == dtype else tf.cast(image, dtype)


def floating_dtype(dtype):
    """``dtype`` as a floating-point ``tf.DType``; ``NSTError`` when it is not a type, or not a floating one."""
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

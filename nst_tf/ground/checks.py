"""Checks and size arithmetic the boundaries share (whole and finite numbers, pixel counts, image
sizes), so that each rule is written once."""

import math
import numbers
import struct

from .errors import NSTError

#: The longest side, in pixels, of any image, tile or margin: TensorFlow takes image sizes as 32-bit
#: integers (``tf.image.resize``), and a larger number is a mistake, not a print.
MAX_SIDE = 2**31 - 1


def check_whole(name, value, least=1, most=MAX_SIDE):
    """``value`` as an int when it is a whole number (not a bool) from ``least`` to ``most``; else ``NSTError``
    naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        what = "a positive whole number" if least == 1 else f"a whole number of at least {least}"
        raise NSTError(f"{name} must be {what}; got {short_repr(value)}")
    if value > most:
        raise NSTError(f"{name} must be at most {most}; got {short_repr(value)}")
    return int(value)


def check_finite(name, value, float32=True):
    """``value`` as a float (as float32 rounds it, unless ``float32=False``) when it is a real number held
    finitely in that type; else ``NSTError`` naming ``name`` (bools are refused).
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(value, numbers.Real):
        raise NSTError(f"{name} must be a finite number; got {short_repr(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int of hundreds of digits
        number = math.inf
    else:
        if not math.isfinite(number):
            raise NSTError(f"{name} must be a finite number; got {short_repr(value)}")
    if float32 and math.isfinite(number):
        number = struct.unpack("f", struct.pack("f", number))[0]  # inf beyond float32's range
    if not math.isfinite(number):
        kind = "float32's range (magnitudes up to about 3.4e+38)" if float32 else "float64's range"
        raise NSTError(f"{name} must lie within {kind}; got {short_repr(value)}")
    return number


def check_choice(name, value, choices):
    """Raises ``NSTError`` naming ``name`` and ``choices`` unless ``value`` is one of them (None by identity)."""
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        shown = ", ".join("None" if c is None else c for c in choices)
        raise NSTError(f"{name} must be one of {shown}; got {short_repr(value)}")


def short_repr(value):
    """``repr(value)`` for a message, shortened when long (a number of 400 digits)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        return f"a whole number of {value.bit_length()} bits"
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def whole_pixels(name, value):
    """``value`` as an int, or ``NSTError`` naming it (NumPy integers accepted, bools refused)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(value, numbers.Integral):
        raise NSTError(f"{name} must be a whole number of pixels; got {value!r}")
    return int(value)


def check_pixels(name, value):
    """``value`` as an int when a positive whole number of pixels (as ``whole_pixels``); else ``NSTError``."""
    value = whole_pixels(name, value)
    if value < 1:
        raise NSTError(f"{name} must be a positive number of pixels; got {value!r}")
    return value


def size_for(height, width, max_size):
    """(height, width) with the same aspect ratio and the longer side ``max_size``; ``NSTError`` unless all three
    are positive whole numbers."""
    height, width = check_pixels("height", height), check_pixels("width", width)
    max_size = check_pixels("max_size", max_size)
    scale = max_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def shorter_side_size(height, width, side):
    """(height, width) with the same aspect ratio and the shorter side ``side``, as torchvision's ``Resize(side)``
    (the longer side ``int(side * longer / shorter)``, truncated); ``NSTError`` unless all three are positive whole
    numbers, or for a longer side over ``MAX_SIDE``."""
    height, width = check_pixels("height", height), check_pixels("width", width)
    side = check_pixels("shorter side", side)
    longer = int(side * max(height, width) / min(height, width))  # torchvision's float arithmetic
    if longer > MAX_SIDE:
        raise NSTError(f"a shorter side of {side} makes a {width}x{height} image {longer} pixels long")
    return (side, longer) if height <= width else (longer, side)

"""The project's one error type, its few specialisations, and how messages show file names."""

import os


class NSTError(ValueError):
    """Base class of every error nst_tf raises on purpose (a ValueError: nearly every one is bad input)."""


class WeightsFileError(NSTError):
    """The VGG-19 .mat file is missing, unreadable or not the expected network."""


class ImageError(NSTError):
    """An image file cannot be read or used."""


class NonFiniteCostError(NSTError):
    """The total cost became NaN or infinite at ``iteration``; ``last_finite_image``: the last generated
    image (normalized, (1, H, W, 3)) whose cost was finite."""

    def __init__(self, message, *, iteration, last_finite_image):
        super().__init__(message)
        self.iteration = iteration
        self.last_finite_image = last_finite_image


def quoted(path):
    """``path`` (bytes shown as text) for a message: as it is when printable without outer spaces, else Python's
    repr, so newlines, escape codes or an empty name can neither break the line nor reach the terminal raw."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if text and text.isprintable() and text == text.strip():
        return text
    return repr(text)


def last_line(error, limit=200):
    """The last non-blank line of ``error``'s text (at most ``limit`` characters), or its type's name: other
    libraries' errors (ffmpeg's, Ray's tracebacks) end with what went wrong."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:limit] if lines else type(error).__name__

"""The project's one error type, its few specialisations, and how messages show file names."""

import os


class NSTError(ValueError):
    """Base class of every error nst_tf raises on purpose.

    It derives from ValueError because nearly every failure is bad input
    (a shape, a file, an option); callers can catch ``NSTError`` alone.
    """


class WeightsFileError(NSTError):
    """The VGG-19 .mat file is missing, unreadable or not the expected network."""


class ImageError(NSTError):
    """An image file cannot be read or used."""


class NonFiniteCostError(NSTError):
    """The total cost became NaN or infinite during optimization.

    ``last_finite_image`` holds the last generated image (normalized, shape
    (1, H, W, 3)) whose cost was finite, and ``iteration`` the iteration at
    which the non-finite cost appeared.
    """

    def __init__(self, message, *, iteration, last_finite_image):
        super().__init__(message)
        self.iteration = iteration
        self.last_finite_image = last_finite_image


def quoted(path):
    """``path`` for a message: as it is when it reads safely, else as Python's repr of the text.

    A path of printable characters without leading or trailing spaces is
    shown unchanged, so ordinary messages read naturally (``photo.jpg: file
    is empty``). Anything else (newlines, terminal escape codes, other
    invisible characters, undecodable bytes, an empty name) is shown quoted
    with backslash escapes, so it can neither break the one-line message nor
    reach the terminal raw. Bytes paths are shown as text, not as ``b'...'``.
    """
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if text and text.isprintable() and text == text.strip():
        return text
    return repr(text)


def last_line(error, limit=200):
    """The last non-blank line of ``error``'s text (at most ``limit`` characters), or its type's name.

    Other libraries' errors (ffmpeg's output, Ray's tracebacks) end with what went wrong; their
    earlier lines would break a one-line message.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:limit] if lines else type(error).__name__

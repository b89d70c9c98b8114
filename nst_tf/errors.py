"""The project's one error type and its few specialisations."""


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

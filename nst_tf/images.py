"""Reading, resizing, normalizing and saving images, and the noise start.

These are the course helper's image functions plus a reader that accepts
the images people actually have (grayscale, RGBA, palette, 16-bit,
EXIF-rotated photos of any size) and turns them into the course's 8-bit RGB.
They work on NumPy arrays; nothing here runs inside the optimization.
"""

from dataclasses import dataclass, field
import os
import tempfile

import imageio.v3 as iio
import numpy as np
import PIL.Image

from .config import CONFIG, NORMALIZATIONS
from .errors import ImageError, NSTError
from .layers import MIN_IMAGE_SIZE


def _to_uint8(pixels):
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == bool:
        return pixels.astype(np.uint8) * 255
    if pixels.dtype.kind in "ui":
        # 16-bit images (and Pillow's 32-bit "I" mode holding 16-bit data):
        # 65535 / 257 == 255 maps the full range onto 8 bits.
        return np.round(np.clip(pixels, 0, 65535) / 257.0).astype(np.uint8)
    if pixels.dtype.kind == "f":
        scale = 255.0 if np.nanmax(pixels) <= 1.0 else 1.0
        return np.round(np.clip(np.nan_to_num(pixels) * scale, 0, 255)).astype(np.uint8)
    raise ImageError(f"unsupported pixel type {pixels.dtype}")


def _over_white(colour, alpha):
    alpha = alpha.astype(np.float32) / 255.0
    blended = colour.astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.round(blended).astype(np.uint8)


def _to_rgb(pixels):
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"has pixel array of shape {pixels.shape}; expected height x width x 1-4 channels")
    pixels = _to_uint8(pixels)
    channels = pixels.shape[2]
    if channels in (2, 4):
        # Transparent pixels are shown over white, as image viewers do.
        pixels = _over_white(pixels[:, :, :-1], pixels[:, :, -1:])
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def read_image(path):
    """Reads an image file as 8-bit RGB, shape (height, width, 3), upright.

    Grayscale is repeated over three channels, transparency is composited
    over white, palette images are expanded, 16-bit samples are scaled to
    8 bits, and an EXIF orientation tag is applied. Raises ``ImageError``
    for a missing, empty or unreadable file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageError(f"{path}: image not found")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not an image")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{path}: file is empty")
    try:
        pixels = iio.imread(path, plugin="pillow", index=0, rotate=True)
    except Exception as error:  # Pillow raises many types for files it cannot parse
        raise ImageError(f"{path}: not a readable image ({type(error).__name__})") from error
    try:
        return _to_rgb(np.asarray(pixels))
    except ImageError as error:
        raise ImageError(f"{path}: {error}") from None


def fit_image(image, width, height, fit="crop"):
    """Brings an (h, w, 3) uint8 image to exactly (height, width, 3).

    With ``fit="crop"`` the aspect ratio is kept: the largest centred region
    with the target's aspect ratio is cut out, then scaled. With
    ``fit="stretch"`` the whole image is scaled to the target size (the
    second edition's ``Image.resize``). Scaling uses Pillow's bilinear filter,
    antialiased when shrinking. An image already of the target size is
    returned unchanged.
    """
    h, w = image.shape[:2]
    for what, (x, y) in (("image", (w, h)), ("target size", (width, height))):
        if min(x, y) < MIN_IMAGE_SIZE:
            raise ImageError(
                f"{what} is {x}x{y} pixels; VGG-19's five poolings need at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}"
            )
    if fit not in FITS:
        raise NSTError(f"fit must be one of {', '.join(FITS)}; got {fit!r}")
    if (h, w) == (height, width):
        return image
    if fit == "crop":
        image = _centre_crop(image, width, height)
    # Pillow's bilinear filter widens with the scale factor when shrinking,
    # so downscaling is antialiased (as tf.image.resize(..., antialias=True)).
    resized = PIL.Image.fromarray(np.ascontiguousarray(image)).resize((width, height), PIL.Image.Resampling.BILINEAR)
    return np.asarray(resized)


def _centre_crop(image, width, height):
    """The largest centred region of ``image`` with the aspect ratio width:height."""
    h, w = image.shape[:2]
    if w * height > h * width:
        crop = round(h * width / height)
        left = (w - crop) // 2
        image = image[:, left : left + crop]
    else:
        crop = round(w * height / width)
        top = (h - crop) // 2
        image = image[top : top + crop]
    if min(image.shape[:2]) < 1:
        raise ImageError(f"a {w}x{h} image cannot be cropped to {width}x{height}: that aspect ratio leaves no pixels")
    return image


#: How ``fit_image`` brings an image to another aspect ratio.
FITS = ("crop", "stretch")


def size_for(height, width, max_size):
    """(height, width) with the same aspect ratio and the longer side ``max_size``."""
    scale = max_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def load_image(path, width=CONFIG.IMAGE_WIDTH, height=CONFIG.IMAGE_HEIGHT, max_size=None, fit="crop"):
    """``read_image`` then ``fit_image``: 8-bit RGB of shape (height, width, 3).

    With ``max_size``, ``width`` and ``height`` are ignored: the image keeps
    its own aspect ratio and is scaled so that its longer side is
    ``max_size`` pixels.
    """
    image = read_image(path)
    if max_size is not None:
        height, width = size_for(*image.shape[:2], max_size)
    try:
        return fit_image(image, width, height, fit)
    except ImageError as error:
        raise ImageError(f"{os.fspath(path)}: {error}") from None


def reshape_and_normalize_image(image, normalization="means"):
    """Adds the batch axis and normalizes: (1, h, w, 3).

    ``"means"`` (the course's first edition) subtracts ``CONFIG.MEANS``; the
    course subtracts its float64 MEANS from the uint8 image, so the result is
    float64 (exact) until it enters the network. ``"unit"`` (the second
    edition) divides by 255, as ``tf.image.convert_image_dtype`` does, in
    float32.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"image must have shape (height, width, 3); got {image.shape}")
    batch = np.reshape(image, (1,) + image.shape)
    if _normalization(normalization) == "unit":
        return batch.astype(np.float32) / np.float32(255)
    return batch - CONFIG.MEANS


def pixel_range(normalization="means"):
    """(lowest, highest) normalized pixel values, each of shape (1, 1, 1, 3)."""
    if _normalization(normalization) == "unit":
        return np.zeros((1, 1, 1, 3)), np.ones((1, 1, 1, 3))
    return 0 - CONFIG.MEANS, 255 - CONFIG.MEANS


def _normalization(normalization):
    if normalization not in NORMALIZATIONS:
        raise NSTError(f"normalization must be one of {', '.join(NORMALIZATIONS)}; got {normalization!r}")
    return normalization


def checked_float32_batch(image, name):
    """``image`` checked to be a finite (1, height, width, 3) image and cast to float32; NSTError naming it."""
    try:
        image = np.asarray(image, dtype=np.float32)
    except (TypeError, ValueError):
        raise NSTError(f"{name} must be a normalized image of shape (1, height, width, 3); got {type(image).__name__}") from None
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[3] != 3:
        raise NSTError(f"{name} must be a normalized image of shape (1, height, width, 3); got {image.shape}")
    if not np.isfinite(image).all():
        raise NSTError(f"{name} holds NaN or infinite values")
    return image


def generate_noise_image(content_image, noise_ratio=CONFIG.NOISE_RATIO, seed=None):
    """The course's starting image: uniform noise blended with the content.

    ``noise * noise_ratio + content_image * (1 - noise_ratio)`` with float32
    noise drawn uniformly from [-20, 20) in the content image's shape
    (normalized, (1, h, w, 3)). Without ``seed`` the noise comes from NumPy's
    global generator, as in the course, so ``np.random.seed`` makes it
    repeatable; with ``seed``, from ``np.random.default_rng(seed)``. The
    dtypes follow the course too: float64 for a float64 content image.
    """
    content_image = np.asarray(content_image)
    if seed is None:
        noise = np.random.uniform(-20, 20, content_image.shape).astype(np.float32)
    else:
        noise = np.random.default_rng(seed).uniform(-20, 20, content_image.shape).astype(np.float32)
    return noise * noise_ratio + content_image * (1 - noise_ratio)


def start_image(content_image, config):
    """The initial image ``config.start`` names, for a normalized content image.

    ``"course"``: ``generate_noise_image(content, config.noise_ratio, config.seed)``.
    ``"additive"``: the content plus float32 noise uniform in
    [-noise_ratio, noise_ratio), clipped to the pixel range of
    ``config.normalization`` (the second edition's start with 0.25).
    """
    if config.start == "course":
        return generate_noise_image(content_image, config.noise_ratio, config.seed)
    content_image = np.asarray(content_image)
    ratio = config.noise_ratio
    draw = np.random.uniform if config.seed is None else np.random.default_rng(config.seed).uniform
    noise = draw(-ratio, ratio, content_image.shape).astype(np.float32)
    return np.clip(content_image + noise, *pixel_range(config.normalization))


def deprocess_image(image, normalization="means"):
    """Inverse of ``reshape_and_normalize_image``: uint8 (h, w, 3).

    ``"means"``: adds ``CONFIG.MEANS``, clips to 0..255 and truncates to
    uint8, as the course's ``save_image`` does. ``"unit"``: multiplies by 255
    and truncates, as the second edition's ``tensor_to_image`` does (after
    clipping to 0..255, which that edition's clipped images never need).
    """
    image = np.asarray(image)
    if _normalization(normalization) == "unit":
        return np.clip(image[0] * 255, 0, 255).astype(np.uint8)
    image = image + CONFIG.MEANS
    return np.clip(image[0], 0, 255).astype(np.uint8)


def save_image(path, image, normalization="means"):
    """Writes a normalized (1, h, w, 3) image; the format follows the extension.

    The folder is created. The file is written under a temporary name and
    then renamed, so an interrupted save never leaves a truncated image.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    extension = os.path.splitext(path)[1]
    pixels = deprocess_image(image, normalization)
    handle, temporary = tempfile.mkstemp(prefix=".nst_tf-", suffix=extension, dir=folder)
    os.close(handle)
    try:
        iio.imwrite(temporary, pixels, extension=extension)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


@dataclass(frozen=True)
class ImageSize:
    """The size the content and style images are brought to.

    ``width`` x ``height`` (both images centre-cropped to that aspect ratio
    and scaled, or with ``fit="stretch"`` scaled whole), or, with
    ``max_size``, the content image's own aspect ratio with that longer side. Each field's ``metadata["help"]`` is its
    command-line help.
    """

    width: int = field(
        default=CONFIG.IMAGE_WIDTH, metadata={"help": "width of the generated image in pixels", "metavar": "N"}
    )
    height: int = field(
        default=CONFIG.IMAGE_HEIGHT,
        metadata={"help": "height of the generated image in pixels", "metavar": "N"},
    )
    max_size: int | None = field(
        default=None,
        metadata={"help": "keep the content image's aspect ratio with this longer side, instead of "
                  "--width x --height; the style images are brought to the same size", "metavar": "N", "type": int},
    )
    fit: str = field(
        default="crop",
        metadata={"help": "crop: centre-crop to width:height, then scale (nothing is stretched); stretch: scale "
                  "the whole image to width x height (the second edition)", "choices": FITS},
    )

    def __post_init__(self):
        if self.fit not in FITS:
            raise NSTError(f"fit must be one of {', '.join(FITS)}; got {self.fit!r}")
        for name in ("width", "height") + (("max_size",) if self.max_size is not None else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < MIN_IMAGE_SIZE:
                raise NSTError(f"{name} must be a whole number of at least {MIN_IMAGE_SIZE}; got {value!r}")

    def of(self, shape):
        """(height, width) for a content image whose (height, width) is ``shape``."""
        if self.max_size is None:
            return self.height, self.width
        return size_for(shape[0], shape[1], self.max_size)

"""Reading, resizing, normalizing and saving images, and the noise start.

These are the course helper's image functions plus a reader that accepts
the images people actually have (grayscale, RGBA, palette, CMYK, YCbCr,
LAB, 16-bit, float, EXIF-rotated photos of any size) and turns them into the
course's 8-bit RGB. They work on NumPy arrays; nothing here runs inside the
optimization. Every failure is an ``ImageError`` or ``NSTError`` naming the
file or argument; a file name that holds control characters is quoted.
"""

import contextlib
import errno
import io
import numbers
import os
import re
import secrets
import stat
import warnings
from dataclasses import dataclass, field

import numpy as np
import PIL.Image

from ..ground.checks import check_pixels, shorter_side_size, size_for, whole_pixels
from ..ground.errors import ImageError, NSTError, quoted
from ..plan.clip import is_video_file
from ..plan.config import CONFIG, NORMALIZATIONS, check_seed
from ..plan import large_options
from ..plan.networks.vgg19 import MIN_IMAGE_SIZE

#: Reduced decoding keeps an image at least this many times larger, each
#: way, than what fitting it keeps, so the final antialiased scaling still
#: does the filtering (as Pillow's ``thumbnail(reducing_gap=2.0)``).
REDUCING_GAP = 2

#: torchvision's ImageNet normalization, "imagenet" (SqueezeNet's, as CS231n feeds it): RGB / 255, minus
#: IMAGENET_MEAN, over IMAGENET_STD, in float32 as ``ToTensor`` and ``Normalize`` compute it.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape((1, 1, 1, 3))
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32).reshape((1, 1, 1, 3))
IMAGENET_MEAN.setflags(write=False)
IMAGENET_STD.setflags(write=False)

#: The normalizations these functions carry out: the config's (``NORMALIZATIONS``) and "imagenet".
IMAGE_NORMALIZATIONS = tuple(dict.fromkeys(NORMALIZATIONS + ("imagenet",)))

#: Extensions ``save_image`` writes, and the Pillow format of each.
SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".ppm": "PPM",
}

# EXIF orientation (TIFF tag 274) -> the transposition that shows the image upright.
_ORIENTATION_TAG = 0x0112
_UPRIGHT = {
    2: PIL.Image.Transpose.FLIP_LEFT_RIGHT,
    3: PIL.Image.Transpose.ROTATE_180,
    4: PIL.Image.Transpose.FLIP_TOP_BOTTOM,
    5: PIL.Image.Transpose.TRANSPOSE,
    6: PIL.Image.Transpose.ROTATE_270,
    7: PIL.Image.Transpose.TRANSVERSE,
    8: PIL.Image.Transpose.ROTATE_90,
}


def _path_argument(path, name="path"):
    """``path`` as str (bytes decoded as the OS does, reversibly), or ``ImageError`` naming the argument."""
    if isinstance(path, (str, bytes, os.PathLike)):
        try:
            path = os.fspath(path)
        except TypeError:  # an os.PathLike whose __fspath__ returns neither str nor bytes
            path = None
        if isinstance(path, (str, bytes)):
            if ("\0" if isinstance(path, str) else b"\0") in path:
                raise ImageError(f"{name} {quoted(path)} contains a NUL character, which no file name can hold")
            return os.fsdecode(path)
    raise ImageError(f"{name} must be a file path (str, bytes or os.PathLike); got {type(path).__name__}")


def _reason(error):
    """One line saying why ``error`` happened, without the file name the OS may have added."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


def _check_image_file(path, quoted):
    """ImageError unless ``path`` names a non-empty regular file (a FIFO would block the reader forever)."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(f"{quoted}: image not found") from None
    except OSError as error:
        raise ImageError(f"{quoted}: cannot be read: {_reason(error)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{quoted}: is a folder, not an image")
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"{quoted}: is not a regular file (a device, FIFO or socket), not an image")
    if info.st_size == 0:
        raise ImageError(f"{quoted}: file is empty")


@contextlib.contextmanager
def _opened(path):
    """``PIL.Image.open(path)`` whose every failure, while open too, becomes an ``ImageError`` naming the file.

    Pillow warns (``DecompressionBombWarning``) above
    ``PIL.Image.MAX_IMAGE_PIXELS`` pixels and refuses above twice that.
    Images between the two are read without the warning line: their size
    is known to the caller, and with a target size they are decoded
    reduced. Those above the hard limit are refused, naming their pixel
    count. Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left as it is
    (False unless the program changed it), so a truncated file is refused.
    """
    shown = quoted(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(path) as image:
                yield image
    except ImageError as error:
        raise ImageError(f"{shown}: {error}") from None
    except NSTError:  # a wrong argument, not a property of the file
        raise
    except PIL.Image.DecompressionBombError as error:
        count = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(count.group(1)):,} pixels" if count else "more pixels than that"
        raise ImageError(
            f"{shown}: has {size}, over Pillow's limit for one image ({_bomb_limit()}); "
            "refused as a possible decompression bomb"
        ) from None
    except MemoryError:
        raise ImageError(f"{shown}: too large to decode in the memory available") from None
    except OSError as error:
        if "truncated" in str(error).lower():
            raise ImageError(f"{shown}: image file is truncated (it ends before its pixel data does)") from None
        if error.errno is not None:
            raise ImageError(f"{shown}: cannot be read: {_reason(error)}") from None
        raise ImageError(_unreadable(path, shown, error)) from error
    except Exception as error:  # Pillow raises many types for files it cannot parse
        raise ImageError(_unreadable(path, shown, error)) from error


def _unreadable(path, shown, error):

    if isinstance(path, (str, bytes, os.PathLike)) and is_video_file(path):
        return f"{shown}: is a video, where an image is needed (a video is stylized alone: one content file)"
    return f"{shown}: not a readable image ({type(error).__name__})"


def _bomb_limit():
    limit = PIL.Image.MAX_IMAGE_PIXELS
    return "none set" if limit is None else f"{2 * limit:,} pixels, twice PIL.Image.MAX_IMAGE_PIXELS"


def _orientation(image, decoded):
    """The EXIF orientation, 1 (as stored) to 8; 1 when absent, unreadable or out of range.

    A PNG's eXIf chunk may follow the pixel data: before decoding, only one
    that precedes it is seen (Pillow would otherwise decode the whole image).
    """
    if not decoded and image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data": the pixels are fine, the tag unknown
            value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block says nothing reliable about the orientation
        return 1
    return value if value in _UPRIGHT else 1


def _upright_size(size, orientation):
    """(width, height) after applying EXIF ``orientation`` to an image of stored ``size``."""
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else tuple(size)


def _reduction(size, target):
    """The largest whole factor an image of ``size`` may shrink by before being fitted to ``target``.

    Fitting (either way) scales by at most ``max(W / w, H / h)`` on each
    axis, so after shrinking by ``k`` the image stays at least
    ``REDUCING_GAP`` times larger than needed as long as ``w / k >= 2 W``
    and ``h / k >= 2 H``.
    """
    (w, h), (target_w, target_h) = size, target
    return max(1, min(w // (REDUCING_GAP * target_w), h // (REDUCING_GAP * target_h)))


def _to_uint8(values):
    """8-bit samples from one channel of 1-, 16-, 32-bit or float samples."""
    if values.dtype == np.uint8:
        return values
    if values.dtype == bool:
        return values.astype(np.uint8) * 255
    if values.dtype.kind in "ui":
        # 16-bit images (and Pillow's 32-bit "I" mode holding 16-bit data):
        # 65535 / 257 == 255 maps the full range onto 8 bits.
        return np.round(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ImageError(f"has {np.count_nonzero(~np.isfinite(values)):,} NaN or infinite pixel values")
        scale = 255.0 if values.size == 0 or values.max() <= 1.0 else 1.0
        return np.round(np.clip(values * scale, 0, 255)).astype(np.uint8)
    raise ImageError(f"has unsupported pixel type {values.dtype}")


def _eight_bit(image):
    """``image`` (loaded) as an 8-bit L, LA, RGB or RGBA Pillow image; transparency becomes alpha.

    Pillow converts the colour modes (CMYK, YCbCr, LAB, HSV, palette, ...).
    16-bit, 32-bit integer and float images are scaled here instead, since
    Pillow would clip them to 8 bits; a float image with NaN or infinite
    values is refused.
    """
    mode, transparency = image.mode, image.info.get("transparency")
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.asarray(image)
        gray = _to_uint8(values)
        if isinstance(transparency, numbers.Integral):
            alpha = np.where(values == transparency, 0, 255).astype(np.uint8)
            return PIL.Image.fromarray(np.ascontiguousarray(np.stack([gray, alpha], axis=2)))
        return PIL.Image.fromarray(gray)
    if mode in ("L", "RGB", "LA", "RGBA") and transparency is None:
        return image
    if mode == "1" and transparency is None:
        return image.convert("L")
    try:
        if transparency is not None or mode in ("LA", "La", "PA", "RGBa"):
            return image.convert("RGBA")
        return image.convert("RGB")
    except (ValueError, KeyError):
        raise ImageError(f"has colour mode {mode!r}, which Pillow cannot convert to RGB") from None


def _to_rgb(pixels):
    """(h, w, 3) uint8 from 8-bit gray, gray+alpha, RGB or RGBA pixels; transparent pixels shown over white."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] in (2, 4):
        alpha = pixels[:, :, -1:].astype(np.float32) / 255.0
        blended = pixels[:, :, :-1].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        pixels = np.round(blended).astype(np.uint8)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def _decode(path, target_of=None):
    """(pixels, target): the image at ``path`` as upright (h, w, 3) uint8, and the size it is meant for.

    ``target_of`` maps the image's full upright (width, height) to the
    (width, height) the caller will fit it to, or is None (full size). With
    a target, the image is decoded reduced where that keeps it at least
    ``REDUCING_GAP`` times the needed size: JPEG by DCT scaling while
    decoding (``Image.draft``: 1/2, 1/4 or 1/8), any format by averaging
    whole blocks of pixels after decoding (``Image.reduce``).
    """
    path = _path_argument(path)
    shown = quoted(path)
    _check_image_file(path, shown)
    with _opened(path) as image:
        full_size = image.size
        target = None
        if target_of is not None:
            upright = _upright_size(full_size, _orientation(image, decoded=False))
            factor = _reduction(upright, target_of(upright))
            if factor > 1:
                # Asks for at least size / factor; the JPEG decoder picks the largest
                # of 1/8, 1/4, 1/2 that gives it. Other formats ignore drafts.
                image.draft(None, (-(-full_size[0] // factor), -(-full_size[1] // factor)))
        image.load()
        orientation = _orientation(image, decoded=True)
        if target_of is not None:
            target = target_of(_upright_size(full_size, orientation))
        working = _eight_bit(image)
        if target is not None:
            factor = _reduction(_upright_size(working.size, orientation), target)
            if factor > 1:
                working = working.reduce(factor)
        if orientation in _UPRIGHT:
            working = working.transpose(_UPRIGHT[orientation])
        pixels = np.asarray(working)
    return _to_rgb(pixels), target


def _target_argument(target):
    try:
        width, height = target
    except (TypeError, ValueError):
        raise NSTError(f"target must be a (width, height) pair or None; got {target!r}") from None
    return check_pixels("target width", width), check_pixels("target height", height)


def read_image(path, target=None):
    """Reads an image file as 8-bit RGB, shape (height, width, 3), upright.

    Pillow converts colour modes (CMYK, YCbCr, LAB, palette, ...) to RGB;
    grayscale is repeated over three channels, transparency is composited
    over white, 16-bit samples are scaled to 8 bits (65535 -> 255), float
    samples are taken as 0..1 when none exceeds 1 (else as 0..255), and an
    EXIF orientation tag is applied.

    Without ``target`` the image keeps its full size. ``target``, the
    (width, height) the image will be fitted to (``fit_image``, either fit),
    lets a large image be decoded at a reduced size, by a whole factor that
    keeps it at least twice as large as the fit needs on each axis; the
    fitted result then differs from a full decode by a few levels at most.

    Raises:
        ImageError: ``path`` is not a file path, or the file is missing, empty, truncated or unreadable, a float
            image with NaN or infinite values, or over Pillow's decompression-bomb limit
            (``2 * PIL.Image.MAX_IMAGE_PIXELS``).
        NSTError: ``target`` is neither None nor a pair of positive whole numbers.
    """
    if target is not None:
        target = _target_argument(target)
    return _decode(path, None if target is None else (lambda size: target))[0]


def image_size(path):
    """(width, height) of the image at ``path`` as ``read_image`` returns it, from the file's header.

    Nothing is decoded, so this is cheap for images of any size; the EXIF
    orientation is applied (except from a PNG eXIf chunk placed after the
    pixel data, which only decoding reaches).

    Raises:
        ImageError: as ``read_image`` does, for a path or file it cannot open.
    """
    path = _path_argument(path)
    _check_image_file(path, quoted(path))
    with _opened(path) as image:
        return _upright_size(image.size, _orientation(image, decoded=False))


def _checked_pixels(image, name="image"):
    """``image`` as an (h, w, 3) uint8 array, or ``ImageError`` naming it."""
    try:
        pixels = np.asarray(image)
    except Exception:  # any object NumPy cannot take is a wrong argument
        pixels = None
    if pixels is None or pixels.dtype == object:
        raise ImageError(f"{name} must be an array of 8-bit RGB pixels (height, width, 3); got {type(image).__name__}")
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageError(f"{name} must have shape (height, width, 3); got {pixels.shape}")
    if pixels.dtype != np.uint8:
        raise ImageError(f"{name} must hold 8-bit pixels (uint8, as read_image returns); got {pixels.dtype}")
    return pixels


def fit_image(image, width, height, fit="crop"):
    """Brings an (h, w, 3) uint8 image to exactly (height, width, 3).

    With ``fit="crop"`` the aspect ratio is kept: the largest centred region
    with the target's aspect ratio is cut out, then scaled. With
    ``fit="stretch"`` the whole image is scaled to the target size (the
    second edition's ``Image.resize``). Scaling uses Pillow's bilinear filter,
    antialiased when shrinking. An image already of the target size is
    returned unchanged.

    Raises:
        ImageError: ``image`` is not an (h, w, 3) uint8 array; it or the target is smaller than
            ``MIN_IMAGE_SIZE`` on a side; cropping leaves no pixels; or Pillow cannot scale it.
        NSTError: ``width`` or ``height`` is not a whole number, or ``fit`` is not one of ``FITS``.
    """
    image = _checked_pixels(image)
    width, height = whole_pixels("width", width), whole_pixels("height", height)
    h, w = image.shape[:2]
    _check_network_size("image", w, h)
    _check_network_size("target size", width, height)
    if fit not in FITS:
        raise NSTError(f"fit must be one of {', '.join(FITS)}; got {fit!r}")
    if (h, w) == (height, width):
        return image
    if fit == "crop":
        image = _centre_crop(image, width, height)
    # Pillow's bilinear filter widens with the scale factor when shrinking,
    # so downscaling is antialiased (as tf.image.resize(..., antialias=True)).
    try:
        resized = PIL.Image.fromarray(np.ascontiguousarray(image)).resize(
            (width, height), PIL.Image.Resampling.BILINEAR
        )
    except (MemoryError, ValueError, OverflowError) as error:
        raise ImageError(f"cannot be scaled to {width}x{height} pixels: {_reason(error)}") from None
    return np.asarray(resized)


def _check_network_size(what, width, height):
    if min(width, height) < MIN_IMAGE_SIZE:
        raise ImageError(
            f"{what} is {width}x{height} pixels; nst_tf takes images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} "
            "(VGG-19's five poolings need that; the same for every network)"
        )


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


def load_image(path, width=CONFIG.IMAGE_WIDTH, height=CONFIG.IMAGE_HEIGHT, max_size=None, fit="crop"):
    """``read_image`` then ``fit_image``: 8-bit RGB of shape (height, width, 3).

    With ``max_size``, ``width`` and ``height`` are ignored: the image keeps
    its own aspect ratio and is scaled so that its longer side is
    ``max_size`` pixels. A large image is decoded reduced (see
    ``read_image``'s ``target``), so a 12000x12000 photo fitted to 400x300
    never occupies its full size in memory when it is a JPEG; ``image_size``
    tells beforehand how large the file is.

    Raises:
        ImageError: ``path`` is not a file path; the file cannot be read (as in ``read_image``); the target size
            is under ``MIN_IMAGE_SIZE`` on a side; or the image cannot be fitted (as in ``fit_image``).
        NSTError: ``width`` or ``height`` is not a whole number, ``max_size`` is not a positive one, or ``fit``
            is not one of ``FITS``.
    """
    path = _path_argument(path)
    if max_size is None:
        target = (whole_pixels("width", width), whole_pixels("height", height))
        _check_network_size("target size", *target)
    else:
        max_size = check_pixels("max_size", max_size)
    if fit not in FITS:
        raise NSTError(f"fit must be one of {', '.join(FITS)}; got {fit!r}")

    def target_of(size):
        if max_size is None:
            return target
        h, w = size_for(size[1], size[0], max_size)
        _check_network_size("target size", w, h)  # before decoding reduced by a factor chosen for it
        return w, h

    image, (width, height) = _decode(path, target_of)
    try:
        return fit_image(image, width, height, fit)
    except ImageError as error:
        raise ImageError(f"{quoted(path)}: {error}") from None


def _numeric_array(image, name):
    """``np.asarray(image)`` when it holds real numbers, else ``ImageError`` naming it."""
    try:
        array = np.asarray(image)
    except Exception:  # any object NumPy cannot take is a wrong argument
        array = None
    if array is None or array.dtype.kind not in "uif":
        what = type(image).__name__ if array is None else f"{type(image).__name__} of {array.dtype}"
        raise ImageError(f"{name} must be an array of real numbers; got {what}")
    return array


def _finite(array, name):
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageError(f"{name} holds {np.count_nonzero(~np.isfinite(array)):,} NaN or infinite values")
    return array


def reshape_and_normalize_image(image, normalization="means"):
    """Adds the batch axis and normalizes: (1, h, w, 3).

    ``"means"`` (the course's first edition) subtracts ``CONFIG.MEANS``; the
    course subtracts its float64 MEANS from the uint8 image, so the result is
    float64 (exact) until it enters the network. ``"unit"`` (the second
    edition) divides by 255, as ``tf.image.convert_image_dtype`` does, in
    float32. ``"imagenet"`` (torchvision's, SqueezeNet's) computes
    ``(image / 255 - IMAGENET_MEAN) / IMAGENET_STD`` in float32.

    Raises:
        ImageError: ``image`` is not an array of real numbers, holds NaN or infinite values, or is not
            of shape (h, w, 3).
        NSTError: ``normalization`` is not one of ``IMAGE_NORMALIZATIONS``.
    """
    image = _finite(_numeric_array(image, "image"), "image")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"image must have shape (height, width, 3); got {image.shape}")
    batch = np.reshape(image, (1,) + image.shape)
    normalization = _normalization(normalization)
    if normalization == "imagenet":
        return (batch.astype(np.float32) / np.float32(255) - IMAGENET_MEAN) / IMAGENET_STD
    if normalization == "unit":
        return batch.astype(np.float32) / np.float32(255)
    return batch - CONFIG.MEANS


def pixel_range(normalization="means"):
    """(lowest, highest) normalized pixel values, each of shape (1, 1, 1, 3).

    For "imagenet", 0 and 255 normalized as ``reshape_and_normalize_image``
    normalizes them (float32), per channel.

    Raises:
        NSTError: ``normalization`` is not one of ``IMAGE_NORMALIZATIONS``.
    """
    normalization = _normalization(normalization)
    if normalization == "imagenet":
        return (np.float32(0) - IMAGENET_MEAN) / IMAGENET_STD, (np.float32(1) - IMAGENET_MEAN) / IMAGENET_STD
    if normalization == "unit":
        return np.zeros((1, 1, 1, 3)), np.ones((1, 1, 1, 3))
    return 0 - CONFIG.MEANS, 255 - CONFIG.MEANS


def _normalization(normalization):
    if normalization not in IMAGE_NORMALIZATIONS:
        raise NSTError(f"normalization must be one of {', '.join(IMAGE_NORMALIZATIONS)}; got {normalization!r}")
    return normalization


def checked_float32_batch(image, name, batch=False):
    """``image`` checked to be a finite (1, height, width, 3) image and cast to float32.

    With ``batch``, any number of images of one size: (B, height, width, 3), B >= 1.

    Raises:
        NSTError: ``image`` cannot be read as a float32 array, is not of shape (1, height, width, 3)
            ((B, height, width, 3) with ``batch``), or holds NaN or infinite values; the message names it ``name``.
    """
    try:
        image = np.asarray(image, dtype=np.float32)
    except (TypeError, ValueError):
        raise NSTError(
            f"{name} must be a normalized image of shape (1, height, width, 3); got {type(image).__name__}"
        ) from None
    if image.ndim != 4 or image.shape[3] != 3 or image.shape[0] < 1 or (image.shape[0] != 1 and not batch):
        shape = "(B, height, width, 3)" if batch else "(1, height, width, 3)"
        raise NSTError(f"{name} must be a normalized image of shape {shape}; got {image.shape}")
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

    Raises:
        ImageError: ``content_image`` is not an array of real numbers or holds NaN or infinite values.
        NSTError: ``noise_ratio`` is not a number between 0 and 1, or ``seed`` is not None or a
            non-negative whole number.
    """
    content_image = _finite(_numeric_array(content_image, "content_image"), "content_image")
    if (
        isinstance(noise_ratio, (bool, np.bool_))
        or not isinstance(noise_ratio, numbers.Real)
        or not 0 <= noise_ratio <= 1  # also False for NaN
    ):
        raise NSTError(f"noise_ratio must be a number between 0 and 1; got {noise_ratio!r}")
    if not isinstance(noise_ratio, (int, float, np.integer, np.floating)):
        noise_ratio = float(noise_ratio)  # a Fraction, say, would turn the arrays into Python objects
    seed = check_seed(seed)
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
    ``"content"``: the content image itself (CS231n's start). ``"uniform"``:
    float32 noise uniform in [0, 1) of the normalized image, the content's
    shape (CS231n's feature inversion, ``uniform_(0, 1)``).
    """
    if config.start == "course":
        return generate_noise_image(content_image, config.noise_ratio, config.seed)
    content_image = np.asarray(content_image)
    if config.start == "content":
        return content_image.astype(np.float32)
    draw = np.random.uniform if config.seed is None else np.random.default_rng(config.seed).uniform
    if config.start == "uniform":
        return draw(0.0, 1.0, content_image.shape).astype(np.float32)
    ratio = config.noise_ratio
    noise = draw(-ratio, ratio, content_image.shape).astype(np.float32)
    return np.clip(content_image + noise, *pixel_range(config.normalization))


def deprocess_image(image, normalization="means"):
    """Inverse of ``reshape_and_normalize_image``: uint8 (h, w, 3).

    ``"means"``: adds ``CONFIG.MEANS``, clips to 0..255 and truncates to
    uint8, as the course's ``save_image`` does. ``"unit"``: multiplies by 255
    and truncates, as the second edition's ``tensor_to_image`` does (after
    clipping to 0..255, which that edition's clipped images never need).
    ``"imagenet"``: ``(image * IMAGENET_STD + IMAGENET_MEAN) * 255``,
    clipped and rounded to the nearest level, so that it gives back
    exactly the uint8 image ``reshape_and_normalize_image`` normalized.

    Raises:
        ImageError: ``image`` is not an array of real numbers, holds NaN or infinite values, or is not
            of shape (1, h, w, 3).
        NSTError: ``normalization`` is not one of ``IMAGE_NORMALIZATIONS``.
    """
    image = _finite(_numeric_array(image, "image"), "image")
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[3] != 3:
        raise ImageError(f"image must be a normalized image of shape (1, height, width, 3); got {image.shape}")
    normalization = _normalization(normalization)
    if normalization == "imagenet":
        return np.clip(np.round((image[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255), 0, 255).astype(np.uint8)
    if normalization == "unit":
        return np.clip(image[0] * 255, 0, 255).astype(np.uint8)
    image = image + CONFIG.MEANS
    return np.clip(image[0], 0, 255).astype(np.uint8)


def save_image(path, image, normalization="means", *, through_links=True):
    """Writes a normalized (1, h, w, 3) image; the format follows the extension (``SAVE_FORMATS``).

    The folder is created. The file is written under a temporary name in
    the same folder, flushed to disk and then renamed over ``path``, so a
    failed or interrupted save leaves neither a truncated image nor a
    temporary file, and an existing file at ``path`` stays as it was until
    the new one is complete. The new file gets the permissions a plain
    ``open()`` would give it: those of the file it replaces, else
    ``0o666`` less the umask. A symbolic link at ``path`` is written
    through, as ``open()`` does, unless ``through_links`` is False.

    Raises:
        ImageError: naming the path and the reason: not a file path, a folder at ``path``, a symbolic link
            there when ``through_links`` is False, no or an unknown extension, a full disk, ...; or ``image``
            is not a finite normalized (1, h, w, 3) image.
        NSTError: ``normalization`` is not one of ``NORMALIZATIONS``.
    """
    path = _path_argument(path)
    shown = quoted(path)
    pixels = deprocess_image(image, normalization)
    target, folder, extension, image_format = _save_target(path, through_links)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = None
    try:
        handle, temporary = new_file(folder, extension)
    except OSError as error:
        raise ImageError(f"{shown}: cannot be saved: {_reason(error)}") from None
    try:
        # Encoded in memory, then written by Python, which raises on a short write: Pillow's encoders
        # write to a file's descriptor themselves, and a full disk cut a JPEG short without an error.
        encoded = io.BytesIO()
        PIL.Image.fromarray(pixels).save(encoded, format=image_format)
        with os.fdopen(handle, "wb") as file:
            file.write(encoded.getbuffer())
            file.flush()
            _sync(file)
            if os.fstat(file.fileno()).st_size != encoded.getbuffer().nbytes:
                raise OSError(errno.EIO, "the file was written short")
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException as error:
        try:
            os.remove(temporary)
        except OSError:
            pass
        if isinstance(error, Exception):
            raise ImageError(f"{shown}: cannot be saved: {_reason(error)}") from error
        raise


def _save_target(path, through_links):
    """Where ``save_image`` writes ``path``: (file written, its folder (made here), extension, Pillow format).

    Raises:
        ImageError: as ``save_image`` says for the path.
    """
    shown = quoted(path)
    if os.path.islink(path) and not through_links:
        # The rename below would replace the link itself; the image is refused rather than the link lost.
        raise ImageError(f"{shown}: is a symbolic link, and images are not written through links here")
    target = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.isdir(target):
        raise ImageError(f"{shown}: is a folder; give a file name, such as {quoted(os.path.join(path, 'out.png'))}")
    extension = os.path.splitext(path)[1]
    image_format = SAVE_FORMATS.get(extension.lower())
    if image_format is None:
        what = (
            f"the extension {quoted(extension)} names no format" if extension else "has no extension to name a format"
        )
        raise ImageError(f"{shown}: {what}; save_image writes {', '.join(SAVE_FORMATS)}")
    folder = os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ImageError(f"{shown}: cannot create its folder {quoted(folder)}: {_reason(error)}") from None
    return target, folder, extension, image_format


def _sync(file):
    """Forces ``file``'s data to disk, so the rename never publishes an empty file after a crash."""
    try:
        os.fsync(file.fileno())
    except OSError as error:
        # Some file systems (and pipes) cannot sync at all; a full disk still raises here.
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise


def new_file(folder, extension, prefix=".nst_tf-"):
    """(descriptor, path) of a new, empty file ``folder/<prefix><16 hex digits><extension>``, created as
    ``open()`` creates files.

    Created with mode 0o666, so the umask (and any default ACL of the
    folder) applies exactly as for a plain ``open(path, "w")``; reading the
    umask would need ``os.umask``, which changes it for every thread.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temporary = os.path.join(folder, f"{prefix}{secrets.token_hex(8)}{extension}")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", folder)


@dataclass(frozen=True)
class ImageSize:
    """The size the content and style images are brought to.

    ``width`` x ``height`` (both images centre-cropped to that aspect ratio
    and scaled, or with ``fit="stretch"`` scaled whole), or, with
    ``max_size``, the content image's own aspect ratio with that longer side,
    or, with ``shorter_side``, with that shorter side (the longer one
    truncated, as torchvision's ``Resize(size)`` computes it: CS231n's
    ``image_size``). Each field's ``metadata["help"]`` is its command-line
    help.

    Raises:
        NSTError: ``fit`` is not one of ``FITS``; ``width``, ``height`` or a ``max_size`` or ``shorter_side``
            that is not None is not a whole number of at least ``MIN_IMAGE_SIZE``; or both of those are given.
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
        metadata={
            "help": "keep the content image's aspect ratio with this longer side, instead of "
            "--width x --height; the style images are brought to the same size",
            "metavar": "N",
            "type": int,
        },
    )
    fit: str = field(
        default="crop",
        metadata={
            "help": "crop: centre-crop to width:height, then scale (nothing is stretched); stretch: scale "
            "the whole image to width x height (the second edition)",
            "choices": FITS,
        },
    )
    shorter_side: int | None = field(
        default=None,
        metadata={
            "help": "keep the content image's aspect ratio with this shorter side (CS231n's image_size), instead "
            "of --width x --height",
            "metavar": "N",
            "type": int,
        },
    )

    def __post_init__(self):
        if self.fit not in FITS:
            raise NSTError(f"fit must be one of {', '.join(FITS)}; got {self.fit!r}")
        given = tuple(name for name in ("max_size", "shorter_side") if getattr(self, name) is not None)
        if len(given) > 1:
            raise NSTError("max_size and shorter_side: give one of them")
        for name in ("width", "height") + given:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < MIN_IMAGE_SIZE:
                raise NSTError(f"{name} must be a whole number of at least {MIN_IMAGE_SIZE}; got {value!r}")

    @property
    def content_fit(self):
        """How the content image is brought to its size: ``fit``, or "stretch" with ``shorter_side``.

        A shorter side keeps the image's aspect ratio up to the truncated
        longer side: torchvision resizes the whole image to that size, and
        so does nst_tf (cropping would cut the truncated fraction away).
        """
        return "stretch" if self.shorter_side is not None else self.fit

    def of(self, shape):
        """(height, width) for a content image whose (height, width) is ``shape``."""
        if self.shorter_side is not None:
            return shorter_side_size(shape[0], shape[1], self.shorter_side)
        if self.max_size is None:
            return self.height, self.width
        return size_for(shape[0], shape[1], self.max_size)


def fit_style(pixels, output, fit, style_scale=1.0, style_size=None):
    """A style image's pixels (h, w, 3) brought to their size for an output of ``output`` (height, width).

    Fitted as ``fit`` says to ``style_target``'s size; with ``style_size``
    (the style's own aspect ratio kept), resized whole.

    Raises:
        NSTError: as ``style_target`` and ``images.fit_image`` do.
    """
    height, width = large_options.style_target(output, pixels.shape[:2], style_scale, style_size)
    return fit_image(pixels, width, height, fit if style_size is None else "stretch")

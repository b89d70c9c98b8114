"""Reading, resizing, normalizing and saving images, and the noise start, in NumPy (outside the optimization).

The course helper's image functions, plus a reader that turns the images people have (grayscale, RGBA, palette,
CMYK, YCbCr, LAB, 16-bit, float, EXIF-rotated, of any size) into the course's 8-bit RGB. Every failure is an
``ImageError`` or ``NSTError`` naming the file or argument; a file name holding control characters is quoted.
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
from dataclasses import dataclass

import numpy as np
import PIL.Image

from ..plan.locations import find_image
from ..ground.checks import check_pixels, check_whole, shorter_side_size, size_for, whole_pixels
from ..ground.errors import ImageError, NSTError, quoted
from ..ground.fields import option
from ..plan.clip import is_video_file
from ..plan.config import CONFIG, NORMALIZATIONS, check_seed
from ..plan import large_options
from ..plan.networks.vgg19 import MIN_IMAGE_SIZE

#: Reduced decoding keeps an image at least this many times larger, each way, than what fitting it keeps,
#: so the final antialiased scaling still does the filtering (as Pillow's ``thumbnail(reducing_gap=2.0)``).
REDUCING_GAP = 2

#: torchvision's ImageNet normalization ("imagenet", SqueezeNet's in CS231n): RGB / 255, minus IMAGENET_MEAN,
#: over IMAGENET_STD, in float32 as ``ToTensor`` and ``Normalize`` compute it.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape((1, 1, 1, 3))
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32).reshape((1, 1, 1, 3))
IMAGENET_MEAN.setflags(write=False)
IMAGENET_STD.setflags(write=False)

#: The normalizations these functions carry out: the config's (``NORMALIZATIONS``) and "imagenet".
IMAGE_NORMALIZATIONS = tuple(dict.fromkeys(NORMALIZATIONS + ("imagenet",)))

#: Extensions ``save_image`` writes, and the Pillow format of each.
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF", ".tif": "TIFF"}
SAVE_FORMATS.update({".tiff": "TIFF", ".webp": "WEBP", ".ppm": "PPM"})

#: How ``fit_image`` brings an image to another aspect ratio.
FITS = ("crop", "stretch")

# EXIF orientation (TIFF tag 274), 2 to 8 -> the transposition that shows the image upright.
_ORIENTATION_TAG = 0x0112
_TRANSPOSITIONS = "FLIP_LEFT_RIGHT ROTATE_180 FLIP_TOP_BOTTOM TRANSPOSE ROTATE_270 TRANSVERSE ROTATE_90".split()
_UPRIGHT = {orientation: PIL.Image.Transpose[name] for orientation, name in enumerate(_TRANSPOSITIONS, 2)}

_VIDEO = "is a video, where an image is needed (a video is stylized alone: one content file)"


def _path_argument(path, name="path"):
    """``path`` as str (bytes decoded as the OS does, reversibly), or ``ImageError`` naming the argument."""
    try:
        path = os.fsdecode(path)
    except TypeError:  # not str, bytes or os.PathLike, or a __fspath__ returning neither
        raise ImageError(f"{name} must be a file path (str, bytes or os.PathLike); got {type(path).__name__}") from None
    if "\0" in path:
        raise ImageError(f"{name} {quoted(path)} contains a NUL character, which no file name can hold")
    return path


def _reason(error):
    """One line saying why ``error`` happened, without the file name the OS may have added."""
    return " ".join(str(getattr(error, "strerror", None) or error or type(error).__name__).split())


def _check_image_file(path):
    """ImageError unless ``path`` names a non-empty regular file (a FIFO would block the reader forever)."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(f"{quoted(path)}: image not found") from None
    except OSError as error:
        raise ImageError(f"{quoted(path)}: cannot be read: {_reason(error)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{quoted(path)}: is a folder, not an image")
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"{quoted(path)}: is not a regular file (a device, FIFO or socket), not an image")
    if info.st_size == 0:
        raise ImageError(f"{quoted(path)}: file is empty")


@contextlib.contextmanager
def _opened(path):
    """``PIL.Image.open(path)`` (a checked file) whose every failure, while open too, is an ``ImageError`` naming it.

    Images over ``PIL.Image.MAX_IMAGE_PIXELS`` are read without Pillow's warning (the caller may decode them
    reduced); those over twice that, which Pillow refuses, are refused naming their pixel count. A truncated
    file is refused (``ImageFile.LOAD_TRUNCATED_IMAGES`` is left as it is).
    """
    _check_image_file(path)
    shown = quoted(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(path) as image:
                yield image
    except ImageError as error:
        raise ImageError(f"{shown}: {error}") from None
    except PIL.Image.DecompressionBombError as error:
        count = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(count.group(1)):,} pixels" if count else "more pixels than that"
        limit = f"{2 * PIL.Image.MAX_IMAGE_PIXELS:,} pixels, twice PIL.Image.MAX_IMAGE_PIXELS"
        bomb = f"over Pillow's limit for one image ({limit}); refused as a possible decompression bomb"
        raise ImageError(f"{shown}: has {size}, {bomb}") from None
    except Exception as error:  # Pillow raises many types for files it cannot parse
        if isinstance(error, OSError) and "truncated" in str(error).lower():
            raise ImageError(f"{shown}: image file is truncated (it ends before its pixel data does)") from None
        what = _VIDEO if is_video_file(path) else f"not a readable image ({type(error).__name__})"
        raise ImageError(f"{shown}: {what}") from error


def _orientation(image, decoded):
    """The EXIF orientation, 1 (as stored) to 8; 1 when absent, unreadable or out of range. Before decoding, a
    PNG's eXIf chunk is seen only if it precedes the pixel data (else Pillow would decode the whole image)."""
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
    """The largest whole factor ``k`` an image of ``size`` (w, h) may shrink by before being fitted to ``target``
    (W, H), keeping ``w / k >= 2 W`` and ``h / k >= 2 H`` (fitting scales each axis by at most that much)."""
    (w, h), (target_w, target_h) = size, target
    return max(1, min(w // (REDUCING_GAP * target_w), h // (REDUCING_GAP * target_h)))


def _eight_bit(image):
    """``image`` (loaded) as an 8-bit L, LA, RGB or RGBA Pillow image, transparency as alpha. Pillow converts the
    colour modes but would clip 16-bit, 32-bit integer and float samples, so those are scaled here: integers by
    1/257 (65535 -> 255), floats from 0..1 when none exceeds 1, else from 0..255; NaN or infinity: ``ImageError``."""
    mode, transparency = image.mode, image.info.get("transparency")
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.asarray(image)
        if values.dtype.kind == "f":
            if not np.isfinite(values).all():
                raise ImageError(f"has {np.count_nonzero(~np.isfinite(values)):,} NaN or infinite pixel values")
            scale = 255.0 if values.size == 0 or values.max() <= 1.0 else 1.0
            gray = np.round(np.clip(values * scale, 0, 255)).astype(np.uint8)
        else:  # 16-bit samples, also in Pillow's 32-bit "I" mode
            gray = np.round(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
        if isinstance(transparency, numbers.Integral):
            alpha = np.where(values == transparency, 0, 255).astype(np.uint8)
            return PIL.Image.fromarray(np.ascontiguousarray(np.stack([gray, alpha], axis=2)))
        return PIL.Image.fromarray(gray)
    if mode in ("L", "RGB", "LA", "RGBA") and transparency is None:
        return image
    if mode == "1" and transparency is None:
        return image.convert("L")
    return image.convert("RGBA" if transparency is not None or mode in ("LA", "La", "PA", "RGBa") else "RGB")


def _to_rgb(pixels):
    """(h, w, 3) uint8 from 8-bit gray, gray+alpha, RGB or RGBA pixels; transparent pixels shown over white."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] in (2, 4):
        alpha = pixels[:, :, -1:].astype(np.float32) / 255.0
        pixels = np.round(pixels[:, :, :-1].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def _decode(path, target_of=None):
    """(pixels, target): the image at ``path`` as upright (h, w, 3) uint8, and the (width, height) ``target_of``
    maps its full upright (width, height) to (None without ``target_of``). With a target, the image is decoded
    reduced where that keeps it ``REDUCING_GAP`` times the target's size: JPEG by DCT scaling while decoding
    (``Image.draft``: 1/2, 1/4 or 1/8), any format by averaging blocks after decoding (``Image.reduce``)."""
    with _opened(path) as image:
        full_size, target = image.size, None
        if target_of is not None:
            upright = _upright_size(full_size, _orientation(image, decoded=False))
            factor = _reduction(upright, target_of(upright))
            if factor > 1:
                # At least size / factor: the JPEG decoder picks the largest scale that gives it; others ignore it.
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
        return _to_rgb(np.asarray(working)), target


def read_image(path, target=None):
    """Reads an image file as upright 8-bit RGB (height, width, 3), its EXIF orientation applied: colour modes
    become RGB, grayscale three equal channels, transparency is composited over white, 16-bit and float samples
    are scaled to 8 bits. With ``target``, the (width, height) it will be fitted to, a large image is decoded
    reduced by a whole factor, keeping it at least twice that size each way (the fitted result then differs
    from a full decode's by a few levels at most).

    Raises:
        ImageError: ``path`` is not a file path; the file is missing, empty, truncated, unreadable, a float
            image with NaN or infinite values, or over ``2 * PIL.Image.MAX_IMAGE_PIXELS``.
        NSTError: ``target`` is neither None nor a pair of positive whole numbers.
    """
    path = _path_argument(path)
    if target is None:
        return _decode(path)[0]
    try:
        width, height = target
    except (TypeError, ValueError):
        raise NSTError(f"target must be a (width, height) pair or None; got {target!r}") from None
    target = check_pixels("target width", width), check_pixels("target height", height)
    return _decode(path, lambda size: target)[0]


def image_size(path):
    """(width, height) of the image at ``path`` as ``read_image`` returns it, from the file's header (the EXIF
    orientation applied, except from a PNG eXIf chunk after the pixel data); ``ImageError`` as ``read_image``."""
    with _opened(_path_argument(path)) as image:
        return _upright_size(image.size, _orientation(image, decoded=False))


def _check_network_size(what, width, height):
    if min(width, height) < MIN_IMAGE_SIZE:
        raise ImageError(
            f"{what} is {width}x{height} pixels; nst_tf takes images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} "
            "(VGG-19's five poolings need that; the same for every network)"
        )


def _check_fit(fit):
    if fit not in FITS:
        raise NSTError(f"fit must be one of {', '.join(FITS)}; got {fit!r}")


def fit_image(image, width, height, fit="crop"):
    """Brings an (h, w, 3) uint8 image to exactly (height, width, 3); one of that size is returned as it is.

    ``fit="crop"`` cuts out the largest centred region of the target's aspect ratio, then scales it;
    ``fit="stretch"`` scales the whole image (the second edition's ``Image.resize``). Pillow's bilinear filter
    widens with the factor when shrinking, so downscaling is antialiased.

    Raises:
        ImageError: ``image`` is not an (h, w, 3) uint8 array; it or the target is under ``MIN_IMAGE_SIZE`` on
            a side; cropping leaves no pixels; or Pillow cannot scale it (too large).
        NSTError: ``width`` or ``height`` is not a whole number, or ``fit`` is not one of ``FITS``.
    """
    try:
        pixels = np.asarray(image)
    except Exception:  # any object NumPy cannot take is a wrong argument
        pixels = np.array(None)
    if pixels.dtype == object:
        raise ImageError(f"image must be an array of 8-bit RGB pixels (height, width, 3); got {type(image).__name__}")
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageError(f"image must have shape (height, width, 3); got {pixels.shape}")
    if pixels.dtype != np.uint8:
        raise ImageError(f"image must hold 8-bit pixels (uint8, as read_image returns); got {pixels.dtype}")
    width, height = whole_pixels("width", width), whole_pixels("height", height)
    h, w = pixels.shape[:2]
    _check_network_size("image", w, h)
    _check_network_size("target size", width, height)
    _check_fit(fit)
    if (h, w) == (height, width):
        return pixels
    if fit == "crop":  # the largest centred region with the aspect ratio width:height
        wide = w * height > h * width
        crop = round(h * width / height) if wide else round(w * height / width)
        if crop < 1:  # Pillow would scale the empty crop to an image of garbage
            raise ImageError(
                f"a {w}x{h} image cannot be cropped to {width}x{height}: that aspect ratio leaves no pixels"
            )
        start = ((w if wide else h) - crop) // 2
        pixels = pixels[:, start : start + crop] if wide else pixels[start : start + crop]
    try:
        resized = PIL.Image.fromarray(np.ascontiguousarray(pixels)).resize((width, height), PIL.Image.BILINEAR)
    except (MemoryError, ValueError, OverflowError) as error:
        raise ImageError(f"cannot be scaled to {width}x{height} pixels: {_reason(error)}") from None
    return np.asarray(resized)


def load_image(path, width=CONFIG.IMAGE_WIDTH, height=CONFIG.IMAGE_HEIGHT, max_size=None, fit="crop"):
    """``read_image`` (decoding a large image reduced) then ``fit_image``: 8-bit RGB (height, width, 3), or with
    ``max_size`` the image's aspect ratio with that longer side (``width`` and ``height`` ignored).

    Raises:
        ImageError: as ``read_image`` and ``fit_image`` do; a target size under ``MIN_IMAGE_SIZE`` on a side.
        NSTError: ``width``, ``height`` or ``max_size`` is not a positive whole number, or a bad ``fit``.
    """
    path = find_image(_path_argument(path))  # the default images from any folder, as the command finds them
    if max_size is None:
        target = (whole_pixels("width", width), whole_pixels("height", height))
        _check_network_size("target size", *target)
    else:
        max_size = check_pixels("max_size", max_size)
    _check_fit(fit)

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


def _real_array(image, name):
    """``np.asarray(image)`` when it holds real numbers, all finite, else ``ImageError`` naming it."""
    try:
        array = np.asarray(image)
    except Exception:  # any object NumPy cannot take is a wrong argument
        array = None
    if array is None or array.dtype.kind not in "uif":
        what = type(image).__name__ if array is None else f"{type(image).__name__} of {array.dtype}"
        raise ImageError(f"{name} must be an array of real numbers; got {what}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageError(f"{name} holds {np.count_nonzero(~np.isfinite(array)):,} NaN or infinite values")
    return array


def reshape_and_normalize_image(image, normalization="means"):
    """Adds the batch axis and normalizes: (h, w, 3) -> (1, h, w, 3).

    ``"means"`` (the first edition) subtracts the float64 ``CONFIG.MEANS``, as the course does. ``"unit"`` (the
    second edition) divides by 255 in float32, as ``tf.image.convert_image_dtype``. ``"imagenet"``:
    ``(image / 255 - IMAGENET_MEAN) / IMAGENET_STD`` in float32.

    Raises:
        ImageError: ``image`` is not a finite array of real numbers of shape (h, w, 3).
        NSTError: ``normalization`` is not one of ``IMAGE_NORMALIZATIONS``.
    """
    image = _real_array(image, "image")
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
    """(lowest, highest) normalized pixel values, each of shape (1, 1, 1, 3): 0 and 255 normalized (float32
    per channel for "imagenet"); ``NSTError`` for a normalization not in ``IMAGE_NORMALIZATIONS``."""
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
    """``image`` as float32 when it is a finite (1, height, width, 3) image ((B, height, width, 3), B >= 1,
    with ``batch``); ``NSTError`` naming it ``name`` otherwise."""
    shape = "(B, height, width, 3)" if batch else "(1, height, width, 3)"
    try:
        image = np.asarray(image, dtype=np.float32)
    except (TypeError, ValueError):
        raise NSTError(f"{name} must be a normalized image of shape {shape}; got {type(image).__name__}") from None
    if image.ndim != 4 or image.shape[3] != 3 or image.shape[0] < 1 or (image.shape[0] != 1 and not batch):
        raise NSTError(f"{name} must be a normalized image of shape {shape}; got {image.shape}")
    if not np.isfinite(image).all():
        raise NSTError(f"{name} holds NaN or infinite values")
    return image


def generate_noise_image(content_image, noise_ratio=CONFIG.NOISE_RATIO, seed=None):
    """The course's starting image: ``noise * noise_ratio + content_image * (1 - noise_ratio)``, the float32 noise
    uniform in [-20, 20) of the content's shape (1, h, w, 3), from NumPy's global generator as in the course
    (``np.random.seed`` repeats it) or ``np.random.default_rng(seed)``; float64 for a float64 content image.

    Raises:
        ImageError: ``content_image`` is not a finite array of real numbers.
        NSTError: ``noise_ratio`` is not a number between 0 and 1, or ``seed`` not None or a whole number >= 0.
    """
    content_image = _real_array(content_image, "content_image")
    real = isinstance(noise_ratio, numbers.Real) and not isinstance(noise_ratio, (bool, np.bool_))
    if not (real and 0 <= noise_ratio <= 1):  # also refuses NaN
        raise NSTError(f"noise_ratio must be a number between 0 and 1; got {noise_ratio!r}")
    if not isinstance(noise_ratio, (int, float, np.integer, np.floating)):
        noise_ratio = float(noise_ratio)  # a Fraction, say, would turn the arrays into Python objects
    seed = check_seed(seed)
    uniform = np.random.uniform if seed is None else np.random.default_rng(seed).uniform
    return uniform(-20, 20, content_image.shape).astype(np.float32) * noise_ratio + content_image * (1 - noise_ratio)


def start_image(content_image, config):
    """The initial image ``config.start`` names, for a normalized content image. "course":
    ``generate_noise_image(content, config.noise_ratio, config.seed)``. "additive": the content plus float32
    noise uniform in [-noise_ratio, noise_ratio), clipped to the pixel range (the second edition's start).
    "content": the content (CS231n's). "uniform": float32 noise uniform in [0, 1) (CS231n's feature inversion).
    """
    if config.start == "course":
        return generate_noise_image(content_image, config.noise_ratio, config.seed)
    content_image = np.asarray(content_image)
    if config.start == "content":
        return content_image.astype(np.float32)
    draw = np.random.uniform if config.seed is None else np.random.default_rng(config.seed).uniform
    if config.start == "uniform":
        return draw(0.0, 1.0, content_image.shape).astype(np.float32)
    noise = draw(-config.noise_ratio, config.noise_ratio, content_image.shape).astype(np.float32)
    return np.clip(content_image + noise, *pixel_range(config.normalization))


def deprocess_image(image, normalization="means"):
    """Inverse of ``reshape_and_normalize_image``: (1, h, w, 3) -> uint8 (h, w, 3).

    ``"means"``: adds ``CONFIG.MEANS``, clips to 0..255 and truncates, as the course's ``save_image``.
    ``"unit"``: times 255, clipped and truncated, as the second edition's ``tensor_to_image``. ``"imagenet"``:
    ``(image * IMAGENET_STD + IMAGENET_MEAN) * 255``, clipped and rounded, which gives back exactly the uint8
    image that was normalized.

    Raises:
        ImageError: ``image`` is not a finite array of real numbers of shape (1, h, w, 3).
        NSTError: ``normalization`` is not one of ``IMAGE_NORMALIZATIONS``.
    """
    image = _real_array(image, "image")
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[3] != 3:
        raise ImageError(f"image must be a normalized image of shape (1, height, width, 3); got {image.shape}")
    normalization = _normalization(normalization)
    if normalization == "imagenet":
        return np.clip(np.round((image[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255), 0, 255).astype(np.uint8)
    if normalization == "unit":
        return np.clip(image[0] * 255, 0, 255).astype(np.uint8)
    return np.clip(image[0] + CONFIG.MEANS[0], 0, 255).astype(np.uint8)


def save_image(path, image, normalization="means", *, through_links=True):
    """Writes a normalized (1, h, w, 3) image, atomically; the format follows the extension (``SAVE_FORMATS``).

    The folder is created. The file is written under a temporary name beside it, flushed to disk and renamed
    over ``path``: a failed or interrupted save leaves no truncated image and no temporary file. Permissions
    are those ``open()`` gives (the replaced file's, else ``0o666`` less the umask); a symbolic link at
    ``path`` is written through unless ``through_links`` is False.

    Raises:
        ImageError: naming the path and the reason: not a file path, a folder at ``path``, a symbolic link
            there when ``through_links`` is False, no or an unknown extension, a full disk, ...; or ``image``
            is not a finite normalized (1, h, w, 3) image.
        NSTError: ``normalization`` is not one of ``IMAGE_NORMALIZATIONS``.
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
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if isinstance(error, Exception):
            raise ImageError(f"{shown}: cannot be saved: {_reason(error)}") from error
        raise


def _save_target(path, through_links):
    """(file ``save_image`` writes for ``path``, its folder (made here), extension, Pillow format)."""
    shown = quoted(path)
    if os.path.islink(path) and not through_links:
        # The rename would replace the link itself; the image is refused rather than the link lost.
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
    """(descriptor, path) of a new, empty file ``folder/<prefix><16 random hex digits><extension>``, created
    exclusively with mode 0o666 so the umask and the folder's default ACL apply as for ``open(path, "w")``
    (reading the umask would need ``os.umask``, which changes it for every thread)."""
    temporary = os.path.join(folder, f"{prefix}{secrets.token_hex(8)}{extension}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.open(temporary, flags, 0o666), temporary


@dataclass(frozen=True)
class ImageSize:
    """The size the content and style images are brought to.

    ``width`` x ``height`` (centre-cropped to that aspect ratio and scaled, or with ``fit="stretch"`` scaled
    whole); or the content image's aspect ratio with a ``max_size`` longer side, or a ``shorter_side`` (the
    longer truncated, as torchvision's ``Resize(size)``: CS231n's ``image_size``).

    Raises:
        NSTError: ``fit`` is not one of ``FITS``; ``width``, ``height``, ``max_size`` or ``shorter_side`` is
            not a whole number of at least ``MIN_IMAGE_SIZE``; or both of the last two are given.
    """

    width: int = option(CONFIG.IMAGE_WIDTH, "width of the generated image in pixels", metavar="N")
    height: int = option(CONFIG.IMAGE_HEIGHT, "height of the generated image in pixels", metavar="N")
    max_size: int | None = option(
        None,
        "keep the content image's aspect ratio with this longer side, instead of --width x --height; the style "
        "images are brought to the same size",
        metavar="N",
        type=int,
    )
    fit: str = option(
        "crop",
        "crop: centre-crop to width:height, then scale (nothing is stretched); stretch: scale the whole image to "
        "width x height (the second edition)",
        choices=FITS,
    )
    shorter_side: int | None = option(
        None,
        "keep the content image's aspect ratio with this shorter side (CS231n's image_size), instead of "
        "--width x --height",
        metavar="N",
        type=int,
    )

    def __post_init__(self):
        _check_fit(self.fit)
        given = tuple(name for name in ("max_size", "shorter_side") if getattr(self, name) is not None)
        if len(given) > 1:
            raise NSTError("max_size and shorter_side: give one of them")
        for name in ("width", "height") + given:
            object.__setattr__(self, name, check_whole(name, getattr(self, name), least=MIN_IMAGE_SIZE))

    @property
    def content_fit(self):
        """``fit``, or "stretch" with ``shorter_side`` (torchvision resizes the whole image to the truncated
        size; cropping would cut the truncated fraction away)."""
        return "stretch" if self.shorter_side is not None else self.fit

    def of(self, shape):
        """(height, width) for a content image whose (height, width) is ``shape``."""
        if self.shorter_side is not None:
            return shorter_side_size(shape[0], shape[1], self.shorter_side)
        if self.max_size is None:
            return self.height, self.width
        return size_for(shape[0], shape[1], self.max_size)


def fit_style(pixels, output, fit, style_scale=1.0, style_size=None):
    """A style image's pixels (h, w, 3) brought to their size for an output of ``output`` (height, width): fitted
    as ``fit`` says to ``style_target``'s size, or with ``style_size`` resized whole; ``NSTError`` as those raise."""
    height, width = large_options.style_target(output, pixels.shape[:2], style_scale, style_size)
    return fit_image(pixels, width, height, fit if style_size is None else "stretch")

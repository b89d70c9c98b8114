"""The page's form checked: ``Limits`` (what the server accepts, from its options), ``RunSettings`` (one run's
preset, size, iterations, alpha and beta, colours and seed) and ``prepare_inputs`` (the images read, fitted and
normalized as the preset does, and the weights found), each mistake an ``NSTError`` whose message the page shows.
Free of TensorFlow: a request is answered before the worker loads it.
"""

import contextlib
import dataclasses
import math
import os

from ..ground.checks import check_whole
from ..ground.errors import NSTError
from ..plan.config import COLOR_MODES
from ..plan.locations import DOWNLOADS, find_weights, missing_weights_hint
from ..runs.presets import PRESETS
from ..tensors.images import ImageSize, fit_image, fit_style, read_image, reshape_and_normalize_image

#: The page's default size (the result's longer side, in pixels) and the most reports a run shows.
DEFAULT_SIZE = 256
#: The preview updates at most every this many iterations (more often for short runs).
PREVIEW_EVERY = 5


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the server accepts: ``upload_bytes`` per file, ``upload_pixels`` per image (checked from its header,
    before decoding: Pillow's bomb guard, tighter), ``styles`` style images a run, ``max_size`` the longest side,
    ``iterations`` a run's most, ``queue`` runs waiting at once."""

    upload_bytes: int = 20 * 2**20
    upload_pixels: int = 40_000_000
    styles: int = 4
    max_size: int = 1024
    iterations: int = 10_000
    queue: int = 4


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """One run's choices, checked: the ``preset``'s name, ``size`` (the longer side), its ``config`` (the preset's
    with the page's iterations, alpha, beta, colours and seed, reporting every ``preview_every(iterations)``)."""

    preset: str
    size: int
    config: object

    @property
    def summary(self):
        """One line for the runs' list."""
        config = self.config
        colours = f", colours {config.preserve_colors}" if config.preserve_colors else ""
        return (
            f"{self.preset}, {self.size} px, {config.epochs} iterations, alpha {config.alpha:g}, "
            f"beta {config.beta:g}{colours}, seed {config.seed}"
        )


def preview_every(iterations):
    """How often a run of ``iterations`` reports (and the page's picture updates): every ``PREVIEW_EVERY``
    iterations, every iteration for runs under 50, so that a short run shows several pictures too."""
    return max(1, min(PREVIEW_EVERY, iterations // 10))


def _whole(fields, name, default, least, most):
    text = fields.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise NSTError(f"{name} must be a whole number; got {text[:40]!r}") from None
    return check_whole(name, value, least=least, most=most)


def _number(fields, name, default):
    text = fields.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise NSTError(f"{name} must be a number; got {text[:40]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise NSTError(f"{name} must be a finite number of at least 0; got {text[:40]!r}")
    return value


def check_settings(fields, limits):
    """``fields`` (the form's text fields by name) as ``RunSettings``; ``NSTError`` naming the field otherwise."""
    name = fields.get("preset", "").strip() or "first_edition"
    if name not in PRESETS:
        raise NSTError(f"preset must be one of {', '.join(PRESETS)}; got {name[:40]!r}")
    preset = PRESETS[name]
    size = _whole(fields, "size", DEFAULT_SIZE, 32, limits.max_size)
    iterations = _whole(fields, "iterations", min(preset.config.epochs, limits.iterations), 1, limits.iterations)
    colours = fields.get("preserve_colors", "").strip() or None
    if colours not in (None, *COLOR_MODES):
        raise NSTError(f"preserve_colors must be one of {', '.join(COLOR_MODES)} or empty; got {colours[:40]!r}")
    changes = {
        "epochs": iterations,
        "print_every": preview_every(iterations),
        "alpha": _number(fields, "alpha", preset.config.alpha),
        "beta": _number(fields, "beta", preset.config.beta),
        "preserve_colors": colours,
        "seed": _whole(fields, "seed", 0, 0, 2**31 - 1),
    }
    return RunSettings(name, size, dataclasses.replace(preset.config, **changes))


def weights_path(preset_name):
    """The preset's weights file, found as the command finds it (``pretrained-model/``, then ``$NST_TF_HOME``);
    ``NSTError`` with what to download when it is missing."""
    preset = PRESETS[preset_name]
    path = find_weights(preset.model)
    try:
        with open(path, "rb"):
            pass
    except OSError:
        choice = DOWNLOADS.get(os.path.basename(path), ("mat",))[0]
        raise NSTError(f"no weights for the preset {preset_name}: {missing_weights_hint(choice)}") from None
    return path


def prepare_inputs(settings, content_path, style_paths):
    """``(content, styles)``: the content image at ``settings.size`` (its longer side, its aspect ratio kept) and
    the style images fitted to it as the preset fits them, normalized as the preset does (1, h, w, 3); the
    library's ``ImageError`` (an ``NSTError``) for an image it cannot read."""
    preset = PRESETS[settings.preset]
    size = ImageSize(max_size=settings.size)
    normalization = settings.config.normalization
    with _naming("the content photo"):
        pixels = read_image(content_path)
        height, width = size.of(pixels.shape[:2])
        content = reshape_and_normalize_image(fit_image(pixels, width, height, size.content_fit), normalization)
    styles = []
    for number, path in enumerate(style_paths, 1):
        large = preset.large
        with _naming(f"style image {number}"):
            fitted = fit_style(read_image(path), (height, width), size.content_fit, large.style_scale, large.style_size)
            styles.append(reshape_and_normalize_image(fitted, normalization))
    return content, styles


@contextlib.contextmanager
def _naming(what):
    """An ``NSTError`` inside, raised again as one naming ``what``."""
    try:
        yield
    except NSTError as error:
        raise NSTError(f"{what}: {error}") from None

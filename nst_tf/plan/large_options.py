"""Large images without TensorFlow (the command checks them first): the options (``LargeImageOptions``) and the
scale sizes; ``tiles.py`` lays out tiles, ``memory.py`` plans them, ``runs.coarse_to_fine`` runs the scales."""

import math
import numbers
import re
from dataclasses import dataclass
from fractions import Fraction

from ..ground.errors import NSTError
from ..ground.fields import option
from ..ground.checks import MAX_SIDE, check_whole, short_repr, shorter_side_size
from .tiles import DEFAULT_MIN_SIZE

#: The most iterations a scale may run: the loop counts its steps in a 32-bit integer.
MAX_ITERATIONS = 2**31 - 1


def scale_sizes(height, width, scales, factor=2.0, min_size=DEFAULT_MIN_SIZE):
    """(height, width) of each of ``scales`` sizes, smallest first, each ``factor`` times the one before, the
    last (height, width). ``NSTError`` for a size, ``scales`` or ``min_size`` not a positive whole number, a
    ``factor`` not a finite number above 1, or a smallest size below ``min_size`` pixels a side."""
    height, width = check_whole("height", height), check_whole("width", width)
    scales, min_size = check_whole("scales", scales), check_whole("min_size", min_size)
    factor = check_scale_factor(factor)
    h, w = _shrunk(height, factor, scales - 1), _shrunk(width, factor, scales - 1)
    if min(h, w) < min_size:
        most = _most_scales(height, width, factor, min_size)
        fix = f"use at most {most} scale{'s' if most > 1 else ''} at {width}x{height}" if most else "it is too small"
        raise NSTError(
            f"with {scales} scales the first is {w}x{h} pixels, below the network's smallest input "
            f"({min_size}x{min_size}); {fix}"
        )
    return [(_shrunk(height, factor, k), _shrunk(width, factor, k)) for k in range(scales - 1, -1, -1)]


def scales_from(height, width, min_scale, factor=2.0, min_size=DEFAULT_MIN_SIZE):
    """How many sizes coarse to fine takes from the output down, each ``factor`` times smaller, keeping every size
    whose longer side is at least ``min_scale`` pixels (crowsonkb's style-transfer-pytorch's rule) and whose shorter
    side the network takes (``min_size``): at least 1. ``NSTError`` as ``scale_sizes`` raises."""
    height, width = check_whole("height", height), check_whole("width", width)
    min_scale = check_whole("min_scale", min_scale)
    factor = check_scale_factor(factor)
    longer, count = max(height, width), 1
    while _shrunk(longer, factor, count) >= min_scale and count < _MAX_SCALES:
        count += 1
    return max(1, min(count, _most_scales(height, width, factor, min_size)))


#: The most sizes ``scales_from`` counts: a factor just above 1 from MAX_SIDE down stops there.
_MAX_SCALES = 64


def check_scale_factor(factor):
    """``factor`` as a float; ``NSTError`` unless a finite number above 1 (bools are refused)."""
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not 1 < factor < math.inf:
        raise NSTError(f"scale factor must be a finite number above 1; got {short_repr(factor)}")
    return float(factor)


def _shrunk(length, factor, times):
    """``length`` divided ``times`` times by ``factor``, rounded, at least 1 (no overflow for any ``times``)."""
    try:
        return max(1, round(length / factor**times))
    except OverflowError:
        return 1


def _most_scales(height, width, factor, min_size):
    """The most scales whose first size is at least ``min_size`` pixels a side (0 when none is)."""
    shorter = min(height, width)
    if shorter < min_size:
        return 0
    k = max(0, int(math.log(shorter / min_size) / math.log(factor)) - 1)
    while min(_shrunk(height, factor, k + 1), _shrunk(width, factor, k + 1)) >= min_size:
        k += 1
    return k + 1


def style_target(output, style_shape, style_scale=1.0, shorter_side=None):
    """(height, width) a style image of ``style_shape`` is brought to for an ``output`` size: with
    ``shorter_side``, its own aspect ratio with that shorter side (``shorter_side_size``); else
    ``style_size(*output, style_scale)``, to which it is fitted as the content is. ``NSTError`` as those raise."""
    if shorter_side is not None:
        return shorter_side_size(*style_shape, shorter_side)
    return style_size(*output, style_scale)


def check_style_scale(style_scale):
    """``style_scale`` as a float; ``NSTError`` unless a positive finite number (bools are refused)."""
    if isinstance(style_scale, bool) or not isinstance(style_scale, numbers.Real) or not 0 < style_scale < math.inf:
        raise NSTError(f"style_scale must be a positive number; got {short_repr(style_scale)}")
    return float(style_scale)


def style_size(height, width, style_scale, min_size=DEFAULT_MIN_SIZE):
    """(height, width) the style images are fitted to for an output of ``height`` x ``width``; ``NSTError`` for a
    size not a positive whole number, a bad ``style_scale``, or a style size over ``MAX_SIDE`` or under
    ``min_size`` pixels a side."""
    height, width = check_whole("height", height), check_whole("width", width)
    style_scale = check_style_scale(style_scale)
    exact_h, exact_w = height * style_scale, width * style_scale
    if max(exact_h, exact_w) > MAX_SIDE:
        raise NSTError(
            f"style_scale {style_scale:g} makes the style images larger than {MAX_SIDE} pixels a side for a "
            f"{width}x{height} output"
        )
    h, w = max(1, round(exact_h)), max(1, round(exact_w))
    if min(h, w) < min_size:
        raise NSTError(
            f"style_scale {style_scale:g} makes the style images {w}x{h} pixels for a {width}x{height} output, "
            f"below the network's smallest input ({min_size}x{min_size})"
        )
    return h, w


_BYTE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}

#: The largest memory size taken: 1 EiB, a million terabytes.
MAX_BYTES = 2**60


def parse_bytes(text):
    """``"6G"``, ``"512M"``, ``"1.5g"``, ``"123456"`` -> bytes (powers of 1024); a whole number is bytes (a
    negative one is returned for the caller to refuse). ``NSTError`` for ``text`` written negative, not a
    memory size, or over ``MAX_BYTES``."""
    if isinstance(text, numbers.Integral) and not isinstance(text, bool):
        value = int(text)
    else:
        shown = short_repr(text)
        written = str(text)
        if written.strip().startswith("-"):
            raise NSTError(f"a memory size must be positive; got {shown}")
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", written)
        if not match:
            raise NSTError(f"expected a memory size such as 6G, 512M or 1.5G; got {shown}")
        value = int(Fraction(match.group(1)) * _BYTE_UNITS[match.group(2).upper()])
    if value > MAX_BYTES:
        raise NSTError(f"a memory size must be at most {MAX_BYTES // 2**40}T (1 EiB); got {short_repr(text)}")
    return value


@dataclass(frozen=True)
class LargeImageOptions:
    """How a large output is made: coarse to fine, in tiles, with its own texture scale (each field's
    ``metadata["help"]`` is its command-line help). ``NSTError`` for a field out of its range: ``scales``,
    ``scale_epochs``, ``tile_size``, ``style_size`` whole numbers up to their limits, ``style_scale`` positive
    and finite (not with ``style_size``), ``max_memory`` a positive memory size (``parse_bytes``).
    """

    scales: int = option(
        1,
        "coarse to fine: optimize at N sizes, each twice the one before and ending at the requested size, "
        "each starting from the previous result upsampled (1: only the requested size)",
        metavar="N",
    )
    scale_epochs: int | None = option(
        None, "iterations at each size before the last (default: --epochs)", metavar="N", type=int
    )
    scale_factor: float = option(
        2.0,
        "coarse to fine: each size is F times the one before (crowsonkb's style-transfer-pytorch: 1.414, the "
        "square root of 2)",
        metavar="F",
    )
    min_scale: int | None = option(
        None,
        "coarse to fine down from the requested size: every size, each --scale_factor times smaller, whose longer "
        "side is at least N pixels (crowsonkb's --min-scale; instead of --scales)",
        metavar="N",
        type=int,
    )
    carry_state: bool = option(
        False,
        "coarse to fine with Adam: each size starts with the last size's moments, resized, and its step count "
        "(crowsonkb's warm start), rather than afresh",
        action="store_true",
    )
    style_scale: float = option(
        1.0,
        "fit the style images to this fraction of the output size (texture size independent of the output's)",
        metavar="X",
    )
    style_size: int | None = option(
        None,
        "bring each style image to this shorter side, keeping its own aspect ratio, whatever the output's size "
        "(CS231n's style_size; instead of --style_scale)",
        metavar="N",
        type=int,
    )
    max_memory: int | None = option(
        None,
        "memory budget such as 6G or 800M; above it the costs and gradients are computed exactly in tiles "
        "(default: the memory available now)",
        metavar="SIZE",
        type=parse_bytes,
    )
    tile_size: int | None = option(
        None,
        "compute in tiles of N x N pixels (plus the margin the network needs) whatever the memory (default: only "
        "when a run would not fit)",
        metavar="N",
        type=int,
    )

    def __post_init__(self):
        object.__setattr__(self, "scales", check_whole("scales", self.scales))
        for name, most in (("scale_epochs", MAX_ITERATIONS), ("tile_size", MAX_SIDE), ("style_size", MAX_SIDE)):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_whole(name, getattr(self, name), most=most))
        object.__setattr__(self, "style_scale", check_style_scale(self.style_scale))
        object.__setattr__(self, "scale_factor", check_scale_factor(self.scale_factor))
        if self.min_scale is not None:
            object.__setattr__(self, "min_scale", check_whole("min_scale", self.min_scale, most=MAX_SIDE))
            if self.scales != 1:
                raise NSTError("scales and min_scale: give one of them")
        object.__setattr__(self, "carry_state", bool(self.carry_state))
        if self.style_size is not None and self.style_scale != 1.0:
            raise NSTError("style_size and style_scale: give one of them")
        if self.max_memory is not None:
            try:
                max_memory = parse_bytes(self.max_memory)
            except NSTError as error:
                raise NSTError(f"max_memory: {error}") from None
            if max_memory <= 0:
                raise NSTError(f"max_memory must be positive; got {short_repr(self.max_memory)}")
            object.__setattr__(self, "max_memory", max_memory)

    @property
    def coarse_to_fine(self):
        """Whether a run may take several sizes (``scales`` above 1, or ``min_scale`` given)."""
        return self.scales != 1 or self.min_scale is not None

    def sizes(self, height, width):
        """(height, width) of each size of a ``height`` x ``width`` output, smallest first (``scale_sizes`` by
        ``scales``, or by ``min_scale`` through ``scales_from``); ``NSTError`` as those raise."""
        count = self.scales if self.min_scale is None else scales_from(height, width, self.min_scale, self.scale_factor)
        return scale_sizes(height, width, count, self.scale_factor)

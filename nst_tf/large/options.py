"""Large images without TensorFlow: the options (``LargeImageOptions``) and the scale sizes.

Kept free of TensorFlow, like ``config.py``, so that the command can check
large-image options and size scales before TensorFlow is imported.
``tiles.py`` lays out tiles, ``memory.py`` plans them, ``multiscale.py``
runs the scales.
"""

import math
import re
from dataclasses import dataclass, field

from ..errors import NSTError
from .tiles import DEFAULT_MIN_SIZE

# Scales -------------------------------------------------------------------------------------


def scale_sizes(height, width, scales, factor=2.0, min_size=DEFAULT_MIN_SIZE):
    """(height, width) of each of ``scales`` sizes, smallest first, each ``factor`` times the one before.

    The last is (height, width). Raises ``NSTError`` when the smallest would
    be below the network's smallest input (``min_size`` pixels a side).
    """
    if isinstance(scales, bool) or not isinstance(scales, int) or scales < 1:
        raise NSTError(f"scales must be a positive whole number; got {scales!r}")
    if not (isinstance(factor, (int, float)) and factor > 1):
        raise NSTError(f"scale factor must be a number above 1; got {factor!r}")
    sizes = []
    for k in range(scales - 1, -1, -1):
        shrink = factor**k
        sizes.append((max(1, round(height / shrink)), max(1, round(width / shrink))))
    h, w = sizes[0]
    if min(h, w) < min_size:
        raise NSTError(
            f"with {scales} scales the first is {w}x{h} pixels, below the network's smallest input "
            f"({min_size}x{min_size}); use fewer scales"
        )
    return sizes


def style_size(height, width, style_scale, min_size=DEFAULT_MIN_SIZE):
    """(height, width) the style images are fitted to for an output of ``height`` x ``width``."""
    h, w = max(1, round(height * style_scale)), max(1, round(width * style_scale))
    if min(h, w) < min_size:
        raise NSTError(
            f"style_scale {style_scale:g} makes the style images {w}x{h} pixels for a {width}x{height} output, "
            f"below the network's smallest input ({min_size}x{min_size})"
        )
    return h, w


# Options ------------------------------------------------------------------------------------

_BYTE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text):
    """``"6G"``, ``"512M"``, ``"1.5g"``, ``"123456"`` -> bytes (units are powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not match:
        raise NSTError(f"expected a memory size such as 6G, 512M or 1.5G; got {text!r}")
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2).upper()])


def _option(default, help, **argparse):
    return field(default=default, metadata={"help": help, **argparse})


@dataclass(frozen=True)
class LargeImageOptions:
    """How a large output is made: coarse to fine, in tiles, with its own texture scale.

    Each field's ``metadata["help"]`` is its command-line help.
    """

    scales: int = _option(
        1,
        "coarse to fine: optimize at N sizes, each twice the one before and ending at the requested size, "
        "each starting from the previous result upsampled (1: only the requested size)",
        metavar="N",
    )
    scale_epochs: int | None = _option(
        None, "iterations at each size before the last (default: --epochs)", metavar="N", type=int
    )
    style_scale: float = _option(
        1.0,
        "fit the style images to this fraction of the output size (texture size independent of the output's)",
        metavar="X",
    )
    max_memory: int | None = _option(
        None,
        "memory budget such as 6G or 800M; above it the costs and gradients are computed exactly in tiles "
        "(default: the memory available now)",
        metavar="SIZE",
        type=parse_bytes,
    )
    tile_size: int | None = _option(
        None,
        "compute in tiles of N x N pixels (plus the margin VGG-19 needs) whatever the memory (default: only "
        "when a run would not fit)",
        metavar="N",
        type=int,
    )

    def __post_init__(self):
        for name, least in (("scales", 1), ("scale_epochs", 1), ("tile_size", 1)):
            value = getattr(self, name)
            if value is None and name != "scales":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise NSTError(f"{name} must be a positive whole number; got {value!r}")
        if isinstance(self.style_scale, bool) or not isinstance(self.style_scale, (int, float)):
            raise NSTError(f"style_scale must be a positive number; got {self.style_scale!r}")
        if not (math.isfinite(self.style_scale) and self.style_scale > 0):
            raise NSTError(f"style_scale must be a positive number; got {self.style_scale!r}")
        if self.max_memory is not None:
            object.__setattr__(self, "max_memory", parse_bytes(self.max_memory))
            if self.max_memory <= 0:
                raise NSTError(f"max_memory must be positive; got {self.max_memory!r}")

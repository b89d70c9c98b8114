"""Large images without TensorFlow: the options, the tile geometry and the scale sizes.

Kept free of TensorFlow, like ``config.py``, so that the command can check
large-image options, plan tiles and size scales before TensorFlow is
imported. ``tiling.py`` computes the costs in tiles and ``multiscale.py``
runs the scales; both take their geometry from here.

Why tiles give the untiled costs exactly
----------------------------------------
A Gram matrix is a sum over positions, ``G = sum_p F(p) F(p)^T``, and so is
the content cost, so both can be summed tile by tile from each tile's *core*
(the tiles' cores partition the image). A tile's activations equal the full
image's wherever nothing the network sees differs: a tile is extended by a
*margin* on its inner sides and keeps the image's own border elsewhere, and
the margin must cover the positions that see the tile's artificial edge.
Counted at one layer's resolution, an artificial edge makes one more
position wrong after each 3x3 convolution (its zero padding stands where real
pixels were) and ``ceil(k / 2)`` of ``k`` wrong positions remain after a 2x2
pooling. A layer at stride ``d`` with ``k`` wrong positions needs a margin of
``k * d`` input pixels: 80 for conv5_1, 40 for the course's content layer
conv4_2, 128 for avgpool5.

The poolings must also see the same windows as in the full image: tiles
start at multiples of the total stride of the deepest layer used
(``2 ** poolings``: 16 through conv5_1, 32 with avgpool5), and every
artificial edge lies on that grid, so inside a tile every pooled length is
even, average pooling's SAME padding and max pooling's VALID cropping happen
only at the image's real bottom and right borders, exactly as in the full
image. Since the backward pass of a tile runs through the same functions of
the same pixels, the gradient of each core's cost terms is the full image's
too; ``tiling.py`` sums those over the tiles.
"""

import math
import re
from dataclasses import dataclass, field

from .errors import NSTError
from .layers import GRAPH_LAYERS, MIN_IMAGE_SIZE, POOLINGS

# Tile geometry ------------------------------------------------------------------------------


def _check_pooling(pooling):
    if pooling not in POOLINGS:
        raise NSTError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")


def _deepest(layers):
    unknown = [name for name in layers if name not in GRAPH_LAYERS]
    if unknown:
        raise NSTError(f"{unknown[0]!r} is not a VGG-19 layer; valid names: {', '.join(GRAPH_LAYERS)}")
    if not layers:
        raise NSTError("layers: give at least one layer")
    return max(layers, key=GRAPH_LAYERS.index)


def layer_stride(layer):
    """Input pixels per position of ``layer``: ``2 ** (poolings up to and including it)``."""
    return 2 ** sum(1 for name in GRAPH_LAYERS[: GRAPH_LAYERS.index(_deepest([layer])) + 1] if name.startswith("avg"))


def edge_reach(layer):
    """Positions of ``layer``, next to a tile's artificial edge, that differ from the full image's.

    One more after each 3x3 convolution, ``ceil(k / 2)`` of ``k`` after each
    2x2 pooling (the edge lies on the pooling grid); see the module docstring.
    """
    reach = 0
    for name in GRAPH_LAYERS[: GRAPH_LAYERS.index(_deepest([layer])) + 1]:
        reach = reach + 1 if name.startswith("conv") else -(-reach // 2)
    return reach


def tile_alignment(layers):
    """The grid tiles start on: the total stride of the deepest of ``layers`` (16 through conv5_1)."""
    return layer_stride(_deepest(layers))


def required_margin(layers):
    """Input pixels a tile needs beyond its core on inner sides, for all of ``layers`` to be exact.

    The largest ``edge_reach(l) * layer_stride(l)`` over the layers (that of
    the deepest), rounded up to ``tile_alignment(layers)``.
    """
    need = max(edge_reach(layer) * layer_stride(layer) for layer in layers) if layers else 0
    align = tile_alignment(layers)
    return -(-need // align) * align


def layer_length(length, layer, pooling="avg"):
    """Size along one axis of ``layer``'s activation for an input ``length`` pixels long.

    Average pooling (the course's, SAME padding) rounds each halving up, max
    pooling (Keras', VALID) rounds it down.
    """
    _check_pooling(pooling)
    for name in GRAPH_LAYERS[: GRAPH_LAYERS.index(_deepest([layer])) + 1]:
        if name.startswith("avg"):
            length = -(-length // 2) if pooling == "avg" else length // 2
    return length


@dataclass(frozen=True)
class Span:
    """One tile along one axis, in input pixels: its core ``[start, stop)`` and extent ``[first, last)``.

    ``first <= start < stop <= last``; the extent is what the network sees.
    """

    start: int
    stop: int
    first: int
    last: int

    def core_at(self, layer, length, pooling="avg"):
        """The core's ``(offset, size)`` in the tile's own ``layer`` activation, along this axis.

        ``length``: the full image's size along the axis. The last tile's core
        runs to the end of the layer, which pooling can round (max pooling can
        leave it empty).
        """
        stride = layer_stride(layer)
        begin = self.start // stride
        end = self.stop // stride if self.stop < length else layer_length(length, layer, pooling)
        return (self.start - self.first) // stride, max(0, end - begin)


def spans(length, tile, margin, align):
    """Tiles along an axis ``length`` pixels long: cores of ``tile`` pixels (the last may be shorter).

    Each extent adds ``margin`` on inner sides, none beyond the image, and is
    widened on an inner side (staying on the ``align`` grid) where it would
    be shorter than the network's smallest input, 32 pixels.
    """
    for name, value in (("tile size", tile), ("margin", margin), ("alignment", align)):
        if not isinstance(value, int) or isinstance(value, bool) or value < (1 if name != "margin" else 0):
            raise NSTError(f"{name} must be a positive whole number; got {value!r}")
    if tile % align or margin % align:
        raise NSTError(f"tile size {tile} and margin {margin} must be multiples of the pooling grid, {align} pixels")
    if length < MIN_IMAGE_SIZE:
        raise NSTError(f"an axis of {length} pixels is below the network's smallest input, {MIN_IMAGE_SIZE}")
    result = []
    for start in range(0, length, tile):
        stop = min(start + tile, length)
        first, last = max(0, start - margin), min(length, stop + margin)
        if last - first < MIN_IMAGE_SIZE:
            first = max(0, (last - MIN_IMAGE_SIZE) // align * align)
            last = min(length, max(last, first + -(-MIN_IMAGE_SIZE // align) * align))
        result.append(Span(start, stop, first, last))
    return result


@dataclass(frozen=True)
class Tile:
    """One tile of an image: its ``rows`` and ``cols`` spans."""

    rows: Span
    cols: Span

    @property
    def extent_pixels(self):
        return (self.rows.last - self.rows.first) * (self.cols.last - self.cols.first)


def tile_grid(height, width, tile, margin, align):
    """The tiles of a ``height`` x ``width`` image, row by row; see ``spans``.

    ``tile``: the core's side, or its (rows, columns).
    """
    rows, cols = tile if isinstance(tile, tuple) else (tile, tile)
    return [Tile(r, c) for r in spans(height, rows, margin, align) for c in spans(width, cols, margin, align)]


def best_tile_shape(height, width, margin, align, max_extent_pixels):
    """The (rows, columns) of tile cores whose extents all stay within ``max_extent_pixels``.

    Of all shapes on the ``align`` grid, the one computing the fewest pixels
    in all (extents overlap by the margins, and each is computed twice), then
    the one with the fewest tiles: square-ish tiles for a small budget,
    full-width strips (margins on two sides only) when a strip fits. None
    when not even the smallest tile fits.
    """
    best = None
    for rows in range(align, round_tile(height, align) + 1, align):
        row_spans = spans(height, rows, margin, align)
        tallest = max(s.last - s.first for s in row_spans)
        if tallest > max_extent_pixels:
            continue
        # The widest columns whose extents fit beside the tallest rows.
        cols = None
        for candidate in range(round_tile(width, align), 0, -align):
            col_spans = spans(width, candidate, margin, align)
            if tallest * max(s.last - s.first for s in col_spans) <= max_extent_pixels:
                cols = candidate
                break
        if cols is None:
            continue
        total = sum(r.last - r.first for r in row_spans) * sum(c.last - c.first for c in col_spans)
        key = (total, len(row_spans) * len(col_spans))
        if best is None or key < best[0]:
            best = (key, (rows, cols))
    return None if best is None else best[1]


def round_tile(tile, align):
    """``tile`` rounded up to a multiple of ``align``."""
    return -(-tile // align) * align


# Scales -------------------------------------------------------------------------------------


def scale_sizes(height, width, scales, factor=2.0):
    """(height, width) of each of ``scales`` sizes, smallest first, each ``factor`` times the one before.

    The last is (height, width). Raises ``NSTError`` when the smallest would
    be below the network's smallest input (32 pixels a side).
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
    if min(h, w) < MIN_IMAGE_SIZE:
        raise NSTError(
            f"with {scales} scales the first is {w}x{h} pixels, below the network's smallest input "
            f"({MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}); use fewer scales"
        )
    return sizes


def style_size(height, width, style_scale):
    """(height, width) the style images are fitted to for an output of ``height`` x ``width``."""
    h, w = max(1, round(height * style_scale)), max(1, round(width * style_scale))
    if min(h, w) < MIN_IMAGE_SIZE:
        raise NSTError(
            f"style_scale {style_scale:g} makes the style images {w}x{h} pixels for a {width}x{height} output, "
            f"below the network's smallest input ({MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE})"
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

"""Tile geometry without TensorFlow: spans, grids, tile shapes and the ``TilePlan`` a run is given.

The receptive-field figures (strides, reaches, margins, lengths) are the
network's (``nst_tf.plan.networks.network_registry.Network``); this module lays tiles out with
them. ``nst_tf.objective.tiled`` computes the costs in tiles.

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
too; ``nst_tf.objective.tiled`` sums those over the tiles.
"""

import numbers
from dataclasses import dataclass

from ..ground.checks import MAX_SIDE, check_whole, short_repr
from ..ground.errors import NSTError
from .networks.network_registry import get_network

#: The smallest input of the networks' default, VGG-19: what ``spans`` assumes unless told.
DEFAULT_MIN_SIZE = 32

#: The most tiles a grid may have: listing more takes longer than any run they could serve.
MAX_TILES = 2**24


def _check_count(count, what):
    if count > MAX_TILES:
        raise NSTError(f"{what} pixels makes {count} tiles, more than {MAX_TILES}; use larger tiles")


@dataclass(frozen=True)
class Span:
    """One tile along one axis, in input pixels: its core ``[start, stop)`` and extent ``[first, last)``.

    ``first <= start < stop <= last``; the extent is what the network sees.
    """

    start: int
    stop: int
    first: int
    last: int

    def core_at(self, stride, length, layer_length):
        """The core's ``(offset, size)`` in the tile's own activation of a layer at ``stride``, along this axis.

        ``length``: the full image's size along the axis, ``layer_length``:
        the layer's. The last tile's core runs to the end of the layer, which
        pooling can round (max pooling can leave it empty).
        """
        begin = self.start // stride
        end = self.stop // stride if self.stop < length else layer_length
        return (self.start - self.first) // stride, max(0, end - begin)


def spans(length, tile, margin, align, min_size=DEFAULT_MIN_SIZE):
    """Tiles along an axis ``length`` pixels long: cores of ``tile`` pixels (the last may be shorter).

    Each extent adds ``margin`` on inner sides, none beyond the image, and is
    widened on an inner side (staying on the ``align`` grid) where it would
    be shorter than the network's smallest input, ``min_size`` pixels.

    Raises:
        NSTError: a size is not a whole number in range, ``tile`` or ``margin`` is not a multiple of ``align``,
            ``length`` is below ``min_size``, or the axis would take more than ``MAX_TILES`` tiles.
    """
    length, align, min_size = (
        check_whole(n, v) for n, v in (("length", length), ("align", align), ("min_size", min_size))
    )
    # A tile or margin rounded up to the grid may pass MAX_SIDE; it is still one tile, or no margin cut.
    tile, margin = check_whole("tile", tile, most=2 * MAX_SIDE), check_whole("margin", margin, 0, 2 * MAX_SIDE)
    if tile % align or margin % align:
        raise NSTError(f"tile {tile} and margin {margin} must be multiples of the pooling grid, {align} pixels")
    if length < min_size:
        raise NSTError(f"length {length} (the image's side) is below the network's smallest input, {min_size} pixels")
    _check_count(-(-length // tile), f"{length} pixels in tiles of {tile}")
    result = []
    for start in range(0, length, tile):
        stop = min(start + tile, length)
        first, last = max(0, start - margin), min(length, stop + margin)
        if last - first < min_size:
            first = max(0, (last - min_size) // align * align)
            last = min(length, max(last, first + -(-min_size // align) * align))
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


def tile_grid(height, width, tile, margin, align, min_size=DEFAULT_MIN_SIZE):
    """The tiles of a ``height`` x ``width`` image, row by row; see ``spans``.

    ``tile``: the core's side, or its (rows, columns).

    Raises:
        NSTError: ``tile`` is not a side or a (rows, columns) pair of whole numbers, a size is not a positive
            whole number, the image is below ``min_size``, the grid would have more than ``MAX_TILES`` tiles,
            or as ``spans``.
    """
    if isinstance(tile, tuple) and len(tile) != 2:
        raise NSTError(f"tile must be a side or a (rows, columns) pair; got {short_repr(tile)}")
    rows, cols = (
        check_whole("tile", n, most=2 * MAX_SIDE) for n in (tile if isinstance(tile, tuple) else (tile, tile))
    )
    height, width = check_whole("height", height), check_whole("width", width)
    min_size = check_whole("min_size", min_size)
    if min(height, width) < min_size:
        raise NSTError(
            f"a {width}x{height} image is below the network's smallest input ({min_size}x{min_size}), tiled or not"
        )
    _check_count(-(-height // rows) * -(-width // cols), f"a {width}x{height} image in tiles of {cols}x{rows}")
    row_spans = spans(height, rows, margin, align, min_size)
    return [Tile(r, c) for r in row_spans for c in spans(width, cols, margin, align, min_size)]


def best_tile_shape(height, width, margin, align, max_extent_pixels, min_size=DEFAULT_MIN_SIZE):
    """The (rows, columns) of tile cores whose extents all stay within ``max_extent_pixels``.

    Of all shapes on the ``align`` grid, the one computing the fewest pixels
    in all (extents overlap by the margins, and each is computed twice), then
    the one with the fewest tiles: square-ish tiles for a small budget,
    full-width strips (margins on two sides only) when a strip fits. None
    when not even the smallest tile fits.

    Raises:
        NSTError: ``align`` is not a positive whole number, or as ``spans`` for the sizes given.
    """
    align = check_whole("align", align)
    best = None
    for rows in range(align, round_tile(height, align) + 1, align):
        row_spans = spans(height, rows, margin, align, min_size)
        tallest = max(s.last - s.first for s in row_spans)
        if tallest > max_extent_pixels:
            continue
        # The widest columns whose extents fit beside the tallest rows.
        cols = None
        for candidate in range(round_tile(width, align), 0, -align):
            col_spans = spans(width, candidate, margin, align, min_size)
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


def tile_sides(tile_size):
    """(rows, columns) of a tile's core from a side or a pair.

    Raises:
        NSTError: ``tile_size`` is neither a whole number from 1 to ``MAX_SIDE`` nor a pair of them.
    """
    sides = tuple(tile_size) if isinstance(tile_size, (tuple, list)) else (tile_size, tile_size)
    if len(sides) != 2 or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 1 <= s <= MAX_SIDE for s in sides
    ):
        raise NSTError(
            f"tile_size must be a positive whole number of pixels or a (rows, columns) pair of them, each at most "
            f"{MAX_SIDE}; got {short_repr(tile_size)}"
        )
    return tuple(int(s) for s in sides)


def _layer_names(layers):
    """``layers`` as a tuple of names without repeats; ``NSTError`` naming ``layers`` for anything but names."""
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise NSTError(f"layers must be a list of layer names; got {short_repr(layers)}")
    layers = tuple(layers)
    if not all(isinstance(name, str) for name in layers):
        raise NSTError(f"layers must be a list of layer names; got {short_repr(layers)}")
    return tuple(dict.fromkeys(layers))


@dataclass(frozen=True)
class TilePlan:
    """How a run is tiled: computed once (``TilePlan.of`` or ``memory.plan_tiles``) and handed on.

    Attributes:
        network: the ``Network`` whose geometry the tiles follow.
        layers: the cost's layers (they set the margin and the grid).
        tile_size: (rows, columns) of a tile's core, on the grid.
        margin: input pixels a tile extends beyond its core on inner sides.
        keep_forward: whether every tile's forward pass is kept for the
            backward one (``TiledStyleCost``).
        pooling: the network's pooling (it decides the layers' lengths).
    """

    network: object
    layers: tuple
    tile_size: tuple
    margin: int
    keep_forward: bool = False
    pooling: str | None = None

    @classmethod
    def of(cls, layers, tile_size, margin=None, keep_forward=False, network="vgg19", pooling=None):
        """The plan for tiles of ``tile_size`` (a side or (rows, columns), rounded up to the grid).

        ``margin``: by default the least that keeps every layer exact
        (``Network.margin``); a larger one is rounded up to the grid.

        Raises:
            NSTError: an unknown network or one that cannot be tiled; ``layers`` not a non-empty list of the
                network's layer names; ``margin`` below what the layers need; ``keep_forward`` not a bool; a bad
                ``tile_size``; or a ``pooling`` the network does not have.
        """
        network = get_network(network)
        layers = _layer_names(layers)
        if not network.tileable:
            raise NSTError(f"{network.title} cannot be computed in tiles")
        align, need = network.alignment(layers), network.margin(layers)
        if margin is None:
            margin = need
        elif isinstance(margin, bool) or not isinstance(margin, numbers.Integral) or margin < need:
            raise NSTError(
                f"margin must be a whole number of at least {need} pixels, what {network.deepest(layers)} needs "
                f"to be exact in tiles; got {short_repr(margin)}"
            )
        margin = check_whole("margin", margin, 0)
        if not isinstance(keep_forward, bool):
            raise NSTError(f"keep_forward must be True or False; got {keep_forward!r}")
        tile = tuple(round_tile(side, align) for side in tile_sides(tile_size))
        pooling = network.poolings[0] if pooling is None else pooling
        network.check_pooling(pooling)
        return cls(network, layers, tile, round_tile(margin, align), keep_forward, pooling)

    @property
    def align(self):
        """The grid tiles start on (pixels)."""
        return self.network.alignment(self.layers)

    def grid(self, height, width):
        """The tiles of a ``height`` x ``width`` image, row by row."""
        return tile_grid(height, width, self.tile_size, self.margin, self.align, self.network.min_image_size)

    def splits(self, height, width):
        """Whether an image of ``height`` x ``width`` takes more than one tile."""
        return len(self.grid(height, width)) > 1

    def layer_size(self, layer, height, width):
        """(rows, columns) of ``layer``'s activation of a ``height`` x ``width`` image."""
        return tuple(self.network.length(n, layer, self.pooling) for n in (height, width))

    def core_box(self, tile, layer, height, width):
        """((row offset, rows), (col offset, cols)) of ``tile``'s core in its ``layer`` activation."""
        stride = self.network.stride(layer)
        n_H, n_W = self.layer_size(layer, height, width)
        return tile.rows.core_at(stride, height, n_H), tile.cols.core_at(stride, width, n_W)

    def core_offset(self, tile, layer):
        """(row, column) where ``tile``'s core starts in the whole image's ``layer`` activation."""
        stride = self.network.stride(layer)
        return tile.rows.start // stride, tile.cols.start // stride

    def with_pooling(self, pooling):
        """This plan for a network with ``pooling``."""
        self.network.check_pooling(pooling)
        return TilePlan(self.network, self.layers, self.tile_size, self.margin, self.keep_forward, pooling)

"""Tile geometry without TensorFlow: spans, grids, tile shapes and the ``TilePlan`` a run is given, laid
out with the network's receptive-field figures (``Network``); ``nst_tf.objective.tiled`` computes in tiles.

Why tiles give the untiled costs exactly: a Gram matrix ``G = sum_p F(p) F(p)^T`` and the content cost are sums
over positions, so both sum over the tiles' *cores*, which partition the image. A tile's activations equal the
whole image's wherever what the network sees does not differ: a tile extends by a *margin* on its inner sides,
covering the positions that see its artificial edge. That edge makes one more position wrong after each 3x3
convolution (zero padding where real pixels were), and ``ceil(k / 2)`` of ``k`` remain after a 2x2 pooling; a
layer at stride ``d`` with ``k`` wrong positions needs ``k * d`` pixels of margin: 80 for conv5_1, 40 for
conv4_2, 128 for avgpool5. Tiles start at multiples of the deepest layer's stride (16 through conv5_1, 32 with
avgpool5), so every pooling sees the whole image's windows, and padding or cropping happens only at the image's
real bottom and right borders. The backward pass runs through the same functions of the same pixels, so each
core's gradient is the whole image's too.
"""

import dataclasses
import numbers
from dataclasses import dataclass

from ..ground.checks import MAX_SIDE, check_whole, short_repr
from ..ground.errors import NSTError
from .networks.base import Network
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
    """One tile along one axis, in input pixels: its core ``[start, stop)`` inside its extent ``[first, last)``,
    what the network sees."""

    start: int
    stop: int
    first: int
    last: int

    def core_at(self, stride, length, layer_length):
        """The core's ``(offset, size)`` in the tile's activation of a layer at ``stride`` (the image ``length``
        long, the layer ``layer_length``); the last core runs to the layer's end (max pooling can leave it empty)."""
        begin = self.start // stride
        end = self.stop // stride if self.stop < length else layer_length
        return (self.start - self.first) // stride, max(0, end - begin)


def spans(length, tile, margin, align, min_size=DEFAULT_MIN_SIZE):
    """Tiles along an axis ``length`` pixels long: cores of ``tile`` pixels (the last may be shorter), each extent
    adding ``margin`` on inner sides, widened on the ``align`` grid to at least ``min_size`` pixels. ``NSTError``
    for a size not a whole number in range, a ``tile`` or ``margin`` off the ``align`` grid, a ``length`` below
    ``min_size``, or more than ``MAX_TILES`` tiles.
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
    """The tiles of a ``height`` x ``width`` image, row by row, in cores of ``tile`` (a side or (rows, columns));
    ``NSTError`` for a bad ``tile`` or size, an image below ``min_size``, over ``MAX_TILES`` tiles, or as ``spans``."""
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
    """The (rows, columns) of tile cores on the ``align`` grid whose extents all fit ``max_extent_pixels`` and that
    compute the fewest pixels in all (extents overlap by the margins), then the fewest tiles: square-ish
    for a small budget, full-width strips when a strip fits; None when none fits. ``NSTError`` as ``spans``."""
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
    """(rows, columns) of a tile's core from a side or a pair; ``NSTError`` unless whole numbers up to ``MAX_SIDE``."""
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
    layers = tuple(Network.layer_list(layers))
    if not all(isinstance(name, str) for name in layers):
        raise NSTError(f"layers must be a list of layer names; got {short_repr(layers)}")
    return tuple(dict.fromkeys(layers))


@dataclass(frozen=True)
class TilePlan:
    """How a run is tiled, computed once (``TilePlan.of``, ``memory.plan_tiles``): the ``network`` whose geometry
    the tiles follow, the cost's ``layers`` (they set the margin and the grid), the (rows, columns)
    ``tile_size`` of a core, the ``margin`` (input pixels beyond a core on inner sides), whether to
    ``keep_forward`` every tile's forward pass for the backward one, and the network's ``pooling``."""

    network: object
    layers: tuple
    tile_size: tuple
    margin: int
    keep_forward: bool = False
    pooling: str | None = None

    @classmethod
    def of(cls, layers, tile_size, margin=None, keep_forward=False, network="vgg19", pooling=None):
        """The plan for tiles of ``tile_size`` (a side or (rows, columns)) and ``margin`` (by default the least
        that keeps every layer exact, ``Network.margin``), both rounded up to the grid. ``NSTError`` for an
        unknown or untileable network, bad ``layers``, a ``margin`` below what they need, a ``keep_forward`` not
        a bool, a bad ``tile_size``, or a ``pooling`` the network lacks.
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
        return dataclasses.replace(self, pooling=pooling)

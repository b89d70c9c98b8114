"""Stylizing with a trained fast style model (Johnson et al. 2016): one pass of its transformation network, no VGG
weights and no style image; large images in overlapping tiles; ``stylize_fast`` for a library caller.

Sizes: an image keeps its own size and aspect ratio; ``max_size`` caps its longer side (it never enlarges one).

Tiles: the network's activations take ``forward_bytes_per_pixel(spec)`` bytes a pixel, so an image whose pass would
exceed the memory budget runs in square tiles (``FastTilePlan``) that overlap by ``OVERLAP`` pixels, blended
linearly across each overlap. Each tile runs in a window of ``context_margin(spec)`` more pixels of the image
around it (the network's receptive radius), aligned to the stride-2 stages' grid, and is cropped back, so its
pixels see what they see in the whole image, not reflected borders. Instance normalization would take each
tile's own mean and variance, and tiles of sky and of foliage would come out in different tones; so every tile
is normalized with the moments of one pass over the whole image first, brought down to the largest size the
budget holds (``stats_size``). Where that is the image's own size (``--tile_size`` on an image that fits) the
tiled result is the whole image's up to float rounding; else the moments are those of a smaller copy, and the
tones shift a little, the same on every tile.

Nothing here imports TensorFlow at import time (the command checks its input first) nor prints.
"""

import dataclasses
import math
import os

import numpy as np
import PIL.Image

from ..ground.errors import ImageError, NSTError, quoted
from ..ground.fields import option
from ..ground.checks import size_for
from ..plan.large_options import LargeImageOptions
from ..plan.memory import available_bytes

#: The smallest side a fast model takes: the network's two stride-2 stages and 3x3 reflection padding at a
#: quarter of the size need 2 pixels there.
MIN_SIDE = 8
#: Pixels each tile shares with its neighbour, blended linearly (fewer for tiles under 128 pixels).
OVERLAP = 32
#: The smallest tile planned from the memory budget, and tiles' sides are multiples of this.
TILE_STEP = 32


@dataclasses.dataclass(frozen=True)
class FastOptions:
    """The command's options of a fast style model (each field's ``metadata["help"]`` is its help)."""

    fast_model: str | None = option(
        None,
        "stylize with a trained fast style model: the folder python -m nst_tf.train wrote (one pass of its network; "
        "no VGG weights, no style image, no iterations); each image keeps its own size and aspect ratio, --max_size "
        "caps the longer side, and --max_memory and --tile_size say when it runs in tiles",
        metavar="DIR",
    )
    fast_style: list | None = option(
        None,
        "with --fast_model: which of its styles, by name, or a blend of them, one weight per style (e.g. 0.3 0.7) "
        "(default: its first style)",
        nargs="+",
        metavar="STYLE",
        type=str,
    )


def parse_style(words):
    """``--fast_style``'s words as ``FastModel.style_weights`` takes them: None, one style's name, or numbers."""
    if not words:
        return None
    try:
        return tuple(float(word) for word in words)
    except ValueError:
        if len(words) == 1:
            return words[0]
        raise NSTError(f"--fast_style: give one style's name, or one number per style; got {' '.join(words)!r:.80}")


def fast_size(height, width, max_size=None, even=False):
    """The (height, width) a fast model stylizes an image of ``height`` x ``width`` at: its own, or with the longer
    side ``max_size`` where it is longer (never enlarged); with ``even``, each side rounded down to an even number
    (a video's H.264 colour). ``ImageError`` for a side under ``MIN_SIDE``."""
    if max_size is not None and max(height, width) > max_size:
        height, width = size_for(height, width, max_size)
    if even:
        height, width = height - height % 2, width - width % 2
    if min(height, width) < MIN_SIDE:
        raise ImageError(f"is {width}x{height} pixels; a fast model takes images of at least {MIN_SIDE}x{MIN_SIDE}")
    return height, width


def forward_bytes_per_pixel(spec):
    """Bytes a pass of ``spec``'s network (a ``TransformSpec``) holds per input pixel: every layer's float32
    output counted as if all were alive at once (an upper bound), at full, half and quarter size."""
    c1, c2, c3 = spec.channels
    full = 15 + 3 * c1 + 2 * c2 + 4 * c1 + 9  # input, scaling, padding; the first stage; the last stage
    half = 3 * c2 + c1 + 2 * c3 + 3 * c2  # the first stride-2 stage; the first upsampling
    quarter = 3 * c3 + c2 + spec.blocks * 8 * c3  # the second stride-2 stage; each residual block's 8 outputs
    return 4 * (full + half / 4 + quarter / 16)


def context_margin(spec):
    """Pixels of real image a tile's pass needs around it for its own pixels to come out as in the whole image's:
    the network's receptive radius (9x9 convolutions at full size, 3x3 ones at half and quarter size, two in each
    residual block), rounded up to a multiple of 4 so that windows keep the stride-2 stages' grid."""
    radius = 4 + 1 + 2 + 8 * spec.blocks + 2 + 2 + 1 + 4 + 4  # in, down1, down2, blocks, up1, up2, out, rounding
    return -(-radius // 4) * 4


@dataclasses.dataclass(frozen=True)
class FastTilePlan:
    """Where the tiles of an image of ``height`` x ``width`` lie: ``rows`` and ``cols``, each a tuple of
    ``(start, stop)`` spans, neighbours overlapping by at least ``overlap`` pixels; ``tile``: the longest span;
    each tile runs in a window of ``margin`` more pixels of the image on each side (fewer at its edges), cropped
    back; ``stats_size``: the (height, width) the whole image's normalization moments are taken at;
    ``peak_bytes``: the larger of that pass and one window's pass plus the bands of rows being blended."""

    height: int
    width: int
    tile: int
    overlap: int
    margin: int
    rows: tuple
    cols: tuple
    stats_size: tuple
    peak_bytes: int

    @property
    def count(self):
        return len(self.rows) * len(self.cols)

    @property
    def window_side(self):
        """The longest side a tile's window can have (``window``: its start moves back up to 3 pixels)."""
        return window_side(self.tile, self.margin)

    def window(self, span, length):
        """The ``(start, stop)`` a tile's ``span`` along a side of ``length`` runs in: ``margin`` more each way
        within the image, its start a multiple of 4 (the stride-2 stages' grid of the whole image)."""
        start, stop = span
        return max(0, start - self.margin) // 4 * 4, min(length, stop + self.margin)


def window_side(tile, margin):
    """The longest side of the window a tile of ``tile`` pixels runs in (``FastTilePlan.window``)."""
    return tile + 2 * margin + 3


def spans(length, tile, overlap):
    """``(start, stop)`` spans of ``tile`` pixels covering ``0 .. length``, evenly spread, neighbours overlapping by
    at least ``overlap``; one span when ``tile`` covers it all."""
    if tile >= length:
        return ((0, length),)
    count = math.ceil((length - overlap) / (tile - overlap))
    starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    return tuple((start, start + tile) for start in starts)


def plan_tiles(height, width, spec, budget=None, tile_size=None):
    """The ``FastTilePlan`` of an image of ``height`` x ``width`` for ``spec``'s network, or None when its pass fits
    ``budget`` bytes whole (None: the memory available now; unknown: whole) and no ``tile_size`` is asked. Tiles
    are ``tile_size`` pixels a side where given, else the largest multiple of ``TILE_STEP`` whose window's pass and
    bands fit the budget (``TILE_STEP`` at least)."""
    per_pixel, margin = forward_bytes_per_pixel(spec), context_margin(spec)
    budget = available_bytes() if budget is None else budget
    fits = budget is None or height * width * per_pixel <= budget
    if tile_size is None and fits:
        return None
    stats = (height, width) if fits else _within(height, width, budget / per_pixel)
    if tile_size is not None:
        tile = max(MIN_SIDE, int(tile_size))
    else:
        tile = max(TILE_STEP, (int(math.isqrt(int(budget / per_pixel))) // TILE_STEP) * TILE_STEP)
        while tile > TILE_STEP and _peak(window_side(tile, margin), tile, width, per_pixel) > budget:
            tile -= TILE_STEP
    overlap = min(OVERLAP, tile // 4)
    rows, cols = spans(height, tile, overlap), spans(width, tile, overlap)
    side = max(max(b - a for a, b in rows), max(b - a for a, b in cols))
    peak = max(_peak(window_side(side, margin), side, width, per_pixel), stats[0] * stats[1] * per_pixel)
    return FastTilePlan(height, width, side, overlap, margin, rows, cols, stats, int(peak))


def _within(height, width, pixels):
    """The largest (height, width) of the same aspect ratio within ``pixels`` pixels (``MIN_SIDE`` at least)."""
    scale = math.sqrt(pixels / (height * width))
    return max(MIN_SIDE, math.floor(height * scale)), max(MIN_SIDE, math.floor(width * scale))


def _peak(window, tile, width, per_pixel):
    """A ``window`` x ``window`` pass (with its float32 result) plus the float32 band of ``tile`` rows of the
    image's ``width`` being blended and the one carried over."""
    return window * window * (per_pixel + 12) + 2 * tile * width * 3 * 4


def blend_weights(spans_, length):
    """One weight array per span over its own pixels: a linear ramp across each overlap with a neighbour, flat
    elsewhere; at every pixel of ``0 .. length`` the spans' weights sum to 1."""
    ramps = []
    for index, (start, stop) in enumerate(spans_):
        x = np.arange(start, stop, dtype=np.float64) + 0.5
        ramp = np.ones(stop - start)
        if index > 0:
            ramp = np.minimum(ramp, (x - start) / max(1, spans_[index - 1][1] - start))
        if index + 1 < len(spans_):
            ramp = np.minimum(ramp, (stop - x) / max(1, stop - spans_[index + 1][0]))
        ramps.append(ramp)
    total = np.zeros(length)
    for (start, stop), ramp in zip(spans_, ramps):
        total[start:stop] += ramp
    return [(ramp / total[start:stop]).astype(np.float32) for (start, stop), ramp in zip(spans_, ramps)]


def run_tiles(pixels, plan, run, check=None):
    """The image ``run`` gives for ``pixels`` (uint8 (H, W, 3)), computed tile by tile as ``plan`` (a
    ``FastTilePlan``) says (each in its window, cropped back) and blended: ``run(window)`` maps a uint8 (h, w, 3)
    window to float (h, w, 3) values in [0, 255]. Memory holds one band of rows (float32) besides the image and
    the result. ``check()``, if given, is called before each tile (a stop request may raise there). Returns
    uint8 (H, W, 3)."""
    height, width = pixels.shape[:2]
    result = np.empty((height, width, 3), np.uint8)
    row_weights, col_weights = blend_weights(plan.rows, height), blend_weights(plan.cols, width)
    carry = np.zeros((0, width, 3), np.float32)
    for index, (top, bottom) in enumerate(plan.rows):
        band = np.zeros((bottom - top, width, 3), np.float32)
        band[: len(carry)] += carry
        for (left, right), across in zip(plan.cols, col_weights):
            if check is not None:
                check()
            (y0, y1), (x0, x1) = plan.window((top, bottom), height), plan.window((left, right), width)
            tile = np.asarray(run(pixels[y0:y1, x0:x1]), np.float32)[top - y0 : bottom - y0, left - x0 : right - x0]
            band[:, left:right] += tile * row_weights[index][:, None, None] * across[None, :, None]
        done = plan.rows[index + 1][0] - top if index + 1 < len(plan.rows) else bottom - top
        result[top : top + done] = _to_pixels(band[:done])
        carry = band[done:]
    return result


def _to_pixels(values):
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def stylize_pixels_with(model, pixels, weights=None, plan=None, check=None):
    """``model`` (a ``FastModel``) on ``pixels`` (uint8 (H, W, 3)) with style ``weights`` (``model.style_weights``'
    checked tuple, or None for its first style), whole or in ``plan``'s tiles, each normalized with the whole
    image's moments at ``plan.stats_size``; uint8 (H, W, 3)."""

    def run(window):
        return model(np.asarray(window, np.float32)[None], weights)[0].numpy()

    if check is not None:
        check()
    if plan is None:
        return _to_pixels(run(pixels))
    norms = _norm_layers(model.net)
    try:
        for layer in norms:
            layer.record = True
        run(resize(pixels, plan.stats_size))
        for layer in norms:
            layer.record, layer.fixed, layer.recorded = False, layer.recorded, None
        return run_tiles(pixels, plan, run, check)
    finally:
        for layer in norms:
            layer.record, layer.fixed, layer.recorded = False, None, None


def _norm_layers(net):
    """The instance normalizations of a transformation network."""
    from ..tensors.transform_net import ConditionalInstanceNorm

    return [layer for layer in net.layers if isinstance(layer, ConditionalInstanceNorm)]


def stylize_fast(model_or_folder, image_or_path, style=None, max_size=None, *, max_memory=None, tile_size=None):
    """Stylizes an image with a trained fast style model; returns uint8 (height, width, 3) RGB pixels.

    ``model_or_folder``: a ``FastModel`` or the folder ``python -m nst_tf.train`` wrote (``load_fast_model``);
    ``image_or_path``: uint8 (H, W, 3) pixels or an image file's path; ``style``: one of the model's style names, one
    weight per style to blend them, or None for its first; ``max_size``: caps the longer side (the image's own
    size by default; never enlarged); ``max_memory`` (bytes, or a size such as "2G") and ``tile_size``: as the
    command's options (default: tiles only when the memory available now cannot hold the whole pass).

    Raises:
        NSTError: the folder is not a fast model, a style it does not hold, weights of the wrong count, an
            image that cannot be read or is under ``MIN_SIDE`` pixels a side, a ``max_size`` or ``tile_size``
            that is not a positive whole number, or a ``max_memory`` that is no memory size.
    """
    from ..ground.checks import check_whole
    from .fast_models import FastModel, load_fast_model

    model = model_or_folder if isinstance(model_or_folder, FastModel) else load_fast_model(model_or_folder)
    weights = model.style_weights(style)
    max_size = None if max_size is None else check_whole("max_size", max_size)
    max_memory = LargeImageOptions(max_memory=max_memory).max_memory  # parsed and checked
    tile_size = None if tile_size is None else check_whole("tile_size", tile_size, least=MIN_SIDE)
    pixels = _image(image_or_path, max_size)
    plan = plan_tiles(*pixels.shape[:2], model.spec, budget=max_memory, tile_size=tile_size)
    return stylize_pixels_with(model, pixels, weights, plan)


def _image(image_or_path, max_size):
    """The uint8 (H, W, 3) pixels of ``image_or_path`` at ``fast_size``; ``NSTError`` naming what is wrong."""
    from ..plan.locations import find_image
    from ..tensors.images import image_size, read_image

    if isinstance(image_or_path, (str, os.PathLike)):
        image_or_path = find_image(os.fspath(image_or_path))  # the bundled images from any folder, as load_image
        width, height = image_size(image_or_path)
        try:
            size = fast_size(height, width, max_size)
        except NSTError as error:
            raise ImageError(f"{quoted(os.fspath(image_or_path))}: {error}") from None
        return resize(read_image(image_or_path, target=size[::-1]), size)
    pixels = np.asarray(image_or_path)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageError(f"image must be uint8 RGB pixels (height, width, 3); got {pixels.dtype} {pixels.shape}")
    return resize(pixels, fast_size(*pixels.shape[:2], max_size))


def resize(pixels, size):
    """uint8 ``pixels`` brought to ``size`` (height, width) with Pillow's bilinear filter (antialiased when
    shrinking); as they are when already that size. (``fit_image`` scales the same way but refuses sides under
    VGG-19's 32 pixels; a fast model takes 8.)"""
    if pixels.shape[:2] == tuple(size):
        return pixels
    image = PIL.Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(image.resize((size[1], size[0]), PIL.Image.BILINEAR))

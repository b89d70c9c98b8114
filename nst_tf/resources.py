"""What a run needs: an estimate of its peak memory, checked before any work.

The figures are measured (``benchmarks/bench.py``, scaling section, CPU,
float32, 2026-11-23): the peak above the loaded model grows by about 2.2 kB
per pixel of the generated image (2258 MB at 1024x1024, 721 MB at 512x512)
on top of about 150 MB. Reduced-precision networks measured the same within
10%, since the image, its gradient, the Gram matrices and the optimizer
state stay float32. L-BFGS adds its history: two float32 rows of
3 * height * width values per kept pair, plus four more image-sized vectors.

In tiles (``tiling.py``) the network's share follows the largest tile's
extent instead of the image, at the same 2.2 kB per pixel, and what stays
image-sized (the image, its last finite copy, the gradient and its
accumulator, Adam's two moments, the content target, Adam's temporaries)
measured 171 bytes per pixel of the image (``benchmarks/large.py``, tiles of
512 pixels at 1536x1536 and 2048x2048, 2026-11-23).

With ``keep_forward`` each tile's forward pass, kept in the lean form the
backward pass needs, adds 444 bytes per pixel of its extent (2048x2048 in
strips of 512 rows: 4967 MB kept against 3280 MB run again, 3.80 MP of
extent beyond the largest tile; ``benchmarks/large.py --child-step
2048x2048 --tile 512x2048+keep``, AMD EPYC with AVX512_BF16, 2026-11-29);
the estimate takes 500.
"""

from typing import NamedTuple

from .errors import NSTError
from .large import best_tile_shape, required_margin, round_tile, tile_alignment, tile_grid

PER_PIXEL_BYTES = 2200
BASE_BYTES = 150 * 2**20
MODEL_BYTES = 80 * 2**20
TILED_IMAGE_PIXEL_BYTES = 180
KEPT_PIXEL_BYTES = 500

# Tile shapes tried for keep_forward, as fractions of the largest tile that
# fits without it: smaller tiles leave more room for the kept passes.
_KEPT_ROOM_FRACTIONS = (1.0, 0.7, 0.5, 0.35, 0.25)


class TilePlan(NamedTuple):
    """How a run is tiled: ``TiledStyleCost``'s ``tile_size`` (rows, columns) and ``keep_forward``."""

    tile_size: tuple
    keep_forward: bool


def lbfgs_bytes(height, width, lbfgs_history):
    """Memory of L-BFGS's state at ``height`` x ``width``: ``2 * history + 4`` float32 image-sized rows."""
    return (2 * lbfgs_history + 4) * 3 * height * width * 4


def estimate_bytes(height, width, optimizer="adam", lbfgs_history=100):
    """Estimated peak resident memory, in bytes, of a run at ``height`` x ``width``."""
    total = MODEL_BYTES + BASE_BYTES + PER_PIXEL_BYTES * height * width
    if optimizer == "lbfgs":
        total += lbfgs_bytes(height, width, lbfgs_history)
    return total


def _fixed_tiled_bytes(height, width, optimizer, lbfgs_history):
    """What a tiled run needs whatever its tiles: the model, the base and the image-sized state."""
    total = MODEL_BYTES + BASE_BYTES + TILED_IMAGE_PIXEL_BYTES * height * width
    if optimizer == "lbfgs":
        total += lbfgs_bytes(height, width, lbfgs_history)
    return total


def tiled_estimate_bytes(height, width, tile, margin, optimizer="adam", lbfgs_history=100, align=1, keep_forward=False):
    """Estimated peak resident memory of a run in tiles (``tiling.py``).

    ``tile``: the cores' side or (rows, columns); ``margin`` and ``align`` as
    ``large.tile_grid`` takes them. The network's share follows the largest
    tile's extent; with ``keep_forward``, every other tile's extent adds
    ``KEPT_PIXEL_BYTES`` per pixel.
    """
    extents = [t.extent_pixels for t in tile_grid(height, width, tile, margin, align)]
    total = _fixed_tiled_bytes(height, width, optimizer, lbfgs_history) + PER_PIXEL_BYTES * max(extents)
    if keep_forward:
        total += KEPT_PIXEL_BYTES * (sum(extents) - max(extents))
    return total


def plan_tiles(
    height, width, layers, optimizer="adam", lbfgs_history=100, max_memory=None, tile_size=None, keep_forward=None
):
    """How a run at ``height`` x ``width`` is tiled: a ``TilePlan``, or None when it runs whole.

    ``layers``: the content and style layers (they set the margin and the
    pooling grid). ``max_memory``: the budget in bytes, by default the memory
    available now (unknown: no limit). With ``tile_size`` the run is tiled
    in squares of that side (rounded up to the grid); without it, only when
    the whole image would not fit, in the tiles that fit and compute the
    fewest pixels (``large.best_tile_shape``). ``keep_forward`` (by default:
    wherever the budget allows it, and never with an unknown budget) keeps
    every tile's forward pass for the backward one, in the largest tiles
    that fit with it. Raises ``NSTError`` when not even tiles fit, naming
    what takes the memory.
    """
    budget = available_bytes() if max_memory is None else max_memory
    margin, align = required_margin(layers), tile_alignment(layers)

    def fits(tile, keep):
        needed = tiled_estimate_bytes(height, width, tile, margin, optimizer, lbfgs_history, align, keep)
        return budget is None or needed <= budget

    fixed = _fixed_tiled_bytes(height, width, optimizer, lbfgs_history)
    if budget is not None and fixed > budget:
        # The image-sized state alone does not fit: no tile shape can help, and a grid of the smallest
        # tiles over such an image would itself take memory and time to list.
        whole = estimate_bytes(height, width, optimizer, lbfgs_history)
        smallest = fixed + PER_PIXEL_BYTES * min((align + 2 * margin) ** 2, height * width)
        even = f" even in tiles of {align}x{align} pixels" if smallest < whole else ""
        _refuse_needing(height, width, min(smallest, whole), even, optimizer, lbfgs_history, budget, max_memory is None)
    if tile_size is not None:
        tile = (round_tile(tile_size, align),) * 2
        if not fits(tile, bool(keep_forward)):
            _refuse(
                height, width, tile, margin, align, optimizer, lbfgs_history, budget, max_memory is None, keep_forward
            )
        if keep_forward is None:
            keep_forward = budget is not None and fits(tile, True)
        return TilePlan(tile, keep_forward)
    if budget is None or estimate_bytes(height, width, optimizer, lbfgs_history) <= budget:
        return None
    room = (budget - fixed) // PER_PIXEL_BYTES
    tile = best_tile_shape(height, width, margin, align, room) if room > 0 else None
    if tile is None:
        _refuse(height, width, (align, align), margin, align, optimizer, lbfgs_history, budget, max_memory is None)
    if keep_forward is not False:
        for fraction in _KEPT_ROOM_FRACTIONS:
            kept_tile = best_tile_shape(height, width, margin, align, int(room * fraction))
            if kept_tile is not None and fits(kept_tile, True):
                return TilePlan(kept_tile, True)
        if keep_forward:
            _refuse(height, width, tile, margin, align, optimizer, lbfgs_history, budget, max_memory is None, True)
    return TilePlan(tile, False)


def _refuse(height, width, tile, margin, align, optimizer, lbfgs_history, budget, available, keep_forward=False):
    whole = estimate_bytes(height, width, optimizer, lbfgs_history)
    tiled = tiled_estimate_bytes(height, width, tile, margin, optimizer, lbfgs_history, align, keep_forward)
    even = f" even in tiles of {tile[1]}x{tile[0]} pixels" if tiled < whole else ""
    even += " keeping their forward passes" if keep_forward and even else ""
    _refuse_needing(height, width, min(whole, tiled), even, optimizer, lbfgs_history, budget, available)


def _refuse_needing(height, width, needed, even, optimizer, lbfgs_history, budget, available):
    what = f"{width}x{height}" + (f" with an L-BFGS history of {lbfgs_history}" if optimizer == "lbfgs" else "")
    limit = f"{_gib(budget)} is available" if available else f"the budget (--max_memory) is {_gib(budget)}"
    hint = "use a smaller --width/--height/--max_size" + ("" if available else " or a larger --max_memory")
    if optimizer == "lbfgs":
        history = lbfgs_bytes(height, width, lbfgs_history)
        fits = max(0, (budget - (needed - history)) // (2 * 3 * height * width * 4) - 2)
        hint += f"; the history alone takes {_gib(history)}: " + (
            f"--lbfgs_history {fits} or less would fit" if fits else "use --optimizer adam"
        )
    raise NSTError(f"a run at {what} needs about {_gib(needed)} of memory{even}; {limit} ({hint})")


def available_bytes(path="/proc/meminfo"):
    """Memory available to a new process (Linux's MemAvailable), or None where unknown."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(height, width, optimizer="adam", lbfgs_history=100, available=None):
    """Raises ``NSTError`` with the estimate when a run at this size cannot fit in memory."""
    available = available_bytes() if available is None else available
    needed = estimate_bytes(height, width, optimizer, lbfgs_history)
    if available is not None and needed > available:
        what = f"{width}x{height}" + (f" with an L-BFGS history of {lbfgs_history}" if optimizer == "lbfgs" else "")
        raise NSTError(
            f"a run at {what} needs about {_gib(needed)} of memory; {_gib(available)} is available "
            "(use a smaller --width/--height/--max_size" + (" or --lbfgs_history)" if optimizer == "lbfgs" else ")")
        )


def _gib(n):
    return f"{n / 2**30:.1f} GiB"

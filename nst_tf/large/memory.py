"""What a run needs: an estimate of its peak memory, and the tiles that make it fit, before any work.

``MemoryModel(network, optimizer, lbfgs_history)`` estimates a run's peak
resident memory whole (``whole``) or in tiles (``tiled``) and plans its
tiles for a budget (``plan``). The per-pixel figures are the network's
(``Network.pixel_bytes``, ``Network.kept_pixel_bytes``); the others are
below. Each was measured on a CPU in float32 (reduced precisions measured
the same within 10%: the image, its gradient, the Gram matrices and the
optimizer state stay float32); the runs are in ``benchmarks/results``
(cpu-2026-11-23, large-cpu-2026-11-23, large-cpu-2026-11-29-tiling).
"""

from dataclasses import dataclass

from ..errors import NSTError
from ..networks import get_network
from .tiles import TilePlan, best_tile_shape

#: Peak memory of a run above its network and image-sized state (TensorFlow's runtime, Python).
BASE_BYTES = 150 * 2**20
#: The loaded network's weights.
MODEL_BYTES = 80 * 2**20
#: What stays image-sized in tiles: the image, its last finite copy, the gradient and its accumulator,
#: Adam's two moments, the content target, Adam's temporaries (measured 171).
TILED_IMAGE_PIXEL_BYTES = 180

# Tile shapes tried for keep_forward, as fractions of the largest tile that
# fits without it: smaller tiles leave more room for the kept passes.
_KEPT_ROOM_FRACTIONS = (1.0, 0.7, 0.5, 0.35, 0.25)


@dataclass(frozen=True)
class MemoryModel:
    """Peak-memory estimates of runs of ``network`` with ``optimizer`` (L-BFGS keeping ``lbfgs_history`` pairs)."""

    network: object = "vgg19"
    optimizer: str = "adam"
    lbfgs_history: int = 100

    def __post_init__(self):
        object.__setattr__(self, "network", get_network(self.network))

    def optimizer_bytes(self, height, width):
        """L-BFGS's state, ``2 * history + 4`` float32 image-sized rows; 0 for Adam (in the image-sized figures)."""
        if self.optimizer != "lbfgs":
            return 0
        return (2 * self.lbfgs_history + 4) * 3 * height * width * 4

    def whole(self, height, width):
        """Estimated peak resident memory, in bytes, of a run at ``height`` x ``width`` in one piece."""
        pixels = height * width
        return MODEL_BYTES + BASE_BYTES + self.network.pixel_bytes * pixels + self.optimizer_bytes(height, width)

    def fixed_tiled(self, height, width):
        """What a tiled run needs whatever its tiles: the model, the base and the image-sized state."""
        return MODEL_BYTES + BASE_BYTES + TILED_IMAGE_PIXEL_BYTES * height * width + self.optimizer_bytes(height, width)

    def tiled(self, height, width, plan):
        """Estimated peak resident memory of a run in the tiles of ``plan`` (a ``TilePlan``).

        The network's share follows the largest tile's extent; with
        ``plan.keep_forward``, every other tile's extent adds
        ``Network.kept_pixel_bytes`` per pixel.
        """
        extents = [t.extent_pixels for t in plan.grid(height, width)]
        total = self.fixed_tiled(height, width) + self.network.pixel_bytes * max(extents)
        if plan.keep_forward:
            total += self.network.kept_pixel_bytes * (sum(extents) - max(extents))
        return total

    def plan(self, height, width, layers, max_memory=None, tile_size=None, keep_forward=None):
        """How a run at ``height`` x ``width`` is tiled: a ``TilePlan``, or None when it runs whole.

        ``layers``: the content and style layers (they set the margin and the
        grid). ``max_memory``: the budget in bytes, by default the memory
        available now (unknown: no limit). With ``tile_size`` the run is
        tiled in squares of that side (rounded up to the grid); without it,
        only when the whole image would not fit, in the tiles that fit and
        compute the fewest pixels (``tiles.best_tile_shape``).
        ``keep_forward`` (by default: wherever the budget allows it, and
        never with an unknown budget) keeps every tile's forward pass for the
        backward one, in the largest tiles that fit with it.

        Raises:
            NSTError: when not even tiles fit, naming what takes the memory.
        """
        budget = available_bytes() if max_memory is None else max_memory
        refuse = _Refusal(self, height, width, budget, max_memory is None)
        base = TilePlan.of(layers, 1, network=self.network)
        if budget is not None and self.fixed_tiled(height, width) > budget:
            # The image-sized state alone does not fit: no tile shape can help, and a grid of the smallest
            # tiles over such an image would itself take memory and time to list.
            refuse.smallest_tiles(base)
        if tile_size is not None:
            return self._plan_squares(base, tile_size, keep_forward, budget, refuse)
        if budget is None or self.whole(height, width) <= budget:
            return None
        return self._plan_to_fit(base, keep_forward, budget, refuse)

    def _plan_squares(self, base, tile_size, keep_forward, budget, refuse):
        plan = TilePlan.of(base.layers, tile_size, network=self.network, keep_forward=bool(keep_forward))
        if budget is not None and self.tiled(*refuse.size, plan) > budget:
            refuse.tiles(plan)
        if keep_forward is None:
            kept = _replace(plan, keep_forward=True)
            keep_forward = budget is not None and self.tiled(*refuse.size, kept) <= budget
        return _replace(plan, keep_forward=bool(keep_forward))

    def _plan_to_fit(self, base, keep_forward, budget, refuse):
        height, width = refuse.size
        room = (budget - self.fixed_tiled(height, width)) // self.network.pixel_bytes

        def shaped(extent_pixels, keep):
            shape = best_tile_shape(height, width, base.margin, base.align, extent_pixels, base.network.min_image_size)
            return None if shape is None else _replace(base, tile_size=shape, keep_forward=keep)

        plan = shaped(room, False) if room > 0 else None
        if plan is None:
            refuse.tiles(_replace(base, tile_size=(base.align, base.align)))
        if keep_forward is not False:
            for fraction in _KEPT_ROOM_FRACTIONS:
                kept = shaped(int(room * fraction), True)
                if kept is not None and self.tiled(height, width, kept) <= budget:
                    return kept
            if keep_forward:
                refuse.tiles(_replace(plan, keep_forward=True))
        return plan


def _replace(plan, **changes):
    fields = dict(plan.__dict__, **changes)
    return TilePlan(**fields)


class _Refusal:
    """Raises the one-line ``NSTError`` of a run at ``height`` x ``width`` that cannot fit ``budget``."""

    def __init__(self, memory, height, width, budget, available):
        self.memory, self.size, self.budget, self.available = memory, (height, width), budget, available

    def smallest_tiles(self, base):
        height, width = self.size
        whole = self.memory.whole(height, width)
        side = base.align + 2 * base.margin
        pixels = self.memory.network.pixel_bytes * min(side * side, height * width)
        smallest = self.memory.fixed_tiled(height, width) + pixels
        even = f" even in tiles of {base.align}x{base.align} pixels" if smallest < whole else ""
        self.needing(min(smallest, whole), even)

    def tiles(self, plan):
        whole = self.memory.whole(*self.size)
        tiled = self.memory.tiled(*self.size, plan)
        rows, cols = plan.tile_size
        even = f" even in tiles of {cols}x{rows} pixels" if tiled < whole else ""
        even += " keeping their forward passes" if plan.keep_forward and even else ""
        self.needing(min(whole, tiled), even)

    def needing(self, needed, even):
        height, width = self.size
        memory, budget = self.memory, self.budget
        lbfgs = memory.optimizer == "lbfgs"
        what = f"{width}x{height}" + (f" with an L-BFGS history of {memory.lbfgs_history}" if lbfgs else "")
        limit = f"{_gib(budget)} is available" if self.available else f"the budget (--max_memory) is {_gib(budget)}"
        hint = "use a smaller --width/--height/--max_size" + ("" if self.available else " or a larger --max_memory")
        if lbfgs:
            history = memory.optimizer_bytes(height, width)
            fits = max(0, (budget - (needed - history)) // (2 * 3 * height * width * 4) - 2)
            hint += f"; the history alone takes {_gib(history)}: " + (
                f"--lbfgs_history {fits} or less would fit" if fits else "use --optimizer adam"
            )
        raise NSTError(f"a run at {what} needs about {_gib(needed)} of memory{even}; {limit} ({hint})")


def plan_tiles(height, width, layers, optimizer="adam", lbfgs_history=100, max_memory=None, tile_size=None, **options):
    """``MemoryModel(network, optimizer, lbfgs_history).plan(...)``; ``options``: ``keep_forward``, ``network``."""
    memory = MemoryModel(options.pop("network", "vgg19"), optimizer, lbfgs_history)
    return memory.plan(height, width, layers, max_memory, tile_size, **options)


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


def _gib(n):
    return f"{n / 2**30:.1f} GiB"

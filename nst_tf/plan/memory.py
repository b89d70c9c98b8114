"""What a run needs: an estimate of its peak memory, and the tiles that make it fit, before any work.

``MemoryModel`` estimates a run's peak resident memory whole (``whole``) or in tiles (``tiled``) and plans tiles for
a budget (``plan``): the process, the network's weights, and the larger of a run's two phases, the targets (forward
passes of the style and content images) and the steps. Per-pixel figures are the network's (``Network.pixel_bytes``
and the like), measured on a CPU in float32 (reduced precisions within 10%) in ``benchmarks/results``.
"""

from dataclasses import dataclass, replace

from ..ground.errors import NSTError
from .optimizers import get_optimizer
from .large_options import style_target
from .networks.network_registry import get_network
from ..ground.checks import check_whole
from .tiles import TilePlan, best_tile_shape

#: Python, NumPy, SciPy and TensorFlow's runtime once started, before any network: measured 604 MB
#: (Xeon, TensorFlow 2.21; benchmarks/budget.py), with room for other builds of TensorFlow.
PROCESS_BYTES = 640 * 2**20
#: Peak memory of a run's steps above the loaded network and the image-sized state.
BASE_BYTES = 150 * 2**20
#: What stays image-sized in tiles: the image, its last finite copy, the gradient and its accumulator,
#: Adam's two moments, the content target, Adam's temporaries (measured 171).
TILED_IMAGE_PIXEL_BYTES = 180

# Tile shapes tried, as fractions of the largest tile whose steps fit: smaller tiles leave room for
# kept forward passes, and for the style images' forward passes.
_ROOM_FRACTIONS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.35, 0.25, 0.15, 0.1)


@dataclass(frozen=True)
class MemoryModel:
    """Peak-memory estimates of runs of ``network`` with ``optimizer`` (L-BFGS keeping ``lbfgs_history`` pairs);
    ``NSTError`` for an unknown network or optimizer, or an ``lbfgs_history`` that is not a positive whole number."""

    network: object = "vgg19"
    optimizer: str = "adam"
    lbfgs_history: int = 100

    def __post_init__(self):
        object.__setattr__(self, "network", get_network(self.network))
        get_optimizer(self.optimizer)
        object.__setattr__(self, "lbfgs_history", check_whole("lbfgs_history", self.lbfgs_history))

    def optimizer_bytes(self, height, width):
        """L-BFGS's state, ``2 * history + 4`` float32 image-sized rows; 0 for Adam (in the image-sized figures)."""
        return get_optimizer(self.optimizer).state_bytes(height, width, self.lbfgs_history)

    def runtime(self):
        """What the process takes before any image: Python, TensorFlow's runtime, the network's weights."""
        return PROCESS_BYTES + self.network.weights_bytes + BASE_BYTES

    def whole(self, height, width, style=None):
        """Estimated peak resident bytes of a run at ``height`` x ``width`` in one piece; ``style``: the
        (height, width) of the largest style image, whose forward pass can outweigh the steps."""
        height, width = _size("size", (height, width))
        style = None if style is None else _size("style", style)
        step = self.network.pixel_bytes * height * width + self.optimizer_bytes(height, width)
        targets = self.network.forward_pixel_bytes * max(height * width, _pixels(style))
        return self.runtime() + _with_margin(max(step, targets))

    def fixed_tiled(self, height, width):
        """What a tiled run needs whatever its tiles: the process, the network and the image-sized state."""
        image_sized = TILED_IMAGE_PIXEL_BYTES * height * width + self.optimizer_bytes(height, width)
        return self.runtime() + _with_margin(image_sized)

    def tiled(self, height, width, plan, style=None):
        """Estimated peak resident bytes of a run in the tiles of ``plan`` (a ``TilePlan``): the steps (the largest
        extent, ``Network.tile_bytes`` a tile, ``kept_pixel_bytes`` of the other extents with ``keep_forward``) or
        the targets (the largest tile of the content and of the ``style`` image)."""
        if not isinstance(plan, TilePlan):
            raise NSTError(f"plan must be a TilePlan; got {type(plan).__name__}")
        extents = [t.extent_pixels for t in plan.grid(height, width)]
        step = self.network.pixel_bytes * max(extents) + self.network.tile_bytes * len(extents)
        if plan.keep_forward:
            step += self.network.kept_pixel_bytes * (sum(extents) - max(extents))
        style_extents = [t.extent_pixels for t in plan.grid(*style)] if style else [0]
        targets = self.network.forward_pixel_bytes * max(max(extents), *style_extents)
        return self.fixed_tiled(height, width) + _with_margin(max(step, targets))

    def plan(self, height, width, layers, max_memory=None, tile_size=None, keep_forward=None, style=None):
        """How a run at ``height`` x ``width`` of ``layers`` is tiled: a ``TilePlan``, or None when it runs whole.

        ``max_memory``: the budget in bytes (default: the memory available now; unknown, no limit). With
        ``tile_size``, squares of that side; else tiles only when the whole would not fit, those computing the
        fewest pixels (``best_tile_shape``). ``keep_forward``: default, where the budget allows (never unknown).
        ``style``: the largest style image's (height, width). ``NSTError`` when not even tiles fit, naming what
        takes the memory, or for an invalid argument.
        """
        height, width = check_whole("height", height), check_whole("width", width)
        if style is not None:
            style = _size("style", style)
        if max_memory is not None:
            max_memory = check_whole("max_memory", max_memory, most=2**60)
        budget = available_bytes() if max_memory is None else max_memory
        refuse = _Refusal(self, (height, width), style, budget, max_memory is None)
        if not self.network.tileable:
            return self._plan_whole_only(height, width, layers, tile_size, budget, refuse)
        base = TilePlan.of(layers, 1, network=self.network)
        if budget is not None and self.fixed_tiled(height, width) > budget:
            # The image-sized state alone does not fit: no tile shape can help (nor is a grid listed).
            refuse.smallest_tiles(base)
        if tile_size is not None:
            return self._plan_squares(base, tile_size, keep_forward, budget, refuse)
        if budget is None or self.whole(height, width, style) <= budget:
            return None
        return self._plan_to_fit(base, keep_forward, budget, refuse)

    def _plan_whole_only(self, height, width, layers, tile_size, budget, refuse):
        """None (a whole run) for a network that cannot be tiled, or the refusal when it does not fit."""
        self.network.deepest(layers)  # checks every layer's name
        if tile_size is not None:
            raise NSTError(f"{self.network.title} cannot be computed in tiles; run it without --tile_size")
        whole = self.whole(height, width, refuse.style)
        if budget is not None and whole > budget:
            refuse.needing(whole, f" ({self.network.title} cannot be computed in tiles)")
        return None

    def _plan_squares(self, base, tile_size, keep_forward, budget, refuse):
        plan = TilePlan.of(base.layers, tile_size, network=self.network, keep_forward=bool(keep_forward))
        if budget is not None and self.tiled(*refuse.size, plan, style=refuse.style) > budget:
            refuse.tiles(plan, chosen=True)
        if keep_forward is None:
            kept = replace(plan, keep_forward=True)
            keep_forward = budget is not None and self.tiled(*refuse.size, kept, style=refuse.style) <= budget
        return replace(plan, keep_forward=bool(keep_forward))

    def _plan_to_fit(self, base, keep_forward, budget, refuse):
        height, width = refuse.size
        room = (budget - self.fixed_tiled(height, width)) * 10 // 11 // self.network.pixel_bytes

        def shapes(keep):
            """The tile plans tried, largest tiles first: all those with a shape in the room."""
            for fraction in _ROOM_FRACTIONS if room > 0 else ():
                extent = int(room * fraction)
                shape = best_tile_shape(height, width, base.margin, base.align, extent, base.network.min_image_size)
                if shape is not None:
                    yield replace(base, tile_size=shape, keep_forward=keep)

        def fitting(plans):
            return next((p for p in plans if self.tiled(height, width, p, refuse.style) <= budget), None)

        plan = fitting(shapes(False))
        if plan is None:
            # The least any tried plan needs (more tiles cost more each), or the smallest tiles'.
            tried = list(shapes(False)) or [replace(base, tile_size=(base.align, base.align))]
            refuse.tiles(min(tried, key=lambda p: self.tiled(height, width, p, refuse.style)))
        if keep_forward is not False:
            kept = fitting(shapes(True))
            if kept is not None:
                return kept
            if keep_forward:
                refuse.tiles(replace(plan, keep_forward=True))
        return plan


class _Refusal:
    """Raises the one-line ``NSTError`` of a run at ``size`` (with a ``style`` image) that cannot fit ``budget``."""

    def __init__(self, memory, size, style, budget, available):
        self.memory, self.size, self.style, self.budget, self.available = memory, size, style, budget, available

    def smallest_tiles(self, base):
        height, width = self.size
        whole = self.memory.whole(height, width, self.style)
        side = base.align + 2 * base.margin
        pixels = self.memory.network.pixel_bytes * min(side * side, height * width)
        smallest = self.memory.fixed_tiled(height, width) + _with_margin(pixels)
        even = f" even in tiles of {base.align}x{base.align} pixels" if smallest < whole else ""
        self.needing(min(smallest, whole), even)

    def tiles(self, plan, chosen=False):
        """Refuses ``plan``'s tiles; ``chosen``: the user's --tile_size, whose need is said whatever the whole's."""
        whole = self.memory.whole(*self.size, self.style)
        tiled = self.memory.tiled(*self.size, plan, self.style)
        rows, cols = plan.tile_size
        even = f" even in tiles of {cols}x{rows} pixels" if tiled < whole else ""
        if chosen and tiled >= whole:
            # Small tiles of a small image: each tile's margins and graph cost more than they save.
            even = f" in tiles of {cols}x{rows} pixels ({len(plan.grid(*self.size))} tiles)"
            if whole <= self.budget:
                even += f", {_gib(whole)} whole"
        even += " keeping their forward passes" if plan.keep_forward and even else ""
        self.needing(tiled if chosen else min(whole, tiled), even, chosen)

    def needing(self, needed, even, chosen=False):
        """Raises the refusal's ``NSTError``: the memory ``needed``, the budget and a hint."""
        height, width = self.size
        memory, budget = self.memory, self.budget
        optimizer = get_optimizer(memory.optimizer)
        lbfgs = optimizer.history_rows > 0
        what = f"{width}x{height}" + (f" with an {optimizer.title} history of {memory.lbfgs_history}" if lbfgs else "")
        limit = f"{_gib(budget)} is available" if self.available else f"the budget (--max_memory) is {_gib(budget)}"
        hint = "use a smaller --width/--height/--max_size/--shorter_side"
        hint += "" if self.available else " or a larger --max_memory"
        if chosen:
            hint = "use a larger --tile_size, or none, or " + hint[4:]
        if budget < memory.runtime():
            hint = f"Python, TensorFlow and {memory.network.title} alone take about {_gib(memory.runtime())}" + (
                "" if self.available else ": use a larger --max_memory"
            )
        elif self.style and memory.network.forward_pixel_bytes * _pixels(self.style) > budget - memory.runtime():
            hint += " or a smaller --style_scale"
        if lbfgs and budget >= memory.runtime():
            history = memory.optimizer_bytes(height, width)
            fits = max(0, (budget - (needed - history)) // (2 * 3 * height * width * 4) - 2)
            hint += f"; the history alone takes {_gib(history)}: " + (
                f"--lbfgs_history {fits} or less would fit" if fits else "use --optimizer adam"
            )
        raise NSTError(f"a run at {what} needs about {_gib(needed)} of memory{even}; {limit} ({hint})")


def largest_style(size, style_shapes, large):
    """(height, width) of the largest style image (of ``style_shapes``) for an output of ``size``, sized by
    ``large`` (a ``LargeImageOptions``)."""
    targets = [style_target(size, shape, large.style_scale, large.style_size) for shape in style_shapes]
    return max(targets, key=lambda target: target[0] * target[1])


def tile_plans(config, large, sizes, style_shapes):
    """``{size: TilePlan or None}``: how a run of ``config`` is tiled at each of ``sizes``, with ``large`` (a
    ``LargeImageOptions``) and style images of (height, width) ``style_shapes``; ``NSTError`` as ``MemoryModel.plan``.
    """
    memory = MemoryModel(config.network, config.optimizer, config.lbfgs_history)
    layers = [config.content_layer, *(name for name, _ in config.style_layers)]
    return {
        size: memory.plan(
            *size, layers, large.max_memory, large.tile_size, style=largest_style(size, style_shapes, large)
        )
        for size in sizes
    }


def plan_tiles(height, width, layers, optimizer="adam", lbfgs_history=100, max_memory=None, tile_size=None, **options):
    """``MemoryModel(network, optimizer, lbfgs_history).plan(...)`` (``options``: ``keep_forward``, ``network``,
    ``style``); ``NSTError`` as those raise."""
    memory = MemoryModel(options.pop("network", "vgg19"), optimizer, lbfgs_history)
    return memory.plan(height, width, layers, max_memory, tile_size, **options)


def _size(name, size):
    """A (height, width) pair of positive whole numbers; ``NSTError`` naming ``name`` otherwise."""
    try:
        height, width = size
    except (TypeError, ValueError):
        raise NSTError(f"{name} must be a (height, width) pair; got {size!r:.80}") from None
    return check_whole(f"{name} height", height), check_whole(f"{name} width", width)


def _with_margin(image_bytes):
    """``image_bytes`` plus a tenth: a command's peaks measured up to 1.4% above the bare figures; the rest is
    for other CPUs and builds of TensorFlow."""
    return image_bytes + image_bytes // 10


def _pixels(size):
    """Pixels of a (height, width), 0 for None."""
    return 0 if size is None else size[0] * size[1]


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
    """``n`` bytes to three significant digits, in the largest binary unit it reaches (B to TiB, then TiB)."""
    n = int(n)
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            break
    else:
        return f"{n} bytes"
    if abs(n) >= 1000 * 2**40:
        return f"{n // size:,} {unit}"
    value = n / size
    return f"{value:.{0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2}f} {unit}"

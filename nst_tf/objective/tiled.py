"""The objective and its gradient for images too large for memory, exactly, in tiles.

``TiledStyleCost`` is a ``StyleCost`` that runs the network on one tile (core plus margin; ``nst_tf.plan.tiles``
explains why that is exact) at a time:

1. Forward: every network term's ``sums`` (Gram matrices, the content's sum of squares) of the whole image are
   added up from the tiles' cores; their ``cost`` is the cost.
2. Backward: ``dJ/dsums`` comes from automatic differentiation of ``cost``; as ``sums`` adds over tiles, each
   tile's part of ``dJ/dimage`` is ``dJ/dsums`` pushed back through its ``sums`` and forward pass, added into
   one image-sized variable (margins overlap). No term has a hand-written gradient.

Pass 2 runs each tile's forward pass again, one at a time (control dependencies order them), so a step holds one
tile's activations; pass 1's last tile is kept under its tape. ``keep_forward`` keeps every tile's forward pass in
``lean_gradient`` form (ReLU signs as booleans, conv1_1 computed again): faster, memory growing at about a fifth
of the whole image's rate (``Network.kept_pixel_bytes``). Image terms (total variation) see the whole image.
"""

import contextlib
from typing import NamedTuple

import numpy as np
from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from ..plan.config import StyleTransferConfig
from ..plan.masks import guided_layers
from ..plan.tiles import TilePlan
from ..tensors.costs import style_gram
from .term_registry import registered_terms
from .terms import Shapes, Window
from .whole import StyleCost


class TiledStyleCost(StyleCost):
    """``StyleCost`` computed in tiles: the same costs and gradients, memory bounded by the tile.

    Args:
        model, content_image, style_image, config: as for ``StyleCost``; ``model`` carries the ``network``
            and ``pooling`` that decide the tile geometry.
        tile_size: a core's side or (rows, columns), rounded up to the pooling grid (16 through conv5_1).
        margin: pixels beyond a core on inner sides; by default the least that keeps the layers exact
            (``Network.margin``), a larger one rounded up to the grid.
        keep_forward: keep every tile's forward pass for pass 2 (``Network.kept_pixel_bytes`` a pixel).
        plan: a ``TilePlan`` instead of ``tile_size``, ``margin`` and ``keep_forward``.
        extra_terms: image terms added to the sum, as for ``StyleCost`` (computed on the whole image).

    The targets are computed in tiles too, each image on its own grid. ``tiles``: the content's tiles.

    Raises:
        NSTError: as ``StyleCost``, and for a model without a network's geometry, a margin below what
            the layers need, a tile size or ``keep_forward`` of the wrong kind, or a plan for other layers.
    """

    def __init__(
        self,
        model,
        content_image,
        style_image,
        config=None,
        tile_size=512,
        margin=None,
        keep_forward=False,
        name="tiled_style_cost",
        plan=None,
        extra_terms=(),
    ):
        config = StyleTransferConfig() if config is None else config
        if not isinstance(config, StyleTransferConfig):
            raise NSTError(f"config must be a StyleTransferConfig; got {type(config).__name__}")
        network, pooling = getattr(model, "network", None), getattr(model, "pooling", None)
        if network is None or pooling is None:
            raise NSTError(
                f"tiling needs a VGG19 model or another nst_tf network (its geometry decides the tiles); got "
                f"{type(model).__name__}"
            )
        styles = style_image if isinstance(style_image, (list, tuple)) else [style_image]
        layers = [config.content_layer, *(layer for layer, _ in config.style_layers), *guided_layers(styles)]
        if plan is None:
            plan = TilePlan.of(layers, tile_size, margin, keep_forward, network, pooling)
        _check_plan(plan, layers)
        plan = plan.with_pooling(pooling)
        super().__init__(model, content_image, style_image, config, name=name, plan=plan, extra_terms=extra_terms)
        self.tiles = plan.grid(*self.content_image.shape[1:3])
        with self.name_scope:
            self._gradient = tf.Variable(tf.zeros(self.content_image.shape), trainable=False, name="gradient")

    @property
    def tile_size(self):
        return self.plan.tile_size

    @property
    def margin(self):
        return self.plan.margin

    @property
    def keep_forward(self):
        return self.plan.keep_forward

    # One tile ------------------------------------------------------------------------------

    @staticmethod
    def _slice(image, tile):
        return image[:, tile.rows.first : tile.rows.last, tile.cols.first : tile.cols.last, :]

    def _run_tile(self, x, tile, size, taped=False, layers=None):
        """The network on the tile ``x`` of an image of ``size`` (height, width): a ``_TileRun``. ``layers``: by
        default the cost's; ``taped``: under a tape watching ``x`` (lean gradient with ``keep_forward``)."""
        layers = self._layers if layers is None else layers
        tape = tf.GradientTape() if taped else contextlib.nullcontext()
        with tape:
            if taped:
                tape.watch(x)
            options = {"lean_gradient": True} if taped and self.keep_forward else {}
            activations = self._float32(self._network(x, layers, **options))
        cores, boxes = {}, {}
        for layer in layers:
            (r, rows), (c, cols) = box = self.plan.core_box(tile, layer, *size)
            if rows and cols:
                cores[layer] = _crop(activations[layer], box)
                boxes[layer] = box
        return _TileRun(x, tape if taped else None, activations, cores, boxes, self._window(tile, boxes))

    def _window(self, tile, boxes):
        """Where ``tile``'s cores lie in the whole image's activations (``boxes``: in the tile's own)."""
        whole = {}
        for layer, ((_, rows), (_, cols)) in boxes.items():
            r, c = self.plan.core_offset(tile, layer)
            whole[layer] = ((r, rows), (c, cols))
        return Window(whole)

    # Targets, in tiles (eager, at construction) ---------------------------------------------

    def _content_activation(self, image):
        layer = self.content_layer
        height, width = image.shape[1:3]
        target = None
        for tile in self.plan.grid(height, width):
            run = self._run_tile(tf.constant(self._slice(image, tile)), tile, (height, width), layers=[layer])
            if layer not in run.cores:
                continue
            core = run.cores[layer].numpy()
            if target is None:
                n_H, n_W = self.plan.layer_size(layer, height, width)
                target = np.empty((1, n_H, n_W, core.shape[-1]), np.float32)
            r, c = self.plan.core_offset(tile, layer)
            target[:, r : r + core.shape[1], c : c + core.shape[2]] = core
        return target

    def _style_grams(self, image, layers):
        height, width = image.shape[1:3]
        grams = {}
        for tile in self.plan.grid(height, width):
            cores = self._run_tile(tf.constant(self._slice(image, tile)), tile, (height, width), layers=layers).cores
            for layer, core in cores.items():
                gram = style_gram(core)
                grams[layer] = gram if layer not in grams else grams[layer] + gram
        positions = {layer: int(np.prod(self.plan.layer_size(layer, height, width))) for layer in grams}
        return {layer: self._style_target(gram, positions[layer]) for layer, gram in grams.items()}

    def measure(self, image, layers, sums):
        """As ``StyleCost.measure``, added up over ``image``'s tiles (each ``sums`` of a core, with its window)."""
        height, width = image.shape[1:3]
        total = None
        for tile in self.plan.grid(height, width):
            run = self._run_tile(tf.constant(self._slice(image, tile)), tile, (height, width), layers=list(layers))
            total = _add_sums(total, [sums(run.cores, run.window)])
        return total[0]

    # The generated image -------------------------------------------------------------------

    def _shapes(self):
        height, width = self.content_image.shape[1:3]
        return Shapes((height, width), lambda layer: self.plan.layer_size(layer, height, width))

    def _tile_sums(self, cores, window):
        """Each network term's ``sums`` of one tile's ``cores`` (a layer whose core is empty adds nothing)."""
        return [term.sums(cores, window) for term in self._network_terms()]

    def _forward_pass(self, image, taped):
        """Pass 1: ``(sums, kept)``: every network term's sums over all tiles, and the ``_TileRun``s taped for pass 2
        (none unless ``taped``; then every tile with ``keep_forward``, else the last)."""
        size = self.content_image.shape[1:3]
        total, kept, after = None, {}, []
        for i, tile in enumerate(self.tiles):
            keep = taped and (self.keep_forward or i == len(self.tiles) - 1)
            # Reading the tile after the previous tile's sums keeps a traced step from running tiles side by side.
            with tf.control_dependencies(after):
                x = self._slice(image, tile)
            run = self._run_tile(x, tile, size, keep)
            total = _add_sums(total, self._tile_sums(run.cores, run.window))
            after = tf.nest.flatten(total)
            if keep:
                kept[i] = run
        return total, kept

    def __call__(self, image):
        """The costs of ``image`` (1, H, W, 3) by name, float32 scalars, in tiles."""
        image = self._check(image)
        sums, _ = self._forward_pass(image, taped=False)
        return self._combined(image, sums, self._shapes())

    def value_and_gradient(self, image):
        """``(costs by name, dJ/dimage)``, both passes in tiles; see the module docstring."""
        image = self._check(image)
        sums, kept = self._forward_pass(image, taped=True)
        flat = tf.nest.flatten(sums)
        with tf.GradientTape() as tape:
            tape.watch(flat)
            costs = self._combined(image, tf.nest.pack_sequence_as(sums, flat), self._shapes())
        upstream = tape.gradient(costs["total"], flat, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        upstream = tf.nest.pack_sequence_as(sums, upstream)
        after = [self._gradient.assign(tf.zeros_like(self._gradient))]
        for i in reversed(range(len(self.tiles))):
            tile = self.tiles[i]
            with tf.control_dependencies(after):
                run = kept[i] if i in kept else self._run_tile(self._slice(image, tile), tile, image.shape[1:3], True)
                tile_gradient = self._backward(run, upstream)
            rows, cols = slice(tile.rows.first, tile.rows.last), slice(tile.cols.first, tile.cols.last)
            region = self._gradient[:, rows, cols, :]
            after = [self._gradient[:, rows, cols, :].assign(region + tile_gradient)]
        with tf.control_dependencies(after):
            gradient = self._gradient.read_value()
        return costs, gradient + self._image_terms_gradient(image)

    def _backward(self, run, upstream):
        """``dJ/dx`` of one tile's input: ``upstream`` (dJ/dsums) through the tile's sums and forward pass."""
        values = run.activations
        if self.keep_forward:
            again = [layer for layer in _COMPUTED_AGAIN if layer in run.boxes]
            if again:
                values = {**values, **self._float32(self._network(run.x, again))}
        # The cores are cut again, so that pass 1's copies need not live until pass 2.
        layers = list(run.boxes)
        cores = [_crop(values[layer], run.boxes[layer]) for layer in layers]
        with tf.GradientTape() as tape:
            tape.watch(cores)
            tile_sums = self._tile_sums(dict(zip(layers, cores)), run.window)
        wanted = _matching(tile_sums, upstream)
        core_gradients = tape.gradient(
            tf.nest.flatten(tile_sums),
            cores,
            output_gradients=tf.nest.flatten(wanted),
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        # Padded to the whole activation: the gradient of the core's slice (StridedSliceGrad) took a fifth of a step.
        padded = [
            _pad_to(g, run.boxes[layer], run.activations[layer].shape) for layer, g in zip(layers, core_gradients)
        ]
        return run.tape.gradient([run.activations[layer] for layer in layers], run.x, output_gradients=padded)

    def _image_terms_gradient(self, image):
        image_terms = [term for term in self.terms if not term.layers]
        if not image_terms:
            return tf.zeros([], tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(image)
            J = tf.add_n([term.weight * term.image_cost(image) for term in image_terms])
        return tape.gradient(J, image)


# conv1_1's activation is a third of what a kept tile holds and under 1% of a forward pass's multiply-adds:
# pass 2 computes it again and the tape keeps only its ReLU signs.
_COMPUTED_AGAIN = ("conv1_1",)


class _TileRun(NamedTuple):
    """One tile through the network: input, tape (or None), and by layer its activations, cores and
    core boxes, with the ``Window`` of its cores in the whole image's activations."""

    x: tf.Tensor
    tape: object
    activations: dict
    cores: dict
    boxes: dict
    window: Window


def _check_plan(plan, layers):
    """Raises ``NSTError`` unless ``plan`` is a ``TilePlan`` whose margin covers ``layers``."""
    if not isinstance(plan, TilePlan):
        raise NSTError(f"plan must be a TilePlan; got {type(plan).__name__}")
    missing = [layer for layer in layers if layer not in plan.layers]
    if missing:
        raise NSTError(
            f"plan was made for layers {', '.join(plan.layers)}; the config also uses {', '.join(missing)}, "
            "whose tiles would not be exact"
        )


def _add_sums(total, sums):
    """Adds one tile's list of ``{key: tensor}`` sums into ``total`` (None at first); a missing key adds 0."""
    if total is None:
        return [dict(s) for s in sums]
    return [{**t, **{k: t[k] + v if k in t else v for k, v in s.items()}} for t, s in zip(total, sums)]


def _matching(tile_sums, upstream):
    """``upstream`` (dJ/dsums of the whole image) restricted to the keys one tile's sums have."""
    return [{key: up[key] for key in s} for s, up in zip(tile_sums, upstream)]


def _crop(activation, box):
    """The part of ``activation`` (1, h, w, c) at ``box`` ((row, rows), (col, cols))."""
    (r, rows), (c, cols) = box
    return activation[:, r : r + rows, c : c + cols, :]


def _pad_to(core, box, shape):
    """``core`` placed at ``box`` ((row, rows), (col, cols)) in zeros of ``shape`` (1, h, w, c)."""
    (r, rows), (c, cols) = box
    return tf.pad(core, [[0, 0], [r, shape[1] - r - rows], [c, shape[2] - c - cols], [0, 0]])


def make_style_cost(model, content_image, style_image, config=None, plan=None, extra_terms=()):
    """A ``StyleCost``, or a ``TiledStyleCost`` when ``plan`` (a ``TilePlan``) splits the content or a style image;
    ``extra_terms``: image terms added after the registered ones (``term_registry.TERMS``)."""
    config = StyleTransferConfig() if config is None else config
    styles = style_image if isinstance(style_image, (list, tuple)) else [style_image]
    images = [getattr(image, "image", image) for image in (content_image, *styles)]
    extra_terms = [*registered_terms(config, np.shape(content_image)[1:3]), *extra_terms]
    extra = {"extra_terms": extra_terms} if extra_terms else {}  # a subclass of its own may not take them
    if plan is not None and any(plan.splits(*np.shape(image)[1:3]) for image in images):
        return TiledStyleCost(model, content_image, style_image, config, plan=plan, **extra)
    return StyleCost(model, content_image, style_image, config, **extra)

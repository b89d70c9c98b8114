"""The course's cost and its gradient for images too large for memory, exactly, in tiles.

``TiledStyleCost`` is a ``StyleCost`` whose ``__call__`` and
``value_and_gradient`` never run the network on more than one tile (its
core plus a margin, ``large.py`` explains why that is exact) at a time:

1. Forward, tile by tile: each style layer's Gram matrix ``G_l`` of the
   whole image is summed from the tiles' cores, and so is the content
   cost's ``sum (a_C - a_G)**2``. That gives the costs.
2. Backward, tile by tile: with the whole image's ``G_l`` known, the
   gradient of the cost with respect to a core's activations is local,

       dJ/dF_l = F_l A_l,  A_l = beta * sum_s blend_s * w_l * (G_l - S_{s,l}) / (n_C**2 * (n_H n_W)**2)

   (plus ``alpha * (F - a_C) / (2 n_H n_W n_C)`` at the content layer),
   so each tile's forward pass is backpropagated from these upstream
   gradients; the tiles' input gradients, which overlap in the margins, are
   added into one image-sized variable.

Pass 2 needs each tile's forward pass. By default it runs it again, one
tile at a time, so that a traced step holds one tile's activations at a
time however many tiles there are (each tile's reads wait, by control
dependencies, for the previous tile's results); the last tile of pass 1 is
kept under its tape and is the first of pass 2. With ``keep_forward`` every
tile's forward pass is kept from pass 1 in the lean form that ``VGG19``'s
``lean_gradient`` gives (ReLU signs as booleans) with the activations of the
cost's layers, which the upstream gradients are made of (conv1_1's, the
largest, is computed again instead). At 1024x1024 a step then took 1.16
times the whole image's time in two strips instead of 1.42 (1.35 instead
of 1.82 in four tiles), and memory grows with the image again, at about a
fifth of the whole image's rate (``resources.KEPT_PIXEL_BYTES``;
``benchmarks/results/large-cpu-2026-11-29-tiling.md``).

Total variation is computed on the whole image (it needs no network). The
optimizer, L-BFGS's history and colour preservation see the whole image
variable as before.
"""

import contextlib
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from .config import StyleTransferConfig
from .costs import total_variation_cost
from .errors import NSTError
from .large import layer_length, layer_stride, required_margin, round_tile, tile_alignment, tile_grid
from .layers import GRAPH_LAYERS, POOLINGS
from .objective import StyleCost


class TiledStyleCost(StyleCost):
    """``StyleCost`` computed in tiles: the same costs and gradients, memory bounded by ``tile_size``.

    Args:
        model, content_image, style_image, config: as for ``StyleCost``
            (``config`` by default ``StyleTransferConfig()``);
            ``model`` must be a ``VGG19`` (its ``pooling`` decides the
            tile geometry).
        tile_size: side of a tile's core in pixels, or its (rows, columns)
            (full-width strips have margins on two sides only), rounded up to the
            pooling grid (16 pixels through conv5_1, 32 with avgpool5).
        margin: pixels a tile extends beyond its core on inner sides;
            by default the least that keeps every layer used exact
            (``large.required_margin``). A smaller one raises ``NSTError``;
            a larger one is rounded up to the pooling grid.
        keep_forward: keep every tile's forward pass from pass 1 to pass 2
            (what its gradient needs of it: ``VGG19``'s lean gradient), so
            that no tile runs forward twice; faster, and it takes about
            ``resources.KEPT_PIXEL_BYTES`` per pixel of every tile's extent.
            False: one tile's forward pass at a time, run again in pass 2
            (the last tile of pass 1 excepted).
            ``resources.plan_tiles`` keeps them where the budget allows.

    The content target and the style Gram matrices are computed in tiles
    too, each image with its own grid. ``tiles``: the content image's tiles.
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
    ):
        config = StyleTransferConfig() if config is None else config
        if not isinstance(config, StyleTransferConfig):
            raise NSTError(f"config must be a StyleTransferConfig; got {type(config).__name__}")
        pooling = getattr(model, "pooling", None)
        if pooling not in POOLINGS:
            raise NSTError(f"tiling needs a VGG19 model (its pooling decides the tiles); got {type(model).__name__}")
        layers = [config.content_layer, *(layer for layer, _ in config.style_layers)]
        deepest = max(layers, key=GRAPH_LAYERS.index)
        align = tile_alignment(layers)
        need = required_margin(layers)
        if margin is None:
            margin = need
        elif isinstance(margin, bool) or not isinstance(margin, int) or margin < need:
            raise NSTError(
                f"margin must be a whole number of at least {need} pixels, what {deepest} needs to be exact "
                f"in tiles; got {margin!r}"
            )
        _tile_sides(tile_size)
        if not isinstance(keep_forward, bool):
            raise NSTError(f"keep_forward must be True or False; got {keep_forward!r}")
        self.keep_forward = keep_forward
        # Read by the target hooks, which StyleCost.__init__ calls.
        self._pooling = pooling
        self._align = align
        self.margin = round_tile(margin, align)
        self.tile_size = tuple(round_tile(side, align) for side in _tile_sides(tile_size))
        super().__init__(model, content_image, style_image, config, name=name)
        height, width = self.content_image.shape[1:3]
        self.tiles = tile_grid(height, width, self.tile_size, self.margin, self._align)
        with self.name_scope:
            self._gradient = tf.Variable(tf.zeros(self.content_image.shape), trainable=False, name="gradient")

    # Geometry ------------------------------------------------------------------------------

    def _grid(self, image):
        height, width = image.shape[1:3]
        return tile_grid(height, width, self.tile_size, self.margin, self._align)

    @staticmethod
    def _slice(image, tile):
        return image[:, tile.rows.first : tile.rows.last, tile.cols.first : tile.cols.last, :]

    def _core_box(self, tile, layer, height, width):
        """((row offset, rows), (col offset, cols)) of ``tile``'s core in its ``layer`` activation."""
        return tile.rows.core_at(layer, height, self._pooling), tile.cols.core_at(layer, width, self._pooling)

    def _run_tile(self, x, tile, size, taped=False, layers=None):
        """The network on the tile ``x`` of an image of ``size`` (height, width): a ``_TileRun``.

        ``layers``: by default the cost's. ``taped``: under a tape watching
        ``x``, with the network's lean gradient when ``keep_forward``.
        """
        height, width = size
        layers = self._layers if layers is None else layers
        tape = tf.GradientTape() if taped else contextlib.nullcontext()
        with tape:
            if taped:
                tape.watch(x)
            options = {"lean_gradient": True} if taped and self.keep_forward else {}
            activations = self._float32(self._network(x, layers, **options))
        cores, boxes = {}, {}
        for layer in layers:
            (r, rows), (c, cols) = box = self._core_box(tile, layer, height, width)
            a = activations[layer]
            if r + rows > a.shape[1] or c + cols > a.shape[2]:
                raise AssertionError(f"tile core {(r, rows, c, cols)} outside {layer} activation {a.shape}")
            if rows and cols:
                cores[layer] = _crop(a, box)
                boxes[layer] = box
        return _TileRun(x, tape if taped else None, activations, cores, boxes)

    def _layer_size(self, layer, height, width):
        return layer_length(height, layer, self._pooling), layer_length(width, layer, self._pooling)

    # Targets, in tiles (eager, at construction) ---------------------------------------------

    def _content_activation(self, image):
        layer = self.content_layer
        height, width = image.shape[1:3]
        stride = layer_stride(layer)
        target = None
        for tile in self._grid(image):
            cores = self._run_tile(tf.constant(self._slice(image, tile)), tile, (height, width), layers=[layer]).cores
            if layer not in cores:
                continue
            core = cores[layer].numpy()
            if target is None:
                n_H, n_W = self._layer_size(layer, height, width)
                target = np.empty((1, n_H, n_W, core.shape[-1]), np.float32)
            r, c = tile.rows.start // stride, tile.cols.start // stride
            target[:, r : r + core.shape[1], c : c + core.shape[2]] = core
        return target

    def _style_grams(self, image, layers):
        height, width = image.shape[1:3]
        grams = {}
        for tile in self._grid(image):
            cores = self._run_tile(tf.constant(self._slice(image, tile)), tile, (height, width), layers=layers).cores
            for layer, core in cores.items():
                gram = _gram(core)
                grams[layer] = gram if layer not in grams else grams[layer] + gram
        return grams

    # The generated image -------------------------------------------------------------------

    def _check(self, image):
        if not isinstance(image, tf.Variable):
            image = tf.convert_to_tensor(image, tf.float32)
        if image.shape != self.content_image.shape:
            raise NSTError(f"image has shape {image.shape}; this TiledStyleCost is for {self.content_image.shape}")
        return image

    def _forward_pass(self, image, taped):
        """Pass 1: ``(grams, content sum of squares, kept)``.

        ``kept``: the ``_TileRun``s run under a tape for pass 2 (none unless
        ``taped``; then every tile with ``keep_forward``, else the last).
        """
        size = self.content_image.shape[1:3]
        style_names = list(dict.fromkeys(layer for layer, _ in self.style_layers))
        grams, content_sum, kept, after = {}, tf.zeros([]), {}, []
        for i, tile in enumerate(self.tiles):
            keep = taped and (self.keep_forward or i == len(self.tiles) - 1)
            # Reading the tile only after the previous tile's sums exist keeps
            # a traced step from running the tiles side by side.
            with tf.control_dependencies(after):
                x = self._slice(image, tile)
            run = self._run_tile(x, tile, size, keep)
            for layer in style_names:
                if layer in run.cores:
                    gram = _gram(run.cores[layer])
                    grams[layer] = gram if layer not in grams else grams[layer] + gram
            if self.content_layer in run.cores:
                difference = self._content_core(tile) - run.cores[self.content_layer]
                content_sum = content_sum + tf.reduce_sum(tf.square(difference))
            after = [content_sum, *grams.values()]
            if keep:
                kept[i] = run
        return grams, content_sum, kept

    def _content_core(self, tile):
        height, width = self.content_image.shape[1:3]
        (_, rows), (_, cols) = self._core_box(tile, self.content_layer, height, width)
        stride = layer_stride(self.content_layer)
        r, c = tile.rows.start // stride, tile.cols.start // stride
        return self.content_target[:, r : r + rows, c : c + cols, :]

    def _costs(self, image, grams, content_sum):
        height, width = self.content_image.shape[1:3]
        n_H, n_W = self._layer_size(self.content_layer, height, width)
        n_C = self.content_target.shape[-1]
        J_content = content_sum / float(4 * n_H * n_W * n_C)

        def layer_cost(style_grams, layer):
            return tf.reduce_sum(tf.square(style_grams[layer] - grams[layer])) / self._normalizer(layer, grams)

        return self._combined(image, J_content, layer_cost)

    def _normalizer(self, layer, grams):
        """What ``layer``'s squared Gram difference is divided by (``config.style_normalizer``), a float."""
        height, width = self.content_image.shape[1:3]
        if self.config.style_normalizer == "image":
            return 4.0 * 3.0**2 * float(height * width) ** 2
        n_C = grams[layer].shape[-1]
        n_H, n_W = self._layer_size(layer, height, width)
        return 4.0 * float(n_C) ** 2 * float(n_H * n_W) ** 2

    def _upstream_factors(self, grams):
        """``{layer: A_l}`` with ``dJ/dF_l = F_l A_l`` for the style terms (see the module docstring)."""
        height, width = self.content_image.shape[1:3]
        factors = {}
        for blend, style_grams in zip(self.blend_weights, self.style_grams):
            for layer, weight in self.style_layers:
                scale = 4.0 * self.config.beta * blend * weight / self._normalizer(layer, grams)
                term = scale * (grams[layer] - style_grams[layer])
                factors[layer] = term if layer not in factors else factors[layer] + term
        return factors

    def _upstream(self, layer, core, tile, factors):
        height, width = self.content_image.shape[1:3]
        upstream = None
        if layer in factors:
            flat = tf.reshape(core, [-1, core.shape[-1]])
            upstream = tf.reshape(tf.matmul(flat, factors[layer]), tf.shape(core))
        if layer == self.content_layer:
            n_H, n_W = self._layer_size(layer, height, width)
            scale = self.config.alpha / (2.0 * n_H * n_W * core.shape[-1])
            term = scale * (core - self._content_core(tile))
            upstream = term if upstream is None else upstream + term
        return upstream

    def __call__(self, image):
        """``(J, J_content, J_style, J_tv)`` of ``image`` (shape (1, H, W, 3)), float32 scalars, in tiles."""
        image = self._check(image)
        grams, content_sum, _ = self._forward_pass(image, taped=False)
        return self._costs(image, grams, content_sum)

    def value_and_gradient(self, image):
        """``((J, J_content, J_style, J_tv), dJ/dimage)``, both passes in tiles; see the module docstring."""
        image = self._check(image)
        grams, content_sum, kept = self._forward_pass(image, taped=True)
        costs = self._costs(image, grams, content_sum)
        factors = self._upstream_factors(grams)
        after = [self._gradient.assign(tf.zeros_like(self._gradient))]
        for i in reversed(range(len(self.tiles))):
            tile = self.tiles[i]
            with tf.control_dependencies(after):
                if i in kept:
                    run = kept[i]
                else:
                    run = self._run_tile(self._slice(image, tile), tile, self.content_image.shape[1:3], taped=True)
                values = run.activations
                if self.keep_forward:
                    again = [layer for layer in _COMPUTED_AGAIN if layer in run.boxes]
                    if again:
                        values = {**values, **self._float32(self._network(run.x, again))}
                # The cores are cut again from the activations, so that pass 1's
                # copies need not live until pass 2. The upstream gradients are
                # padded to the whole activation: the gradient of the core's
                # slice (StridedSliceGrad) took a fifth of a step.
                upstream = {
                    layer: _pad_to(
                        self._upstream(layer, _crop(values[layer], box), tile, factors),
                        box,
                        run.activations[layer].shape,
                    )
                    for layer, box in run.boxes.items()
                }
                tile_gradient = run.tape.gradient(
                    [run.activations[layer] for layer in upstream], run.x, output_gradients=list(upstream.values())
                )
            rows, cols = slice(tile.rows.first, tile.rows.last), slice(tile.cols.first, tile.cols.last)
            region = self._gradient[:, rows, cols, :]
            after = [self._gradient[:, rows, cols, :].assign(region + tile_gradient)]
        with tf.control_dependencies(after):
            gradient = self._gradient.read_value()
        if self.config.tv_weight:
            with tf.GradientTape() as tape:
                tape.watch(image)
                J_tv = total_variation_cost(image, self.config.tv_form)
            gradient += self.config.tv_weight * tape.gradient(J_tv, image)
        return costs, gradient


# Of the activations a kept forward pass would hold until pass 2, conv1_1's
# is the largest (64 channels at full resolution, a third of what a tile
# keeps) and the cheapest to compute again (from 3 channels: under 1% of
# a forward pass's multiply-adds). Its values are computed again in pass 2; the tape keeps
# only its ReLU signs.
_COMPUTED_AGAIN = ("conv1_1",)


class _TileRun(NamedTuple):
    """One tile through the network: its input ``x``, the tape (or None), ``{layer: activation}``,
    ``{layer: the core's activation}`` and ``{layer: the core's box in the activation}``."""

    x: tf.Tensor
    tape: object
    activations: dict
    cores: dict
    boxes: dict


def _tile_sides(tile_size):
    """(rows, columns) of a tile's core from a side or a pair; NSTError for anything else."""
    sides = tuple(tile_size) if isinstance(tile_size, (tuple, list)) else (tile_size, tile_size)
    if len(sides) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sides):
        raise NSTError(
            f"tile_size must be a positive whole number of pixels or a (rows, columns) pair; got {tile_size!r}"
        )
    return sides


def _crop(activation, box):
    """The part of ``activation`` (1, h, w, c) at ``box`` ((row, rows), (col, cols))."""
    (r, rows), (c, cols) = box
    return activation[:, r : r + rows, c : c + cols, :]


def _pad_to(core, box, shape):
    """``core`` placed at ``box`` ((row, rows), (col, cols)) in zeros of ``shape`` (1, h, w, c)."""
    (r, rows), (c, cols) = box
    return tf.pad(core, [[0, 0], [r, shape[1] - r - rows], [c, shape[2] - c - cols], [0, 0]])


def _gram(core):
    flat = tf.reshape(core, [-1, core.shape[-1]])
    return tf.matmul(flat, flat, transpose_a=True)


def make_style_cost(model, content_image, style_image, config=None, tile_size=None, keep_forward=False):
    """A ``StyleCost``, or a ``TiledStyleCost`` when ``tile_size`` is given and the image needs several tiles.

    ``resources.plan_tiles`` gives the ``tile_size`` and ``keep_forward`` a
    memory budget allows (None where the whole image fits).
    """
    config = StyleTransferConfig() if config is None else config
    if tile_size is not None and isinstance(config, StyleTransferConfig):
        sides = _tile_sides(tile_size)
        layers = [config.content_layer, *(layer for layer, _ in config.style_layers)]
        align = tile_alignment(layers)
        height, width = np.shape(content_image)[1:3]
        tile = tuple(round_tile(side, align) for side in sides)
        if len(tile_grid(height, width, tile, required_margin(layers), align)) > 1:
            return TiledStyleCost(
                model, content_image, style_image, config, tile_size=tile_size, keep_forward=keep_forward
            )
    return StyleCost(model, content_image, style_image, config)

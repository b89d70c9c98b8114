"""The terms an objective sums: content, style, total variation; a new term is a new class here.

- A *network term* (``ContentTerm``, ``StyleTerm``, ``GuidedStyleTerm``) reduces activations to ``sums``,
  tensors that add up over any partition of the image's positions (a sum of squared differences, Gram
  matrices, guided Gram matrices); its ``cost`` is a function of those sums only, so ``cost(sum over tiles
  of sums(cores))`` is the whole image's cost whatever the tiles, and automatic differentiation gives its
  gradient in tiles too. What a term weights by position (a mask) it cuts with the ``Window`` as it cuts
  the activations; targets of its own it measures with the objective's ``measure`` (whole or in tiles).
- An *image term* (``TotalVariationTerm``, ``TemporalTerm``) reads the whole image itself.

Each term has a ``name`` (how its value is reported) and a ``weight``; ``J = sum weight * cost``.
"""

from typing import Callable, NamedTuple

import numpy as np
from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..ground.checks import check_choice, check_finite, check_whole
from ..ground.errors import NSTError
from ..plan.config import CONTENT_NORMALIZERS, STYLE_NORMALIZERS
from ..plan.masks import fit_mask, mask_at_layer
from ..tensors.costs import (
    content_cost_from_sum,
    gram_distance,
    style_gram,
    style_normalizer,
    temporal_cost,
    total_variation_cost,
    weighted_style_cost,
)
from ..tensors.guided import guided_gram, mask_mass


class Shapes(NamedTuple):
    """The whole image's sizes a term's cost needs: ``image`` (H, W) and ``layer(name)`` (n_H, n_W)."""

    image: tuple
    layer: Callable


class Window:
    """Where a piece of an image lies in the whole image's activations: ``crop(tensor, layer)`` cuts it out. The
    whole image is ``Window()``; a tile's core ``Window({layer: ((row, rows), (col, cols))})``."""

    def __init__(self, boxes=None):
        self._boxes = boxes

    def crop(self, tensor, layer):
        if self._boxes is None:
            return tensor
        (r, rows), (c, cols) = self._boxes[layer]
        return tensor[:, r : r + rows, c : c + cols, :]


class ContentTerm:
    """The content cost at ``layer`` against ``target``, the content image's activation there.

    ``sums``: ``{"squares": sum((target - a_G)**2)}`` over the window; ``cost``: with ``normalizer="layer"``,
    ``squares / (4 n_H n_W n_C)`` of the whole layer (the course's ``compute_content_cost``); with "none",
    ``squares`` (CS231n's ``content_loss`` without its weight). ``mask``: the content's weight at each position of
    the layer (1, n_H, n_W, 1), squared into the sum (``sum(m^2 (target - a_G)^2)``, divided as above), or None.

    Raises:
        NSTError: ``normalizer`` is not one of ``CONTENT_NORMALIZERS`` (a term is built by user code too).
    """

    name = "content"

    def __init__(self, layer, target, weight, normalizer="layer", mask=None):
        check_choice("normalizer", normalizer, CONTENT_NORMALIZERS)
        self.mask = mask
        self.layer = layer
        self.layers = (layer,)
        self.target = target
        self.weight = weight
        self.normalizer = normalizer

    def sums(self, activations, window):
        if self.layer not in activations:  # a tile whose core is empty at this layer
            return {}
        difference = window.crop(self.target, self.layer) - activations[self.layer]
        if self.mask is not None:
            difference = difference * window.crop(self.mask, self.layer)
        return {"squares": tf.reduce_sum(tf.square(difference))}

    def cost(self, sums, shapes):
        if self.normalizer == "none":
            return sums["squares"]
        n_H, n_W = shapes.layer(self.layer)
        return content_cost_from_sum(sums["squares"], n_H, n_W, self.target.shape[-1])


class StyleTerm:
    """The style cost: ``sum_s blend_s * sum_l w_l * ||S_{s,l} - G_l||^2 / normalizer_l``.

    Args:
        style_layers: (layer, weight) pairs.
        targets: per style image, ``{layer: its Gram matrix S}``.
        blend_weights: one per style image, summing to 1.
        normalizer: "layer" (the course's ``4 n_C^2 (n_H n_W)^2`` of each layer), "image" (``4 * 3^2 * (H W)^2``
            of the image) or "gram" (CS231n's: each Gram matrix divided by its own image's ``n_H n_W n_C``,
            the squared difference not divided further; ``targets`` come divided).
        weight: beta.

    ``sums``: each layer's Gram matrix ``G_l`` of the window's activations (an empty tile core's left out).

    Raises:
        NSTError: ``normalizer`` is not one of ``STYLE_NORMALIZERS``.
    """

    name = "style"

    def __init__(self, style_layers, targets, blend_weights, normalizer, weight):
        check_choice("normalizer", normalizer, STYLE_NORMALIZERS)
        self.style_layers = tuple(style_layers)
        self.layers = tuple(dict.fromkeys(layer for layer, _ in self.style_layers))
        self.targets = targets
        self.blend_weights = blend_weights
        self.normalizer = normalizer
        self.weight = weight

    def sums(self, activations, window=None):
        return {layer: style_gram(activations[layer]) for layer in self.layers if layer in activations}

    def cost(self, sums, shapes):
        def layer_cost(grams, layer):
            if self.normalizer == "gram":  # both Gram matrices divided by their own image's n_H n_W n_C
                return gram_distance(grams[layer], sums[layer] / self._size(layer, sums[layer].shape[-1], shapes), 1)
            normalizer = self._normalizer(layer, sums[layer].shape[-1], shapes)
            return gram_distance(grams[layer], sums[layer], normalizer)

        return tf.add_n(
            [
                blend * weighted_style_cost(self.style_layers, lambda layer, grams=grams: layer_cost(grams, layer))
                for blend, grams in zip(self.blend_weights, self.targets)
            ]
        )

    def _normalizer(self, layer, n_C, shapes):
        if self.normalizer == "image":
            return style_normalizer(*shapes.image, 3)
        return style_normalizer(*shapes.layer(layer), n_C)

    @staticmethod
    def _size(layer, n_C, shapes):
        """``n_H n_W n_C`` of ``layer`` of the whole generated image, float32."""
        n_H, n_W = shapes.layer(layer)
        return tf.cast(n_H, tf.float32) * tf.cast(n_W, tf.float32) * float(n_C)


class GuidedStyleTerm:
    """The style cost by region (Gatys et al. 2017): ``sum_s blend_s * sum_l w_{s,l} * D(S_{s,l}, G_{s,l} / M_{s,l})``.

    Each style ``s`` has its own layers, its region's mask at each layer's grid ``m_{s,l}`` (1, n_H, n_W, 1) of
    the whole generated image, its mass ``M_{s,l} = sum m^2`` and its target ``S_{s,l}``, the guided Gram matrix of
    the style image over the style's own region divided by that region's mass (``build`` measures it).

    Args:
        styles: ``GuidedTarget``s, one per style image.
        normalizer: "layer": ``D = ||S - G||^2 / (4 n_C^2)``, the course's cost with ``n_H n_W`` replaced by the
            masses (all-ones masks on a style of the content's size give ``StyleTerm``'s value); "gram" (CS231n's):
            both divided by ``n_C`` too and ``D = ||S - G||^2``.
        weight: beta.

    ``sums``: per style and layer, ``{"<s>/<layer>": sum over the window of m^2 F F^T}``: sums over positions, so
    the cost is exact in tiles (``window`` crops the masks as it crops the activations).

    Raises:
        NSTError: another normalizer ("image" is the whole image's, which a region has not).
    """

    name = "style"

    def __init__(self, styles, normalizer, weight):
        check_choice("normalizer of a guided style", normalizer, ("layer", "gram"))
        self.styles = list(styles)
        self.layers = tuple(dict.fromkeys(layer for style in self.styles for layer, _ in style.layers))
        self.normalizer = normalizer
        self.weight = weight

    def sums(self, activations, window):
        return {
            f"{i}/{layer}": guided_gram(activations[layer], window.crop(style.masks[layer], layer))
            for i, style in enumerate(self.styles)
            for layer in dict.fromkeys(name for name, _ in style.layers)
            if layer in activations
        }

    def cost(self, sums, shapes=None):
        def layer_cost(i, style, layer):
            gram = sums[f"{i}/{layer}"] / style.masses[layer]
            n_C = float(gram.shape[-1])
            if self.normalizer == "gram":
                return gram_distance(style.targets[layer], gram / n_C, 1.0)
            return gram_distance(style.targets[layer], gram, 4.0 * n_C**2)

        return tf.add_n(
            [
                style.blend * weighted_style_cost(style.layers, lambda layer, i=i, s=style: layer_cost(i, s, layer))
                for i, style in enumerate(self.styles)
            ]
        )

    @classmethod
    def build(cls, guides, measure, geometry, size, config):
        """The term of ``guides`` (``GuidedStyle``s whose ``image`` is the normalized style as the objective
        compares it) for a generated image of ``size`` (H, W): ``measure(image, layers, sums)`` adds ``sums(
        activations, window)`` up over an image (whole or in tiles); ``geometry``: (``Network``, pooling)."""
        blends = config.blend_weights(len(guides))
        styles = [_guided_target(guide, blend, measure, geometry, size, config) for guide, blend in zip(guides, blends)]
        return cls(styles, config.style_normalizer, config.beta)


class GuidedTarget(NamedTuple):
    """One style of a ``GuidedStyleTerm``: its blend weight, (layer, weight) pairs, and by layer its target,
    its region's mask at the layer's grid of the generated image and that mask's mass."""

    blend: float
    layers: tuple
    targets: dict
    masks: dict
    masses: dict


def _masks_at_layers(mask, size, layers, geometry, erode):
    """``{layer: (1, n_H, n_W, 1) float32}``: ``mask`` (or all ones) fitted to ``size`` and brought to each layer."""
    mask = np.ones(size, np.float32) if mask is None else fit_mask(mask, *size)
    network, pooling = geometry
    return {layer: mask_at_layer(mask, network, layer, pooling, erode)[None, :, :, None] for layer in layers}


def _guided_target(guide, blend, measure, geometry, size, config):
    layers = guide.layers if guide.layers is not None else config.style_layers
    names = tuple(dict.fromkeys(layer for layer, _ in layers))
    style = guide.image
    own = _masks_at_layers(guide.image_mask, tuple(style.shape[1:3]), names, geometry, guide.erode)
    own = {layer: tf.constant(m) for layer, m in own.items()}
    grams = measure(style, names, lambda a, window: {n: guided_gram(a[n], window.crop(own[n], n)) for n in a})
    targets = {}
    for layer in names:
        target = grams[layer] / mask_mass(own[layer])
        target = target / float(target.shape[-1]) if config.style_normalizer == "gram" else target
        # A variable, as the course's targets: a traced loop reads it, and a retarget may assign it.
        targets[layer] = tf.Variable(target, trainable=False, name=f"guided_gram_{layer}")
    masks = _masks_at_layers(guide.mask, tuple(size), names, geometry, guide.erode)
    masses = {layer: float(np.sum(np.square(m, dtype=np.float64))) for layer, m in masks.items()}
    if not all(masses.values()):
        raise NSTError("a style's mask is 0 everywhere at a style layer's grid: it would apply nowhere")
    masks = {layer: tf.constant(m) for layer, m in masks.items()}
    return GuidedTarget(float(blend), tuple(layers), targets, masks, masses)


class TotalVariationTerm:
    """Total variation of the image (``total_variation_cost`` in ``form``), weighted by ``weight``."""

    name = "tv"
    layers = ()

    def __init__(self, form, weight):
        self.form = form
        self.weight = weight

    def image_cost(self, image):
        return total_variation_cost(image, self.form)


class TemporalTerm:
    """Temporal consistency of a video frame with earlier stylized frames (Ruder et al. 2016).

    ``image_cost(image) = temporal_cost(image, warped, weights) = sum_k mean(c_k * (image - w_k)^2)``
    over the ``count`` earlier stylized frames ``w_k`` warped onto this frame, with per-pixel
    consistency weights ``c_k`` (0 at disocclusions and motion boundaries). They live in variables,
    so a traced loop runs on untraced when ``assign`` gives the next frame's; until then the term is 0.

    Args:
        size: the frame's (H, W); ``weight``: ``temporal_weight``; ``count``: how many earlier frames
            it compares with (3 for long-term consistency over frames -1, -2, -4).
    """

    name = "temporal"
    layers = ()

    def __init__(self, size, weight, count=1):
        height, width = (check_whole(f"the frame's {name}", side) for name, side in zip(("height", "width"), size))
        if check_finite("temporal_weight", weight) < 0:
            raise NSTError(f"temporal_weight must be a finite number of at least 0; got {weight!r}")
        self.weight = weight
        self.count = check_whole("count", count)
        self.warped = tf.Variable(tf.zeros((count, height, width, 3)), trainable=False, name="temporal_warped")
        self.weights = tf.Variable(tf.zeros((count, height, width, 1)), trainable=False, name="temporal_weights")

    def assign(self, warped, weights):
        """Compares with the frames ``warped`` (k, H, W, 3), weighted by ``weights`` (k, H, W), k <= ``count``;
        frames not given (a video's first) get zero weight. ``NSTError`` for more frames or other shapes."""
        warped = tf.convert_to_tensor(warped, tf.float32)
        weights = tf.convert_to_tensor(weights, tf.float32)[..., None]
        given = warped.shape[0]
        if given > self.count or warped.shape[1:] != self.warped.shape[1:] or weights.shape != warped.shape[:3] + [1]:
            raise NSTError(
                f"the temporal term takes up to {self.count} frames of shape {tuple(self.warped.shape[1:])} and their "
                f"weights; got {tuple(warped.shape)} and {tuple(weights.shape[:3])}"
            )
        missing = self.count - given
        self.warped.assign(tf.concat([warped, tf.zeros([missing, *warped.shape[1:]])], 0))
        self.weights.assign(tf.concat([weights, tf.zeros([missing, *weights.shape[1:]])], 0))

    def image_cost(self, image):
        return temporal_cost(image, self.warped, self.weights)

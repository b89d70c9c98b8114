"""The terms an objective sums: content, style, total variation; a new term is a new class here.

- A *network term* (``ContentTerm``, ``StyleTerm``) reduces activations to ``sums``, tensors that add
  up over any partition of the image's positions (a sum of squared differences, Gram matrices); its
  ``cost`` is a function of those sums only, so ``cost(sum over tiles of sums(cores))`` is the whole
  image's cost whatever the tiles, and automatic differentiation gives its gradient in tiles too.
- An *image term* (``TotalVariationTerm``, ``TemporalTerm``) reads the whole image itself.

Each term has a ``name`` (how its value is reported) and a ``weight``; ``J = sum weight * cost``.
"""

from typing import Callable, NamedTuple

import tensorflow as tf

from ..ground.checks import check_choice, check_finite, check_whole
from ..ground.errors import NSTError
from ..plan.config import CONTENT_NORMALIZERS, STYLE_NORMALIZERS
from ..tensors.costs import (
    content_cost_from_sum,
    gram_distance,
    style_gram,
    style_normalizer,
    temporal_cost,
    total_variation_cost,
    weighted_style_cost,
)


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
    ``squares`` (CS231n's ``content_loss`` without its weight).

    Raises:
        NSTError: ``normalizer`` is not one of ``CONTENT_NORMALIZERS`` (a term is built by user code too).
    """

    name = "content"

    def __init__(self, layer, target, weight, normalizer="layer"):
        check_choice("normalizer", normalizer, CONTENT_NORMALIZERS)
        self.layer = layer
        self.layers = (layer,)
        self.target = target
        self.weight = weight
        self.normalizer = normalizer

    def sums(self, activations, window):
        if self.layer not in activations:  # a tile whose core is empty at this layer
            return {}
        difference = window.crop(self.target, self.layer) - activations[self.layer]
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

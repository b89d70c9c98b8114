"""The objective of a run as one object: ``StyleCost``.

``StyleCost(model, content_image, style_image, config)`` owns everything that
defines the cost: the network in the precision it runs in, the content
target, one set of style Gram matrices per style image with its blend
weight, the colour handling of the styles, and the total-variation term.
Called on an image it returns ``(J, J_content, J_style, J_tv)``, so the
course's costs of any image can be evaluated without an optimizer, and the
optimization loop (``optimize.py``) needs to know nothing of what it
minimizes.
"""

import tensorflow as tf

from .colors import present, recolor_styles
from .config import StyleTransferConfig
from .costs import (
    compute_content_cost,
    layer_style_cost_from_gram,
    style_gram,
    total_cost,
    total_variation_cost,
    weighted_style_cost,
)
from .errors import NSTError
from .images import deprocess_image, checked_float32_batch, pixel_range
from .precision import compute_dtype


class StyleCost(tf.Module):
    """The course's cost, ``alpha * J_content + beta * J_style``, plus total variation.

    Args:
        model: a ``VGG19``, or any callable ``model(image, layers=[...]) ->
            {name: activation}`` with a ``dtype`` and, for a precision other
            than its own, ``astype(dtype)``.
        content_image: normalized content image, shape (1, H, W, 3).
        style_image: normalized style image, shape (1, h, w, 3), or a list of
            them blended with ``config.style_blend_weights``; sizes may differ
            from the content's.
        config: a ``StyleTransferConfig``; this object reads ``alpha``,
            ``beta``, ``content_layer``, ``style_layers``, ``precision``,
            ``tv_weight``, ``tv_form``, ``preserve_colors`` and
            ``style_blend_weights``.

    Calling it on an image of shape (1, H, W, 3) returns float32 scalars
    ``(J, J_content, J_style, J_tv)`` with
    ``J = alpha * J_content + beta * J_style + tv_weight * J_tv`` and
    ``J_style = sum_s blend_s * sum_l weight_l * style cost of layer l``.
    The network runs in ``config.precision``; activations are cast to
    float32 before Gram matrices and costs (float16 Gram sums overflow,
    bfloat16 ones lose three digits).
    """

    def __init__(self, model, content_image, style_image, config=StyleTransferConfig(), name="style_cost"):
        super().__init__(name=name)
        if not isinstance(config, StyleTransferConfig):
            raise NSTError(f"config must be a StyleTransferConfig; got {type(config).__name__}")
        self.config = config
        self.model = _in_precision(model, config.precision)
        self.content_image = checked_float32_batch(content_image, "content_image")
        styles = style_image if isinstance(style_image, (list, tuple)) else [style_image]
        if not styles:
            raise NSTError("style_image: give at least one style image")
        styles = [checked_float32_batch(style, "style_image") for style in styles]
        self.blend_weights = config.blend_weights(len(styles))
        styles = recolor_styles(config.preserve_colors, styles, self.content_image)

        self._pixel_range = [tf.constant(bound, tf.float32) for bound in pixel_range(config.normalization)]
        self.content_layer = config.content_layer
        self.style_layers = config.style_layers
        style_names = [name for name, _ in self.style_layers]
        self._layers = list(dict.fromkeys([self.content_layer, *style_names]))
        with self.name_scope:
            # Variables rather than captured constants: a traced loop then
            # reads them where they live (on the GPU) instead of embedding
            # copies in its graph.
            self.content_target = tf.Variable(
                self._content_activation(self.content_image), trainable=False, name="content_target"
            )
            self.style_grams = []
            for i, style in enumerate(styles):
                grams = self._style_grams(style, style_names)
                self.style_grams.append(
                    {
                        layer: tf.Variable(grams[layer], trainable=False, name=f"gram_{i}_{layer}")
                        for layer in style_names
                    }
                )

    def _network(self, image, layers, **options):
        # nst_tf's networks take RGB (the .mat's order; Keras' BGR first layer
        # is reversed on reading). The second edition feeds its RGB [0, 1]
        # pixels to Keras' BGR layer as they are, so "unit" reverses them
        # here to give that edition's activations.
        if self.config.normalization == "unit":
            image = tf.reverse(image, axis=[-1])
        return self.model(image, layers=layers, **options)

    @staticmethod
    def _float32(activations):
        return {name: tf.cast(a, tf.float32) for name, a in activations.items()}

    def _content_activation(self, image):
        """float32 activation of ``image`` at the content layer: the content target.

        With ``_style_grams``, the one place the targets are computed, so a
        subclass (``TiledStyleCost``) can compute them another way.
        """
        return self._float32(self._network(image, [self.content_layer]))[self.content_layer]

    def _style_grams(self, image, layers):
        """``{layer: style_gram of image's float32 activation}`` for ``layers``."""
        activations = self._float32(self._network(image, layers))
        return {layer: style_gram(activations[layer]) for layer in layers}

    def __call__(self, image):
        """``(J, J_content, J_style, J_tv)`` of ``image`` (shape (1, H, W, 3)), float32 scalars."""
        activations = self._float32(self._network(image, self._layers))
        J_content = compute_content_cost(self.content_target, activations[self.content_layer])
        normalizer = self._style_normalizer(image)

        def layer_cost(style_grams, layer):
            return layer_style_cost_from_gram(style_grams[layer], activations[layer], normalizer)

        return self._combined(image, J_content, layer_cost)

    def _combined(self, image, J_content, layer_cost):
        """``(J, J_content, J_style, J_tv)`` from the content cost and ``layer_cost(style_grams, layer)``.

        ``J_style = sum_s blend_s * sum_l weight_l * layer_cost(grams_s, l)``;
        ``J = alpha * J_content + beta * J_style + tv_weight * J_tv``. Shared
        with ``TiledStyleCost``, which finds the layer costs in tiles.
        """
        config = self.config
        J_style = tf.add_n(
            [
                blend * weighted_style_cost(self.style_layers, lambda layer, grams=grams: layer_cost(grams, layer))
                for blend, grams in zip(self.blend_weights, self.style_grams)
            ]
        )
        J = total_cost(J_content, J_style, config.alpha, config.beta)
        if config.tv_weight:
            J_tv = total_variation_cost(image, config.tv_form)
            J += config.tv_weight * J_tv
        else:
            J_tv = tf.zeros([], tf.float32)
        return J, J_content, J_style, J_tv

    def _style_normalizer(self, image):
        """None (each layer's own, the course's) or the Keras variant's 4 * 3^2 * (H W)^2 of the image."""
        if self.config.style_normalizer == "layer":
            return None
        pixels = tf.cast(tf.shape(image)[1] * tf.shape(image)[2], tf.float32)
        return 4.0 * 3.0**2 * tf.square(pixels)

    def constrain(self, image):
        """After each optimizer step: with ``config.clip``, clips the ``image`` variable to the pixel range."""
        if self.config.clip:
            image.assign(tf.clip_by_value(image, *self._pixel_range))

    def value_and_gradient(self, image):
        """``((J, J_content, J_style, J_tv), dJ/dimage)``: what one optimizer step needs.

        The loop calls only this, so an objective that computes the gradient
        another way (in tiles, say) plugs in by overriding it.
        """
        with tf.GradientTape() as tape:
            tape.watch(image)
            costs = self(image)
        return costs, tape.gradient(costs[0], image)

    def present(self, image):
        """``image`` as it is shown and saved: with ``preserve_colors="luminance"``, in the content's colours."""
        return present(self.config.preserve_colors, image, self.content_image)

    def deprocess(self, image):
        """``image`` as uint8 pixels (h, w, 3), for the objective's normalization."""
        return deprocess_image(self.present(image), self.config.normalization)


def _in_precision(model, precision):
    if not callable(model):
        raise NSTError(f"model must be a VGG19 (or a callable with its interface); got {type(model).__name__}")
    dtype = compute_dtype(precision)
    if getattr(model, "dtype", tf.float32) == dtype:
        return model
    if not hasattr(model, "astype"):
        raise NSTError(f"precision {precision!r} needs a model with an astype(dtype) method")
    return model.astype(dtype)

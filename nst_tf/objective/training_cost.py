"""The objective a fast style network is trained on: ``TrainingCost``, the course's cost of each stylized image
against its own content image and one of the styles (Johnson et al. 2016's perceptual loss is this cost).

The terms are ``StyleCost``'s (``terms.py``): the content term at the config's layer, the ``StyleTerm`` over the
styles' Gram matrices, total variation when ``tv_weight`` is not 0, with the course's normalizations and alpha,
beta and tv_weight; reported by name as every objective reports them.
"""

import dataclasses

from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from ..tensors.images import pixel_range
from .terms import Shapes, StyleTerm, Window
from .whole import StyleCost, _spatial


class TrainingCost(StyleCost):
    """Per-image costs of a batch of stylized images, each against its content image and the chosen style.

    Args:
        model: a network module (``VGG19``, ``SqueezeNet``).
        style_images: normalized style images, each (1, h, w, 3) (sizes may differ), in the network's order.
        config: a ``StyleTransferConfig``; ``preserve_colors`` and ``style_blend_weights`` are refused (a trained
            network takes one style at a time, whatever the content).

    ``costs(generated, contents, style)``: generated and contents (B, H, W, 3) float32 pixels in [0, 255] (the
    transformation network's output and input), ``style`` (B, styles) float32 one-hot rows; returns the costs by
    name (``{"total": J, "content": ..., "style": ..., "tv": ...}``), float32 vectors (B,):
    ``J_b = alpha * J_content(G_b, C_b) + beta * sum_s style_{b,s} * J_style(G_b, S_s) + tv_weight * J_tv(G_b)``.
    The network runs once on generated and content images together.

    Raises:
        NSTError: as ``StyleCost``; for ``preserve_colors`` or ``style_blend_weights``.
    """

    def __init__(self, model, style_images, config, name="training_cost"):
        if config.preserve_colors is not None or config.style_blend_weights is not None:
            raise NSTError(
                "training takes neither preserve_colors nor style_blend_weights: each step trains one style "
                "(blend styles when stylizing, with a model trained on several)"
            )
        if config.clip or config.clamp is not None:
            config = dataclasses.replace(config, clip=False, clamp=None, clamp_until=None)  # the network's output
        styles = list(style_images)
        if not styles:
            raise NSTError("style_images: give at least one style image")
        # The first style stands for the content image: its target is never used, each image brings its own.
        super().__init__(model, styles[0], styles, config, name=name)
        self.styles = len(styles)
        self._low, self._high = (tf.constant(bound, tf.float32) for bound in pixel_range(config.normalization))

    def normalized(self, pixels):
        """(B, H, W, 3) pixels in [0, 255] normalized as the network takes them (``config.normalization``):
        the same affine map per channel as ``reshape_and_normalize_image``."""
        return self._low + tf.cast(pixels, tf.float32) * ((self._high - self._low) / 255.0)

    def costs(self, generated, contents, style):
        """Each image's costs by name, float32 vectors (B,) (see the class)."""
        batch = tf.shape(generated)[0]
        images = self.normalized(tf.concat([generated, contents], axis=0))
        activations = self.activations(images)
        targets = activations[self.content_layer][batch:]
        own = {layer: a[:batch] for layer, a in activations.items()}

        def one(args):
            image, acts, target, weights = args
            return self._image_costs(image[None], {k: a[None] for k, a in acts.items()}, target[None], weights)

        return tf.vectorized_map(one, (images[:batch], own, targets, tf.cast(style, tf.float32)))

    def _image_costs(self, image, activations, content_target, weights):
        """``StyleCost.image_costs`` with the style term's blend weights ``weights`` (styles,): one-hot picks one."""
        config = self.config
        style = StyleTerm(
            self.style_layers, self.style_grams, tf.unstack(weights, self.styles), config.style_normalizer, config.beta
        )
        terms = [self._content_term(content_target) if t.name == "content" else t for t in self.terms]
        terms = [style if t.name == "style" else t for t in terms]
        sums = [term.sums(activations, Window()) for term in terms if term.layers]
        shapes = Shapes(_spatial(image), lambda layer: _spatial(activations[layer]))
        return self._combined(image, sums, shapes, terms)

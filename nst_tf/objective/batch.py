"""The objective of several content images of one size at once: ``BatchStyleCost``.

The network runs on the whole batch; each image's costs are ``StyleCost.image_costs`` of it alone, vectorized.
The gradient of the summed totals is each image's own, so with Adam (elementwise) a batch follows the steps of
separate runs, up to float rounding.
"""

import numpy as np
from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from ..plan.config import StyleTransferConfig
from ..plan.masks import GuidedContent
from ..tensors.colors import present
from ..tensors.images import checked_float32_batch
from .whole import StyleCost


class BatchStyleCost(tf.Module):
    """Per-image costs of a batch of content images against shared style images.

    Args:
        model: a network module (``VGG19``, ``SqueezeNet``).
        content_images: normalized content images, shape (B, H, W, 3), or a ``GuidedContent`` of them.
        style_image: a normalized style image, or a list blended with ``config.style_blend_weights`` (shared).
        config: a ``StyleTransferConfig``.

    Called on images of the content's shape it returns each image's costs by name, float32 vectors (B,).

    Raises:
        NSTError: as ``StyleCost``; and for ``preserve_colors="histogram"``, whose style targets depend
            on each content image.
    """

    batched = True

    def __init__(self, model, content_images, style_image, config=StyleTransferConfig(), name="batch_style_cost"):
        super().__init__(name=name)
        if config.preserve_colors == "histogram":
            raise NSTError(
                "preserve_colors histogram recolours the style images for each content image: batches take one "
                "style target for all (use a batch size of 1)"
            )
        guide = content_images if isinstance(content_images, GuidedContent) else None
        contents = checked_float32_batch(getattr(guide, "image", content_images), "content_images", batch=True)
        self.config = config
        # The shared part: style targets, terms, checks and the network in its precision.
        first = contents[:1] if guide is None else guide.with_image(contents[:1])  # one mask for every image
        self._single = StyleCost(model, first, style_image, config)
        self.content_image = contents
        with self.name_scope:
            self.content_target = tf.Variable(self._content_targets(contents), trainable=False, name="content_targets")

    def _content_targets(self, contents):
        layer = self._single.content_layer
        return self._single.activations(contents, [layer])[layer]

    def __call__(self, images):
        """Each image's costs by name (as ``StyleCost``'s), float32 vectors of shape (B,)."""
        images = images if isinstance(images, tf.Variable) else tf.convert_to_tensor(images, tf.float32)
        activations = self._single.activations(images)

        def one(args):
            image, own, target = args
            batch_of_one = {layer: a[None] for layer, a in own.items()}
            return self._single.image_costs(image[None], batch_of_one, target[None])

        return tf.vectorized_map(one, (images, activations, self.content_target))

    def value_and_gradient(self, images):
        """``(costs by name, dJ/dimages)`` with the total summed over the batch for the gradient."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            costs = self(images)
            total = tf.reduce_sum(costs["total"])
        return costs, tape.gradient(total, images)

    def constrain(self, images):
        """As ``StyleCost.constrain``: every element by itself."""
        self._single.constrain(images)

    def retarget(self, content_images):
        """Another batch of content images of this shape: their targets assigned, nothing retraced."""
        contents = tf.convert_to_tensor(content_images, tf.float32)
        self.content_image = contents
        self.content_target.assign(self._content_targets(contents))

    def present(self, images):
        """Each image as shown and saved (see ``StyleCost.present``), in its own content's colours."""
        mode = self.config.preserve_colors
        return np.concatenate(
            [present(mode, images[i : i + 1], self.content_image[i : i + 1]) for i in range(len(images))]
        )

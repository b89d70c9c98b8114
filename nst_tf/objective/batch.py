"""The objective of several content images of one size at once: ``BatchStyleCost``.

The network runs on the whole batch (its convolutions are per image), and
each image's costs are the ones ``StyleCost`` computes for it alone, against
its own content target and the shared style targets (``StyleCost.image_costs``,
vectorized over the batch). The gradient is that of the sum of the images'
total costs: each image's part depends on that image only, so it is the
image's own gradient. With Adam, which updates every element by itself, a
batch therefore follows the same steps as separate runs, up to float
rounding (the batched convolutions may sum in another order).
"""

import numpy as np
import tensorflow as tf

from ..ground.errors import NSTError
from ..plan.config import StyleTransferConfig
from ..tensors.colors import present
from ..tensors.images import checked_float32_batch
from .whole import StyleCost


class BatchStyleCost(tf.Module):
    """Per-image costs of a batch of content images against shared style images.

    Args:
        model: a network module (``VGG19``, ``SqueezeNet``).
        content_images: normalized content images, shape (B, H, W, 3).
        style_image: a normalized style image, or a list of them blended with
            ``config.style_blend_weights`` (targets computed once, shared).
        config: a ``StyleTransferConfig``.

    Calling it on images of the content's shape returns float32 vectors of
    shape (B,): ``(J, J_content, J_style, J_tv)`` of each image, as
    ``StyleCost`` gives them for that image alone.

    Raises:
        NSTError: as ``StyleCost``; and for ``preserve_colors="histogram"``,
            whose style targets depend on each content image (use one image
            at a time).
    """

    batched = True

    def __init__(self, model, content_images, style_image, config=StyleTransferConfig(), name="batch_style_cost"):
        super().__init__(name=name)
        if not isinstance(config, StyleTransferConfig):
            raise NSTError(f"config must be a StyleTransferConfig; got {type(config).__name__}")
        if config.preserve_colors == "histogram":
            raise NSTError(
                "preserve_colors histogram recolours the style images for each content image: batches take one "
                "style target for all (use a batch size of 1)"
            )
        contents = checked_float32_batch(content_images, "content_images", batch=True)
        self.config = config
        # The shared part: style targets, terms, checks and the network in its precision.
        self._single = StyleCost(model, contents[:1], style_image, config)
        self.content_image = contents
        with self.name_scope:
            self.content_target = tf.Variable(self._content_targets(contents), trainable=False, name="content_targets")

    def _content_targets(self, contents):
        layer = self._single.content_layer
        return self._single.activations(contents, [layer])[layer]

    def __call__(self, images):
        """Each image's costs by name (as ``StyleCost``'s), float32 vectors of shape (B,)."""
        images = self._check(images)
        activations = self._single.activations(images)

        def one(args):
            image, own, target = args
            batch_of_one = {layer: a[None] for layer, a in own.items()}
            return self._single.image_costs(image[None], batch_of_one, target[None])

        return tf.vectorized_map(one, (images, activations, self.content_target))

    def _check(self, images):
        if not isinstance(images, tf.Variable):
            images = tf.convert_to_tensor(images, tf.float32)
        if not images.shape.is_compatible_with(self.content_image.shape):
            raise NSTError(f"images have shape {images.shape}; this BatchStyleCost is for {self.content_image.shape}")
        return images

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
        """Another batch of content images of this shape: their targets assigned, nothing retraced.

        Raises:
            NSTError: ``content_images`` is not a normalized batch of this shape.
        """
        contents = checked_float32_batch(content_images, "content_images", batch=True)
        if contents.shape != self.content_image.shape:
            expected = self.content_image.shape
            raise NSTError(f"content_images have shape {contents.shape}; this objective is for {expected}")
        self.content_image = contents
        self.content_target.assign(self._content_targets(contents))

    def present(self, images):
        """Each image as shown and saved (see ``StyleCost.present``), in its own content's colours."""
        mode = self.config.preserve_colors
        return np.concatenate(
            [present(mode, images[i : i + 1], self.content_image[i : i + 1]) for i in range(len(images))]
        )

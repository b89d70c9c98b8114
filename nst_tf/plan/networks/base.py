"""What nst_tf knows of a network before TensorFlow is loaded: its ``Network`` description.

A network is three files, one in each layer that needs it, each with one
registration: a description (this class's instance, free of TensorFlow, so
that the command can check layer names, image sizes, tiles and memory before
the seconds TensorFlow takes to import; ``plan.networks.network_registry.NETWORKS``),
a weights reader (``plan.weights.reader_registry.READERS``) and a ``tf.Module`` that
computes it (``tensors.modules.MODULES``). The description
owns the network's vocabulary (layer names in computation order, the default
content and style layers), what it is fed (``normalizations``), its
poolings, its smallest input, the memory a pixel costs, and the
receptive-field geometry tiling needs (``stride``, ``reach``, ``length``).

The geometry here is that of a chain of 3x3 "SAME" convolutions (stride 1)
and 2x2 poolings (stride 2), VGG's; a network made otherwise overrides
``stride``, ``reach`` and ``length`` or sets ``tileable`` to False.
"""

import numbers
from dataclasses import dataclass

from ...ground.errors import NSTError


@dataclass(frozen=True, repr=False)
class Network:
    """A network's vocabulary and geometry, without TensorFlow.

    Attributes:
        name: the key in ``nst_tf.plan.networks.network_registry.NETWORKS`` (e.g. "vgg19").
        title: how messages name it (e.g. "VGG-19").
        layers: the names of its layers in computation order.
        kinds: each layer's kind, "conv" (3x3, stride 1, SAME) or "pool"
            (2x2, stride 2), in the order of ``layers`` (a network that
            overrides the geometry below names its own kinds).
        poolings: the pooling choices, the first the default.
        normalizations: what it can be fed (``StyleTransferConfig.normalization``
            names, carried out by ``nst_tf.tensors.images``), the first the default.
        mean_pixel: the RGB mean its "means" normalization subtracts (the
            images it was trained on), or None.
        content_layer, style_layers: the default content layer and the
            default (name, weight) style layers.
        min_image_size: the smallest height and width it accepts.
        weights_bytes: the network's weights in memory (float32).
        pixel_bytes: measured peak memory of a whole-image Adam step per
            pixel of the image (``large/memory.py``).
        forward_pixel_bytes: measured peak memory of a forward pass (the
            style and content targets) per pixel of its input.
        kept_pixel_bytes: what a tile's kept forward pass takes per pixel
            of its extent.
        tile_bytes: what each tile adds to a tiled step whatever its size
            (its share of the traced graph and its buffers).
        tileable: whether its costs can be computed exactly in tiles.
        aliases: (alias, layer) pairs: other names every method here takes
            for a layer of ``layers`` (SqueezeNet's torchvision indices "0"
            ... "12"); ``canonical`` maps them back. Empty for VGG-19.
    """

    name: str
    title: str
    layers: tuple
    kinds: tuple
    poolings: tuple
    normalizations: tuple
    mean_pixel: tuple
    content_layer: str
    style_layers: tuple
    min_image_size: int
    weights_bytes: int
    pixel_bytes: int
    forward_pixel_bytes: int
    kept_pixel_bytes: int
    tile_bytes: int = 0
    tileable: bool = True
    aliases: tuple = ()

    def __repr__(self):
        return f"<Network {self.name}>"

    # Vocabulary -------------------------------------------------------------------------

    def check_layer(self, what, name):
        """Raises ``NSTError`` naming ``what`` unless ``name`` is one of this network's layers or aliases."""
        if not isinstance(name, str) or (name not in self.layers and name not in dict(self.aliases)):
            also = f"; or their aliases {', '.join(alias for alias, _ in self.aliases)}" if self.aliases else ""
            raise NSTError(f"{what} {name!r} is not a {self.title} layer; valid names: {', '.join(self.layers)}{also}")

    def canonical(self, name, what="layer"):
        """The name in ``layers`` of the layer ``name`` (a name or an alias); ``NSTError`` naming ``what`` else."""
        self.check_layer(what, name)
        return dict(self.aliases).get(name, name)

    def deepest(self, layers):
        """The one of ``layers`` computed last; ``NSTError`` for an unknown name or no layers."""
        layers = self.layer_list(layers)
        for name in layers:
            self.check_layer("layer", name)
        if not layers:
            raise NSTError("layers: give at least one layer")
        return max(layers, key=lambda name: self.layers.index(self.canonical(name)))

    @staticmethod
    def layer_list(layers):
        """``layers`` (a list, tuple or other iterable of names) as a list; ``NSTError`` for anything else."""
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise NSTError(f"layers must be a list of layer names; got {layers!r:.80}")
        return list(layers)

    def check_normalization(self, normalization):
        """Raises ``NSTError`` unless this network can be fed images normalized as ``normalization``."""
        if normalization not in self.normalizations:
            raise NSTError(
                f"normalization {normalization!r} is not one {self.title} takes; use one of "
                f"{', '.join(self.normalizations)}"
            )

    def check_pooling(self, pooling):
        if not isinstance(pooling, str) or pooling not in self.poolings:
            raise NSTError(f"pooling must be one of {', '.join(map(repr, self.poolings))}; got {pooling!r}")

    def _up_to(self, layer):
        end = self.layers.index(self.canonical(layer)) + 1
        return self.kinds[:end]

    # Geometry ---------------------------------------------------------------------------

    def stride(self, layer):
        """Input pixels per position of ``layer``: ``2 ** (poolings up to and including it)``."""
        return 2 ** sum(1 for kind in self._up_to(layer) if kind == "pool")

    def reach(self, layer):
        """Positions of ``layer``, next to a tile's artificial edge, that differ from the whole image's.

        One more after each 3x3 convolution, ``ceil(k / 2)`` of ``k`` after
        each 2x2 pooling (the edge lies on the pooling grid); see
        ``nst_tf.plan.tiles``.
        """
        reach = 0
        for kind in self._up_to(layer):
            reach = reach + 1 if kind == "conv" else -(-reach // 2)
        return reach

    def length(self, length, layer, pooling):
        """Size along one axis of ``layer``'s activation for an input ``length`` pixels long.

        The first pooling choice (average, SAME) rounds each halving up, the
        others (max, VALID) round it down.
        """
        self.check_pooling(pooling)
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
            raise NSTError(f"length must be a whole number of pixels; got {length!r:.80}")
        for kind in self._up_to(layer):
            if kind == "pool":
                length = -(-length // 2) if pooling == self.poolings[0] else length // 2
        return length

    def alignment(self, layers):
        """The grid tiles start on: the total stride of the deepest of ``layers``."""
        return self.stride(self.deepest(layers))

    def margin(self, layers):
        """Input pixels a tile needs beyond its core on inner sides for all of ``layers`` to be exact.

        The largest ``reach(l) * stride(l)`` over ``layers``, rounded up to
        ``alignment(layers)``.
        """
        layers = self.layer_list(layers)
        align = self.alignment(layers)
        need = max(self.reach(layer) * self.stride(layer) for layer in layers)
        return -(-need // align) * align

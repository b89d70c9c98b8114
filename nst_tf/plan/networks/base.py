"""What nst_tf knows of a network before TensorFlow is loaded: its ``Network`` description.

A network is three registered files: this description (free of TensorFlow, so the command checks layers, sizes,
tiles and memory before importing it; ``NETWORKS``), a weights reader (``READERS``) and a ``tf.Module``
(``tensors.modules.MODULES``). The description owns layer names, inputs, poolings, smallest input, memory a pixel
costs, and VGG's receptive-field geometry (3x3 SAME convolutions, 2x2 poolings); a network made otherwise
overrides ``_strided`` and ``_after`` or sets ``tileable`` to False.
"""

import numbers
from dataclasses import dataclass

from ...ground.errors import NSTError


@dataclass(frozen=True, repr=False)
class Network:
    """A network's vocabulary and geometry, without TensorFlow.

    ``name`` is its key in ``NETWORKS``, ``title`` how messages name it; ``layers`` its layer names in
    computation order and ``kinds`` each one's kind ("conv": 3x3, stride 1, SAME; "pool": 2x2, stride 2;
    others where ``_after`` is overridden); ``poolings`` and ``normalizations`` (``StyleTransferConfig``'s
    names, carried out by ``nst_tf.tensors.images``) its choices, the first the default; ``mean_pixel``
    the RGB mean "means" subtracts, or None; ``content_layer`` and ``style_layers`` the default layers;
    ``min_image_size`` the smallest height and width it takes. Bytes, measured (``plan.memory``):
    ``weights_bytes`` its float32 weights; per pixel, ``pixel_bytes`` a whole-image Adam step's peak,
    ``forward_pixel_bytes`` a forward pass's, ``kept_pixel_bytes`` a tile's kept forward pass; and
    ``tile_bytes`` what each tile adds to a tiled step. ``tileable``: whether its costs are exact in
    tiles. ``aliases``: (alias, layer) pairs, other names for layers (SqueezeNet's torchvision indices).
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
        """Raises ``NSTError`` naming ``what`` unless ``name`` is one of the layers or aliases."""
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
        return self.kinds[: self.layers.index(self.canonical(layer)) + 1]

    # Geometry ---------------------------------------------------------------------------

    #: The kinds of layer of stride 2.
    _strided = ("pool",)

    def stride(self, layer):
        """Input pixels per position of ``layer``: ``2 ** (stride-2 layers up to and including it)``."""
        return 2 ** sum(1 for kind in self._up_to(layer) if kind in self._strided)

    def reach(self, layer):
        """Positions of ``layer`` next to a tile's artificial edge that differ from the whole image's: one more
        after each 3x3 convolution, ``ceil(k / 2)`` of ``k`` after each 2x2 pooling (see ``nst_tf.plan.tiles``)."""
        reach = 0
        for kind in self._up_to(layer):
            reach = reach + 1 if kind == "conv" else -(-reach // 2)
        return reach

    def length(self, length, layer, pooling):
        """Size along one axis of ``layer``'s activation for an input ``length`` pixels long (``_after``)."""
        self.check_pooling(pooling)
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
            raise NSTError(f"length must be a whole number of pixels; got {length!r:.80}")
        for kind in self._up_to(layer):
            length = self._after(kind, int(length), pooling)
        return length

    def _after(self, kind, length, pooling):
        """Positions after a layer of ``kind``: a pooling halves them, the first pooling choice (average,
        SAME) rounding up, the others (max, VALID) down."""
        if kind != "pool":
            return length
        return -(-length // 2) if pooling == self.poolings[0] else length // 2

    def alignment(self, layers):
        """The grid tiles start on: the total stride of the deepest of ``layers``."""
        return self.stride(self.deepest(layers))

    def margin(self, layers):
        """Input pixels a tile needs beyond its core for all of ``layers`` to be exact: the largest ``reach(l) *
        stride(l)``, rounded up to ``alignment(layers)``."""
        layers = self.layer_list(layers)
        align = self.alignment(layers)
        need = max(self.reach(layer) * self.stride(layer) for layer in layers)
        return -(-need // align) * align

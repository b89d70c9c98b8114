"""Styles by region (Gatys et al. 2017, "Controlling Perceptual Factors"): masks, without TensorFlow.

``GuidedStyle`` is a style image with its region on the content (``mask``: the weight of that style at each pixel,
0 to 1), optionally a region of its own (``image_mask``: where its statistics are taken from) and layers of its
own (``layers``: scale control). Objectives take it wherever they take a style image. ``mask_at_layer`` brings a
mask to a layer's grid as the network's own geometry does (each 2x2 pooling averages it; ``erode`` also takes the
minimum over each 3x3 convolution's window, so that a position counts only as far as all it sees is inside).
"""

import numbers
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..ground.errors import NSTError

#: The largest relative difference of aspect ratios for which a mask is resized to its image.
ASPECT_TOLERANCE = 0.01


@dataclass(frozen=True, eq=False)
class GuidedStyle:
    """A style image (as the objective takes one) with its guidance.

    Args:
        image: the style image, normalized (1, h, w, 3), or its pixels where a run fits them (``CoarseToFine``).
        mask: its weight at each pixel of the content image (H', W') or (H', W', 1) in [0, 1], resized to the
            content image's size by the objective; None: everywhere (weight 1).
        image_mask: where on the style image its statistics come from, resized to the style image; None: all of it.
        layers: (layer, weight) pairs of its own instead of the config's ``style_layers``.
        erode: bring the masks to each layer's grid with erosion too (see the module docstring).
    """

    image: object
    mask: object = None
    image_mask: object = None
    layers: tuple | None = None
    erode: bool = False

    def __post_init__(self):
        for name in ("mask", "image_mask"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, checked_mask(getattr(self, name), name))
        if self.layers is not None:
            object.__setattr__(self, "layers", checked_layers(self.layers))
        if not isinstance(self.erode, bool):
            raise NSTError(f"erode must be True or False; got {self.erode!r:.80}")

    def with_image(self, image):
        """The same guidance for another ``image`` (a style image fitted to another size)."""
        return GuidedStyle(image, self.mask, self.image_mask, self.layers, self.erode)


@dataclass(frozen=True, eq=False)
class GuidedContent:
    """A content image (as the objective takes one: normalized (1, H, W, 3), a batch, or pixels where a run fits
    them) with ``mask``, the content cost's weight at each pixel ((H', W') in [0, 1], resized to the image by the
    objective), brought to the content layer's grid as style masks are (``erode`` as ``GuidedStyle``'s)."""

    image: object
    mask: object
    erode: bool = False

    def __post_init__(self):
        object.__setattr__(self, "mask", checked_mask(self.mask, "content mask"))
        if not isinstance(self.erode, bool):
            raise NSTError(f"erode must be True or False; got {self.erode!r:.80}")

    def with_image(self, image):
        """The same mask for another ``image``."""
        return GuidedContent(image, self.mask, self.erode)


def guided_layers(styles):
    """The layer names the ``GuidedStyle``s among ``styles`` read of their own, in order, once each."""
    own = [style.layers for style in styles if isinstance(style, GuidedStyle) and style.layers is not None]
    return list(dict.fromkeys(layer for layers in own for layer, _ in layers))


def checked_mask(mask, name="mask"):
    """``mask`` as a read-only float32 (H, W) array of values in [0, 1], not all 0; ``NSTError`` otherwise."""
    try:
        array = np.array(mask, dtype=np.float32)
    except (TypeError, ValueError):
        raise NSTError(f"{name} must be an array of weights in [0, 1]; got {type(mask).__name__}") from None
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or 0 in array.shape:
        raise NSTError(f"{name} must have shape (H, W) or (H, W, 1); got {array.shape}")
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise NSTError(f"{name} must hold weights in [0, 1]")
    if not array.any():
        raise NSTError(f"{name} is 0 everywhere: its style would apply nowhere")
    array.setflags(write=False)
    return array


def checked_layers(layers):
    """``layers`` as a tuple of (layer name, finite weight) pairs; ``NSTError`` otherwise."""
    try:
        pairs = tuple((name, weight) for name, weight in layers)
    except (TypeError, ValueError):
        raise NSTError(f"layers must be (layer name, weight) pairs; got {layers!r:.80}") from None
    for name, weight in pairs:
        real = isinstance(weight, numbers.Real) and not isinstance(weight, bool) and np.isfinite(weight)
        if not isinstance(name, str) or not real:
            raise NSTError(f"layers must be (layer name, weight) pairs; got {(name, weight)!r:.80}")
    if not pairs:
        raise NSTError("layers: give at least one (layer name, weight) pair")
    return tuple((name, float(weight)) for name, weight in pairs)


def aspect_matches(mask_size, image_size, tolerance=ASPECT_TOLERANCE):
    """Whether (height, width) ``mask_size`` has ``image_size``'s aspect ratio within ``tolerance`` (relative)."""
    (mh, mw), (ih, iw) = mask_size, image_size
    return abs((mw / mh) / (iw / ih) - 1) <= tolerance


def fit_mask(mask, height, width):
    """``mask`` (H', W') resized to ``height`` x ``width`` by area averaging (bilinear when enlarged), float32."""
    mask = np.asarray(mask, np.float32)
    if mask.shape == (height, width):
        return mask
    shrinking = height <= mask.shape[0] and width <= mask.shape[1]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    resized = np.asarray(Image.fromarray(mask, mode="F").resize((width, height), method), np.float32)
    return np.clip(resized, 0.0, 1.0)


def mask_at_layer(mask, network, layer, pooling, erode=False):
    """``mask`` (H, W) of an image brought to ``layer``'s grid of ``network`` with ``pooling``: each pooling
    averages 2x2 blocks (rounding as ``Network.length`` does), each 3x3 convolution erodes it with ``erode``."""
    mask = np.asarray(mask, np.float32)
    size = tuple(network.length(n, layer, pooling) for n in mask.shape)
    for kind in network.kinds[: network.layers.index(network.canonical(layer)) + 1]:
        if kind == "pool":
            mask = _halved(mask, round_up=pooling == network.poolings[0])
        elif kind == "conv" and erode:
            mask = _eroded(mask)
    return fit_mask(mask, *size)  # a network of other geometry (SqueezeNet's strided layers): its own sizes


def _halved(mask, round_up):
    """2x2 averages of ``mask``; an odd last row or column is averaged alone (``round_up``) or dropped."""
    for axis in (0, 1):
        n = mask.shape[axis]
        if n % 2:
            if round_up:
                last = np.take(mask, [n - 1], axis=axis)
                mask = np.concatenate([mask, last], axis=axis)
            else:
                mask = np.take(mask, range(n - 1), axis=axis)
        pairs = mask.reshape(mask.shape[:axis] + (-1, 2) + mask.shape[axis + 1 :])
        mask = pairs.mean(axis=axis + 1)
    return mask


def _eroded(mask):
    """The minimum of ``mask`` over each 3x3 window (edges padded with their own values)."""
    padded = np.pad(mask, 1, mode="edge")
    height, width = mask.shape
    windows = [padded[i : i + height, j : j + width] for i in range(3) for j in range(3)]
    return np.min(windows, axis=0)

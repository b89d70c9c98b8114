"""Coarse to fine: optimize a small image first, where a step is cheap, then each larger size from the last
result upsampled (bilinear), the images fitted anew from their original pixels at each size."""

from dataclasses import dataclass, replace

import numpy as np
from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from ..loop.optimize import Progress, StyleTransfer, Tick
from ..objective.whole import StyleCost
from ..plan.config import StyleTransferConfig
from ..plan.masks import GuidedContent, GuidedStyle
from ..plan.optimizers import get_optimizer
from ..plan.large_options import MAX_ITERATIONS, check_style_scale, style_target
from ..ground.checks import MAX_SIDE, check_whole, short_repr
from ..tensors.images import FITS, fit_image, fit_style, reshape_and_normalize_image


@dataclass(frozen=True)
class ScaleProgress:
    """A ``Progress`` or ``Tick`` of the run at scale ``scale`` (1-based) of ``scales``, of ``height`` x ``width``;
    ``NSTError`` for a number that is not a positive whole one, ``scale`` over ``scales``, or another ``item``."""

    scale: int
    scales: int
    height: int
    width: int
    item: Progress | Tick

    def __post_init__(self):
        for name in ("scales", "scale", "height", "width"):
            object.__setattr__(self, name, check_whole(name, getattr(self, name)))
        if self.scale > self.scales:
            raise NSTError(f"scale must be at most scales ({self.scales}); got {self.scale}")
        if not isinstance(self.item, (Progress, Tick)):
            raise NSTError(f"item must be a Progress or a Tick; got {type(self.item).__name__}")


def upsample(image, height, width):
    """A normalized (1, h, w, 3) image resized to (1, height, width, 3) (bilinear), float32."""
    image = tf.convert_to_tensor(image, tf.float32)
    return tf.image.resize(image, (height, width), method="bilinear").numpy()


def _whole(model, content, styles, config, size):
    """The default objective of every size: the whole image's ``StyleCost``."""
    return StyleCost(model, content, styles, config)


def _pixels(image, name):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise NSTError(f"{name} must be an 8-bit RGB image of shape (height, width, 3) (read_image gives one)")
    return image


def _sizes(sizes):
    """``sizes`` as a list of (height, width) pairs of whole numbers; ``NSTError`` naming ``sizes`` otherwise."""
    wrong = f"sizes must be a list of (height, width) pairs of whole numbers; got {short_repr(sizes)}"
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise NSTError(wrong)
    pairs = []
    for size in sizes:
        if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
            raise NSTError(wrong)
        pairs.append(tuple(check_whole(f"sizes[{len(pairs)}] {name}", n) for name, n in zip(("height", "width"), size)))
    if not pairs:
        raise NSTError("sizes: give at least one (height, width)")
    return pairs


class CoarseToFine:
    """A run at several sizes, smallest first; ``run()`` yields a ``ScaleProgress`` per report (or tick).

    ``content_pixels``, ``style_pixels``: 8-bit RGB (h, w, 3) images (one style or a list), fitted by ``fit`` to
    each of ``sizes`` ((height, width), smallest first), the styles to ``style_scale`` of it or to the shorter side
    ``style_size`` (CS231n's). ``config.epochs`` iterations run at the last size, ``scale_epochs`` (default the
    same) at the others, the first from the course's noise. With ``carry_state`` (Adam only), each size starts
    with the last one's moments resized and its step count (``StyleTransfer.take_state``).
    ``make_objective(model, content, styles, config, size=(height, width))`` builds each size's objective
    (default ``StyleCost``). A style may be a ``GuidedStyle`` of pixels and the content a ``GuidedContent``: their
    masks go with the images fitted to each size.
    ``NSTError`` for a bad argument (a style size the network cannot take too).
    """

    def __init__(
        self,
        model,
        content_pixels,
        style_pixels,
        config=None,
        sizes=(),
        scale_epochs=None,
        style_scale=1.0,
        make_objective=None,
        fit="crop",
        style_size=None,
        carry_state=False,
    ):
        self.model = model
        self.config = StyleTransferConfig() if config is None else config
        if not isinstance(self.config, StyleTransferConfig):
            raise NSTError(f"config must be a StyleTransferConfig; got {type(self.config).__name__}")
        self._content_guide = content_pixels if isinstance(content_pixels, GuidedContent) else None
        self.content_pixels = _pixels(getattr(self._content_guide, "image", content_pixels), "content_pixels")
        styles = style_pixels if isinstance(style_pixels, (list, tuple)) else [style_pixels]
        if not styles:
            raise NSTError("style_pixels: give at least one style image")
        self.style_pixels = [_pixels(getattr(style, "image", style), "style_pixels") for style in styles]
        self._guides = [style if isinstance(style, GuidedStyle) else None for style in styles]  # regions: any size
        self.sizes = _sizes(sizes)
        self.style_scale = check_style_scale(style_scale)
        self.style_size = None if style_size is None else check_whole("style_size", style_size, 1, MAX_SIDE)
        for size in self.sizes:
            for style in self.style_pixels:  # raises for a style size the network cannot take
                style_target(size, style.shape[:2], self.style_scale, self.style_size)
        early = (
            self.config.epochs if scale_epochs is None else check_whole("scale_epochs", scale_epochs, 1, MAX_ITERATIONS)
        )
        self.epochs = [early] * (len(self.sizes) - 1) + [self.config.epochs]
        self._configs = [replace(self.config, epochs=epochs) for epochs in self.epochs]
        self.make_objective = _whole if make_objective is None else make_objective
        if not callable(self.make_objective):
            raise NSTError(
                "make_objective must be callable as make_objective(model, content, styles, config, size=...); "
                f"got {type(make_objective).__name__}"
            )
        if not isinstance(fit, str) or fit not in FITS:
            raise NSTError(f"fit must be one of {', '.join(FITS)}; got {short_repr(fit)}")
        self.fit = fit
        self.carry_state = bool(carry_state)
        if self.carry_state:
            get_optimizer(self.config.optimizer).check_carry("carry_state")
        self.transfer = None
        self.scale = 0
        self._done_before = 0
        self._finished_image = None

    @property
    def total_iterations(self):
        """Iterations over all sizes."""
        return sum(self.epochs)

    @property
    def iteration(self):
        """Iterations done so far, over all sizes."""
        return self._done_before + self.scale_iteration

    @property
    def scale_iteration(self):
        """Iterations done so far at the current size (``scale``); 0 before the first size starts."""
        return self.transfer.iteration if self.transfer is not None else 0

    def current_image(self):
        """The latest image, at its size, as the objective presents it (None before the first size starts)."""
        return self._finished_image if self.transfer is None else self.transfer.current_image()

    def images_at(self, height, width):
        """The normalized content image and style images for an output of ``height`` x ``width``."""
        normalization = self.config.normalization
        content = reshape_and_normalize_image(fit_image(self.content_pixels, width, height, self.fit), normalization)
        styles = [
            reshape_and_normalize_image(
                fit_style(style, (height, width), self.fit, self.style_scale, self.style_size), normalization
            )
            for style in self.style_pixels
        ]
        return content, styles

    def run(self, ticks=False):
        """Runs every size in turn, yielding ``ScaleProgress``; see ``StyleTransfer.run`` for ``ticks`` and errors."""
        previous = state = None
        for index, ((height, width), config) in enumerate(zip(self.sizes, self._configs)):
            if self.transfer is not None:
                self._done_before += self.transfer.iteration
                previous = self.transfer.result()  # with config.average, the average
                state = self.transfer.optimizer_state() if self.carry_state else None
                self._finished_image = self.transfer.current_image()
                # The finished size's network state is dropped before the next is built.
                self.transfer = None
            content, styles = self.images_at(height, width)
            styles = [style if guide is None else guide.with_image(style) for guide, style in zip(self._guides, styles)]
            content = content if self._content_guide is None else self._content_guide.with_image(content)
            objective = self.make_objective(self.model, content, styles, config, size=(height, width))
            initial = None if previous is None else upsample(previous, height, width)
            self.scale = index + 1
            self.transfer = StyleTransfer(objective, config, initial)
            if state is not None:
                self.transfer.take_state(state)
            for item in self.transfer.run(ticks=ticks):
                yield ScaleProgress(self.scale, len(self.sizes), height, width, item)

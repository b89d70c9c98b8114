"""Stylizing video frames in turn, each held to the earlier ones (Ruder, Dosovitskiy and Brox 2016).

For frame t > 0 and each earlier frame t - g (g = 1, or 1, 2, 4 with long-term consistency), the flow both ways
(``flow.py``) gives consistency weights ``c_g`` (0 at disocclusions and motion boundaries), and stylized frame
t - g is warped onto frame t (``warp.py``). The optimization starts from warped frame t - 1 (untrusted pixels
from content frame t) and minimizes the course's cost plus ``temporal_weight * sum_g mean(c_g * (x - warped_g)^2)``
(``TemporalTerm``). Frame 0 starts as a single image and runs ``first_frame_epochs``. One objective and traced
loop serve every frame. Nothing here prints or writes files.
"""

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from ..loop.optimize import StyleTransfer
from ..objective.terms import TemporalTerm
from ..objective.whole import StyleCost
from ..plan.config import StyleTransferConfig
from ..plan.video_options import VideoOptions, check_video_config
from ..tensors.flow import consistency_weights, flow_between, long_term_weights
from ..tensors.images import reshape_and_normalize_image, start_image
from ..tensors.warp import warp
from .many_images import Finished, Step


@dataclass(frozen=True)
class Earlier:
    """An earlier frame: its ``content`` pixels (uint8 (H, W, 3)) and ``stylized`` result (normalized (1, H, W, 3))."""

    content: np.ndarray
    stylized: np.ndarray


class VideoStylizer:
    """One network's runs over a video's frames, sharing one objective and traced loop.

    ``style_images``: as for ``StyleCost``; ``config``: a ``StyleTransferConfig`` (``epochs``: each frame's
    after the first); ``options``: a ``VideoOptions``; ``make_objective(model, content, styles, config,
    extra_terms)``: default ``StyleCost`` (the job's factory tiles large frames). ``NSTError`` for a
    ``config`` or ``options`` of the wrong type, or ``preserve_colors="luminance"`` (the saved frames'
    colours would not be those the temporal term compares).
    """

    def __init__(self, model, style_images, config, options, *, make_objective=None):
        if not isinstance(config, StyleTransferConfig):
            raise NSTError(f"config must be a StyleTransferConfig; got {type(config).__name__}")
        if not isinstance(options, VideoOptions):
            raise NSTError(f"options must be a VideoOptions; got {type(options).__name__}")
        check_video_config(config)
        self._model, self._styles, self._config, self._options = model, style_images, config, options
        self._make = make_objective or _whole
        self._transfer = self._term = None

    def frame(self, index, pixels, earlier, *, ticks=False):
        """Stylizes frame ``index`` (uint8 ``pixels`` (H, W, 3) at the output size) against ``earlier``, ``{gap:
        Earlier}`` of the frames ``gap`` back (1 at least for index > 0); yields ``Step(index, item)`` for each
        report (and tick, with ``ticks``), then ``Finished(index, progress, seconds, traced)``. ``NSTError``
        for a frame of another size than the first; ``NonFiniteCostError`` from the run.
        """
        started = time.perf_counter()
        content = reshape_and_normalize_image(pixels, self._config.normalization).astype(np.float32)
        warped, weights = self._held(pixels, earlier)
        if index == 0 or not warped:
            start, epochs = start_image(content, self._config), self._options.first_epochs(self._config.epochs)
        else:
            trusted = weights[0][None, :, :, None] > 0
            start, epochs = np.where(trusted, warped[0], content).astype(np.float32), self._config.epochs
        traced = self._prepare(content, start, epochs, warped, weights)
        last = None
        for item in self._transfer.run(ticks=ticks):
            last = item if hasattr(item, "image") else last
            yield Step(index, item)
        yield Finished(index, last, time.perf_counter() - started, traced)

    def _held(self, pixels, earlier):
        """The earlier stylized frames warped onto this one, and their (long-term) consistency weights."""
        warped, weights = [], {}
        for gap in sorted(earlier):
            other = earlier[gap]
            backward = flow_between(pixels, other.content, self._options.flow, self._options.flow_preset)
            forward = flow_between(other.content, pixels, self._options.flow, self._options.flow_preset)
            weights[gap] = consistency_weights(backward, forward)
            stylized = tf.constant(np.asarray(other.stylized, np.float32))
            warped.append(warp(stylized, backward[None]).numpy())
        weights = long_term_weights(weights)
        return warped, [weights[gap] for gap in sorted(weights)]

    def _prepare(self, content, start, epochs, warped, weights):
        """Points the kept loop at this frame, or builds it on the first; returns whether it built one."""
        if self._transfer is None:
            options, config = self._options, self._config
            extra = []
            if options.temporal_weight:
                self._term = TemporalTerm(content.shape[1:3], options.temporal_weight, count=len(options.gaps))
                extra.append(self._term)
            objective = self._make(self._model, content, self._styles, config, extra)
            self._assign(warped, weights)
            self._transfer = StyleTransfer(objective, dataclasses.replace(config, epochs=epochs), start)
            return True
        if content.shape != self._transfer.objective.content_image.shape:
            shape = tuple(self._transfer.objective.content_image.shape[1:3])
            raise NSTError(f"frame of shape {content.shape[1:3]}; the video's frames are {shape}")
        self._transfer.objective.retarget(content)
        self._assign(warped, weights)
        self._transfer.restart(start, epochs=epochs)
        return False

    def _assign(self, warped, weights):
        if self._term is None:
            return
        if warped:
            self._term.assign(np.concatenate(warped), np.stack(weights))
        else:
            shape = self._term.warped.shape[1:3]
            self._term.assign(np.zeros((0, *shape, 3), np.float32), np.zeros((0, *shape), np.float32))


def _whole(model, content, styles, config, extra_terms):
    return StyleCost(model, content, styles, config, extra_terms=extra_terms)


def stylize_video(model, frames, style_images, config=None, options=None, *, make_objective=None, ticks=False):
    """Stylizes ``frames`` (uint8 (H, W, 3) of one size, read lazily) in turn; yields each frame's ``Step`` items
    and its ``Finished``. ``config`` and ``options`` default to the course's and ``VideoOptions()``; the rest as
    for ``VideoStylizer``, and the errors too. Keeps the last frames the temporal term needs (4 with long-term
    consistency).
    """
    config = StyleTransferConfig() if config is None else config
    options = VideoOptions() if options is None else options
    stylizer = VideoStylizer(model, style_images, config, options, make_objective=make_objective)
    kept = {}
    for index, pixels in enumerate(frames):
        earlier = {gap: kept[index - gap] for gap in options.gaps if index - gap in kept}
        for item in stylizer.frame(index, pixels, earlier, ticks=ticks):
            if isinstance(item, Finished):
                kept[index] = Earlier(np.asarray(pixels), item.progress.image)
                kept.pop(index - max(options.gaps), None)
            yield item

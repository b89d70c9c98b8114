"""Many content images with one network: ``stylize_many`` yields each image's run in turn.

A folder of photos stylized one command at a time reloads the network and
retraces the step for every photo. Here the network is built once by the
caller; the images are taken in the order given, and consecutive images of
one shape share one objective and one traced loop: the next image only
assigns its content target (``StyleCost.retarget``) and restarts the loop
(``StyleTransfer.restart``), so each shape is traced once and the style
targets are computed once per shape (again per image only where
``preserve_colors="histogram"`` makes them depend on the content's colours).
Order the images by shape to trace fewest times. Nothing here prints or
writes files.
"""

import numbers
import time
from dataclasses import dataclass, replace

import numpy as np

from ..ground.errors import NSTError
from ..loop.optimize import Progress, StyleTransfer
from ..objective.batch import BatchStyleCost
from ..objective.whole import StyleCost
from ..plan.config import StyleTransferConfig, check_seed
from ..ground.checks import check_whole
from ..tensors.images import checked_float32_batch, start_image


@dataclass(frozen=True)
class Step:
    """Progress of image ``index``: ``item`` is the ``Progress`` or ``Tick`` its run yielded.

    ``images``: how many images the item stands for (a batch's tick stands for all of them).
    """

    index: int
    item: object
    images: int = 1


@dataclass(frozen=True)
class Started:
    """Images ``indices`` (one, or a batch) start now; their ``Finished`` items follow."""

    indices: tuple


@dataclass(frozen=True)
class Finished:
    """Image ``index`` is done: ``progress`` is its last report (its final image and costs).

    Attributes:
        index: the image's position in the inputs.
        progress: the run's last ``Progress``.
        seconds: the image's wall time, its share of tracing included.
        traced: whether this image's shape needed a new objective and trace.
    """

    index: int
    progress: object
    seconds: float
    traced: bool


def stylize_many(
    model, contents, style_images, config=None, *, seeds=None, make_objective=None, ticks=False, batch_size=1
):
    """Stylizes each content image in turn with one network; yields ``Step`` and ``Finished`` items.

    Args:
        model: the network module (built once, e.g. ``Preset.load_model``).
        contents: an iterable of normalized content images (1, H, W, 3),
            read lazily as the generator advances (a generator of loaded
            images keeps one batch in memory at a time).
        style_images: the normalized style image, or a list of them blended
            with ``config.style_blend_weights``.
        config: a ``StyleTransferConfig`` (default: the course's).
        seeds: each content image's seed for its start: a sequence, or a
            callable ``seeds(index)`` (default: with ``config.seed``,
            ``config.seed + index``; without, fresh ones).
        make_objective: ``make_objective(model, content, styles, config)``
            builds an objective for a new shape (default ``StyleCost``; a
            ``TiledStyleCost`` factory for large images). Not used for
            batches, which are ``BatchStyleCost``s.
        ticks: also yield ``Step`` items holding ``Tick``s between reports.
        batch_size: up to this many consecutive images of one size are
            optimized together in one traced call (``BatchStyleCost``, Adam
            only): the same images as one at a time, up to float rounding.

    Yields:
        ``Started(indices)`` as each image (or batch) starts,
        ``Step(index, item, images)`` for each report of image ``index``
        (a tick: once for its batch of ``images`` images, under the first's
        index), then ``Finished(index, progress, seconds, traced)`` for each.

    Raises:
        NSTError: for a config that is not a ``StyleTransferConfig``, ``contents`` that is not an
            iterable, a content image that is not a normalized (1, H, W, 3) image, a ``batch_size``
            that is not a positive whole number, a ``make_objective`` that is neither None nor
            callable, ``seeds`` that gives an image no seed or one that is not a non-negative whole
            number (named by the image's index), or ``NonFiniteCostError`` from a run (the images
            before it were yielded).
    """
    config = StyleTransferConfig() if config is None else config
    stylizer = Stylizer(model, style_images, config, make_objective=make_objective, batch_size=batch_size)
    try:
        pairs = enumerate(contents)
    except TypeError:
        raise NSTError(f"contents must be an iterable of content images; got {type(contents).__name__}") from None
    for chunk in chunks(pairs, stylizer.batch_size):
        yield from stylizer.run(chunk, seeds=seeds, ticks=ticks)


class Stylizer:
    """One network's runs over content images, keeping the objective and traced loop while the shape holds.

    ``stylize_many`` is this over an iterable; a worker that receives its
    images in parts (a Ray actor) keeps one ``Stylizer`` between parts, so
    that a shape is traced once per worker.

    Args:
        model, style_images, config, make_objective, batch_size: as for ``stylize_many``.

    Raises:
        NSTError: for a config that is not a ``StyleTransferConfig``, a ``batch_size`` that is not a
            positive whole number, or a ``make_objective`` that is neither None nor callable.
    """

    def __init__(self, model, style_images, config, *, make_objective=None, batch_size=1):
        if not isinstance(config, StyleTransferConfig):
            raise NSTError(f"config must be a StyleTransferConfig; got {type(config).__name__}")
        if make_objective is not None and not callable(make_objective):
            raise NSTError(f"make_objective must be None or a callable; got {type(make_objective).__name__}")
        self.batch_size = check_whole("batch_size", batch_size)
        self._model, self._styles, self._config = model, style_images, config
        self._make = BatchStyleCost if self.batch_size > 1 else (make_objective or StyleCost)
        self._transfer = None

    def run(self, chunk, *, seeds=None, ticks=False):
        """Stylizes ``chunk``, up to ``batch_size`` ``(index, content)`` pairs of one shape, together.

        Args:
            chunk: an iterable of ``(index, content)`` pairs: ``index`` the image's position in the
                inputs (a non-negative int), ``content`` a normalized (1, H, W, 3) image.
            seeds, ticks: as for ``stylize_many``.

        Yields:
            ``Started``, ``Step`` and ``Finished`` items as ``stylize_many`` does for one chunk.

        Raises:
            NSTError: ``chunk`` is not an iterable of ``(index, content)`` pairs with non-negative int
                indices and normalized (1, H, W, 3) contents, holds contents of several shapes, none,
                or more than ``batch_size``; ``seeds`` gives an image no seed or one that is not a
                non-negative whole number. Raised before ``Started`` is yielded.
            NonFiniteCostError: from the run.
        """
        chunk = _checked_chunk(chunk)
        if not chunk or len(chunk) > self.batch_size or len({c.shape for _, c in chunk}) > 1:
            raise NSTError(f"a chunk holds 1 to {self.batch_size} content images of one shape")
        chunk_seeds = [_seed(self._config, seeds, index) for index, _ in chunk]
        yield Started(tuple(index for index, _ in chunk))
        started = time.perf_counter()
        traced = self._prepare(chunk, chunk_seeds)
        transfer, last = self._transfer, None
        for item in transfer.run(ticks=ticks):
            if not hasattr(item, "image"):
                yield Step(chunk[0][0], item, len(chunk))
                continue
            last = item
            for position, (index, _) in enumerate(chunk):
                yield Step(index, _one(item, position, transfer.batched), 1)
        seconds = (time.perf_counter() - started) / len(chunk)
        for position, (index, _) in enumerate(chunk):
            yield Finished(index, _one(last, position, transfer.batched), seconds, traced)

    def _prepare(self, chunk, seeds):
        """Retargets the kept loop to ``chunk`` (started from ``seeds``, one per image), or builds one for
        its shape; returns whether it built one."""
        config = self._config
        images = np.concatenate([content for _, content in chunk])
        starts = np.concatenate([start_image(c, replace(config, seed=s)) for (_, c), s in zip(chunk, seeds)])
        if self._transfer is not None and self._transfer.objective.content_image.shape == images.shape:
            self._transfer.objective.retarget(images)
            self._transfer.restart(starts)
            return False
        self._transfer = None  # the previous shape's network state goes before the next is built
        self._transfer = StyleTransfer(self._make(self._model, images, self._styles, config), config, starts)
        return True


def chunks(pairs, batch_size):
    """Lists of up to ``batch_size`` consecutive ``(index, content)`` of one shape from ``pairs``, read lazily.

    Raises:
        NSTError: a content that is not a normalized (1, H, W, 3) image, named by its index.
    """
    chunk = []
    for index, content in pairs:
        content = checked_float32_batch(content, f"content image {index}")
        if chunk and chunk[0][1].shape != content.shape:
            yield chunk
            chunk = []
        chunk.append((index, content))
        if len(chunk) == batch_size:  # now, not after reading the next image: it is read at its turn
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _checked_chunk(chunk):
    """``chunk`` as a list of ``(int index, float32 content)``; NSTError for anything else."""
    try:
        pairs = list(chunk)
    except TypeError:
        raise NSTError(f"chunk must be an iterable of (index, content) pairs; got {type(chunk).__name__}") from None
    checked = []
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise NSTError(f"chunk must hold (index, content) pairs; got {type(pair).__name__}")
        index, content = pair
        # A bool is an Integral but no position; NumPy integers are accepted as Python ints.
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral) or index < 0:
            raise NSTError(f"a chunk's index must be a non-negative whole number; got {index!r}")
        checked.append((int(index), checked_float32_batch(content, f"content image {index}")))
    return checked


def _one(progress, position, batched):
    """Image ``position``'s ``Progress`` of a batch's (the progress itself for one image)."""
    if not batched:
        return progress
    costs = {name: float(value[position]) for name, value in progress.costs.items()}
    return Progress(progress.iteration, costs, progress.image[position : position + 1])


def _seed(config, seeds, index):
    """Image ``index``'s seed: ``seeds[index]`` (or ``seeds(index)``), else ``config.seed + index``, else None (fresh).

    Raises:
        NSTError: ``seeds`` has no entry for ``index``, or its seed is not None or a non-negative whole number.
    """
    if seeds is None:
        return None if config.seed is None else config.seed + index
    if callable(seeds):
        seed = seeds(index)  # the caller's own errors from its callable pass through unchanged
    else:
        try:
            seed = seeds[index]
        except (IndexError, KeyError, TypeError):
            raise NSTError(
                f"seeds must be a sequence with a seed for each content image, or a callable; "
                f"got {type(seeds).__name__} without one for content image {index}"
            ) from None
    try:
        return check_seed(seed)
    except NSTError:
        raise NSTError(
            f"seeds: content image {index}'s seed must be a non-negative whole number; got {seed!r}"
        ) from None

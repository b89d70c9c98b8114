"""Many content images with one network: ``stylize_many`` yields each image's run in turn.

Consecutive images of one shape share one objective and traced loop (``StyleCost.retarget``,
``StyleTransfer.restart``): each shape is traced, and its style targets computed, once (per image with
``preserve_colors="histogram"``). Nothing here prints or writes files.
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
    """Progress of image ``index``: the ``Progress`` or ``Tick`` its run yielded, standing for ``images`` images
    (a batch's tick stands for all of them)."""

    index: int
    item: object
    images: int = 1


@dataclass(frozen=True)
class Started:
    """Images ``indices`` (one, or a batch) start now; their ``Finished`` items follow."""

    indices: tuple


@dataclass(frozen=True)
class Finished:
    """Image ``index`` (its position in the inputs) is done: ``progress`` is its run's last ``Progress``,
    ``seconds`` its wall time (its share of tracing included), ``traced`` whether it needed a new trace."""

    index: int
    progress: object
    seconds: float
    traced: bool


def stylize_many(
    model, contents, style_images, config=None, *, seeds=None, make_objective=None, ticks=False, batch_size=1
):
    """Stylizes each content image in turn with one network; yields ``Step`` and ``Finished`` items.

    ``contents``: normalized content images (1, H, W, 3), read lazily; ``style_images``: one, or a list blended by
    ``config.style_blend_weights``; ``seeds``: a sequence or ``seeds(index)`` (default ``config.seed + index``, or
    fresh); ``make_objective(model, content, styles, config)``: a new shape's objective (default ``StyleCost``);
    ``batch_size``: up to this many consecutive images of one size in one traced call (Adam only).

    Yields ``Started(indices)`` as each image or batch starts, ``Step(index, item, images)`` for each report
    (a batch's tick once, under its first index), then ``Finished(index, progress, seconds, traced)``.

    Raises:
        NSTError: a bad ``config``, ``contents``, content image, ``batch_size``, ``make_objective`` or seed
            (named by the image's index); ``NonFiniteCostError`` from a run (the images before it yielded).
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
    """One network's runs over content images, keeping the objective and traced loop while the shape holds (a
    Ray actor keeps one between parts). Arguments and errors as for ``stylize_many``."""

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
        """Stylizes ``chunk``, 1 to ``batch_size`` ``(index, content)`` pairs (a non-negative int position in
        the inputs, a normalized (1, H, W, 3) image) of one shape, together; yields as ``stylize_many``.
        ``NSTError`` for a ``chunk`` that is not such pairs or a bad seed, before ``Started`` is yielded;
        ``NonFiniteCostError`` from the run."""
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
    """Lists of up to ``batch_size`` consecutive ``(index, content)`` of one shape from ``pairs``, read lazily;
    ``NSTError`` for a content that is not a normalized (1, H, W, 3) image, named by its index."""
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
    """Image ``index``'s seed: ``seeds[index]`` (or ``seeds(index)``), else ``config.seed + index``, else None (fresh);
    ``NSTError`` where ``seeds`` has none for ``index`` or one that is not None or a non-negative whole number."""
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

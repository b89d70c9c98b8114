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

from dataclasses import dataclass, replace
import time

from .config import StyleTransferConfig
from .errors import NSTError
from .images import checked_float32_batch, start_image
from .objective.whole import StyleCost
from .optimize import StyleTransfer


@dataclass(frozen=True)
class Step:
    """Progress of image ``index``: ``item`` is the ``Progress`` or ``Tick`` its run yielded."""

    index: int
    item: object


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


def stylize_many(model, contents, style_images, config=None, *, seeds=None, make_objective=None, ticks=False):
    """Stylizes each content image in turn with one network; yields ``Step`` and ``Finished`` items.

    Args:
        model: the network module (built once, e.g. ``Preset.load_model``).
        contents: an iterable of normalized content images (1, H, W, 3),
            read lazily as the generator advances (a generator of loaded
            images keeps one in memory at a time).
        style_images: the normalized style image, or a list of them blended
            with ``config.style_blend_weights``.
        config: a ``StyleTransferConfig`` (default: the course's).
        seeds: each content image's seed for its start: a sequence, or a
            callable ``seeds(index)`` (default: with ``config.seed``,
            ``config.seed + index``; without, fresh ones).
        make_objective: ``make_objective(model, content, styles, config)``
            builds an objective for a new shape (default ``StyleCost``; a
            ``TiledStyleCost`` factory for large images).
        ticks: also yield ``Step`` items holding ``Tick``s between reports.

    Yields:
        ``Step(index, item)`` for each report (and tick) of image ``index``,
        then ``Finished(index, progress, seconds, traced)``.

    Raises:
        NSTError: for a config that is not a ``StyleTransferConfig``, a content image that is not a
            normalized (1, H, W, 3) image, or ``NonFiniteCostError`` from a run (the images before it
            were yielded).
    """
    config = StyleTransferConfig() if config is None else config
    if not isinstance(config, StyleTransferConfig):
        raise NSTError(f"config must be a StyleTransferConfig; got {type(config).__name__}")
    make_objective = make_objective or StyleCost
    transfer = None
    for index, content in enumerate(contents):
        started = time.perf_counter()
        content = checked_float32_batch(content, f"content image {index}")
        image_config = replace(config, seed=_seed(config, seeds, index))
        traced = transfer is None or transfer.objective.content_image.shape != content.shape
        if traced:
            transfer = None  # the previous shape's network state goes before the next is built
            transfer = StyleTransfer(make_objective(model, content, style_images, config), image_config)
        else:
            transfer.objective.retarget(content)
            transfer.restart(start_image(content, image_config))
        last = None
        for item in transfer.run(ticks=ticks):
            last = item if hasattr(item, "image") else last
            yield Step(index, item)
        yield Finished(index, last, time.perf_counter() - started, traced)


def _seed(config, seeds, index):
    """Image ``index``'s seed: ``seeds[index]``, else ``config.seed + index``, else None (fresh)."""
    if seeds is not None:
        return seeds(index) if callable(seeds) else seeds[index]
    return None if config.seed is None else config.seed + index

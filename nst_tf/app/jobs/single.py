"""The one-image job: one content image styled, coarse to fine, its images saved in one folder."""

import dataclasses

from ...ground.errors import NSTError, quoted
from ...ground.statuses import PROG
from ...plan.config import StyleTransferConfig
from ...plan.large_options import LargeImageOptions
from ...runs.presets import Preset
from .build import build_model, contain_determinism, import_tensorflow_quietly, objective_factory, warn_about_precision
from .drive import drive
from .outputs import Outputs


class Handover:
    """Holds a value until it is taken, once: a frozen record can then hand on what should not outlive its use."""

    def __init__(self, value):
        self._value = [value]

    def take(self):
        """The value; ``NSTError`` when it was taken already.

        Raises:
            NSTError: on a second call.
        """
        if not self._value:
            raise NSTError("this value was handed over already")
        return self._value.pop()


@dataclasses.dataclass(frozen=True)
class Job:
    """What a validated command line asks for: nothing in it is created or loaded yet.

    Attributes:
        config: the hyperparameters.
        preset: the ``Preset`` (report line and image names).
        large: the large-image options.
        fit: how images are brought to each size (``fit_image``'s ``fit``).
        sizes: (height, width) of each scale, smallest first.
        tiles: the ``TilePlan`` (or None) of each size, keyed by (height, width).
        content: the content image's pixels, 8-bit RGB.
        styles: the style images' pixels, 8-bit RGB.
        weights: a ``Handover`` of the network's weights, as ``read_weights``
            gave them: taken once, when the network is built, so that the
            NumPy arrays are freed once the network holds its own copy.
        pooling: the pooling after each block.
        outputs: what the run saves, and where.
        notes: lines for standard error before the run starts.
    """

    config: StyleTransferConfig
    preset: Preset
    large: LargeImageOptions
    fit: str
    sizes: list
    tiles: dict
    content: object
    styles: list
    weights: object
    pooling: str
    outputs: Outputs
    notes: list


def _start(job, err):
    """Writes the job's notes and prepares its output folder, noting report and scale images already there."""
    for note in job.notes:
        err.write(f"{PROG}: note: {note}\n")
    outputs = job.outputs
    earlier, scales = outputs.earlier_reports(), outputs.earlier_scale_images()
    created = outputs.prepare()
    if earlier:
        err.write(
            f"{PROG}: note: {quoted(outputs.folder)} already holds {earlier} numbered images; this run replaces those "
            "of the iterations it reports and leaves the others\n"
        )
    if scales:
        err.write(
            f"{PROG}: note: {quoted(outputs.folder)} already holds {', '.join(scales)}; this run replaces "
            f"{'it' if len(scales) == 1 else 'them'} with its earlier scales' results\n"
        )
    return created


def run_single(job, out, err, stop):
    """Runs ``job``: builds the network, styles the image, saves the images.

    Args:
        job: a validated ``Job``.
        out: the stream for report lines, scale headers and the final path.
        err: the stream for notes, warnings, the progress line and errors.
        stop: the ``StopRequest`` handling SIGINT, SIGTERM and SIGHUP (``signals.py``).

    Returns:
        The exit status (see ``statuses.EXIT_STATUSES``).

    Raises:
        NSTError: the output folder cannot be written to.
        Stopped: a signal came before the run started.
    """
    created = _start(job, err)
    try:
        return _run(job, out, err, stop, created)
    finally:
        if created:  # a run stopped or failed before it saved anything leaves no empty folder behind
            job.outputs.remove_if_empty()


def _run(job, out, err, stop, created):
    config = job.config

    def interrupted(status):
        """The watcher's finish while the network is built: no image exists yet."""
        if created:
            job.outputs.remove_if_empty()
        err.write(f"\n{PROG}: interrupted\n")
        return status

    stop.finisher = interrupted
    tf = import_tensorflow_quietly(err)
    from ...runs.coarse_to_fine import CoarseToFine

    # TensorFlow runs from here on: a signal is recorded and honoured where the job can stop (signals.py).
    stop.defer()
    warn_about_precision(config, err)
    model = build_model(config, job.weights.take(), job.pooling)
    stop.check()
    objective = objective_factory(job.tiles, err)

    def start():
        """The run: one size is a coarse-to-fine run of one scale, the same loop either way."""
        return CoarseToFine(
            model=model,
            content_pixels=job.content,
            style_pixels=job.styles,
            config=config,
            sizes=job.sizes,
            scale_epochs=job.large.scale_epochs,
            style_scale=job.large.style_scale,
            style_size=job.large.style_size,
            make_objective=objective,
            fit=job.fit,
        )

    return drive(
        start,
        outputs=job.outputs,
        saver=job.outputs.saver(err),
        report_line=job.preset.report_line,
        out=out,
        err=err,
        stop=stop,
        context=contain_determinism(tf, config.seed),
    )

"""The one-image job: one content image styled, coarse to fine, its images saved in one folder."""

import dataclasses
import os

from ...ground.errors import NSTError, quoted
from ...ground.statuses import PROG
from ...plan.config import StyleTransferConfig
from ...plan.large_options import LargeImageOptions, style_target
from ...plan.memory import tile_plans
from ...plan.networks.network_registry import get_network
from ...plan.optimizers import get_optimizer
from ...plan.video_options import VideoOptions
from ...plan.weights.reader_registry import read_network_weights
from ...tensors.images import fit_style, image_size, read_image
from ...runs.presets import Preset
from .build import start_up
from .drive import drive
from .mask_files import regions
from .outputs import Outputs
from .run_log import log_options
from .request import fitted, output_place, refuse_many_image_options, resolve_image, shrink_note


class Handover:
    """Holds a value until it is taken, once: a frozen record can then hand on what should not outlive its use."""

    def __init__(self, value):
        self._value = [value]

    def take(self):
        """The value, once: the holder then lets it go."""
        return self._value.pop()


@dataclasses.dataclass(frozen=True)
class Job:
    """A validated one-image command line; nothing in it is created or loaded yet. ``sizes``: (height, width)
    of each scale, smallest first; ``tiles``: the ``TilePlan`` (or None) by size; ``content``, ``styles``: 8-bit
    RGB pixels; ``weights``: a ``Handover``, taken when the network is built so the arrays are freed then."""

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
    log: object = None  # the ``run_log.LogOptions`` of --log_dir, or None


def wants(request):
    """Every command line no other kind of job takes is one image's (the last kind asked)."""
    return True


def prepare(request):
    """The ``Job`` of a command line naming one content image: everything checked (``NSTError``, one line),
    nothing created."""
    args, config, large, style_paths = request.args, request.config, request.large, request.style_paths
    refuse_many_image_options(args)
    content_path = resolve_image(args.content_image_filename[0], "content_image_filename")
    video_given = sorted(request.given & {field.name for field in dataclasses.fields(VideoOptions)})
    if video_given:
        raise NSTError(f"--{video_given[0]} applies to a video as the content; {quoted(content_path)} is not one")
    report_image = request.preset.report_image
    folder, final = output_place(request, several=False)
    keep = final is None or "output_dir" in request.given
    content_width, content_height = image_size(content_path)
    height, width = request.size.of((content_height, content_width))
    sizes = large.sizes(height, width)
    if large.carry_state:
        get_optimizer(config.optimizer).check_carry("--carry_state")
    outputs = Outputs(folder, config, report_image, scales=len(sizes), final=final, keep_reports=keep)
    log = log_options(args, request.given, name=os.path.splitext(os.path.basename(content_path))[0])
    outputs.check([content_path, *style_paths, args.model])  # the weights file too, were it named as a report
    get_network(config.network).check_pooling(args.pooling)
    asked = regions(request)  # styles by region: masks and each style's own layers
    tiles = tile_plans(asked.planning_config(config), large, sizes, [image_size(path)[::-1] for path in style_paths])
    content, styles = _read_images(content_path, style_paths, sizes, large, request.size.content_fit)
    content, styles, mask_notes = asked.apply(content, styles, (height, width))
    notes = [shrink_note(path, width, height) for path in (content_path, *style_paths)] + mask_notes
    if not outputs.keep_reports and len(sizes) > 1:
        notes.append("the earlier scales' results (scale1.png, ...) are saved with --output_dir only")
    weights = read_network_weights(config.network, args.model)  # last: the slowest check, up to 510 MB
    return Job(
        config=config,
        preset=request.preset,
        large=large,
        fit=request.size.content_fit,
        sizes=sizes,
        tiles=tiles,
        content=content,
        styles=styles,
        weights=Handover(weights),
        pooling=args.pooling,
        outputs=outputs,
        notes=[note for note in notes if note],
        log=log,
    )


def _read_images(content_path, style_paths, sizes, large, fit):
    """``(content pixels, [style pixels])``, decoded reduced to the last size (the styles to their
    ``style_scale`` or ``style_size``); ``NSTError`` unless each fits the first and last sizes."""
    height, width = sizes[-1]
    content = read_image(content_path, target=(width, height))
    styles = []
    for path in style_paths:
        style_height, style_width = style_target(sizes[-1], image_size(path)[::-1], large.style_scale, large.style_size)
        styles.append(read_image(path, target=(style_width, style_height)))
    for height, width in (sizes[0], sizes[-1]):
        fitted(content, width, height, fit, content_path)
        for path, pixels in zip(style_paths, styles):
            try:
                fit_style(pixels, (height, width), fit, large.style_scale, large.style_size)
            except NSTError as error:
                raise NSTError(f"{quoted(path)}: {error}") from None
    return content, styles


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
    """Runs ``job`` (builds the network, styles the image, saves the images); returns the exit status. ``out``:
    report lines, scale headers, the final path; ``err``: notes, warnings, the progress line and errors;
    ``stop``: the ``StopRequest``. ``NSTError`` when the output folder cannot be written, ``Stopped`` for a
    signal before the run started."""
    created = _start(job, err)
    try:
        return _run(job, out, err, stop, created)
    finally:
        if created:  # a run stopped or failed before it saved anything leaves no empty folder behind
            job.outputs.remove_if_empty()


def _run(job, out, err, stop, created):
    config = job.config

    def interrupted(status):  # the watcher's finish while the network is built: no image exists yet
        if created:
            job.outputs.remove_if_empty()
        err.write(f"\n{PROG}: interrupted\n")
        return status

    stop.finisher = interrupted
    started = start_up(config, job.weights.take(), job.pooling, job.tiles, err, stop)
    from ...runs.coarse_to_fine import CoarseToFine

    def start():  # one size is a coarse-to-fine run of one scale
        return CoarseToFine(
            model=started.model,
            content_pixels=job.content,
            style_pixels=job.styles,
            config=config,
            sizes=job.sizes,
            scale_epochs=job.large.scale_epochs,
            carry_state=job.large.carry_state,
            style_scale=job.large.style_scale,
            style_size=job.large.style_size,
            make_objective=started.make_objective,
            fit=job.fit,
        )

    log = None if job.log is None else job.log.open(job.log.name, config, err)  # a writer at its first report
    try:
        return drive(
            start,
            outputs=job.outputs,
            saver=job.outputs.saver(err),
            report_line=job.preset.report_line,
            out=out,
            err=err,
            stop=stop,
            context=started.deterministic(),
            log=log,
        )
    finally:
        if log is not None:
            log.close()

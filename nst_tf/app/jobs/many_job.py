"""The many-image job: several content images, one network, each result saved and recorded as it is done.

Images run by size (one objective and traced loop per size), then in the command's order. Each result is saved
atomically as ``<content stem>.jpg`` (``<content stem>__<style stem>.jpg`` with ``--each_style``), then
recorded in ``manifest.jsonl``; a rerun with the same settings does only the rest. A signal ends the job
between traced calls: the finished images stay, the one under way is dropped, the last line says what is left.
"""

import dataclasses

from ...ground.errors import NonFiniteCostError, NSTError, quoted
from ...ground.lock import holding
from ...ground.statuses import EXIT_OK, PROG
from ...plan.config import StyleTransferConfig
from ...plan.large_options import LargeImageOptions
from ...runs.presets import Preset
from .build import start_up
from .drive import report_text
from .ledger import Ledger
from .many_parts import groups, guided_objective, member_seed, report_name, result_stem, style_images
from .run_log import RunLogs


def run_many(job, out, err, stop, local=None, actor=None):
    """Runs ``job``; returns the exit status (``statuses.EXIT_STATUSES``). Raises ``NSTError`` when the output
    folder or its manifest cannot be written, ``Stopped`` for a signal before the first image started.
    ``local(job, out, err, stop)``: what stylizes the members on this process (default: the optimization);
    ``actor``: the Ray Data actor class of ``--engine ray`` (default: ``ray_engine.RayStylizer``)."""
    for note in job.notes:
        err.write(f"{PROG}: note: {note}\n")
    if not job.members:
        return EXIT_OK  # everything is done already: no network is built
    created = job.outputs.prepare()
    if created:
        stop.cleanups.append(job.outputs.remove_if_empty)
    try:
        with holding(job.outputs.folder):
            job.manifest.load()  # again, now that no other command writes there: one may have since setup
            if job.ray is not None:
                from .ray_engine import run_on_ray

                return run_on_ray(job, out, err, stop, actor)
            return (local or _run)(job, out, err, stop)
    finally:
        if created:  # a job stopped or failed before it saved anything leaves no empty folder behind
            job.outputs.remove_if_empty()


def _run(job, out, err, stop):
    started = start_up(job.config, job.weights.take(), job.pooling, job.tiles, err, stop)
    run = _Run(job, started, out, err)
    stop.finisher = run.ledger.stopped
    try:
        with started.deterministic():
            return run.ledger.follow(lambda: run.all(stop), stop)
    finally:
        run.logs.close_all()


class _Run:
    """A many-image run on this process: one network, each size and style choice one ``stylize_many``."""

    def __init__(self, job, started, out, err):
        self.job, self.model, self.out = job, started.model, out
        self.ledger = Ledger(job, out, err)
        self.logs = RunLogs(job.log, job.config, err)  # --log_dir's runs, by result stem
        self.objective = guided_objective(job, started.make_objective)  # --content_mask on every image

    def all(self, stop):
        """Runs every member, each size and style choice in one ``stylize_many``."""
        for group in groups(self.job.members, consecutive=True):  # in name order: a size met again is traced again
            self._group(group, stop)

    def _group(self, group, stop):
        from ...runs.many_images import Finished, Started, stylize_many

        size, styles = group[0].size, group[0].styles
        handed = []  # the members stylize_many received, in its order
        run = stylize_many(
            self.model,
            self._contents(group, handed, stop),
            style_images(self.job, size, styles),
            self.job.config,
            seeds=lambda position: member_seed(self.job.config, handed[position]),
            make_objective=lambda model, content, style_images, config: self.objective(
                model, content, style_images, config, size=size
            ),
            ticks=True,
            batch_size=self.job.batch_size,
        )
        try:
            for item in run:
                stop.check()
                if isinstance(item, Started):
                    self.ledger.under_way = [handed[index] for index in item.indices]
                elif isinstance(item, Finished):
                    self.logs.close(result_stem(handed[item.index].name))
                    self.ledger.finished(handed[item.index], item.progress, item.seconds)
                else:
                    self._step(handed[item.index], item.item, item.images)
        except NonFiniteCostError as error:
            self.ledger.lose(self.ledger.under_way, error)

    def _contents(self, group, handed, stop):
        """The group's content images, read as the run reaches them; an unreadable one skipped."""
        from ...tensors.images import reshape_and_normalize_image

        for member in group:
            stop.check()
            try:
                pixels = self.job.read(member.path, member.size, digest=member.digest)
            except NSTError as error:
                self.ledger.skip(member, error)
                continue
            handed.append(member)
            yield reshape_and_normalize_image(pixels, self.job.config.normalization)

    def _step(self, member, item, images):
        reported = hasattr(item, "image")
        if reported:
            self.logs.record(result_stem(member.name), item, item.iteration)
        if reported and self.job.reports:
            self.out.write(f"{quoted(member.name)}: " + report_text(self.job.preset.report_line, item, self.job.config))
            self.ledger.saver.save(report_name(member.name, item.iteration), item.image)
        self.ledger.progress((item.iteration + 1 if reported else item.iterations) * images)


# Setting up: everything checked before anything is created ----------------------------------------


@dataclasses.dataclass(frozen=True)
class ManyRequest:
    """What the command line asks of a many-image job, each option checked: as ``ManyJob``'s fields, plus the
    content image paths ``contents``, the output ``folder``, the weights file ``model`` and ``each_style`` (one
    result per content and style image, else the styles blended)."""

    config: StyleTransferConfig
    preset: Preset
    size: object
    large: LargeImageOptions
    pooling: str
    contents: list
    style_paths: list
    folder: str
    model: str
    each_style: bool
    reports: bool
    skip_errors: bool
    batch_size: int = 1
    ray: object = None
    notes: tuple = ()
    log: object = None
    regions: object = None  # styles by region (``mask_files.Regions``), or None

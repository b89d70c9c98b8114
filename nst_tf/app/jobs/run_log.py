"""TensorBoard logs of the command's runs (``--log_dir DIR``): at each report of a run, its costs by term
(``cost/<name>``), Adam's learning rate at that step (``learning_rate``) and, at the first report, every
``--log_images_every``-th after and the last, the image (``image``).

One run is one folder under DIR: ``DIR/<content stem>`` for one image, ``DIR/<result stem>`` for each image of
several, ``DIR/<video stem>/<frame number>`` for each frame of a video. A coarse-to-fine run's steps are its
iterations counted across its scales. The events are written in TensorBoard's own formats with TensorFlow
alone (TensorBoard is needed only to look at them) and flushed at each report, so TensorBoard shows a run as it
goes. Without ``--log_dir`` nothing here is created or imported by the jobs' runs.

The summaries are TensorBoard's own (``tf.summary.scalar`` and ``tf.summary.image``, which need the
``tensorboard`` package: ``pip install "nst_tf[tensorboard]"``; ``--log_dir`` without it is refused in one line).
"""

import dataclasses
import importlib.util
import os
import tempfile

from ...ground.checks import check_whole
from ...ground.errors import NSTError, quoted
from ...ground.statuses import PROG
from ...plan.optimizers import get_optimizer

#: The tags: each cost term by name (``cost/total``, ``cost/content``, ...), the learning rate, the image.
COST_TAG, LEARNING_RATE_TAG, IMAGE_TAG = "cost/{}", "learning_rate", "image"


@dataclasses.dataclass(frozen=True)
class LogOptions:
    """``--log_dir`` (``folder``) and ``--log_images_every`` (``image_every``), checked."""

    folder: str
    image_every: int
    name: str = ""  # a one-run job's run

    def open(self, name, config, err):
        """The ``RunLog`` of run ``name`` (a path relative to ``folder``) of a run with ``config``; its failures
        are written to ``err``."""
        return RunLog(os.path.join(self.folder, name), config, self.image_every, err)


def log_options(args, given, name=""):
    """The ``LogOptions`` of the parsed ``args`` (``given``: the options written; ``name``: a one-run job's run),
    or None without ``--log_dir``; ``NSTError`` (one line) for a folder that cannot be made or written."""
    if args.log_dir is None:
        if "log_images_every" in given:
            raise NSTError("--log_images_every applies to --log_dir")
        return None
    every = check_whole("--log_images_every", args.log_images_every)
    if importlib.util.find_spec("tensorboard") is None:  # found without importing it, or TensorFlow
        raise NSTError('--log_dir writes TensorBoard logs, which needs TensorBoard: pip install "nst_tf[tensorboard]"')
    folder = args.log_dir
    if not folder.strip():
        raise NSTError("--log_dir: empty; name a folder, such as runs/")
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise NSTError(f"--log_dir: {quoted(folder)} exists and is not a folder")
    existing = os.path.abspath(folder)
    while not os.path.lexists(existing):  # the nearest folder that exists must take the new ones
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NSTError(f"--log_dir: {quoted(folder)} cannot be created: {quoted(existing)} is not a folder")
    try:  # a folder made and removed there: what os.access cannot tell (a read-only file system, /proc)
        os.rmdir(tempfile.mkdtemp(prefix=".nst_tf-", dir=existing))
    except OSError as error:
        raise NSTError(f"--log_dir: cannot write to {quoted(existing)}: {error.strerror or error}") from None
    run = os.path.join(folder, name)
    if name and os.path.lexists(run) and not os.path.isdir(run):
        raise NSTError(f"--log_dir: {quoted(run)} exists and is not a folder; it would hold this run's log")
    return LogOptions(folder, every, name)


def learning_rate_at(config, iteration):
    """The learning rate of the step of ``iteration`` (0-based, counted from the optimizer's start: a scale's,
    an image's or a frame's): ``config.learning_rate``, or the rate of the last ``learning_rate_steps`` step at
    or before it; None for an optimizer without one (L-BFGS)."""
    if not get_optimizer(config.optimizer).schedules:
        return None
    rate = config.learning_rate
    for first, step_rate in config.learning_rate_steps:
        if iteration >= first:
            rate = step_rate
    return rate


class RunLog:
    """One run's TensorBoard log in ``folder`` (created on the first report): ``record`` each report, then
    ``close``. Images: the first report's, every ``image_every``-th report's after, and the last's. A log that
    cannot be written is one error line on ``err``; the run goes on without it (its status unchanged)."""

    def __init__(self, folder, config, image_every, err):
        self.folder, self.config, self.image_every, self.err = folder, config, image_every, err
        self._writer, self._reports, self._pending, self._failed = None, 0, None, False

    def record(self, progress, step):
        """Writes ``progress``'s costs and learning rate (and its image when due) at ``step``."""
        self._guarded(self._record, progress, step)

    def close(self):
        """Writes the last report's image (unless written already) and closes the log; never needed twice."""
        if self._writer is not None:
            self._guarded(self._write_image)
            writer, self._writer = self._writer, None
            self._guarded(writer.close)

    def _guarded(self, write, *args):
        """``write(*args)``, unless the log failed before; a failure is written to ``err`` once."""
        import tensorflow as tf

        if self._failed:
            return
        try:
            write(*args)
        except (tf.errors.OpError, OSError) as error:
            self._failed = True
            reason = getattr(error, "strerror", None) or getattr(error, "message", "") or str(error)
            self.err.write(f"{PROG}: error: --log_dir: cannot write to {quoted(self.folder)}: {reason.strip()}; "
                           "the run goes on without its log\n")  # fmt: skip

    def _record(self, progress, step):
        import tensorflow as tf

        writer = self._open()
        rate = learning_rate_at(self.config, progress.iteration)
        values = {COST_TAG.format(name): value for name, value in progress.costs.items()}
        values.update({} if rate is None else {LEARNING_RATE_TAG: rate})
        with writer.as_default(step=step):
            for tag, value in values.items():
                tf.summary.scalar(tag, float(value))
        self._pending = (progress.image, step)
        if self._reports % self.image_every == 0:
            self._write_image()
        self._reports += 1
        writer.flush()

    def _open(self):
        if self._writer is None:
            import tensorflow as tf

            os.makedirs(self.folder, exist_ok=True)  # an OSError names the reason, TensorFlow's error less well
            self._writer = tf.summary.create_file_writer(self.folder)
        return self._writer

    def _write_image(self):
        """Writes the pending image (the last report's)."""
        if self._pending is None:
            return
        import tensorflow as tf

        from ...tensors.images import deprocess_image

        image, step = self._pending
        self._pending = None
        pixels = deprocess_image(image, self.config.normalization)
        with self._writer.as_default(step=step):
            tf.summary.image(IMAGE_TAG, pixels[None])


class RunLogs:
    """The runs of a job by name, each opened at its first report and closed by ``close(name)``, or all by
    ``close_all`` when the job ends however it ends; nothing at all without ``options`` (no ``--log_dir``)."""

    def __init__(self, options, config, err):
        self.options, self.config, self.err, self.open = options, config, err, {}

    def record(self, name, progress, step):
        """Records ``progress`` at ``step`` in run ``name``."""
        if self.options is None:
            return
        if name not in self.open:
            self.open[name] = self.options.open(name, self.config, self.err)
        self.open[name].record(progress, step)

    def close(self, name):
        """Closes run ``name`` (its last image written)."""
        log = self.open.pop(name, None)
        if log is not None:
            log.close()

    def close_all(self):
        """Closes every run still open."""
        for name in list(self.open):
            self.close(name)

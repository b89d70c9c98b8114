"""``python -m nst_tf.train``: trains a fast style model (Johnson et al. 2016) on a folder of photos with nst_tf's
objective, so that ``python -m nst_tf --fast_model DIR`` stylizes in one pass.

Everything is checked before anything is created (the options, the style images, the folder of photos, the
weights, the output folder), then the run prints a line every ``--log_every`` steps and one summary line. SIGTERM
and Ctrl-C save a checkpoint and end the command with 143 or 130; the same command resumes from it.
"""

import argparse
import dataclasses
import os
import sys
import time

from ..ground.errors import NSTError, quoted
from ..ground.lock import holding
from ..ground.parsing import CommandParser
from ..ground.statuses import EXIT_NON_FINITE, EXIT_OK
from ..plan.config import StyleTransferConfig
from ..plan.locations import DOWNLOADS, missing_weights_hint
from ..plan.networks.vgg19 import MIN_IMAGE_SIZE
from ..plan.training_options import TrainConfig, resumable, training_settings
from ..runs.presets import PRESETS
from ..runs.training_data import list_training_images
from ..tensors.images import image_size
from .cli import chosen_preset, default_text, given_options, guarded, typed_option
from .jobs.network_setup import locate_weights, refuse_layers_of_another_network
from .jobs.request import resolve_image
from .jobs.run_log import COST_TAG, log_options
from .signals import Stopped, StopRequest, stop_words

PROG = "python -m nst_tf.train"

#: The objective's options (``StyleTransferConfig``'s fields), their defaults the preset's.
OBJECTIVE_OPTIONS = (
    "alpha", "beta", "tv_weight", "tv_form", "content_layer", "style_layers", "style_normalizer",
    "content_normalizer", "network", "normalization",
)  # fmt: skip

#: Seconds the training has after SIGTERM or Ctrl-C to end its step and save a checkpoint; then the command
#: ends without one (the latest checkpoint kept), within 30 s in all.
STOP_GRACE = 25.0

DESCRIPTION = f"""Train a fast style model: a network that stylizes a photo in one pass (Johnson et al. 2016),
trained on a folder of photos with nst_tf's objective (content, style and total-variation costs; --alpha, --beta,
--tv_weight), several styles in one network with --style a.jpg b.jpg (Dumoulin et al. 2017).

examples:
  {PROG} --style starry.jpg --content_dir photos/ --output_dir model/
  {PROG} --style a.jpg b.jpg --content_dir photos/ --output_dir two/ --iterations 4000 --log_dir runs/

The output folder gets checkpoints/ (every --checkpoint_every steps, and on SIGTERM or Ctrl-C), then
fast_model.json and weights.weights.h5. Run the same command again to resume from the latest checkpoint."""


def _files(parser, preset):
    files = parser.add_argument_group("files")
    # Required, but checked after parsing (``_required``): argparse's own check comes before an unknown option's
    # "did you mean", so a mistyped --stlye would be answered "--style is required".
    files.add_argument("--style", "-s", nargs="+", metavar="FILE", help="the style image(s) (required)")
    files.add_argument("--content_dir", metavar="DIR", help="a folder of photos to train on (required)")
    files.add_argument("--output_dir", metavar="DIR", help="where the model and checkpoints go (required)")
    files.add_argument("--preset", choices=tuple(PRESETS), default=preset.name, help="the loss network's pipeline")
    files.add_argument("--model", default=preset.model, metavar="WEIGHTS", help="the loss network's weights file")
    files.add_argument("--pooling", default=preset.pooling, choices=("avg", "max"), help="the loss network's pooling")
    files.add_argument("--log_dir", metavar="DIR", help="write TensorBoard scalars and sample images under DIR")


def _fields(group, defaults, names=None):
    """Adds ``defaults``' dataclass fields (those in ``names``) as options, their help and types from the fields."""
    for field in dataclasses.fields(defaults):
        if names is not None and field.name not in names:
            continue
        spec = dict(field.metadata)
        default = getattr(defaults, field.name)
        text = spec.pop("help") + default_text(default)
        if "action" not in spec:
            spec["type"] = typed_option(spec.get("type") or (str if default is None else type(default)))
        group.add_argument(f"--{field.name}", dest=field.name, default=default, help=text.replace("%", "%%"), **spec)


def build_parser(preset=None):
    """The command's parser; the objective's defaults are ``preset``'s (default: the first edition's)."""
    preset = preset or PRESETS["first_edition"]
    parser = CommandParser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION)
    _files(parser, preset)
    _fields(parser.add_argument_group("training"), TrainConfig())
    _fields(parser.add_argument_group("objective"), preset.config, OBJECTIVE_OPTIONS)
    return parser


@dataclasses.dataclass
class Setup:
    """A checked command line: the options, the objective, the styles, the photos, the weights and folders."""

    options: TrainConfig
    config: StyleTransferConfig
    styles: list
    images: object
    model: str
    pooling: str
    output_dir: str
    log: object


def validated(argv):
    """The ``Setup`` of ``argv``, everything checked and nothing created; ``NSTError`` for anything wrong."""
    preset = chosen_preset(argv)
    parser = build_parser(preset)
    args = parser.parse_args(argv)
    given = given_options(parser, argv)
    options = TrainConfig(**{field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)})
    config = dataclasses.replace(preset.config, **{name: getattr(args, name) for name in OBJECTIVE_OPTIONS})
    args.download, args.log_images_every = False, 1
    _required(args)
    refuse_layers_of_another_network(args, preset)
    locate_weights(args, given, preset)
    styles = [resolve_image(name, "style") for name in args.style]
    for path in styles:
        _check_style(path)
    images = list_training_images(args.content_dir)
    resumable(args.output_dir, training_settings(options, config, styles, args.pooling))
    if not os.path.lexists(args.model):  # the weights last, as the main command checks them
        choice = DOWNLOADS.get(os.path.basename(args.model))
        fetch = f"; {missing_weights_hint(choice[0])}" if choice else "; check the path"
        raise NSTError(f"--model: {quoted(args.model)}: file not found{fetch}")
    return Setup(options, config, styles, images, args.model, args.pooling, args.output_dir, log_options(args, given))


def _required(args):
    """``NSTError`` naming the first of --style, --content_dir and --output_dir not given, with the usage."""
    for name in ("style", "content_dir", "output_dir"):
        if not getattr(args, name):
            raise NSTError(
                f"--{name} is required: {PROG} --style FILE ... --content_dir DIR --output_dir DIR (-h for more)"
            )


def _check_style(path):
    """``NSTError`` naming ``--style`` for a style image whose header does not read or that is too small."""
    try:
        width, height = image_size(path)
    except NSTError as error:
        raise NSTError(f"--style: {error}") from None
    if min(width, height) < MIN_IMAGE_SIZE:
        raise NSTError(
            f"--style: {quoted(path)} is {width}x{height} pixels; give a style image of at least {MIN_IMAGE_SIZE} "
            "pixels a side"
        )


def main(argv=None, out=None, err=None):
    """Runs the command on ``argv`` (default: ``sys.argv[1:]``); returns its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    out, err = out or sys.stdout, err or sys.stderr
    stop = StopRequest(err)
    stop.grace = STOP_GRACE

    def command():
        setup = validated(argv)
        stop.defer()  # TensorFlow runs from here on: a signal is honoured between steps
        return _train(setup, out, err, stop)

    return guarded(command, PROG, stop, err, "; nothing was saved")


def _strategy():
    """``MirroredStrategy`` over this machine's GPUs where it has several, else the default strategy."""
    from ..tensors.quiet import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def _train(setup, out, err, stop):
    from ..loop.trainer import NonFiniteLoss
    from ..runs.training_run import TrainingRun

    options = setup.options
    if setup.images.skipped_count:
        passed = ", ".join(f"{count} {reason}" for reason, count in setup.images.skipped.items())
        err.write(f"{PROG}: note: {setup.images.skipped_count} files of --content_dir passed over ({passed})\n")
    run = TrainingRun(
        options, setup.config, setup.styles, setup.images, setup.model, setup.pooling, setup.output_dir, _strategy()
    )
    first = run.prepare()
    os.makedirs(setup.output_dir, exist_ok=True)
    stop.finisher = lambda status: _late_stop(err, setup.output_dir, run.saved_step, status)
    if first:
        err.write(f"{PROG}: resuming from the checkpoint of step {first} in {quoted(setup.output_dir)}\n")
    log = _TrainLog(setup.log)
    started = time.monotonic()
    with holding(setup.output_dir):
        try:
            _steps(run, options, out, log, stop)
        except NonFiniteLoss as error:
            kept = (
                "no checkpoint was saved"
                if run.saved_step is None
                else f"the checkpoint of step {run.saved_step} is kept"
            )
            err.write(f"{PROG}: error: {error} ({kept})\n")
            return EXIT_NON_FINITE
        except Stopped as stopped:
            stop.claim()
            run.save_checkpoint()
            err.write(
                f"\n{PROG}: {stop_words(stopped.signum)}; the checkpoint of step {run.steps_done} is saved in "
                f"{quoted(setup.output_dir)}: the same command resumes\n"
            )
            return 128 + stopped.signum
        finally:
            log.close()
        stop.claim()
        run.finish()
    seconds = time.monotonic() - started
    if run.failed_files:
        err.write(
            f"{PROG}: note: {len(run.failed_files)} readings of content images failed to decode and were passed over\n"
        )
    out.write(f"done: {run.steps_done - first} iterations in {seconds:.1f} s; saved {setup.output_dir}\n")
    return EXIT_OK


def _steps(run, options, out, log, stop):
    """Steps the run, printing and logging every ``log_every`` steps, checkpointing every ``checkpoint_every``."""
    since, timer = run.first_step, time.monotonic()
    for progress in run.steps():
        step = progress.step
        if step % options.log_every == 0 or step == options.iterations:
            rate = (step - since) * options.batch_size / max(time.monotonic() - timer, 1e-9)
            costs = ", ".join(f"{name} {value:.6g}" for name, value in progress.costs.items())
            out.write(f"step {step}/{options.iterations}: {costs}; {rate:.3g} images/s\n")
            out.flush()
            log.scalars(progress, rate)
            since, timer = step, time.monotonic()
        if step % options.sample_every == 0 or step == options.iterations:
            log.samples(run, step)
        if step % options.checkpoint_every == 0:
            run.save_checkpoint()
        stop.check()


def _late_stop(err, folder, saved, status):
    """What the signal watcher writes when the step in progress outlasts ``STOP_GRACE``: no checkpoint now."""
    kept = "no checkpoint was saved" if saved is None else f"the checkpoint of step {saved} in {quoted(folder)} is kept"
    err.write(f"\n{PROG}: {stop_words(status - 128)}; the step in progress did not end in time: {kept}\n")
    return status


class _TrainLog:
    """TensorBoard's scalars (``cost/<name>``, ``images_per_second``) and sample images (``samples``) of a
    training under ``--log_dir`` (its run folder: the folder itself); nothing without it."""

    def __init__(self, options):
        self.folder = None if options is None else options.folder
        self.writer = None

    def _open(self):
        from ..tensors.quiet import tensorflow as tf

        if self.writer is None and self.folder is not None:
            os.makedirs(self.folder, exist_ok=True)
            self.writer = tf.summary.create_file_writer(self.folder)
        return self.writer

    def scalars(self, progress, rate):
        from ..tensors.quiet import tensorflow as tf

        if self._open() is None:
            return
        with self.writer.as_default(step=progress.step):
            for name, value in progress.costs.items():
                tf.summary.scalar(COST_TAG.format(name), value)
            tf.summary.scalar("images_per_second", rate)
        self.writer.flush()

    def samples(self, run, step):
        from ..tensors.quiet import tensorflow as tf

        if self._open() is None:
            return
        with self.writer.as_default(step=step):
            tf.summary.image("samples", run.samples(), max_outputs=16)
        self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()

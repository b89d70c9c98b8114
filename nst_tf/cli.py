"""``python -m nst_tf`` / ``nst-tf``: the course's style-transfer job from the command line.

The options are those of the course's command-line port (content and style
file names, epochs, print_every, learning_rate, alpha, beta), the files, the
image size (``ImageSize``) and every field of ``StyleTransferConfig``; the
help texts and defaults of the last two come from their dataclass fields.

Everything the user gave is checked (options, image files, the weights
file's structure, the output folder, the memory the run needs) before
anything is created and before TensorFlow, which takes seconds to import, is
loaded. Exit statuses are listed in ``EXIT_STATUSES``.
"""

import argparse
import contextlib
import dataclasses
import os
import re
import signal
import sys
import tempfile
import time

from .config import CONFIG, StyleTransferConfig
from .layers import POOLINGS, VGGWeights
from .presets import PRESETS, Preset
from .errors import NonFiniteCostError, NSTError, quoted
from .images import ImageSize, fit_image, image_size, read_image
from .large import LargeImageOptions, scale_sizes, style_size
from .resources import plan_tiles
from .weights import read_weights

PROG = "nst-tf"
FINAL_IMAGE = "generated_image.jpg"
IMAGES_DIR = "images"

EXIT_OK = 0
EXIT_NON_FINITE = 1
EXIT_BAD_INPUT = 2
EXIT_SAVE_FAILED = 3

#: Every status the command exits with, and what it means (README lists the same).
EXIT_STATUSES = {
    EXIT_OK: "done",
    EXIT_NON_FINITE: "the total cost became NaN or infinite; the last image of finite cost is saved",
    EXIT_BAD_INPUT: "bad input: one line on standard error, nothing created or written",
    EXIT_SAVE_FAILED: "an image could not be saved (disk full, ...): one line; the latest image is kept elsewhere",
    128 + signal.SIGHUP: "SIGHUP (terminal closed): the latest image is saved",
    128 + signal.SIGINT: "Ctrl-C (SIGINT): the latest image is saved",
    128 + signal.SIGTERM: "SIGTERM (kill, timeout, batch schedulers): the latest image is saved",
}

#: The options that are not hyperparameters: the files and the network.
FILE_OPTIONS = {
    "preset": dict(
        default=None,
        choices=tuple(PRESETS),
        help="start from a whole pipeline's settings; options given as well override them: "
        + "; ".join(f"{name}: {p.summary}" for name, p in PRESETS.items()),
    ),
    "content_image_filename": dict(
        default=CONFIG.CONTENT_IMAGE, metavar="FILE", help=f"content image: a path, or a name under {IMAGES_DIR}/"
    ),
    "style_image_filename": dict(
        default=[CONFIG.STYLE_IMAGE],
        nargs="+",
        metavar="FILE",
        help=f"style image(s): paths, or names under {IMAGES_DIR}/",
    ),
    "model": dict(
        default=CONFIG.VGG_MODEL,
        metavar="FILE",
        help="the VGG-19 weights: MatConvNet's imagenet-vgg-verydeep-19.mat or Keras' "
        "vgg19_weights_tf_dim_ordering_tf_kernels(_notop).h5, told apart by their content",
    ),
    "pooling": dict(default="avg", choices=POOLINGS, help="pooling after each block: avg (the course) or max (Keras)"),
    "output_dir": dict(default=CONFIG.OUTPUT_DIR, metavar="DIR", help="folder for the images; created if missing"),
}


def _numbered(template):
    """A pattern matching the report images of ``template`` (e.g. "{i}.png"), the iteration as group 1."""
    return re.compile("^" + re.escape(template).replace(re.escape("{i}"), r"(\d+)") + "$")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise NSTError(message)


class Stopped(BaseException):
    """A signal asked the command to stop (SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _typed(convert):
    """An argparse type whose NSTError becomes argparse's own message."""

    def parse(text):
        try:
            return convert(text)
        except NSTError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _default_text(default):
    if default is None or default is False:
        return ""
    if isinstance(default, tuple) and default and isinstance(default[0], tuple):
        default = ",".join(f"{name}:{weight:g}" for name, weight in default)
    elif isinstance(default, list):
        default = " ".join(default)
    return f" (default: {default})"


def build_parser(preset=None):
    """The command's parser: the file options, then ``ImageSize``'s and ``StyleTransferConfig``'s fields.

    Defaults are ``preset``'s (a ``Preset``; by default the first edition's).
    """
    preset = preset or PRESETS["first_edition"]
    values = {"model": preset.model, "pooling": preset.pooling, "preset": preset.name}
    parser = _Parser(
        prog=PROG,
        description="Neural style transfer (Gatys et al. 2015) with VGG-19, as in the deeplearning.ai course.",
    )
    files = parser.add_argument_group("files")
    for name, spec in FILE_OPTIONS.items():
        spec = dict(spec, default=values.get(name, spec["default"]))
        text = spec.pop("help") + _default_text(spec["default"])
        files.add_argument(f"--{name}", help=text.replace("%", "%%"), **spec)
    for title, defaults in (
        ("image size", preset.size),
        ("hyperparameters", preset.config),
        ("large images", LargeImageOptions()),
    ):
        cls = type(defaults)
        group = parser.add_argument_group(title)
        for field in dataclasses.fields(cls):
            spec = dict(field.metadata)
            default = getattr(defaults, field.name)
            text = spec.pop("help") + _default_text(default)
            if "action" not in spec:
                spec["type"] = _typed(spec.get("type") or (str if default is None else type(default)))
            group.add_argument(f"--{field.name}", default=default, help=text.replace("%", "%%"), **spec)
    return parser


def _resolve_image(name, option):
    for candidate in (name, os.path.join(IMAGES_DIR, name)):
        if os.path.isfile(candidate):
            return candidate
    raise NSTError(f"--{option}: image not found: {quoted(name)} (looked as a path and under {IMAGES_DIR}/)")


#: Shrinking an image by more than this on its longer side earns a note: most of its detail is lost.
LARGE_SHRINK = 4


def _fitted(pixels, width, height, fit, path):
    try:
        return fit_image(pixels, width, height, fit)
    except NSTError as error:
        raise NSTError(f"{quoted(path)}: {error}") from None


def _shrink_note(path, width, height):
    original = image_size(path)
    factor = min(original[0] / width, original[1] / height)
    if factor <= LARGE_SHRINK:
        return None
    return f"{quoted(path)} is {original[0]}x{original[1]}; it is scaled down {factor:.0f}x to {width}x{height}"


def _saves_image(iteration, config):
    """Whether the command prints the costs of ``iteration`` and saves its image: every ``print_every``-th.

    The last iteration is reported too (``config.is_report``) but saved only
    as the final image, as the course does.
    """
    return 0 <= iteration < config.epochs and iteration % config.print_every == 0


def _check_outputs(output_dir, config, numbered, inputs, other_names=()):
    """Refuses, before anything is created, outputs that would fail or destroy an input.

    Report images match ``numbered`` for every reported ``i`` divisible by
    ``print_every``; they are checked against what is in the folder (never
    listed one by one: the list grows with ``epochs``). ``other_names``: the
    run's other image names (each earlier scale's result).
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise NSTError(f"--output_dir: {quoted(output_dir)} exists and is not a folder")
    if not os.path.isdir(output_dir):
        return
    with os.scandir(output_dir) as entries:
        found = list(entries)
    for entry in found:
        match = numbered.match(entry.name)
        ours = (
            entry.name == FINAL_IMAGE
            or entry.name in other_names
            or (match and _saves_image(int(match.group(1)), config))
        )
        if not ours:
            continue
        if entry.is_dir():
            raise NSTError(
                f"--output_dir: {quoted(entry.path)} is a folder; this run would save an image under that name"
            )
        for source in inputs:
            if os.path.samefile(entry.path, source):
                raise NSTError(
                    f"--output_dir: {quoted(entry.path)} is the input image {quoted(source)} and would be overwritten"
                )


def _earlier_numbered_images(output_dir, numbered):
    if not os.path.isdir(output_dir):
        return 0
    return sum(1 for name in os.listdir(output_dir) if numbered.match(name))


def _prepare_output_dir(path):
    """Creates the folder and proves it writable, before any work starts."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise NSTError(f"--output_dir: cannot write to {quoted(path)}: {error.strerror or error}") from None


class _ProgressLine:
    """A progress bar with ETA on stderr, redrawn in place on a terminal.

    The ETA is taken from iterations after the first, whose time includes
    tracing the loop.
    """

    def __init__(self, total, stream):
        self.total = total
        self.stream = stream
        self.start = time.monotonic()
        self.first_done = None
        self.tty = stream.isatty()

    def update(self, done):
        now = time.monotonic()
        if self.first_done is None:
            self.first_done = (now, done)
        since, base = self.first_done
        eta = (now - since) / (done - base) * (self.total - done) if done > base else float("nan")
        filled = int(30 * done / self.total)
        bar = "=" * filled + ">" * (filled < 30) + "." * (29 - filled)
        text = f"[{bar}] {done}/{self.total}  {now - self.start:.0f}s elapsed  ETA {_duration(eta)}"
        self.stream.write(("\r" + text + ("\n" if done == self.total else "")) if self.tty else text + "\n")
        self.stream.flush()


def _duration(seconds):
    if seconds != seconds:
        return "?"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def _report(preset, progress, stream):
    stream.write(
        preset.report_line.format(
            i=progress.iteration, total=progress.total_cost, content=progress.content_cost, style=progress.style_cost
        )
    )
    stream.flush()


def _config(args):
    return StyleTransferConfig(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(StyleTransferConfig)}
    )


class _StopRequest:
    """The handler of SIGINT, SIGTERM and SIGHUP.

    Before the optimization starts it raises ``Stopped`` at once. During the
    optimization it only records the signal (``deferred``): an exception
    raised while TensorFlow is inside a call can leave its runtime
    inconsistent (a segmentation fault was seen), so the loop checks
    ``signum`` after each traced call, about once a second, and stops there.
    """

    def __init__(self):
        self.signum = None
        self.deferred = False

    def __call__(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        if not self.deferred:
            raise Stopped(signum)


@contextlib.contextmanager
def _signals(handler):
    """Runs the block with ``handler`` for SIGINT, SIGTERM and SIGHUP; restores the old handlers after it."""
    names = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    try:
        previous = {s: signal.signal(s, handler) for s in names}
    except ValueError:  # not the main thread: signals stay as they are
        previous = {}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _import_tensorflow_quietly():
    """Imports TensorFlow and starts its runtime with their log lines (file descriptor 2) discarded.

    TensorFlow's C++ start-up lines (oneDNN, CUDA probing) ignore
    TF_CPP_MIN_LOG_LEVEL and come at import and at the first operation, so
    the descriptor itself is pointed at a temporary file while both happen;
    if that fails, what TensorFlow wrote is shown.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.constant(0.0).numpy()
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf


class _Saver:
    """Saves images into the output folder; a failure is kept, not raised, and the image rescued."""

    def __init__(self, output_dir, normalization, err):
        self.output_dir = output_dir
        self.normalization = normalization
        self.err = err
        self.failed = False

    def save(self, name, image):
        from .images import save_image

        path = os.path.join(self.output_dir, name)
        try:
            save_image(path, image, self.normalization)
            return True
        except (NSTError, OSError) as error:
            rescued = self._rescue(name, image)
            where = (
                f"; the image was saved to {quoted(rescued)} instead" if rescued else "; no other place could take it"
            )
            detail = str(error) if isinstance(error, NSTError) else f"{quoted(path)}: {_reason(error)}"
            self.err.write(f"{PROG}: error: cannot save {detail}{where}\n")
            self.failed = True
            return False

    def _rescue(self, name, image):
        from .images import save_image

        stem, extension = os.path.splitext(name)
        for folder in (tempfile.gettempdir(), os.path.expanduser("~")):
            path = os.path.join(folder, f"nst_tf-{os.getpid()}-{stem}{extension}")
            try:
                save_image(path, image, self.normalization)
                return path
            except (NSTError, OSError):
                continue
        return None


def _reason(error):
    return getattr(error, "strerror", None) or str(error)


def _contain_determinism(tf, seed):
    """Op determinism for a seeded run, undone afterwards so an in-process caller keeps its own setting."""
    if seed is None:
        return contextlib.nullcontext()
    from tensorflow.python.framework import config as tf_config

    was = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()

    @contextlib.contextmanager
    def restore():
        try:
            yield
        finally:
            if not was:
                tf_config.disable_op_determinism()

    return restore()


@dataclasses.dataclass(frozen=True)
class _Job:
    """What a validated command line asks for: nothing in it is created or loaded yet."""

    config: StyleTransferConfig
    preset: Preset
    large: LargeImageOptions
    fit: str
    sizes: list
    tiles: dict
    content: object
    styles: list
    weights: VGGWeights
    pooling: str
    output_dir: str
    notes: list


def _validated(args, preset):
    """Checks everything the user gave, before anything is created or TensorFlow is loaded."""
    config = _config(args)
    size = ImageSize(args.width, args.height, args.max_size, args.fit)
    large = LargeImageOptions(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(LargeImageOptions)}
    )
    content_path = _resolve_image(args.content_image_filename, "content_image_filename")
    style_paths = [_resolve_image(name, "style_image_filename") for name in args.style_image_filename]
    config.blend_weights(len(style_paths))
    numbered = _numbered(preset.report_image)
    _check_outputs(args.output_dir, config, numbered, [content_path, *style_paths], _scale_images(large))
    content_width, content_height = image_size(content_path)
    height, width = size.of((content_height, content_width))
    sizes = scale_sizes(height, width, large.scales)
    layers = [config.content_layer, *(name for name, _ in config.style_layers)]
    tiles = {
        size: plan_tiles(*size, layers, config.optimizer, config.lbfgs_history, large.max_memory, large.tile_size)
        for size in sizes
    }
    style_height, style_width = style_size(height, width, large.style_scale)
    # Decoded reduced when the files are large; fitted here to the first and last sizes so that an image
    # that cannot be fitted fails before anything is created.
    content = read_image(content_path, target=(width, height))
    styles = [read_image(path, target=(style_width, style_height)) for path in style_paths]
    for (h, w), path, pixels in [(s, content_path, content) for s in (sizes[0], sizes[-1])] + [
        (style_size(*s, large.style_scale), path, pixels)
        for s in (sizes[0], sizes[-1])
        for path, pixels in zip(style_paths, styles)
    ]:
        _fitted(pixels, w, h, size.fit, path)
    notes = [_shrink_note(path, width, height) for path in (content_path, *style_paths)]
    weights = read_weights(args.model)  # last: the slowest check, a file of up to 510 MB
    return _Job(
        config,
        preset,
        large,
        size.fit,
        sizes,
        tiles,
        content,
        styles,
        weights,
        args.pooling,
        args.output_dir,
        [note for note in notes if note],
    )


def _scale_images(large):
    """The file names of each earlier scale's result, "scale1.png" ..."""
    return [f"scale{scale}.png" for scale in range(1, large.scales)]


def _run(job, out, err, stop):
    config, output_dir = job.config, job.output_dir
    for note in job.notes:
        err.write(f"{PROG}: note: {note}\n")
    earlier = _earlier_numbered_images(output_dir, _numbered(job.preset.report_image))
    _prepare_output_dir(output_dir)
    if earlier:
        err.write(
            f"{PROG}: note: {quoted(output_dir)} already holds {earlier} numbered images; this run replaces those "
            "of the iterations it reports and leaves the others\n"
        )
    tf = _import_tensorflow_quietly()
    from .multiscale import CoarseToFine
    from .optimize import Progress
    from .precision import compute_dtype, emulation_note, jit_note
    from .tiling import TiledStyleCost, make_style_cost
    from .vgg import VGG19

    for note in (emulation_note(config.precision), jit_note() if config.jit_compile else None):
        if note:
            err.write(f"{PROG}: warning: {note}\n")
    model = VGG19(job.weights, dtype=compute_dtype(config.precision), pooling=job.pooling)

    def objective(model, content, styles, config):
        cost = make_style_cost(model, content, styles, config, *(job.tiles[tuple(content.shape[1:3])] or ()))
        if isinstance(cost, TiledStyleCost):
            (rows, cols), height, width = cost.tile_size, *content.shape[1:3]
            passes = "kept for the backward ones" if cost.keep_forward else "run again for the backward ones"
            err.write(
                f"{PROG}: note: {width}x{height} is computed in {len(cost.tiles)} tiles of {cols}x{rows} pixels "
                f"plus a {cost.margin}-pixel margin; forward passes {passes}\n"
            )
        return cost

    saver = _Saver(output_dir, config.normalization, err)
    transfer = None
    status = EXIT_OK
    reported = -1
    scales = len(job.sizes)
    with _contain_determinism(tf, config.seed):
        try:
            # One size is a coarse-to-fine run of one scale: the same loop either way.
            transfer = CoarseToFine(
                model,
                job.content,
                job.styles,
                config,
                job.sizes,
                job.large.scale_epochs,
                job.large.style_scale,
                objective,
                job.fit,
            )
            bar = _ProgressLine(transfer.total_iterations, err)
            scale = 0
            stop.deferred = True
            for item in transfer.run(ticks=True):
                if stop.signum is not None:
                    raise Stopped(stop.signum)
                if scales > 1 and item.scale != scale:
                    out.write(f"Scale {item.scale}/{scales}: {item.width}x{item.height}\n")
                scale, progress, last_scale = item.scale, item.item, item.scale == scales
                if isinstance(progress, Progress) and last_scale:
                    reported = progress.iteration
                    if _saves_image(progress.iteration, config):
                        _report(job.preset, progress, out)
                        saver.save(job.preset.report_image.format(i=progress.iteration), progress.image)
                elif isinstance(progress, Progress) and progress.iteration == transfer.epochs[scale - 1] - 1:
                    saver.save(_scale_images(job.large)[scale - 1], progress.image)
                bar.update(transfer.iteration)
        except (KeyboardInterrupt, Stopped) as stop:
            status = 128 + getattr(stop, "signum", signal.SIGINT)
        except NonFiniteCostError as error:
            with _signals(signal.SIG_IGN):
                saver.save(FINAL_IMAGE, error.last_finite_image)
            final_path = os.path.join(output_dir, FINAL_IMAGE)
            err.write(f"{PROG}: error: {error}; saved the last finite image to {quoted(final_path)}\n")
            return EXIT_SAVE_FAILED if saver.failed else EXIT_NON_FINITE

    if transfer is None or transfer.current_image() is None:
        err.write(f"\n{PROG}: interrupted before the first iteration; nothing was saved\n")
        return status
    # Further signals are ignored while the last images are written, so a
    # second Ctrl-C cannot leave them half done.
    with _signals(signal.SIG_IGN):
        done = transfer.iteration
        # Numbered images are the last scale's, numbered within it.
        due = transfer.transfer.iteration - 1 if transfer.scale == scales else -1
        if status != EXIT_OK and due > reported and _saves_image(due, config):
            saver.save(job.preset.report_image.format(i=due), transfer.current_image())
        final_saved = saver.save(FINAL_IMAGE, transfer.current_image())
    final_path = os.path.join(output_dir, FINAL_IMAGE)
    if status != EXIT_OK:
        what = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)"}.get(
            status - 128, "hung up (SIGHUP)"
        )
        saved = f"; saved {quoted(final_path)}" if final_saved else ""
        err.write(f"\n{PROG}: {what} after {done} of {transfer.total_iterations} iterations{saved}\n")
    elif final_saved:
        out.write(f"saved {final_path}\n")
    return EXIT_SAVE_FAILED if saver.failed and status == EXIT_OK else status


def _chosen_preset(argv):
    """The ``Preset`` named by ``--preset`` in ``argv`` (the first edition's without one)."""
    parser = _Parser(add_help=False)
    parser.add_argument("--preset", choices=tuple(PRESETS), default="first_edition")
    return PRESETS[parser.parse_known_args(argv)[0].preset]


def main(argv=None):
    """Runs the command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    stop = _StopRequest()
    try:
        with _signals(stop):
            preset = _chosen_preset(argv)
            args = build_parser(preset).parse_args(argv)
            return _run(_validated(args, preset), sys.stdout, sys.stderr, stop)
    except NSTError as error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return EXIT_BAD_INPUT
    except SystemExit as exit_:  # -h/--help
        return exit_.code or 0
    except (KeyboardInterrupt, Stopped) as stopped:
        sys.stderr.write(f"\n{PROG}: interrupted\n")
        return 128 + getattr(stopped, "signum", signal.SIGINT)

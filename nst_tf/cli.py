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
from .errors import ImageError, NonFiniteCostError, NSTError
from .images import ImageSize, fit_image, read_image, reshape_and_normalize_image
from .large import LargeImageOptions, scale_sizes, style_size
from .resources import plan_tiles

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

#: The options that are not hyperparameters: the files.
FILE_OPTIONS = {
    "content_image_filename": dict(
        default=CONFIG.CONTENT_IMAGE, metavar="FILE", help=f"content image: a path, or a name under {IMAGES_DIR}/"
    ),
    "style_image_filename": dict(
        default=[CONFIG.STYLE_IMAGE], nargs="+", metavar="FILE",
        help=f"style image(s): paths, or names under {IMAGES_DIR}/",
    ),
    "model": dict(default=CONFIG.VGG_MODEL, metavar="FILE", help="the VGG-19 weights: imagenet-vgg-verydeep-19.mat"),
    "output_dir": dict(default=CONFIG.OUTPUT_DIR, metavar="DIR", help="folder for the images; created if missing"),
}

# Numbered report images, "<iteration>.png".
_NUMBERED = re.compile(r"^(\d+)\.png$")


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


def build_parser():
    """The command's parser: the file options, then the fields of each options dataclass."""
    parser = _Parser(
        prog=PROG, description="Neural style transfer (Gatys et al. 2015) with VGG-19, as in the deeplearning.ai course."
    )
    files = parser.add_argument_group("files")
    for name, spec in FILE_OPTIONS.items():
        spec = dict(spec)
        text = spec.pop("help") + _default_text(spec["default"])
        files.add_argument(f"--{name}", help=text.replace("%", "%%"), **spec)
    for title, cls in (
        ("image size", ImageSize),
        ("hyperparameters", StyleTransferConfig),
        ("large images", LargeImageOptions),
    ):
        group = parser.add_argument_group(title)
        defaults = cls()
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
    raise NSTError(f"--{option}: image not found: {name!r} (looked as a path and under {IMAGES_DIR}/)")


def _fitted(pixels, width, height, path):
    try:
        return fit_image(pixels, width, height)
    except ImageError as error:
        raise ImageError(f"{path!r}: {error}") from None


def _check_model_file(path):
    """The weights file exists and is a regular file (a FIFO would block the reader forever)."""
    if os.path.islink(path) and not os.path.exists(path):
        raise NSTError(f"--model: {path!r} is a symbolic link to {os.readlink(path)!r}, which does not exist")
    if os.path.exists(path) and not os.path.isfile(path):
        raise NSTError(f"--model: {path!r} is not a regular file")


def _check_outputs(output_dir, config, inputs, other_names=()):
    """Refuses, before anything is created, outputs that would fail or destroy an input.

    Report images are ``<i>.png`` for every reported ``i`` divisible by
    ``print_every``; they are checked against what is in the folder (never
    listed one by one: the list grows with ``epochs``). ``other_names``: the
    run's other image names (each earlier scale's result).
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise NSTError(f"--output_dir: {output_dir!r} exists and is not a folder")
    if not os.path.isdir(output_dir):
        return
    with os.scandir(output_dir) as entries:
        found = list(entries)
    for entry in found:
        match = _NUMBERED.match(entry.name)
        ours = entry.name == FINAL_IMAGE or entry.name in other_names or (
            match and int(match.group(1)) < config.epochs and int(match.group(1)) % config.print_every == 0
        )
        if not ours:
            continue
        if entry.is_dir():
            raise NSTError(f"--output_dir: {entry.path!r} is a folder; this run would save an image under that name")
        for source in inputs:
            if os.path.samefile(entry.path, source):
                raise NSTError(f"--output_dir: {entry.path!r} is the input image {source!r} and would be overwritten")


def _earlier_numbered_images(output_dir):
    if not os.path.isdir(output_dir):
        return 0
    return sum(1 for name in os.listdir(output_dir) if _NUMBERED.match(name))


def _prepare_output_dir(path):
    """Creates the folder and proves it writable, before any work starts."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise NSTError(f"--output_dir: cannot write to {path!r}: {error.strerror or error}") from None


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


def _report(progress, stream):
    stream.write(
        f"Iteration {progress.iteration} :\n"
        f"total cost = {progress.total_cost:g}\n"
        f"content cost = {progress.content_cost:g}\n"
        f"style cost = {progress.style_cost:g}\n"
    )
    stream.flush()


def _config(args):
    return StyleTransferConfig(**{field.name: getattr(args, field.name) for field in dataclasses.fields(StyleTransferConfig)})


def _large_options(args):
    fields = dataclasses.fields(LargeImageOptions)
    return LargeImageOptions(**{field.name: getattr(args, field.name) for field in fields})


def _scale_image(scale):
    """File name of the result of scale ``scale`` (1-based) before the last."""
    return f"scale{scale}.png"


def _signal_raiser(signum, frame):
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

    def __init__(self, output_dir, err):
        self.output_dir = output_dir
        self.err = err
        self.failed = False

    def save(self, name, image):
        from .images import save_image

        path = os.path.join(self.output_dir, name)
        try:
            save_image(path, image)
            return True
        except (NSTError, OSError) as error:
            rescued = self._rescue(name, image)
            where = f"; the image was saved to {rescued!r} instead" if rescued else "; no other place could take it"
            self.err.write(f"{PROG}: error: cannot save {path!r}: {_reason(error)}{where}\n")
            self.failed = True
            return False

    @staticmethod
    def _rescue(name, image):
        from .images import save_image

        stem, extension = os.path.splitext(name)
        for folder in (tempfile.gettempdir(), os.path.expanduser("~")):
            path = os.path.join(folder, f"nst_tf-{os.getpid()}-{stem}{extension}")
            try:
                save_image(path, image)
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


def _run(args, out, err):
    # Everything the user gave is checked before anything is created or loaded.
    config = _config(args)
    size = ImageSize(args.width, args.height, args.max_size)
    large = _large_options(args)
    content_path = _resolve_image(args.content_image_filename, "content_image_filename")
    style_paths = [_resolve_image(name, "style_image_filename") for name in args.style_image_filename]
    config.blend_weights(len(style_paths))
    _check_model_file(args.model)
    scale_images = [_scale_image(scale) for scale in range(1, large.scales)]
    _check_outputs(args.output_dir, config, [content_path, *style_paths], scale_images)
    content_pixels = read_image(content_path)
    height, width = size.of(content_pixels.shape[:2])
    sizes = scale_sizes(height, width, large.scales)
    layers = [config.content_layer, *(name for name, _ in config.style_layers)]
    tile_sizes = {
        size: plan_tiles(*size, layers, config.optimizer, config.lbfgs_history, large.max_memory, large.tile_size)
        for size in sizes
    }
    style_pixels = [read_image(path) for path in style_paths]
    # Fitted to the first size here, so that an image that cannot be fitted
    # fails before TensorFlow loads; with one scale these are the images used.
    first_height, first_width = sizes[0]
    style_height, style_width = style_size(first_height, first_width, large.style_scale)
    content = reshape_and_normalize_image(_fitted(content_pixels, first_width, first_height, content_path))
    styles = [
        reshape_and_normalize_image(_fitted(pixels, style_width, style_height, path))
        for pixels, path in zip(style_pixels, style_paths)
    ]

    earlier = _earlier_numbered_images(args.output_dir)
    _prepare_output_dir(args.output_dir)
    if earlier:
        err.write(
            f"{PROG}: note: {args.output_dir!r} already holds {earlier} numbered images; this run replaces those "
            "of the iterations it reports and leaves the others\n"
        )
    tf = _import_tensorflow_quietly()
    from .multiscale import CoarseToFine, ScaleProgress
    from .optimize import Progress, StyleTransfer
    from .precision import compute_dtype, emulation_note, jit_note
    from .tiling import make_style_cost
    from .vgg import load_vgg_model

    for note in (emulation_note(config.precision), jit_note() if config.jit_compile else None):
        if note:
            err.write(f"{PROG}: warning: {note}\n")
    model = load_vgg_model(args.model, dtype=compute_dtype(config.precision))

    def objective(model, content, styles, config):
        return make_style_cost(model, content, styles, config, tile_sizes[tuple(content.shape[1:3])])

    saver = _Saver(args.output_dir, err)
    transfer = None
    status = EXIT_OK
    reported = -1
    with _contain_determinism(tf, config.seed):
        try:
            if large.scales == 1:
                transfer = StyleTransfer(objective(model, content, styles, config))
            else:
                transfer = CoarseToFine(
                    model, content_pixels, style_pixels, config, sizes, large.scale_epochs, large.style_scale, objective
                )
            del content, styles
            bar = _ProgressLine(getattr(transfer, "total_iterations", config.epochs), err)
            scale = None
            for progress in transfer.run(ticks=True):
                last_scale = True
                if isinstance(progress, ScaleProgress):
                    if progress.scale != scale:
                        scale = progress.scale
                        out.write(f"Scale {scale}/{progress.scales}: {progress.width}x{progress.height}\n")
                    last_scale = progress.scale == progress.scales
                    progress = progress.item
                if isinstance(progress, Progress):
                    if last_scale:
                        reported = progress.iteration
                    if progress.iteration % config.print_every == 0:
                        _report(progress, out)
                        if last_scale:
                            saver.save(f"{progress.iteration}.png", progress.image)
                    if not last_scale and progress.iteration == transfer.epochs[scale - 1] - 1:
                        saver.save(_scale_image(scale), progress.image)
                bar.update(transfer.iteration)
        except (KeyboardInterrupt, Stopped) as stop:
            status = 128 + getattr(stop, "signum", signal.SIGINT)
        except NonFiniteCostError as error:
            status = EXIT_NON_FINITE
            with _signals(signal.SIG_IGN):
                saver.save(FINAL_IMAGE, error.last_finite_image)
            final_path = os.path.join(args.output_dir, FINAL_IMAGE)
            err.write(f"{PROG}: error: {error}; saved the last finite image to {final_path!r}\n")
            return EXIT_SAVE_FAILED if saver.failed else status

    if transfer is None or transfer.current_image() is None:
        err.write(f"\n{PROG}: interrupted before the first iteration; nothing was saved\n")
        return status
    # Further signals are ignored while the last images are written, so a
    # second Ctrl-C cannot leave them half done.
    with _signals(signal.SIG_IGN):
        done = transfer.iteration
        # Numbered images are the last scale's, numbered within it.
        last = transfer if large.scales == 1 else transfer.transfer if transfer.scale == large.scales else None
        due = last.iteration - 1 if last is not None else -1
        if status != EXIT_OK and due > reported and due >= 0 and due % config.print_every == 0:
            saver.save(f"{due}.png", transfer.current_image())
        final_saved = saver.save(FINAL_IMAGE, transfer.current_image())
    final_path = os.path.join(args.output_dir, FINAL_IMAGE)
    if status != EXIT_OK:
        what = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)"}.get(
            status - 128, "hung up (SIGHUP)"
        )
        saved = f"; saved {final_path!r}" if final_saved else ""
        total = getattr(transfer, "total_iterations", config.epochs)
        err.write(f"\n{PROG}: {what} after {done} of {total} iterations{saved}\n")
    elif final_saved:
        out.write(f"saved {final_path}\n")
    return EXIT_SAVE_FAILED if saver.failed and status == EXIT_OK else status


def main(argv=None):
    """Runs the command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    try:
        with _signals(_signal_raiser):
            args = build_parser().parse_args(argv)
            return _run(args, sys.stdout, sys.stderr)
    except NSTError as error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return EXIT_BAD_INPUT
    except SystemExit as exit_:  # -h/--help
        return exit_.code or 0
    except (KeyboardInterrupt, Stopped) as stop:
        sys.stderr.write(f"\n{PROG}: interrupted\n")
        return 128 + getattr(stop, "signum", signal.SIGINT)

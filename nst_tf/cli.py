"""``python -m nst_tf`` / ``nst-tf``: the course's style-transfer job from the command line.

The options are those of the course's command-line port (content and style
file names, epochs, print_every, learning_rate, alpha, beta) plus the model
path, output folder, seed and image size. Defaults come from
``StyleTransferConfig`` and ``CONFIG``. Bad input prints one line and exits
with status 2; Ctrl-C saves the latest image and exits with 130.
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import time

import tensorflow as tf

from .config import COLOR_MODES, CONFIG, OPTIMIZERS, PRECISIONS, StyleTransferConfig
from .costs import TV_FORMS
from .errors import NonFiniteCostError, NSTError
from .images import load_image, reshape_and_normalize_image, save_image
from .optimize import StyleTransfer
from .vgg import load_vgg_model

PROG = "nst-tf"
FINAL_IMAGE = "generated_image.jpg"
IMAGES_DIR = "images"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise NSTError(message)


def build_parser():
    defaults = StyleTransferConfig()
    parser = _Parser(
        prog=PROG,
        description="Neural style transfer (Gatys et al. 2015) with VGG-19, as in the deeplearning.ai course.",
    )
    parser.add_argument("--content_image_filename", default=CONFIG.CONTENT_IMAGE, metavar="FILE",
                        help=f"content image: a path, or a name under {IMAGES_DIR}/ (default: %(default)s)")
    parser.add_argument("--style_image_filename", default=[CONFIG.STYLE_IMAGE], metavar="FILE", nargs="+",
                        help=f"style image(s): paths, or names under {IMAGES_DIR}/ (default: {CONFIG.STYLE_IMAGE})")
    parser.add_argument("--style_blend_weights", type=float, nargs="+", default=defaults.style_blend_weights,
                        metavar="W", help="one weight per style image, normalized to sum to 1 (default: equal)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help="number of iterations (default: %(default)s)")
    parser.add_argument("--print_every", type=int, default=defaults.print_every,
                        help="print costs and save an image every this many iterations (default: %(default)s)")
    parser.add_argument("--learning_rate", type=float, default=defaults.learning_rate,
                        help="Adam's learning rate (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=defaults.alpha,
                        help="weight of the content cost (default: %(default)s)")
    parser.add_argument("--beta", type=float, default=defaults.beta,
                        help="weight of the style cost (default: %(default)s)")
    parser.add_argument("--model", default=CONFIG.VGG_MODEL, metavar="MAT",
                        help="path to imagenet-vgg-verydeep-19.mat (default: %(default)s)")
    parser.add_argument("--output_dir", default=CONFIG.OUTPUT_DIR, metavar="DIR",
                        help="folder for the images (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed of the initial noise; with it, a rerun on the same machine gives "
                             "byte-identical images (default: a fresh seed)")
    parser.add_argument("--width", type=int, default=defaults.width,
                        help="width of the generated image in pixels (default: %(default)s)")
    parser.add_argument("--height", type=int, default=defaults.height,
                        help="height of the generated image in pixels (default: %(default)s); both "
                             "images are centre-cropped to this aspect ratio, then scaled")
    parser.add_argument("--max_size", type=int, default=defaults.max_size, metavar="N",
                        help="keep the content image's aspect ratio with this longer side, instead of "
                             "--width x --height; the style image is brought to the same size")
    parser.add_argument("--noise_ratio", type=float, default=defaults.noise_ratio,
                        help="share of noise in the initial image (default: %(default)s)")
    parser.add_argument("--content_layer", default=defaults.content_layer, metavar="LAYER",
                        help="layer defining content (default: %(default)s)")
    parser.add_argument("--style_layers", type=_style_layers, default=defaults.style_layers,
                        metavar="NAME:W,...",
                        help="style layers and weights (default: "
                             + ",".join(f"{n}:{w:g}" for n, w in defaults.style_layers) + ")")
    parser.add_argument("--tv_weight", type=float, default=defaults.tv_weight,
                        help="weight of the total-variation regularizer (default: %(default)s, off)")
    parser.add_argument("--tv_form", choices=TV_FORMS, default=defaults.tv_form,
                        help="squared: sum of squared neighbour differences; power: sum (dx^2+dy^2)^1.25 "
                             "(default: %(default)s)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer,
                        help="adam (the course's; uses --learning_rate) or lbfgs (default: %(default)s)")
    parser.add_argument("--lbfgs_history", type=int, default=defaults.lbfgs_history, metavar="N",
                        help="curvature pairs L-BFGS keeps for the whole run (default: %(default)s)")
    parser.add_argument("--preserve_colors", choices=COLOR_MODES, default=defaults.preserve_colors,
                        help="keep the content's colours: luminance (YIQ chrominance of the content) or "
                             "histogram (style recoloured to the content's colour statistics)")
    parser.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                        help="network precision; costs stay float32 (default: %(default)s)")
    parser.add_argument("--jit_compile", action="store_true", default=defaults.jit_compile,
                        help="compile the optimization loop with XLA")
    return parser


def _style_layers(text):
    pairs = []
    for item in text.split(","):
        name, sep, weight = item.strip().partition(":")
        try:
            pairs.append((name, float(weight)))
        except ValueError:
            sep = ""
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"expected NAME:WEIGHT pairs separated by commas; got {text!r}")
    return tuple(pairs)


def _resolve_image(name, option):
    for candidate in (name, os.path.join(IMAGES_DIR, name)):
        if os.path.isfile(candidate):
            return candidate
    raise NSTError(f"--{option}: image not found: {name} (looked as a path and under {IMAGES_DIR}/)")


def _prepare_output_dir(path):
    """Creates the folder and proves it writable, before any work starts."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise NSTError(f"--output_dir: cannot write to {path}: {error.strerror or error}") from None


def _output_names(config):
    iterations = sorted(set(range(0, config.epochs, config.print_every)) | {config.epochs - 1})
    return [f"{i}.png" for i in iterations] + [FINAL_IMAGE]


def _refuse_overwriting_inputs(output_dir, names, inputs):
    inputs = {os.path.realpath(p) for p in inputs}
    for name in names:
        target = os.path.realpath(os.path.join(output_dir, name))
        if target in inputs:
            raise NSTError(f"--output_dir: {target} is an input image and would be overwritten")


class _ProgressLine:
    """A progress bar with ETA on stderr, redrawn in place on a terminal."""

    def __init__(self, total, stream):
        self.total = total
        self.stream = stream
        self.start = time.monotonic()
        self.tty = stream.isatty()

    def update(self, done):
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (self.total - done) if done else float("nan")
        filled = int(30 * done / self.total)
        bar = "=" * filled + ">" * (filled < 30) + "." * (29 - filled)
        text = f"[{bar}] {done}/{self.total}  {elapsed:.0f}s elapsed  ETA {_duration(eta)}"
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
    names = [f.name for f in dataclasses.fields(StyleTransferConfig)]
    return StyleTransferConfig(**{name: getattr(args, name) for name in names})


def _run(args, out, err):
    config = _config(args)
    content_path = _resolve_image(args.content_image_filename, "content_image_filename")
    style_paths = [_resolve_image(name, "style_image_filename") for name in args.style_image_filename]
    if config.style_blend_weights is not None and len(config.style_blend_weights) != len(style_paths):
        raise NSTError(
            f"--style_blend_weights: {len(config.style_blend_weights)} weights for {len(style_paths)} style images"
        )
    _prepare_output_dir(args.output_dir)
    _refuse_overwriting_inputs(args.output_dir, _output_names(config), [content_path, *style_paths])
    content = load_image(content_path, config.width, config.height, config.max_size)
    height, width = content.shape[:2]
    content = reshape_and_normalize_image(content)
    styles = [reshape_and_normalize_image(load_image(path, width, height)) for path in style_paths]
    model = load_vgg_model(args.model)
    if config.seed is not None:
        # Same seed, same machine, same bytes: TensorFlow's multi-threaded
        # kernels may otherwise sum in a different order from run to run.
        tf.config.experimental.enable_op_determinism()

    transfer = None
    final_path = os.path.join(args.output_dir, FINAL_IMAGE)
    try:
        transfer = StyleTransfer(model, content, styles, config)
        bar = _ProgressLine(config.epochs, err)
        for progress in transfer.run():
            if progress.iteration % config.print_every == 0:
                _report(progress, out)
                save_image(os.path.join(args.output_dir, f"{progress.iteration}.png"), progress.image)
            bar.update(progress.iteration + 1)
    except KeyboardInterrupt:
        if transfer is not None:
            save_image(final_path, transfer.current_image())
            err.write(f"\n{PROG}: interrupted after {transfer.iteration} iterations; saved {final_path}\n")
        else:
            err.write(f"\n{PROG}: interrupted\n")
        return 130
    except NonFiniteCostError as error:
        save_image(final_path, error.last_finite_image)
        err.write(f"{PROG}: error: {error}; saved the last finite image to {final_path}\n")
        return 1
    save_image(final_path, transfer.current_image())
    out.write(f"saved {final_path}\n")
    return 0


def main(argv=None):
    """Runs the command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return _run(args, sys.stdout, sys.stderr)
    except NSTError as error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return 2
    except SystemExit as exit_:  # -h/--help
        return exit_.code or 0
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{PROG}: interrupted\n")
        return 130

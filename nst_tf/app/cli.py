"""``python -m nst_tf`` / ``nst-tf``: the course's style-transfer job from the command line.

The options are the course's (content and style files, epochs, print_every, learning_rate, alpha,
beta), the files, and every field of the option dataclasses (their help and defaults). Everything
the user gave is checked before anything is created and before TensorFlow (seconds to import) is
loaded. Exit statuses are listed in ``EXIT_STATUSES``.
"""

import argparse
import dataclasses
import signal
import sys

from ..ground.errors import NSTError
from ..ground.parsing import CommandParser
from ..ground.statuses import EXIT_BAD_INPUT, EXIT_NON_FINITE, EXIT_OK, EXIT_SAVE_FAILED, EXIT_STATUSES, PROG
from ..plan.config import CONFIG, StyleTransferConfig
from ..plan.large_options import MAX_ITERATIONS, LargeImageOptions
from ..plan.networks.network_registry import NETWORKS
from ..ground.checks import MAX_SIDE, short_repr
from ..plan.region_options import RegionOptions
from ..plan.video_options import VideoOptions
from ..runs.fast_stylize import FastOptions
from ..runs.presets import PRESETS
from ..tensors.images import ImageSize
from .jobs.fast_setup import fast_request
from .jobs.kinds import fast_job_kind, job_kind
from .jobs.network_setup import locate_weights, prepare_with_weights, refuse_layers_of_another_network
from .jobs.outputs import FINAL_IMAGE
from .jobs.request import IMAGES_DIR, CommandRequest, resolve_image
from .signals import Stopped, StopRequest, stop_words

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_NON_FINITE",
    "EXIT_OK",
    "EXIT_SAVE_FAILED",
    "EXIT_STATUSES",
    "FILE_OPTIONS",
    "FINAL_IMAGE",
    "PROG",
    "build_parser",
    "main",
]

#: The options that are not hyperparameters: the files and the network.
FILE_OPTIONS = {
    "preset": dict(
        default=None,
        choices=tuple(PRESETS),
        help="start from a whole pipeline's settings; options given as well override them: "
        + "; ".join(f"{name}: {p.summary}" for name, p in PRESETS.items()),
    ),
    "content_image_filename": dict(
        default=[CONFIG.CONTENT_IMAGE],
        nargs="+",
        metavar="FILE",
        help=f"content image(s): paths or names under {IMAGES_DIR}/, globs, or folders (their images, found by "
        "content, in name order); several give one result each, <output_dir>/<stem>.jpg",
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
        help="the network's weights, told apart by their content: for VGG-19, MatConvNet's "
        "imagenet-vgg-verydeep-19.mat or Keras' vgg19_weights_tf_dim_ordering_tf_kernels(_notop).h5; for "
        "SqueezeNet, torchvision's squeezenet1_1-b8a52dc0.pth or a .safetensors copy",
    ),
    "pooling": dict(
        default="avg",
        choices=tuple(dict.fromkeys(p for network in NETWORKS.values() for p in network.poolings)),
        help="pooling after each block: avg (the course) or max (Keras)",
    ),
    "output": dict(
        default=None,
        metavar="PATH",
        help="where the result goes: for one content image the file to save (e.g. out.png; the numbered report "
        "images are then saved only when --output_dir is given too, into that folder), for several a folder, as "
        "--output_dir; for a video the .mp4 to write",
    ),
    "output_dir": dict(default=CONFIG.OUTPUT_DIR, metavar="DIR", help="folder for the images; created if missing"),
    "log_dir": dict(
        default=None,
        metavar="DIR",
        help="write a TensorBoard log of each run under DIR (tensorboard --logdir DIR shows it): the costs by term "
        "and the learning rate at every report, and images; one run per content image (DIR/<stem>) or video frame "
        "(DIR/<video stem>/<frame>)",
    ),
    "log_images_every": dict(
        default=10,
        type=int,
        metavar="N",
        help="with --log_dir: log the image at the first report, every N-th report after it and the last",
    ),
    "download": dict(
        default=False,
        action="store_true",
        help="fetch the weights file first when it is missing, as python -m nst_tf.download does (into "
        "pretrained-model/ where the current folder has one, else NST_TF_HOME's folder, or --model's path)",
    ),
}

#: The short and common names beside the course's, which stay: the names users of other style-transfer tools type.
ALIASES = {
    "content_image_filename": ("-c", "--content"),
    "style_image_filename": ("-s", "--style"),
    "output": ("-o",),
    "epochs": ("-n", "--iterations"),
}

#: The first lines of ``-h``: what most runs look like.
EXAMPLES = f"""examples:
  {PROG} -c photo.jpg -s painting.jpg -o result.jpg     one photo, one painting
  {PROG} -c photos/ -s painting.jpg -o results/         every image of a folder, in name order
  {PROG} -c photo.jpg -s a.jpg b.jpg -n 100             two styles blended, 100 iterations
  {PROG} --alpha 10 --beta 40                           the course's run on the course's images
  {PROG} --preset cs231n_starry_night                   CS231n's edition (SqueezeNet)
  {PROG} --fast_model model/ -c photo.jpg -o out.jpg    one pass of a trained fast style model

Standard output carries the course's lines (the costs every --print_every iterations) and, last, one summary
line: the iterations, the time, the last iteration's costs by term and their total, and the file saved.
Standard error carries where it runs (CPU or GPU), the progress bar, notes and errors. Options may be
written with dashes or underscores (--output-dir, --output_dir)."""


#: The options of several content images.
MANY_OPTIONS = {
    "recursive": dict(action="store_true", help="look for content images in the folders' subfolders too"),
    "each_style": dict(
        action="store_true",
        help="with several style images, one result per content and style image, <stem>__<style stem>.jpg "
        "(default: the styles blended)",
    ),
    "reports": dict(
        action="store_true",
        help="with several content images, print each one's report lines and save <stem>.<i>.png (default: only "
        "the results)",
    ),
    "batch_size": dict(
        default=1,
        type=int,
        metavar="B",
        help="optimize up to B content images of one size in one traced call (Adam; the same images as one at a "
        "time, up to float rounding)",
    ),
    "on_error": dict(
        default="refuse",
        choices=("refuse", "skip"),
        help="a content image that cannot be read: refuse (one line before any work) or skip it, do the others "
        "and exit with status 4",
    ),
    "engine": dict(
        default="local",
        choices=("local", "ray"),
        help="where the images are stylized: in this process (local), or by Ray Data actors on this machine or a "
        'cluster (ray; pip install "nst_tf[ray]")',
    ),
    "workers": dict(
        default=1,
        type=int,
        metavar="N",
        help="with --engine ray: how many actors stylize at once, each holding the network",
    ),
    "ray_address": dict(
        default=None,
        metavar="ADDRESS",
        help="with --engine ray: the address of a running Ray cluster (ray start --head prints it) "
        "(default: a Ray of its own inside the command, sized to this machine)",
    ),
}


#: The largest whole number an option takes, but ``--seed`` (NumPy takes any): the loop counts its steps,
#: and TensorFlow sizes images, in 32-bit integers.
MAX_WHOLE = min(MAX_ITERATIONS, MAX_SIDE)

#: Whole-number options without that bound.
_UNBOUNDED = {"seed"}


def typed_option(convert):
    """An argparse type whose NSTError becomes argparse's own message."""

    def parse(text):
        try:
            return convert(text)
        except NSTError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _bounded_int(text):
    """``int(text)``, refused above ``MAX_WHOLE``."""
    value = int(text)
    if value > MAX_WHOLE:
        raise NSTError(f"must be at most {MAX_WHOLE}; got {short_repr(value)}")
    return value


_bounded_int.__name__ = "int"  # argparse names the type in "invalid int value: 'many'"


def default_text(default):
    """The " (default: ...)" a help text ends with, as the option is written; empty for None and False."""
    if default is None or default is False or default == ():
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
    values = {
        "model": preset.model,
        "pooling": preset.pooling,
        "preset": preset.name,
        "content_image_filename": [preset.content_image],
        "style_image_filename": [preset.style_image],
    }
    parser = CommandParser(
        prog=PROG,
        usage="%(prog)s [-c PHOTO ...] [-s PAINTING ...] [-o PATH] [-n N] [--preset NAME] [option ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Neural style transfer (Gatys et al. 2015) with VGG-19, as in the deeplearning.ai course\n"
        "(or with SqueezeNet 1.1, as in Stanford's CS231n: --preset cs231n_*).\n\n" + EXAMPLES,
    )
    files = parser.add_argument_group("files")
    for name, spec in FILE_OPTIONS.items():
        spec = dict(spec, default=values.get(name, spec["default"]))
        text = spec.pop("help") + default_text(spec["default"])
        files.add_argument(*ALIASES.get(name, ()), f"--{name}", dest=name, help=text.replace("%", "%%"), **spec)
    many = parser.add_argument_group("several content images")
    for name, spec in MANY_OPTIONS.items():
        spec = dict(spec)
        text = spec.pop("help") + default_text(spec.get("default"))
        many.add_argument(f"--{name}", help=text, **spec)
    for title, defaults in (
        ("image size", preset.size),
        ("hyperparameters", preset.config),
        ("large images", preset.large),
        ("video (a video file as the content)", VideoOptions()),
        ("styles by region (Gatys et al. 2017)", RegionOptions()),
        ("fast style models (Johnson et al. 2016)", FastOptions()),
    ):
        cls = type(defaults)
        group = parser.add_argument_group(title)
        for field in dataclasses.fields(cls):
            spec = dict(field.metadata)
            default = getattr(defaults, field.name)
            text = spec.pop("help") + default_text(default)
            if "action" not in spec:
                convert = spec.get("type") or (str if default is None else type(default))
                bounded = convert is int and field.name not in _UNBOUNDED
                spec["type"] = typed_option(_bounded_int if bounded else convert)
            flags = (*ALIASES.get(field.name, ()), f"--{field.name}")
            group.add_argument(*flags, dest=field.name, default=default, help=text.replace("%", "%%"), **spec)
    return parser


def _config(args):
    """The ``StyleTransferConfig`` of the parsed command line."""
    return StyleTransferConfig(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(StyleTransferConfig)}
    )


def _overriding_the_preset(args, preset, given):
    """Drops a preset's sizing that a given option replaces: its ``--shorter_side`` gives way to
    ``--max_size``, ``--width`` or ``--height``, its ``--style_size`` to ``--style_scale``, its ``--min_scale`` to
    ``--scales`` and its ``--scales`` to ``--min_scale``."""
    if "shorter_side" not in given and given & {"max_size", "width", "height"}:
        args.shorter_side = None
    if "style_size" not in given and "style_scale" in given:
        args.style_size = None
    if "min_scale" not in given and "scales" in given:
        args.min_scale = None
    if "scales" not in given and "min_scale" in given:
        args.scales = 1


def given_options(parser, argv):
    """The options written in ``argv``, by name (``--max_size 9``, ``--max-size=9``, ``-n 9`` and ``-n9`` alike)."""
    actions, given = parser._option_string_actions, set()
    for word in parser.respelled(argv):
        if word == "--":
            break
        action = actions.get(word.partition("=")[0] if word.startswith("--") else word[:2])
        if action is not None:
            given.add(action.dest)
    return given


def _validated(args, preset, given=frozenset(), fetch_weights=None):
    """``(kinds.JobKind, its prepared job)`` of the parsed ``args`` (parsed with ``preset``; ``given``: the
    options written), everything checked before anything is created; ``NSTError`` for anything wrong.
    ``fetch_weights``: what fetches missing weights with ``--download`` (``network_setup.prepare_with_weights``)."""
    if args.fast_model is not None:
        return _fast_validated(args, given)
    if args.fast_style is not None:
        raise NSTError("--fast_style picks one of a fast model's styles; give the model with --fast_model DIR")
    _overriding_the_preset(args, preset, set(given))
    refuse_layers_of_another_network(args, preset)
    locate_weights(args, given, preset)
    config = _config(args)
    size = ImageSize(args.width, args.height, args.max_size, args.fit, args.shorter_side)
    large = LargeImageOptions(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(LargeImageOptions)}
    )
    style_paths = [resolve_image(name, "style_image_filename") for name in args.style_image_filename]
    config.blend_weights(len(style_paths))
    request = CommandRequest(args, preset, frozenset(given), config, size, large, style_paths)
    kind = job_kind(request)
    return kind, prepare_with_weights(kind, request, fetch_weights)


#: The options a ``--fast_model`` run takes: the files, the longer side, tiles and the many-image engine.
FAST_MODEL_OPTIONS = frozenset(
    {
        *(field.name for field in dataclasses.fields(FastOptions)),
        *("content_image_filename", "output", "output_dir", "max_size", "max_memory", "tile_size"),
        *("recursive", "on_error", "engine", "workers", "ray_address"),
    }
)


def _fast_validated(args, given):
    """``(kinds.JobKind, its prepared job)`` of a command line naming ``--fast_model``; ``NSTError`` for a style
    image (the model carries its styles) or another option of the optimization given, and as the kind's prepare."""
    if "style_image_filename" in given:
        raise NSTError(
            "-s/--style_image_filename: a fast model carries its styles; leave it out (--fast_style picks or blends "
            "the model's)"
        )
    unused = sorted(set(given) - FAST_MODEL_OPTIONS)
    if unused:
        spelled = ["/".join([f"--{name}", *(a for a in ALIASES.get(name, ()) if a[:2] == "--")]) for name in unused]
        flags = ", ".join(spelled)
        were, it = ("is", "it") if len(unused) == 1 else ("are", "them")
        raise NSTError(
            f"{flags} {were} not used with --fast_model: the trained network stylizes in one pass (no optimization, "
            f"no VGG weights); leave {it} out, or drop --fast_model to optimize"
        )
    request = fast_request(args, given)
    kind = fast_job_kind(request)
    return kind, kind.prepare(request)


def chosen_preset(argv):
    """The ``Preset`` named by ``--preset`` in ``argv`` (the first edition's without one)."""
    parser = CommandParser(add_help=False)
    parser.add_argument("--preset", choices=tuple(PRESETS), default="first_edition")
    return PRESETS[parser.parse_known_args(argv)[0].preset]


def main(argv=None, fetch_weights=None):
    """Runs the command on ``argv`` (default: ``sys.argv[1:]``); returns the exit status (``EXIT_STATUSES``).
    ``fetch_weights(choice, destination)``: fetches missing weights for ``--download`` (``nst_tf.__main__``'s)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    stop = StopRequest(sys.stderr)

    def command():
        preset = chosen_preset(argv)
        parser = build_parser(preset)
        args = parser.parse_args(argv)
        kind, job = _validated(args, preset, given_options(parser, argv), fetch_weights)
        return kind.run(job, sys.stdout, sys.stderr, stop)

    return guarded(command, PROG, stop, sys.stderr)


def guarded(command, prog, stop, err, stopped_note=""):
    """``command()``'s exit status, run while ``stop`` watches for signals: an ``NSTError`` becomes
    ``<prog>: error: <line>`` and status 2, ``-h`` its status, a signal or Ctrl-C that the job did not handle
    itself ``<prog>: <how it stopped><stopped_note>`` and 128 + its number. The commands of nst_tf end this way."""
    try:
        with stop.watching():
            return command()
    except NSTError as error:
        err.write(f"{prog}: error: {error}\n")
        return EXIT_BAD_INPUT
    except SystemExit as exit_:  # -h/--help
        return exit_.code or 0
    except (KeyboardInterrupt, Stopped) as stopped:
        stop.claim()
        signum = getattr(stopped, "signum", signal.SIGINT)
        err.write(f"\n{prog}: {stop_words(signum)}{stopped_note}\n")
        return 128 + signum

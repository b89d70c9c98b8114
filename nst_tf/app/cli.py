"""``python -m nst_tf`` / ``nst-tf``: the course's style-transfer job from the command line.

The options are the course's (content and style files, epochs, print_every, learning_rate, alpha,
beta), the files, and every field of the option dataclasses (their help and defaults). Everything
the user gave is checked before anything is created and before TensorFlow (seconds to import) is
loaded. Exit statuses are listed in ``EXIT_STATUSES``.
"""

import argparse
import dataclasses
import re
import signal
import sys

from ..ground.errors import NSTError
from ..ground.statuses import EXIT_BAD_INPUT, EXIT_NON_FINITE, EXIT_OK, EXIT_SAVE_FAILED, EXIT_STATUSES, PROG
from ..plan.config import CONFIG, StyleTransferConfig
from ..plan.large_options import MAX_ITERATIONS, LargeImageOptions
from ..plan.networks.network_registry import NETWORKS
from ..ground.checks import MAX_SIDE, short_repr
from ..plan.video_options import VideoOptions
from ..runs.presets import PRESETS
from ..tensors.images import ImageSize
from .jobs.kinds import job_kind
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
    "output_dir": dict(default=CONFIG.OUTPUT_DIR, metavar="DIR", help="folder for the images; created if missing"),
}

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


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A value written like a negative number (-1G, -inf, -nan, -1e5) is a value, as argparse already
        # takes -1 and -0.5, so that it reaches the option's own check: "--max_memory -1G" is refused for
        # being negative, not for a missing argument. No option of the command starts with "-<digit>".
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)

    def error(self, message):
        """Raises the message as an ``NSTError``: ``main`` writes it as one line and exits 2."""
        raise NSTError(message)


def _typed(convert):
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


def _default_text(default):
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
    parser = _Parser(
        prog=PROG,
        allow_abbrev=False,  # an option is written whole: _given tells which a user wrote
        description="Neural style transfer (Gatys et al. 2015) with VGG-19, as in the deeplearning.ai course "
        "(or with SqueezeNet 1.1, as in Stanford's CS231n: --preset cs231n_*).",
    )
    files = parser.add_argument_group("files")
    for name, spec in FILE_OPTIONS.items():
        spec = dict(spec, default=values.get(name, spec["default"]))
        text = spec.pop("help") + _default_text(spec["default"])
        files.add_argument(f"--{name}", help=text.replace("%", "%%"), **spec)
    many = parser.add_argument_group("several content images")
    for name, spec in MANY_OPTIONS.items():
        spec = dict(spec)
        text = spec.pop("help") + _default_text(spec.get("default"))
        many.add_argument(f"--{name}", help=text, **spec)
    for title, defaults in (
        ("image size", preset.size),
        ("hyperparameters", preset.config),
        ("large images", preset.large),
        ("video (a video file as the content)", VideoOptions()),
    ):
        cls = type(defaults)
        group = parser.add_argument_group(title)
        for field in dataclasses.fields(cls):
            spec = dict(field.metadata)
            default = getattr(defaults, field.name)
            text = spec.pop("help") + _default_text(default)
            if "action" not in spec:
                convert = spec.get("type") or (str if default is None else type(default))
                bounded = convert is int and field.name not in _UNBOUNDED
                spec["type"] = _typed(_bounded_int if bounded else convert)
            group.add_argument(f"--{field.name}", default=default, help=text.replace("%", "%%"), **spec)
    return parser


def _config(args):
    """The ``StyleTransferConfig`` of the parsed command line."""
    return StyleTransferConfig(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(StyleTransferConfig)}
    )


def _overriding_the_preset(args, preset, given):
    """Drops a preset's sizing that a given option replaces: its ``--shorter_side`` gives way to
    ``--max_size``, ``--width`` or ``--height``, its ``--style_size`` to ``--style_scale``."""
    if "shorter_side" not in given and given & {"max_size", "width", "height"}:
        args.shorter_side = None
    if "style_size" not in given and "style_scale" in given:
        args.style_size = None


def _given(argv):
    """The options written in ``argv``, by name (``--max_size 9`` and ``--max_size=9`` alike)."""
    return {word[2:].split("=", 1)[0] for word in argv if word.startswith("--")}


def _validated(args, preset, given=frozenset()):
    """``(kinds.JobKind, its prepared job)`` of the parsed ``args`` (parsed with ``preset``; ``given``: the
    options written), everything checked before anything is created; ``NSTError`` for anything wrong."""
    _overriding_the_preset(args, preset, set(given))
    config = _config(args)
    size = ImageSize(args.width, args.height, args.max_size, args.fit, args.shorter_side)
    large = LargeImageOptions(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(LargeImageOptions)}
    )
    style_paths = [resolve_image(name, "style_image_filename") for name in args.style_image_filename]
    config.blend_weights(len(style_paths))
    request = CommandRequest(args, preset, frozenset(given), config, size, large, style_paths)
    kind = job_kind(request)
    return kind, kind.prepare(request)


def _chosen_preset(argv):
    """The ``Preset`` named by ``--preset`` in ``argv`` (the first edition's without one)."""
    parser = _Parser(add_help=False)
    parser.add_argument("--preset", choices=tuple(PRESETS), default="first_edition")
    return PRESETS[parser.parse_known_args(argv)[0].preset]


def main(argv=None):
    """Runs the command on ``argv`` (default: ``sys.argv[1:]``); returns the exit status (``EXIT_STATUSES``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    stop = StopRequest(sys.stderr)
    try:
        with stop.watching():
            preset = _chosen_preset(argv)
            args = build_parser(preset).parse_args(argv)
            kind, job = _validated(args, preset, _given(argv))
            return kind.run(job, sys.stdout, sys.stderr, stop)
    except NSTError as error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return EXIT_BAD_INPUT
    except SystemExit as exit_:  # -h/--help
        return exit_.code or 0
    except (KeyboardInterrupt, Stopped) as stopped:
        stop.claim()
        signum = getattr(stopped, "signum", signal.SIGINT)
        sys.stderr.write(f"\n{PROG}: {stop_words(signum)}\n")
        return 128 + signum

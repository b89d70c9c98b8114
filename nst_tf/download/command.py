"""The downloader's command and functions, re-exported by ``nst_tf.download`` (see its docstring)."""

import argparse
import os
import re
import signal
import sys
from pathlib import Path

from ..app.signals import Stopped
from ..ground.errors import NSTError, quoted
from ..ground.parsing import CommandParser
from ..plan.config import CONFIG, KERAS_VGG_MODEL
from ..plan.locations import PRETRAINED_DIR, download_folder
from .console import Console, stopping_on_signals
from .fetch import HASH_NAMES, Fetch, Target, size_text
from .partial import Partial, kept, partial_paths  # noqa: F401  (partial_paths: a public name)
from .transfer import DownloadError, Policy, check_url

KERAS_WEIGHTS_FILE = os.path.basename(KERAS_VGG_MODEL)

URL = "https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat"

#: Where the .mat is downloaded from: MatConvNet's own address (no mirror is known; see pretrained-model/README.md).
MAT_SOURCES = (URL,)

#: MD5 sums of the two layouts MatConvNet has published (see pretrained-model/README.md).
KNOWN_MD5 = {
    "106118b7cf60435e6d8e04f6a6dc3657": "new layout",
    "8ee3263992981a1d26e73b3ca028a123": "old layout",
}

KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_WEIGHTS_FILE

#: Keras' address, then the GitHub release Keras used before (fchollet/deep-learning-models v0.1), same sum.
KERAS_MIRROR = "https://github.com/fchollet/deep-learning-models/releases/download/v0.1/" + KERAS_WEIGHTS_FILE
KERAS_SOURCES = (KERAS_URL, KERAS_MIRROR)

#: MD5 sum Keras itself checks the file against (keras.applications.vgg19).
KERAS_KNOWN_MD5 = {"253f8cb515780f3b799900260a226db6": "Keras VGG19 without the top"}

#: Where ``--weights squeezenet`` saves torchvision's SqueezeNet 1.1: the CS231n presets' default ``--model``,
#: written out here (a test checks it) because importing the presets would load Pillow and the networks.
SQUEEZENET_MODEL = "pretrained-model/squeezenet1_1-b8a52dc0.pth"

#: torchvision's own address (``SqueezeNet1_1_Weights.IMAGENET1K_V1``); no mirror is known.
SQUEEZENET_URL = "https://download.pytorch.org/models/" + os.path.basename(SQUEEZENET_MODEL)
SQUEEZENET_SOURCES = (SQUEEZENET_URL,)

#: torchvision's own check: the first 8 hexadecimal digits of the file's SHA-256, in its name.
SQUEEZENET_HASH_PREFIX = "b8a52dc0"

#: The full SHA-256 nst_tf checks, as projects pinning the file publish it (it agrees with torchvision's prefix).
SQUEEZENET_KNOWN_SHA256 = {
    "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b": "torchvision's SqueezeNet 1.1",
}

#: Size in bytes of the file of each known sum; None or absent where not recorded (the ceiling bounds those).
#: Keras' file: the size Keras' own download reports.
KNOWN_SIZES = {
    "106118b7cf60435e6d8e04f6a6dc3657": None,
    "8ee3263992981a1d26e73b3ca028a123": None,
    "253f8cb515780f3b799900260a226db6": 80134624,
}

#: The most bytes accepted while a file's size is unknown (the .mat is ~510 MB, Keras' ~80 MB, SqueezeNet's ~5 MB).
MAT_CEILING = 1 << 30
KERAS_CEILING = 100 << 20
SQUEEZENET_CEILING = 20 << 20

#: The most bytes read and written at a time (see ``Policy``).
CHUNK = Policy.chunk


def download(
    url=MAT_SOURCES,
    destination=CONFIG.VGG_MODEL,
    known_md5=KNOWN_MD5,
    stream=None,
    *,
    sizes=None,
    ceiling=MAT_CEILING,
    policy=None,
    algorithm="md5",
):
    """Downloads ``url`` to ``destination`` and checks its hash (MD5 by default) against ``known_md5``.

    ``url``: an http(s):// or file:// address, or several tried in order; ``destination``: a file that must not
    exist; ``known_md5``: the accepted hexadecimal digests by ``algorithm`` ("md5" or "sha256"), each with a
    description; ``stream``: progress and notes (default standard error); ``sizes``: each sum's file size
    (default ``KNOWN_SIZES``); ``ceiling``: the most bytes while the size is unknown; ``policy``: a ``Policy``.

    Returns the file's hexadecimal digest. Raises ``NSTError`` for a bad address or destination (before anything
    is created) or when every address failed (one line, saying what is kept for the next run; a
    ``KeyboardInterrupt`` keeps the partial file too), ``ValueError`` for another ``algorithm``.
    """
    return _download(url, destination, known_md5, stream, sizes, ceiling, policy, algorithm)[0]


def fetch_squeezenet_weights(
    url=SQUEEZENET_SOURCES,
    destination=SQUEEZENET_MODEL,
    known_sha256=None,
    stream=None,
    *,
    ceiling=SQUEEZENET_CEILING,
    policy=None,
):
    """Downloads torchvision's SqueezeNet 1.1 weights to ``destination`` and checks their SHA-256 against
    ``known_sha256`` (default ``SQUEEZENET_KNOWN_SHA256``); the rest as ``download``'s. Returns (the SHA-256, the
    address it came from); raises as ``download`` does."""
    known = SQUEEZENET_KNOWN_SHA256 if known_sha256 is None else known_sha256
    return _download(url, destination, known, stream, None, ceiling, policy, "sha256")


def keras_cache_dir():
    """Keras' cache of application weights, found as Keras finds it: ``$KERAS_HOME/models`` when KERAS_HOME is
    set, else ``~/.keras/models``, or ``/tmp/.keras/models`` when the home folder is not writable."""
    if "KERAS_HOME" in os.environ:
        base = os.environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    return os.path.join(os.path.expanduser(base), "models")


def fetch_keras_weights(
    url=KERAS_SOURCES,
    destination=KERAS_VGG_MODEL,
    known_md5=KERAS_KNOWN_MD5,
    stream=None,
    cache_dir=None,
    *,
    sizes=None,
    ceiling=KERAS_CEILING,
    policy=None,
    algorithm="md5",
):
    """Keras' VGG19 weights at ``destination``: copied from Keras' cache (``cache_dir``, default
    ``keras_cache_dir()``) if a good copy is there, else downloaded; the other arguments as ``download``'s.

    Returns (the file's digest, the cached file or the address it came from). Raises ``NSTError`` as ``download``
    does; a cached copy with an unknown sum is left alone, said in one line, and the file downloaded.
    """
    cached = os.path.join(cache_dir or keras_cache_dir(), KERAS_WEIGHTS_FILE)
    return _download(url, destination, known_md5, stream, sizes, ceiling, policy, algorithm, cached)


def _download(url, destination, known, stream, sizes, ceiling, policy, algorithm, cached=None):
    """``download``, returning (the file's digest, where it came from); first from ``cached`` if it is a file."""
    sources = [url] if isinstance(url, str) else list(url)
    if not sources:
        raise NSTError("no address to download from")
    for source in sources:
        check_url(source)
    if algorithm not in HASH_NAMES:
        raise ValueError(f"unknown hash algorithm {algorithm!r} (known: {', '.join(HASH_NAMES)})")
    sizes = {digest: KNOWN_SIZES.get(digest) for digest in known} if sizes is None else sizes
    target = Target(os.path.basename(os.fspath(destination)), dict(known), dict(sizes), ceiling, algorithm)
    partial, policy = Partial(destination), policy or Policy()  # refuses a bad destination
    console = stream if isinstance(stream, Console) else Console(stream or sys.stderr)
    try:
        if cached and os.path.isfile(cached):
            console.line(f"found Keras' cached copy {quoted(cached)}; copying it")
            partial.load()
            try:
                return Fetch(partial, target, policy, console).run([Path(cached).absolute().as_uri()])[0], cached
            except DownloadError as error:
                console.line(f"not using the cached copy: {error}")
        partial.load()
        return Fetch(partial, target, policy, console).run(sources)
    finally:
        console.end_line()


_SUM_WORDS = {"md5": "an MD5 sum", "sha256": "a SHA-256 sum"}


def _sum_of(algorithm):
    """The ``type`` of ``--md5`` or ``--sha256``: a lower-case sum of ``algorithm``; ``ArgumentTypeError`` for
    anything else (naming the other option for a sum of its length)."""

    def parse(text):
        kind = {32: "md5", 64: "sha256"}.get(len(text)) if re.fullmatch("[0-9a-fA-F]+", text) else None
        if kind == algorithm:
            return text.lower()
        hint = f"; {_SUM_WORDS[kind]} goes with --{kind}" if kind else ""
        digits = 32 if algorithm == "md5" else 64
        raise argparse.ArgumentTypeError(f"{text!r} is not {_SUM_WORDS[algorithm]} ({digits} hexadecimal digits){hint}")

    return parse


def _byte_count(text):
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (a number of bytes, or with K, M or G)")
    return int(match[1]) << {"": 0, "K": 10, "M": 20, "G": 30}[match[2].upper()]


#: The first lines of ``-h``: what the command does, and examples.
DESCRIPTION = """Fetch the network weights nst_tf reads (VGG-19's or SqueezeNet's) and verify them.

examples:
  python -m nst_tf.download                       MatConvNet's .mat, the course's (about 510 MB)
  python -m nst_tf.download --weights keras       Keras' VGG19 .h5, the second edition's (80 MB)
  python -m nst_tf.download --weights squeezenet  torchvision's SqueezeNet 1.1, CS231n's (5 MB)
  python -m nst_tf.download --dir ~/weights       into a folder of your choice"""


def build_parser():
    """The command's options, an ``argparse.ArgumentParser``."""
    # A wrong option is one line, as every other failure (main prints it and returns 2); options are taken with
    # dashes or underscores alike (--max-size, --max_size).
    parser = CommandParser(
        prog="python -m nst_tf.download",
        allow_abbrev=True,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--weights",
        choices=("mat", "keras", "squeezenet"),
        default="mat",
        help="mat: MatConvNet's imagenet-vgg-verydeep-19.mat (the course's); keras: Keras' "
        f"{KERAS_WEIGHTS_FILE}, taken from Keras' cache when there; squeezenet: torchvision's "
        f"{os.path.basename(SQUEEZENET_MODEL)}, SqueezeNet 1.1 (CS231n's network) (default: %(default)s)",
    )
    parser.add_argument(
        "--url",
        action="append",
        help="where to download from; repeat it to try several addresses in order, each checked by the full MD5 "
        f"sum, or SHA-256 for squeezenet (default: {URL}; for keras: {KERAS_URL}, then the copy {KERAS_MIRROR}; "
        f"for squeezenet: {SQUEEZENET_URL})",
    )
    places = parser.add_mutually_exclusive_group()
    places.add_argument(
        "--output",
        help=f"the file to save (default: {os.path.basename(CONFIG.VGG_MODEL)}, {KERAS_WEIGHTS_FILE} for keras, or "
        f"{os.path.basename(SQUEEZENET_MODEL)} for squeezenet, in --dir's folder)",
    )
    places.add_argument(
        "--dir",
        metavar="DIR",
        help=f"the folder to save into, created if missing (default: {PRETRAINED_DIR}/ where the current folder has "
        "one, else $NST_TF_HOME, or ${XDG_CACHE_HOME:-~/.cache}/nst_tf without it: the places python -m nst_tf "
        "looks in)",
    )
    sums = parser.add_mutually_exclusive_group()
    sums.add_argument(
        "--md5",
        action="append",
        type=_sum_of("md5"),
        help="accept a file with this MD5 sum instead of the known ones (a copy of your own); repeatable",
    )
    sums.add_argument(
        "--sha256",
        action="append",
        type=_sum_of("sha256"),
        help="accept a file with this SHA-256 sum instead of the known ones; repeatable. squeezenet's file is "
        "checked by SHA-256, the others by MD5, unless one of these two options says otherwise",
    )
    parser.add_argument(
        "--max-size",
        type=_byte_count,
        help="the most bytes to accept while the file's size is not recorded, e.g. 600M "
        f"(default: {size_text(MAT_CEILING)}, {size_text(KERAS_CEILING)} for keras, or "
        f"{size_text(SQUEEZENET_CEILING)} for squeezenet)",
    )
    return parser


def _defaults(choice):
    """(addresses, file name, hash algorithm, accepted sums with their descriptions, ceiling) of the weights of
    ``--weights`` ``choice``, read now (so tests can patch them)."""
    sources, output, algorithm, known, ceiling = {
        "mat": (MAT_SOURCES, CONFIG.VGG_MODEL, "md5", KNOWN_MD5, MAT_CEILING),
        "keras": (KERAS_SOURCES, KERAS_VGG_MODEL, "md5", KERAS_KNOWN_MD5, KERAS_CEILING),
        "squeezenet": (SQUEEZENET_SOURCES, SQUEEZENET_MODEL, "sha256", SQUEEZENET_KNOWN_SHA256, SQUEEZENET_CEILING),
    }[choice]
    return sources, os.path.basename(output), algorithm, known, ceiling


def _choice(args):
    """(addresses, destination, hash algorithm, accepted sums with their descriptions, ceiling) that the parsed
    options ``args`` ask for: each the option's value or the weights' default, saved in ``--dir`` or, without it,
    in ``plan.locations.download_folder()``."""
    sources, name, algorithm, known, ceiling = _defaults(args.weights)
    if args.sha256 or args.md5:
        algorithm = "sha256" if args.sha256 else "md5"
        known = {digest: f"the sum given with --{algorithm}" for digest in args.sha256 or args.md5}
    output = args.output or os.path.join(args.dir or download_folder(), name)
    return args.url or sources, output, algorithm, known, args.max_size or ceiling


def fetch_weights(choice, destination=None, stream=None):
    """Downloads the weights of ``--weights`` ``choice`` ("mat", "keras" or "squeezenet") from their addresses,
    checked by their known sums, to ``destination`` (default: ``plan.locations.download_folder()`` and the file's
    name; folders created), as ``python -m nst_tf.download --weights choice`` does; ``python -m nst_tf --download``
    calls it. Progress and the "saved" line go to ``stream`` (default standard error). Returns ``destination``;
    raises ``NSTError`` as ``download`` does."""
    sources, name, algorithm, known, ceiling = _defaults(choice)
    destination = destination or os.path.join(download_folder(), name)
    cached = os.path.join(keras_cache_dir(), KERAS_WEIGHTS_FILE) if choice == "keras" else None
    console = Console(stream or sys.stderr)
    digest, origin = _download(sources, destination, known, console, None, ceiling, None, algorithm, cached)
    console.note(f"saved {destination} ({HASH_NAMES[algorithm]} {digest}, {known[digest]}{_origin(origin, sources)})")
    return destination


def _origin(origin, sources):
    """What the "saved" line adds about where the file came from: nothing for the first address."""
    if origin == sources[0]:
        return ""
    return f", from {origin}" if "://" in origin else f", copied from {origin}"  # Keras' cached copy: a path


def main(argv=None):
    """Runs the command on ``argv`` (default: ``sys.argv[1:]``); returns 0 when the file is saved, 2 on an error
    (one line), or 128 plus the signal's number after Ctrl-C, SIGTERM or SIGHUP (the partial file kept)."""
    console = Console(sys.stderr)
    try:
        args = build_parser().parse_args(argv)
    except NSTError as error:
        console.note(f"error: {error}")
        return 2
    sources, output, algorithm, known, ceiling = _choice(args)
    # The destination cannot exist yet (checked first): if it does after a signal, this run saved it.
    existed = os.path.lexists(output)
    cached = os.path.join(keras_cache_dir(), KERAS_WEIGHTS_FILE) if args.weights == "keras" else None
    try:
        with stopping_on_signals():
            digest, origin = _download(sources, output, known, console, None, ceiling, None, algorithm, cached)
            where = _origin(origin, sources)
            sys.stdout.write(f"saved {output} ({HASH_NAMES[algorithm]} {digest}, {known[digest]}{where})\n")
            sys.stdout.flush()
    except NSTError as error:
        console.note(f"error: {error}")
        return 2
    except (Stopped, KeyboardInterrupt) as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        console.note(_interrupted(output, signum, saved=not existed and os.path.lexists(output)))
        return 128 + signum
    return 0


def _interrupted(output, signum, saved=False):
    """The one line after a signal: what is kept for the next run, or that the file was saved already."""
    name = {signal.SIGINT: "Ctrl-C (SIGINT)"}.get(signum) or signal.Signals(signum).name
    if saved:
        return f"interrupted by {name} once the file was saved as {quoted(output)}"
    return f"interrupted by {name}{kept(output) or '; nothing was saved'}"

"""The downloader's command and functions, re-exported by ``nst_tf.download`` (see its docstring)."""

import argparse
import os
import re
import signal
import sys
from pathlib import Path

from ..ground.errors import NSTError, quoted
from ..plan.config import CONFIG, KERAS_VGG_MODEL
from . import __all__  # noqa: E402, F401  (the public names, listed once, in the package)
from .console import Console, Interrupted, stopping_on_signals
from .fetch import HASH_NAMES, Fetch, Target, size_text
from .partial import Partial, partial_paths
from .transfer import DownloadError, Policy, check_url

#: The command's description in its help.
DESCRIPTION = "Fetch the network weights nst_tf reads (VGG-19's or SqueezeNet's) and verify them."

KERAS_WEIGHTS_FILE = os.path.basename(KERAS_VGG_MODEL)

URL = "https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat"

#: Where the .mat is downloaded from, in order: MatConvNet's own address (no mirror is known; see
#: pretrained-model/README.md on adding one: each is checked by the full MD5 sum).
MAT_SOURCES = (URL,)

#: MD5 sums of the two layouts MatConvNet has published (see pretrained-model/README.md).
KNOWN_MD5 = {
    "106118b7cf60435e6d8e04f6a6dc3657": "new layout",
    "8ee3263992981a1d26e73b3ca028a123": "old layout",
}

KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_WEIGHTS_FILE

#: Where Keras' file is downloaded from, in order: Keras' address, then the GitHub release Keras used before
#: (fchollet/deep-learning-models v0.1, named in pretrained-model/README.md), which Keras checked against the same sum.
KERAS_MIRROR = "https://github.com/fchollet/deep-learning-models/releases/download/v0.1/" + KERAS_WEIGHTS_FILE
KERAS_SOURCES = (KERAS_URL, KERAS_MIRROR)

#: MD5 sum Keras itself checks the file against (keras.applications.vgg19).
KERAS_KNOWN_MD5 = {"253f8cb515780f3b799900260a226db6": "Keras VGG19 without the top"}

#: Where ``--weights squeezenet`` saves torchvision's SqueezeNet 1.1 weights, CS231n's presets' default ``--model``.
#: The same as ``nst_tf.runs.presets.SQUEEZENET_MODEL`` (tests/test_download.py checks it), written out here because
#: importing ``nst_tf.runs.presets`` loads Pillow, the networks and the tiling modules, which the downloader never uses,
#: into its start-up (some 30-40 ms more, measured with ``python -X importtime -m nst_tf.download -h``).
SQUEEZENET_MODEL = "pretrained-model/squeezenet1_1-b8a52dc0.pth"

#: torchvision's own address for the file (``torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1``).
SQUEEZENET_URL = "https://download.pytorch.org/models/" + os.path.basename(SQUEEZENET_MODEL)

#: Where the SqueezeNet file is downloaded from: torchvision's address only (no mirror is known; one added here,
#: or given with --url, is checked by the full SHA-256 like the official address).
SQUEEZENET_SOURCES = (SQUEEZENET_URL,)

#: torchvision's own check: the name's "b8a52dc0" is the first 8 hexadecimal digits of the file's SHA-256, which
#: ``torch.hub.download_url_to_file(url, dst, hash_prefix)`` compares after a download (torchvision publishes no
#: more of it).
SQUEEZENET_HASH_PREFIX = "b8a52dc0"

#: The file's full SHA-256, which nst_tf checks: not published by PyTorch, but by projects outside it that pin the
#: file (several, independently, agreeing with each other and with torchvision's prefix above).
SQUEEZENET_KNOWN_SHA256 = {
    "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b": "torchvision's SqueezeNet 1.1",
}

#: Size in bytes of the file of each known sum; None (or absent, as SqueezeNet's) where nst_tf does not record
#: it: the ceiling bounds those. Keras' file: 80134624 bytes, the size Keras' own download reports
#: ("80134624/80134624").
KNOWN_SIZES = {
    "106118b7cf60435e6d8e04f6a6dc3657": None,
    "8ee3263992981a1d26e73b3ca028a123": None,
    "253f8cb515780f3b799900260a226db6": 80134624,
}

#: The most bytes accepted while a file's size is unknown: the .mat is about 510 MB, Keras' file about 80 MB,
#: SqueezeNet's about 4.97 MB.
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

    Args:
        url: an address (http://, https:// or file://), or several, tried in order.
        destination: the file to create; it must not exist.
        known_md5: the accepted sums (hexadecimal digests by ``algorithm``), each with a description.
        stream: where progress and notes go (default: standard error).
        sizes: the size of the file of each sum (default: ``KNOWN_SIZES``; None: unknown).
        ceiling: the most bytes accepted while the size is unknown.
        policy: retries, delays, timeout and chunk size (default: ``Policy()``).
        algorithm: the hash, "md5" or "sha256".

    Returns:
        The file's hexadecimal digest by ``algorithm``.

    Raises:
        NSTError: a bad address or destination (before anything is
            created), or every address failed (one line, saying what is
            kept for the next run). A ``KeyboardInterrupt`` keeps the
            partial file and its record.
        ValueError: an ``algorithm`` other than "md5" and "sha256" (before anything is created).
    """
    return _download(url, destination, known_md5, stream, sizes, ceiling, policy, algorithm=algorithm)[0]


def fetch_squeezenet_weights(
    url=SQUEEZENET_SOURCES,
    destination=SQUEEZENET_MODEL,
    known_sha256=None,
    stream=None,
    *,
    ceiling=SQUEEZENET_CEILING,
    policy=None,
):
    """Downloads torchvision's SqueezeNet 1.1 weights to ``destination`` and checks their SHA-256.

    Args:
        url: the address, or several, tried in order (default: ``SQUEEZENET_SOURCES``).
        destination: the file to create; it must not exist.
        known_sha256: the accepted SHA-256 sums, each with a description (default: ``SQUEEZENET_KNOWN_SHA256``).
        stream: where progress and notes go (default: standard error).
        ceiling: the most bytes accepted while the size is unknown (it is not recorded).
        policy: as ``download`` takes it.

    Returns:
        (the file's SHA-256, the address it came from).

    Raises:
        NSTError: as ``download`` does.
    """
    known = SQUEEZENET_KNOWN_SHA256 if known_sha256 is None else known_sha256
    return _download(url, destination, known, stream, None, ceiling, policy, algorithm="sha256")


def _download(url, destination, known_md5, stream, sizes, ceiling, policy, partial=None, *, algorithm="md5"):
    """``download``, returning (the file's digest by ``algorithm``, the address the file came from)."""
    sources = [url] if isinstance(url, str) else list(url)
    if not sources:
        raise NSTError("no address to download from")
    for source in sources:
        check_url(source)
    if sizes is None:
        sizes = {digest: KNOWN_SIZES.get(digest) for digest in known_md5}
    name = os.path.basename(os.fspath(destination))
    target = Target(name, dict(known_md5), dict(sizes), ceiling, algorithm)  # refuses an unknown algorithm first
    partial = partial or Partial(destination)
    partial.load()
    console = Console.of(stream or sys.stderr)
    try:
        return Fetch(partial, target, policy or Policy(), console).run(sources)
    finally:
        console.end_line()


def keras_cache_dir():
    """The folder where Keras caches application weights, found as Keras finds it.

    Returns:
        ``$KERAS_HOME/models`` when KERAS_HOME is set; otherwise
        ``~/.keras/models``, or ``/tmp/.keras/models`` when the home folder
        is not writable.
    """
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
    """Keras' VGG19 weights at ``destination``: copied from Keras' cache if a good copy is there, else downloaded.

    Args:
        url: the address, or several, to download from when the cache has no good copy.
        destination: the file to create; it must not exist.
        known_md5: the accepted sums (MD5 unless ``algorithm`` says otherwise), each with a description.
        stream: where progress and notes go (default: standard error).
        cache_dir: Keras' cache folder (default: ``keras_cache_dir()``).
        sizes, ceiling, policy, algorithm: as ``download`` takes them.

    Returns:
        (the file's digest, MD5 by default; where the file came from: the cached file or the address).

    Raises:
        NSTError: as ``download`` does. A cached copy with an unknown sum
            is left alone, said in one line, and the file downloaded.
    """
    stream = Console.of(stream or sys.stderr)
    for source in [url] if isinstance(url, str) else list(url):
        check_url(source)
    partial = Partial(destination)  # refuses a bad destination before the cache is tried
    cached = os.path.join(cache_dir or keras_cache_dir(), KERAS_WEIGHTS_FILE)
    if os.path.isfile(cached):
        stream.line(f"found Keras' cached copy {quoted(cached)}; copying it")
        uri = Path(os.path.abspath(cached)).as_uri()
        try:
            found = _download(uri, destination, known_md5, stream, sizes, ceiling, policy, partial, algorithm=algorithm)
            return found[0], cached
        except DownloadError as error:
            stream.line(f"not using the cached copy: {error}")
    return _download(url, destination, known_md5, stream, sizes, ceiling, policy, partial, algorithm=algorithm)


#: How the sums of each algorithm are written: (hexadecimal digits, the words in messages).
_SUMS = {"md5": (32, "an MD5 sum"), "sha256": (64, "a SHA-256 sum")}


def _sum_of(algorithm):
    """The ``type`` of ``--md5`` or ``--sha256``: a sum of ``algorithm``, in lower case.

    Args:
        algorithm: "md5" or "sha256".

    Returns:
        A function of the option's text that raises ``argparse.ArgumentTypeError`` for anything else
        (naming the other option when the text is a sum of the other length).
    """
    other = "sha256" if algorithm == "md5" else "md5"
    (digits, words), (other_digits, other_words) = _SUMS[algorithm], _SUMS[other]

    def parse(text):
        if re.fullmatch(f"[0-9a-fA-F]{{{digits}}}", text):
            return text.lower()
        hint = f"; {other_words} goes with --{other}" if re.fullmatch(f"[0-9a-fA-F]{{{other_digits}}}", text) else ""
        raise argparse.ArgumentTypeError(f"{text!r} is not {words} ({digits} hexadecimal digits){hint}")

    return parse


def _byte_count(text):
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (a number of bytes, or with K, M or G)")
    return int(match[1]) << {"": 0, "K": 10, "M": 20, "G": 30}[match[2].upper()]


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """A wrong option is one line, as every other failure: ``main`` prints it and returns 2."""
        raise NSTError(message)


def build_parser():
    """The command's options.

    Returns:
        An ``argparse.ArgumentParser``.
    """
    parser = _Parser(prog="python -m nst_tf.download", description=DESCRIPTION)
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
    parser.add_argument(
        "--output",
        help=f"where to save (default: {CONFIG.VGG_MODEL}, {KERAS_VGG_MODEL} for keras, or {SQUEEZENET_MODEL} "
        "for squeezenet)",
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


def _choice(args):
    """What ``args`` ask for, each the option's value or the weights' default (read now, so tests can patch them).

    Args:
        args: the parsed options.

    Returns:
        (addresses, destination, hash algorithm, accepted sums with their descriptions, ceiling).
    """
    sources, output, algorithm, known, ceiling = {
        "mat": (MAT_SOURCES, CONFIG.VGG_MODEL, "md5", KNOWN_MD5, MAT_CEILING),
        "keras": (KERAS_SOURCES, KERAS_VGG_MODEL, "md5", KERAS_KNOWN_MD5, KERAS_CEILING),
        "squeezenet": (SQUEEZENET_SOURCES, SQUEEZENET_MODEL, "sha256", SQUEEZENET_KNOWN_SHA256, SQUEEZENET_CEILING),
    }[args.weights]
    given = args.sha256 or args.md5
    if given:
        algorithm = "sha256" if args.sha256 else "md5"
        known = {digest: f"the sum given with --{algorithm}" for digest in given}
    return args.url or sources, args.output or output, algorithm, known, args.max_size or ceiling


def main(argv=None):
    """Runs the command.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        0 when the file is saved; 2 on an error (one line on standard
        error); 128 plus the signal's number after Ctrl-C, SIGTERM or
        SIGHUP, the partial file kept for the next run.
    """
    try:
        args = build_parser().parse_args(argv)
    except NSTError as error:
        Console(sys.stderr).note(f"error: {error}")
        return 2
    sources, output, algorithm, known, ceiling = _choice(args)
    console = Console(sys.stderr)
    # The destination must not exist (checked before anything is created): if it does after a
    # signal, this run saved it.
    existed = os.path.lexists(output)
    try:
        with stopping_on_signals():
            if args.weights == "keras":
                digest, origin = fetch_keras_weights(
                    sources, output, known, console, ceiling=ceiling, algorithm=algorithm
                )
            else:
                digest, origin = _download(sources, output, known, console, None, ceiling, None, algorithm=algorithm)
            where = ""
            if origin != sources[0]:  # Keras' cached copy (a path), or an address after the first
                where = f", from {origin}" if "://" in origin else f", copied from {origin}"
            sys.stdout.write(f"saved {output} ({HASH_NAMES[algorithm]} {digest}, {known[digest]}{where})\n")
            sys.stdout.flush()
    except NSTError as error:
        console.note(f"error: {error}")
        return 2
    except (Interrupted, KeyboardInterrupt) as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        console.note(_interrupted(output, signum, saved=not existed and os.path.lexists(output)))
        return 128 + signum
    return 0


def _interrupted(output, signum, saved=False):
    """The one line after a signal: what is kept for the next run, or that the file was saved already."""
    name = {signal.SIGINT: "Ctrl-C (SIGINT)"}.get(signum) or signal.Signals(signum).name
    if saved:
        return f"interrupted by {name} once the file was saved as {quoted(output)}"
    path, record = partial_paths(output)
    try:
        size = os.lstat(path).st_size if os.path.lexists(record) else 0
    except OSError:
        size = 0
    if not size:
        return f"interrupted by {name}; nothing was saved"
    return f"interrupted by {name}; {size} bytes are kept in {quoted(path)}: run the same command again to resume"

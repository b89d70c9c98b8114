"""The downloader's command and functions, re-exported by ``nst_tf.download`` (see its docstring)."""

import argparse
import os
import re
import signal
import sys
from pathlib import Path

from ..config import CONFIG, KERAS_VGG_MODEL
from ..errors import NSTError, quoted
from .console import Console, Interrupted, stopping_on_signals
from .fetch import Fetch, Target, size_text
from .partial import Partial, partial_paths
from .transfer import DownloadError, Policy, check_url

__all__ = [
    "CHUNK",
    "KERAS_CEILING",
    "KERAS_KNOWN_MD5",
    "KERAS_MIRROR",
    "KERAS_SOURCES",
    "KERAS_URL",
    "KNOWN_MD5",
    "KNOWN_SIZES",
    "MAT_CEILING",
    "MAT_SOURCES",
    "URL",
    "DownloadError",
    "Policy",
    "download",
    "fetch_keras_weights",
    "keras_cache_dir",
    "main",
    "partial_paths",
]

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

#: Size in bytes of the file of each known sum; None where nst_tf does not record it (the ceiling bounds those).
#: Keras' file: 80134624 bytes, the size Keras' own download reports ("80134624/80134624").
KNOWN_SIZES = {
    "106118b7cf60435e6d8e04f6a6dc3657": None,
    "8ee3263992981a1d26e73b3ca028a123": None,
    "253f8cb515780f3b799900260a226db6": 80134624,
}

#: The most bytes accepted while a file's size is unknown: the .mat is about 510 MB, Keras' file about 80 MB.
MAT_CEILING = 1 << 30
KERAS_CEILING = 100 << 20

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
):
    """Downloads ``url`` to ``destination`` and checks its MD5 against ``known_md5``.

    Args:
        url: an address (http://, https:// or file://), or several, tried in order.
        destination: the file to create; it must not exist.
        known_md5: the accepted MD5 sums, each with a description.
        stream: where progress and notes go (default: standard error).
        sizes: the size of the file of each sum (default: ``KNOWN_SIZES``; None: unknown).
        ceiling: the most bytes accepted while the size is unknown.
        policy: retries, delays, timeout and chunk size (default: ``Policy()``).

    Returns:
        The MD5 sum.

    Raises:
        NSTError: a bad address or destination (before anything is
            created), or every address failed (one line, saying what is
            kept for the next run). A ``KeyboardInterrupt`` keeps the
            partial file and its record.
    """
    return _download(url, destination, known_md5, stream, sizes, ceiling, policy)[0]


def _download(url, destination, known_md5, stream, sizes, ceiling, policy, partial=None):
    """``download``, returning (MD5 sum, the address the file came from)."""
    sources = [url] if isinstance(url, str) else list(url)
    if not sources:
        raise NSTError("no address to download from")
    for source in sources:
        check_url(source)
    partial = partial or Partial(destination)
    partial.load()
    if sizes is None:
        sizes = {md5: KNOWN_SIZES.get(md5) for md5 in known_md5}
    target = Target(os.path.basename(partial.destination), dict(known_md5), dict(sizes), ceiling)
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
):
    """Keras' VGG19 weights at ``destination``: copied from Keras' cache if a good copy is there, else downloaded.

    Args:
        url: the address, or several, to download from when the cache has no good copy.
        destination: the file to create; it must not exist.
        known_md5: the accepted MD5 sums, each with a description.
        stream: where progress and notes go (default: standard error).
        cache_dir: Keras' cache folder (default: ``keras_cache_dir()``).
        sizes, ceiling, policy: as ``download`` takes them.

    Returns:
        (MD5 sum, where the file came from: the cached file or the address).

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
            return _download(uri, destination, known_md5, stream, sizes, ceiling, policy, partial)[0], cached
        except DownloadError as error:
            stream.line(f"not using the cached copy: {error}")
    return _download(url, destination, known_md5, stream, sizes, ceiling, policy, partial)


def _md5_sum(text):
    if not re.fullmatch(r"[0-9a-fA-F]{32}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an MD5 sum (32 hexadecimal digits)")
    return text.lower()


def _byte_count(text):
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (a number of bytes, or with K, M or G)")
    return int(match[1]) << {"": 0, "K": 10, "M": 20, "G": 30}[match[2].upper()]


def build_parser():
    """The command's options.

    Returns:
        An ``argparse.ArgumentParser``.
    """
    parser = argparse.ArgumentParser(prog="python -m nst_tf.download", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        choices=("mat", "keras"),
        default="mat",
        help="mat: MatConvNet's imagenet-vgg-verydeep-19.mat (the course's); keras: Keras' "
        f"{KERAS_WEIGHTS_FILE}, taken from Keras' cache when there (default: %(default)s)",
    )
    parser.add_argument(
        "--url",
        action="append",
        help="where to download from; repeat it to try several addresses in order, each checked by the full MD5 "
        f"sum (default: {URL}; for keras: {KERAS_URL}, then the copy {KERAS_MIRROR})",
    )
    parser.add_argument("--output", help=f"where to save (default: {CONFIG.VGG_MODEL}, or {KERAS_VGG_MODEL} for keras)")
    parser.add_argument(
        "--md5",
        action="append",
        type=_md5_sum,
        help="accept a file with this MD5 sum instead of the known ones (a copy of your own); repeatable",
    )
    parser.add_argument(
        "--max-size",
        type=_byte_count,
        help="the most bytes to accept while the file's size is not recorded, e.g. 600M "
        f"(default: {size_text(MAT_CEILING)}, or {size_text(KERAS_CEILING)} for keras)",
    )
    return parser


def main(argv=None):
    """Runs the command.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        0 when the file is saved; 2 on an error (one line on standard
        error); 128 plus the signal's number after Ctrl-C, SIGTERM or
        SIGHUP, the partial file kept for the next run.
    """
    args = build_parser().parse_args(argv)
    keras = args.weights == "keras"
    sources = args.url or (KERAS_SOURCES if keras else MAT_SOURCES)
    output = args.output or (KERAS_VGG_MODEL if keras else CONFIG.VGG_MODEL)
    known_md5 = {md5: "the sum given with --md5" for md5 in args.md5} if args.md5 else None
    known_md5 = known_md5 or (KERAS_KNOWN_MD5 if keras else KNOWN_MD5)
    ceiling = args.max_size or (KERAS_CEILING if keras else MAT_CEILING)
    console = Console(sys.stderr)
    # The destination must not exist (checked before anything is created): if it does after a
    # signal, this run saved it.
    existed = os.path.lexists(output)
    try:
        with stopping_on_signals():
            if keras:
                md5, origin = fetch_keras_weights(sources, output, known_md5, console, ceiling=ceiling)
            else:
                md5, origin = _download(sources, output, known_md5, console, None, ceiling, None)
            where = ""
            if origin != sources[0]:  # Keras' cached copy (a path), or an address after the first
                where = f", from {origin}" if "://" in origin else f", copied from {origin}"
            sys.stdout.write(f"saved {output} (MD5 {md5}, {known_md5[md5]}{where})\n")
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

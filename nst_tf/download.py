"""``python -m nst_tf.download``: fetch the VGG-19 weights and verify them.

``--weights mat`` (the default): MatConvNet's imagenet-vgg-verydeep-19.mat,
the course's first edition. ``--weights keras``: Keras'
vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, the second edition's,
copied from Keras' own cache (``$KERAS_HOME/models`` or ``~/.keras/models``)
when a good copy is there, downloaded from Keras' address otherwise.

For users with internet access; the tests never download. The file is
written under a ``.part`` name and renamed only once its MD5 sum is a known
one, so a broken download never looks like a model. An existing file is
never replaced.
"""

import argparse
import hashlib
import os
import sys
import time
import urllib.request
from pathlib import Path

from .config import CONFIG
from .errors import NSTError
from .weights.keras import KERAS_VGG_MODEL, KERAS_WEIGHTS_FILE

URL = "https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat"

#: MD5 sums of the two layouts MatConvNet has published (see pretrained-model/README.md).
KNOWN_MD5 = {
    "106118b7cf60435e6d8e04f6a6dc3657": "new layout",
    "8ee3263992981a1d26e73b3ca028a123": "old layout",
}

KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_WEIGHTS_FILE

#: MD5 sum Keras itself checks the file against (keras.applications.vgg19).
KERAS_KNOWN_MD5 = {"253f8cb515780f3b799900260a226db6": "Keras VGG19 without the top"}

CHUNK = 1 << 20


def _progress(done, total, start, stream):
    elapsed = max(time.monotonic() - start, 1e-9)
    rate = done / elapsed
    if total:
        eta = (total - done) / rate if rate else 0
        stream.write(f"\r{done / 2**20:7.1f} / {total / 2**20:.1f} MiB  {rate / 2**20:5.1f} MiB/s  ETA {eta:4.0f}s")
    else:
        stream.write(f"\r{done / 2**20:7.1f} MiB  {rate / 2**20:5.1f} MiB/s")
    stream.flush()


def download(url=URL, destination=CONFIG.VGG_MODEL, known_md5=KNOWN_MD5, stream=None):
    """Downloads ``url`` to ``destination`` and checks its MD5 against ``known_md5``.

    Returns the MD5 sum. Raises ``NSTError`` if the destination exists, the
    download fails, or the sum is unknown (the partial file is removed).
    Progress goes to ``stream`` (default: standard error).
    """
    stream = stream or sys.stderr
    if os.path.exists(destination):
        raise NSTError(f"{destination} exists; remove it first to download again")
    os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)
    partial = destination + ".part"
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url) as response, open(partial, "wb") as handle:
            total = int(response.headers.get("Content-Length") or 0)
            done, start = 0, time.monotonic()
            for block in iter(lambda: response.read(CHUNK), b""):
                handle.write(block)
                digest.update(block)
                done += len(block)
                _progress(done, total, start, stream)
        stream.write("\n")
    except OSError as error:
        _remove(partial)
        raise NSTError(f"download of {url} failed: {getattr(error, 'reason', None) or error}") from None
    except BaseException:
        _remove(partial)
        raise
    md5 = digest.hexdigest()
    if md5 not in known_md5:
        _remove(partial)
        raise NSTError(f"downloaded file has MD5 {md5}, expected {' or '.join(known_md5)}; nothing was saved")
    os.replace(partial, destination)
    return md5


def _remove(path):
    if os.path.exists(path):
        os.remove(path)


def keras_cache_dir():
    """The folder where Keras caches application weights, found as Keras finds it.

    ``$KERAS_HOME/models`` when KERAS_HOME is set; otherwise
    ``~/.keras/models``, or ``/tmp/.keras/models`` when the home folder is not
    writable.
    """
    if "KERAS_HOME" in os.environ:
        base = os.environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    return os.path.join(os.path.expanduser(base), "models")


def fetch_keras_weights(
    url=KERAS_URL, destination=KERAS_VGG_MODEL, known_md5=KERAS_KNOWN_MD5, stream=None, cache_dir=None
):
    """Keras' VGG19 weights at ``destination``: copied from Keras' cache if a good copy is there, else downloaded.

    The cached file (``KERAS_WEIGHTS_FILE`` in ``cache_dir``, default
    ``keras_cache_dir()``) goes through the same ``.part`` copy and MD5 check
    as a download; one with an unknown sum is left alone and the file is
    downloaded from ``url``. Returns (MD5 sum, where the file came from).
    Raises ``NSTError`` as ``download`` does.
    """
    stream = stream or sys.stderr
    if os.path.exists(destination):
        raise NSTError(f"{destination} exists; remove it first to download again")
    cached = os.path.join(cache_dir or keras_cache_dir(), KERAS_WEIGHTS_FILE)
    if os.path.isfile(cached):
        stream.write(f"found Keras' cached copy {cached!r}; copying it\n")
        try:
            return download(Path(os.path.abspath(cached)).as_uri(), destination, known_md5, stream), cached
        except NSTError as error:
            stream.write(f"not using the cached copy: {error}\n")
    return download(url, destination, known_md5, stream), url


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nst_tf.download", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        choices=("mat", "keras"),
        default="mat",
        help="mat: MatConvNet's imagenet-vgg-verydeep-19.mat (the course's); keras: Keras' "
        f"{KERAS_WEIGHTS_FILE}, taken from Keras' cache when there (default: %(default)s)",
    )
    parser.add_argument("--url", help=f"where to download from (default: {URL}, or {KERAS_URL} for keras)")
    parser.add_argument("--output", help=f"where to save (default: {CONFIG.VGG_MODEL}, or {KERAS_VGG_MODEL} for keras)")
    args = parser.parse_args(argv)
    keras = args.weights == "keras"
    url = args.url or (KERAS_URL if keras else URL)
    output = args.output or (KERAS_VGG_MODEL if keras else CONFIG.VGG_MODEL)
    known_md5 = KERAS_KNOWN_MD5 if keras else KNOWN_MD5
    try:
        if keras:
            md5, origin = fetch_keras_weights(url, output, known_md5)
        else:
            md5, origin = download(url, output, known_md5), url
    except NSTError as error:
        sys.stderr.write(f"nst-tf download: error: {error}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\nnst-tf download: interrupted; nothing was saved\n")
        return 130
    copied = f", copied from {origin}" if origin != url else ""
    sys.stdout.write(f"saved {output} (MD5 {md5}, {known_md5[md5]}{copied})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m nst_tf.download``: fetch imagenet-vgg-verydeep-19.mat and verify it.

For users with internet access; the tests never download. The file is
written under a ``.part`` name and renamed only once its MD5 sum matches one
of the two published layouts, so a broken download never looks like a model.
An existing file is never replaced.
"""

import argparse
import hashlib
import os
import sys
import time
import urllib.request

from .config import CONFIG
from .errors import NSTError

URL = "https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat"

#: MD5 sums of the two layouts MatConvNet has published (see pretrained-model/README.md).
KNOWN_MD5 = {
    "106118b7cf60435e6d8e04f6a6dc3657": "new layout",
    "8ee3263992981a1d26e73b3ca028a123": "old layout",
}

CHUNK = 1 << 20


def md5sum(path):
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


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
        raise NSTError(f"downloaded file has MD5 {md5}, which is neither known layout; nothing was saved")
    os.replace(partial, destination)
    return md5


def _remove(path):
    if os.path.exists(path):
        os.remove(path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nst_tf.download", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=URL, help="where to download from (default: %(default)s)")
    parser.add_argument("--output", default=CONFIG.VGG_MODEL, help="where to save (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        md5 = download(args.url, args.output)
    except NSTError as error:
        sys.stderr.write(f"nst-tf download: error: {error}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\nnst-tf download: interrupted; nothing was saved\n")
        return 130
    sys.stdout.write(f"saved {args.output} (MD5 {md5}, {KNOWN_MD5[md5]})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

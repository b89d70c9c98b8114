"""``python -m nst_tf.web``: a local web page to stylize a photo with one or more paintings and watch it form
(``pip install "nst_tf[web]"``)."""

import argparse
import asyncio
import os
import sys

from ..ground.checks import check_whole
from ..ground.errors import NSTError
from ..ground.parsing import CommandParser
from ..ground.statuses import EXIT_BAD_INPUT, EXIT_OK
from ..plan.locations import PRETRAINED_DIR, weights_home
from .settings import Limits

PROG = "python -m nst_tf.web"

DESCRIPTION = f"""A local web page: upload a photo and a painting, watch the picture form, stop, download.
Needs aiohttp: pip install "nst_tf[web]".

examples:
  {PROG}                      the page at http://127.0.0.1:8000/ (this machine only)
  {PROG} --port 8080 --queue 8
  {PROG} --max-upload-mb 5    options take dashes or underscores alike
  {PROG} --host 0.0.0.0       on every interface: anyone who can reach this machine can use it
                                    (for trusted networks only: any Host header is then accepted)

The page: a content photo (the first file input) and one or more style images (the second), or the
bundled ones; a preset, the size (the result's longer side), iterations, alpha and beta (content and
style weights), colour preservation and the seed; Start, Stop and Download. Runs queue and run one at
a time. The weights are found as python -m nst_tf finds them: {PRETRAINED_DIR}/ in the current
folder, then $NST_TF_HOME (now {weights_home()}). Ctrl-C or SIGTERM stops the running optimization
within 3 seconds and removes every upload and result.
"""


#: The limits' options: (name, type, default, metavar, help); ``_limits`` turns them into ``Limits``.
_LIMIT_OPTIONS = (
    ("queue", int, Limits.queue, "N", "runs that may wait at once (default: %(default)s)"),
    (
        "max_upload_mb",
        float,
        Limits.upload_bytes / 2**20,
        "MB",
        "largest file a form may upload, in MB (default: %(default)g)",
    ),
    ("max_pixels", int, Limits.upload_pixels, "N", "most pixels an uploaded image may have (default: %(default)s)"),
    ("max_size", int, Limits.max_size, "N", "largest result side (default: %(default)s)"),
    ("max_iterations", int, Limits.iterations, "N", "most iterations a run may have (default: %(default)s)"),
)


def build_parser():
    """The command's options."""
    parser = CommandParser(
        prog=PROG,
        usage=f"{PROG} [-h] [--host HOST] [--port PORT] [--queue N] [--max_upload_mb MB] ...",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000; 0: any free one)")
    for name, kind, default, metavar, text in _LIMIT_OPTIONS:
        parser.add_argument(f"--{name}", type=kind, default=default, metavar=metavar, help=text)
    return parser


def _limits(args):
    """The options as ``Limits``; ``NSTError`` for one out of range."""
    for name in ("queue", "max_pixels", "max_size", "max_iterations"):
        check_whole(f"--{name}", getattr(args, name))
    if not 0 < args.max_upload_mb <= 1024:
        raise NSTError(f"--max_upload_mb must be above 0 and at most 1024; got {args.max_upload_mb:g}")
    check_whole("--port", args.port, least=0, most=65535)
    return Limits(
        upload_bytes=int(args.max_upload_mb * 2**20),
        upload_pixels=args.max_pixels,
        max_size=max(32, args.max_size),
        iterations=args.max_iterations,
        queue=args.queue,
    )


def main(argv=None, out=None, err=None):
    """Runs the command; returns its exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        args = build_parser().parse_args(argv)
        limits = _limits(args)
        from .serve import serve
    except NSTError as error:
        err.write(f"{PROG}: error: {error}\n")
        return EXIT_BAD_INPUT
    except ImportError as error:
        err.write(f'{PROG}: error: the web page needs {error.name}: pip install "nst_tf[web]"\n')
        return EXIT_BAD_INPUT
    try:
        ended = asyncio.run(serve(args.host, args.port, limits, out, err))
    except OSError as error:
        err.write(f"{PROG}: error: cannot listen on {args.host}:{args.port}: {error.strerror or error}\n")
        return EXIT_BAD_INPUT
    if not ended:
        err.write(f"{PROG}: note: the optimization was inside a traced call still; it ends with the process\n")
    return EXIT_OK


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is removed by now: TensorFlow's own teardown (seconds) is skipped, so that a stop takes under 3 s.
    os._exit(status)

"""``python -m nst_tf`` and the ``nst-tf`` command.

The first thing it does is make a signal end it with one line and status
128 + the signal's number, until the command installs its own handlers
(``nst_tf.jobs.signals``) once its modules are loaded; nothing is created
before then. Only the interpreter's own start-up, before this file runs
(tens of milliseconds), is outside that.
"""

import os
import signal
import sys


def _stop(signum, frame):
    sys.stderr.write("\nnst-tf: interrupted\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def run():
    """Runs the command; returns its exit status."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stop)
    from .cli import main

    return main()


if __name__ == "__main__":
    raise SystemExit(run())

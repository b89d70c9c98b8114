"""What a download tells its user: a progress line (redrawn in place on a terminal), and messages of one line each."""

import contextlib
import time

from ..app.signals import Stopped, handling_signals

PROG = "nst-tf download"


class Console:
    """Writes a progress line and whole lines to ``stream``.

    On a terminal the progress line is redrawn in place (``\\r``) at most every ``interval`` seconds; on a pipe
    or in a file it is a line of its own at most every ``pipe_interval`` seconds, and at the end. A message after
    progress starts on a line of its own. Writing never raises ``OSError`` (the terminal may be gone after SIGHUP).
    """

    pipe_interval = 10.0

    def __init__(self, stream, interval=0.25):
        self.stream, self.interval = stream, interval
        self._drawn = self._start = None
        self._width = 0  # of the progress line drawn on the terminal; 0: the cursor is at a line's start
        try:
            self._tty = stream.isatty()
        except (AttributeError, ValueError, OSError):
            self._tty = False

    def begin(self, done):
        """Starts timing (for the rate) a transfer that already has ``done`` bytes."""
        self._start = (time.monotonic(), done)

    def progress(self, done, total, final=False):
        """Draws ``done`` bytes of ``total`` (or None), unless drawn less than ``interval`` (``pipe_interval``) ago
        and not ``final``."""
        now = time.monotonic()
        wait = self.interval if self._tty else self.pipe_interval
        if not final and self._drawn is not None and now - self._drawn < wait:
            return
        self._drawn = now
        started, before = self._start or (now, done)
        rate = (done - before) / max(now - started, 1e-9)
        if total:
            eta = (total - done) / rate if rate > 0 else 0
            text = f"{done / 2**20:7.1f} / {total / 2**20:.1f} MiB  {rate / 2**20:5.1f} MiB/s  ETA {eta:4.0f}s"
        else:
            text = f"{done / 2**20:7.1f} MiB  {rate / 2**20:5.1f} MiB/s"
        if not self._tty:
            return self._write(text + "\n")
        self._write("\r" + text + " " * (self._width - len(text)))  # spaces over a longer line before it
        self._width = max(self._width, len(text))

    def end_line(self):
        """Ends the progress line, if one is drawn."""
        if self._width:
            self._write("\n")
            self._width = 0

    def line(self, text):
        """Writes ``text`` (without its newline) as a line of its own."""
        self.end_line()
        self._write(text + "\n")

    def note(self, text):
        """Writes ``text`` as one line after the program's name."""
        self.line(f"{PROG}: {text}")

    def _write(self, text):
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(text)
            self.stream.flush()


@contextlib.contextmanager
def stopping_on_signals():
    """Turns the first SIGINT, SIGTERM or SIGHUP in the block into ``Stopped`` (later ones are ignored), in the
    main thread only; the old handlers come back after the block."""
    received = []

    def handler(signum, frame):
        if not received:
            received.append(signum)
            raise Stopped(signum)

    with handling_signals(handler):
        yield

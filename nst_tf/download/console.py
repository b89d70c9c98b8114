"""What a download tells its user: a progress line (redrawn in place on a terminal), and messages of one line each."""

import contextlib
import time

from ..app.signals import handling_signals

PROG = "nst-tf download"


class Console:
    """Writes to ``stream``: a progress line and whole lines.

    On a terminal the progress line is redrawn in place (``\\r``) at most
    every ``interval`` seconds; on a pipe or in a file it is a line of its
    own at most every ``pipe_interval`` seconds, and at the end. A message
    after progress starts on a line of its own. Writing never raises
    ``OSError`` (the terminal may be gone after SIGHUP).

    Attributes:
        stream: a text stream.
        interval: the least time between two progress redraws on a terminal, in seconds.
    """

    pipe_interval = 10.0

    def __init__(self, stream, interval=0.25):
        self.stream = stream
        self.interval = interval
        self._at_line_start = True
        self._drawn = None
        self._start = None
        self._width = 0
        try:
            self._tty = stream.isatty()
        except (AttributeError, ValueError, OSError):
            self._tty = False

    @classmethod
    def of(cls, stream):
        """``stream`` if it is a ``Console``, else a ``Console`` writing to it.

        Args:
            stream: a ``Console`` or a text stream.

        Returns:
            A ``Console``.
        """
        return stream if isinstance(stream, cls) else cls(stream)

    def begin(self, done):
        """Starts timing a transfer that already has ``done`` bytes (for the rate).

        Args:
            done: bytes kept before this transfer.
        """
        self._start = (time.monotonic(), done)

    def progress(self, done, total, final=False):
        """Draws the progress line, unless it was drawn less than ``interval`` (``pipe_interval``) ago.

        Args:
            done: bytes so far.
            total: the file's size, or None.
            final: draw whatever the time.
        """
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
            self._write(text + "\n")
            return
        self._write("\r" + text + " " * (self._width - len(text)))  # spaces over a longer line before it
        self._width = max(self._width, len(text))
        self._at_line_start = False

    def end_line(self):
        """Ends the progress line, if one is drawn."""
        if not self._at_line_start:
            self._write("\n")
            self._at_line_start = True
            self._width = 0

    def line(self, text):
        """Writes ``text`` as a line of its own.

        Args:
            text: one line, without its newline.
        """
        self.end_line()
        self._write(text + "\n")

    def note(self, text):
        """Writes ``text`` as one line after the program's name.

        Args:
            text: the message.
        """
        self.line(f"{PROG}: {text}")

    def _write(self, text):
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(text)
            self.stream.flush()


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP asked the download to stop.

    Attributes:
        signum: the signal's number.
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def stopping_on_signals():
    """Turns the first SIGINT, SIGTERM or SIGHUP in the block into ``Interrupted``; later ones are ignored.

    The old handlers come back after the block. Outside the main thread the
    signals stay as they are.

    Yields:
        None.

    Raises:
        Interrupted: in the block, at the first SIGINT, SIGTERM or SIGHUP it receives (main thread only).
    """
    received = []

    def handler(signum, frame):
        """Raises ``Interrupted`` for the first signal only."""
        if not received:
            received.append(signum)
            raise Interrupted(signum)

    with handling_signals(handler):
        yield

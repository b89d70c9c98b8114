"""SIGINT, SIGTERM and SIGHUP, honoured within seconds at any moment of a job.

Python runs a handler only in the main thread between bytecodes, and an exception raised inside a TensorFlow
call can leave its runtime inconsistent (a segmentation fault was seen). So once TensorFlow may run, the handler
only records the signal (``StopRequest.defer``) and the job checks for it between phases and traced calls; a
watcher thread woken through ``signal.set_wakeup_fd`` saves the latest image (the job's ``finisher``), writes
the last line and ends the process if the main thread has not begun to stop ``grace`` seconds after the signal.
Whichever begins first (``claim``) finishes.
"""

import contextlib
import io
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

from ..ground.statuses import PROG

#: The signals a job honours.
SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

#: Set once a signal asks the command to end: the command's own streams then wait for room ``_ENDING_WAIT``
#: seconds in all, from the first write that finds none, and drop what cannot go (a full pipe nobody reads
#: must not hold the process).
_ENDING = threading.Event()
_ENDING_WAIT = 2.0
_blocked_since = []  # when a write first found no room after the signal


class Stopped(BaseException):
    """A signal (``signum``: SIGINT, SIGTERM or SIGHUP) asked the command to stop."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class StopRequest:
    """The handler of SIGINT, SIGTERM and SIGHUP, and the watcher that bounds how long a stop takes.

    Until ``defer()`` the handler raises ``Stopped`` at once; after it, it records the first signal
    (``signum``) and ``check()`` raises it where the job can stop safely. ``grace``: seconds the main thread has
    to begin stopping. ``finisher(status) -> status``, set by the job once a run exists, saves the latest
    image and writes the last line (without one the watcher writes "interrupted"). ``cleanups``: what the
    main thread would undo on its way out (e.g. removing an empty folder the job made), run by the watcher.
    """

    grace = 1.5

    def __init__(self, err=None):
        self.signum, self.deferred, self.finisher, self.cleanups, self.err = None, False, None, [], err
        self._finishing = threading.Lock()

    def __call__(self, signum, frame):
        _ENDING.set()
        if self.signum is None:
            self.signum = signum
        if not self.deferred:
            raise Stopped(signum)

    def defer(self):
        """From now on a signal is recorded, and raised by ``check``; raises it now if one came already."""
        self.deferred = True
        self.check()

    def check(self):
        """Raises ``Stopped`` if a signal came."""
        if self.signum is not None:
            raise Stopped(self.signum)

    def claim(self):
        """Called by the main thread before it finishes a run; waits for the end if the watcher is finishing it."""
        if not self._finishing.acquire(blocking=False):
            threading.Event().wait()  # the watcher ends the process

    @contextlib.contextmanager
    def watching(self):
        """Runs the block with this handler installed and the watcher thread running (main thread only)."""
        with handling_signals(self) as installed, _quiet_when_stopped_in_a_callback():
            if not installed:
                yield
                return
            reader, writer = socket.socketpair()
            reader.settimeout(None)
            writer.setblocking(False)
            previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
            done = threading.Event()
            thread = threading.Thread(target=self._watch, args=(reader, done), name="nst_tf-signals", daemon=True)
            thread.start()
            try:
                yield
            finally:
                signal.set_wakeup_fd(previous)
                done.set()
                writer.send(b"\0")
                thread.join(timeout=5)
                reader.close()
                writer.close()

    def _watch(self, reader, done):
        while True:
            data = reader.recv(64)
            if done.is_set() or not data:
                return
            signums = [b for b in data if b in SIGNALS]
            if not signums:
                continue
            _ENDING.set()
            if self.signum is None:
                self.signum = signums[0]
            if not done.wait(self.grace):
                self._finish_for_the_main_thread(self.signum)
                return

    def _finish_for_the_main_thread(self, signum):
        if not self._finishing.acquire(blocking=False):
            return  # the main thread is finishing
        status = 128 + signum
        try:
            if self.finisher is not None:
                status = self.finisher(status)
            else:
                (self.err or sys.stderr).write(f"\n{PROG}: {stop_words(signum)}\n")
        finally:
            for cleanup in self.cleanups:  # what the main thread's ``finally`` blocks would have done
                with contextlib.suppress(Exception):
                    cleanup()
            end_process(status, self.err)


@contextlib.contextmanager
def _quiet_when_stopped_in_a_callback():
    """Drops Python's report ("Exception ignored in ...") of a ``Stopped`` raised where it cannot be passed on
    (an import lock's callback, a finalizer); the watcher ends the job all the same."""
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: isinstance(unraisable.exc_value, Stopped) or previous(unraisable)
    try:
        yield
    finally:
        sys.unraisablehook = previous


def stop_words(signum):
    """How a job's last line names the signal ``signum`` that stopped it ("interrupted" for Ctrl-C)."""
    return {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)"}.get(signum, "hung up (SIGHUP)")


def stop_at_once(line):
    """Makes SIGINT, SIGTERM and SIGHUP end the process at once (status 128 + the signal's number), writing
    ``line`` (``{what}`` in it: ``stop_words(signum)``), until other handlers are set: for a command's first
    moments, while its modules load and nothing is created yet."""

    def stop(signum, frame):
        _ENDING.set()
        with contextlib.suppress(Exception):
            sys.stderr.write(f"\n{line.replace('{what}', stop_words(signum))}\n")
        end_process(128 + signum)

    for signum in SIGNALS:
        signal.signal(signum, stop)


#: The temporary folder as the environment set it, and this process's own (``use_private_temporary_folder``).
_ORIGINAL_TEMPORARY = _PRIVATE_TEMPORARY = None


def use_private_temporary_folder():
    """Makes this process's temporary files (TensorFlow's autograph modules) go to a folder of its own, which
    ``end_process`` removes whole, whatever a thread still tracing writes into it meanwhile. Rescued images
    still go to the environment's (``rescue_folder``). For the command only: a library caller's is its own.
    """
    global _ORIGINAL_TEMPORARY, _PRIVATE_TEMPORARY
    if _PRIVATE_TEMPORARY is not None:
        return
    original = tempfile.gettempdir()
    try:
        private = tempfile.mkdtemp(prefix=f"nst_tf-{os.getpid()}-", dir=original)
    except OSError:
        return  # a read-only temporary folder: autograph will fail or cope as it would anyway
    _ORIGINAL_TEMPORARY, _PRIVATE_TEMPORARY = original, private
    tempfile.tempdir = private


_OWN_STREAMS = False


class _Forgiving(io.RawIOBase):
    """Writes to descriptor ``fd``, dropping what cannot be written (a full device, a closed pipe): the
    command's status never depends on whether its messages reach anyone. A write waits for room in steps of
    ``_POLL`` seconds until a signal asks the command to end; then all writes together wait ``_ENDING_WAIT``
    seconds at most (a blocked write would hold the stream's lock, and the last line behind it). A write to a
    terminal first erases the unended line another stream drew there."""

    _POLL = 0.2

    def __init__(self, fd):
        super().__init__()
        self._fd = fd

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def isatty(self):
        return not self.closed and os.isatty(self._fd)

    def write(self, data):
        if _unended and os.isatty(self._fd):
            with contextlib.suppress(IndexError):  # another thread took it
                drawn, width = _unended.pop()
                if not drawn.closed:
                    drawn.put(b"\r" + b" " * width + b"\r")
        return self.put(data)

    def put(self, data):
        """Writes what of ``data`` there is room for, or drops it; returns the bytes taken."""
        while not _room(self._fd, 0 if _waited_enough() else self._POLL):
            if _ENDING.is_set():
                if not _blocked_since:
                    _blocked_since.append(time.monotonic())
                if _waited_enough():
                    return len(data)
        try:
            # At most PIPE_BUF bytes: a pipe with room for a write has room for that many.
            return os.write(self._fd, data[: select.PIPE_BUF])
        except OSError:
            return len(data)

    def close(self):
        if not self.closed:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        super().close()


#: The line drawn on a terminal and not ended (a progress line), as (its ``_Forgiving``, its width), until
#: the next write to a terminal erases it: else that write would start after it.
_unended = []


def draws_unended_line(stream, width):
    """Records that ``stream`` (one of ``use_own_standard_streams``'; another is passed over) just drew an
    unended line of ``width`` characters on a terminal, for the next write there to erase first."""
    raw = getattr(getattr(stream, "buffer", None), "raw", None)
    if isinstance(raw, _Forgiving):
        _unended[:] = [(raw, width)]


def _waited_enough():
    """Whether a stop's writes have waited their time for room: the rest are dropped when there is none."""
    return bool(_blocked_since) and time.monotonic() - _blocked_since[0] >= _ENDING_WAIT


def _room(descriptor, seconds):
    """Whether ``descriptor`` takes a write within ``seconds`` (an error counts as room: the write says it)."""
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    try:
        return bool(poller.poll(seconds * 1000))
    except InterruptedError:
        return False


def use_own_standard_streams():
    """Gives the command's lines streams that never fail, ``sys.stderr`` on a copy of descriptor 2: C++ threads
    write to descriptor 2 itself, some after their work (a local Ray's driver threads report its killed
    processes after the job's last line): the command's lines on a copy, ``quiet_descriptor_2`` can silence
    those. A closed standard stream (``2>&-``) becomes the null device, and failed writes (``2>/dev/full``, a
    closed pipe) are dropped. For the command only: a library caller's are its own."""
    global _OWN_STREAMS
    if _OWN_STREAMS:
        return
    for descriptor in (0, 1, 2):
        # A closed one is given the null device first: else the copies below would take its number
        # (with 2 closed, the copy of 1 became 2, and what C++ writes there went to standard output).
        try:
            os.fstat(descriptor)
        except OSError:
            with contextlib.suppress(OSError):
                os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
    for name, descriptor in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)  # None where the descriptor was closed at start-up
        try:
            copy = os.dup(descriptor)  # open now: the null device at least
        except OSError:
            copy = os.open(os.devnull, os.O_WRONLY)
        encoding = getattr(stream, "encoding", None) or "utf-8"
        buffered = io.BufferedWriter(_Forgiving(copy))
        line_buffering = name == "stderr" or getattr(stream, "line_buffering", False)
        setattr(sys, name, io.TextIOWrapper(buffered, encoding, "backslashreplace", line_buffering=line_buffering))
    _OWN_STREAMS = True


def quiet_descriptor_2():
    """Points descriptor 2 at the null device if the command's lines have their own
    (``use_own_standard_streams``); returns whether it did (if not, the caller restores descriptor 2)."""
    return _OWN_STREAMS and _to_null(2)


def _to_null(*descriptors):
    """Points ``descriptors`` at the null device; returns whether it could."""
    try:
        quiet = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return False
    for descriptor in descriptors:
        os.dup2(quiet, descriptor)
    os.close(quiet)
    return True


def rescue_folder():
    """Where an image that cannot be saved where asked is kept: the environment's temporary folder."""
    return _ORIGINAL_TEMPORARY or tempfile.gettempdir()


def end_process(status, *streams):
    """Ends the process at once with ``status``, skipping the interpreter's and TensorFlow's teardown (1-2.5 s,
    during which a second signal would kill the process): ``streams``, standard output and standard error are
    flushed, descriptors 1 and 2 pointed at the null device, and the private temporary folder removed (its
    ``atexit`` handlers would have, which ``os._exit`` skips).
    """
    for stream in (*streams, sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    # Another thread still tracing (the main thread, when the watcher ends the process) must not print after
    # the last line, e.g. autograph's warning about the modules removed below.
    _to_null(1, 2)
    if _PRIVATE_TEMPORARY is not None:
        shutil.rmtree(_PRIVATE_TEMPORARY, ignore_errors=True)
    os._exit(status)


@contextlib.contextmanager
def handling_signals(handler):
    """Runs the block with ``handler`` (or ``signal.SIG_IGN``) for SIGINT, SIGTERM and SIGHUP, then restores
    the old ones; yields whether it was installed (outside the main thread the signals stay as they are)."""
    try:
        previous = {s: signal.signal(s, handler) for s in SIGNALS}
    except ValueError:  # not the main thread: signals stay as they are
        previous = {}
    try:
        yield bool(previous)
    finally:
        for s, old in previous.items():
            signal.signal(s, old)

"""Exclusive advisory locks: one command at a time in an output folder, one download per partial file."""

import contextlib
import os

from .errors import NSTError, quoted

try:
    import fcntl
except ImportError:  # Windows: nothing is locked
    fcntl = None


def lock_exclusively(fd, busy):
    """Locks the open file or folder ``fd`` for this process alone (``flock``: the kernel releases it when the
    process dies; without locks, nothing is locked); ``NSTError(busy)`` when another process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise NSTError(busy) from None
    except OSError:  # a file system without locks: go on unlocked
        pass


@contextlib.contextmanager
def holding(folder):
    """Holds an exclusive lock on ``folder`` itself for the block (no lock file is left in it): two commands
    writing into one folder at once would mix their results, so the second is refused with ``NSTError``."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        busy = f"{quoted(folder)}: another nst_tf command is writing into it; wait for it to end, or choose another"
        lock_exclusively(fd, busy + " --output_dir")
        yield
    finally:
        os.close(fd)

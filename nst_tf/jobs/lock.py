"""One command at a time in an output folder: an advisory lock on the folder itself (no lock file is left)."""

import contextlib
import os

from ..errors import NSTError, quoted


@contextlib.contextmanager
def holding(folder):
    """Holds an exclusive ``flock`` on ``folder`` for the block (released by the kernel if the process dies).

    Two commands writing results and manifest lines into one folder at once would mix them; the second
    is refused instead. Where ``flock`` does not exist (Windows), nothing is locked.

    Raises:
        NSTError: another process holds the folder.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NSTError(
                f"{quoted(folder)}: another nst_tf command is writing into it; wait for it to end, or choose "
                "another --output_dir"
            ) from None
        yield
    finally:
        os.close(fd)

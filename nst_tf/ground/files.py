"""Opening files a user or another program may have replaced with anything: a pipe or a device there
must not block the reader, nor feed it without end."""

import os
import stat

#: What a file that is not a regular one is, in words, by the ``stat`` test of its mode.
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFile(OSError):
    """The path names a folder, a pipe, a device or a socket; ``kind`` says which, e.g. "a folder"."""

    def __init__(self, kind):
        super().__init__(f"is {kind}, not a regular file")
        self.kind = kind


def file_kind(mode):
    """What a file of ``st_mode`` ``mode`` that is not a regular file is, in words."""
    return next((kind for test, kind in _KINDS if test(mode)), "a special file")


def open_regular(path, flags=0):
    """Opens ``path`` (links followed) for binary reading if it is a regular file: opened without blocking, then
    checked, so a pipe is refused without waiting for a writer. ``flags``: more ``os.open`` flags.
    ``NotRegularFile`` for a folder, pipe, device or socket; ``OSError`` where it cannot be opened.
    """
    extra = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, os.O_RDONLY | extra | flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(file_kind(mode))
        if hasattr(os, "set_blocking"):  # not on Windows before Python 3.12, where nothing was opened non-blocking
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def identity(path):
    """(device, inode) of the file at ``path`` (links followed), or None when there is none: two paths
    with one identity are one file."""
    try:
        status = os.stat(path)
    except (OSError, ValueError, TypeError):  # TypeError: no path (None)
        return None
    return status.st_dev, status.st_ino


def identities(paths):
    """``{identity: path}`` of each of ``paths`` that names a file (None and missing paths are passed over)."""
    found = {}
    for path in paths:
        found.setdefault(identity(path), path)
    found.pop(None, None)
    return found

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


#: The first bytes of the image formats Pillow reads that photos come in.
_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",  # BMP
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
    b"P6",  # PPM
)


def is_image_file(path):
    """Whether ``path`` is a regular file whose first bytes are those of an image format (not its name)."""
    try:
        with open_regular(path) as handle:
            head = handle.read(16)
    except OSError:  # NotRegularFile too
        return False
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")

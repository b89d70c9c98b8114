"""nst_tf's partial file beside a destination, with the record that makes it nst_tf's.

A download to ``folder/name`` writes ``folder/.name.nst_tf-partial`` and its JSON record
``.name.nst_tf-partial.json`` (address, expected size, ETag, Last-Modified, hash algorithm, destination's name).
The record is written (atomically) before the partial file is created and removed after it, so a partial file
without one, or with a record nst_tf did not write, is someone else's: never opened for writing, emptied or
removed. The complete file becomes the destination by a hard link (or, without links, a rename after a check),
which never replaces an existing file.
"""

import contextlib
import json
import os
import stat
import tempfile

from ..ground.errors import NSTError, quoted
from ..ground.files import open_regular
from ..ground.lock import lock_exclusively

RECORD_FORMAT = "nst_tf partial download"

_LEFT_ALONE = "it is left alone: move it away to download"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def partial_paths(destination):
    """(the partial file's path, its record's path) for ``destination``."""
    folder, name = os.path.split(os.fspath(destination))
    partial = os.path.join(folder, f".{name}.nst_tf-partial")
    return partial, partial + ".json"


def kept(destination):
    """``"; N bytes are kept in PATH: run the same command again to resume"`` when nst_tf's partial file for
    ``destination`` (one with its record) has bytes, else ""."""
    path, record = partial_paths(destination)
    size = os.path.lexists(record) and os.path.isfile(path) and os.path.getsize(path)
    return f"; {size} bytes are kept in {quoted(path)}: run the same command again to resume" if size else ""


def check_destination(destination):
    """The folders to create for ``destination``, outermost first; ``NSTError`` before anything is created
    when it exists (a file, a folder or a link), names a folder, holds a NUL, or its nearest existing folder is
    a file or not writable."""
    text, name = quoted(destination), os.path.basename(destination)
    if "\0" in os.fsdecode(destination):
        raise NSTError(f"{text}: embedded null byte")
    if name in ("", ".", ".."):
        raise NSTError(f"{text} names a folder; give the file's name")
    if os.path.isdir(destination):
        raise NSTError(f"{text} is a folder; give the file's name")
    if os.path.lexists(destination):
        kind = " (a symbolic link)" if os.path.islink(destination) else ""
        raise NSTError(f"{text} exists{kind}; remove it first to download again")
    missing, folder = [], os.path.dirname(os.path.abspath(destination))
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise NSTError(f"cannot create {text}: {quoted(folder)} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NSTError(f"cannot create {text}: {quoted(folder)} is not writable")
    return missing[::-1]


class Partial:
    """nst_tf's partial file for ``destination`` (``path``) and its record (``record_path``; ``record``, the
    dict, once loaded or written). The constructor raises ``NSTError`` as ``check_destination`` does."""

    def __init__(self, destination):
        self.destination = os.fspath(destination)
        self.path, self.record_path = partial_paths(self.destination)
        self.record = self._fd = None
        self._missing = check_destination(self.destination)
        self._created = []

    def load(self):
        """Reads the record an earlier run left (returned; None without one), and opens and locks its partial file.

        Raises ``NSTError`` for a partial file without a record, a record nst_tf did not write, a partial file
        that is not a regular file (a pipe would block the download), or one another download holds.
        """
        has_partial = os.path.lexists(self.path)
        if not os.path.lexists(self.record_path):
            if has_partial:
                raise NSTError(
                    f"{quoted(self.path)} exists without nst_tf's record beside it, so it is not nst_tf's; "
                    + _LEFT_ALONE
                )
            return None
        self.record = _read_record(self.record_path, os.path.basename(self.destination))
        if has_partial:
            if not stat.S_ISREG(os.lstat(self.path).st_mode):
                raise NSTError(f"{quoted(self.path)} is not a regular file; {_LEFT_ALONE}")
            try:
                self._open()  # and locked, before its bytes are read
            except OSError as error:
                raise NSTError(f"cannot open {quoted(self.path)}: {error.strerror or error}") from None
        return self.record

    def size(self):
        """The bytes in the partial file (0 when there is none)."""
        return os.lstat(self.path).st_size if os.path.lexists(self.path) else 0

    def read_blocks(self, chunk):
        """Yields the partial file's bytes, ``chunk`` at a time."""
        with open(self.path, "rb") as handle:
            yield from iter(lambda: handle.read(chunk), b"")

    def begin(self, record):
        """Writes ``record``, then creates the partial file (and the folders it needs); raises ``OSError``."""
        for folder in self._missing:
            if not os.path.isdir(folder):
                os.mkdir(folder)
                self._created.append(folder)
        _write_record(self.record_path, record)
        self.record = record
        if self._fd is None:
            self._open()

    def _open(self):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags | getattr(os, "O_BINARY", 0), 0o666)
        try:
            lock_exclusively(
                fd,
                f"another download to {quoted(self.destination)} is running (it holds {quoted(self.path)}); "
                "wait for it to end, or stop it",
            )
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def write(self, block):
        """Appends the bytes ``block`` to the partial file; raises ``OSError`` (a full disk, ...)."""
        view = memoryview(block)
        while view:
            view = view[os.write(self._fd, view) :]

    def finish(self):
        """Puts the complete partial file in place as the destination and removes the record; ``NSTError`` when
        the destination appeared meanwhile (the partial file is kept), ``OSError`` when it cannot be synced or
        linked."""
        os.fsync(self._fd)
        self.close()
        appeared = NSTError(
            f"{quoted(self.destination)} appeared during the download and is left as it is; "
            f"the downloaded file is kept as {quoted(self.path)}"
        )
        try:
            os.link(self.path, self.destination)
        except FileExistsError:
            raise appeared from None
        except OSError:  # no hard links on this file system: a rename, after a check
            if os.path.lexists(self.destination):
                raise appeared from None
            os.rename(self.path, self.destination)
        else:
            os.unlink(self.path)
        _unlink(self.record_path)
        self.record = None

    def close(self):
        """Closes the partial file if it is open."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def remove(self):
        """Removes the partial file, then its record (only ever called on nst_tf's own)."""
        self.close()
        _unlink(self.path)
        _unlink(self.record_path)
        self.record = None

    def remove_folders(self):
        """Removes the folders this download created, if they are still empty."""
        for folder in reversed(self._created):
            try:
                os.rmdir(folder)
            except OSError:
                return
        self._created = []


def new_record(url, destination, expected_size=None, validators=None, algorithm="md5"):
    """A record's fields, for ``Partial.begin``: the address ``url``, the ``destination``'s name, the size the
    server states (or None), its ``etag`` and ``last_modified`` ``validators`` (or None), and the hash
    ``algorithm`` as hashlib names it."""
    validators = validators or {}
    return {
        "format": RECORD_FORMAT,
        "version": 1,
        "destination": os.path.basename(destination),
        "url": url,
        "expected_size": expected_size,
        "etag": validators.get("etag"),
        "last_modified": validators.get("last_modified"),
        "hash": algorithm,
    }


def _read_record(path, name):
    """The record at ``path`` if nst_tf wrote it for the destination ``name``; NSTError otherwise."""
    try:
        with open_regular(path, _NOFOLLOW) as handle:
            record = json.loads(handle.read(1 << 16))  # a record is some 300 bytes; a longer file is not one
        if record["format"] == RECORD_FORMAT and record["destination"] == name:
            return record
    except (OSError, ValueError, LookupError, TypeError):  # not JSON, not an object, a field missing
        pass
    raise NSTError(f"{quoted(path)} is not a record nst_tf wrote; {_LEFT_ALONE}")


def _write_record(path, record):
    folder, name = os.path.split(path)
    fd, temporary = tempfile.mkstemp(prefix=name + ".", suffix=".tmp", dir=folder or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        _unlink(temporary)
        raise


def _unlink(path):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)

"""nst_tf's partial file beside a destination, with the record that makes it nst_tf's.

A download to ``folder/name`` writes ``folder/.name.nst_tf-partial`` and,
beside it, ``folder/.name.nst_tf-partial.json``, the record: JSON with the
address, the expected size, the server's validators (ETag, Last-Modified),
the hash algorithm the file is checked by (``md5`` or ``sha256``, so that a
resumed download hashes the kept bytes the same way) and the destination's
name. The record is written (to a
temporary name, then renamed) before the partial file is created, and
removed after it; so a partial file always has its record, and a file of
that name without one, or with a record nst_tf did not write, is someone
else's: it is never opened for writing, emptied or removed, and the
download stops with one line saying so. Only a complete file whose hash
matches becomes the destination, by a hard link (or, where links are not
supported, a rename after a check), which never replaces an existing file.
"""

import errno
import json
import os
import stat
import tempfile

from ..ground.errors import NSTError, quoted
from ..ground.files import open_regular
from ..ground.lock import lock_exclusively

PARTIAL_SUFFIX = ".nst_tf-partial"
RECORD_SUFFIX = ".json"
RECORD_FORMAT = "nst_tf partial download"
RECORD_VERSION = 1

#: The hash algorithm a record names when none is given (MD5, the VGG files'); the download's ``Target``
#: names its own (``fetch.HASH_NAMES``), and a record naming another is not resumed.
HASH = "md5"

_MAX_RECORD = 1 << 16
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def partial_paths(destination):
    """The partial file's and its record's paths for ``destination``.

    Args:
        destination: the file to download to.

    Returns:
        (partial path, record path).
    """
    folder, name = os.path.split(os.fspath(destination))
    partial = os.path.join(folder, f".{name}{PARTIAL_SUFFIX}")
    return partial, partial + RECORD_SUFFIX


def check_destination(destination):
    """Refuses a destination that cannot become a new file, before anything is created.

    Args:
        destination: the file to download to.

    Returns:
        The folders to create for it, outermost first.

    Raises:
        NSTError: it exists (a file, a folder or a link), names a folder, or
            its nearest existing folder is a file or not writable.
    """
    text = quoted(destination)
    try:
        name = os.path.basename(os.fspath(destination))
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
    except NSTError:
        raise
    except (ValueError, OSError) as error:  # a NUL in the path, a name too long, ...
        raise NSTError(f"{text}: {getattr(error, 'strerror', None) or error}") from None
    return missing[::-1]


class Partial:
    """nst_tf's partial file for one destination, and its record.

    Attributes:
        destination: the file to download to.
        path: the partial file.
        record_path: its record.
        record: the record (a dict) once loaded or written, else None.

    Raises:
        NSTError: from the constructor, when ``destination`` cannot become a new file
            (see ``check_destination``).
    """

    def __init__(self, destination):
        self.destination = os.fspath(destination)
        self.path, self.record_path = partial_paths(self.destination)
        self.record = None
        self._missing = check_destination(self.destination)
        self._created = []
        self._fd = None

    def load(self):
        """Reads the record an earlier run left.

        Returns:
            The record, or None when there is no partial download.

        Raises:
            NSTError: a partial file without a record, a record nst_tf did
                not write, or a partial file that is not a regular file.
        """
        has_partial, has_record = os.path.lexists(self.path), os.path.lexists(self.record_path)
        if not has_record:
            if has_partial:
                raise NSTError(
                    f"{quoted(self.path)} exists without nst_tf's record beside it, so it is not nst_tf's; "
                    "it is left alone: move it away to download"
                )
            return None
        record = _read_record(self.record_path, os.path.basename(self.destination))
        if has_partial and not stat.S_ISREG(os.lstat(self.path).st_mode):
            raise NSTError(f"{quoted(self.path)} is not a regular file; it is left alone: move it away to download")
        self.record = record
        if has_partial:
            try:
                self._open()  # and locked, before its bytes are read
            except OSError as error:
                raise NSTError(f"cannot open {quoted(self.path)}: {error.strerror or error}") from None
        return record

    def size(self):
        """The bytes in the partial file (0 when there is none).

        Returns:
            The size.
        """
        try:
            return os.lstat(self.path).st_size
        except FileNotFoundError:
            return 0

    def read_blocks(self, chunk):
        """The partial file's bytes, ``chunk`` at a time (nothing when there is none).

        Args:
            chunk: the block size.

        Yields:
            bytes.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
        except FileNotFoundError:
            return
        with os.fdopen(fd, "rb") as handle:
            yield from iter(lambda: handle.read(chunk), b"")

    def begin(self, record):
        """Starts the partial file (over): empties it, then writes ``record``; creates both if needed.

        Args:
            record: the fields of the record (see ``new_record``).

        Raises:
            OSError: the folder, the file or the record cannot be written.
        """
        self._make_folders()
        if self._fd is None and self.record is not None and os.path.lexists(self.path):
            self._open()  # nst_tf's own: its record was read
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        _write_record(self.record_path, record)
        self.record = record
        if self._fd is None:
            self._open()

    def resume(self):
        """Opens the partial file of a loaded record for appending.

        Raises:
            OSError: it cannot be opened.
        """
        if self._fd is None:
            self._open()

    def _open(self):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC | getattr(os, "O_BINARY", 0)
        fd = os.open(self.path, flags, 0o666)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            _lock(fd, self)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _make_folders(self):
        for folder in self._missing:
            if not os.path.isdir(folder):
                os.mkdir(folder)
                self._created.append(folder)

    def write(self, block):
        """Appends ``block`` to the partial file.

        Args:
            block: bytes.

        Raises:
            OSError: the disk is full, the file too large, ...
        """
        view = memoryview(block)
        while view:
            view = view[os.write(self._fd, view) :]

    def finish(self):
        """Puts the complete partial file in place as the destination and removes the record.

        Raises:
            NSTError: the destination appeared meanwhile (the partial file is kept).
            OSError: the file cannot be synced or linked.
        """
        self.resume()
        os.fsync(self._fd)
        self.close()
        try:
            os.link(self.path, self.destination)
        except FileExistsError:
            raise _appeared(self) from None
        except OSError:  # no hard links on this file system: a rename, after a check
            if os.path.lexists(self.destination):
                raise _appeared(self) from None
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


def new_record(url, destination, expected_size=None, validators=None, algorithm=HASH):
    """A record's fields.

    Args:
        url: the address the bytes come from.
        destination: the destination's path (its name is recorded).
        expected_size: the size the server states, or None.
        validators: the server's ``etag`` and ``last_modified``, or None.
        algorithm: the hash the file is checked by, as hashlib names it ("md5", "sha256").

    Returns:
        A dict for ``Partial.begin``.
    """
    validators = validators or {}
    return {
        "format": RECORD_FORMAT,
        "version": RECORD_VERSION,
        "destination": os.path.basename(destination),
        "url": url,
        "expected_size": expected_size,
        "etag": validators.get("etag"),
        "last_modified": validators.get("last_modified"),
        "hash": algorithm,
    }


def _lock(fd, partial):
    """Locks the partial file for this process alone (where the system has ``flock``)."""
    lock_exclusively(
        fd,
        f"another download to {quoted(partial.destination)} is running (it holds {quoted(partial.path)}); "
        "wait for it to end, or stop it",
    )


def _appeared(partial):
    return NSTError(
        f"{quoted(partial.destination)} appeared during the download and is left as it is; "
        f"the downloaded file is kept as {quoted(partial.path)}"
    )


def _read_record(path, name):
    foreign = NSTError(f"{quoted(path)} is not a record nst_tf wrote; it is left alone: move it away to download")
    try:
        with open_regular(path, _NOFOLLOW | _CLOEXEC) as handle:
            data = handle.read(_MAX_RECORD + 1)
        if len(data) > _MAX_RECORD:
            raise foreign
        record = json.loads(data)
    except (OSError, ValueError):
        raise foreign from None
    keys = {"format": str, "url": str, "destination": str, "hash": str}
    if not isinstance(record, dict) or any(not isinstance(record.get(k), t) for k, t in keys.items()):
        raise foreign
    if record["format"] != RECORD_FORMAT or record["destination"] != name:
        raise foreign
    if not isinstance(record.get("expected_size"), (int, type(None))) or isinstance(record["expected_size"], bool):
        raise foreign
    return record


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
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

"""``manifest.jsonl``: what a many-image job finished, so that a rerun does only the rest.

The first line records the settings that change a result and their SHA-256 fingerprint; each later line one
finished image (input, styles, output, costs, iterations, seconds, worker, fingerprint), appended only after its
image is saved. A rerun with the same settings skips recorded inputs whose output is there; other settings into
the same folder are refused.
"""

import contextlib
import errno
import hashlib
import io
import json
import os
import socket

from ...ground.errors import NSTError, quoted
from ...ground.files import NotRegularFile, open_regular

MANIFEST = "manifest.jsonl"


def fingerprint(settings):
    """SHA-256 of ``settings`` (a JSON-able dict) written with sorted keys."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def worker():
    """This process, as manifest lines name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Manifest:
    """The manifest of the output folder ``folder`` for a job with ``settings`` (JSON-able); ``finished``: each
    output name recorded -> the (input path, its SHA-256 or None) it was last made from."""

    def __init__(self, folder, settings):
        self.path = os.path.join(folder, MANIFEST)
        self.settings = settings
        self.fingerprint = fingerprint(settings)
        self.finished = {}

    def load(self):
        """Reads the manifest, if any, a line (up to ``LINE_LIMIT`` characters) at a time: memory holds only the
        records of finished outputs. ``NSTError`` when it cannot be read, is not one, or records other settings.
        """
        try:
            # Never through a link (the job's lines would go elsewhere) nor from a pipe (it would block).
            with io.TextIOWrapper(open_regular(self.path, getattr(os, "O_NOFOLLOW", 0)), encoding="utf-8") as handle:
                records = (_record(line) for line in _lines(handle) if line.strip())
                self._check_header(next(records, None))
                for record in records:
                    self._take(record)
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as error:
            if isinstance(error, NotRegularFile) or getattr(error, "errno", None) == errno.ELOOP:
                raise NSTError(
                    f"{quoted(self.path)}: is not a regular file nst_tf wrote; choose another --output_dir"
                ) from None
            reason = getattr(error, "strerror", None) or error
            raise NSTError(f"{quoted(self.path)}: cannot be read: {reason}") from None

    def _check_header(self, header):
        if not isinstance(header, dict) or "fingerprint" not in header:
            raise NSTError(f"{quoted(self.path)}: not a manifest nst_tf wrote; choose another --output_dir")
        if header["fingerprint"] != self.fingerprint:
            old, new = _flat(header.get("settings", {})), _flat(self.settings)
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise NSTError(
                f"{quoted(os.path.dirname(self.path) or '.')} holds the results of other settings "
                f"({', '.join(changed[:5]) or 'unknown'} differ); rerun with those settings to finish them, or "
                "choose another --output_dir"
            )

    def _take(self, record):
        # A last line cut short by a crash is not a record, nor one of other settings (a manifest edited
        # by hand): its image is done again.
        if not isinstance(record, dict) or record.get("fingerprint") != self.fingerprint:
            return
        if not isinstance(record.get("input"), str) or not isinstance(record.get("output"), str):
            return  # not a line nst_tf wrote
        if os.path.isfile(os.path.join(os.path.dirname(self.path), record["output"])):
            self.finished[record["output"]] = (record["input"], record.get("input_sha256"))

    def done(self, path, name, digest):
        """Whether ``name`` was last made from content image ``path`` (its bytes' SHA-256 ``digest``)."""
        return self.finished.get(name) == (path, digest)

    @property
    def outputs(self):
        """The output names the manifest records."""
        return set(self.finished)

    def add(self, **record):
        """Appends one finished image's line (after its image is saved); a new manifest starts with its header.
        ``worker`` defaults to this process; ``input_sha256``: the content image's SHA-256. ``NSTError`` when it
        cannot be written (the manifest is then as it was, but for a line cut short by a full disk, which is no
        record: the next line starts on a line of its own).
        """
        record["worker"] = record.get("worker") or worker()
        line = _line({**record, "fingerprint": self.fingerprint})
        try:
            if not os.path.exists(self.path):
                self._create(self._header_and_known())
            self._append(line)
        except OSError as error:
            raise NSTError(f"cannot write {quoted(self.path)}: {error.strerror or error}") from None
        self.finished[record["output"]] = (record["input"], record.get("input_sha256"))

    def _header_and_known(self):
        """A new manifest's lines: its header, and a line for each recorded result whose file is there (the
        manifest was removed during the job: else its results would block the rerun as files it did not make)."""
        lines = [_line({"nst_tf_manifest": 1, "fingerprint": self.fingerprint, "settings": self.settings})]
        folder = os.path.dirname(self.path)
        for output, (source, digest) in self.finished.items():
            if os.path.isfile(os.path.join(folder, output)):
                restored = {"input": source, "input_sha256": digest, "output": output, "restored": True}
                lines.append(_line({**restored, "fingerprint": self.fingerprint}))
        return b"".join(lines)

    def _create(self, header):
        """Makes the manifest with its ``header`` lines whole or not at all: written aside, then renamed (the
        folder's lock keeps other commands from making one meanwhile)."""
        from ...tensors.images import new_file

        fd, temporary = new_file(os.path.dirname(self.path) or ".", ".jsonl")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(header)
                handle.flush()
                with contextlib.suppress(OSError):
                    os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        finally:
            with contextlib.suppress(OSError):
                os.remove(temporary)

    def _append(self, line):
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0))
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # after a line cut short (a full disk): not glued to it
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, "the line was written short")
            with contextlib.suppress(OSError):
                os.fsync(fd)
        finally:
            os.close(fd)


def _line(record):
    return (json.dumps(record, sort_keys=True, default=str) + "\n").encode()


#: The longest manifest line read, in characters: nst_tf writes lines of a few hundred (the header
#: a few thousand); a longer one was not written by it, and is passed over unread.
LINE_LIMIT = 1 << 20


def _lines(handle):
    """Yields ``handle``'s lines; one over ``LINE_LIMIT`` characters is read past and yielded as no record."""
    while True:
        line = handle.readline(LINE_LIMIT)
        if not line:
            return
        if len(line) >= LINE_LIMIT and not line.endswith("\n"):
            while line and not line.endswith("\n"):
                line = handle.readline(LINE_LIMIT)
            line = "\x00"  # not JSON: not a record
        yield line


def _flat(settings, prefix=""):
    """``{"config": {"epochs": 3}}`` -> ``{"epochs": 3}``: each setting by its own name (JSON round-tripped)."""
    flat = {}
    if not isinstance(settings, dict):  # a header edited by hand
        return flat
    for key, value in json.loads(json.dumps(settings, default=str)).items():
        if isinstance(value, dict) and key in ("config", "size", "large", "video"):
            flat.update(_flat(value))
        else:
            flat[prefix + key] = value
    return flat


def _record(line):
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return None

"""One download: addresses in order, retries with backoff, resuming, size limits and the hash check.

``Fetch.run`` takes the bytes an earlier run kept (read again for the
hash), then tries each address in turn: each request asks for the rest
(``Range``), each dropped connection, timeout or server error is tried again
after a growing delay (``Policy``), and a server that ignores the range, or
a file that changed, starts the file over (said in one line). No more bytes
are ever written than the file's known size, or, while it is unknown, the
server's Content-Length and the ceiling. The complete file becomes the
destination only when its hash (MD5, or SHA-256, as the ``Target`` says) is
a known one; a file with another sum is removed with its record, since it
cannot be resumed into a right one, and the next address is tried. Bytes
kept under a record naming another algorithm than the target's start the
file over, said in one line.
"""

import dataclasses
import hashlib
import http.client
import time

from ..ground.errors import NSTError, quoted
from .partial import new_record
from .transfer import DownloadError, RestartError, RetryableError, build_opener, one_line, open_reply

#: The hash algorithms a download is checked by, as hashlib names them, with their names in messages.
HASH_NAMES = {"md5": "MD5", "sha256": "SHA-256"}


def new_hash(algorithm):
    """An empty hash of ``algorithm``.

    Args:
        algorithm: a key of ``HASH_NAMES``.

    Returns:
        A ``hashlib`` hash object (MD5 marked as not used for security: it checks for damage, not tampering).

    Raises:
        ValueError: an algorithm not in ``HASH_NAMES``.
    """
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)
    if algorithm == "sha256":
        return hashlib.sha256()
    raise ValueError(f"unknown hash algorithm {algorithm!r} (known: {', '.join(HASH_NAMES)})")


def size_text(size):
    """``size`` bytes for a message: ``1 GiB``, ``100 MiB`` or ``123 bytes``.

    Args:
        size: a number of bytes.

    Returns:
        The text.
    """
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


@dataclasses.dataclass(frozen=True)
class Target:
    """What is downloaded.

    Attributes:
        name: the file's name, for messages.
        digests: the accepted sums (hexadecimal digests by ``algorithm``), each with a description.
        sizes: the size of the file of each sum, or None where not recorded.
        ceiling: the most bytes accepted while the size is not known.
        algorithm: the hash the file is checked by, a key of ``HASH_NAMES`` ("md5" or "sha256").

    Raises:
        ValueError: from the constructor, for an algorithm not in ``HASH_NAMES``.
    """

    name: str
    digests: dict
    sizes: dict
    ceiling: int
    algorithm: str = "md5"

    def __post_init__(self):
        new_hash(self.algorithm)  # refuses an unknown algorithm

    @property
    def hash_name(self):
        """The algorithm's name in messages: "MD5" or "SHA-256"."""
        return HASH_NAMES[self.algorithm]

    def known_sizes(self):
        """The sizes of the accepted files, or None when any is not recorded.

        Returns:
            A sorted list, or None.
        """
        sizes = [self.sizes.get(digest) for digest in self.digests]
        return None if not sizes or None in sizes else sorted(set(sizes))

    def limit(self):
        """The most bytes the file may have, and the reason for messages.

        Returns:
            (bytes, reason).
        """
        sizes = self.known_sizes()
        if sizes:
            return sizes[-1], f"{sizes[-1]} bytes, the size of {self.name}"
        return self.ceiling, f"{size_text(self.ceiling)}, the ceiling for {self.name} while its size is unknown"

    def check_total(self, total):
        """Refuses a file size the server declares that cannot be the file's.

        Args:
            total: the size the server declares.

        Raises:
            DownloadError: more than the ceiling, or not a known size.
        """
        if total > self.ceiling:
            raise DownloadError(
                f"the address declares {total} bytes, more than {size_text(self.ceiling)}, the ceiling for "
                f"{self.name}; nothing was downloaded"
            )
        sizes = self.known_sizes()
        if sizes and total not in sizes:
            raise DownloadError(f"the file there is {total} bytes; {self.name} is {' or '.join(map(str, sizes))} bytes")


class Fetch:
    """Downloads one file into a ``Partial``.

    Attributes:
        partial: the ``Partial`` (its record loaded).
        target: the ``Target``.
        policy: the ``transfer.Policy``.
        console: the ``console.Console``.
        done: bytes in the partial file.
    """

    def __init__(self, partial, target, policy, console):
        self.partial = partial
        self.target = target
        self.policy = policy
        self.console = console
        self.done = 0
        self._digest = new_hash(target.algorithm)
        self._opener = build_opener()

    def run(self, sources):
        """Downloads from the first address that delivers a file of a known sum.

        Args:
            sources: the addresses, in order.

        Returns:
            (the file's hexadecimal digest by the target's algorithm, the address it came from).

        Raises:
            NSTError: every address failed, or the partial file cannot be
                written (one line, saying what is kept).
        """
        try:
            self._reread()
            if self._complete():
                url = self.partial.record["url"]
                try:
                    return self._verify(url), url
                except DownloadError as error:
                    self.console.note(f"the partial download from {url}: {error}")
            return self._each(sources)
        except DownloadError as error:
            raise DownloadError(f"{error}{self.kept()}") from None
        finally:
            self._tidy()

    def _each(self, sources):
        for index, url in enumerate(sources):
            try:
                return self._from(url), url
            except DownloadError as error:
                if index + 1 == len(sources):
                    where = f"download of {url} failed" if len(sources) == 1 else f"all {len(sources)} addresses failed"
                    last = "" if len(sources) == 1 else f"; the last, {url}"
                    raise DownloadError(f"{where}{last}: {error}") from None
                self.console.note(f"{url}: {error}; trying {sources[index + 1]}")

    def kept(self):
        """What the partial file keeps, for the end of a message.

        Returns:
            ``"; N bytes are kept in ...: run the same command again to resume"``, or "".
        """
        size = self.partial.size() if self.partial.record is not None else 0
        if not size:
            return ""
        return f"; {size} bytes are kept in {quoted(self.partial.path)}: run the same command again to resume"

    def _reread(self):
        record, size = self.partial.record, self.partial.size()
        if record is None or not size:
            return
        if record["hash"] != self.target.algorithm:
            named = HASH_NAMES.get(record["hash"]) or quoted(record["hash"])
            self.console.note(
                f"{quoted(self.partial.path)}: its record names {named}, but {self.target.name} is checked by "
                f"{self.target.hash_name}; starting over"
            )
            self._reset()
            return
        limit, _ = self.target.limit()
        expected = record.get("expected_size")
        if size > limit or (expected is not None and size > expected):
            self.console.note(f"{quoted(self.partial.path)} cannot be part of {self.target.name}; starting over")
            self._reset()
            return
        for block in self.partial.read_blocks(self.policy.chunk):
            self._digest.update(block)
            self.done += len(block)

    def _complete(self):
        record = self.partial.record
        return record is not None and self.done > 0 and record.get("expected_size") == self.done

    def _reset(self):
        self.partial.remove()
        self.done = 0
        self._digest = new_hash(self.target.algorithm)

    def _tidy(self):
        self.partial.close()
        if self.partial.record is not None and not self.partial.size():
            self.partial.remove()
        if self.partial.record is None:
            self.partial.remove_folders()

    def _from(self, url):
        failures = requests = 0
        while True:
            requests += 1
            before = self.done
            try:
                self._request(url)
                return self._verify(url)
            except RestartError as error:
                if not self.done or requests >= self.policy.max_requests:  # nothing kept: starting over cannot help
                    raise DownloadError(f"{error} (after {requests} requests)") from None
                self.console.note(f"{url}: {error}; starting over")
                self._reset()
            except RetryableError as error:
                failures = 1 if self.done > before else failures + 1
                if failures >= self.policy.attempts or requests >= self.policy.max_requests:
                    tries = "1 try" if requests == 1 else f"{requests} tries"
                    raise RetryableError(f"{error} (after {tries})") from None
                delay = self.policy.delay(failures)
                self.console.note(f"{url}: {error}; trying again in {delay:g} s ({self.done} bytes kept)")
                time.sleep(delay)

    def _request(self, url):
        record = self.partial.record
        validators = record if record is not None and record["url"] == url else None
        reply = open_reply(url, self.done, validators, self.policy, self._opener)
        try:
            self._accept(url, reply)
            self._receive(url, reply)
        finally:
            reply.body.close()

    def _accept(self, url, reply):
        if reply.total is not None:
            self.target.check_total(reply.total)
        if self.done and reply.whole:
            self.console.note(
                f"{url} sent the whole file rather than the rest (it ignores ranges, or the file changed); "
                "starting over"
            )
            self._reset()
        elif self.done:
            _check_unchanged(self.partial.record, url, reply)
        try:
            if self.done:
                self.partial.resume()
            else:
                record = new_record(url, self.partial.destination, reply.total, reply.validators, self.target.algorithm)
                self.partial.begin(record)
        except OSError as error:
            raise self._write_error(error) from None

    def _receive(self, url, reply):
        limit, why = self.target.limit()
        if reply.total is not None and reply.total < limit:
            limit, why = reply.total, f"the {reply.total} bytes it declared"
        self.console.begin(self.done)
        while True:
            try:
                block = reply.body.read1(min(self.policy.chunk, limit - self.done + 1))
            except (OSError, http.client.HTTPException, ValueError) as error:
                raise RetryableError(f"the connection failed after {self.done} bytes ({one_line(error)})") from None
            if not block:
                break
            if self.done + len(block) > limit:
                self._reset()
                raise DownloadError(f"{url} sent more than {why}; stopped, nothing was saved")
            try:
                self.partial.write(block)
            except OSError as error:
                raise self._write_error(error) from None
            self._digest.update(block)
            self.done += len(block)
            self.console.progress(self.done, reply.total)
        self.console.progress(self.done, reply.total, final=True)
        expected = reply.total
        if expected is None and reply.length is not None:
            expected = reply.start + reply.length
        if expected is not None and self.done < expected:  # the rest comes with the next request
            raise RetryableError(f"the connection closed after {self.done} of {expected} bytes")

    def _verify(self, url):
        digest = self._digest.hexdigest()
        if digest not in self.target.digests:
            self._reset()
            raise DownloadError(
                f"downloaded file has {self.target.hash_name} {digest}, expected {' or '.join(self.target.digests)}; "
                "nothing was saved (the file is removed: a file with a wrong sum cannot be resumed into a right one)"
            )
        try:
            self.partial.finish()
        except OSError as error:
            raise self._write_error(error) from None
        return digest

    def _write_error(self, error):
        return WriteError(f"cannot write {quoted(self.partial.path)}: {error.strerror or error}{self.kept()}")


class WriteError(NSTError):
    """The partial file, its record or the destination cannot be written (disk full, permissions, ...)."""


def _check_unchanged(record, url, reply):
    """Raises ``RestartError`` when ``reply`` is not the rest of the file the record describes."""
    if record["url"] == url:
        for key, name in (("etag", "ETag"), ("last_modified", "Last-Modified")):
            old, new = record.get(key), reply.validators.get(key)
            if old and new and old != new:
                raise RestartError(f"the file changed since the partial download ({name} {old}, now {new})")
    expected = record.get("expected_size")
    if expected is not None and reply.total is not None and reply.total != expected:
        raise RestartError(f"the file changed since the partial download ({expected} bytes, now {reply.total})")

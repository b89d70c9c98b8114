"""One download: addresses in order, retries with backoff, resuming, size limits and the hash check.

``Fetch.run`` hashes the bytes an earlier run kept (starting over under a record naming another algorithm), then
tries each address: each request asks for the rest (``Range``); a dropped connection, timeout or server error is
retried after a growing delay (``Policy``); a server ignoring the range, or a changed file, starts over. No more
bytes are written than the known size or, while unknown, the Content-Length and the ceiling. A complete file of
an unknown hash is removed with its record (it cannot be resumed into a right one); the next address is tried.
"""

import dataclasses
import hashlib
import http.client
import time
import urllib.request

from ..ground.errors import NSTError, quoted
from .partial import kept, new_record
from .transfer import DownloadError, RestartError, RetryableError, one_line, open_reply

#: The hash algorithms a download is checked by, as hashlib names them, with their names in messages.
HASH_NAMES = {"md5": "MD5", "sha256": "SHA-256"}


def size_text(size):
    """``size`` bytes for a message: ``1 GiB``, ``100 MiB``, ``64 KiB`` or ``123 bytes``."""
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


@dataclasses.dataclass(frozen=True)
class Target:
    """What is downloaded: its ``name`` (for messages), the accepted hexadecimal ``digests`` by ``algorithm`` (a
    key of ``HASH_NAMES``) each with a description, the file ``sizes`` of each (None where not recorded), and
    the most bytes accepted while the size is not known (``ceiling``)."""

    name: str
    digests: dict
    sizes: dict
    ceiling: int
    algorithm: str = "md5"

    def known_sizes(self):
        """The sizes of the accepted files, sorted, or None when any is not recorded."""
        sizes = [self.sizes.get(digest) for digest in self.digests]
        return None if not sizes or None in sizes else sorted(set(sizes))

    def limit(self):
        """(the most bytes the file may have, the reason for messages)."""
        sizes = self.known_sizes()
        if sizes:
            return sizes[-1], f"{sizes[-1]} bytes, the size of {self.name}"
        return self.ceiling, f"{size_text(self.ceiling)}, the ceiling for {self.name} while its size is unknown"

    def check_total(self, total):
        """Raises ``DownloadError`` when ``total``, the size a server declares, is over the ceiling or not known."""
        if total > self.ceiling:
            raise DownloadError(
                f"the address declares {total} bytes, more than {size_text(self.ceiling)}, the ceiling for "
                f"{self.name}; nothing was downloaded"
            )
        sizes = self.known_sizes()
        if sizes and total not in sizes:
            raise DownloadError(f"the file there is {total} bytes; {self.name} is {' or '.join(map(str, sizes))} bytes")


class Fetch:
    """Downloads one file into a ``Partial`` (its record loaded), by a ``Target``, a ``transfer.Policy`` and a
    ``console.Console``; ``done``: the bytes in the partial file."""

    def __init__(self, partial, target, policy, console):
        self.partial, self.target, self.policy, self.console = partial, target, policy, console
        self.done, self._digest = 0, hashlib.new(target.algorithm, usedforsecurity=False)  # damage, not tampering
        self._opener = urllib.request.build_opener()  # the environment's proxies, read now

    def run(self, sources):
        """(the hexadecimal digest, the address) of the first of ``sources`` that delivers a file of a known sum;
        ``NSTError`` when every address failed or the partial file cannot be written (one line, saying what is
        kept)."""
        try:
            self._reread()
            record = self.partial.record
            if record is not None and self.done > 0 and record.get("expected_size") == self.done:
                try:
                    return self._verify(record["url"]), record["url"]
                except DownloadError as error:  # removed by _verify: download it again now
                    self.console.note(f"the partial download from {record['url']}: {error}")
            return self._each(sources)
        except DownloadError as error:
            raise DownloadError(f"{error}{kept(self.partial.destination)}") from None
        finally:
            self.partial.close()
            if self.partial.record is not None and not self.partial.size():
                self.partial.remove()
            if self.partial.record is None:
                self.partial.remove_folders()

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

    def _reread(self):
        record = self.partial.record
        if record is None or not self.partial.size():
            return
        if record["hash"] != self.target.algorithm:
            named = HASH_NAMES.get(record["hash"]) or quoted(record["hash"])
            self.console.note(
                f"{quoted(self.partial.path)}: its record names {named}, but {self.target.name} is checked by "
                f"{HASH_NAMES[self.target.algorithm]}; starting over"
            )
            return self._reset()
        for block in self.partial.read_blocks(self.policy.chunk):
            self._digest.update(block)
            self.done += len(block)

    def _reset(self):
        self.partial.remove()
        self.done, self._digest = 0, hashlib.new(self.target.algorithm, usedforsecurity=False)

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
        reply = open_reply(url, self.done, validators, self.policy.timeout, self._opener)
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
        if not self.done:
            record = new_record(url, self.partial.destination, reply.total, reply.validators, self.target.algorithm)
            try:
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
        expected = reply.total if reply.total is not None else reply.end
        if expected is not None and self.done < expected:  # the rest comes with the next request
            raise RetryableError(f"the connection closed after {self.done} of {expected} bytes")

    def _verify(self, url):
        digest = self._digest.hexdigest()
        if digest not in self.target.digests:
            self._reset()
            raise DownloadError(
                f"downloaded file has {HASH_NAMES[self.target.algorithm]} {digest}, expected "
                f"{' or '.join(self.target.digests)}; nothing was saved (the file is removed: a file with a wrong sum "
                "cannot be resumed into a right one)"
            )
        try:
            self.partial.finish()
        except OSError as error:
            raise self._write_error(error) from None
        return digest

    def _write_error(self, error):
        """Not a ``DownloadError``: the next address cannot help with a full disk or a folder's permissions."""
        return NSTError(
            f"cannot write {quoted(self.partial.path)}: {error.strerror or error}{kept(self.partial.destination)}"
        )


def _check_unchanged(record, url, reply):
    """Raises ``RestartError`` when ``reply`` is not the rest of the file the record describes."""
    if record["url"] == url:
        for key, name in (("etag", "ETag"), ("last_modified", "Last-Modified")):
            old, new = record.get(key), reply.validators.get(key)
            if old and new and old != new:
                raise RestartError(f"the file changed since the partial download ({name} {old}, now {new})")

"""Addresses, and one request to one: the answer's size, range and validators, before any byte is read.

``check_url`` refuses what cannot be an address; ``open_reply`` asks an http(s):// address for the file from an
offset (Range, with If-Range naming the kept bytes' validator) or opens a file:// one there. Failures are
one-line ``DownloadError``\\ s; ``RetryableError`` marks those worth another try, ``RestartError`` those meaning
the kept bytes do not fit the file at the address (a 416, another range, a changed file): the download restarts.
"""

import dataclasses
import http.client
import socket
import ssl
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from ..ground.errors import NSTError, quoted
from ..ground.files import NotRegularFile, open_regular

USER_AGENT = "nst_tf-download/1 (python urllib)"

#: HTTP statuses worth another try besides the 5xx ones: timeout, too early, too many requests.
RETRY_STATUSES = (408, 425, 429)

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


class DownloadError(NSTError):
    """A download failed; the message is one line."""


class RetryableError(DownloadError):
    """A failure that may pass on another try: a dropped connection, a timeout, a server error."""


class RestartError(DownloadError):
    """The bytes kept do not fit the file at the address (a 416 answer, another range, a changed file)."""


@dataclasses.dataclass(frozen=True)
class Policy:
    """How hard a download tries.

    ``attempts``: tries in a row without progress before an address is given up (a try that received bytes
    starts the count again); ``first_delay``: seconds before the first retry, doubled for each further failure
    in a row up to ``max_delay``; ``timeout``: seconds a connection may stay silent; ``chunk``: the most bytes
    read and written at a time; ``max_requests``: requests to one address in all, progress or not (a server
    that drops every connection after a few bytes must not hold the download for ever).
    """

    attempts: int = 5
    first_delay: float = 1.0
    max_delay: float = 30.0
    timeout: float = 30.0
    chunk: int = 1 << 20
    max_requests: int = 50

    def delay(self, failures):
        """Seconds to wait before the next try after ``failures`` (at least 1) failures in a row."""
        return min(self.first_delay * 2 ** (failures - 1), self.max_delay)


@dataclasses.dataclass
class Reply:
    """An answer whose ``body`` (with ``read1(n)`` and ``close()``) is still to be read: ``end``, the offset after
    the last byte it says it sends (or None); ``total``, the whole file's size (or None); the ``etag`` and
    ``last_modified`` ``validators`` (None where absent); ``whole``: the body is the whole file (an HTTP 200)."""

    body: object
    end: int | None
    total: int | None
    validators: dict
    whole: bool


def check_url(url):
    """Refuses with ``NSTError``, before anything is created or sent, an address not printable ASCII without
    spaces, not http://, https:// or file://, or with no host, a bad port or a malformed IPv6 host."""
    if not url.isascii() or not url.isprintable() or " " in url:
        raise NSTError(f"{quoted(url)} is not an address: percent-encode its spaces and other characters")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        raise NSTError(f"{quoted(url)} is not a valid address: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise NSTError(
            f"{quoted(url)} is not an http://, https:// or file:// address (a file of your own: file:///absolute/path)"
        )
    if scheme != "file" and not parts.hostname:
        raise NSTError(f"{quoted(url)} names no host")
    if scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path):
        raise NSTError(f"{quoted(url)} is not a local file address (file:///absolute/path)")


def open_reply(url, offset, validators, timeout, opener):
    """A ``Reply`` for ``url`` (one ``check_url`` accepts) from byte ``offset`` (0: the whole file).

    ``validators``: the ``etag``/``last_modified`` of the bytes kept, sent as If-Range so that a changed file
    comes whole, or None. ``opener``: a ``urllib.request.OpenerDirector`` (urllib refuses a redirect to file://).
    Raises ``RetryableError``, ``RestartError`` or ``DownloadError`` as the module says.
    """
    if urllib.parse.urlsplit(url).scheme.lower() == "file":
        return _open_file(url, offset)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        etag, last_modified = (validators or {}).get("etag"), (validators or {}).get("last_modified")
        if_range = etag if etag and not etag.startswith("W/") else last_modified  # If-Range takes a strong ETag only
        if if_range:
            headers["If-Range"] = if_range
    try:
        response = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        raise _status_error(error.code, error.reason, offset) from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        if isinstance(reason, ssl.SSLCertVerificationError):  # no retry makes a refused certificate good
            raise DownloadError(f"the server's certificate was refused: {reason.verify_message or reason}") from None
        if isinstance(reason, socket.gaierror) and reason.errno != socket.EAI_AGAIN:
            # The name is unknown (no network, or a typo): asking again in seconds cannot make it known.
            raise DownloadError(
                f"{one_line(reason)}: its name cannot be looked up (no network? then copy the file into "
                "pretrained-model/ or $NST_TF_HOME yourself)"
            ) from None
        retry = isinstance(reason, (OSError, http.client.HTTPException))
        raise (RetryableError if retry else DownloadError)(one_line(reason)) from None
    try:
        return _http_reply(response, offset)
    except BaseException:
        response.close()
        raise


def _status_error(code, reason, offset):
    if code == 416 and offset:
        return RestartError(f"the server refused the range from byte {offset} (HTTP 416)")
    # urllib's reasons can span lines ("... infinite loop.\nThe last 30x error message was:\nFound").
    text = " ".join(f"HTTP {code} {reason}".split())
    return (RetryableError if code in RETRY_STATUSES or 500 <= code < 600 else DownloadError)(text)


def one_line(error):
    """``error``'s message on one line, without the ``[Errno N]`` of an ``OSError``."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


def _http_reply(response, offset):
    headers = response.headers
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise DownloadError(f"the server sent the file compressed (Content-Encoding {quoted(encoding)})")
    validators = {"etag": headers.get("ETag"), "last_modified": headers.get("Last-Modified")}
    if response.status == 200:  # http.client's length: the Content-Length, None when absent or invalid
        return Reply(response, response.length, response.length, validators, whole=True)
    # A 206; any other answer (another 2xx, an ftp:// one after a redirect) has no Content-Range and is refused.
    match = _CONTENT_RANGE.fullmatch((headers.get("Content-Range") or "").strip())
    if not match or int(match[1]) != offset or int(match[2]) < offset:
        raise RestartError(f"asked for bytes from {offset}, the server sent {quoted(headers.get('Content-Range'))}")
    total = None if match[3] == "*" else int(match[3])
    return Reply(response, int(match[2]) + 1, total, validators, whole=False)


def _open_file(url, offset):
    path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    try:
        body = open_regular(path)  # a device, pipe or folder is refused unread
    except NotRegularFile as error:
        kind = "a folder" if error.kind == "a folder" else "a device, pipe or socket"
        raise DownloadError(f"{quoted(path)} is {kind}, not a regular file") from None
    except OSError as error:
        raise DownloadError(f"{quoted(path)}: {error.strerror or error}") from None
    status = os.fstat(body.fileno())
    body.seek(offset)
    validators = {"etag": None, "last_modified": f"{status.st_mtime_ns} ns since the epoch, {status.st_size} bytes"}
    return Reply(body, status.st_size, status.st_size, validators, whole=offset == 0)

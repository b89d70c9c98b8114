"""Addresses, and one request to one: the answer's size, range and validators, before any byte is read.

``check_url`` refuses, before anything is created, what cannot be an
address to download from. ``open_reply`` asks an http(s):// address for the
file from an offset (a Range request, with If-Range naming the validator of
the bytes already kept) or opens a file:// address at that offset, and
describes the answer as a ``Reply``. Failures are ``DownloadError``\\ s of one
line; ``RetryableError`` marks those worth another try (a dropped connection,
a timeout, a server error), ``RestartError`` those that mean the bytes kept
do not fit the file at the address (a 416 answer, a range other than the one
asked for), so the download starts over.
"""

import dataclasses
import http.client
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request

from ..ground.errors import NSTError, quoted
from ..ground.files import NotRegularFile, open_regular

SCHEMES = ("http", "https", "file")
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

    Attributes:
        attempts: tries in a row without progress before an address is given
            up (a try that received bytes starts the count again).
        first_delay: seconds before the first retry; doubled for each further
            failure in a row, up to ``max_delay``.
        max_delay: the longest wait between tries, in seconds.
        timeout: seconds a connection may stay silent before the try fails.
        chunk: the most bytes read and written at a time.
        max_requests: requests to one address in all, progress or not.
    """

    attempts: int = 5
    first_delay: float = 1.0
    max_delay: float = 30.0
    timeout: float = 30.0
    chunk: int = 1 << 20
    max_requests: int = 50

    def delay(self, failures):
        """The wait before the next try after ``failures`` failures in a row (at least one).

        Args:
            failures: failed tries in a row; 0 counts as 1.

        Returns:
            Seconds to wait.
        """
        return min(self.first_delay * 2 ** (max(failures, 1) - 1), self.max_delay)


@dataclasses.dataclass
class Reply:
    """An answer whose body is still to be read.

    Attributes:
        body: has ``read1(n)`` and ``close()``.
        start: the offset in the file of the first byte the body sends.
        length: how many bytes the body says it sends, or None.
        total: the size of the whole file, or None when not stated.
        validators: the ``etag`` and ``last_modified`` the answer states (absent ones are None).
        whole: whether the body is the whole file from its first byte (an HTTP 200).
    """

    body: object
    start: int
    length: int | None
    total: int | None
    validators: dict
    whole: bool


def check_url(url):
    """Refuses what cannot be an address to download from, before anything is created or sent.

    Args:
        url: the address (text).

    Returns:
        ``url``.

    Raises:
        NSTError: not text of printable ASCII, not http://, https:// or
            file://, no host, a bad port, or a malformed IPv6 host.
    """
    if not isinstance(url, str) or not url or not url.isascii() or not url.isprintable() or " " in url:
        raise NSTError(f"{quoted(url)} is not an address: percent-encode its spaces and other characters")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        raise NSTError(f"{quoted(url)} is not a valid address: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise NSTError(
            f"{quoted(url)} is not an http://, https:// or file:// address (a file of your own: file:///absolute/path)"
        )
    if scheme != "file" and not parts.hostname:
        raise NSTError(f"{quoted(url)} names no host")
    if scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path):
        raise NSTError(f"{quoted(url)} is not a local file address (file:///absolute/path)")
    return url


def open_reply(url, offset, validators, policy, opener):
    """Opens ``url`` from byte ``offset``.

    Args:
        url: an address ``check_url`` accepts.
        offset: the first byte wanted (0: the whole file).
        validators: the ``etag``/``last_modified`` of the bytes kept, sent
            as If-Range so that a changed file comes whole; or None.
        policy: the ``Policy`` (its timeout).
        opener: a ``urllib.request.OpenerDirector`` (see ``build_opener``).

    Returns:
        A ``Reply``.

    Raises:
        RetryableError, RestartError, DownloadError: as the module says.
    """
    if urllib.parse.urlsplit(url).scheme.lower() == "file":
        return _open_file(url, offset)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if_range = _if_range(validators or {})
        if if_range:
            headers["If-Range"] = if_range
    try:
        response = opener.open(urllib.request.Request(url, headers=headers), timeout=policy.timeout)
    except urllib.error.HTTPError as error:
        error.close()
        raise _status_error(error.code, error.reason, offset) from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise _connection_error(error) from None
    try:
        return _http_reply(response, offset)
    except BaseException:
        response.close()
        raise


def _if_range(validators):
    etag = validators.get("etag")
    if etag and not etag.startswith("W/"):  # If-Range takes a strong ETag only
        return etag
    return validators.get("last_modified")


def _status_error(code, reason, offset):
    if code == 416 and offset:
        return RestartError(f"the server refused the range from byte {offset} (HTTP 416)")
    # urllib's reasons can span lines ("... infinite loop.\nThe last 30x error message was:\nFound").
    text = " ".join(f"HTTP {code} {reason}".split())
    if code in RETRY_STATUSES or 500 <= code < 600:
        return RetryableError(text)
    return DownloadError(text)


def _connection_error(error):
    reason = getattr(error, "reason", None) or error
    if isinstance(reason, ssl.SSLCertVerificationError):
        return DownloadError(f"the server's certificate was refused: {reason.verify_message or reason}")
    if isinstance(reason, (OSError, http.client.HTTPException)):
        return RetryableError(one_line(reason))
    return DownloadError(one_line(reason))


def one_line(error):
    """An exception's message on one line, without the ``[Errno N]`` of an ``OSError``.

    Args:
        error: an exception.

    Returns:
        The text.
    """
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


def _http_reply(response, offset):
    headers = response.headers
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise DownloadError(f"the server sent the file compressed (Content-Encoding {quoted(encoding)})")
    length = _int_header(headers.get("Content-Length"))
    validators = {"etag": headers.get("ETag"), "last_modified": headers.get("Last-Modified")}
    if response.status == 200:
        return Reply(response, 0, length, length, validators, whole=True)
    if response.status != 206:
        raise DownloadError(f"unexpected answer HTTP {response.status} {response.reason}".strip())
    match = _CONTENT_RANGE.fullmatch((headers.get("Content-Range") or "").strip())
    if not match or int(match[1]) != offset or int(match[2]) < int(match[1]):
        raise RestartError(f"asked for bytes from {offset}, the server sent {quoted(headers.get('Content-Range'))}")
    total = None if match[3] == "*" else int(match[3])
    return Reply(response, offset, int(match[2]) - offset + 1, total, validators, whole=False)


def _int_header(value):
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _open_file(url, offset):
    path = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    body = _open_regular_file(path)
    size = os.fstat(body.fileno()).st_size
    if offset > size:
        body.close()
        raise RestartError(f"the file is {size} bytes, fewer than the {offset} kept")
    body.seek(offset)
    mtime = os.fstat(body.fileno()).st_mtime_ns
    validators = {"etag": None, "last_modified": f"{mtime} ns since the epoch, {size} bytes"}
    return Reply(body, offset, size - offset, size, validators, whole=offset == 0)


def _open_regular_file(path):
    """Opens a regular file (or a link to one) for reading; a device, pipe or folder is refused unread."""
    try:
        return open_regular(path)
    except NotRegularFile as error:
        kind = "a folder" if error.kind == "a folder" else "a device, pipe or socket"
        raise DownloadError(f"{quoted(path)} is {kind}, not a regular file") from None
    except OSError as error:
        raise DownloadError(f"{quoted(path)}: {error.strerror or error}") from None


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http:// and https:// addresses only."""

    max_redirections = 10

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        """urllib's redirect; raises ``urllib.error.HTTPError`` unless it leads to http(s)."""
        target = urllib.parse.urljoin(req.full_url, newurl)
        if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(target, code, f"redirect to {quoted(target)} refused", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def build_opener():
    """An opener with the proxies of the environment, following http(s) redirects only.

    Returns:
        A ``urllib.request.OpenerDirector``.
    """
    return urllib.request.build_opener(_RedirectHandler())

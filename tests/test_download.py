"""The weights downloader, against a real HTTP server on 127.0.0.1 and local file:// addresses.

The tests never leave this machine: every address is 127.0.0.1 (a port the
system picks) or a file. The server serves a few hundred KB, and each of its
loops is bounded, so a test that goes wrong ends by itself.
"""

import fcntl
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nst_tf import NSTError
from nst_tf.download import command as dl
from nst_tf.download import partial as partial_file

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(8192))  # 256 KiB
OTHER = PAYLOAD[::-1]
#: Fast retries, small chunks: a failing test ends in well under a second.
FAST = dl.Policy(attempts=3, first_delay=0.01, max_delay=0.02, timeout=5, chunk=4096, max_requests=20)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def md5(data):
    return hashlib.md5(data).hexdigest()


def known(data):
    return {md5(data): "test file"}


def messages(err):
    """The lines the downloader wrote (progress, redrawn with \\r, is left out)."""
    return [line for line in err.split("\n") if line.startswith("nst-tf download:")]


class Site:
    """What the test server serves, and the requests it saw.

    ``mode``: "ranges" (the payload, honouring Range and If-Range), "ignore"
    (the whole payload whatever the Range), "first_part" (its first 50000
    bytes as a 206 to a request without Range), "endless" (bytes without a
    Content-Length until 10 MiB or the client leaves), "huge" (a
    Content-Length of a terabyte) or "status" (``status``, no body).
    ``/missing.mat`` answers 404, ``/wrong.mat`` serves other bytes.
    ``drops``: for each request in turn, the bytes to send before closing.
    """

    def __init__(self):
        self.payload, self.etag = PAYLOAD, '"v1"'
        self.mode, self.status = "ranges", 503
        self.honour_if_range, self.refuse_ranges = True, False
        self.drops, self.delay, self.chunk = [], 0.0, 4096
        self.requests = []
        self.url = None

    def ranges(self):
        return [headers.get("Range") for _, headers in self.requests]


REDIRECTS = {"/moved.mat": "/w.mat", "/to-file.mat": "file:///etc/hostname", "/loop.mat": "/loop.mat"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        site = self.server.site
        site.requests.append((self.path, dict(self.headers)))
        self.close_connection = True
        try:
            if self.path == "/missing.mat":
                self._empty(404)
            elif self.path == "/wrong.mat":
                self._ranges(site, OTHER)
            elif self.path in REDIRECTS:
                self.send_response(302)
                self.send_header("Location", REDIRECTS[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/gzip.mat":
                self.send_response(200)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                getattr(self, "_" + site.mode)(site)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _empty(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _status(self, site):
        self._empty(site.status)

    def _ranges(self, site, data=None, honour=True):
        data = site.payload if data is None else data
        asked = self.headers.get("Range") if honour else None
        if_range = self.headers.get("If-Range")
        if asked and site.honour_if_range and if_range not in (None, site.etag):
            asked = None  # the file changed: the whole of it
        start = int(re.fullmatch(r"bytes=(\d+)-", asked)[1]) if asked else 0
        if asked and (site.refuse_ranges or start >= len(data)):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if asked else 200)
        if asked:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", site.etag)
        self.end_headers()
        self._body(site, data[start:])

    def _ignore(self, site):
        self._ranges(site, honour=False)

    def _first_part(self, site):
        if self.headers.get("Range"):
            return self._ranges(site)
        self.send_response(206)  # a part, unasked for
        self.send_header("Content-Range", f"bytes 0-49999/{len(site.payload)}")
        self.send_header("Content-Length", "50000")
        self.end_headers()
        self.wfile.write(site.payload[:50000])

    def _body(self, site, data):
        limit = site.drops.pop(0) if site.drops else len(data)
        for offset in range(0, min(limit, len(data)), site.chunk):
            self.wfile.write(data[offset : min(offset + site.chunk, limit)])
            time.sleep(site.delay)

    def _endless(self, site):
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        for _ in range((10 << 20) // site.chunk):
            self.wfile.write(bytes(site.chunk))

    def _huge(self, site):
        self.send_response(200)
        self.send_header("Content-Length", str(10**12))
        self.end_headers()
        self.wfile.write(bytes(site.chunk))


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Requests to 127.0.0.1 go straight to the test server, whatever proxy this machine names."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture
def site():
    site = Site()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads, server.block_on_close, server.site = True, False, site
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield site
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def out(tmp_path):
    """An empty folder for the downloads, the destination ``w.mat`` in it."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def get(site, out, path="/w.mat", data=PAYLOAD, policy=FAST, **options):
    return dl.download(site.url + path, str(out / "w.mat"), known(data), policy=policy, **options)


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


PARTIAL, RECORD = ".w.mat.nst_tf-partial", ".w.mat.nst_tf-partial.json"


# Downloads over HTTP


def test_a_download_saves_the_file_and_leaves_nothing_else(site, out, capsys):
    assert get(site, out) == md5(PAYLOAD)
    assert (out / "w.mat").read_bytes() == PAYLOAD and listing(out) == ["w.mat"]
    assert site.ranges() == [None] and site.requests[0][1]["Accept-Encoding"] == "identity"
    err = capsys.readouterr().err
    assert "MiB" in err and messages(err) == []


def test_a_dropped_connection_is_resumed_with_a_range_request(site, out, capsys):
    site.drops = [50000]
    assert get(site, out) == md5(PAYLOAD)
    assert (out / "w.mat").read_bytes() == PAYLOAD and listing(out) == ["w.mat"]
    assert site.ranges() == [None, "bytes=50000-"] and site.requests[1][1]["If-Range"] == '"v1"'
    (note,) = messages(capsys.readouterr().err)
    assert note.endswith(
        f"{site.url}/w.mat: the connection closed after 50000 of 262144 bytes; "
        "trying again in 0.01 s (50000 bytes kept)"
    )


def test_a_part_sent_unasked_is_completed_with_a_range_request(site, out):
    site.mode = "first_part"
    assert get(site, out) == md5(PAYLOAD) and (out / "w.mat").read_bytes() == PAYLOAD
    assert site.ranges() == [None, "bytes=50000-"]


def test_a_file_with_a_wrong_sum_is_removed_with_its_record(site, out, capsys):
    with pytest.raises(
        NSTError,
        match=r"failed: downloaded file has MD5 [0-9a-f]{32}, expected [0-9a-f]{32}; nothing was saved "
        r"\(the file is removed",
    ):
        get(site, out, "/wrong.mat")
    assert listing(out) == []
    assert messages(capsys.readouterr().err) == []


def test_a_server_that_ignores_ranges_makes_the_download_start_over(site, out, capsys):
    site.mode, site.drops = "ignore", [50000]
    assert get(site, out) == md5(PAYLOAD) and (out / "w.mat").read_bytes() == PAYLOAD
    assert site.ranges() == [None, "bytes=50000-"]
    notes = messages(capsys.readouterr().err)
    assert len(notes) == 2 and notes[1].endswith(
        "sent the whole file rather than the rest (it ignores ranges, or the file changed); starting over"
    )


def test_a_declared_size_over_the_ceiling_is_refused_before_writing(site, out):
    site.mode = "huge"
    with pytest.raises(
        NSTError,
        match=r"declares 1000000000000 bytes, more than 1 GiB, the ceiling for w\.mat; nothing was downloaded$",
    ):
        get(site, out)
    assert listing(out) == []


def test_an_endless_stream_stops_at_the_ceiling(site, out, capsys):
    site.mode = "endless"
    argv = ["--url", site.url + "/w.mat", "--output", str(out / "w.mat"), "--md5", md5(PAYLOAD), "--max-size", "64K"]
    assert dl.main(argv) == 2
    (line,) = messages(capsys.readouterr().err)
    assert line == (
        f"nst-tf download: error: download of {site.url}/w.mat failed: {site.url}/w.mat sent more than 64 KiB, "
        "the ceiling for w.mat while its size is unknown; stopped, nothing was saved"
    )
    assert listing(out) == []


@pytest.mark.parametrize(
    "mode, message",
    [
        ("ranges", r"the file there is 262144 bytes; w\.mat is 262143 bytes$"),
        ("endless", r"sent more than 262143 bytes, the size of w\.mat; stopped, nothing was saved$"),
    ],
)
def test_a_known_size_bounds_the_download(site, out, mode, message):
    site.mode = mode
    with pytest.raises(NSTError, match=message):
        get(site, out, sizes={md5(PAYLOAD): len(PAYLOAD) - 1})
    assert listing(out) == []


def test_the_partial_file_has_nst_tf_name_and_a_record(site, out):
    site.drops = [50000]
    with pytest.raises(
        NSTError,
        match=r"the connection closed after 50000 of 262144 bytes \(after 1 try\); 50000 bytes are kept in "
        f".*/{re.escape(PARTIAL)}: run the same command again to resume$",
    ):
        get(site, out, policy=dl.Policy(attempts=1, chunk=4096))
    assert listing(out) == [PARTIAL, RECORD]
    assert (out / PARTIAL).read_bytes() == PAYLOAD[:50000]
    record = json.loads((out / RECORD).read_text())
    assert record == {
        "format": "nst_tf partial download",
        "version": 1,
        "destination": "w.mat",
        "url": site.url + "/w.mat",
        "expected_size": len(PAYLOAD),
        "etag": '"v1"',
        "last_modified": None,
        "hash": "md5",
    }
    assert get(site, out) == md5(PAYLOAD) and listing(out) == ["w.mat"]
    assert site.ranges() == [None, "bytes=50000-"]


def keep_a_partial(site, out, drop=50000):
    site.drops = [drop]
    with pytest.raises(NSTError, match="bytes are kept"):
        get(site, out, policy=dl.Policy(attempts=1, chunk=4096))


def test_a_416_answer_restarts_cleanly(site, out, capsys):
    keep_a_partial(site, out)
    site.refuse_ranges = True
    assert get(site, out) == md5(PAYLOAD) and (out / "w.mat").read_bytes() == PAYLOAD
    assert site.ranges() == [None, "bytes=50000-", None] and listing(out) == ["w.mat"]
    assert messages(capsys.readouterr().err)[-1].endswith(
        "the server refused the range from byte 50000 (HTTP 416); starting over"
    )


def test_a_changed_file_restarts_cleanly(site, out, capsys):
    keep_a_partial(site, out)
    site.payload, site.etag, site.honour_if_range = OTHER, '"v2"', False  # a server that sends the rest of the new file
    assert get(site, out, data=OTHER) == md5(OTHER) and (out / "w.mat").read_bytes() == OTHER
    assert site.ranges() == [None, "bytes=50000-", None]
    assert messages(capsys.readouterr().err)[-1].endswith(
        'the file changed since the partial download (ETag "v1", now "v2"); starting over'
    )


def test_a_changed_file_comes_whole_through_if_range(site, out, capsys):
    keep_a_partial(site, out)
    site.payload, site.etag = OTHER, '"v2"'
    assert get(site, out, data=OTHER) == md5(OTHER) and (out / "w.mat").read_bytes() == OTHER
    assert site.requests[1][1]["If-Range"] == '"v1"'
    assert "starting over" in messages(capsys.readouterr().err)[-1]


def test_retries_are_bounded_and_back_off(site, out, capsys):
    site.mode = "status"
    start = time.monotonic()
    with pytest.raises(NSTError, match=r"failed: HTTP 503 Service Unavailable \(after 3 tries\)$"):
        get(site, out, policy=dl.Policy(attempts=3, first_delay=0.05, max_delay=0.08))
    assert len(site.requests) == 3 and 0.13 <= time.monotonic() - start < 5
    notes = messages(capsys.readouterr().err)
    assert [n.rsplit(": ", 1)[1] for n in notes] == [
        "HTTP 503 Service Unavailable; trying again in 0.05 s (0 bytes kept)",
        "HTTP 503 Service Unavailable; trying again in 0.08 s (0 bytes kept)",
    ]
    assert listing(out) == []


def test_requests_to_one_address_are_bounded_even_when_each_makes_progress(site, out):
    site.drops = [1000] * 10  # every try brings bytes, so the tries in a row without progress never add up
    with pytest.raises(NSTError, match=r"closed after 3000 of 262144 bytes \(after 3 tries\); 3000 bytes are kept"):
        get(site, out, policy=dl.Policy(attempts=2, first_delay=0.01, chunk=4096, max_requests=3))
    assert len(site.requests) == 3


def test_an_unknown_hash_algorithm_is_refused_before_anything_is_created(site, out):
    with pytest.raises(ValueError, match="unknown hash algorithm 'sha1' \\(known: md5, sha256\\)"):
        get(site, out, algorithm="sha1")
    assert listing(out) == [] and site.requests == []


def test_the_next_address_is_tried_after_a_404_or_a_wrong_file(site, out, capsys):
    sources = [site.url + "/missing.mat", site.url + "/wrong.mat", site.url + "/w.mat"]
    md5_sum, origin = dl.fetch_keras_weights(
        sources, str(out / "w.mat"), known(PAYLOAD), policy=FAST, cache_dir=str(out)
    )
    assert (md5_sum, origin) == (md5(PAYLOAD), site.url + "/w.mat") and listing(out) == ["w.mat"]
    assert [path for path, _ in site.requests] == ["/missing.mat", "/wrong.mat", "/w.mat"]  # a 404 is not retried
    first, second = messages(capsys.readouterr().err)
    assert first.endswith(f"/missing.mat: HTTP 404 Not Found; trying {site.url}/wrong.mat")
    assert "/wrong.mat: downloaded file has MD5" in second and second.endswith(f"; trying {site.url}/w.mat")


def test_main_says_which_address_was_used(site, out, capsys):
    argv = ["--url", site.url + "/missing.mat", "--url", site.url + "/w.mat", "--output", str(out / "w.mat")]
    assert dl.main([*argv, "--md5", md5(PAYLOAD)]) == 0
    captured = capsys.readouterr()
    assert (
        captured.out == f"saved {out / 'w.mat'} (MD5 {md5(PAYLOAD)}, the sum given with --md5, from {site.url}/w.mat)\n"
    )
    assert len(messages(captured.err)) == 1


def test_every_address_failing_ends_in_one_error_line(site, out, capsys):
    argv = ["--url", site.url + "/missing.mat", "--url", site.url + "/wrong.mat", "--output", str(out / "w.mat")]
    assert dl.main(argv) == 2
    note, error = messages(capsys.readouterr().err)
    assert error.startswith(
        f"nst-tf download: error: all 2 addresses failed; the last, {site.url}/wrong.mat: downloaded file has MD5"
    )
    assert listing(out) == []


def test_a_complete_partial_file_is_checked_without_a_request(site, out):
    (out / RECORD).write_text(json.dumps(partial_file.new_record(site.url + "/w.mat", "w.mat", len(PAYLOAD))))
    (out / PARTIAL).write_bytes(PAYLOAD)
    assert get(site, out) == md5(PAYLOAD) and listing(out) == ["w.mat"] and site.requests == []


def test_a_complete_partial_file_with_a_wrong_sum_is_noted_and_downloaded_again_in_the_same_run(site, out, capsys):
    (out / RECORD).write_text(json.dumps(partial_file.new_record(site.url + "/w.mat", "w.mat", len(PAYLOAD))))
    (out / PARTIAL).write_bytes(bytes(len(PAYLOAD)))  # complete, but damaged
    assert get(site, out) == md5(PAYLOAD) and (out / "w.mat").read_bytes() == PAYLOAD
    assert site.ranges() == [None] and listing(out) == ["w.mat"]
    (line,) = messages(capsys.readouterr().err)
    assert line.startswith(f"nst-tf download: the partial download from {site.url}/w.mat: downloaded file has MD5 ")


@pytest.mark.parametrize(
    "refusal", [FileExistsError(17, "File exists"), PermissionError(1, "Operation not permitted")], ids=repr
)  # the second: a file system without hard links, where the file is renamed after a check
def test_an_existing_file_appearing_during_the_download_is_not_replaced(site, out, monkeypatch, refusal):
    def appear(*args, **kwargs):
        (out / "w.mat").write_bytes(b"mine")
        raise refusal

    monkeypatch.setattr(partial_file.os, "link", appear)
    with pytest.raises(
        NSTError,
        match="w.mat appeared during the download and is left as it is; "
        f"the downloaded file is kept as .*{re.escape(PARTIAL)}$",
    ):
        get(site, out)
    assert (out / "w.mat").read_bytes() == b"mine" and (out / PARTIAL).read_bytes() == PAYLOAD


def test_a_file_system_without_hard_links_gets_the_file_by_a_rename(site, out, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(partial_file.os, "link", refuse)
    assert get(site, out) == md5(PAYLOAD) and (out / "w.mat").read_bytes() == PAYLOAD and listing(out) == ["w.mat"]


@pytest.mark.parametrize("code, tries", [(socket.EAI_NONAME, 1), (socket.EAI_AGAIN, 3)])
def test_an_unknown_host_name_fails_at_once_and_a_passing_lookup_failure_is_retried(out, monkeypatch, code, tries):
    calls = []

    def lookup(*args, **kwargs):
        calls.append(args[0])
        raise socket.gaierror(code, "Name or service not known" if code == socket.EAI_NONAME else "Temporary failure")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    policy = dl.Policy(attempts=3, first_delay=0.0)
    with pytest.raises(NSTError) as error:
        dl.download("http://weights.example/w.mat", str(out / "w.mat"), known(PAYLOAD), policy=policy)
    assert len(calls) == tries
    no_network = "its name cannot be looked up (no network? then copy the file into pretrained-model/"
    assert (no_network in str(error.value)) == (code == socket.EAI_NONAME)
    assert listing(out) == []


def test_no_address_is_one_line(out):
    with pytest.raises(NSTError, match="^no address to download from$"):
        dl.download([], str(out / "w.mat"))
    assert listing(out) == []


def test_redirects_are_followed_to_http_addresses_only(site, out):
    assert get(site, out, "/moved.mat") == md5(PAYLOAD) and (out / "w.mat").read_bytes() == PAYLOAD
    with pytest.raises(NSTError, match=r"failed: HTTP 302 Found - Redirection to url 'file:///etc/hostname' is not"):
        dl.download(site.url + "/to-file.mat", str(out / "x.mat"), known(PAYLOAD), policy=FAST)
    assert listing(out) == ["w.mat"]


def test_a_redirect_loop_is_one_line(site, out, capsys):
    assert dl.main(["--url", site.url + "/loop.mat", "--output", str(out / "x.mat")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"nst-tf download: error: download of {site.url}/loop.mat failed: HTTP 302 ")
    assert "infinite loop" in line and listing(out) == []


def test_a_compressed_answer_is_refused(site, out):
    with pytest.raises(NSTError, match=r"the server sent the file compressed \(Content-Encoding gzip\)$"):
        get(site, out, "/gzip.mat")
    assert listing(out) == []


def test_a_refused_connection_is_retried_then_one_line(out, capsys):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(NSTError, match=r"failed: Connection refused \(after 3 tries\)$"):
        dl.download(f"http://127.0.0.1:{port}/w.mat", str(out / "w.mat"), known(PAYLOAD), policy=FAST)
    assert len(messages(capsys.readouterr().err)) == 2 and listing(out) == []


def test_a_second_download_to_the_same_file_is_refused(site, out, capsys):
    keep_a_partial(site, out)
    with open(out / PARTIAL, "rb+") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running download holds it
        assert dl.main(["--url", site.url + "/w.mat", "--output", str(out / "w.mat")]) == 2
    (line,) = messages(capsys.readouterr().err)
    assert line.endswith(
        f"another download to {out / 'w.mat'} is running (it holds {out / PARTIAL}); wait for it to end, or stop it"
    )
    assert (out / PARTIAL).read_bytes() == PAYLOAD[:50000] and len(site.requests) == 1


def test_a_name_too_long_for_the_partial_file_is_one_line(site, tmp_path, capsys):
    output = tmp_path / "new" / ("a" * 250)  # its partial file's name is over 255 bytes
    assert dl.main(["--url", site.url + "/w.mat", "--output", str(output), "--md5", md5(PAYLOAD)]) == 2
    (line,) = messages(capsys.readouterr().err)
    assert line.endswith(".nst_tf-partial: File name too long") and listing(tmp_path) == []


# Files that are not nst_tf's


def test_a_users_own_part_file_is_never_touched(site, tmp_path, capsys):
    mine = tmp_path / "w.h5.part"
    mine.write_bytes(b"mine")
    assert dl.main(["--url", site.url + "/missing.mat", "--output", str(tmp_path / "w.h5")]) == 2
    assert len(messages(capsys.readouterr().err)) == 1
    assert mine.read_bytes() == b"mine" and listing(tmp_path) == ["w.h5.part"]


@pytest.mark.parametrize("record", [None, "not json", '{"format": "something else"}'])
def test_a_partial_file_without_nst_tf_record_is_left_alone(site, out, capsys, record):
    (out / PARTIAL).write_bytes(b"mine")
    if record is not None:
        (out / RECORD).write_text(record)
    assert dl.main(["--url", site.url + "/w.mat", "--output", str(out / "w.mat")]) == 2
    (line,) = messages(capsys.readouterr().err)
    assert line.startswith("nst-tf download: error: ") and line.endswith("is left alone: move it away to download")
    assert (out / PARTIAL).read_bytes() == b"mine" and site.requests == []
    assert listing(out) == ([PARTIAL] if record is None else [PARTIAL, RECORD])


def test_a_pipe_in_place_of_the_partial_file_is_left_alone_unread(site, out):
    (out / RECORD).write_text(json.dumps(partial_file.new_record(site.url + "/w.mat", "w.mat", len(PAYLOAD))))
    os.mkfifo(out / PARTIAL)  # opening it to write would wait for a reader for ever (a process of its own: no hang)
    run = subprocess.run(command(site, out), cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=20)
    assert run.returncode == 2, run.stderr
    (line,) = messages(run.stderr)
    assert line.endswith(f"{out / PARTIAL} is not a regular file; it is left alone: move it away to download")
    assert listing(out) == [PARTIAL, RECORD] and site.requests == []


# Bad input: one line, exit 2, nothing created


@pytest.mark.parametrize(
    "url, message",
    [
        ("notaurl", "error: notaurl is not an http://, https:// or file:// address"),
        ("http://[::1", "http://[::1 is not a valid address: Invalid IPv6 URL"),
        ("http://127.0.0.1:99999/w.mat", "is not a valid address: Port out of range 0-65535"),
        ("http:///w.mat", "http:///w.mat names no host"),
        ("ftp://127.0.0.1/w.mat", "is not an http://, https:// or file:// address"),
        ("http://127.0.0.1/a b", "http://127.0.0.1/a b is not an address: percent-encode its spaces"),
        ("http://127.0.0.1/\x1b[2J", r"'http://127.0.0.1/\x1b[2J' is not an address"),
        ("file://elsewhere/w.mat", "is not a local file address"),
        ("file:///dev/zero", "/dev/zero is a device, pipe or socket, not a regular file"),
        ("file:///", "/ is a folder, not a regular file"),
    ],
)
def test_a_bad_address_is_one_line(tmp_path, capsys, url, message):
    assert dl.main(["--url", url, "--output", str(tmp_path / "new" / "w.mat")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("nst-tf download: error: ") and message in line
    assert listing(tmp_path) == []


def bad_outputs(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    os.symlink(tmp_path / "folder", tmp_path / "to-folder")
    return {
        "under a file": (tmp_path / "file" / "w.mat", "is not a folder"),
        "a folder": (tmp_path / "folder", "folder is a folder; give the file's name"),
        "a link to a folder": (tmp_path / "to-folder", "to-folder is a folder; give the file's name"),
        "a dangling link": (tmp_path / "dangling", "dangling exists (a symbolic link); remove it first"),
        "a folder's name": (str(tmp_path / "new") + "/", "names a folder; give the file's name"),
        "a NUL": (str(tmp_path / "w\0.mat"), "embedded null byte"),
    }


@pytest.mark.parametrize(
    "case", ["under a file", "a folder", "a link to a folder", "a dangling link", "a folder's name", "a NUL"]
)
def test_a_bad_output_is_one_line(site, tmp_path, capsys, case):
    output, message = bad_outputs(tmp_path)[case]
    before = listing(tmp_path)
    assert dl.main(["--url", site.url + "/w.mat", "--output", str(output)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("nst-tf download: error: ") and message in line
    assert listing(tmp_path) == before and site.requests == []


def test_a_read_only_folder_is_one_line(site, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    if os.access(folder, os.W_OK):  # root writes anywhere: the folder is read-only as far as access() says
        monkeypatch.setattr(partial_file.os, "access", lambda path, mode: False)
    assert dl.main(["--url", site.url + "/w.mat", "--output", str(folder / "sub" / "w.mat")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("read-only is not writable") and listing(folder) == [] and site.requests == []


@pytest.mark.parametrize(
    "argv, message",
    [(["--md5", "xyz"], "'xyz' is not an MD5 sum"), (["--max-size", "lots"], "'lots' is not a size"),
     (["--weights", "caffe"], "invalid choice: 'caffe'")],
)  # fmt: skip
def test_an_invalid_option_is_one_line_from_the_parser(capsys, argv, message):
    assert dl.main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("nst-tf download: error: ") and message in line


# Signals and a full disk, in a process of their own


def command(site, out, *extra):
    argv = ["--url", site.url + "/w.mat", "--output", str(out / "w.mat"), "--md5", md5(PAYLOAD)]
    return [sys.executable, "-m", "nst_tf.download", *argv, *extra]


def child_env():
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    return {**env, "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}


def wait_for_bytes(process, path, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end and process.poll() is None:
        if path.exists() and path.stat().st_size > 0:
            return
        time.sleep(0.01)
    pytest.fail(f"no bytes in {path} (exit status {process.poll()})")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_keeps_the_partial_file_and_a_rerun_resumes(site, out, signum):
    site.delay = 0.02  # about 1.3 s for the whole file
    with subprocess.Popen(command(site, out), cwd=ROOT, env=child_env(), stderr=subprocess.PIPE, text=True) as process:
        try:
            wait_for_bytes(process, out / PARTIAL)
            process.send_signal(signum)
            _, err = process.communicate(timeout=10)
        finally:
            process.kill()
    assert process.returncode == 128 + signum, err
    (line,) = messages(err)
    kept = (out / PARTIAL).stat().st_size
    name = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signum.name
    assert line == (
        f"nst-tf download: interrupted by {name}; {kept} bytes are kept in {out / PARTIAL}: "
        "run the same command again to resume"
    )
    assert 0 < kept < len(PAYLOAD) and listing(out) == [PARTIAL, RECORD]
    site.delay = 0
    rerun = subprocess.run(command(site, out), cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=20)
    assert rerun.returncode == 0, rerun.stderr
    assert (
        site.ranges()[-1] == f"bytes={kept}-" and (out / "w.mat").read_bytes() == PAYLOAD and listing(out) == ["w.mat"]
    )


@pytest.mark.parametrize("delay", [0.15, 0.3])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_while_the_downloader_starts_is_one_line(site, out, signum, delay):
    # Its modules take about 0.3 s to load: a signal then gave a KeyboardInterrupt traceback, or killed it silently.
    site.delay = 0.05
    with subprocess.Popen(command(site, out), cwd=ROOT, env=child_env(), stderr=subprocess.PIPE, text=True) as process:
        try:
            time.sleep(delay)
            process.send_signal(signum)
            _, err = process.communicate(timeout=10)
        finally:
            process.kill()
    assert process.returncode == 128 + signum, err
    assert "Traceback" not in err
    (line,) = messages(err)
    assert line.startswith("nst-tf download: interrupted") and line.endswith(
        ("nothing was saved", "run the same command again to resume")
    ), line
    assert listing(out) in ([], [PARTIAL, RECORD])


def test_a_signal_once_the_file_is_saved_says_it_is_saved(site, out, capsys, monkeypatch):
    class SignalledStdout:  # the signal arrives as the "saved" line is written
        def write(self, text):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # the handler runs here

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", SignalledStdout())
    status = dl.main(["--url", site.url + "/w.mat", "--output", str(out / "w.mat"), "--md5", md5(PAYLOAD)])
    assert status == 128 + signal.SIGTERM
    (line,) = messages(capsys.readouterr().err)
    assert line == f"nst-tf download: interrupted by SIGTERM once the file was saved as {out / 'w.mat'}"
    assert (out / "w.mat").read_bytes() == PAYLOAD and listing(out) == ["w.mat"]


def test_a_full_disk_keeps_the_partial_file_for_the_next_run(site, out):
    small_disk = (  # writes past 100000 bytes fail with EFBIG, as on a full disk
        "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000)); "
        "runpy.run_module('nst_tf.download', run_name='__main__', alter_sys=True)"
    )
    argv = [sys.executable, "-c", small_disk, *command(site, out)[3:]]
    run = subprocess.run(argv, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=20)
    assert run.returncode == 2, run.stderr
    (line,) = messages(run.stderr)
    assert line == (
        f"nst-tf download: error: cannot write {out / PARTIAL}: File too large; "
        f"100000 bytes are kept in {out / PARTIAL}: run the same command again to resume"
    )
    rerun = subprocess.run(command(site, out), cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=20)
    assert rerun.returncode == 0 and site.ranges()[-1] == "bytes=100000-" and (out / "w.mat").read_bytes() == PAYLOAD


# Local files (file://) and Keras' cache


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "served.mat"
    path.write_bytes(b"pretend weights " * 5000)
    return path


def test_a_local_file_is_copied_through_the_same_checks(tmp_path, source, capsys):
    destination = tmp_path / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    md5_sum = dl.download(source.as_uri(), str(destination), known_md5=known(source.read_bytes()))
    assert destination.read_bytes() == source.read_bytes() and md5_sum == md5(source.read_bytes())
    assert listing(destination.parent) == ["imagenet-vgg-verydeep-19.mat"]
    assert "MiB" in capsys.readouterr().err


def test_an_unknown_checksum_saves_nothing(tmp_path, source):
    destination = tmp_path / "new" / "weights.mat"
    with pytest.raises(
        NSTError,
        match=r"has MD5 [0-9a-f]{32}, expected 106118b7cf60435e6d8e04f6a6dc3657 or 8ee3263992981a1d26e73b3ca028a123; "
        "nothing was saved",
    ):
        dl.download(source.as_uri(), str(destination))
    assert listing(tmp_path) == ["served.mat"]


def test_an_existing_file_is_never_replaced(tmp_path, source):
    destination = tmp_path / "weights.mat"
    destination.write_bytes(b"mine")
    with pytest.raises(NSTError, match="weights.mat exists; remove it first"):
        dl.download(source.as_uri(), str(destination), known_md5=known(source.read_bytes()))
    assert destination.read_bytes() == b"mine"


def test_a_failed_download_is_one_line_and_exit_2(tmp_path, capsys):
    status = dl.main(["--url", (tmp_path / "absent.mat").as_uri(), "--output", str(tmp_path / "w.mat")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("nst-tf download: error: download of file://") and err.count("\n") == 1
    assert "absent.mat: No such file or directory" in err and listing(tmp_path) == []


def test_known_checksums_sizes_and_addresses():
    assert set(dl.KNOWN_MD5) == {"106118b7cf60435e6d8e04f6a6dc3657", "8ee3263992981a1d26e73b3ca028a123"}
    assert dl.URL.endswith("/imagenet-vgg-verydeep-19.mat") and dl.MAT_SOURCES == (dl.URL,)
    assert dl.KNOWN_SIZES.keys() == dl.KNOWN_MD5.keys() | dl.KERAS_KNOWN_MD5.keys()
    assert [dl.KNOWN_SIZES[m] for m in dl.KNOWN_MD5] == [None, None]  # not recorded: the ceiling bounds them
    assert dl.MAT_CEILING == 1 << 30 and dl.KERAS_CEILING == 100 << 20


KERAS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache folder, named by KERAS_HOME as Keras reads it."""
    home = tmp_path / "keras-home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def test_known_keras_checksum_size_and_addresses_are_keras_own():
    assert dl.KERAS_KNOWN_MD5.keys() == {"253f8cb515780f3b799900260a226db6"}
    assert dl.KNOWN_SIZES["253f8cb515780f3b799900260a226db6"] == 80134624
    assert dl.KERAS_URL == ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_FILE)
    assert dl.KERAS_SOURCES == (
        dl.KERAS_URL,
        "https://github.com/fchollet/deep-learning-models/releases/download/v0.1/" + KERAS_FILE,
    )


def test_keras_weights_are_copied_from_keras_cache(tmp_path, keras_home, capsys):
    cached = keras_home / "models" / KERAS_FILE
    cached.write_bytes(b"cached keras weights " * 3000)
    destination = tmp_path / "pretrained-model" / KERAS_FILE
    absent_url = (tmp_path / "nowhere.h5").as_uri()  # a download would fail
    md5_sum, origin = dl.fetch_keras_weights(absent_url, str(destination), known_md5=known(cached.read_bytes()))
    assert destination.read_bytes() == cached.read_bytes()
    assert origin == str(cached) and md5_sum == md5(cached.read_bytes())
    assert cached.exists() and listing(destination.parent) == [KERAS_FILE]
    assert "found Keras' cached copy" in capsys.readouterr().err


def test_keras_cache_is_under_home_without_keras_home(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    assert dl.keras_cache_dir() == os.path.join(str(tmp_path / "home"), ".keras", "models")
    cached = tmp_path / "home" / ".keras" / "models" / KERAS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights from home " * 100)
    destination = tmp_path / "w.h5"
    _, origin = dl.fetch_keras_weights(
        (tmp_path / "nowhere").as_uri(), str(destination), known_md5=known(cached.read_bytes())
    )
    assert origin == str(cached) and destination.read_bytes() == cached.read_bytes()


def test_a_cached_copy_with_an_unknown_checksum_is_left_alone_and_the_file_downloaded(
    tmp_path, keras_home, source, capsys
):
    cached = keras_home / "models" / KERAS_FILE
    cached.write_bytes(b"a damaged copy")
    destination = tmp_path / "w.h5"
    _, origin = dl.fetch_keras_weights(source.as_uri(), str(destination), known_md5=known(source.read_bytes()))
    assert origin == source.as_uri() and destination.read_bytes() == source.read_bytes()
    assert cached.read_bytes() == b"a damaged copy"
    assert "\nnot using the cached copy: download of file://" in capsys.readouterr().err


def test_keras_weights_never_replace_an_existing_file(tmp_path, keras_home, source):
    (keras_home / "models" / KERAS_FILE).write_bytes(source.read_bytes())
    destination = tmp_path / "w.h5"
    destination.write_bytes(b"mine")
    with pytest.raises(NSTError, match="exists; remove it first"):
        dl.fetch_keras_weights(source.as_uri(), str(destination), known_md5=known(source.read_bytes()))
    assert destination.read_bytes() == b"mine"


def test_main_with_keras_weights_reports_the_cached_copy(tmp_path, keras_home, monkeypatch, capsys):
    cached = keras_home / "models" / KERAS_FILE
    cached.write_bytes(b"cached keras weights " * 10)
    monkeypatch.setattr(dl, "KERAS_KNOWN_MD5", {md5(cached.read_bytes()): "test file"})
    destination = tmp_path / "out" / KERAS_FILE
    argv = ["--weights", "keras", "--url", (tmp_path / "nowhere.h5").as_uri(), "--output", str(destination)]
    assert dl.main(argv) == 0
    assert destination.read_bytes() == cached.read_bytes()
    assert (
        capsys.readouterr().out
        == f"saved {destination} (MD5 {md5(cached.read_bytes())}, test file, copied from {cached})\n"
    )


def test_main_with_keras_weights_checks_keras_size_and_checksum(tmp_path, keras_home, source, capsys):
    argv = ["--weights", "keras", "--url", source.as_uri(), "--output", str(tmp_path / "w.h5")]
    assert dl.main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("failed: the file there is 80000 bytes; w.h5 is 80134624 bytes")
    assert listing(tmp_path) == ["keras-home", "served.mat"]


# SqueezeNet: checked by SHA-256

SQUEEZENET_FILE = "squeezenet1_1-b8a52dc0.pth"
SQUEEZENET_SHA256 = "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b"
SQUEEZENET_PARTIAL, SQUEEZENET_RECORD = f".{SQUEEZENET_FILE}.nst_tf-partial", f".{SQUEEZENET_FILE}.nst_tf-partial.json"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def get_squeezenet(site, out, path="/squeezenet.pth", policy=FAST):
    known = {sha256(PAYLOAD): "test file"}
    return dl.fetch_squeezenet_weights(site.url + path, str(out / SQUEEZENET_FILE), known, policy=policy)


def test_known_squeezenet_checksum_address_and_path():
    from nst_tf.runs.presets import SQUEEZENET_MODEL

    assert dl.SQUEEZENET_MODEL == SQUEEZENET_MODEL == f"pretrained-model/{SQUEEZENET_FILE}"
    assert dl.SQUEEZENET_URL == f"https://download.pytorch.org/models/{SQUEEZENET_FILE}"
    assert dl.SQUEEZENET_SOURCES == (dl.SQUEEZENET_URL,)
    assert dl.SQUEEZENET_KNOWN_SHA256.keys() == {SQUEEZENET_SHA256}
    assert dl.SQUEEZENET_HASH_PREFIX == "b8a52dc0" and SQUEEZENET_SHA256.startswith(dl.SQUEEZENET_HASH_PREFIX)
    assert SQUEEZENET_SHA256 not in dl.KNOWN_SIZES and dl.SQUEEZENET_CEILING == 20 << 20  # the size is not recorded


def test_squeezenet_weights_are_saved_where_the_presets_read_them_and_checked_by_sha256(
    site, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pretrained-model").mkdir()  # the course's layout
    monkeypatch.setattr(dl, "SQUEEZENET_SOURCES", (site.url + "/" + SQUEEZENET_FILE,))
    monkeypatch.setattr(dl, "SQUEEZENET_KNOWN_SHA256", {sha256(PAYLOAD): "test file"})
    assert dl.main(["--weights", "squeezenet"]) == 0
    assert (tmp_path / dl.SQUEEZENET_MODEL).read_bytes() == PAYLOAD
    assert listing(tmp_path / "pretrained-model") == [SQUEEZENET_FILE]
    captured = capsys.readouterr()
    assert captured.out == f"saved {dl.SQUEEZENET_MODEL} (SHA-256 {sha256(PAYLOAD)}, test file)\n"
    assert messages(captured.err) == []


def test_sha256_given_on_the_command_line_is_checked(site, out, capsys):
    argv = ["--weights", "squeezenet", "--url", site.url + "/s.pth", "--output", str(out / "s.pth")]
    assert dl.main([*argv, "--sha256", sha256(PAYLOAD).upper()]) == 0
    assert (
        capsys.readouterr().out == f"saved {out / 's.pth'} (SHA-256 {sha256(PAYLOAD)}, the sum given with --sha256)\n"
    )
    argv = ["--url", site.url + "/w.mat", "--output", str(out / "w.mat")]  # the .mat, checked by SHA-256 when asked
    assert dl.main([*argv, "--sha256", sha256(PAYLOAD)]) == 0
    assert capsys.readouterr().out.startswith(f"saved {out / 'w.mat'} (SHA-256 {sha256(PAYLOAD)}, ")


def test_a_wrong_squeezenet_file_is_refused_naming_sha256_and_the_expected_sum(site, out, capsys):
    argv = ["--weights", "squeezenet", "--url", site.url + "/wrong.mat", "--output", str(out / SQUEEZENET_FILE)]
    assert dl.main(argv) == 2
    (line,) = messages(capsys.readouterr().err)
    assert line == (
        f"nst-tf download: error: download of {site.url}/wrong.mat failed: downloaded file has SHA-256 "
        f"{sha256(OTHER)}, expected {SQUEEZENET_SHA256}; nothing was saved (the file is removed: a file with a "
        "wrong sum cannot be resumed into a right one)"
    )
    assert listing(out) == []


def test_squeezenet_size_is_bounded_by_its_ceiling(site, out):
    site.mode = "huge"
    with pytest.raises(
        NSTError, match=rf"more than 20 MiB, the ceiling for {re.escape(SQUEEZENET_FILE)}; nothing was downloaded$"
    ):
        get_squeezenet(site, out)
    assert listing(out) == []


def test_a_partial_squeezenet_download_is_resumed_and_checked_by_sha256(site, out):
    site.drops = [50000]
    with pytest.raises(NSTError, match="50000 bytes are kept in"):
        get_squeezenet(site, out, policy=dl.Policy(attempts=1, chunk=4096))
    assert listing(out) == [SQUEEZENET_PARTIAL, SQUEEZENET_RECORD]
    assert json.loads((out / SQUEEZENET_RECORD).read_text())["hash"] == "sha256"
    assert get_squeezenet(site, out) == (sha256(PAYLOAD), site.url + "/squeezenet.pth")
    assert site.ranges() == [None, "bytes=50000-"]
    assert (out / SQUEEZENET_FILE).read_bytes() == PAYLOAD and listing(out) == [SQUEEZENET_FILE]


def test_a_complete_partial_file_is_rehashed_with_its_records_algorithm(site, out):
    record = partial_file.new_record(site.url + "/squeezenet.pth", SQUEEZENET_FILE, len(PAYLOAD), None, "sha256")
    (out / SQUEEZENET_RECORD).write_text(json.dumps(record))
    (out / SQUEEZENET_PARTIAL).write_bytes(PAYLOAD)
    assert get_squeezenet(site, out)[0] == sha256(PAYLOAD) and site.requests == []
    assert listing(out) == [SQUEEZENET_FILE]


def test_a_partial_file_recorded_for_md5_restarts_a_sha256_download(site, out, capsys):
    record = partial_file.new_record(site.url + "/squeezenet.pth", SQUEEZENET_FILE, len(PAYLOAD))
    assert record["hash"] == "md5"
    (out / SQUEEZENET_RECORD).write_text(json.dumps(record))
    (out / SQUEEZENET_PARTIAL).write_bytes(PAYLOAD[:50000])
    assert get_squeezenet(site, out)[0] == sha256(PAYLOAD)
    assert site.ranges() == [None] and (out / SQUEEZENET_FILE).read_bytes() == PAYLOAD
    assert listing(out) == [SQUEEZENET_FILE]
    (line,) = messages(capsys.readouterr().err)
    assert line == (
        f"nst-tf download: {out / SQUEEZENET_PARTIAL}: its record names MD5, but {SQUEEZENET_FILE} is checked by "
        "SHA-256; starting over"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sha256", "xyz"], "argument --sha256: 'xyz' is not a SHA-256 sum (64 hexadecimal digits)"),
        (
            ["--sha256", "0" * 32],
            f"'{'0' * 32}' is not a SHA-256 sum (64 hexadecimal digits); an MD5 sum goes with --md5",
        ),
        (["--md5", "0" * 64], "is not an MD5 sum (32 hexadecimal digits); a SHA-256 sum goes with --sha256"),
        (["--md5", "0" * 32, "--sha256", "0" * 64], "argument --sha256: not allowed with argument --md5"),
    ],
)
def test_a_bad_sha256_is_one_line_from_the_parser(tmp_path, capsys, argv, message):
    assert dl.main([*argv, "--output", str(tmp_path / "s.pth")]) == 2
    (error,) = capsys.readouterr().err.splitlines()
    assert error.startswith("nst-tf download: error: ") and error.endswith(message)
    assert listing(tmp_path) == []


def test_help_lists_squeezenet(capsys):
    with pytest.raises(SystemExit) as exit_info:
        dl.main(["-h"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--weights {mat,keras,squeezenet}" in text and "--sha256 SHA256" in text
    assert f"squeezenet: torchvision's {SQUEEZENET_FILE}" in text and "or SHA-256 for squeezenet" in text
    assert f"or {SQUEEZENET_FILE} for squeezenet" in text and "20 MiB for squeezenet" in text


def test_a_refused_certificate_is_one_line_at_once_without_retries(tmp_path, out):
    """An HTTPS server on this machine with a certificate of its own, which no authority signed."""
    import ssl
    import threading
    import time

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
         "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        start = time.monotonic()
        url = f"https://127.0.0.1:{server.server_address[1]}/w.mat"
        with pytest.raises(NSTError, match=r"^download of .*/w\.mat failed: the server's certificate was refused: "):
            dl.download(url, str(out / "w.mat"), known(PAYLOAD), policy=dl.Policy(attempts=3, first_delay=5.0))
        assert time.monotonic() - start < 4  # the 5 s delays of a retry never come
    finally:
        server.shutdown()
        server.server_close()
    assert listing(out) == []


# Where the weights go, and the command's --download


@pytest.fixture
def served_mat(site, tmp_path, monkeypatch):
    """The test server serving synthetic VGG-19 weights as the .mat, accepted by their MD5; an empty current
    folder; NST_TF_HOME naming ``home`` in it (not made). Returns the weights' bytes."""
    from nst_tf.plan.synthetic import write_vgg19_mat

    data = Path(write_vgg19_mat(tmp_path / "served" / "w.mat", width_divisor=16)).read_bytes()
    site.payload = data
    monkeypatch.setattr(dl, "MAT_SOURCES", (site.url + "/imagenet-vgg-verydeep-19.mat",))
    monkeypatch.setattr(dl, "KNOWN_MD5", known(data))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NST_TF_HOME", str(work / "home"))
    return data


MAT_FILE = "imagenet-vgg-verydeep-19.mat"


@pytest.mark.parametrize("course_layout", [True, False])
def test_the_weights_go_to_pretrained_model_where_it_exists_else_to_nst_tf_home(served_mat, course_layout, capsys):
    if course_layout:
        os.mkdir("pretrained-model")
    assert dl.main([]) == 0
    saved = os.path.join("pretrained-model" if course_layout else os.environ["NST_TF_HOME"], MAT_FILE)
    assert Path(saved).read_bytes() == served_mat
    assert listing(Path.cwd()) == ["pretrained-model" if course_layout else "home"]
    assert capsys.readouterr().out.startswith(f"saved {saved} (MD5 ")


def test_dir_chooses_the_folder_and_excludes_output(served_mat, capsys):
    assert dl.main(["--dir", "mine/weights"]) == 0
    assert (Path("mine") / "weights" / MAT_FILE).read_bytes() == served_mat and listing(Path.cwd()) == ["mine"]
    assert dl.main(["--dir", "a", "--output", "b.mat"]) == 2
    assert "argument --output: not allowed with argument --dir" in capsys.readouterr().err


@pytest.mark.parametrize("spelling", ["--max-size", "--max_size", "--max_size=1K"])
def test_options_are_taken_with_underscores_as_with_dashes(served_mat, spelling, capsys):
    argv = [spelling] if "=" in spelling else [spelling, "1K"]
    assert dl.main([*argv, "--output", "w.mat"]) == 2
    assert "more than 1 KiB, the ceiling for w.mat" in capsys.readouterr().err and listing(Path.cwd()) == []


def run_command(*extra):
    """``python -m nst_tf`` as its entry point runs it (the downloader passed in), tiny and short."""
    from nst_tf.__main__ import main

    return main(["--epochs", "2", "--max_size", "48", "--print_every", "1", *extra])


@pytest.mark.parametrize("course_layout", [True, False])
def test_download_fetches_the_missing_weights_then_runs(served_mat, course_layout, capsys):
    if course_layout:
        os.mkdir("pretrained-model")
    assert run_command("--download") == 0, capsys.readouterr().err
    folder = Path("pretrained-model") if course_layout else Path(os.environ["NST_TF_HOME"])
    assert (folder / MAT_FILE).read_bytes() == served_mat
    assert (Path("output") / "generated_image.jpg").is_file()
    assert f"saved {folder / MAT_FILE} (MD5 " in capsys.readouterr().err


def test_download_leaves_weights_already_there_alone(served_mat, site, capsys):
    from nst_tf.plan.synthetic import write_vgg19_mat

    write_vgg19_mat(Path(os.environ["NST_TF_HOME"]) / MAT_FILE, width_divisor=16)
    assert run_command("--download") == 0, capsys.readouterr().err
    assert site.requests == []


def test_download_fetches_to_the_model_path_given(served_mat, capsys):
    assert run_command("--download", "--model", "w/imagenet-vgg-verydeep-19.mat") == 0, capsys.readouterr().err
    assert (Path("w") / MAT_FILE).read_bytes() == served_mat and not Path(os.environ["NST_TF_HOME"]).exists()


def test_download_of_a_file_it_does_not_know_is_one_line(served_mat, site, capsys):
    assert run_command("--download", "--model", "mine.mat") == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("nst-tf: error: --download: mine.mat is none of the files it fetches") and not site.requests


def test_download_without_the_entry_point_names_the_command_to_run(served_mat, site, capsys):
    from nst_tf.app.cli import main

    assert main(["--download"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("fetch the file with: python -m nst_tf.download") and not site.requests

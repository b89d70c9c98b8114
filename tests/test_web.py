"""The web page, ``python -m nst_tf.web``: its HTTP answers to bad uploads and options (a message, a 4xx status, no
traceback), its defaults (loopback), its queue's limit and its stop (SIGTERM within 3 s, nothing left behind), and
the page itself driven in headless Chromium: two images uploaded, the picture seen forming, a run stopped, a
result downloaded and compared with the library's for the same settings and seed.

The servers run as subprocesses with small synthetic weights in ``$NST_TF_HOME`` and a private ``$TMPDIR``.
Without Chromium (``apt-get install chromium chromium-driver``) the browser tests are skipped, saying so;
``NST_TF_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure. ``NST_TF_SCREENSHOT=docs/web-page.png``
saves the page's screenshot for the docs.
"""

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest

import nst_tf
from nst_tf.plan.synthetic import write_vgg19_mat
from nst_tf.web.settings import preview_every

ROOT = Path(__file__).resolve().parent.parent
#: Debian's browser and driver (``NST_TF_CHROMIUM`` names another browser, as the test of a missing one does).
CHROMIUM = os.environ.get("NST_TF_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--window-size=1100,1000",
)
#: The uploads' limits the test servers get: small, so that an oversized upload is small too.
SMALL_LIMITS = ("--max_upload_mb", "0.25", "--max_pixels", "1000000")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """$NST_TF_HOME with small synthetic weights, and a content photo and a style image beside them."""
    folder = tmp_path_factory.mktemp("web_home")
    write_vgg19_mat(folder / "imagenet-vgg-verydeep-19.mat", width_divisor=16)
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:96, 0:128]
    content = np.stack([rows * 2, cols * 2, 255 - rows - cols], axis=-1) + rng.normal(0, 8, (96, 128, 3))
    PIL.Image.fromarray(np.clip(content, 0, 255).astype(np.uint8)).save(folder / "photo.png")
    PIL.Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / "painting.png")
    return folder


class Server:
    """``python -m nst_tf.web`` in a subprocess, in an empty folder with its own $TMPDIR; ``url`` once it
    printed its address."""

    def __init__(self, home, folder, *options):
        self.tmp = folder / "tmp"
        self.tmp.mkdir(parents=True)
        env = {**os.environ, "NST_TF_HOME": str(home), "TMPDIR": str(self.tmp), "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [sys.executable, "-m", "nst_tf.web", "--port", "0", *SMALL_LIMITS, *options]
        self.log = open(folder / "server.err", "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        self.first_line = _line_within(self.process.stdout, 60)
        assert self.first_line.startswith("nst_tf.web: serving on http://"), (self.first_line, self.errors())
        self.url = self.first_line.split()[3].rstrip("/")

    def errors(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process.stdout.close()
        self.log.close()


def _line_within(stream, seconds):
    lines = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return lines[0] if lines else ""


@pytest.fixture(scope="module")
def server(home, tmp_path_factory):
    running = Server(home, tmp_path_factory.mktemp("web_server"))
    yield running
    running.stop()


def _png(width=8, height=6):
    import io

    buffer = io.BytesIO()
    PIL.Image.new("RGB", (width, height), (200, 100, 50)).save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb_png(width=100_000, height=100_000):
    """A PNG whose header claims ``width`` x ``height`` pixels, with hardly any data: a decompression bomb."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def post_form(url, fields=(), files=()):
    """POSTs a multipart form: ``fields`` (name, value) and ``files`` (name, filename, bytes); returns (status,
    JSON or text)."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in fields:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, filename, data in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        body += (head + "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return _answer(request)


def _answer(request):
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def _runs(server):
    return _answer(urllib.request.Request(server.url + "/runs"))[1]["runs"]


def _wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


SMALL = (("size", "64"), ("iterations", "2"), ("seed", "0"))
STYLE = ("style", "painting.png", _png(40, 40))
CONTENT = ("content", "photo.png", _png(80, 60))


@pytest.mark.parametrize(
    "fields, files, status, message",
    [
        pytest.param(
            SMALL, [("content", "big.png", os.urandom(300_000)), STYLE], 413, "is over 0.25 MB", id="oversized"
        ),
        pytest.param(
            SMALL, [("content", "notes.png", b"just some text\n"), STYLE], 400, "not an image", id="not-image"
        ),
        pytest.param(SMALL, [("content", "bomb.png", _bomb_png()), STYLE], 413, "too many pixels", id="bomb"),
        pytest.param(
            SMALL, [CONTENT, ("style", "bomb.png", _bomb_png(2000, 1000))], 413, "at most 1,000,000", id="big"
        ),
        pytest.param(
            (("iterations", "many"),), [CONTENT, STYLE], 400, "iterations must be a whole number", id="option"
        ),
        pytest.param((("alpha", "-1"),), [CONTENT, STYLE], 400, "alpha must be a finite number", id="alpha"),
        pytest.param((("preset", "../x"),), [CONTENT, STYLE], 400, "preset must be one of", id="preset"),
        pytest.param(SMALL, [STYLE], 400, "choose a content photo", id="no-content"),
        pytest.param((("size", "5000"),), [CONTENT, STYLE], 400, "size must be at most 1024", id="size"),
    ],
)
def test_a_bad_upload_or_option_gets_a_message_and_a_4xx_status(server, fields, files, status, message):
    answer_status, answer = post_form(server.url + "/runs", fields, files)
    assert answer_status == status and message in answer["error"], answer
    assert "Traceback" not in json.dumps(answer) and "Traceback" not in server.errors()
    assert list(server.tmp.rglob("*.upload")) == []  # the refused run's folder is gone


def _truncated_png(width=900, height=900):
    """A PNG whose header says ``width`` x ``height`` (under the test servers' pixel limit) with hardly any data."""
    return _bomb_png(width, height)


@pytest.mark.parametrize(
    "fields, files, status, message",
    [
        pytest.param(SMALL, [CONTENT, STYLE, ("bogus", "x.png", b"x" * 300)], 400, "unknown field 'bogus'", id="bogus"),
        pytest.param((*SMALL, ("bundled_content", "off")), [STYLE], 400, "choose a content photo", id="off"),
        pytest.param(
            SMALL,
            [("content", "t.png", _truncated_png()), STYLE],
            400,
            "the content photo: image file is trunc",
            id="cut",
        ),
    ],
)
def test_unknown_fields_unticked_boxes_and_truncated_images_are_refused_plainly(server, fields, files, status, message):
    answer_status, answer = post_form(server.url + "/runs", fields, files)
    assert answer_status == status and message in answer["error"], answer
    assert ".upload" not in answer["error"] and "Traceback" not in server.errors()


def _raw(server, method, path, body=None, headers=()):
    request = urllib.request.Request(server.url + path, body, dict(headers), method=method)
    return _answer(request)


def test_a_malformed_multipart_body_gets_400_and_no_traceback(server):
    headers = {"Content-Type": "multipart/form-data; boundary=zzz"}
    status, answer = _raw(server, "POST", "/runs", b"garbage", headers)
    assert status == 400 and "not valid multipart/form-data" in answer["error"], answer
    assert "\n" not in answer["error"] and "Traceback" not in server.errors()


def test_other_sites_and_other_host_names_are_refused(server):
    port = server.url.rsplit(":", 1)[1]
    evil = {"Origin": "http://evil.example"}
    for path in ("/runs", "/runs/1/stop"):
        status, answer = _raw(server, "POST", path, b"", evil)
        assert status == 403 and "another site" in answer["error"], (path, answer)
    for host in (f"evil.example:{port}", "127.0.0.1", f"localhost:{int(port) + 1}"):
        status, answer = _raw(server, "GET", "/runs/1/result.png", headers={"Host": host})
        assert status == 403 and "is not this server's" in answer["error"], (host, answer)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        status, answer = _raw(server, "GET", "/runs", headers={"Host": host})
        assert status == 200, (host, answer)
        same = {"Host": host, "Origin": f"http://{host}"}
        status, answer = post_form_with(server.url + "/runs", same)
        assert status == 400 and "choose a content photo" in answer["error"], (host, answer)  # past the check


def post_form_with(url, headers):
    boundary = uuid.uuid4().hex
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="size"\r\n\r\n64\r\n--{boundary}--\r\n'.encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", **headers}
    return _answer(urllib.request.Request(url, body, headers))


def test_the_hosts_answered_loopback_only_or_any_for_another_address():
    from nst_tf.web.routes import State

    state = SimpleNamespace()
    State.allow_hosts(state, "127.0.0.1", 80, True)
    assert state.hosts == {"127.0.0.1", "localhost", "[::1]", "127.0.0.1:80", "localhost:80", "[::1]:80"}
    State.allow_hosts(state, "::1", 8000, True)
    assert state.hosts == {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"}
    State.allow_hosts(state, "0.0.0.0", 8000, False)
    assert state.hosts is None


def test_the_event_stream_ends_quietly_when_its_connection_is_reset(monkeypatch):
    import asyncio

    from aiohttp import ClientConnectionResetError, web
    from aiohttp.test_utils import make_mocked_request

    from nst_tf.web import routes

    async def reset(self, data):
        raise ClientConnectionResetError("Cannot write to closing transport")

    async def prepare(self, request):
        return None

    monkeypatch.setattr(web.StreamResponse, "write", reset)
    monkeypatch.setattr(web.StreamResponse, "prepare", prepare)
    state = SimpleNamespace(closing=False, version=1, snapshot=lambda: {"runs": []})
    request = make_mocked_request("GET", "/events", app={routes.STATE: state})
    assert isinstance(asyncio.run(routes.events(request)), web.StreamResponse)


def test_options_take_dashes_or_underscores_and_a_typo_gets_a_suggestion():
    import io

    from nst_tf.web.__main__ import main

    for argv, message in (
        (["--max-upload-mb", "0"], "--max_upload_mb must be above 0"),
        (["--max_upload_mb", "2000"], "--max_upload_mb must be above 0"),
        (["--max-uplod-mb", "5"], "did you mean --max_upload_mb?"),
    ):
        err = io.StringIO()
        assert main(argv, err=err) == 2 and message in err.getvalue(), err.getvalue()
        assert err.getvalue().count("\n") == 1


def test_a_client_filename_never_becomes_a_path(server):
    status, answer = post_form(
        server.url + "/runs",
        SMALL,
        [("content", "../../../escaped.png", _png(80, 60)), ("style", "/tmp/x/../s.png", _png(40, 40))],
    )
    assert status == 200, answer
    _wait_for(lambda: _runs(server)[-1]["state"] in ("done", "failed"), 120, "the run's end")
    assert _runs(server)[-1]["state"] == "done", _runs(server)[-1]
    names = {path.name for path in server.tmp.parent.rglob("*")}
    assert not names & {"escaped.png", "s.png"}
    assert {path.name for path in server.tmp.glob("nst_tf-web-*/run-*/*")} == {
        "content.upload",
        "style-0.upload",
        "result.png",
    }


def test_unknown_paths_and_runs_get_a_message_not_a_page(server):
    for path in ("/static/../settings.py", "/static/page.html", "/runs/99/result.png", "/runs/x/stop", "/nothing"):
        status, answer = _answer(urllib.request.Request(server.url + path))
        assert 400 <= status < 500 and answer["error"], (path, answer)


def test_the_page_and_its_assets_come_from_this_server_only(server):
    with urllib.request.urlopen(server.url + "/") as response:
        page, policy = response.read().decode(), response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    for asset in ("/static/app.js", "/static/style.css"):
        assert f'"{asset}"' in page
    for text in (
        page,
        *(urllib.request.urlopen(server.url + a).read().decode() for a in ("/static/app.js", "/static/style.css")),
    ):
        assert (
            "http://" not in text.replace("http://www.w3.org/2000/svg", "")
            and "https://" not in text
            and "//" + "cdn" not in text
        )


def test_the_server_binds_loopback_by_default_and_documents_its_options(server):
    assert server.first_line.startswith("nst_tf.web: serving on http://127.0.0.1:")
    run = subprocess.run([sys.executable, "-m", "nst_tf.web", "-h"], capture_output=True, text=True, check=True)
    for option in ("--host", "--port", "--queue", "--max_upload_mb", "--max_pixels", "127.0.0.1"):
        assert option in run.stdout
    assert run.stdout.index("examples:") < run.stdout.index("options:")
    usage = run.stdout.splitlines()[0]
    assert usage.startswith("usage: python -m nst_tf.web [-h]") and len(usage) < 100


def test_a_full_queue_refuses_runs_and_sigterm_ends_the_running_one_within_3_s(home, tmp_path):
    busy = Server(home, tmp_path, "--queue", "1")
    try:
        long_run = (
            ("size", "64"),
            ("iterations", "10000"),
            ("seed", "0"),
            ("bundled_content", "on"),
            ("bundled_style", "on"),
        )
        assert post_form(busy.url + "/runs", long_run)[0] == 200
        _wait_for(lambda: _runs(busy)[0]["iteration"] > 0, 120, "the first run to be running")
        assert post_form(busy.url + "/runs", long_run)[0] == 200  # waits
        status, answer = post_form(busy.url + "/runs", long_run)
        assert status == 429 and "the queue is full" in answer["error"]
        assert [run["state"] for run in _runs(busy)] == ["running", "queued"]
        assert list(busy.tmp.iterdir())  # the runs' private folder
        started = time.monotonic()
        busy.process.send_signal(signal.SIGTERM)
        assert busy.process.wait(10) == 0
        assert time.monotonic() - started < 3.0
        assert list(busy.tmp.iterdir()) == [] and "Traceback" not in busy.errors()
    finally:
        busy.stop()


# The page in a real browser.


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium through chromedriver (Selenium), downloading into its own folder."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        reason = f"no browser: {', '.join(missing)} missing (apt-get install chromium chromium-driver)"
        if os.environ.get("NST_TF_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + "; NST_TF_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def _button(driver, label):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//button[normalize-space()='{label}']")


def _set(driver, name, value):
    field = driver.find_element("name", name)
    field.clear()
    field.send_keys(value)


def _downloaded(driver, name):
    path = driver.downloads / name
    return _wait_for(lambda: path.exists() and not list(driver.downloads.glob("*.crdownload")) and path, 30, name)


def _selected_state(driver):
    return driver.execute_script(
        "const item = document.querySelector('#runs li.selected'); return item && item.dataset.state;"
    )


def test_the_page_shows_the_picture_forming_stops_and_downloads_the_librarys_result(browser, server, home):
    browser.get(server.url + "/")
    inputs = browser.find_elements("css selector", "input[type=file]")
    inputs[0].send_keys(str(home / "photo.png"))
    inputs[1].send_keys(str(home / "painting.png"))
    for name, value in (("size", "64"), ("iterations", "5000"), ("seed", "0")):
        _set(browser, name, value)
    browser.execute_script(
        "window.sources = []; new MutationObserver(() => window.sources.push(document.getElementById('picture').src))"
        ".observe(document.getElementById('picture'), {attributes: true, attributeFilter: ['src']});"
    )
    _button(browser, "Start").click()
    _wait_for(
        lambda: len(set(browser.execute_script("return window.sources"))) >= 3, 120, "the picture to change twice"
    )
    assert browser.execute_script("return document.getElementById('picture').tagName") == "IMG"
    _button(browser, "Stop").click()
    _wait_for(lambda: _selected_state(browser) == "stopped", 10, "the run to stop")
    _wait_for(lambda: _button(browser, "Download").is_enabled(), 10, "a result to download")
    _button(browser, "Download").click()
    number = browser.execute_script("return document.querySelector('#runs li.selected button').textContent").split()[1]
    with PIL.Image.open(_downloaded(browser, f"nst_tf-run-{number.rstrip(':')}.png")) as stopped:
        assert stopped.size == (64, 48)

    iterations = 12
    _set(browser, "iterations", str(iterations))
    _button(browser, "Start").click()
    _wait_for(lambda: _selected_state(browser) == "done", 120, "the second run to finish")
    _wait_for(lambda: _button(browser, "Download").is_enabled(), 10, "its result")
    number = browser.execute_script("return document.querySelector('#runs li.selected button').textContent").split()[1]
    _button(browser, "Download").click()
    with PIL.Image.open(_downloaded(browser, f"nst_tf-run-{number.rstrip(':')}.png")) as image:
        downloaded = np.asarray(image.convert("RGB"))
    if os.environ.get("NST_TF_SCREENSHOT"):
        browser.save_screenshot(str(ROOT / os.environ["NST_TF_SCREENSHOT"]))

    expected = nst_tf.stylize_image(
        str(home / "photo.png"),
        str(home / "painting.png"),
        nst_tf.StyleTransferConfig(seed=0),
        iterations=iterations,
        preview_every=preview_every(iterations),
        size=nst_tf.ImageSize(max_size=64),
        weights=str(home / "imagenet-vgg-verydeep-19.mat"),
        progress=False,
    ).image
    assert downloaded.shape == expected.shape == (48, 64, 3)
    assert np.abs(downloaded.astype(int) - expected.astype(int)).max() <= 2


def test_a_bad_option_in_the_page_gets_a_message_there(browser, server):
    browser.get(server.url + "/")
    browser.find_element("name", "bundled_content").click()
    browser.find_element("name", "bundled_style").click()
    _set(browser, "iterations", "0")
    before = len(_runs(server))
    _button(browser, "Start").click()
    message = _wait_for(lambda: browser.find_element("id", "message").text, 10, "a message")
    assert "iterations must be a positive whole number" in message and len(_runs(server)) == before


@pytest.mark.parametrize("require, outcome", [("", "1 skipped"), ("1", "1 error")])
def test_without_chromium_the_browser_tests_say_so_or_fail_where_required(tmp_path, require, outcome):
    env = {**os.environ, "NST_TF_CHROMIUM": str(tmp_path / "no-chromium"), "NST_TF_REQUIRE_BROWSER": require}
    env.pop("NST_TF_SCREENSHOT", None)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-ra",
        __file__,
        "-k",
        "bad_option_in_the_page",
    ]
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert outcome in run.stdout and "no browser: " in run.stdout and "no-chromium missing" in run.stdout, run.stdout

"""The HTTP side (aiohttp): the page, its script and style sheet (served from the package, by fixed names), the
runs' states as server-sent events (``/events``) or JSON (``/runs``), a run started from the form, stopped, its
picture and its result. Every refusal is JSON ``{"error": message}`` with a 4xx status, which the page shows;
no client-given name becomes a path, and an unexpected error is one line, its traceback on the server's console.
"""

import asyncio
import json
import os
import re
import shutil
import tempfile
import traceback
from importlib import resources

from aiohttp import web

from ..app.jobs.request import BUNDLED_IMAGES_DIR
from ..ground.errors import NSTError
from ..plan.config import COLOR_MODES
from ..runs.presets import PRESETS
from .settings import DEFAULT_SIZE, check_settings, prepare_inputs, weights_path
from .uploads import UploadError, check_image, read_form
from .worker import Run, RunQueue

#: Where the application keeps its ``State``.
STATE = web.AppKey("state", object)
#: The files the page loads, by the only names served, with their types.
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
#: The bundled images the page offers.
BUNDLED = {
    "content": os.path.join(BUNDLED_IMAGES_DIR, "content.jpg"),
    "style": os.path.join(BUNDLED_IMAGES_DIR, "style.jpg"),
}
#: Every response: nothing loads from elsewhere, nothing is framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class State:
    """The server's state: its private ``root`` folder, ``limits``, the ``queue`` and a version bumped on every
    change (``bump``, from any thread), which the event streams wait on."""

    def __init__(self, root, limits, err):
        self.root, self.limits, self.err = root, limits, err
        self.loop = asyncio.get_running_loop()
        self.version, self.closing = 0, False
        #: The Host headers answered (``allow_hosts``); None: any (a non-loopback ``--host``).
        self.hosts = None
        self._changed = asyncio.Event()
        self.queue = RunQueue(limits, self.notify, err)

    def allow_hosts(self, host, port, loopback):
        """Answers only the Host headers that name this loopback server (``host``) on ``port``, or any when not
        ``loopback`` (a trusted network's address, which the server warns about)."""
        if not loopback:
            self.hosts = None
            return
        names = ("127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host else host.lower())
        self.hosts = {f"{name}:{port}" for name in names} | (set(names) if port == 80 else set())

    def notify(self):
        self.loop.call_soon_threadsafe(self.bump)

    def bump(self):
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, timeout):
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def snapshot(self):
        return {"runs": [run.public() for run in list(self.queue.runs.values())]}


def upload_total(limits):
    """The most bytes one form may have: its files and fields."""
    return (limits.styles + 1) * limits.upload_bytes + 2**20


def _error(message, status):
    return web.json_response({"error": message}, status=status)


@web.middleware
async def same_origin(request, handler):
    """Refuses (403) a Host header this server does not answer to (DNS rebinding: another site's name for
    127.0.0.1), and a POST whose Origin is another site's (a form or ``fetch`` from a page elsewhere)."""
    hosts = request.app[STATE].hosts
    host = request.headers.get("Host", "").lower()
    if hosts is not None and host not in hosts:
        return _error(f"refused: the Host {host[:80]!r} is not this server's; open it as 127.0.0.1 or localhost", 403)
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin is not None and origin.lower() != f"http://{host}":
        return _error(f"refused: a request from {origin[:80]!r}, another site; use the page itself", 403)
    return await handler(request)


@web.middleware
async def errors(request, handler):
    """Every error as JSON with a message: HTTP's own (404, 405, ...), and an unexpected one as 500 without
    its traceback, which goes to the server's console."""
    try:
        response = await handler(request)
    except UploadError as error:
        return _error(str(error), error.status)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _error(f"{error.reason}: {request.method} {request.path[:80]}", error.status)
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001 - the page gets one line, never a traceback
        request.app[STATE].err.write(f"nst_tf.web: {request.method} {request.path}:\n{traceback.format_exc()}")
        return _error(f"internal error ({type(error).__name__}); see the server's output", 500)
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


async def page(request):
    text = resources.files(__package__).joinpath("static", "page.html").read_text(encoding="utf-8")
    presets = "".join(f'<option value="{name}">{name}</option>' for name in PRESETS)
    defaults = {
        name: {
            "iterations": min(p.config.epochs, request.app[STATE].limits.iterations),
            "alpha": p.config.alpha,
            "beta": p.config.beta,
            "colours": p.config.normalization == "means",
        }
        for name, p in PRESETS.items()
    }
    text = text.replace("{{presets}}", presets).replace("{{defaults}}", json.dumps(defaults).replace("<", "\\u003c"))
    text = text.replace("{{size}}", str(DEFAULT_SIZE)).replace("{{max_size}}", str(request.app[STATE].limits.max_size))
    text = text.replace("{{colours}}", "".join(f'<option value="{mode}">{mode}</option>' for mode in COLOR_MODES))
    return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})


async def static(request):
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    body = resources.files(__package__).joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=STATIC[name], headers={"Cache-Control": "no-store"})


async def runs(request):
    return web.json_response(request.app[STATE].snapshot())


async def events(request):
    """The runs' states as server-sent events: one now, one after each change (at most 10 a second)."""
    state = request.app[STATE]
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-store", **SECURITY_HEADERS}
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    seen = None
    try:
        while not state.closing:
            if state.version != seen:
                seen = state.version
                await response.write(f"data: {json.dumps(state.snapshot())}\n\n".encode())
            else:
                await response.write(b": still here\n\n")
            await state.changed(15.0)
            await asyncio.sleep(0.1)
    except ConnectionResetError:  # the tab was closed: normal, and silent
        pass
    return response


def _run_of(request):
    try:
        number = int(request.match_info["number"])
    except ValueError:
        number = None
    run = request.app[STATE].queue.runs.get(number)
    if run is None:
        raise web.HTTPNotFound(reason="no such run")
    return run


async def picture(request):
    run = _run_of(request)
    if run.preview is None:
        return _error("no picture yet", 404)
    return web.Response(body=run.preview, content_type="image/png", headers={"Cache-Control": "no-store"})


async def result(request):
    run = _run_of(request)
    if run.result is None:
        return _error(f"run {run.number} has no result ({run.state})", 404)
    disposition = f'attachment; filename="nst_tf-run-{run.number}.png"'
    return web.FileResponse(run.result, headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})


async def stop(request):
    run = _run_of(request)
    request.app[STATE].queue.stop(run.number)
    return web.json_response({"number": run.number, "state": run.state})


def _images(fields, content, styles):
    """The content image and the style images: the uploads, or the bundled ones where ticked."""
    if fields.get("bundled_content") == "on":  # what a ticked checkbox sends; anything else is unticked
        if content is not None:
            raise UploadError("choose a content photo or tick the bundled one, not both")
        content = BUNDLED["content"]
    if fields.get("bundled_style") == "on":
        styles = [BUNDLED["style"], *styles]
    if content is None:
        raise UploadError("choose a content photo (the first file input), or tick the bundled one")
    if not styles:
        raise UploadError("choose one or more style images (the second file input), or tick the bundled one")
    return content, styles


async def _drain(request, most):
    """Reads and drops what is left of the request's body, ``most`` bytes at most."""
    total = 0
    while total < most and (chunk := await request.content.read(2**16)):
        total += len(chunk)


def _public(message, folder):
    """``message`` without the server's own paths: its upload names gone, the bundled images' folder too."""
    message = re.sub(re.escape(folder + os.sep) + r"[\w.-]+\.upload: ", "", message)
    return message.replace(folder + os.sep, "").replace(BUNDLED_IMAGES_DIR + os.sep, "")


async def start(request):
    """A run from the form: the uploads read into a new private folder and checked, the settings checked and
    the images prepared; then queued. Any refusal removes the folder."""
    state = request.app[STATE]
    if (request.content_length or 0) > upload_total(state.limits):
        raise UploadError(f"the upload is over {upload_total(state.limits) / 2**20:g} MB in all", 413)
    state.queue.check_room()
    folder = tempfile.mkdtemp(prefix="run-", dir=state.root)
    try:
        fields, content, styles = await read_form(request, folder, state.limits)
        settings = check_settings(fields, state.limits)
        content, styles = _images(fields, content, styles)
        for number, path in enumerate([content, *styles]):
            check_image(path, "the content photo" if number == 0 else f"style image {number}", state.limits)
        weights = weights_path(settings.preset)
        images = await asyncio.to_thread(prepare_inputs, settings, content, styles)
        run = Run(state.queue.next_number(), settings, folder, images[0], images[1], weights)
        state.queue.submit(run)
    except NSTError as error:
        shutil.rmtree(folder, ignore_errors=True)
        await _drain(request, upload_total(state.limits))  # the browser reads an answer after it has sent all
        message = _public(str(error), folder)
        return _error(message, getattr(error, "status", 400))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return web.json_response({"number": run.number, "state": run.state})


async def favicon(request):
    return web.Response(status=204)


def make_app(state):
    """The aiohttp application of ``state``; uploads are bounded by ``read_form``, not aiohttp's own limit."""
    app = web.Application(middlewares=[errors, same_origin], client_max_size=upload_total(state.limits))
    app[STATE] = state
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/events", events)
    app.router.add_get("/runs", runs)
    app.router.add_post("/runs", start)
    app.router.add_post("/runs/{number}/stop", stop)
    app.router.add_get("/runs/{number}/picture.png", picture)
    app.router.add_get("/runs/{number}/result.png", result)
    return app

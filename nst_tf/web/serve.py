"""The server's life: a private temporary folder, the address bound (loopback unless told otherwise) and printed,
then serving until Ctrl-C or SIGTERM, when the running optimization is stopped at its next tick (about a second),
the connections closed and every run's folder removed, within 3 seconds.
"""

import asyncio
import contextlib
import ipaddress
import shutil
import signal
import tempfile

from aiohttp import web

from .routes import State, make_app

#: Seconds the stop waits for the running optimization, then for open connections.
WORKER_GRACE = 2.0
CONNECTION_GRACE = 0.5


def address(host, port):
    """The page's address for a bound ``host`` and ``port``."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def is_loopback(host):
    """Whether ``host`` names only this machine (an address, or "localhost")."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def serve(host, port, limits, out, err):
    """Serves the page on ``host``:``port`` until a signal; returns whether the worker thread ended in time.
    ``OSError`` when the address cannot be bound (nothing is left behind then either)."""
    root = tempfile.mkdtemp(prefix="nst_tf-web-")
    # TensorFlow's own temporary files (autograph's) go there too, and are removed with it.
    saved_tempdir, tempfile.tempdir = tempfile.tempdir, root
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    state = State(root, limits, err)
    runner = web.AppRunner(make_app(state), access_log=None, shutdown_timeout=CONNECTION_GRACE)
    ended = False
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port, shutdown_timeout=CONNECTION_GRACE)
        await site.start()
        bound = runner.addresses[0]
        state.allow_hosts(host, bound[1], is_loopback(host))
        out.write(f"nst_tf.web: serving on {address(bound[0], bound[1])} (Ctrl-C stops)\n")
        if not is_loopback(host):
            out.write(f"nst_tf.web: warning: {host} is not loopback: anyone who can reach it can use the page\n")
        out.flush()
        await stopping.wait()
    finally:
        state.closing = True
        state.bump()
        ended = await asyncio.to_thread(state.queue.close, WORKER_GRACE)
        with contextlib.suppress(Exception):
            await runner.cleanup()
        state.queue.remove_all()
        shutil.rmtree(root, ignore_errors=True)
        tempfile.tempdir = saved_tempdir
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)
    return ended

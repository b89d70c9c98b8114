"""``--engine ray``: the many-image job on Ray Data, on this machine or on a cluster.

The members still to do become a dataset of row numbers mapped by ``--workers`` actors (``RayStylizer``),
each building the network once and stylizing with ``Stylizer``. The results stream back to this process, the
one writer of images and manifest (``Ledger``), so a worker killed mid-image and restarted by Ray still leaves
each image saved once. Content images are read where the actors run (on a cluster, every node must see them
at the same path). While Ray runs, what it writes to descriptor 2 goes to a log file.
"""

import contextlib
import dataclasses
import functools
import importlib.util
import io
import json
import os
import queue
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

import numpy as np

from ...ground.errors import NonFiniteCostError, NSTError, last_line, quoted
from ...ground.files import NotRegularFile, open_regular
from ..signals import SIGNALS, Stopped, quiet_descriptor_2, rescue_folder

#: How long the main thread waits for a result before it looks for a signal again (seconds).
_POLL = 0.2


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """``workers`` actors at once (each holds a network), on the cluster at ``address`` (``ray start --head``
    prints it) or, with None, on a local Ray of the command's."""

    workers: int = 1
    address: str = None


def check_available():
    """Refuses ``--engine ray`` when Ray Data is not installed (``NSTError`` naming the install command)."""
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.data") is None:
        raise NSTError('--engine ray needs Ray Data: pip install "nst_tf[ray]" (or pip install "ray[data]")')


def run_on_ray(job, out, err, stop, actor=None):
    """Runs ``job`` (a ``ManyJob`` whose ``ray`` is set) on Ray, each batch stylized by an ``actor`` (a class
    called as ``RayStylizer`` is; default: it); returns the exit status. Raises ``NSTError``
    when Ray cannot start or reach the cluster or a worker failed in a way Ray does not retry, ``Stopped``
    for a signal before Ray started."""
    from .ledger import Ledger

    folder = None if job.ray.address else _ray_folder()
    try:
        with _ray_lines_aside(err) as (err, log):
            ledger = Ledger(job, out, err)

            def finish(status):  # the watcher's, when the main thread does not stop in time
                status = ledger.stopped(status)
                _end_local_ray(folder)
                with contextlib.suppress(OSError):
                    os.remove(log)
                return status

            stop.defer()
            stop.finisher = finish
            try:
                ray = _start(job.ray, log, folder, stop)
            except Stopped as stopped:  # one that Ray's own SIGTERM handler took while it started
                stop.claim()
                return ledger.stopped(128 + stopped.signum)
            ours = _descendants(os.getpid())  # a local Ray's processes: its agents outlive a raylet that is killed

            def work():
                _collect(_results(_dataset(ray, job, actor), log, stop), job, ledger)

            try:
                return ledger.follow(work, stop)
            finally:
                if folder is None:
                    with contextlib.suppress(Exception):
                        ray.shutdown()  # the cluster ends this job's actors when its driver leaves
                _end_local_ray(folder, ours)  # killed: a local Ray's teardown takes seconds
    finally:
        _end_local_ray(folder)  # what is left of a start that failed half way


def _ray_folder():
    """A new folder for a local Ray's session files and its processes' ``TMPDIR``, removed whole at the end
    (killed actors cannot remove the modules they wrote); under /tmp when the temporary folder's path is too
    long for Ray's socket paths in it (a Unix socket address holds 107 bytes)."""
    base, prefix = tempfile.gettempdir(), f"nst_tf-{os.getpid()}-ray-"
    # Ray's longest path there: a session folder named by date, time and a process number (up to 7 digits),
    # and the object store's socket in it; mkdtemp adds 8 characters to the prefix.
    longest = os.path.join(os.path.abspath(base), prefix + "x" * 8, "session_2026-12-01_13-32-46_850218_4194304")
    if len(os.fsencode(longest + "/sockets/plasma_store")) > 107 and os.access("/tmp", os.W_OK | os.X_OK):
        base = "/tmp"
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def _end_local_ray(folder, processes=()):
    """Kills a local Ray's ``processes`` and what is left below this process, and removes its ``folder``;
    with no ``folder`` (a cluster's job) does nothing."""
    if folder is not None:
        for pid in [*processes, *_descendants(os.getpid())]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _ray_lines_aside(err):
    """Sends Ray's lines to a log file for the block; yields (a stream for the command's lines, the log's path).
    Ray's C++ core writes to descriptor 2, its loggers to ``sys.stderr`` as it was at Ray's import, its
    cluster's errors to ``sys.stdout``: all three go to the log (``err``, if on descriptor 2, is reopened on a
    copy of it), kept only when the block failed (a stop is no failure) and not empty. Afterwards descriptor 2
    goes back, or to the null device where ``quiet_descriptor_2`` can (a local Ray's driver threads report its
    killed processes later)."""
    err.flush()
    saved = os.dup(2)
    handle, log = tempfile.mkstemp(prefix=f"nst_tf-{os.getpid()}-ray-", suffix=".log", dir=rescue_folder())
    ours = err
    with contextlib.suppress(AttributeError, OSError, ValueError):  # a stream without a descriptor
        if err.fileno() == 2:
            ours = _text(os.dup(saved))
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _text(os.dup(handle)), _text(2, closefd=False)
    os.dup2(handle, 2)
    os.close(handle)
    failed = True
    try:
        yield ours, log
        failed = False
    except (Stopped, KeyboardInterrupt):
        failed = False
        raise
    finally:
        with contextlib.suppress(OSError):
            if not failed or os.path.getsize(log) == 0:
                os.remove(log)
        # The one on descriptor 2 is flushed, not closed: Ray's loggers keep it.
        ended = ((sys.stderr, False), (sys.stdout, True), (ours, ours is not err))
        sys.stdout, sys.stderr = streams
        for stream, close in ended:
            with contextlib.suppress(Exception):
                stream.close() if close else stream.flush()
        if not quiet_descriptor_2():
            os.dup2(saved, 2)
        os.close(saved)


def _text(descriptor, closefd=True):
    return open(descriptor, "w", encoding="utf-8", errors="replace", buffering=1, closefd=closefd)


def _start(options, log, folder, stop):
    """Imports and starts Ray (a local Ray sized to this machine, or connected to ``options.address``), then
    gives the signals back to ``stop`` (``ray.init`` sets a SIGTERM handler that calls ``sys.exit``). Raises
    ``NSTError`` when Ray cannot start or reach the cluster, ``Stopped`` for a SIGTERM its handler took.
    """
    import logging

    _check_token()  # both before Ray's import, which takes seconds
    if options.address:
        _check_reachable(options.address)
    import ray
    import ray.data

    settings = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    # "local" starts a Ray of our own even where RAY_ADDRESS or a running cluster would be found.
    where = dict(address=options.address) if options.address else dict(address="local", _temp_dir=folder)
    previous = os.environ.get("TMPDIR")
    try:
        if folder:
            os.environ["TMPDIR"] = folder  # a local Ray's processes inherit it
            where["num_cpus"] = local_cpus()
        ray.init(**where, **settings)
    except SystemExit as exit:
        if exit.code in SIGNALS:
            raise Stopped(exit.code) from None
        raise
    except Exception as error:  # Ray raises ConnectionError, ValueError, RuntimeError, ... for an address
        at = f" at {quoted(options.address)}" if options.address else ""
        raise NSTError(f"--engine ray: Ray could not start{at}: {last_line(error)}{_log_note(log)}")
    finally:
        if folder:  # the caller's own processes get theirs back
            os.environ.pop("TMPDIR") if previous is None else os.environ.update(TMPDIR=previous)
        with contextlib.suppress(ValueError):  # not the main thread: the caller's handlers stay
            for signum in SIGNALS:
                signal.signal(signum, stop)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    return ray


# Ray's own handling hangs or aborts on the address and token below: they are checked before it sees them.

#: The longest token gRPC takes in a header (its metadata limit is 16 KiB, the header's name included).
_TOKEN_LIMIT = 16_000


def _check_token():
    """Refuses a Ray authentication token that is not one (``NSTError``): gRPC aborts the process (status 134, no
    line) on bytes a header cannot hold, Ray retries for long on one over ``_TOKEN_LIMIT`` bytes, waits half a
    minute on an empty one and never ends reading a pipe. Read as Ray reads it: ``RAY_AUTH_TOKEN`` if not empty,
    else the first line of ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, stripped; none with
    ``RAY_AUTH_MODE=disabled``. A missing, empty or unreadable file, or a folder, Ray reports at once.
    """
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return
    if os.environ.get("RAY_AUTH_TOKEN"):
        where, token = "RAY_AUTH_TOKEN", os.fsencode(os.environ["RAY_AUTH_TOKEN"]).strip()
        fix = "set it to the cluster's token, or unset it"
    else:
        path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
        where, fix = quoted(path), "write the cluster's token there, or remove it for a local Ray to make one"
        try:
            with open_regular(path) as handle:
                token = handle.readline(2 * _TOKEN_LIMIT)
        except NotRegularFile as error:
            if error.kind == "a folder":
                return
            raise NSTError(f"--engine ray: Ray's authentication token ({where}) is not a regular file") from None
        except OSError:
            return
        # A line that goes on past what was read is too long whatever follows (Ray strips only its ends).
        if len(token) < 2 * _TOKEN_LIMIT or token.endswith(b"\n"):
            token = token.strip()
        if not token:
            return
    if not token:
        problem = "is empty"
    elif len(token) > _TOKEN_LIMIT:
        problem = "is longer than a token can be"
    elif not all(32 <= byte < 127 for byte in token):
        problem = "holds characters a token cannot (printable ASCII only)"
    else:
        return
    raise NSTError(f"--engine ray: Ray's authentication token ({where}) {problem}; {fix}")


def _check_reachable(address, timeout=5.0):
    """Refuses an address that is not ``host:port`` or ``auto``, Ray Client's ``ray://`` (Ray Data jobs fail
    under it), and one where nothing answers as a Ray cluster's gRPC server within ``timeout`` seconds (a
    port that stays silent, closes or speaks something else made ``ray.init`` wait for minutes): ``NSTError``.
    """
    if address == "auto":
        return  # Ray finds the cluster this machine belongs to, or says there is none
    if address.startswith("ray://"):
        raise NSTError(
            f"--ray_address: {quoted(address)} is a Ray Client address, under which Ray Data jobs fail; give the "
            "cluster's own address (host:6379, as `ray start --head` prints it) from a machine that reaches it"
        )
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not (port.isdigit() and 0 < int(port) < 65536) or host != host.strip():
        raise NSTError(f"--ray_address: {quoted(address)} is not host:port (with a port from 1 to 65535) or auto")
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as connection:
            problem = _grpc_problem(connection, deadline)
    except (OSError, ValueError) as error:  # ValueError: a host name the resolver cannot take
        reason = getattr(error, "strerror", None) or error
        raise NSTError(f"--ray_address: no Ray cluster answers at {quoted(address)}: {reason}") from None
    if problem:
        raise NSTError(f"--ray_address: {quoted(address)} {problem.format(timeout=f'{timeout:g}')}")


#: The HTTP/2 connection preface and an empty SETTINGS frame: what a gRPC client sends first.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _grpc_problem(connection, deadline):
    """What is wrong with the answer to a gRPC client's first bytes on ``connection`` by ``deadline``
    (``time.monotonic()``), or None: a gRPC server, as Ray's GCS, answers with a SETTINGS frame; with
    ``RAY_USE_TLS`` ("1" or "true") the GCS expects TLS, so then any answer but plain gRPC's does.
    ``{timeout}`` in the text is the caller's to fill."""
    connection.sendall(_HTTP2_PREFACE)
    head = b""
    try:
        while len(head) < 9:
            connection.settimeout(max(0.01, deadline - time.monotonic()))  # one deadline for all the reads
            if not (more := connection.recv(9 - len(head))):
                break
            head += more
    except TimeoutError:
        if not head:
            return "takes connections but does not answer within {timeout} s"
    except OSError:  # a reset
        pass
    if not head:
        return "closes the connection without answering as a Ray cluster (gRPC) does"
    grpc = len(head) == 9 and head[3] == 0x04  # frame type 4: SETTINGS
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return "answers in plain gRPC, but RAY_USE_TLS asks for TLS; unset it for this cluster" if grpc else None
    return None if grpc else "answers, but not as a Ray cluster (gRPC) does"


def _log_note(log):
    """ " (Ray's log: <path>)" when Ray wrote something there, else nothing."""
    try:
        return f" (Ray's log: {log})" if os.path.getsize(log) else ""
    except OSError:
        return ""


def local_cpus():
    """The CPUs this process may use (its affinity, which a container or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _dataset(ray, job, actor=None):
    """The members' row numbers mapped by a pool of ``actor`` (default ``RayStylizer``) actors sized to the
    cluster."""
    resources = ray.cluster_resources()
    # No more actors than batches: an actor holds a network (hundreds of MB) even with nothing to do.
    workers = min(job.ray.workers, -(-len(job.members) // job.batch_size))
    cpus = resources.get("CPU", 1) / workers
    gpus = min(1.0, resources.get("GPU", 0) / workers)
    # One block per batch, made here: the pipeline has no task but the actors', which may take every CPU (a
    # read or repartition task would wait for a free CPU forever), and a killed actor's retry redoes one batch.
    count = len(job.members)
    rows = ray.data.from_items([{"position": i} for i in range(count)], override_num_blocks=-(-count // job.batch_size))
    pool = dict(compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=cpus, num_gpus=gpus)
    # The job (its weights too) goes to each actor once.
    batches = dict(fn_constructor_args=(job, max(1, int(cpus))), batch_size=job.batch_size, batch_format="numpy")
    return rows.map_batches(actor or RayStylizer, **batches, **pool)


def _results(dataset, log, stop):
    """Yields the dataset's result rows, pulled by a thread of their own so that the main thread looks for a
    signal every ``_POLL`` seconds. ``NSTError`` when the dataset failed (a worker error Ray does not retry),
    ``Stopped`` after a signal."""
    rows = queue.Queue(maxsize=64)

    def pull():
        try:
            for row in dataset.iter_rows():
                rows.put(("row", row))
            rows.put(("end", None))
        except BaseException as error:  # handed to the main thread, which says it in one line
            rows.put(("error", error))

    threading.Thread(target=pull, name="nst_tf-ray-results", daemon=True).start()
    while True:
        stop.check()
        try:
            kind, value = rows.get(timeout=_POLL)
        except queue.Empty:
            continue
        if kind == "end":
            return
        if kind == "error":
            raise NSTError(f"--engine ray: the job failed: {last_line(value)}{_log_note(log)}")
        yield value


def _collect(results, job, ledger):
    """Saves and records each result as it comes back; prints the workers' notes once each."""
    from ...loop.progress import Progress

    noted = set()
    for row in results:
        member = job.members[int(row["position"])]
        for note in str(row["notes"]).splitlines():
            if note and note not in noted:
                noted.add(note)
                ledger.err.write(note + "\n")
        if row["kind"] == "skipped":
            ledger.skip(member, row["message"])
        elif row["kind"] == "non_finite":
            ledger.lose([member], row["message"])
        else:
            image = np.frombuffer(row["image"], np.float32).reshape(1, int(row["height"]), int(row["width"]), 3)
            progress = Progress(int(row["iteration"]), json.loads(row["costs"]), image)
            ledger.finished(member, progress, float(row["seconds"]), worker=str(row["worker"]))
        ledger.progress(0)


def _descendants(root):
    """The process ids below ``root`` (Linux's /proc; none elsewhere)."""
    parents = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    with open(f"/proc/{name}/stat", "rb") as handle:
                        # The command name, in parentheses, may hold spaces: the fields after its last ")".
                        parents[int(name)] = int(handle.read().rsplit(b")", 1)[1].split()[1])
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found.extend(frontier)
    return found


class RayStylizer:
    """A Ray Data actor for ``job`` (a ``ManyJob``, its weights not yet taken) with ``threads`` TensorFlow
    threads per operation: the network built once, then each batch of rows read, stylized and sent back.
    Called with ``{"position": array}``, it returns one row per position: ``kind`` ("done", "skipped" for an
    image that cannot be read, "non_finite"), ``message``, the result ``image`` (float32 bytes, normalized,
    ``height`` x ``width`` x 3), ``costs``, ``iteration``, ``seconds``, ``worker`` (``host:pid``) and
    ``notes`` (the warnings this actor has not sent yet).
    """

    def __init__(self, job, threads):
        from .build import start_up
        from .manifest import worker

        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)  # read when TensorFlow's runtime starts
        self._notes = io.StringIO()
        started = start_up(job.config, job.weights.take(), job.pooling, job.tiles, self._notes)
        self._determinism = started.deterministic()  # the worker's for its whole life, entered once
        self._determinism.__enter__()
        self._job, self._model, self._objective = job, started.model, started.make_objective
        self._stylizer, self._key = None, None
        self._worker = worker()

    def __call__(self, batch):
        from .many_parts import groups

        members = [(int(p), self._job.members[int(p)]) for p in batch["position"]]
        rows = [row for group in groups(members, key=lambda pair: pair[1]) for row in self._group(group)]
        notes, self._notes = self._notes.getvalue(), io.StringIO()
        rows[0]["notes"] = notes
        # Object arrays: NumPy's own bytes type would drop an image's trailing zero bytes.
        return {name: _column([row[name] for row in rows]) for name in rows[0]}

    def _group(self, members):
        """The result rows of ``members`` (positions and ``Member``s of one size and style choice)."""
        from ...runs.many_images import Finished, chunks
        from ...tensors.images import reshape_and_normalize_image
        from .many_parts import member_seed

        job, contents, rows = self._job, [], []
        for position, member in members:
            try:
                pixels = job.read(member.path, member.size, digest=member.digest)
            except NSTError as error:
                rows.append(_row(position, "skipped", str(error)))
                continue
            contents.append((position, reshape_and_normalize_image(pixels, job.config.normalization)))
        stylizer = self._stylizer_for(members[0][1])
        for chunk in chunks(contents, job.batch_size):
            try:
                run = stylizer.run(chunk, seeds=lambda position: member_seed(job.config, job.members[position]))
                rows.extend([self._done(item) for item in run if isinstance(item, Finished)])
            except NonFiniteCostError as error:
                rows.extend(_row(position, "non_finite", str(error)) for position, _ in chunk)
        return rows

    def _done(self, finished):
        from .ledger import costs

        progress = finished.progress
        image = np.ascontiguousarray(progress.image, dtype=np.float32)
        done = dict(image=image.tobytes(), height=image.shape[1], width=image.shape[2], worker=self._worker)
        done.update(costs=json.dumps(costs(progress)), iteration=int(progress.iteration))
        return _row(finished.index, "done", "", seconds=float(finished.seconds), **done)

    def _stylizer_for(self, member):
        """The ``Stylizer`` of ``member``'s size and styles (the previous one kept while they hold)."""
        from ...runs.many_images import Stylizer
        from .many_parts import guided_objective, style_images

        key = (member.size, member.styles)
        if key != self._key:
            job = self._job
            self._stylizer = None  # the previous size's state goes before the next is built
            make = functools.partial(guided_objective(job, self._objective), size=member.size)  # --content_mask
            styles = style_images(job, *key)
            self._stylizer = Stylizer(self._model, styles, job.config, make_objective=make, batch_size=job.batch_size)
            self._key = key
        return self._stylizer


def _column(values):
    kind = object if isinstance(values[0], (str, bytes)) else None
    return np.array(values, dtype=kind)


#: The columns a "done" row fills, empty; ``costs``: each term's cost by name, and the total, as JSON.
_UNDONE = dict(image=b"", height=0, width=0, costs="{}", iteration=0, seconds=0.0, worker="", notes="")


def _row(position, kind, message, **done):
    """A result row with every column."""
    return {"position": position, "kind": kind, "message": message, **_UNDONE, **done}

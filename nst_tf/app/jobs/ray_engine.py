"""``--engine ray``: the many-image job on Ray Data, on this machine or on a cluster.

The members still to do become a dataset of row numbers, mapped by a pool of
stateful actors (``RayStylizer``, ``--workers`` of them): each builds the
network and brings the style images to size once, then reads each content
image with nst_tf's own reader and stylizes it with ``nst_tf.runs.many_images.Stylizer``
(one trace per shape and actor, ``--batch_size`` images per traced call).
The results stream back to this process, which saves each with the atomic
writer and records it in the manifest (``Ledger``): one writer for both, so
that a worker killed mid-image, which Ray restarts and whose image it does
again, still leaves each image saved once with one manifest line (a worker
saving for itself could be killed between its file and its line). The
weights and style images travel in Ray's object store; the content images
are read where the actors run, so on a cluster every node must see them at
the same path (shared storage).

Ray writes its own lines to file descriptor 2 (C++ core warnings, Ray Data's
progress), which the command keeps for its own: while Ray runs they go to a
log file in the temporary folder, and the command's lines to the original
standard error.
"""

import contextlib
import dataclasses
import importlib.util
import io
import json
import os
import queue
import shutil
import signal
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
    """Where and how wide ``--engine ray`` runs.

    Attributes:
        workers: how many actors stylize at once (each holds a network).
        address: an existing cluster's address (``ray start --head`` prints it); None starts a local Ray
            inside the command, sized to this machine.
    """

    workers: int = 1
    address: str = None


def check_available():
    """Refuses ``--engine ray`` when Ray Data is not installed.

    Raises:
        NSTError: Ray is missing (with the command that installs it).
    """
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.data") is None:
        raise NSTError('--engine ray needs Ray Data: pip install "nst_tf[ray]" (or pip install "ray[data]")')


def run_on_ray(job, out, err, stop):
    """Runs ``job`` (a ``ManyJob`` whose ``ray`` is set) on Ray; returns the exit status.

    Raises:
        NSTError: Ray cannot start or reach the cluster, or a worker failed in a way Ray does not retry.
        Stopped: a signal came before Ray started.
    """
    from .ledger import Ledger

    folder = None if job.ray.address else _ray_folder()
    try:
        with _ray_lines_aside(err) as (err, log):
            ledger = Ledger(job, out, err)
            stop.defer()
            stop.finisher = lambda status: _end_local_ray(ledger.stopped(status), log, folder)
            try:
                ray = _start(job.ray, log, folder, stop)
            except Stopped as stopped:  # one that Ray's own SIGTERM handler took while it started
                stop.claim()
                return ledger.stopped(128 + stopped.signum)
            ours = _descendants(os.getpid())  # a local Ray's processes: its agents outlive a raylet that is killed
            try:
                return _run(job, ray, ledger, stop, log)
            finally:
                _stop_ray(ray, job.ray, ours)
    finally:
        _remove_ray_folder(folder)


def _run(job, ray, ledger, stop, log):
    results = _Results(_dataset(ray, job), log)
    try:
        _collect(results, job, ledger, stop)
    except (KeyboardInterrupt, Stopped) as stopped:
        stop.claim()
        return ledger.stopped(128 + getattr(stopped, "signum", signal.SIGINT))
    stop.claim()
    return ledger.status()


def _ray_folder():
    """A new folder for a local Ray's session files and its processes' temporary files (``TMPDIR``).

    Removed with everything in it when the job ends: actors killed at the end cannot remove the
    TensorFlow modules they wrote. Under /tmp when the temporary folder's path is long: Ray's socket
    paths inside it must stay under 108 bytes.
    """
    base = tempfile.gettempdir()
    prefix = f"nst_tf-{os.getpid()}-ray-"
    if not _sockets_fit(base, prefix) and os.path.isdir("/tmp") and os.access("/tmp", os.W_OK | os.X_OK):
        base = "/tmp"
    return tempfile.mkdtemp(prefix=prefix, dir=base)


#: The longest path Ray makes under its ``_temp_dir``: a session folder named by date, time and a process
#: number (up to 7 digits), and the object store's socket in it.
_LONGEST_RAY_PATH = "/session_2026-12-01_13-32-46_850218_4194304/sockets/plasma_store"


def _sockets_fit(base, prefix):
    """Whether Ray's socket paths fit the 107 bytes of a Unix socket address under ``base/prefixXXXXXXXX``."""
    folder = os.path.join(os.path.abspath(base), prefix + "x" * 8)  # mkdtemp adds 8 characters
    return len(os.fsencode(folder + _LONGEST_RAY_PATH)) <= 107


def _remove_ray_folder(folder):
    """Kills what is left of a local Ray (a start that failed half way) and removes its folder."""
    if folder is not None:
        _kill(_descendants(os.getpid()))
        shutil.rmtree(folder, ignore_errors=True)


def _stop_ray(ray, options, processes):
    """Ends Ray: a local one's processes are killed (its teardown takes seconds), a cluster is left."""
    if options.address:
        with contextlib.suppress(Exception):
            ray.shutdown()  # the cluster ends this job's actors when its driver leaves
        return
    _kill(processes + _descendants(os.getpid()))


@contextlib.contextmanager
def _ray_lines_aside(err):
    """Sends Ray's lines to a log file for the block; yields (a stream on the old standard error, the log's path).

    Ray's C++ core writes to file descriptor 2, its Python loggers to
    ``sys.stderr`` as it was when Ray was imported, and the errors its
    cluster reports (a worker that died) to ``sys.stdout``: the descriptor
    is pointed at the log, and both streams replaced by ones on it, while
    the block runs. The command writes to the streams it was given, ``err``
    reopened on the old descriptor 2 if it was that one. The log is kept
    only when the block raised and Ray wrote something. Afterwards the
    command points descriptor 2 at the null device, its own lines having a
    descriptor of their own (``quiet_descriptor_2``): a local Ray's driver
    threads outlive the block and report its killed processes.
    """
    err.flush()
    saved = os.dup(2)
    handle, log = tempfile.mkstemp(prefix=f"nst_tf-{os.getpid()}-ray-", suffix=".log", dir=rescue_folder())
    ours = err
    if _fileno(err) == 2:
        ours = _text(os.dup(saved))
    streams = sys.stdout, sys.stderr
    # Not closed afterwards: Ray's loggers keep the one they found on descriptor 2.
    sys.stdout, sys.stderr = _text(os.dup(handle)), _text(2, closefd=False)
    os.dup2(handle, 2)
    os.close(handle)
    failed = True
    try:
        yield ours, log
        failed = False
    except (Stopped, KeyboardInterrupt):
        failed = False  # a stop, not a failure of Ray's: its lines then are no news to the user
        raise
    finally:
        with contextlib.suppress(OSError):
            if not failed or os.path.getsize(log) == 0:
                os.remove(log)
        _put_back(streams, ours if ours is not err else None)
        if not quiet_descriptor_2():  # the command's: Ray's driver threads live on and write there
            os.dup2(saved, 2)
        os.close(saved)


def _text(descriptor, closefd=True):
    stream = io.FileIO(descriptor, "w", closefd=closefd)
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace", line_buffering=True)


def _put_back(streams, reopened):
    """Flushes the block's streams, closes those that were ours alone, and puts ``streams`` back."""
    for stream in (reopened, sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    replaced, sys.stdout, sys.stderr = sys.stdout, *streams
    for stream in (replaced, reopened):
        with contextlib.suppress(Exception):
            stream.close()


def _fileno(stream):
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _start(options, log, folder, stop):
    """Imports Ray and starts it (a local Ray sized to this machine, or connected to ``options.address``),
    then gives the job's signals back to ``stop``.

    Raises:
        NSTError: Ray cannot start or reach the cluster.
        Stopped: SIGTERM came while Ray's own handler (``sys.exit``), set inside ``ray.init``, was in place.
    """
    import logging

    _check_token()  # both before Ray's import, which takes seconds
    if options.address:
        _check_reachable(options.address)
    import ray
    import ray.data

    settings = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        if options.address:
            ray.init(address=options.address, **settings)
        else:
            # "local" starts a Ray of our own even where RAY_ADDRESS or a running cluster would be found.
            with _temporary_folder_for_ray(folder):
                ray.init(address="local", num_cpus=local_cpus(), _temp_dir=folder, **settings)
    except SystemExit as exit:
        if exit.code in SIGNALS:
            raise Stopped(exit.code) from None
        raise
    except Exception as error:  # Ray raises ConnectionError, ValueError, RuntimeError, ... for an address
        raise NSTError(f"--engine ray: Ray could not start{_at(options)}: {last_line(error)}{_log_note(log)}")
    finally:
        _reclaim_signals(stop)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    return ray


def _check_token():
    """Refuses a Ray authentication token that is not one before Ray reads it: gRPC aborts the process
    (status 134, no line) on a token holding bytes a header cannot, refuses one over its 16 KiB header
    limit only after long retries, Ray waits half a minute on an empty one, and its read of a pipe there
    never ends.

    Read where and as Ray reads it: ``RAY_AUTH_TOKEN`` when set and not empty, else the first line of the
    file ``RAY_AUTH_TOKEN_PATH`` names or of ``~/.ray/auth_token``, stripped of white space; unless
    ``RAY_AUTH_MODE=disabled``. A missing, empty or unreadable file is left to Ray, which says so itself.

    Raises:
        NSTError: the token file is not a regular file, or the token is empty (the variable), longer than
            ``_TOKEN_LIMIT`` bytes, or holds a character that is not printable ASCII.
    """
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return
    if os.environ.get("RAY_AUTH_TOKEN"):
        where, token = "RAY_AUTH_TOKEN", os.fsencode(os.environ["RAY_AUTH_TOKEN"]).strip()
        fix = "set it to the cluster's token, or unset it"
        if not token:
            raise NSTError(f"--engine ray: Ray's authentication token (RAY_AUTH_TOKEN) is empty; {fix}")
    else:
        path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
        where, fix = quoted(path), "write the cluster's token there, or remove it for a local Ray to make one"
        token = _token_file(path, where)
        if token is None:
            return
    if len(token) > _TOKEN_LIMIT:
        raise NSTError(f"--engine ray: Ray's authentication token ({where}) is longer than a token can be; {fix}")
    if not all(32 <= byte < 127 for byte in token):
        raise NSTError(
            f"--engine ray: Ray's authentication token ({where}) holds characters a token cannot (printable ASCII "
            f"only); {fix}"
        )


#: The longest token gRPC takes in a header (its metadata limit is 16 KiB, the header's name included).
_TOKEN_LIMIT = 16_000


def _token_file(path, where):
    """The token in file ``path`` as Ray reads it: its first line, stripped (past ``_TOKEN_LIMIT`` bytes, a
    part longer than that); None when it cannot be opened."""
    try:
        # A pipe there must not hold the command (Ray's own read of one never ends).
        with open_regular(path) as handle:
            line = handle.readline(2 * _TOKEN_LIMIT)
    except NotRegularFile as error:
        if error.kind == "a folder":
            return None  # Ray says so itself, at once
        raise NSTError(f"--engine ray: Ray's authentication token ({where}) is not a regular file") from None
    except OSError:
        return None
    if len(line) == 2 * _TOKEN_LIMIT and not line.endswith(b"\n"):
        return line  # the line goes on: too long whatever follows (Ray strips only its ends)
    return line.strip()


def _check_reachable(address, timeout=5.0):
    """Refuses an address that is not ``host:port`` or ``auto``, Ray Client's ``ray://`` (Ray Data jobs
    fail under it), and one where nothing answers as a Ray cluster within ``timeout`` seconds (Ray would
    retry for minutes, or wait forever).

    Raises:
        NSTError: the address is malformed or a Ray Client one, or no Ray cluster answers there.
    """
    import socket

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
            problem = _answer_problem(connection, deadline, tls=os.environ.get("RAY_USE_TLS", "0").lower())
    except (OSError, ValueError, OverflowError) as error:
        reason = getattr(error, "strerror", None) or error
        raise NSTError(f"--ray_address: no Ray cluster answers at {quoted(address)}: {reason}") from None
    if problem:
        raise NSTError(f"--ray_address: {quoted(address)} {problem.format(timeout=f'{timeout:g}')}")


#: The HTTP/2 connection preface and an empty SETTINGS frame: what a gRPC client sends first.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _answer_problem(connection, deadline, tls):
    """What is wrong with how the server on ``connection`` answers a gRPC client's first bytes by
    ``deadline`` (``time.monotonic()``), or None: a gRPC server answers with a SETTINGS frame.

    Ray's GCS speaks gRPC. A port that stays silent, closes, or says something else (an HTTP server) made
    ``ray.init`` wait for minutes. With ``RAY_USE_TLS`` (``tls`` "1" or "true") the GCS expects TLS first:
    any answer but plain gRPC's counts then. ``{timeout}`` in the text is for the caller to fill.
    """
    connection.sendall(_HTTP2_PREFACE)
    head = b""
    try:
        while len(head) < 9:
            connection.settimeout(max(0.01, deadline - time.monotonic()))  # one deadline for all the reads
            more = connection.recv(9 - len(head))
            if not more:
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
    if tls in ("1", "true"):
        return "answers in plain gRPC, but RAY_USE_TLS asks for TLS; unset it for this cluster" if grpc else None
    return None if grpc else "answers, but not as a Ray cluster (gRPC) does"


def _reclaim_signals(stop):
    """Makes ``stop`` the handler of the job's signals again: ``ray.init`` sets its own for SIGTERM
    (``sys.exit``), which would end the job without its last line."""
    with contextlib.suppress(ValueError):  # not the main thread: the caller's handlers stay
        for signum in SIGNALS:
            if signal.getsignal(signum) is not stop:
                signal.signal(signum, stop)


@contextlib.contextmanager
def _temporary_folder_for_ray(folder):
    """Points ``TMPDIR`` at ``folder`` while a local Ray starts: its processes inherit it (``_ray_folder``)."""
    previous = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = folder
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = previous


def _log_note(log):
    """ " (its log: <path>)" when Ray wrote something there, else nothing (an empty log is removed)."""
    try:
        return f" (Ray's log: {log})" if os.path.getsize(log) else ""
    except OSError:
        return ""


def _at(options):
    return f" at {quoted(options.address)}" if options.address else ""


def local_cpus():
    """The CPUs this process may use (its affinity, which a container or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _dataset(ray, job):
    """The members' row numbers mapped by a pool of ``RayStylizer`` actors sized to the cluster."""
    resources = ray.cluster_resources()
    # No more actors than batches: an actor holds a network (hundreds of MB) even with nothing to do.
    workers = min(job.ray.workers, -(-len(job.members) // job.batch_size))
    cpus = resources.get("CPU", 1) / workers
    gpus = min(1.0, resources.get("GPU", 0) / workers)
    spec = WorkerSpec.of(job, threads=max(1, int(cpus)))
    # One block per batch, made here: the pipeline has no task but the actors', which may take every CPU (a
    # read or repartition task would wait for a free CPU forever), and a killed actor's retry redoes one batch.
    count = len(job.members)
    rows = ray.data.from_items([{"position": i} for i in range(count)], override_num_blocks=-(-count // job.batch_size))
    return rows.map_batches(
        RayStylizer,
        fn_constructor_args=(spec,),
        batch_size=job.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus,
        num_gpus=gpus,
    )


class _Results:
    """The dataset's result rows, pulled by a thread of their own into a queue the main thread polls.

    The main thread thus looks for a signal every ``_POLL`` seconds however
    long an image takes, instead of waiting inside Ray.
    """

    def __init__(self, dataset, log):
        self._log = log
        self._queue = queue.Queue(maxsize=64)
        self._thread = threading.Thread(target=self._pull, args=(dataset,), name="nst_tf-ray-results", daemon=True)
        self._thread.start()

    def _pull(self, dataset):
        try:
            for row in dataset.iter_rows():
                self._queue.put(("row", row))
            self._queue.put(("end", None))
        except BaseException as error:  # handed to the main thread, which says it in one line
            self._queue.put(("error", error))

    def next(self, stop):
        """The next result row, or None at the end; checks ``stop`` while it waits.

        Raises:
            NSTError: the dataset failed (a worker error Ray does not retry).
            Stopped: a signal came.
        """
        while True:
            stop.check()
            try:
                kind, value = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            if kind == "row":
                return value
            if kind == "end":
                return None
            raise NSTError(f"--engine ray: the job failed: {last_line(value)}{_log_note(self._log)}")


def _collect(results, job, ledger, stop):
    """Saves and records each result as it comes back; prints the workers' notes once each."""
    from ...loop.progress import Progress

    noted = set()
    while (row := results.next(stop)) is not None:
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


def _end_local_ray(status, log, folder):
    """Ends the processes of a local Ray this command started, removes its folder and ``log`` (for the
    watcher's exit)."""
    _kill(_descendants(os.getpid()))
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.remove(log)
    return status


def _kill(processes):
    for pid in processes:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


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
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


# The worker side ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """What a ``RayStylizer`` needs, sent once to each actor through Ray's object store.

    Attributes:
        config: the hyperparameters; ``pooling``: the pooling; ``weights``: the network's weights.
        members: every ``Member`` of the job (rows name them by position).
        styles: the style images' pixels; ``large``: the style sizing; ``fit``: how images are fitted.
        tiles: the ``TilePlan`` (or None) of each size; ``batch_size``: images per traced call.
        read: ``read(path, size)`` -> the content image's pixels fitted to ``size``.
        threads: TensorFlow's threads per operation in each actor.
    """

    config: object
    pooling: str
    weights: object
    members: list
    styles: list
    large: object
    fit: str
    tiles: dict
    batch_size: int
    read: object
    threads: int

    @classmethod
    def of(cls, job, threads):
        """The spec of ``job`` (its weights taken from it)."""
        return cls(
            config=job.config,
            pooling=job.pooling,
            weights=job.weights.take(),
            members=job.members,
            styles=job.styles,
            large=job.large,
            fit=job.fit,
            tiles=job.tiles,
            batch_size=job.batch_size,
            read=job.read,
            threads=threads,
        )


class RayStylizer:
    """A Ray Data actor: the network built once, then each batch of rows read, stylized and sent back.

    Called with a batch ``{"position": array}``, it returns one row per
    position: ``kind`` ("done", "skipped" for an image that cannot be read,
    "non_finite"), ``message``, the result ``image`` (float32 bytes, normalized,
    ``height`` x ``width`` x 3), its ``*_cost``s, ``iteration``, ``seconds``,
    ``worker`` (``host:pid``) and ``notes`` (the warnings this actor has not
    sent yet).
    """

    def __init__(self, spec):
        from .build import start_up
        from .manifest import worker

        os.environ["TF_NUM_INTRAOP_THREADS"] = str(spec.threads)  # read when TensorFlow's runtime starts
        self._notes = io.StringIO()
        started = start_up(spec.config, spec.weights, spec.pooling, spec.tiles, self._notes)
        self._determinism = started.deterministic()  # the worker's for its whole life, entered once
        self._determinism.__enter__()
        self._spec = dataclasses.replace(spec, weights=None)
        self._model = started.model
        self._objective = started.make_objective
        self._stylizer, self._key = None, None
        self._worker = worker()

    def __call__(self, batch):
        from .many_parts import groups

        rows = []
        members = [(int(p), self._spec.members[int(p)]) for p in batch["position"]]
        for group in groups(members, key=lambda pair: pair[1]):
            rows.extend(self._group(group))
        notes, self._notes = self._notes.getvalue(), io.StringIO()
        rows[0]["notes"] = notes
        # Object arrays: NumPy's own bytes type would drop an image's trailing zero bytes.
        return {name: _column([row[name] for row in rows]) for name in rows[0]}

    def _group(self, members):
        """The result rows of ``members`` (positions and ``Member``s of one size and style choice)."""
        from ...runs.many_images import chunks
        from ...tensors.images import reshape_and_normalize_image

        contents, rows = [], []
        for position, member in members:
            try:
                pixels = self._spec.read(member.path, member.size, digest=member.digest)
            except NSTError as error:
                rows.append(_row(position, "skipped", str(error)))
                continue
            contents.append((position, reshape_and_normalize_image(pixels, self._spec.config.normalization)))
        stylizer = self._stylizer_for(members[0][1])
        for chunk in chunks(contents, self._spec.batch_size):
            rows.extend(self._chunk(stylizer, chunk))
        return rows

    def _chunk(self, stylizer, chunk):
        from ...runs.many_images import Finished
        from .many_parts import member_seed

        def seed(position):  # None (no --seed): a fresh one
            return member_seed(self._spec.config, self._spec.members[position])

        try:
            finished = [item for item in stylizer.run(chunk, seeds=seed) if isinstance(item, Finished)]
        except NonFiniteCostError as error:
            return [_row(position, "non_finite", str(error)) for position, _ in chunk]
        return [self._done(item) for item in finished]

    def _done(self, finished):
        progress = finished.progress
        image = np.ascontiguousarray(progress.image, dtype=np.float32)
        row = _row(finished.index, "done", "")
        row.update(
            image=image.tobytes(),
            height=image.shape[1],
            width=image.shape[2],
            costs=json.dumps({name: float(value) for name, value in progress.costs.items()}),
            iteration=int(progress.iteration),
            seconds=float(finished.seconds),
            worker=self._worker,
        )
        return row

    def _stylizer_for(self, member):
        """The ``Stylizer`` of ``member``'s size and styles (the previous one kept while they hold)."""
        from ...runs.many_images import Stylizer
        from .many_parts import style_images

        key = (member.size, member.styles)
        if key != self._key:
            spec = self._spec
            self._stylizer = None  # the previous size's state goes before the next is built
            self._stylizer = Stylizer(
                self._model,
                style_images(spec, member.size, member.styles),
                spec.config,
                make_objective=lambda model, content, styles, config: self._objective(
                    model, content, styles, config, size=member.size
                ),
                batch_size=spec.batch_size,
            )
            self._key = key
        return self._stylizer


def _column(values):
    kind = object if isinstance(values[0], (str, bytes)) else None
    return np.array(values, dtype=kind)


def _row(position, kind, message):
    """A result row with every column (the ones a "done" row fills set empty)."""
    return {
        "position": position,
        "kind": kind,
        "message": message,
        "image": b"",
        "height": 0,
        "width": 0,
        "costs": "{}",  # each term's cost by name, and the total, as JSON
        "iteration": 0,
        "seconds": 0.0,
        "worker": "",
        "notes": "",
    }

"""``--engine ray``: the many-image job on a real local Ray (Ray Data actors), in subprocesses.

Each command starts a Ray of its own (about 5 s here) whose actors import
TensorFlow and build the network; the checks that need no Ray call the
actor class in this process.
"""

import contextlib
import glob
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest
from PIL import Image

from nst_tf import NSTError
from nst_tf.app.cli import _validated, build_parser, main
from nst_tf.runs.presets import PRESETS
from nst_tf.app.jobs import ray_engine
from nst_tf.app.jobs.ray_engine import RayStylizer
from nst_tf.plan.synthetic import write_vgg19_mat

MANY_IMAGES_PAGE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "many-images.md"


@pytest.fixture
def photos(tmp_path, noise_image):
    """photos/ with four images: three landscape (64x48 at --max_size 64), one portrait (48x64)."""
    folder = tmp_path / "photos"
    for i, (height, width) in enumerate([(48, 64), (80, 60), (48, 64), (48, 64)]):
        noise_image(folder / f"p{i}.png", height, width, i)
    return folder


def _args(workspace, weights, contents, out="out", epochs=4, extra=()):
    return [
        "--content_image_filename", str(contents),
        "--style_image_filename", str(workspace / "style.png"),
        "--model", str(weights),
        "--output_dir", str(workspace / out),
        "--max_size", "64", "--epochs", str(epochs), "--seed", "5", *extra,
    ]  # fmt: skip


@contextlib.contextmanager
def _command(argv, **options):
    """The command running in a process of its own: killed, and its pipes closed, when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nst_tf", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options
    )
    with process:
        try:
            yield process
        finally:
            process.kill()


def _records(folder):
    lines = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    return lines[1:]


def _ray_processes():
    """The processes of a Ray on this machine (its actors and daemons)."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if command.startswith("ray::") or "/ray/core/src/ray/" in command or "/site-packages/ray/" in command:
            found.append((int(name), command[:300]))
    return found


def _no_ray_left(seconds=10):
    deadline = time.monotonic() + seconds
    while _ray_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    return _ray_processes()


def _wait_for_saved(process, count):
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("saved ") and f"({count} of " in line:
            return lines
    pytest.fail("the job ended before it saved an image:\n" + "".join(lines) + process.stderr.read())


def test_the_ray_engine_gives_the_local_engines_images_and_manifest(workspace, new_weights_file, photos):
    assert main(_args(workspace, new_weights_file, photos, out="local")) == 0
    argv = _args(workspace, new_weights_file, photos, extra=["--engine", "ray", "--workers", "2", "--batch_size", "2"])
    result = subprocess.run([sys.executable, "-m", "nst_tf", *argv], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # Only the command's own lines: Ray's warnings and its cluster's messages go to its log.
    *lines, summary = result.stdout.splitlines()
    assert [line.split(" (")[1] for line in lines] == [f"{n} of 4)" for n in range(1, 5)]
    assert sorted(line.split(" (")[0] for line in lines) == [
        f"saved {workspace / 'out' / f'p{i}.jpg'}" for i in range(4)
    ]
    assert summary.startswith("done: 4 of 4 images in ") and summary.endswith(f"; saved in {workspace / 'out'}")
    assert all(line.startswith("[") for line in result.stderr.splitlines()), result.stderr
    out, local = workspace / "out", workspace / "local"
    for i in range(4):
        with Image.open(out / f"p{i}.jpg") as one, Image.open(local / f"p{i}.jpg") as other:
            assert np.abs(np.asarray(one, int) - np.asarray(other, int)).max() <= 2  # the batch tolerance
    records = _records(out)
    assert sorted(r["output"] for r in records) == [f"p{i}.jpg" for i in range(4)]
    assert all(r["worker"].split(":")[1] != str(os.getpid()) and r["iterations"] == 4 for r in records)
    headers = [(folder / "manifest.jsonl").read_text().splitlines()[0] for folder in (out, local)]
    assert headers[0] == headers[1]  # the engine is not a setting of the results
    assert not _no_ray_left()
    # The same command again: everything is recorded, so nothing runs (and no Ray starts).
    again = subprocess.run([sys.executable, "-m", "nst_tf", *argv], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "4 of 4 results are done already" in again.stderr


def test_a_killed_worker_is_retried_and_each_image_is_saved_once(workspace, new_weights_file, photos):
    argv = _args(workspace, new_weights_file, photos, epochs=150, extra=["--engine", "ray"])
    with _command(argv) as process:
        _wait_for_saved(process, 1)
        actors = [pid for pid, command in _ray_processes() if command.startswith("ray::MapWorker")]
        assert len(actors) == 1
        os.kill(actors[0], signal.SIGKILL)
        out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "raylet" not in out + err  # Ray's report of the dead worker went to its log
    records = _records(workspace / "out")
    assert sorted(r["output"] for r in records) == [f"p{i}.jpg" for i in range(4)]
    assert len({r["worker"] for r in records}) == 2  # the restarted actor is another process
    assert sorted(os.listdir(workspace / "out")) == ["manifest.jsonl", *(f"p{i}.jpg" for i in range(4))]


@pytest.mark.parametrize(
    "signum, status, words",
    # SIGTERM, for which Ray sets a handler of its own (SIGINT's path is the local job's, tested there).
    [(signal.SIGTERM, 143, "terminated (SIGTERM)")],
)
def test_a_signal_ends_a_ray_job_promptly_and_the_same_command_does_the_rest(
    workspace, new_weights_file, photos, signum, status, words, tmp_path
):
    argv = _args(workspace, new_weights_file, photos, epochs=400, extra=["--engine", "ray"])
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with _command(argv, env={**os.environ, "TMPDIR": str(temporary)}) as process:
        _wait_for_saved(process, 1)
        process.send_signal(signum)
        sent = time.monotonic()
        _, err = process.communicate(timeout=60)
        took = time.monotonic() - sent
    assert process.returncode == status, err
    assert took < 3
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"nst-tf: {words} after 1 of 4 images") and "the same command does the rest" in last
    assert not _no_ray_left(), "a local Ray's processes outlived the command"
    # Ray's session files and its actors' TensorFlow modules went to a folder of the command's (under /tmp,
    # this TMPDIR being too long for Ray's socket paths), removed with it; nothing is left in TMPDIR either.
    assert not os.listdir(temporary)
    assert not glob.glob(f"/tmp/nst_tf-{process.pid}-ray-*")
    out = workspace / "out"
    saved = sorted(os.listdir(out))  # which image Ray Data hands out first is its choice
    assert len(saved) == 2 and saved[0] == "manifest.jsonl" and saved[1].endswith(".jpg")
    rest = subprocess.run(
        [sys.executable, "-m", "nst_tf", *_args(workspace, new_weights_file, photos, epochs=400)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rest.returncode == 0 and "1 of 4 results are done already" in rest.stderr
    assert sorted(r["output"] for r in _records(out)) == [f"p{i}.jpg" for i in range(4)]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--workers", "2"], "--workers and --ray_address apply to --engine ray"),
        (["--ray_address", "127.0.0.1:6379"], "--workers and --ray_address apply to --engine ray"),
        (["--engine", "ray", "--reports"], "--reports runs with --engine local"),
        (["--engine", "ray", "--workers", "0"], "--workers must be a positive whole number; got 0"),
        (["--engine", "ray", "--ray_address", " "], "--ray_address: empty"),
        (["--engine", "ray", "--ray_address", "127.0.0.1:-1"], "is not host:port (with a port from 1 to 65535)"),
        (["--engine", "ray", "--ray_address", "127.0.0.1: 1"], "is not host:port"),
        (["--engine", "ray", "--ray_address", "ray://h:10001"], "is a Ray Client address, under which Ray Data"),
        (["--engine", "ray", "--ray_address", "http://h:1"], "is not host:port"),
        (["--engine", "spark"], "argument --engine: invalid choice: 'spark'"),
    ],
)
def test_ray_options_that_cannot_work_are_refused_in_one_line(
    workspace, new_weights_file, photos, capsys, extra, message
):
    assert main(_args(workspace, new_weights_file, photos, extra=extra)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (workspace / "out").exists()


@pytest.mark.parametrize(
    "workers, budget, message",
    [
        ("5", None, "--workers 5: a local Ray runs on this machine's 4 CPUs; give at most 4"),
        ("2", "1200M", "--workers 2: 2 workers each holding the network and a 64x48 run need about 1.71 GiB"),
        ("2", "1400M --max_size 600", "--workers 2: 600x450 is computed in tiles to fit the memory budget in one"),
    ],
)
def test_more_local_workers_than_the_machine_holds_are_refused_in_one_line(
    workspace, new_weights_file, photos, capsys, monkeypatch, workers, budget, message
):
    monkeypatch.setattr(ray_engine, "local_cpus", lambda: 4)
    extra = ["--engine", "ray", "--workers", workers, *(["--max_memory", *budget.split()] if budget else [])]
    assert main(_args(workspace, new_weights_file, photos, extra=extra)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (workspace / "out").exists()


def test_the_engine_options_are_for_several_images(workspace, new_weights_file, photos, capsys):
    assert main(_args(workspace, new_weights_file, photos / "p0.png", extra=["--engine", "ray"])) == 2
    assert "--engine, --workers and --ray_address apply to several content images" in capsys.readouterr().err


def test_a_missing_ray_is_named_with_its_install_command(workspace, new_weights_file, photos, capsys, monkeypatch):
    monkeypatch.setattr(ray_engine.importlib.util, "find_spec", lambda name: None)
    assert main(_args(workspace, new_weights_file, photos, extra=["--engine", "ray"])) == 2
    assert 'pip install "nst_tf[ray]"' in capsys.readouterr().err


def test_an_address_where_no_cluster_answers_is_one_line_and_leaves_nothing(workspace, new_weights_file, photos):
    argv = _args(workspace, new_weights_file, photos, extra=["--engine", "ray", "--ray_address", "127.0.0.1:1"])
    result = subprocess.run([sys.executable, "-m", "nst_tf", *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    refused = "nst-tf: error: --ray_address: no Ray cluster answers at 127.0.0.1:1: Connection refused"
    assert result.stderr.strip() == refused
    assert not (workspace / "out").exists()


SETTINGS = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00"  # a gRPC server's first frame


@pytest.mark.parametrize(
    "answer, pause, tls, problem",
    [
        (None, 0, None, "takes connections but does not answer within 1 s"),  # Ray waited minutes at each
        (b"", 0, None, "closes the connection without answering as a Ray cluster"),
        (b"HTTP/1.0 400 Bad request\r\n\r\n", 0, None, "answers, but not as a Ray cluster"),
        (SETTINGS, 0.4, None, "answers, but not as a Ray cluster"),  # a byte at a time: one deadline for all
        (SETTINGS, 0, "1", "answers in plain gRPC, but RAY_USE_TLS asks for TLS"),
        (b"\x15\x03\x03\x00\x02\x02\x32", 0, "1", None),  # a TLS alert: Ray speaks TLS with it
        (SETTINGS, 0, None, None),
    ],
)
def test_an_address_that_does_not_answer_as_grpc_does_is_refused_in_seconds(monkeypatch, answer, pause, tls, problem):
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    if tls:
        monkeypatch.setenv("RAY_USE_TLS", tls)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(64)
            for byte in [answer[i : i + 1] for i in range(len(answer))] if pause else [answer]:
                time.sleep(pause)
                with contextlib.suppress(OSError):
                    connection.sendall(byte)

    server = None
    if answer is not None:  # None: the kernel takes the connection and nobody speaks
        server = threading.Thread(target=serve, daemon=True)
        server.start()
    try:
        started = time.monotonic()
        if problem:
            with pytest.raises(NSTError, match=f"127.0.0.1:{port} {problem}"):
                ray_engine._check_reachable(f"127.0.0.1:{port}", timeout=1.0)
        else:
            ray_engine._check_reachable(f"127.0.0.1:{port}", timeout=1.0)
        assert time.monotonic() - started < 3
    finally:
        listener.close()
        if server is not None:
            server.join(timeout=10)


def _job(workspace, weights, photos, *extra):
    argv = _args(workspace, weights, photos, extra=["--engine", "ray", "--batch_size", "2", *extra])
    argv.remove("--seed")
    argv.remove("5")  # op determinism stays as this test process has it
    args = build_parser().parse_args(argv)
    _, job = _validated(args, PRESETS["first_edition"], set())
    return job


@pytest.mark.parametrize("pid", [782, 4194303])
@pytest.mark.parametrize("extra", [0, 1, 6, 200])
def test_a_local_rays_socket_paths_fit_in_a_unix_socket_address(monkeypatch, pid, extra):
    # The temporary folder the command makes for itself is /tmp/nst_tf-<pid>-XXXXXXXX; a 3-digit process
    # number made it 24 characters, which passed a length check and overflowed Ray's 107 bytes.
    base = tempfile.mkdtemp(prefix="nst_tf-782-" + "x" * extra, dir="/tmp")
    monkeypatch.setattr(tempfile, "tempdir", base)
    monkeypatch.setattr(os, "getpid", lambda: pid)
    folder = None
    try:
        folder = ray_engine._ray_folder()
        # Ray names its session folder so (ray._private.node), and puts the object store's socket in it.
        session = "session_" + time.strftime("%Y-%m-%d_%H-%M-%S_") + "999999_" + str(4194304)
        socket_path = os.path.join(folder, session, "sockets", "plasma_store")
        assert len(socket_path.encode()) <= 107, socket_path
        assert os.path.dirname(folder) in (base, "/tmp")
    finally:
        shutil.rmtree(base)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)  # under /tmp when base was too long


def test_the_actor_returns_each_images_result_and_skips_one_that_cannot_be_read(workspace, new_weights_file, photos):
    job = _job(workspace, new_weights_file, photos, "--on_error", "skip")
    (photos / "p2.png").write_bytes(b"damaged after the check")
    stylizer = RayStylizer(job, threads=1)
    positions = [i for i, member in enumerate(job.members) if member.size == (48, 64)]
    assert len(positions) == 3
    rows = stylizer({"position": np.array(positions)})
    kinds = {job.members[int(p)].name: kind for p, kind in zip(rows["position"], rows["kind"])}
    assert kinds == {"p0.jpg": "done", "p2.jpg": "skipped", "p3.jpg": "done"}
    for position, kind, image, height, width in zip(
        rows["position"], rows["kind"], rows["image"], rows["height"], rows["width"]
    ):
        if kind == "done":
            pixels = np.frombuffer(image, np.float32).reshape(1, height, width, 3)
            assert (height, width) == (48, 64) and np.isfinite(pixels).all()
    assert "p2.png" in rows["message"][list(rows["kind"]).index("skipped")]
    assert all(rows["iteration"][rows["kind"] == "done"] == 3)
    # A later call at another size keeps the network and traces for the new size.
    (portrait,) = [i for i, member in enumerate(job.members) if member.size == (64, 48)]
    rows = stylizer({"position": np.array([portrait])})
    assert list(rows["kind"]) == ["done"] and (rows["height"][0], rows["width"][0]) == (64, 48)


def test_worker_results_keep_an_images_trailing_zero_bytes():
    column = ray_engine._column([b"\x01\x00\x00", b""])
    assert column.dtype == object and column[0] == b"\x01\x00\x00"


# The cluster how-to of docs/many-images.md --------------------------------------------------------------------


def _cluster_block():
    """The cluster commands of docs/many-images.md: the head's ``ray start``, a worker node's, and the job's."""
    blocks = re.findall(r"^```bash\n(.*?)^```$", MANY_IMAGES_PAGE.read_text(), re.MULTILINE | re.DOTALL)
    block = next(b for b in blocks if "ray start --head" in b)
    return [shlex.split(line) for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _here(words, port):
    """A documented command on this machine: the head at 127.0.0.1 on a free port, Ray's CLI from this Python."""
    words = [w.replace("HEAD_HOST", "127.0.0.1").replace("6379", str(port)) for w in words]
    if words[0] == "ray":
        return [os.path.join(os.path.dirname(sys.executable), "ray"), *words[1:], "--disable-usage-stats"]
    assert words[:3] == ["python", "-m", "nst_tf"], words
    return [sys.executable, *words[1:]]


@pytest.fixture
def cluster_folder(tmp_path, noise_image):
    """A folder as the documented job expects it: the default weights and style, and photos/ with two images."""
    write_vgg19_mat(tmp_path / "pretrained-model" / "imagenet-vgg-verydeep-19.mat", width_divisor=16)
    noise_image(tmp_path / "images" / "style.jpg", 48, 64, 7)
    noise_image(tmp_path / "photos" / "a.png", 48, 64, 1)
    noise_image(tmp_path / "photos" / "b.png", 48, 64, 2)
    return tmp_path


def test_the_documented_cluster_commands_run_with_two_nodes_on_this_machine(cluster_folder):
    head, worker, job = _cluster_block()
    port, before = _free_port(), {pid for pid, _ in _ray_processes()}
    # Ray's session folder (its sockets' paths must stay short) and one CPU per node, so the two
    # actors of --workers 2 land on both nodes.
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    own = ["--num-cpus", "1", "--include-dashboard", "false"]
    # Ray turns token authentication on where ~/.ray/auth_token exists (a local Ray writes one); this
    # machine's token is no business of the test's, so its three processes agree to go without.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    try:
        started = subprocess.run(
            [*_here(head, port), *own, "--temp-dir", temp], capture_output=True, timeout=120, env=env
        )
        assert started.returncode == 0, started.stderr
        joined = subprocess.run([*_here(worker, port), "--num-cpus", "1"], capture_output=True, timeout=120, env=env)
        assert joined.returncode == 0, joined.stderr
        cheap = ["--width", "64", "--height", "48", "--epochs", "2", "--print_every", "1"]
        run = subprocess.run(
            [*_here(job, port), *cheap], cwd=cluster_folder, capture_output=True, text=True, timeout=600, env=env
        )
        assert run.returncode == 0, run.stderr
        assert sorted(r["output"] for r in _records(cluster_folder / "styled")) == ["a.jpg", "b.jpg"]
        # The job leaves a cluster it did not start running.
        assert any("gcs_server" in command for pid, command in _ray_processes() if pid not in before)
    finally:
        for pid, _ in _ray_processes():
            if pid not in before:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_sigterm_taken_by_rays_own_handler_while_it_starts_is_the_jobs_stop(monkeypatch, tmp_path):
    import ray

    from nst_tf.app.signals import StopRequest, Stopped

    def init(**settings):  # what ray.init does when SIGTERM comes after it set its handler
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        raise SystemExit(signal.SIGTERM)

    monkeypatch.setattr(ray, "init", init)
    stop, previous = StopRequest(), signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(Stopped) as stopped:
            ray_engine._start(ray_engine.RayOptions(), str(tmp_path / "log"), str(tmp_path), stop)
        assert stopped.value.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is stop
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(
    "token, environment, refused",
    [
        (b"\xff\xfe\n\x00zz", {}, True),  # gRPC aborted the command on it: status 134, no line
        (b"0123abcdef\n", {}, False),
        (b"", {}, False),  # Ray says what is wrong with an empty one itself
        (b"\xff\xfe", {"RAY_AUTH_MODE": "disabled"}, False),
        (b"0123abcdef", {"RAY_AUTH_TOKEN": "tok\x01en"}, True),
        (b"a" * 65536 + b"\xff", {}, "is longer than a token can be"),  # Ray reads it all: aborted on the byte
        (b"abc" + b" " * 40000 + b"\xff", {}, "is longer than a token can be"),
        (b"0123abcdef\r\n# written by hand: \xc3\xa9\n", {}, False),  # Ray reads the first line only
        (b"0123abcdef", {"RAY_AUTH_TOKEN": " "}, "is empty"),  # Ray waited 31 s on it
        ("fifo", {}, "is not a regular file"),  # Ray's own read of it never ended
    ],
)
def test_a_ray_token_that_is_no_token_is_refused_in_one_line(monkeypatch, tmp_path, token, environment, refused):
    (tmp_path / ".ray").mkdir()
    if token == "fifo":
        os.mkfifo(tmp_path / ".ray" / "auth_token")
    else:
        (tmp_path / ".ray" / "auth_token").write_bytes(token)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if refused:
        message = refused if isinstance(refused, str) else "holds characters a token cannot"
        with pytest.raises(NSTError, match=r"authentication token \(.*\) " + message):
            ray_engine._check_token()
    else:
        ray_engine._check_token()

"""The command under real signals, in real subprocesses: it stops promptly, saves, and cleans up."""

import os
import signal
import subprocess
import sys
import time

import pytest


def start(cli_args, workspace, *extra):
    # Reports are far apart, so every step runs inside traced calls: the
    # signal must still be honoured between time-bounded calls.
    argv = cli_args(*extra, epochs=100000, print_every=100000)
    return subprocess.Popen(
        [sys.executable, "-m", "nst_tf", *argv],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_steps(process, steps):
    """Reads the progress lines on stderr until ``steps`` iterations are done; returns what was read."""
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith("[") and int(line.split("]")[1].split("/")[0]) >= steps:
            return seen
    pytest.fail("the run ended before it reported progress:\n" + "".join(seen))


@pytest.mark.parametrize(
    "signum, status, words",
    [
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),
        (signal.SIGHUP, 129, "hung up (SIGHUP)"),
    ],
)
def test_a_signal_between_reports_saves_the_latest_image_and_exits_promptly(cli_args, workspace, signum, status, words):
    process = start(cli_args, workspace)
    try:
        # On a pipe the bar has a line at the report (1 done) and at the first ETA (2 done), then one per 10 s.
        wait_for_steps(process, 2)
        process.send_signal(signum)
        sent = time.monotonic()
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.communicate()  # closes the pipes
    waited = time.monotonic() - sent
    assert process.returncode == status, err
    # About one time-bounded call plus a save; generous for a loaded 2-core machine.
    assert waited < 20, waited
    last = err.strip().splitlines()[-1]
    assert words in last and "of 100000 iterations; saved" in last, last
    done = int(last.split(" after ")[1].split(" of ")[0])
    assert done >= 2  # the iteration actually reached, not the last report's (1 done)
    out = workspace / "out"
    assert (out / "generated_image.jpg").stat().st_size > 0
    assert [name for name in os.listdir(out) if name.startswith(".nst_tf-")] == []
    assert "Traceback" not in err


def test_errors_need_no_tensorflow_and_print_only_their_line(cli_args, workspace):
    code = (
        "import sys\n"
        "from nst_tf.app.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "print('tensorflow' in sys.modules)\n"
        "sys.exit(status)\n"
    )
    (workspace / "damaged.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    bad_inputs = (["--epochs", "0"], ["--style_image_filename", "missing.png"], ["--model", "damaged.mat"], ["-h"])
    for extra in bad_inputs:
        done = subprocess.run(
            [sys.executable, "-c", code, *cli_args(*extra)], cwd=workspace, capture_output=True, text=True, timeout=60
        )
        assert done.stdout.strip().splitlines()[-1] == "False", (extra, done.stdout)
        if extra != ["-h"]:
            assert done.returncode == 2
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def _run_and_signal(argv, cwd, signum, when, env=None):
    """Starts the command, sends ``signum`` once ``when(process)`` returns, and waits; ``(status, stderr, waited)``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nst_tf", *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        seen = when(process)
        process.send_signal(signum)
        sent = time.monotonic()
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.communicate()  # closes the pipes
    return process.returncode, "".join(seen or []) + err, time.monotonic() - sent


@pytest.mark.parametrize("delay", [0.15, 0.5])
@pytest.mark.parametrize("signum, words", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated (SIGTERM)")])
def test_a_signal_while_the_commands_modules_load_ends_it_with_one_line(cli_args, workspace, delay, signum, words):
    status, err, waited = _run_and_signal(
        cli_args(epochs=100000, print_every=100000), workspace, signum, lambda process: time.sleep(delay)
    )
    assert status == 128 + signum, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == f"nst-tf: {words}", err
    assert waited < 10, waited
    assert not (workspace / "out").exists()


def test_a_stop_before_the_run_starts_leaves_no_output_folder_it_made(cli_args, workspace, monkeypatch, capsys):
    from nst_tf.app.cli import main
    from nst_tf.app.signals import Stopped

    def signalled(err):  # the signal arrives while TensorFlow is imported, after the folder was made
        assert (workspace / "out").is_dir()
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr("nst_tf.app.jobs.build.import_tensorflow_quietly", signalled)
    assert main(cli_args()) == 128 + signal.SIGTERM
    assert not (workspace / "out").exists()
    assert capsys.readouterr().err.strip().splitlines()[-1] == "nst-tf: terminated (SIGTERM)"
    (workspace / "out").mkdir()  # a folder the user made stays, empty or not
    assert main(cli_args()) == 128 + signal.SIGTERM
    assert (workspace / "out").is_dir()


def test_a_signal_while_a_tiled_step_is_traced_is_honoured_within_seconds(cli_args, workspace):
    # Tracing a step of 12 tiles takes many seconds, in one call of the main thread: the watcher thread
    # saves the latest image and ends the process when the main thread cannot.
    def after_the_tile_note(process):
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "tiles of" in line:
                time.sleep(1.0)
                return seen
        pytest.fail("no tile note:\n" + "".join(seen))

    argv = cli_args("--tile_size", "32", "--width", "128", "--height", "96", epochs=100000, print_every=100000)
    env, temporary = _own_temporary_folder(workspace)
    status, err, waited = _run_and_signal(argv, workspace, signal.SIGTERM, after_the_tile_note, env)
    assert status == 143, err
    # The watcher gives the main thread 1.5 s, then saves: generous for a loaded 2-core machine.
    assert waited < 15, waited
    last = err.strip().splitlines()[-1]
    assert last.startswith("nst-tf: terminated (SIGTERM) after ") and "saved" in last, err
    assert (workspace / "out" / "generated_image.jpg").stat().st_size > 0
    assert "Traceback" not in err
    # The process ended by os._exit, which skips the atexit handlers that remove these.
    assert _autograph_files(temporary) == []


def _own_temporary_folder(workspace):
    temporary = workspace / "tmp"
    temporary.mkdir()
    return {**os.environ, "TMPDIR": str(temporary)}, temporary


def _autograph_files(folder):
    return [name for name in os.listdir(folder) if name.startswith("__autograph_generated_file")]


def test_a_finished_run_leaves_no_files_in_the_temporary_folder(cli_args, workspace):
    env, temporary = _own_temporary_folder(workspace)
    done = subprocess.run(
        [sys.executable, "-m", "nst_tf", *cli_args(epochs=2)], cwd=workspace, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("done: 2 iterations in "), done.stdout
    # The command ends by os._exit after its last line (no seconds of teardown), removing what autograph wrote.
    assert os.listdir(temporary) == [] and (workspace / "out" / "generated_image.jpg").is_file()


def test_the_watcher_runs_the_jobs_cleanups_before_it_ends_the_process(tmp_path):
    # What the main thread's finally blocks would undo (an empty output folder it created) is undone
    # when the watcher ends the process instead.
    code = (
        "import os, sys; from nst_tf.app.signals import StopRequest\n"
        "stop = StopRequest(sys.stderr)\n"
        f"stop.cleanups.append(lambda: os.rmdir({str(tmp_path / 'made')!r}))\n"
        "stop._finish_for_the_main_thread(2)\n"
    )
    (tmp_path / "made").mkdir()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130 and "interrupted" in done.stderr
    assert not (tmp_path / "made").exists()


@pytest.mark.parametrize("own", [True, False])
def test_what_threads_write_to_descriptor_2_after_a_ray_job_stays_out_of_the_commands_lines(own):
    # A local Ray's driver threads outlive the job and write to descriptor 2 (seen after the last line in
    # CI). The command's lines have a descriptor of their own, so descriptor 2 can be silenced; a library
    # caller's descriptor 2 is given back as it was.
    code = (
        "import os, sys; from nst_tf.app import signals; from nst_tf.app.jobs.ray_engine import _ray_lines_aside\n"
        f"if {own}: signals.use_own_standard_streams()\n"
        "with _ray_lines_aside(sys.stderr) as (err, log):\n"
        "    os.write(2, b'core worker, during\\n'); sys.stderr.write('ray logger, during\\n'); sys.stderr.flush()\n"
        "    err.write('ours, during\\n')\n"
        "os.write(2, b'core worker, after\\n')\n"
        "sys.stderr.write('ours, last\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = ["ours, during", "ours, last"] if own else ["ours, during", "core worker, after", "ours, last"]
    assert done.stderr.splitlines() == expected


def test_the_commands_streams_never_take_a_closed_standard_descriptors_number():
    # With 2 closed, the copy of 1 took number 2: what C++ wrote there went to standard output, and after
    # a Ray job (2 pointed at the null device) the command's output went nowhere.
    code = (
        "import os, sys; from nst_tf.app import signals\n"
        "signals.use_own_standard_streams()\n"
        "assert sys.stdout.fileno() > 2 and sys.stderr.fileno() > 2, (sys.stdout.fileno(), sys.stderr.fileno())\n"
        "os.write(2, b'core worker\\n')\n"
        "signals.quiet_descriptor_2()\n"
        "print('saved', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=lambda: os.close(2))
    assert done.returncode == 0 and done.stdout == "saved\n", done


def _bytes_waiting(descriptor):
    import fcntl
    import termios

    count = bytearray(4)
    fcntl.ioctl(descriptor, termios.FIONREAD, count)
    return int.from_bytes(count, sys.byteorder)


def _wait_until_blocked(process, reader, at_least):
    """Waits until ``at_least`` bytes wait in the pipe and no more come for a while: the writer is blocked."""
    deadline, last, since = time.monotonic() + 120, -1, time.monotonic()
    while process.poll() is None and time.monotonic() < deadline:
        waiting = _bytes_waiting(reader)
        if waiting != last:
            last, since = waiting, time.monotonic()
        elif waiting >= at_least and time.monotonic() - since > 1.5:
            return
        time.sleep(0.05)
    pytest.fail(f"the run ended or did not fill the pipe (status {process.poll()}, {last} bytes waiting)")


def test_a_signal_ends_the_command_while_its_output_is_a_full_pipe_nobody_reads(cli_args, workspace):
    import fcntl

    reader, writer = os.pipe()
    fcntl.fcntl(writer, getattr(fcntl, "F_SETPIPE_SZ", 1031), 8192)  # two pages: a few dozen report lines
    argv = cli_args(epochs=100000, print_every=1)
    process = subprocess.Popen([sys.executable, "-m", "nst_tf", *argv], cwd=workspace, stdout=writer, stderr=writer)
    os.close(writer)
    try:
        _wait_until_blocked(process, reader, 4096)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        process.wait(timeout=60)
        waited = time.monotonic() - sent
    finally:
        process.kill()
        process.wait()
        os.close(reader)
    assert process.returncode == 143
    # The grace, a save, and a few seconds for each write that finds no room; generous for a loaded machine.
    assert waited < 20, waited
    assert (workspace / "out" / "generated_image.jpg").stat().st_size > 0


def test_after_a_signal_all_writes_to_a_full_pipe_wait_two_seconds_in_all(monkeypatch):
    import threading

    from nst_tf.app import signals

    monkeypatch.setattr(signals, "_ENDING", threading.Event())
    monkeypatch.setattr(signals, "_blocked_since", [])
    reader, writer = os.pipe()
    try:
        os.set_blocking(writer, False)
        with pytest.raises(BlockingIOError):
            while True:
                os.write(writer, b"x" * 4096)
        os.set_blocking(writer, True)
        stream = signals._Forgiving(writer)
        signals._ENDING.set()
        started = time.monotonic()
        assert [stream.write(b"a line\n") for _ in range(30)] == [7] * 30  # dropped, counted as written
        waited = time.monotonic() - started
    finally:
        os.close(reader)
        os.close(writer)
    assert 1.9 < waited < 6, waited  # 2 s for the first, none for the rest (each waited 0.2 s before)

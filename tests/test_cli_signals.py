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
        wait_for_steps(process, 3)
        process.send_signal(signum)
        sent = time.monotonic()
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    waited = time.monotonic() - sent
    assert process.returncode == status, err
    # About one time-bounded call plus a save; generous for a loaded 2-core machine.
    assert waited < 20, waited
    last = err.strip().splitlines()[-1]
    assert words in last and "of 100000 iterations; saved" in last, last
    done = int(last.split(" after ")[1].split(" of ")[0])
    assert done >= 3  # the iteration actually reached, not the last report's
    out = workspace / "out"
    assert (out / "generated_image.jpg").stat().st_size > 0
    assert [name for name in os.listdir(out) if name.startswith(".nst_tf-")] == []
    assert "Traceback" not in err


def test_errors_need_no_tensorflow_and_print_only_their_line(cli_args, workspace):
    code = (
        "import sys\n"
        "from nst_tf.cli import main\n"
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

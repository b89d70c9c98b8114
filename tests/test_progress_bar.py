"""The progress line: redrawn in place on a terminal, a bounded number of lines on a pipe or in a file."""

import io
import os
import re
import select
import subprocess
import sys
import termios
import time

import pytest

from nst_tf.app import signals
from nst_tf.app.jobs import drive
from nst_tf.download import console


def screen(output):
    """What a terminal shows after ``output``: its lines, as ``\\r`` and ``\\n`` place the characters."""
    lines, row, column = [[]], 0, 0
    for character in output:
        if character == "\r":
            column = 0
        elif character == "\n":
            row, column = row + 1, 0
            lines.append([])
        else:
            line = lines[row]
            line[column : column + 1] = [character]
            column += 1
    return ["".join(line).rstrip() for line in lines]


def terminal():
    """A pseudo-terminal that passes bytes as written (no ``\\n`` to ``\\r\\n``): (master, slave) descriptors."""
    master, slave = os.openpty()
    attributes = termios.tcgetattr(slave)
    attributes[1] &= ~termios.OPOST
    termios.tcsetattr(slave, termios.TCSANOW, attributes)
    return master, slave


def read_all(master, process, seconds=300):
    """Everything the terminal's other side receives until ``process`` ends and its side is closed."""
    chunks, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every descriptor of the slave side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None and not select.select([master], [], [], 0.5)[0]:
            break
    return b"".join(chunks).decode()


def read_written(master, quiet=0.3):
    """What has been written to the terminal so far: read until nothing more comes for ``quiet`` seconds
    (one read may return before a second stream's bytes have crossed the terminal)."""
    chunks = []
    while select.select([master], [], [], quiet)[0]:
        chunks.append(os.read(master, 65536))
    return b"".join(chunks).decode()


def own_stream(descriptor):
    """A text stream as ``use_own_standard_streams`` makes one, on a copy of ``descriptor``."""
    raw = signals._Forgiving(os.dup(descriptor))
    return io.TextIOWrapper(io.BufferedWriter(raw), "utf-8", "backslashreplace", line_buffering=True)


class Clock:
    """A fake ``time.monotonic`` that the test moves on."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def no_line_drawn(monkeypatch):
    """Each test starts with no progress line drawn by the command's streams."""
    monkeypatch.setattr(signals, "_unended", [])


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(drive.time, "monotonic", clock)
    return clock


# The real command on a terminal


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_erased_before_each_cost_line(cli_args, workspace):
    master, slave = terminal()
    argv = cli_args(epochs=7, print_every=2)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "nst_tf", *argv], cwd=workspace, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
        )
        os.close(slave)
        output = read_all(master, process)
        assert process.wait(timeout=60) == 0, output
    finally:
        os.close(master)
    assert output.endswith("\n") and output.count("\r[") >= 4  # drawn after each report
    lines = screen(output)
    # From the first report on (TensorFlow may print start-up lines before it).
    shown = lines[lines.index("Iteration 0 :") : -1]
    assert "" not in shown and lines[-1] == "", lines
    # One bar line on the screen, in its last state, then the final path.
    assert [line for line in shown if "[" in line or "ETA" in line] == [shown[-2]], shown
    assert (
        shown[-2].startswith("[" + "=" * 30 + "] 7/7 ")
        and shown[-1].startswith("done: 7 iterations in ")
        and shown[-1].endswith(f"; saved {workspace / 'out' / 'generated_image.jpg'}")
    )
    # The cost lines, none of them mixed with the bar: it is erased before each report is written.
    costs = shown[:-2]
    assert [line for line in costs if line.startswith("Iteration")] == [f"Iteration {i} :" for i in (0, 2, 4, 6)]
    assert len(costs) == 16 and all(
        line.startswith("Iteration") or re.fullmatch(r"(total|content|style) cost = \S+", line) for line in costs
    ), costs


# The bar-writing class


@pytest.mark.parametrize("interval", [10.0, 3.0])
def test_on_a_pipe_lines_between_reports_are_at_least_the_interval_apart(clock, monkeypatch, interval):
    monkeypatch.setattr(drive.ProgressLine, "interval", interval)
    stream = io.StringIO()
    bar = drive.ProgressLine(1000, stream)
    written = []
    for done in range(1, 121):  # a tick a second, no report
        clock.now += 1.0
        before = stream.getvalue().count("\n")
        bar.update(done)
        if stream.getvalue().count("\n") > before:
            written.append(clock.now)
    # The first line (the run has begun) and the first with an ETA, then one per interval at most.
    assert 120 // interval <= len(written) <= 2 + 120 / interval
    assert all(later - earlier >= interval for earlier, later in zip(written[1:], written[2:])), written
    assert all(line.startswith("[") and "\r" not in line for line in stream.getvalue().splitlines())


def test_on_a_pipe_each_report_and_the_last_iteration_get_a_line(clock):
    stream = io.StringIO()
    bar = drive.ProgressLine(6, stream)
    for done in range(1, 7):
        clock.now += 0.1
        bar.update(done, report=done % 2 == 1)
    counts = [int(line.split("] ")[1].split("/")[0]) for line in stream.getvalue().splitlines()]
    # 2: the first iteration whose ETA is known; 6: the last.
    assert counts == [1, 2, 3, 5, 6]


def test_on_a_terminal_the_bar_is_one_line_redrawn_in_place(clock):
    stream = Terminal()
    bar = drive.ProgressLine(12, stream)
    for done in range(1, 12):
        clock.now += 0.1
        bar.update(done, report=done % 3 == 0)
    assert "\n" not in stream.getvalue() and stream.getvalue().count("\r") == 11
    bar.update(12)
    bar.update(12)  # once ended, the line stays as it is
    (line, after) = screen(stream.getvalue())
    assert line.startswith("[" + "=" * 30 + "] 12/12 ") and line.endswith("ETA 0:00:00") and after == ""


def test_a_shorter_bar_leaves_nothing_of_the_longer_one_before_it(clock):
    stream = Terminal()
    bar = drive.ProgressLine(10, stream)
    bar.update(1)
    clock.now += 10000.0
    bar.update(2)  # 10000 s for 1 iteration: 8 left, 80000 s
    clock.now += 200.0
    bar.update(3)  # 10200 s for 2: 7 left, 35700 s, a character shorter
    assert stream.getvalue().count("\r") == 3
    (line,) = screen(stream.getvalue())
    assert line.endswith("] 3/10  10200s elapsed  ETA 9:55:00"), line


@pytest.mark.parametrize("same_stream", [True, False])
def test_a_message_on_the_terminal_erases_the_drawn_bar_first(clock, same_stream):
    master, slave = terminal()
    err = own_stream(slave)
    out = err if same_stream else own_stream(slave)
    try:
        bar = drive.ProgressLine(10, err)
        bar.update(3)
        out.write("Iteration 3 :\n")
        out.flush()
        bar.update(4)
        output = read_written(master)
    finally:
        for closing in (out, err):
            closing.close()
        os.close(slave)
        os.close(master)
    lines = screen(output)
    assert lines[0] == "Iteration 3 :" and lines[1].startswith("[") and " 4/10 " in lines[1], output


def test_a_message_elsewhere_leaves_the_bar_on_the_terminal(clock):
    master, slave = terminal()
    reader, writer = os.pipe()
    err, out = own_stream(slave), own_stream(writer)
    try:
        bar = drive.ProgressLine(10, err)
        bar.update(3)
        out.write("Iteration 3 :\n")
        out.flush()
        shown = screen(read_written(master))
        assert os.read(reader, 100) == b"Iteration 3 :\n"
    finally:
        for closing in (out, err):
            closing.close()
        for descriptor in (master, slave, reader, writer):
            os.close(descriptor)
    assert len(shown) == 1 and " 3/10 " in shown[0]


# The command's own copies of its streams


@pytest.mark.parametrize("kind", ["terminal", "pipe", "file"])
def test_the_stream_copies_are_a_terminal_exactly_when_their_descriptor_is(tmp_path, kind):
    if kind == "terminal":
        keep, descriptor = terminal()
    elif kind == "pipe":
        keep, descriptor = os.pipe()
    else:
        keep, descriptor = None, os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    try:
        stream = own_stream(descriptor)
        assert stream.isatty() is (kind == "terminal")
        stream.close()
    finally:
        for d in (keep, descriptor):
            if d is not None:
                os.close(d)


@pytest.mark.parametrize("terminals", [(), (1,), (2,), (1, 2)])
def test_the_commands_standard_streams_answer_isatty_as_their_descriptors_do(tmp_path, terminals):
    master, slave = terminal()
    reader, writer = os.pipe()
    result = tmp_path / "answers"
    code = (
        "import sys; from nst_tf.app import signals\n"
        "signals.use_own_standard_streams()\n"
        f"open({str(result)!r}, 'w').write(f'{{sys.stdout.isatty()}} {{sys.stderr.isatty()}}')\n"
    )
    try:
        streams = {n: slave if n in terminals else writer for n in (1, 2)}
        subprocess.run([sys.executable, "-c", code], stdout=streams[1], stderr=streams[2], timeout=60, check=True)
    finally:
        for descriptor in (master, slave, reader, writer):
            os.close(descriptor)
    assert result.read_text() == f"{1 in terminals} {2 in terminals}"


# The download's progress


@pytest.fixture
def download_clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(console.time, "monotonic", clock)
    return clock


def test_a_download_on_a_terminal_redraws_one_line(download_clock):
    stream = Terminal()
    shown = console.Console(stream)
    shown.begin(0)
    for done in range(1, 41):
        download_clock.now += 0.5
        shown.progress(done * 2**20, 40 * 2**20, final=done == 40)
    shown.note("saved")
    (bar, note, after) = screen(stream.getvalue())
    assert stream.getvalue().count("\r") == 40 and bar.startswith("   40.0 / 40.0 MiB")
    assert note == "nst-tf download: saved" and after == ""


def test_a_download_to_a_pipe_writes_a_line_at_most_every_ten_seconds(download_clock):
    stream = io.StringIO()
    shown = console.Console(stream)
    shown.begin(0)
    for done in range(1, 61):
        download_clock.now += 1.0
        shown.progress(done * 2**20, 60 * 2**20, final=done == 60)
    shown.note("saved")
    lines = stream.getvalue().split("\n")
    assert "\r" not in stream.getvalue() and lines[-2:] == ["nst-tf download: saved", ""]
    done = [float(line.split("/")[0]) for line in lines[:-2]]
    assert done == [1.0, 11.0, 21.0, 31.0, 41.0, 51.0, 60.0]

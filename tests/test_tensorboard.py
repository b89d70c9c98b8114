"""``--log_dir``: TensorBoard logs of the command's runs, read back from their event files."""

import io
import os
import re

import numpy as np
import pytest
from PIL import Image

from nst_tf.app.cli import main
from nst_tf.loop.optimizer_makers import make_optimizer
from nst_tf.plan.config import StyleTransferConfig
from nst_tf.plan.large_options import scale_sizes


def read_run(folder):
    """``(scalars, images)`` of the one event file in ``folder``: ``{tag: {step: value}}`` and ``{step: uint8
    pixels}``, as TensorBoard reads them (a scalar's tensor; an image's width, height and PNG)."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    files = [name for name in os.listdir(folder) if name.startswith("events.out.tfevents.")]
    assert len(files) == 1, os.listdir(folder)
    scalars, images = {}, {}
    for record in tf.data.TFRecordDataset(os.path.join(folder, files[0])):
        event = event_pb2.Event.FromString(record.numpy())
        for value in event.summary.value:
            plugin = value.metadata.plugin_data.plugin_name
            if plugin == "scalars":
                scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
            else:
                assert (plugin, value.tag) == ("images", "image")
                width, height, png = tf.make_ndarray(value.tensor)
                pixels = np.asarray(Image.open(io.BytesIO(png)))
                assert pixels.shape == (int(height), int(width), 3)
                images[event.step] = pixels
    return scalars, images


def printed_costs(out, result=None):
    """``{iteration: {term: cost}}`` from the course's report lines in ``out`` (``result``: the result whose lines,
    ``<result>: Iteration <i> :`` and the cost lines below, are wanted from a many-image job's)."""
    reports, current = {}, None
    for line in out.splitlines():
        heading = re.fullmatch(r"(?:(\S+): )?Iteration (\d+) :", line)
        cost = re.fullmatch(r"(\w+) cost = (\S+)", line)
        if heading:
            current = reports.setdefault(int(heading.group(2)), {}) if heading.group(1) == result else None
        elif cost and current is not None:
            current[cost.group(1)] = float(cost.group(2))
    return reports


def assert_logged_as_printed(scalars, printed):
    for iteration, costs in printed.items():
        for term, value in costs.items():
            # printed with %g: six significant digits
            assert scalars[f"cost/{term}"][iteration] == pytest.approx(value, rel=1e-5, abs=1e-30), (term, iteration)


def test_a_run_logs_every_reports_costs_learning_rate_and_chosen_images(workspace, cli_args, capsys):
    logs = workspace / "runs"
    argv = cli_args("--seed", "2", "--learning_rate", "1.5", "--learning_rate_steps", "3:0.5,5:0.25", epochs=7,
                    print_every=1) + ["--log_dir", str(logs), "--log_images_every", "4"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert os.listdir(logs) == ["content"]  # the content image's stem
    scalars, images = read_run(logs / "content")
    assert set(scalars) == {"cost/total", "cost/content", "cost/style", "learning_rate"}
    assert all(sorted(values) == list(range(7)) for values in scalars.values())
    printed = printed_costs(out)
    assert sorted(printed) == list(range(7))
    assert_logged_as_printed(scalars, printed)
    # the schedule as the optimizer itself applies it at each step
    optimizer = make_optimizer(StyleTransferConfig(learning_rate=1.5, learning_rate_steps=((3, 0.5), (5, 0.25))))
    expected = {}
    for step in range(7):
        optimizer.iterations.assign(step)
        expected[step] = float(optimizer.learning_rate)
    assert scalars["learning_rate"] == pytest.approx(expected)
    assert [expected[step] for step in range(7)] == [1.5, 1.5, 1.5, 0.5, 0.5, 0.25, 0.25]
    # the first report, every fourth after it, and the last; each the image saved for that report
    assert sorted(images) == [0, 4, 6]
    for step in (0, 4):
        assert np.array_equal(images[step], np.asarray(Image.open(workspace / "out" / f"{step}.png")))
    assert images[6].shape == (48, 64, 3)


def test_a_coarse_to_fine_runs_steps_go_on_across_its_scales(workspace, cli_args):
    logs = workspace / "runs"
    argv = cli_args("--height", "64", "--scales", "2", "--scale_epochs", "3", "--log_dir", str(logs), epochs=4,
                    print_every=2)  # fmt: skip
    assert main(argv) == 0
    scalars, images = read_run(logs / "content")
    # scale 1: iterations 0 and 2 (its last); scale 2: 0, 2 and 3, after scale 1's 3 iterations
    assert sorted(scalars["cost/total"]) == [0, 2, 3, 5, 6]
    assert sorted(images) == [0, 6]
    (small_height, small_width), _ = scale_sizes(64, 64, 2)
    assert images[0].shape == (small_height, small_width, 3) and images[6].shape == (64, 64, 3)


def _two_images(workspace, weights, noise_image, *extra):
    noise_image(workspace / "photos" / "a.png", 48, 64, 1)
    noise_image(workspace / "photos" / "c.png", 48, 64, 3)
    return [
        "--content_image_filename", str(workspace / "photos" / "a.png"), str(workspace / "photos" / "c.png"),
        "--style_image_filename", str(workspace / "style.png"), "--model", str(weights),
        "--output_dir", str(workspace / "out"), "--max_size", "64", "--epochs", "3", "--print_every", "1",
        "--seed", "5", "--log_dir", str(workspace / "runs"), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("batch_size", ["1", "2"])
def test_several_images_log_one_run_each_with_their_own_costs(workspace, new_weights_file, noise_image, capsys,
                                                               batch_size):  # fmt: skip
    logs = workspace / "runs"
    assert main(_two_images(workspace, new_weights_file, noise_image, "--reports", "--batch_size", batch_size)) == 0
    out = capsys.readouterr().out
    assert sorted(os.listdir(logs)) == ["a", "c"]  # the results' stems
    totals = []
    for stem in ("a", "c"):
        scalars, images = read_run(logs / stem)
        assert sorted(scalars["cost/total"]) == [0, 1, 2]
        printed = printed_costs(out, result=f"{stem}.jpg")
        assert sorted(printed) == [0, 1, 2]
        assert_logged_as_printed(scalars, printed)
        assert sorted(images) == [0, 2]
        assert np.array_equal(images[0], np.asarray(Image.open(workspace / "out" / f"{stem}.0.png")))
        totals.append(scalars["cost/total"][2])
    assert totals[0] != totals[1]


def test_a_video_logs_one_run_per_frame(workspace, new_weights_file, tmp_path, capsys):
    from nst_tf.plan.clip import encode

    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, size=(48, 70, 3), dtype=np.uint8)
    encode(str(tmp_path / "clip.mp4"), [big[:, 2 * i : 2 * i + 64] for i in range(3)], (64, 48), 3.0)
    logs = workspace / "runs"
    argv = [
        "--content_image_filename", str(tmp_path / "clip.mp4"), "--style_image_filename", str(workspace / "style.png"),
        "--model", str(new_weights_file), "--output_dir", str(workspace / "out"), "--max_size", "64",
        "--epochs", "2", "--first_frame_epochs", "3", "--print_every", "1", "--seed", "3", "--log_dir", str(logs),
    ]  # fmt: skip
    assert main(argv) == 0
    assert os.listdir(logs) == ["clip"] and sorted(os.listdir(logs / "clip")) == ["000001", "000002", "000003"]
    first, first_images = read_run(logs / "clip" / "000001")
    assert sorted(first["cost/total"]) == [0, 1, 2] and sorted(first_images) == [0, 2]
    later, later_images = read_run(logs / "clip" / "000003")
    assert sorted(later["cost/total"]) == [0, 1] and sorted(later_images) == [0, 1]
    assert "cost/temporal" in later and later_images[1].shape == (48, 64, 3)


def test_lbfgs_logs_no_learning_rate(workspace, cli_args):
    logs = workspace / "runs"
    assert main(cli_args("--optimizer", "lbfgs", "--log_dir", str(logs), epochs=2, print_every=1)) == 0
    scalars, _ = read_run(logs / "content")
    assert "learning_rate" not in scalars and sorted(scalars["cost/total"]) == [0, 1]


@pytest.mark.parametrize(
    "make, extra, message",
    [
        (lambda runs: runs.write_text("x"), [], "--log_dir: {runs} exists and is not a folder"),
        (lambda runs: runs.write_text("x"), ["--log_dir", "{runs}/sub"], "is not a folder"),
        (None, ["--log_images_every", "0"], "--log_images_every must be a positive whole number; got 0"),
        (None, ["--log_dir", ""], "--log_dir: empty"),
        (lambda runs: (runs.mkdir(), (runs / "content").write_text("x")), [], "content exists and is not a folder"),
    ],
)
def test_a_log_dir_that_cannot_be_written_is_one_line_before_anything_is_created(
    workspace, cli_args, capsys, make, extra, message
):
    runs = workspace / "runs"
    if make is not None:
        make(runs)
    extra = [word.format(runs=runs) for word in extra]
    argv = cli_args(*(extra if "--log_dir" in extra else ["--log_dir", str(runs), *extra]))
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message.format(runs=runs) in lines[0], lines
    assert not (workspace / "out").exists()


def test_log_images_every_needs_a_log_dir(cli_args, capsys):
    assert main(cli_args("--log_images_every", "3")) == 2
    assert "--log_images_every applies to --log_dir" in capsys.readouterr().err


def test_the_ray_engine_refuses_a_log_dir(workspace, cli_args, capsys):
    argv = cli_args("--engine", "ray", "--log_dir", str(workspace / "runs"))
    argv[2:2] = [str(workspace / "content.png")]  # two content images: a many-image job
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--log_dir runs with --engine local" in err[0], err


def test_a_log_that_cannot_be_written_is_one_line_and_the_job_goes_on(workspace, new_weights_file, noise_image, capsys):
    (workspace / "runs").mkdir()
    (workspace / "runs" / "a").write_text("a file where image a's run would go")
    assert main(_two_images(workspace, new_weights_file, noise_image)) == 0
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "--log_dir: cannot write to" in errors[0] and "goes on without its log" in errors[0]
    assert {"a.jpg", "c.jpg"} <= set(os.listdir(workspace / "out"))
    scalars, _ = read_run(workspace / "runs" / "c")
    assert sorted(scalars["cost/total"]) == [0, 1, 2]


def test_log_dir_without_tensorboard_installed_names_the_install(workspace, cli_args, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert main(cli_args() + ["--log_dir", str(workspace / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith('pip install "nst_tf[tensorboard]"'), err
    assert not (workspace / "runs").exists() and not (workspace / "out").exists()


def test_a_log_dir_where_no_folder_can_be_made_is_refused_before_the_run(workspace, cli_args, capsys):
    # Linux's /proc takes no new folder, though os.access says it is writable for root.
    assert main(cli_args() + ["--log_dir", "/proc/nst_tf-runs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nst-tf: error: --log_dir: cannot write to /proc: "), err
    assert not (workspace / "out").exists()

"""``python -m nst_tf``: in-process through ``main(argv)``, and one real subprocess."""

import dataclasses
import importlib.metadata
import os
import re
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nst_tf import NSTError, StyleTransfer, StyleTransferConfig
from nst_tf.app.cli import build_parser, main
from nst_tf.app.jobs import kinds


def test_main_writes_the_course_files_and_prints_the_course_lines(workspace, capsys, cli_args):
    assert main(cli_args("--seed", "1")) == 0
    assert sorted(os.listdir(workspace / "out")) == ["0.png", "2.png", "4.png", "generated_image.jpg"]
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[:4][0] == "Iteration 0 :"
    assert lines[1].startswith("total cost = ") and lines[2].startswith("content cost = ")
    assert lines[3].startswith("style cost = ")
    assert [line for line in lines if line.startswith("Iteration")] == [
        "Iteration 0 :",
        "Iteration 2 :",
        "Iteration 4 :",
    ]
    assert "5/5" in err and "ETA" in err
    with Image.open(workspace / "out" / "generated_image.jpg") as image:
        assert image.size == (64, 48)


def test_same_seed_gives_byte_identical_outputs(workspace, cli_args):
    first, second = workspace / "a", workspace / "b"
    for folder in (first, second):
        argv = cli_args("--seed", "11") + ["--output_dir", str(folder)]
        assert main(argv) == 0
    for name in ("0.png", "4.png", "generated_image.jpg"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_images_are_found_by_name_under_images(workspace, monkeypatch, cli_args):
    monkeypatch.chdir(workspace)
    (workspace / "images").mkdir()
    os.replace(workspace / "content.png", workspace / "images" / "content.png")
    argv = cli_args(epochs=1)
    argv[1] = "content.png"
    assert main(argv) == 0


def expect_error(capsys, argv, message):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nst-tf: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--epochs", "0"], "epochs must be a positive whole number; got 0"),
        (["--epochs", "-4"], "epochs must be a positive whole number; got -4"),
        (["--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
        (["--print_every", "0"], "print_every must be a positive whole number; got 0"),
        (["--learning_rate", "0"], "learning_rate must be positive; got 0.0"),
        (["--learning_rate", "-2"], "learning_rate must be positive; got -2.0"),
        (["--alpha", "-10"], "alpha must be zero or more; got -10.0"),
        (["--beta", "-40"], "beta must be zero or more; got -40.0"),
        (["--beta", "nan"], "beta must be a finite number; got nan"),
        (["--width", "20"], "width must be a whole number of at least 32; got 20"),
        (["--no_such_option"], "unrecognized arguments: --no_such_option"),
    ],
)
def test_bad_options_print_one_line_and_exit_2(workspace, capsys, extra, message, cli_args):
    expect_error(capsys, cli_args() + extra, message)
    assert not (workspace / "out").exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.unlink(), "image not found"),
        (lambda p: p.write_text("I am a text file, not a JPEG\n"), "not a readable image"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: (p.unlink(), os.mkfifo(p)), "is not a regular file (a device, FIFO or socket), not an image"),
        (lambda p: (p.unlink(), p.mkdir()), "content.png holds no image"),  # a folder: its images, of which none
        (
            lambda p: Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(p, format="PNG"),
            "image is 16x16 pixels; nst_tf takes images of at least 32x32 (VGG-19's five poolings need that",
        ),
    ],
)
def test_bad_images_print_one_line_and_exit_2(workspace, capsys, make, message, cli_args):
    make(workspace / "content.png")
    expect_error(capsys, cli_args(), message)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_other_image_modes_are_accepted(workspace, mode, cli_args):
    with Image.open(workspace / "content.png") as image:
        converted = image.convert("L").convert("I;16") if mode == "I;16" else image.convert(mode)
        converted.save(workspace / "content.png")
    assert main(cli_args(epochs=1)) == 0


def test_missing_weights_say_in_one_line_what_to_run(workspace, capsys, cli_args):
    argv = cli_args() + ["--model", str(workspace / "nowhere" / "imagenet-vgg-verydeep-19.mat")]
    expect_error(capsys, argv, "file not found; download imagenet-vgg-verydeep-19.mat")


def test_missing_weights_message_names_the_download_command(workspace, capsys, cli_args):
    argv = cli_args() + ["--model", str(workspace / "missing.mat")]
    expect_error(capsys, argv, "python -m nst_tf.download")


def test_unwritable_output_folder_is_reported_before_any_work(workspace, capsys, monkeypatch, cli_args):
    (workspace / "a_file").write_text("not a folder")
    monkeypatch.setattr("nst_tf.tensors.vgg19_module.VGG19", lambda *a, **k: pytest.fail("work started"))
    argv = cli_args() + ["--output_dir", str(workspace / "a_file" / "out")]
    expect_error(capsys, argv, "--output_dir: cannot write to")


def test_input_images_are_never_overwritten(workspace, capsys, cli_args):
    os.replace(workspace / "content.png", workspace / "0.png")
    before = (workspace / "0.png").read_bytes()
    argv = cli_args() + ["--content_image_filename", str(workspace / "0.png"), "--output_dir", str(workspace)]
    expect_error(capsys, argv, "0.png is the run's input")
    assert (workspace / "0.png").read_bytes() == before


def test_the_weights_file_named_as_a_report_is_never_overwritten(workspace, capsys, cli_args, new_weights_file):
    out = workspace / "out"
    out.mkdir()
    weights = out / "0.png"
    shutil.copy(new_weights_file, weights)
    original = pathlib.Path(new_weights_file).read_bytes()
    argv = cli_args() + ["--model", str(weights)]
    expect_error(capsys, argv, "0.png is the run's input")
    assert weights.read_bytes() == original


def test_ctrl_c_saves_the_latest_image_and_exits_130(workspace, capsys, monkeypatch, cli_args):
    real_run = StyleTransfer.run

    def interrupted_run(self, ticks=False):
        for progress in real_run(self, ticks):
            yield progress
            raise KeyboardInterrupt

    monkeypatch.setattr(StyleTransfer, "run", interrupted_run)
    assert main(cli_args(epochs=50)) == 130
    assert (workspace / "out" / "generated_image.jpg").exists()
    assert "interrupted after 1 of 50 iterations; saved" in capsys.readouterr().err


def test_non_finite_cost_stops_with_a_message_and_keeps_the_last_finite_image(workspace, capsys, cli_args):
    assert main(cli_args("--alpha", "1e38", "--beta", "1e38")) == 1
    err = capsys.readouterr().err
    assert "total cost became NaN or infinite at iteration 0" in err and "Traceback" not in err
    assert (workspace / "out" / "generated_image.jpg").exists()


def test_help_lists_the_course_options(capsys):
    assert main(["-h"]) == 0
    out = capsys.readouterr().out
    for option in (
        "--content_image_filename",
        "--style_image_filename",
        "--epochs",
        "--print_every",
        "--learning_rate",
        "--alpha",
        "--beta",
        "--model",
        "--output_dir",
        "--seed",
        "--width",
        "--height",
    ):
        assert option in out


def test_option_defaults_come_from_the_config_dataclass():
    args = build_parser().parse_args([])
    config = StyleTransferConfig()
    for name in ("epochs", "print_every", "learning_rate", "alpha", "beta", "seed", "noise_ratio"):
        assert getattr(args, name) == getattr(config, name), name
    assert (args.width, args.height, args.max_size) == (400, 300, None)
    assert args.model == "pretrained-model/imagenet-vgg-verydeep-19.mat" and args.output_dir == "output/"


def test_console_script_is_declared():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    # nst_tf.__main__.run: signal handlers first, then nst_tf.app.cli.main.
    assert {(s.name, s.value) for s in scripts if s.name == "nst-tf"} == {("nst-tf", "nst_tf.__main__:run")}


def test_python_dash_m_runs_the_job(workspace, cli_args):
    result = subprocess.run(
        [sys.executable, "-m", "nst_tf", *cli_args("--seed", "0", epochs=3)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Iteration 0 :" in result.stdout and "Iteration 2 :" in result.stdout
    assert sorted(os.listdir(workspace / "out")) == ["0.png", "2.png", "generated_image.jpg"]
    # TensorFlow's start-up log lines are kept off the terminal: only the progress bar is there.
    where, *bar = result.stderr.splitlines()
    assert re.fullmatch(r"nst-tf: running on CPU \(.+, \d+ cores?\) in float32", where), result.stderr
    assert bar and all(line.startswith("[") for line in bar), result.stderr
    # The last line of standard output sums the run up: iterations, time, the last iteration's costs, the file.
    summary = result.stdout.splitlines()[-1]
    assert re.fullmatch(
        r"done: 3 iterations in [0-9.]+ s; last costs: content \S+, style \S+, total \S+; saved \S+", summary
    )
    assert summary.endswith(f"saved {workspace / 'out' / 'generated_image.jpg'}") or summary.endswith(
        "generated_image.jpg"
    )
    bad = subprocess.run([sys.executable, "-m", "nst_tf", "--epochs", "0"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "nst-tf: error: epochs must be a positive whole number" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_cli_runs_every_extra_option_together(workspace, cli_args):
    argv = cli_args(
        "--style_image_filename",
        str(workspace / "style.png"),
        str(workspace / "style2.png"),
        "--style_blend_weights",
        "0.7",
        "0.3",
        "--max_size",
        "64",
        "--tv_weight",
        "0.5",
        "--tv_form",
        "power",
        "--optimizer",
        "lbfgs",
        "--lbfgs_history",
        "4",
        "--preserve_colors",
        "luminance",
        "--content_layer",
        "conv3_1",
        "--style_layers",
        "conv1_1:0.5,conv2_1:0.5",
        "--precision",
        "bf16",
        "--seed",
        "0",
        epochs=3,
    )  # fmt: skip  (option and value on one line)
    assert main(argv) == 0
    with Image.open(workspace / "out" / "generated_image.jpg") as image:
        assert image.size == (64, 48)  # 80x60 content, longer side 64


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--style_layers", "conv1_1=0.5"], "argument --style_layers: expected NAME:WEIGHT pairs"),
        (["--style_layers", "conv1_9:1"], "style layer 'conv1_9' is not a VGG-19 layer"),
        (["--content_layer", "fc7"], "content_layer 'fc7' is not a VGG-19 layer"),
        (["--style_blend_weights", "1", "2"], "style_blend_weights has 2 weights for 1 style images"),
        (["--tv_form", "cubic"], "argument --tv_form: invalid choice: 'cubic'"),
        (["--tv_weight", "-1"], "tv_weight must be zero or more"),
        (["--max_size", "10"], "max_size must be a whole number of at least 32; got 10"),
        (["--optimizer", "sgd"], "argument --optimizer: invalid choice: 'sgd'"),
    ],
)
def test_cli_rejects_bad_extra_options(workspace, capsys, extra, message, cli_args):
    expect_error(capsys, cli_args(*extra), message)
    assert not (workspace / "out").exists()


# What the hostile-user review found ---------------------------------------------------------------


def test_an_output_name_taken_by_a_folder_is_refused_before_any_work(workspace, capsys, monkeypatch, cli_args):
    monkeypatch.setattr("nst_tf.tensors.vgg19_module.VGG19", lambda *a, **k: pytest.fail("work started"))
    for taken in ("2.png", "generated_image.jpg"):
        (workspace / "out" / taken).mkdir(parents=True)
        expect_error(capsys, cli_args(), f"{taken} is a folder; this run would save an image under that name")
        (workspace / "out" / taken).rmdir()


def test_an_aspect_ratio_the_image_cannot_give_is_refused(workspace, capsys, cli_args):
    expect_error(capsys, cli_args("--width", "100000"), "cannot be cropped to 100000x48")


def test_an_input_reached_through_another_name_is_never_overwritten(workspace, capsys, cli_args):
    # A hard link is another view of the same file, as a bind mount or a
    # case-insensitive file system gives; paths differ, the file is one.
    (workspace / "out").mkdir()
    os.link(workspace / "content.png", workspace / "out" / "4.png")
    before = (workspace / "content.png").read_bytes()
    expect_error(capsys, cli_args(), "4.png is the run's input")
    assert (workspace / "content.png").read_bytes() == before


@pytest.mark.parametrize("bad", [["--epochs", "0"], ["--style_image_filename", "nowhere.png"]])
def test_bad_input_creates_nothing(workspace, capsys, cli_args, bad):
    expect_error(capsys, cli_args(*bad), "")
    assert not (workspace / "out").exists()


def test_a_rerun_into_a_used_folder_says_so(workspace, capsys, cli_args):
    (workspace / "out").mkdir()
    (workspace / "out" / "180.png").write_bytes(b"an earlier run's image")
    assert main(cli_args(epochs=1)) == 0
    err = capsys.readouterr().err
    assert "already holds 1 numbered images" in err
    assert (workspace / "out" / "180.png").read_bytes() == b"an earlier run's image"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--width", "100000", "--height", "100000"], "a run at 100000x100000 needs about"),
        (["--max_size", "100000"], "a run at 100000x75000 needs about"),
        (["--optimizer", "lbfgs", "--lbfgs_history", "1000000"], "with an L-BFGS history of 1000000 needs about"),
    ],
)
def test_runs_that_cannot_fit_in_memory_are_refused_with_the_estimate(workspace, capsys, cli_args, extra, message):
    expect_error(capsys, cli_args(*extra), message)
    assert not (workspace / "out").exists()


def test_start_up_does_not_grow_with_the_number_of_iterations(workspace, monkeypatch, cli_args):
    import tracemalloc

    def one_step_then_interrupt(self, ticks=False):
        self.step(1)
        raise KeyboardInterrupt
        yield  # a generator, as run() is

    monkeypatch.setattr(StyleTransfer, "run", one_step_then_interrupt)
    tracemalloc.start()
    try:
        assert main(cli_args(epochs=10**9, print_every=1)) == 130
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Listing one name per report up front took gigabytes at this count.
    assert peak < 64 * 2**20, peak


def test_an_interrupt_right_after_a_due_report_still_saves_its_image(workspace, capsys, monkeypatch, cli_args):
    def three_steps_then_interrupt(self, ticks=False):
        self.step(3)  # iterations 0, 1, 2: 0 and 2 are due, neither reported yet
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(StyleTransfer, "run", three_steps_then_interrupt)
    assert main(cli_args(epochs=50)) == 130
    assert (workspace / "out" / "2.png").exists()
    assert "interrupted after 3 of 50 iterations" in capsys.readouterr().err


def test_a_second_interrupt_during_the_final_save_is_ignored(workspace, capsys, monkeypatch, cli_args):
    import signal

    from nst_tf.tensors import images

    real_save = images.save_image

    def save_with_interrupt(path, image, *normalization, **options):
        if str(path).endswith("generated_image.jpg"):
            os.kill(os.getpid(), signal.SIGINT)
        real_save(path, image, *normalization, **options)

    def one_step_then_interrupt(self, ticks=False):
        self.step(1)
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(images, "save_image", save_with_interrupt)
    monkeypatch.setattr(StyleTransfer, "run", one_step_then_interrupt)
    assert main(cli_args(epochs=50)) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "saved" in err.splitlines()[-1]
    with Image.open(workspace / "out" / "generated_image.jpg") as image:
        assert image.size == (64, 48)


def test_a_failed_final_save_names_the_path_and_keeps_the_image_elsewhere(workspace, capsys, monkeypatch, cli_args):
    import errno

    from nst_tf.tensors import images

    real_save = images.save_image
    monkeypatch.setenv("TMPDIR", str(workspace / "rescue"))
    (workspace / "rescue").mkdir()
    monkeypatch.setattr("tempfile.tempdir", None)

    def full_disk(path, image, *normalization, **options):
        if str(path).startswith(str(workspace / "out")):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, image, *normalization, **options)

    monkeypatch.setattr(images, "save_image", full_disk)
    assert main(cli_args(epochs=1)) == 3
    err = capsys.readouterr().err.strip().splitlines()
    failed = [line for line in err if "generated_image.jpg" in line]
    assert len(failed) == 1 and "No space left on device" in failed[0], err
    rescued = failed[0].split(" instead")[0].split("saved to ")[1]
    assert os.path.dirname(rescued) == str(workspace / "rescue") and os.path.getsize(rescued) > 0


def test_a_rescue_that_fails_too_leaves_no_empty_files(workspace, capsys, monkeypatch, cli_args):
    from nst_tf.tensors import images

    for folder in ("rescue", "home"):
        (workspace / folder).mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(workspace / "rescue"))
    monkeypatch.setenv("HOME", str(workspace / "home"))

    def full_everywhere(path, image, *normalization, **options):
        raise images.ImageError(f"{path}: cannot be saved: No space left on device")

    monkeypatch.setattr(images, "save_image", full_everywhere)
    assert main(cli_args(epochs=1)) == 3
    assert "no other place could take it" in capsys.readouterr().err
    # mkstemp's placeholders were removed when the rescue failed.
    assert os.listdir(workspace / "rescue") == [] and os.listdir(workspace / "home") == []


def test_progress_eta_leaves_out_the_first_iteration_which_traces(monkeypatch):
    import io

    from nst_tf.app.jobs import drive

    clock = iter([0.0, 100.0, 101.0])
    monkeypatch.setattr(drive.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    bar = drive.ProgressLine(11, stream)
    bar.update(1)  # after tracing: 100 s for one iteration
    bar.update(2)  # one more iteration in 1 s: 9 left, 9 s
    first, second = stream.getvalue().splitlines()
    assert first.endswith("ETA ?") and second.endswith("ETA 0:00:09")


def test_a_seeded_run_leaves_op_determinism_as_it_found_it(cli_args):
    from tensorflow.python.framework import config as tf_config

    assert not tf_config.is_op_determinism_enabled()
    assert main(cli_args("--seed", "3", epochs=1)) == 0
    assert not tf_config.is_op_determinism_enabled()


def test_an_image_scaled_down_a_lot_is_noted_in_one_line(workspace, capsys, cli_args):
    big = np.random.default_rng(0).integers(0, 256, (750, 1000, 3), dtype=np.uint8)
    Image.fromarray(big).save(workspace / "big.jpg")
    assert main(cli_args("--content_image_filename", str(workspace / "big.jpg"), epochs=1)) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "scaled down" in line]
    assert notes == [f"nst-tf: note: {workspace / 'big.jpg'} is 1000x750; it is scaled down 16x to 64x48"]


@pytest.mark.parametrize("make", [os.mkfifo, lambda path: os.symlink(path + ".gone", path)])
def test_a_weights_path_that_is_no_file_is_refused_before_anything_is_created(workspace, capsys, cli_args, make):
    path = str(workspace / "weights.mat")
    make(path)
    expect_error(capsys, cli_args("--model", path), "weights.mat")
    assert not (workspace / "out").exists()


# Absurd numbers and links: the second hostile sweep ----------------------------------------------------

NINES = "9" * 400


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--epochs", NINES], "argument --epochs: must be at most 2147483647; got 99999999999999999999...99999999"),
        (["--epochs", "2147483648"], "argument --epochs: must be at most 2147483647; got 2147483648"),
        (["--epochs", "9" * 5000], "argument --epochs: invalid int value"),
        (["--print_every", NINES], "argument --print_every: must be at most 2147483647"),
        (["--width", NINES], "argument --width: must be at most 2147483647"),
        (["--height", "100000000000000000000"], "argument --height: must be at most 2147483647"),
        (["--max_size", NINES], "argument --max_size: must be at most 2147483647"),
        (["--width", "2147483647"], "a run at 2147483647x48 needs about"),
        (["--max_size", "2147483647"], "a run at 2147483647x1610612735 needs about"),
        (["--lbfgs_history", NINES], "argument --lbfgs_history: must be at most 2147483647"),
        (["--optimizer", "lbfgs", "--lbfgs_history", "2147483647"], "with an L-BFGS history of 2147483647 needs"),
        (["--learning_rate", "1e400"], "learning_rate must be a finite number; got inf"),
        (["--learning_rate", NINES], "learning_rate must be a finite number; got inf"),
        (["--learning_rate", "-inf"], "learning_rate must be a finite number; got -inf"),
        (["--alpha", "inf"], "alpha must be a finite number; got inf"),
        (["--alpha", "-nan"], "alpha must be a finite number; got nan"),
        (["--beta", "-inf"], "beta must be a finite number; got -inf"),
        (["--beta", "-1e5"], "beta must be zero or more; got -100000.0"),
        (["--adam_epsilon", "1e400"], "adam_epsilon must be a finite number; got inf"),
        (["--noise_ratio", "nan"], "noise_ratio must be a finite number; got nan"),
        (["--tv_weight", "1e400"], "tv_weight must be a finite number; got inf"),
        (["--seed", "-1"], "seed must be a non-negative whole number; got -1"),
        (["--seed", "1e3"], "argument --seed: invalid int value: '1e3'"),
        (["--style_layers", "conv1_1:1e400"], "weight of style layer conv1_1 must be a finite number; got inf"),
        (["--style_blend_weights", "-inf"], "style blend weight must be a finite number; got -inf"),
        (["--style_blend_weights", "nan"], "style blend weight must be a finite number; got nan"),
    ],
)
def test_absurd_numbers_are_refused_in_one_line_before_anything_is_created(workspace, capsys, cli_args, extra, message):
    expect_error(capsys, cli_args(*extra), message)
    assert not (workspace / "out").exists()


def test_style_blend_weights_whose_sum_overflows_are_refused(workspace, capsys, cli_args):
    # 1e308 + 1e308 is inf, and each weight divided by it 0: the style would silently vanish.
    argv = cli_args("--style_image_filename", str(workspace / "style.png"), str(workspace / "style2.png"))
    expect_error(capsys, argv + ["--style_blend_weights", "1e308", "1e308"], "style_blend_weights: their sum is too")
    assert not (workspace / "out").exists()


def test_the_largest_numbers_taken_are_validated_without_overflow(monkeypatch, cli_args):
    seen = []
    recorded = [dataclasses.replace(kind, run=lambda job, *rest: seen.append(job) or 0) for kind in kinds.JOB_KINDS]
    monkeypatch.setattr(kinds, "JOB_KINDS", tuple(recorded))
    argv = cli_args("--print_every", "2147483647", "--seed", NINES, "--alpha", "3.4028235e38", epochs=2147483647)
    assert main(argv) == 0
    config = seen[0].config
    # float32's largest, as NumPy prints it (a little above it in float64, and rounded down to it).
    assert (config.epochs, config.print_every, config.seed) == (2**31 - 1, 2**31 - 1, int(NINES))
    assert config.alpha == 3.4028235e38


@pytest.mark.parametrize("name", ["alpha", "beta", "tv_weight", "learning_rate", "adam_epsilon"])
@pytest.mark.parametrize("value", [1e39, 1e308, 10**400, -(10**400)])
def test_numbers_float32_cannot_hold_are_refused_before_they_become_infinite_costs(name, value):
    # Taken before, they made the first step's cost infinite: an error after the network had loaded.
    with pytest.raises(NSTError, match=rf"^{name} must lie within float32's range \(magnitudes up to about 3.4e\+38\)"):
        StyleTransferConfig(**{name: value})


def test_a_positive_number_float32_rounds_to_zero_is_refused():
    with pytest.raises(NSTError, match="learning_rate must be positive; got 1e-46"):
        StyleTransferConfig(learning_rate=1e-46)


def test_a_huge_seed_seeds_a_run(workspace, cli_args):
    assert main(cli_args("--seed", NINES, epochs=1)) == 0
    assert (workspace / "out" / "generated_image.jpg").exists()


def _link_to_a_file_elsewhere(path, name):
    """A relative link at ``path`` to a new file ``name`` in the folder above its folder."""
    (path.parent.parent / name).write_bytes(b"kept")
    os.symlink(os.path.join("..", name), path)


@pytest.mark.parametrize("name", ["generated_image.jpg", "0.png", "4.png"])
@pytest.mark.parametrize(
    "make",
    [
        lambda path: os.symlink(path.parent / "gone.jpg", path),
        lambda path: os.symlink(path, path),
        lambda path: _link_to_a_file_elsewhere(path, "kept.jpg"),
    ],
    ids=["dangling", "self-looping", "to-a-file-elsewhere"],
)
def test_an_output_name_held_by_a_link_is_refused_before_any_work(workspace, capsys, monkeypatch, cli_args, name, make):
    # Dangling and looping links gave FileNotFoundError and ELOOP tracebacks; a run never writes through a link.
    monkeypatch.setattr("nst_tf.tensors.vgg19_module.VGG19", lambda *a, **k: pytest.fail("work started"))
    (workspace / "out").mkdir()
    make(workspace / "out" / name)
    expect_error(capsys, cli_args(), f"{workspace / 'out' / name} is a symbolic link; this run would save an image")
    assert os.listdir(workspace / "out") == [name]
    assert not (workspace / "gone.jpg").exists()
    assert not (workspace / "kept.jpg").exists() or (workspace / "kept.jpg").read_bytes() == b"kept"


def test_a_link_planted_after_the_start_check_is_not_written_through(workspace, cli_args, capsys, monkeypatch):
    from nst_tf.app.jobs.outputs import Outputs

    check = Outputs.check

    def check_then_plant(outputs, inputs):
        check(outputs, inputs)
        (workspace / "out").mkdir(exist_ok=True)
        _link_to_a_file_elsewhere(workspace / "out" / "generated_image.jpg", "victim.jpg")

    monkeypatch.setattr(Outputs, "check", check_then_plant)
    monkeypatch.setattr("tempfile.tempdir", str(workspace))
    assert main(cli_args(epochs=1)) == 3  # an image could not be saved where asked
    assert (workspace / "victim.jpg").read_bytes() == b"kept"
    assert os.path.islink(workspace / "out" / "generated_image.jpg")
    err = capsys.readouterr().err
    assert "generated_image.jpg: is a symbolic link, and images are not written through links here" in err, err
    assert [p.name for p in workspace.glob("nst_tf-*-generated_image-*.jpg")] != []  # rescued


def test_links_under_names_this_run_does_not_save_are_left_alone(workspace, cli_args):
    (workspace / "out").mkdir()
    # Iteration 1 is not reported; "00.png" is no iteration's name ("0.png" is); one scale saves no scale image.
    names = ("1.png", "00.png", "scale1.png", "notes.txt")
    for name in names:
        os.symlink(workspace / "gone.png", workspace / "out" / name)
    assert main(cli_args(epochs=1)) == 0
    assert all(os.path.islink(workspace / "out" / name) for name in names)


def test_an_output_folder_that_cannot_be_listed_is_refused_in_one_line(workspace, capsys, monkeypatch, cli_args):
    import errno

    (workspace / "out").mkdir()
    scandir = os.scandir

    def unreadable(path="."):  # a folder of mode 0o300: root would list it anyway
        if os.fspath(path) == str(workspace / "out"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", unreadable)
    expect_error(capsys, cli_args(), f"--output_dir: cannot read {workspace / 'out'}: Permission denied")


def test_a_weights_file_that_cannot_be_read_is_one_line(workspace, capsys, cli_args):
    # /proc/self/mem is a regular file whose first bytes cannot be read (EIO).
    expect_error(capsys, cli_args("--model", "/proc/self/mem"), "cannot be read")
    assert not (workspace / "out").exists()


def test_one_save_at_a_time_the_watchers_waits_for_the_main_threads(tmp_path, monkeypatch):
    # The watcher's final save began while the main thread was writing a report image; the process
    # then ended with that image half written. The saver lets one save finish before the next.
    import threading
    import time

    from nst_tf.tensors import images
    from nst_tf.app.jobs.outputs import Saver

    real_save, events = images.save_image, []

    def slow_save(path, image, *args, **options):
        events.append(("start", os.path.basename(path)))
        time.sleep(0.3)
        real_save(path, image, *args, **options)
        events.append(("end", os.path.basename(path)))

    monkeypatch.setattr(images, "save_image", slow_save)
    saver = Saver(str(tmp_path), "means", sys.stderr)
    image = np.zeros((1, 32, 32, 3), np.float32)
    first = threading.Thread(target=saver.save, args=("0.png", image))
    first.start()
    time.sleep(0.05)
    assert saver.save("generated_image.jpg", image)
    first.join()
    assert events == [
        ("start", "0.png"),
        ("end", "0.png"),
        ("start", "generated_image.jpg"),
        ("end", "generated_image.jpg"),
    ]

"""``python -m nst_tf``: in-process through ``main(argv)``, and one real subprocess."""

import importlib.metadata
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nst_tf import StyleTransfer, StyleTransferConfig
from nst_tf.cli import build_parser, main


def test_main_writes_the_course_files_and_prints_the_course_lines(workspace, capsys, cli_args):
    assert main(cli_args("--seed", "1")) == 0
    assert sorted(os.listdir(workspace / "out")) == ["0.png", "2.png", "4.png", "generated_image.jpg"]
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[:4][0] == "Iteration 0 :"
    assert lines[1].startswith("total cost = ") and lines[2].startswith("content cost = ")
    assert lines[3].startswith("style cost = ")
    assert [line for line in lines if line.startswith("Iteration")] == ["Iteration 0 :", "Iteration 2 :", "Iteration 4 :"]
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
        (lambda p: Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(p, format="PNG"),
         "image is 16x16 pixels; VGG-19's five poolings need at least 32x32"),
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
    monkeypatch.setattr("nst_tf.vgg.load_vgg_model", lambda *a, **k: pytest.fail("work started"))
    argv = cli_args() + ["--output_dir", str(workspace / "a_file" / "out")]
    expect_error(capsys, argv, "--output_dir: cannot write to")


def test_input_images_are_never_overwritten(workspace, capsys, cli_args):
    os.replace(workspace / "content.png", workspace / "0.png")
    before = (workspace / "0.png").read_bytes()
    argv = cli_args() + ["--content_image_filename", str(workspace / "0.png"), "--output_dir", str(workspace)]
    expect_error(capsys, argv, "0.png' is the input image")
    assert (workspace / "0.png").read_bytes() == before


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
    for option in ("--content_image_filename", "--style_image_filename", "--epochs", "--print_every",
                   "--learning_rate", "--alpha", "--beta", "--model", "--output_dir", "--seed", "--width", "--height"):
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
    assert {(s.name, s.value) for s in scripts if s.name == "nst-tf"} == {("nst-tf", "nst_tf.cli:main")}


def test_python_dash_m_runs_the_job(workspace, cli_args):
    result = subprocess.run(
        [sys.executable, "-m", "nst_tf", *cli_args("--seed", "0", epochs=3)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Iteration 0 :" in result.stdout and "Iteration 2 :" in result.stdout
    assert sorted(os.listdir(workspace / "out")) == ["0.png", "2.png", "generated_image.jpg"]
    bad = subprocess.run([sys.executable, "-m", "nst_tf", "--epochs", "0"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "nst-tf: error: epochs must be a positive whole number" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_cli_runs_every_extra_option_together(workspace, cli_args):
    argv = cli_args(
        "--style_image_filename", str(workspace / "style.png"), str(workspace / "style2.png"),
        "--style_blend_weights", "0.7", "0.3", "--max_size", "64", "--tv_weight", "0.5", "--tv_form", "power",
        "--optimizer", "lbfgs", "--lbfgs_history", "4", "--preserve_colors", "luminance",
        "--content_layer", "conv3_1", "--style_layers", "conv1_1:0.5,conv2_1:0.5", "--precision", "bf16",
        "--seed", "0", epochs=3,
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

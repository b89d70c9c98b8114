"""The command as users of other tools type it: short names, -o, either spelling, suggestions, the summary line,
where it runs."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from nst_tf import download
from nst_tf.download import command as download_command
from nst_tf.app import cli
from nst_tf.app.cli import main
from nst_tf.tensors import precision


def _short(workspace, weights, *extra, epochs=4):
    return [
        "-c", str(workspace / "content.png"), "-s", str(workspace / "style.png"), "--model", str(weights),
        "--width", "64", "--height", "48", "-n", str(epochs), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "short, long",
    [
        (["-c", "a.jpg", "b.jpg"], ["--content_image_filename", "a.jpg", "b.jpg"]),
        (["--content", "a.jpg"], ["--content_image_filename", "a.jpg"]),
        (["-s", "x.jpg", "y.jpg"], ["--style_image_filename", "x.jpg", "y.jpg"]),
        (["--style=x.jpg"], ["--style_image_filename", "x.jpg"]),
        (["-n", "7"], ["--epochs", "7"]),
        (["-n7"], ["--epochs", "7"]),
        (["--iterations", "7"], ["--epochs", "7"]),
        (["--print-every", "3", "--max-size=90"], ["--print_every", "3", "--max_size", "90"]),
        (
            ["--output-dir", "o/", "--style-blend-weights", "1", "2"],
            ["--output_dir", "o/", "--style_blend_weights", "1", "2"],
        ),
        (["-n", "3", "--alpha", "-inf"], ["--epochs", "3", "--alpha", "-inf"]),  # -nan too: test_cli's absurd numbers
    ],
)
def test_short_names_and_dashed_spellings_mean_the_course_options(short, long):
    parser = cli.build_parser()
    assert vars(parser.parse_args(short)) == vars(parser.parse_args(long))
    assert cli.given_options(parser, short) == cli.given_options(parser, long)


@pytest.mark.parametrize(
    "argv, suggestion",
    [
        (["--epoch", "3"], "--epochs"),
        (["--iteration", "3"], "--iterations"),
        (["--styel_image_filename", "a.jpg"], "--style_image_filename"),
        (["--out-dir", "x"], "--output_dir"),
        (["--learningrate", "1"], "--learning_rate"),
    ],
)
def test_an_unknown_option_gets_the_closest_one_in_its_line(argv, suggestion, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(f"(did you mean {suggestion}?)\n"), err


def test_an_option_far_from_every_name_gets_no_suggestion(capsys):
    assert main(["--zzzzzzzz"]) == 2
    assert capsys.readouterr().err == "nst-tf: error: unrecognized arguments: --zzzzzzzz\n"


def test_the_downloader_takes_either_spelling_and_suggests(tmp_path, capsys):
    parser = download_command.build_parser()
    assert parser.parse_args(["--max_size", "1M"]).max_size == parser.parse_args(["--max-size", "1M"]).max_size
    assert download.main(["--wieghts", "keras"]) == 2
    assert capsys.readouterr().err.rstrip().endswith("(did you mean --weights?)")


def test_help_starts_with_examples_and_says_what_the_last_line_holds(capsys):
    assert main(["-h"]) == 0
    text = capsys.readouterr().out
    assert text.index("examples:") < text.index("options:")
    assert "nst-tf -c photo.jpg -s painting.jpg -o result.jpg" in text
    assert "last iteration's costs by term and their total" in " ".join(text.split())


def test_o_names_the_result_file_and_report_images_need_output_dir(workspace, new_weights_file, capsys, monkeypatch):
    monkeypatch.chdir(workspace)
    assert main(_short(workspace, new_weights_file, "-o", "styled/result.png")) == 0
    assert sorted(os.listdir(workspace / "styled")) == ["result.png"]  # no numbered images, no output/
    assert not (workspace / "output").exists()
    with Image.open(workspace / "styled" / "result.png") as image:
        assert image.format == "PNG" and image.size == (64, 48)
    assert capsys.readouterr().out.splitlines()[-1].endswith("; saved styled/result.png")
    # With --output_dir as well, the numbered images go there and the result where -o says.
    assert (
        main(_short(workspace, new_weights_file, "-o", "result.jpg", "--output_dir", "reports", "--print_every", "2"))
        == 0
    )
    assert sorted(os.listdir(workspace / "reports")) == ["0.png", "2.png"]
    assert (workspace / "result.jpg").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-o", "result.txt"], "-o: result.txt has no image extension nst_tf writes"),
        (["-o", "content.png"], "is the run's input"),
        (["-o", "x/", "--output_dir", "y"], "-o x/ and --output_dir y name two folders; give one"),
        (["-o", "results.jpg"], "-o results.jpg names a file, but several content images give several results"),
        (["-o", "result.mp4"], "-o: result.mp4: an .mp4 is written for a video content; name an image"),
        (["--model", "mymodel.mat"], "--model: mymodel.mat: file not found; check the path, or fetch the preset's"),
    ],
)
def test_a_wrong_output_or_model_is_refused_in_one_line_before_anything_is_created(
    workspace, new_weights_file, capsys, monkeypatch, extra, message
):
    monkeypatch.chdir(workspace)
    before = sorted(os.listdir(workspace))
    argv = _short(workspace, new_weights_file, *extra)
    if extra[1] in ("x/", "results.jpg"):
        argv[1:2] = [str(workspace / "content.png"), str(workspace / "content.png")]  # two images: -o is a folder
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert sorted(os.listdir(workspace)) == before


def test_the_summary_line_gives_the_last_iterations_costs_though_it_is_not_printed(workspace, new_weights_file, capsys):
    argv = _short(workspace, new_weights_file, "--output_dir", str(workspace / "out"), "--print_every", "4", epochs=6)
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("Iteration")] == ["Iteration 0 :", "Iteration 4 :"]
    match = re.fullmatch(
        r"done: 6 iterations in [0-9.]+ s; last costs: content (\S+), style (\S+), total (\S+); saved (.+)", lines[-1]
    )
    assert match, lines[-1]
    content, style, total = map(float, match.groups()[:3])
    assert total == pytest.approx(
        10 * content + 40 * style, rel=1e-5
    )  # the course's J = alpha J_content + beta J_style
    printed = float(lines[lines.index("Iteration 4 :") + 1].split("= ")[1])
    assert total != printed  # the last iteration's, not iteration 4's
    assert match.group(4) == str(workspace / "out" / "generated_image.jpg")


def test_the_command_says_where_it_runs_on_standard_error(workspace, new_weights_file, capsys):
    assert main(_short(workspace, new_weights_file, "-o", str(workspace / "r.jpg"), epochs=1)) == 0
    err = capsys.readouterr().err
    assert re.search(r"^nst-tf: running on CPU \(.+, \d+ cores?\) in float32$", err, re.MULTILINE), err


def test_the_device_line_names_the_gpu_or_the_cpu_and_the_install_a_driver_without_cuda_needs(tmp_path, monkeypatch):
    assert precision.device_line("float32", gpus=["NVIDIA H100 80GB HBM3"]) == "GPU (NVIDIA H100 80GB HBM3) in float32"
    assert precision.device_line("bf16", gpus=["A", "B"]) == "GPU (A, the first of 2) in bf16"
    monkeypatch.setattr(precision, "_NVIDIA_DRIVER_FILES", (str(tmp_path / "none"),))
    plain = precision.device_line("float32", gpus=[])
    assert plain.startswith("CPU (") and "pip install" not in plain
    (tmp_path / "version").write_text("NVRM version: 550\n")
    monkeypatch.setattr(precision, "_NVIDIA_DRIVER_FILES", (str(tmp_path / "version"),))
    assert precision.device_line("float32", gpus=[]).endswith('sees no GPU: pip install "tensorflow[and-cuda]"')


def test_a_damaged_image_in_a_folder_names_on_error_skip(workspace, new_weights_file, capsys):
    folder = workspace / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes((workspace / "content.png").read_bytes())
    (folder / "b.png").write_bytes((workspace / "content.png").read_bytes()[:100])
    argv = _short(workspace, new_weights_file, "--output_dir", str(workspace / "out"))
    argv[1] = str(folder)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith("; --on_error skip leaves it out and does the others"), err


def test_the_video_result_is_the_mp4_o_names(workspace, new_weights_file, capsys, monkeypatch):
    from nst_tf.plan.clip import encode

    monkeypatch.chdir(workspace)
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(2)]
    encode(str(workspace / "clip.mp4"), frames, (64, 48), 2.0)
    argv = _short(workspace, new_weights_file, "-o", "styled.avi", epochs=1)
    argv[1] = "clip.mp4"
    assert main(argv) == 2
    assert "a video is written as an .mp4 file" in capsys.readouterr().err
    argv[argv.index("styled.avi")] = "styled.mp4"
    assert main([*argv, "--first_frame_epochs", "1"]) == 0
    assert (workspace / "styled.mp4").is_file() and sorted(os.listdir(workspace / "styled.frames"))


def test_a_missing_preset_image_says_where_to_put_it_or_how_to_name_another(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--preset", "cs231n_scream"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "images/the_scream.jpg" in err
    assert err.rstrip().endswith(
        "it is a preset's image: put it in images/ (CS231n's come with its assignment), or name yours with -s FILE"
    )
    assert main(["-s", "mine.jpg"]) == 2  # an image the user named: no such hint
    assert "preset's image" not in capsys.readouterr().err


def test_o_with_scales_says_the_earlier_scales_need_output_dir(workspace, new_weights_file, capsys, monkeypatch):
    monkeypatch.chdir(workspace)
    argv = _short(workspace, new_weights_file, "-o", "r.jpg", "--scales", "2", "--scale_epochs", "1", epochs=1)
    argv[argv.index("--width") : argv.index("--width") + 4] = ["--width", "128", "--height", "96"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "nst-tf: note: the earlier scales' results (scale1.png, ...) are saved with --output_dir only" in err
    assert (workspace / "r.jpg").is_file() and not (workspace / "scale1.png").exists()


def test_a_mistyped_image_name_gets_the_closest_file_beside_it(workspace, capsys, monkeypatch):
    monkeypatch.chdir(workspace)
    assert main(["-c", "contnt.png"]) == 2
    assert (
        capsys.readouterr()
        .err.rstrip()
        .endswith("image not found: contnt.png (looked as a path and under images/); did you mean content.png?")
    )
    assert main(["-c", "content.png", "-s", str(workspace / "styel.png")]) == 2
    assert capsys.readouterr().err.rstrip().endswith(f"did you mean {workspace / 'style.png'}?")
    assert main(["-c", "zebra.png"]) == 2
    assert "did you mean" not in capsys.readouterr().err

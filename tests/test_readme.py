"""The code of README.md and docs/ runs: every Python block as written, every command cheaply or with -h.

The pages are README.md, each docs/*.md and pretrained-model/README.md. Each block runs in an empty
folder holding small synthetic weights and images at the paths the pages name, as the repository
root holds the real ones; a command that appears on several pages runs once.
"""

import configparser
import contextlib
import io
import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from nst_tf import download
from nst_tf.app import cli, train_cli
from nst_tf.plan.clip import encode, probe
from nst_tf.plan.config import KERAS_VGG_MODEL
from nst_tf.plan.fast_model import FastModelDescription, TransformSpec
from nst_tf.plan.synthetic import write_vgg19_h5, write_vgg19_mat
from nst_tf.plan.weights.squeezenet_reader import write_squeezenet_weights
from nst_tf.runs.fast_export import export_fast_model
from nst_tf.runs.fast_models import new_fast_model, save_fast_model
from nst_tf.runs.presets import SQUEEZENET_MODEL

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "pretrained-model" / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SHELLS = ("bash", "sh", "console", "shell")

#: Appended to the command's runs: later options override earlier ones, so a run keeps what the page
#: gives and only gets smaller and shorter.
CHEAP = ("--width", "64", "--height", "48", "--epochs", "2", "--print_every", "1")
#: Options a page may give large values, brought down to these at most: sizes and iterations.
SIZES = {"--max_size": 64, "--shorter_side": 64, "--style_size": 64}
ITERATIONS = {"--scale_epochs": 2, "--first_frame_epochs": 2}
#: With ``--scales N`` the sizes are capped at this first scale (its shorter side 48, above the networks'
#: smallest input, for the 4:3 content image), doubled N - 1 times.
FIRST_SCALE = 64
#: Appended to the training command's runs: two steps of a tiny network on small crops.
TRAIN_CHEAP = ("--iterations", "2", "--image_size", "32", "--batch_size", "1", "--width", "0.125", "--blocks", "1")


def _name(page):
    return page.relative_to(ROOT).as_posix()


def blocks(languages):
    """(page, first line's number in it, text) of each fenced block in one of ``languages``."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            language, body = match.groups()
            if language in languages:
                line = text.count("\n", 0, match.start()) + 2
                found.append(pytest.param(page, line, body, id=f"{_name(page)}:{line}"))
    return found


def commands():
    """Each command of the shell blocks, split at ``&&``, as argument lists; each once, however many pages give it."""
    found = []
    for param in blocks(SHELLS):
        for line in param.values[2].splitlines():
            line = line.strip().removeprefix("$ ")
            if line and not line.startswith("#"):
                words = shlex.split(line)
                while "&&" in words:
                    cut = words.index("&&")
                    found.append(words[:cut])
                    words = words[cut + 1 :]
                found.append(words)
    unique = {shlex.join(words): words for words in found}
    return [pytest.param(words, id=key) for key, words in unique.items()]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Weights and images at the pages' paths, written once."""
    folder = tmp_path_factory.mktemp("assets")
    write_vgg19_mat(folder / "pretrained-model" / "imagenet-vgg-verydeep-19.mat", width_divisor=16)
    write_vgg19_h5(folder / KERAS_VGG_MODEL, width_divisor=16)
    rng = np.random.default_rng(0)
    (folder / "images").mkdir()
    rows, cols = np.mgrid[0:96, 0:128]
    content = np.stack([rows * 2, cols * 2, 255 - rows - cols], axis=-1) + rng.normal(0, 8, (96, 128, 3))
    content = np.clip(content, 0, 255).astype(np.uint8)
    iio.imwrite(folder / "images" / "content.jpg", content)
    # The recipes' video: three frames of the content image moving two pixels a frame.
    moving = [content[:64, 2 * i : 2 * i + 96] for i in range(3)]
    encode(str(folder / "my_video.mp4"), moving, (96, 64), 3.0)
    iio.imwrite(folder / "images" / "style.jpg", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    # The recipes' own photo, painting and folder of photos.
    iio.imwrite(folder / "my_photo.jpg", content[:, ::-1])
    iio.imwrite(folder / "my_painting.jpg", rng.integers(0, 256, (64, 48, 3), dtype=np.uint8))
    # Styles by region: masks of the content's left and right halves.
    halves = np.zeros((96, 128), np.uint8)
    halves[:, :64] = 255
    iio.imwrite(folder / "left.png", halves)
    iio.imwrite(folder / "right.png", 255 - halves)
    (folder / "photos").mkdir()
    iio.imwrite(folder / "photos" / "a.jpg", content)
    iio.imwrite(folder / "photos" / "b.png", content[::-1])
    # The fast models the pages stylize with (fresh weights: stylizing takes any), of one style (exported, as
    # the training leaves it) and of two.
    for name, styles in (("model", ("style.jpg",)), ("two", ("style.jpg", "my_painting.jpg"))):
        fast = new_fast_model(FastModelDescription(TransformSpec(width=0.125, blocks=1, styles=len(styles)), styles))
        save_fast_model(folder / name, fast)
        if name == "model":
            export_fast_model(fast, folder / name)
    # CS231n's edition: SqueezeNet's weights and the assignment's image names (users place their own).
    write_squeezenet_weights(folder / SQUEEZENET_MODEL)
    for name in ("tubingen.jpg", "composition_vii.jpg", "the_scream.jpg", "starry_night.jpg"):
        (folder / "images" / name).write_bytes((folder / "images" / "content.jpg").read_bytes())
    return folder


@pytest.fixture
def scratch(assets, tmp_path, monkeypatch):
    """An empty folder with the assets, the current directory for the test."""
    for path in assets.rglob("*"):
        if path.is_file():
            target = tmp_path / path.relative_to(assets)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_pages_have_code_blocks_of_each_kind_and_no_indented_ones():
    assert len(blocks({"python"})) >= 5 and len(commands()) >= 20
    for page in PAGES:
        text = page.read_text()
        # An indented block would escape these tests; fences only.
        outside = FENCE.sub("", text)
        assert not re.search(r"\n\n {4}\S", outside), f"{_name(page)}: use a fenced block"
        assert {language for language, _ in FENCE.findall(text)} <= {"python", *SHELLS}, _name(page)


@pytest.mark.parametrize("page, line, code", blocks({"python"}))
def test_python_block_runs_as_written(page, line, code, scratch, capsys):
    padded = "\n" * (line - 1) + code  # tracebacks give the page's own line numbers
    exec(compile(padded, str(page), "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out  # each block shows what it computed


def _pip(words):
    """pip needs the internet: -h, and the extras named must exist."""
    assert words[:2] == ["pip", "install"], words
    extras = configparser.ConfigParser()
    extras.read(ROOT / "setup.cfg")
    for word in words[2:]:
        for named in re.findall(r"\[([\w,]+)\]", word):
            assert set(named.split(",")) <= set(extras["options.extras_require"]), word
    run = subprocess.run([sys.executable, "-m", "pip", *words[1:], "-h"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def _pytest(words):
    """The whole suite is not run from inside it: -h."""
    run = subprocess.run([sys.executable, "-m", "pytest", *words[1:], "-h"], capture_output=True, text=True)
    assert run.returncode == 0 and "usage:" in run.stdout, run.stderr


def _script(words):
    """A benchmark or the notebooks' script runs for minutes: -h, in this process, with the page's own arguments."""
    script = ROOT / words[1]
    saved = sys.modules.pop("bench", None)  # large.py imports bench.py: fresh here, and forgotten after
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(script.parent))
            patch.setattr(sys, "argv", [str(script), *words[2:], "-h"])
            with pytest.raises(SystemExit) as exit_, contextlib.redirect_stdout(io.StringIO()) as out:
                runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.modules.pop("bench", None)
        if saved is not None:
            sys.modules["bench"] = saved
    assert exit_.value.code in (0, None) and "usage:" in out.getvalue()


def _download(words):
    """The download needs the internet: -h, after the page's own arguments (so they must parse)."""
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stdout(io.StringIO()):
        download.main([*words[3:], "-h"])
    assert exit_.value.code == 0


def _web(words):
    """The web page serves until stopped (tests/test_web.py drives it in a browser): -h, after the page's own
    arguments (so they must parse)."""
    from nst_tf.web.__main__ import main as web_main

    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stdout(io.StringIO()) as out:
        web_main([*words[3:], "-h"])
    assert exit_.value.code == 0 and "usage:" in out.getvalue()


def _cheap(arguments):
    """``arguments`` made smaller and shorter: CHEAP appended, and SIZES' and ITERATIONS' options capped where given."""
    scales = int(arguments[arguments.index("--scales") + 1]) if "--scales" in arguments else 1
    most = SIZES if scales == 1 else dict.fromkeys(SIZES, FIRST_SCALE * 2 ** (scales - 1))
    caps = {**most, **ITERATIONS}
    capped = []
    for option, most in caps.items():
        if option in arguments:
            capped += [option, str(min(int(arguments[arguments.index(option) + 1]), most))]
    return [*arguments, *CHEAP, *capped]


def _command(words, scratch, capsys):
    """The command itself runs, smaller and shorter, and saves its final image (or, for a folder, one each)."""
    if "-h" in words:
        assert cli.main(words[3:]) == 0 and "usage:" in capsys.readouterr().out
        return
    # A fast model refuses the optimization's options, and takes no iterations to shorten.
    assert cli.main(words[3:] if "--fast_model" in words else _cheap(words[3:])) == 0, capsys.readouterr().err
    args = cli.build_parser().parse_args(words[3:])  # the page's own spelling: -c, --content, -o, ...
    content = args.content_image_filename[0]
    named_file = args.output is not None and os.path.splitext(args.output)[1] and not args.output.endswith("/")
    output = scratch / (args.output if args.output and not named_file else args.output_dir)
    if content.endswith(".mp4"):
        video = scratch / args.output if named_file else output / os.path.basename(content)
        assert probe(str(video)).frames == 3
    elif named_file:
        assert (scratch / args.output).is_file()
    elif (output / "manifest.jsonl").exists():
        results = (output / "manifest.jsonl").read_text().splitlines()[1:]
        assert results and all((output / json.loads(line)["output"]).is_file() for line in results)
    else:
        assert (output / "generated_image.jpg").is_file()
    assert args.log_dir is None or list((scratch / args.log_dir).rglob("events.out.tfevents.*"))


def _train(words, scratch, capsys):
    """The training command runs, two steps of a tiny network, and leaves the model and its exports in its
    --output_dir (which the assets hold ready-made for the pages' stylizing commands: removed first)."""
    output = scratch / words[words.index("--output_dir") + 1]
    shutil.rmtree(output, ignore_errors=True)
    assert train_cli.main([*words[3:], *TRAIN_CHEAP]) == 0, capsys.readouterr().err
    for name in ("fast_model.json", "weights.weights.h5", "saved_model/saved_model.pb", "model.tflite"):
        assert (output / name).is_file(), name


def _tensorboard(words):
    """TensorBoard serves its pages until stopped: it must be pointed at a folder the pages' commands give as
    --log_dir, and be installed (the tensorboard extra, in the test extra too)."""
    import tensorboard  # noqa: F401

    logged = {c[c.index("--log_dir") + 1] for c in (p.values[0] for p in commands()) if "--log_dir" in c}
    assert words[:2] == ["tensorboard", "--logdir"] and len(words) == 3 and words[2] in logged, words


def _cluster(words):
    """The cluster recipe: test_ray_engine.py runs these with a head and a worker node on this machine."""
    import test_ray_engine

    assert words in test_ray_engine._cluster_block()


@pytest.mark.parametrize("words", commands())
def test_command_block_runs(words, scratch, capsys):
    if words[0] == "ray" or "--ray_address" in words:
        _cluster(words)
    elif words[0] == "python" and words[1:3] == ["-m", "nst_tf"]:
        _command(words, scratch, capsys)
    elif words[0] == "python" and words[1:3] == ["-m", "nst_tf.train"]:
        _train(words, scratch, capsys)
    elif words[0] == "python" and words[1:3] == ["-m", "nst_tf.download"]:
        _download(words)
    elif words[0] == "python" and words[1:3] == ["-m", "nst_tf.web"]:
        _web(words)
    elif words[0] == "python" and words[1].startswith(("benchmarks/", "notebooks/")):
        _script(words)
    elif words[0] == "pip":
        _pip(words)
    elif words[0] == "pytest":
        _pytest(words)
    elif words[0] == "tensorboard":
        _tensorboard(words)
    else:
        pytest.fail(f"no check for this command; add one: {shlex.join(words)}")


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--max_size", "512"], ["--max_size", "512", *CHEAP, "--max_size", "64"]),
        (["--max_size", "32"], ["--max_size", "32", *CHEAP, "--max_size", "32"]),
        (
            ["--max_size", "4096", "--scales", "3", "--scale_epochs", "100"],
            ["--max_size", "4096", "--scales", "3", "--scale_epochs", "100", *CHEAP, "--max_size", "256"]
            + ["--scale_epochs", "2"],
        ),
        (["--preset", "keras_lbfgs"], ["--preset", "keras_lbfgs", *CHEAP]),
    ],
)
def test_commands_run_smaller_and_shorter_never_larger(arguments, expected):
    assert _cheap(arguments) == expected


def test_submodules_are_attributes_of_the_package_and_other_names_are_not():
    code = (
        "import sys, nst_tf; assert nst_tf.presets.PRESETS and nst_tf.presets is nst_tf.runs.presets; "
        "assert nst_tf.plan.networks.network_registry.NETWORKS; "
        "assert not hasattr(nst_tf, 'no_such_name') and not hasattr(nst_tf, '__wrapped__'); "
        "assert 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

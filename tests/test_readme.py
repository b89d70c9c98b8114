"""README.md's code runs: every Python block as written, every command cheaply or with -h.

Each block runs in an empty folder holding small synthetic weights and images
at the paths the README names, as the repository root holds the real ones.
"""

import configparser
import contextlib
import io
import json
import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from nst_tf import download
from nst_tf.app import cli
from nst_tf.plan.config import KERAS_VGG_MODEL
from nst_tf.runs.presets import SQUEEZENET_MODEL
from nst_tf.plan.synthetic import write_vgg19_h5, write_vgg19_mat
from nst_tf.plan.clip import encode, probe
from nst_tf.plan.weights.squeezenet_reader import write_squeezenet_weights

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SHELLS = ("bash", "sh", "console", "shell")

#: Appended to the command's runs: later options override earlier ones, so a run keeps what the README
#: gives and only gets smaller and shorter.
CHEAP = ("--width", "64", "--height", "48", "--epochs", "2", "--print_every", "1")


def blocks(languages):
    """(first line's number in README.md, text) of each fenced block in one of ``languages``."""
    found = []
    for match in FENCE.finditer(README):
        language, body = match.groups()
        if language in languages:
            line = README.count("\n", 0, match.start()) + 2
            found.append(pytest.param(line, body, id=f"line{line}"))
    return found


def commands():
    """Each command of the shell blocks, split at ``&&``, as argument lists."""
    found = []
    for param in blocks(SHELLS):
        for line in param.values[1].splitlines():
            line = line.strip().removeprefix("$ ")
            if line and not line.startswith("#"):
                words = shlex.split(line)
                while "&&" in words:
                    cut = words.index("&&")
                    found.append(words[:cut])
                    words = words[cut + 1 :]
                found.append(words)
    return [pytest.param(words, id=" ".join(words)) for words in found]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Weights and images at the README's paths, written once."""
    folder = tmp_path_factory.mktemp("assets")
    write_vgg19_mat(folder / "pretrained-model" / "imagenet-vgg-verydeep-19.mat", width_divisor=16)
    write_vgg19_h5(folder / KERAS_VGG_MODEL, width_divisor=16)
    rng = np.random.default_rng(0)
    (folder / "images").mkdir()
    rows, cols = np.mgrid[0:96, 0:128]
    content = np.stack([rows * 2, cols * 2, 255 - rows - cols], axis=-1) + rng.normal(0, 8, (96, 128, 3))
    iio.imwrite(folder / "images" / "content.jpg", np.clip(content, 0, 255).astype(np.uint8))
    # A video: three frames of the content image moving two pixels a frame.
    moving = [np.clip(content, 0, 255).astype(np.uint8)[:64, 2 * i : 2 * i + 96] for i in range(3)]
    encode(str(folder / "images" / "clip.mp4"), moving, (96, 64), 3.0)
    iio.imwrite(folder / "images" / "style.jpg", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
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


def test_the_readme_has_code_blocks_of_each_kind_and_no_indented_ones():
    assert len(blocks({"python"})) >= 3 and len(commands()) >= 5
    # An indented block would escape these tests; fences only.
    outside = FENCE.sub("", README)
    assert not re.search(r"\n\n {4}\S", outside), "use a fenced block"
    assert {language for language, _ in FENCE.findall(README)} <= {"python", *SHELLS}


@pytest.mark.parametrize("line, code", blocks({"python"}))
def test_python_block_runs_as_written(line, code, scratch, capsys):
    padded = "\n" * (line - 1) + code  # tracebacks give README.md's own line numbers
    exec(compile(padded, str(ROOT / "README.md"), "exec"), {"__name__": "__readme__"})
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
    """A benchmark runs for minutes: -h, in this process, with the README's own arguments."""
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
    """The download needs the internet: -h, after the README's own arguments (so they must parse)."""
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stdout(io.StringIO()):
        download.main([*words[3:], "-h"])
    assert exit_.value.code == 0


def _command(words, scratch, capsys):
    """The command itself runs, smaller and shorter, and saves its final image (or, for a folder, one each)."""
    assert cli.main([*words[3:], *CHEAP]) == 0, capsys.readouterr().err
    output = scratch / (words[words.index("--output_dir") + 1] if "--output_dir" in words else "output")
    content = words[words.index("--content_image_filename") + 1] if "--content_image_filename" in words else ""
    if content.endswith(".mp4"):
        assert probe(str(output / os.path.basename(content))).frames == 3
    elif (output / "manifest.jsonl").exists():
        results = (output / "manifest.jsonl").read_text().splitlines()[1:]
        assert results and all((output / json.loads(line)["output"]).is_file() for line in results)
    else:
        assert (output / "generated_image.jpg").is_file()


def _cluster(words):
    """The cluster how-to: test_ray_engine.py runs these with a head and a worker node on this machine."""
    import test_ray_engine

    assert words in test_ray_engine._cluster_block()


@pytest.mark.parametrize("words", commands())
def test_command_block_runs(words, scratch, capsys):
    if words[0] == "ray" or "--ray_address" in words:
        _cluster(words)
    elif words[0] == "python" and words[1:3] == ["-m", "nst_tf"]:
        _command(words, scratch, capsys)
    elif words[0] == "python" and words[1:3] == ["-m", "nst_tf.download"]:
        _download(words)
    elif words[0] == "python" and words[1].startswith("benchmarks/"):
        _script(words)
    elif words[0] == "pip":
        _pip(words)
    elif words[0] == "pytest":
        _pytest(words)
    else:
        pytest.fail(f"no check for this README command; add one: {shlex.join(words)}")


def test_submodules_are_attributes_of_the_package_and_other_names_are_not():
    code = (
        "import sys, nst_tf; assert nst_tf.runs.presets.PRESETS and nst_tf.plan.networks.registry.NETWORKS; "
        "assert not hasattr(nst_tf, 'no_such_name') and not hasattr(nst_tf, '__wrapped__'); "
        "assert 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

"""CS231n's runs as presets: the command's first costs are the assignment's formulas on the same features."""

import dataclasses
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from nst_tf import cs231n
from nst_tf.app.cli import main
from nst_tf.tensors.images import start_image
from nst_tf.runs.presets import PRESETS
from nst_tf.plan.weights.squeezenet_reader import write_squeezenet_weights

CS231N_PRESETS = [name for name in PRESETS if name.startswith("cs231n_")]
LINE = re.compile(r"^Iteration (\d+): total (\S+) = content (\S+) \+ style (\S+) \+ tv (\S+)$")


@pytest.fixture(scope="module")
def squeezenet_file(tmp_path_factory):
    return write_squeezenet_weights(tmp_path_factory.mktemp("squeezenet") / "squeezenet1_1.pth", seed=4)


@pytest.fixture
def cs231n_images(tmp_path):
    """A 410x300 content image and a 300x360 style image (aspect ratios of their own).

    Each under twice the sizes the presets bring them to: larger files are decoded reduced first.
    410 x 192 / 300 = 262.4: the longer side is truncated, and the whole image resized to it.
    """
    y, x = np.mgrid[0:300, 0:410]
    content = np.stack([x * 0.6, y * 0.8, (x + y) * 0.3], axis=2).astype(np.uint8)
    Image.fromarray(content).save(tmp_path / "tubingen.png")
    style = np.random.default_rng(7).integers(0, 256, size=(360, 300, 3), dtype=np.uint8)
    Image.fromarray(style).save(tmp_path / "style.png")
    return tmp_path / "tubingen.png", tmp_path / "style.png"


def _expected(preset, model, content_path, style_path):
    """CS231n's losses of the clamped start image, computed with ``nst_tf.tensors.cs231n`` on the module's features."""
    config = preset.config
    content = preset.load_image(content_path)
    style = preset.load_style_image(style_path)
    start = start_image(content, dataclasses.replace(config, seed=0))  # the content, or seeded noise
    image = tf.clip_by_value(start, *config.clamp)  # the clamp before the first step
    layers = [config.content_layer, *(name for name, _ in config.style_layers)]
    feats, style_feats, content_feats = (model(x, layers=layers) for x in (image, style, content))
    names = [name for name, _ in config.style_layers]
    targets = [cs231n.gram_matrix(style_feats[name]) for name in names]
    content_loss = cs231n.content_loss(config.alpha, feats[config.content_layer], content_feats[config.content_layer])
    weights = [weight for _, weight in config.style_layers]
    style_loss = cs231n.style_loss(feats, names, targets, weights)
    tv_loss = cs231n.tv_loss(image, config.tv_weight)
    return [float(content_loss), float(style_loss), float(tv_loss)], content.shape, style.shape


@pytest.mark.numeric
@pytest.mark.parametrize("name", CS231N_PRESETS)
def test_a_presets_first_costs_are_cs231ns_formulas_on_the_same_features(
    name, squeezenet_file, cs231n_images, tmp_path, capsys
):
    preset = PRESETS[name]
    content_path, style_path = cs231n_images
    argv = ["--preset", name, "--model", str(squeezenet_file), "--output_dir", str(tmp_path / "out")]
    argv += ["--content_image_filename", str(content_path), "--style_image_filename", str(style_path)]
    # The image is held still: the reported costs are those of the start, clamped.
    argv += ["--learning_rate", "1e-30", "--epochs", "1", "--seed", "0"]
    assert main(argv) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Iteration")]
    match = LINE.match(line)
    assert match and match.group(1) == "0", line
    total, *terms = (float(value) for value in match.groups()[1:])
    expected, content_shape, style_shape = _expected(preset, preset.load_model(squeezenet_file), *cs231n_images)
    assert content_shape == (1, 192, 262, 3)  # shorter side 192, the longer truncated as torchvision does
    assert min(style_shape[1:3]) == preset.large.style_size and style_shape[1] > style_shape[2]
    # The printed values have 6 significant digits.
    assert terms == pytest.approx(expected, rel=2e-5, abs=1e-6)
    assert total == pytest.approx(sum(expected), rel=2e-5)
    assert all(value > 0 for value in expected[:1] + expected[2:])
    assert (expected[1] > 0) == (name != "cs231n_feature_inversion")


def test_the_presets_are_cs231ns_runs():
    scream, inversion = PRESETS["cs231n_scream"], PRESETS["cs231n_feature_inversion"]
    config = scream.config
    assert (config.network, config.normalization, config.content_layer) == ("squeezenet", "imagenet", "3")
    assert config.style_layers == (("1", 200000.0), ("4", 800.0), ("6", 12.0), ("7", 1.0))
    assert (config.alpha, config.beta, config.tv_weight) == (3e-2, 1.0, 2e-2)
    assert (config.learning_rate, config.learning_rate_steps, config.epochs) == (3.0, ((180, 0.1),), 200)
    assert (config.clamp, config.clamp_until, config.start) == ((-1.5, 1.5), 190, "content")
    assert (scream.size.shorter_side, scream.large.style_size) == (192, 224)
    assert scream.model == "pretrained-model/squeezenet1_1-b8a52dc0.pth"
    assert inversion.config.start == "uniform" and {w for _, w in inversion.config.style_layers} == {0.0}


def test_a_preset_run_saves_its_images_and_reports_every_hundred_iterations(
    squeezenet_file, cs231n_images, tmp_path, capsys
):
    content_path, style_path = cs231n_images
    argv = ["--preset", "cs231n_starry_night", "--model", str(squeezenet_file), "--output_dir", str(tmp_path / "out")]
    argv += ["--content_image_filename", str(content_path), "--style_image_filename", str(style_path)]
    assert main([*argv, "--epochs", "101", "--seed", "0"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Iteration")]
    assert [int(LINE.match(line).group(1)) for line in lines] == [0, 100]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "100.png", "generated_image.jpg"]
    with Image.open(tmp_path / "out" / "generated_image.jpg") as image:
        assert image.size == (262, 192)


@pytest.mark.parametrize(
    "options, size",
    [(["--max_size", "100"], (100, 73)), (["--width", "120", "--height", "90"], (120, 90)), ([], (262, 192))],
)
def test_sizes_given_override_the_presets_shorter_side(squeezenet_file, cs231n_images, tmp_path, options, size):
    content_path, style_path = cs231n_images
    argv = ["--preset", "cs231n_scream", "--model", str(squeezenet_file), "--output_dir", str(tmp_path / "out")]
    argv += ["--content_image_filename", str(content_path), "--style_image_filename", str(style_path)]
    # --style_scale given replaces the preset's --style_size (the two exclude each other).
    assert main([*argv, "--epochs", "1", "--style_scale", "0.5", *options]) == 0
    with Image.open(tmp_path / "out" / "generated_image.jpg") as image:
        assert image.size == size

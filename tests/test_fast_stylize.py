"""Stylizing with a trained fast style model: the library call, tiles, and ``--fast_model`` for one image, a folder
(local and on Ray) and a video, each result checked against the model called directly."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nst_tf

from nst_tf import FastModel, ImageError, NSTError, load_fast_model, stylize_fast
from nst_tf.app.cli import main
from nst_tf.plan.clip import encode, frames, probe
from nst_tf.plan.fast_model import FastModelDescription, TransformSpec
from nst_tf.runs.fast_models import new_fast_model, save_fast_model
from nst_tf.runs.fast_stylize import (
    blend_weights,
    fast_size,
    forward_bytes_per_pixel,
    plan_tiles,
    run_tiles,
    spans,
    stylize_pixels_with,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """one/ (one style), other/ (the same network, other weights) and two/ (styles "a" and "b"), random weights:
    each style's normalization scales and shifts drawn too (Keras starts them at 1 and 0, alike for every style)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    folder = tmp_path_factory.mktemp("models")
    for name, styles in (("one", ("style",)), ("other", ("style",)), ("two", ("a", "b"))):
        model = new_fast_model(FastModelDescription(TransformSpec(width=0.25, blocks=2, styles=len(styles)), styles))
        for variable in model.net.weights:
            if variable.name in ("gamma", "beta"):
                start = 1.0 if variable.name == "gamma" else 0.0
                variable.assign(rng.normal(start, 0.3, variable.shape).astype(np.float32))
        save_fast_model(folder / name, model)
    return folder


@pytest.fixture(scope="module")
def one(models):
    """The one-style model, loaded (``load_fast_model``) once for the tests that call it directly."""
    return load_fast_model(models / "one")


@pytest.fixture
def photo(tmp_path, noise_image):
    return noise_image(tmp_path / "photo.png", 45, 70, 1)


def _pixels(path):
    with Image.open(path) as image:
        return np.asarray(image)


def _as_jpeg(pixels):
    """``pixels`` after a JPEG save and read, as Pillow saves them by default (what the command writes)."""
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format="JPEG")
    return _pixels(encoded)


def _direct(model, pixels, weights=None):
    """What the model gives for ``pixels``, called directly, rounded to 8 bits."""
    out = model(np.asarray(pixels, np.float32)[None], weights)[0].numpy()
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# The library ---------------------------------------------------------------------------------------


def test_stylize_fast_is_one_pass_of_the_model_at_the_images_own_size(models, photo):
    model = load_fast_model(models / "one")  # what the library call from a folder does too
    assert isinstance(model, FastModel) and model.description.style_names == ("style",)
    pixels = _pixels(photo)
    from_folder = stylize_fast(models / "one", photo)
    assert from_folder.shape == (45, 70, 3) and from_folder.dtype == np.uint8
    np.testing.assert_array_equal(from_folder, _direct(model, pixels))
    np.testing.assert_array_equal(stylize_fast(model, pixels), from_folder)  # a FastModel and pixels alike


def test_styles_are_picked_by_name_or_blended_by_weight(models, photo):
    model = load_fast_model(models / "two")
    pixels = _pixels(photo)
    np.testing.assert_array_equal(stylize_fast(model, pixels, style="b"), _direct(model, pixels, (0.0, 1.0)))
    np.testing.assert_array_equal(stylize_fast(model, pixels, style=(3, 7)), _direct(model, pixels, (0.3, 0.7)))
    assert not np.array_equal(stylize_fast(model, pixels, "a"), stylize_fast(model, pixels, "b"))
    with pytest.raises(NSTError, match="style 'c' is not one of this model's: a, b"):
        stylize_fast(model, pixels, style="c")


@pytest.mark.parametrize(
    "shape, max_size, even, expected",
    [
        ((45, 70), None, False, (45, 70)),  # its own size
        ((45, 70), 35, False, (22, 35)),  # the longer side capped, the aspect kept
        ((45, 70), 100, False, (45, 70)),  # never enlarged
        ((45, 71), None, True, (44, 70)),  # a video's frames: even sides
        ((3000, 2000), 512, False, (512, 341)),
    ],
)
def test_an_image_keeps_its_size_and_aspect_and_max_size_caps_the_longer_side(shape, max_size, even, expected):
    assert fast_size(*shape, max_size, even=even) == expected


def test_a_bare_name_finds_the_bundled_image_from_any_folder(one, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no images/ here
    bundled = _pixels(Path(nst_tf.__file__).parent / "images" / "content.jpg")
    np.testing.assert_array_equal(stylize_fast(one, "content.jpg"), _direct(one, bundled))


def test_a_library_call_with_max_size_gives_that_longer_side(one, photo):
    assert stylize_fast(one, photo, max_size=35).shape == (22, 35, 3)
    with pytest.raises(ImageError, match="at least 8x8"):
        stylize_fast(one, np.zeros((6, 40, 3), np.uint8))


# Tiles ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length, tile, overlap", [(100, 40, 10), (513, 512, 32), (2000, 512, 32), (37, 16, 4)])
def test_tiles_cover_the_image_overlapping_and_their_weights_sum_to_one(length, tile, overlap):
    found = spans(length, tile, overlap)
    assert found[0][0] == 0 and found[-1][1] == length
    assert all(stop - start == tile for start, stop in found)
    assert all(before[1] - after[0] >= overlap for before, after in zip(found, found[1:]))
    total = np.zeros(length)
    for (start, stop), weights in zip(found, blend_weights(found, length)):
        total[start:stop] += weights
        assert weights.min() > 0
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_tiles_run_in_windows_and_blend_back_to_exactly_what_a_pointwise_run_gives(rng):
    pixels = rng.integers(0, 256, (150, 203, 3), dtype=np.uint8)
    spec = TransformSpec(width=0.25, blocks=2)
    plan = plan_tiles(150, 203, spec, tile_size=40)
    seen = []

    def run(window):  # a pointwise "network": the tiles' windows, crops and blend must give the image back
        seen.append(window.shape[:2])
        return 255.0 - window  # whole numbers: a blend of equal values with weights summing to 1 rounds back

    result = run_tiles(pixels, plan, run)
    np.testing.assert_array_equal(result, 255 - pixels)
    assert len(seen) == plan.count and max(max(shape) for shape in seen) <= plan.tile + 2 * plan.margin + 3


@pytest.mark.parametrize("upsampling", ["resize", "transposed"])
def test_a_tiled_pass_is_the_whole_images_when_the_moments_are_the_whole_images(rng, upsampling, strict_float32):
    # Each window holds the network's receptive radius around its tile on the stride-2 grid, and every tile is
    # normalized with the whole image's moments (taken at its own size, as it fits): the tiles compute what the
    # whole pass computes, so only float rounding differs, which moves a pixel by one level at most.
    import tensorflow as tf

    tf.keras.utils.set_random_seed(3)
    model = new_fast_model(FastModelDescription(TransformSpec(width=0.25, blocks=2, upsampling=upsampling), ("s",)))
    y, x = np.mgrid[0:130, 0:160]
    pixels = np.stack([x, y, (x + y) // 2], axis=2).astype(np.uint8)  # a tile of sky has other moments than the whole
    whole = stylize_pixels_with(model, pixels).astype(int)
    plan = plan_tiles(130, 160, model.spec, budget=1 << 40, tile_size=40)
    assert plan.count == 20 and plan.stats_size == (130, 160)  # 4 rows and 5 columns of 40 overlapping by 10
    assert np.abs(stylize_pixels_with(model, pixels, plan=plan).astype(int) - whole).max() <= 1


def test_a_tiled_pass_stopped_between_tiles_leaves_the_model_as_it_was(one, rng):
    model = one
    pixels, other = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), rng.integers(0, 256, (30, 30, 3), np.uint8)
    before = _direct(model, other)
    calls = []

    def check():  # a stop request arriving before the third tile
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize_pixels_with(model, pixels, plan=plan_tiles(40, 60, model.spec, tile_size=16), check=check)
    np.testing.assert_array_equal(_direct(model, other), before)  # its normalizations take each image's moments


@pytest.mark.parametrize(
    "height, width, budget",
    [(9000, 12000, 2 << 30), (4000, 3000, 512 << 20), (20000, 400, 256 << 20), (1000, 1000, 64 << 20)],
)
def test_the_tile_plan_keeps_each_pass_within_the_memory_budget(height, width, budget):
    spec = TransformSpec()
    per_pixel = forward_bytes_per_pixel(spec)
    assert height * width * per_pixel > budget  # the whole pass would not fit
    plan = plan_tiles(height, width, spec, budget=budget)
    assert plan.peak_bytes <= budget and plan.stats_size[0] * plan.stats_size[1] * per_pixel <= budget
    assert (plan.tile + 2 * plan.margin + 3) ** 2 * per_pixel <= budget  # one window's pass
    assert plan.rows[-1][1] == height and plan.cols[-1][1] == width
    assert plan_tiles(100, 100, spec, budget=budget) is None  # a small image runs whole


# The command: one image ----------------------------------------------------------------------------


def test_the_command_stylizes_one_image_with_no_vgg_weights_nor_style_image(
    models, one, photo, tmp_path, capsys, monkeypatch, strict_float32
):
    monkeypatch.chdir(tmp_path)  # no pretrained-model/ here, and NST_TF_HOME names nothing: no VGG-19 weights anywhere
    assert main(["--fast_model", str(models / "one"), "-c", str(photo), "-o", "out.png"]) == 0
    captured = capsys.readouterr()
    expected = _direct(one, _pixels(photo))
    np.testing.assert_array_equal(_pixels(tmp_path / "out.png"), expected)
    assert captured.out.startswith("done: 1 pass in ") and captured.out.endswith(" s (70x45); saved out.png\n")
    assert captured.err.startswith("nst-tf: running on CPU (")
    argv = ["--fast_model", str(models / "two"), "-c", str(photo), "-o", "blend.png", "--fast_style", "0.3", "0.7"]
    assert main([*argv, "--tile_size", "40"]) == 0
    blended = _direct(load_fast_model(models / "two"), _pixels(photo), (0.3, 0.7)).astype(int)
    assert np.abs(_pixels(tmp_path / "blend.png").astype(int) - blended).max() <= 1  # tiles: float rounding
    assert "70x45 runs in 4 tiles of up to 40x40 pixels" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-s", "style.png"], "-s/--style_image_filename: a fast model carries its styles; leave it out"),
        (["-n", "5"], "--epochs/--iterations is not used with --fast_model"),
        (["--alpha", "3", "--optimizer", "adam"], "--alpha, --optimizer are not used with --fast_model"),
        (["--model", "vgg.mat"], "--model is not used with --fast_model"),
        (["--fast_style", "c"], "--fast_style: style 'c' is not one of this model's: style"),
        (["--fast_style", "1", "2"], "--fast_style: style weights: expected 1 numbers"),
        (["--max_size", "4"], "--max_size must be a whole number of at least 8"),
    ],
)
def test_what_a_fast_model_does_not_use_is_refused_in_one_line(models, photo, tmp_path, capsys, extra, message):
    argv = ["--fast_model", str(models / "one"), "-c", str(photo), "-o", str(tmp_path / "out" / "x.png"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nst-tf: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_fast_options_without_a_model_or_a_folder_that_is_none_are_one_line(photo, tmp_path, capsys):
    assert main(["--fast_style", "a", "-c", str(photo)]) == 2
    assert (
        "--fast_style picks one of a fast model's styles; give the model with --fast_model DIR"
        in capsys.readouterr().err
    )
    assert main(["--fast_model", str(tmp_path), "-c", str(photo)]) == 2
    assert "no fast_model.json in it" in capsys.readouterr().err


# The command: a folder, and a video ------------------------------------------------------------------


@pytest.fixture
def photos(tmp_path, noise_image):
    folder = tmp_path / "photos"
    for i, (height, width) in enumerate([(40, 60), (64, 48), (30, 30)]):
        noise_image(folder / f"p{i}.png", height, width, i)
    return folder


def _folder_args(models, photos, out, model="one", extra=()):
    return ["--fast_model", str(models / model), "-c", str(photos), "-o", f"{out}/", *extra]


def _header(folder):
    return json.loads((folder / "manifest.jsonl").read_text().splitlines()[0])


def test_a_folder_is_stylized_recorded_and_resumed_and_another_model_is_not_taken_for_done(
    models, one, photos, tmp_path, capsys
):
    out = tmp_path / "out"
    assert main(_folder_args(models, photos, out)) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[:3] == [f"saved {out / f'p{i}.jpg'} ({i + 1} of 3)" for i in range(3)]
    assert printed[-1].startswith("done: 3 of 3 images in ")
    model = one
    for i in range(3):
        np.testing.assert_array_equal(
            _pixels(out / f"p{i}.jpg"), _as_jpeg(_direct(model, _pixels(photos / f"p{i}.png")))
        )
    settings = _header(out)["settings"]
    assert set(settings["fast_model"]) == {"description", "weights"} and settings["style"] == [1.0]
    assert main(_folder_args(models, photos, out)) == 0
    assert "3 of 3 results are done already" in capsys.readouterr().err
    assert main(_folder_args(models, photos, out, model="other")) == 2
    assert "holds the results of other settings (fast_model differ)" in capsys.readouterr().err


def test_a_video_is_stylized_frame_by_frame_and_encoded(models, one, tmp_path, rng, capsys):
    clip = tmp_path / "clip.mp4"
    encode(str(clip), [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)], (64, 48), 3.0)
    assert main(["--fast_model", str(models / "one"), "-c", str(clip), "-o", str(tmp_path / "styled.mp4")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("done: 3 frames in ")
    model = one
    for index, pixels in enumerate(frames(probe(str(clip)))):
        saved = _pixels(tmp_path / "styled.frames" / f"{index + 1:06d}.png")
        np.testing.assert_array_equal(saved, _direct(model, pixels))
    made = probe(str(tmp_path / "styled.mp4"))
    assert (made.frames, made.size) == (3, (64, 48))
    assert main(["--fast_model", str(models / "one"), "-c", str(clip), "-o", str(tmp_path / "styled.mp4")]) == 0
    assert "is done already (3 frames)" in capsys.readouterr().err


def test_the_ray_engine_gives_the_models_results_and_records_them(models, one, photos, tmp_path):
    argv = _folder_args(models, photos, tmp_path / "ray", extra=["--engine", "ray"])
    result = subprocess.run([sys.executable, "-m", "nst_tf", *argv], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("done: 3 of 3 images in ")
    model = one
    for i in range(3):
        ray, local = _pixels(tmp_path / "ray" / f"p{i}.jpg"), _as_jpeg(_direct(model, _pixels(photos / f"p{i}.png")))
        assert np.abs(ray.astype(int) - local.astype(int)).max() <= 2  # float rounding in another process, then JPEG
    records = (tmp_path / "ray" / "manifest.jsonl").read_text().splitlines()[1:]
    assert sorted(json.loads(line)["output"] for line in records) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert set(_header(tmp_path / "ray")["settings"]) == {"fast_model", "style", "max_size", "tile_size"}

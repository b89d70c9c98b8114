"""Styles by region on the command line: masks read and resized by the rule, refusals in one line, and the
measured result (two colours each on their own half)."""

import numpy as np
import pytest
from PIL import Image

from nst_tf.app.cli import main

WIDTH, HEIGHT = 48, 32


@pytest.fixture
def regions(tmp_path, new_weights_file):
    """A folder with a grey content image, a red and a blue texture, and masks of the two halves (also at twice
    the size, at another aspect ratio and black); ``run(*extra)`` runs the command on it."""
    rng = np.random.default_rng(3)
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 128, np.uint8)).save(tmp_path / "content.png")
    for name, colour in (("red", (220, 40, 40)), ("blue", (40, 60, 220))):
        texture = np.clip(np.asarray(colour) + rng.normal(0, 25, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(texture).save(tmp_path / f"{name}.png")
    for scale, suffix in ((1, ""), (2, "_big")):
        left = np.zeros((HEIGHT * scale, WIDTH * scale), np.uint8)
        left[:, : WIDTH * scale // 2] = 255
        Image.fromarray(left).save(tmp_path / f"left{suffix}.png")
        Image.fromarray(255 - left).save(tmp_path / f"right{suffix}.png")
    Image.fromarray(np.full((HEIGHT, HEIGHT), 255, np.uint8)).save(tmp_path / "square.png")
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(tmp_path / "black.png")
    dot = np.zeros((HEIGHT, WIDTH), np.uint8)
    dot[10:12, 10:12] = 255
    Image.fromarray(dot).save(tmp_path / "dot.png")
    (tmp_path / "notes.txt").write_text("not an image")

    def run(*extra, epochs=100):
        argv = ["-c", str(tmp_path / "content.png"), "-s", str(tmp_path / "red.png"), str(tmp_path / "blue.png")]
        argv += ["--model", str(new_weights_file), "--output_dir", str(tmp_path / "out"), "--width", str(WIDTH)]
        argv += ["--height", str(HEIGHT), "--epochs", str(epochs), "--print_every", str(epochs), "--seed", "1"]
        argv += ["--alpha", "1", "--beta", "1000", "--learning_rate", "5"]
        argv += ["--style_layers", "conv1_1:0.5,conv2_1:0.5", *extra]
        return main([str(word).replace("@", str(tmp_path) + "/") for word in argv])

    return tmp_path, run


def _separation(path):
    """(red - blue) of the left half minus the right half's, in pixel levels."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), np.float64)
    red_minus_blue = pixels[..., 0] - pixels[..., 2]
    return red_minus_blue[:, : WIDTH // 2].mean() - red_minus_blue[:, WIDTH // 2 :].mean()


def test_masked_styles_paint_each_colour_on_its_own_half_far_more_than_without_masks(regions, capsys):
    folder, run = regions
    assert run() == 0
    unmasked = _separation(folder / "out" / "generated_image.jpg")
    assert run("--style_masks", "@left_big.png", "@right_big.png") == 0
    masked = _separation(folder / "out" / "generated_image.jpg")
    err = capsys.readouterr().err
    assert err.count("resized to their images' sizes") == 1, err
    assert masked > 60 and masked > 5 * abs(unmasked), (masked, unmasked)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--style_masks", "@left.png", "@square.png"], "not the aspect ratio of its image (48x32) within 1%"),
        (["--style_masks", "@left.png", "@black.png"], "is black everywhere"),
        (["--style_masks", "@left.png", "@right.png", "@left.png"], "--style_masks gives 3 entries for 2 style"),
        (["--style_masks", "@notes.txt"], "is not an image"),
        (["--style_image_masks", "-", "@black.png"], "is black everywhere"),
        (["--content_mask", "@square.png"], "not the aspect ratio"),
        (["--style_image_layers", "conv9_1:1"], "conv9_1"),
        (["--style_masks", "@missing.png"], "missing.png"),
        (["--style_masks", "@dot.png", "--mask_erosion"], "eroded (--mask_erosion) leaves nothing at conv1_1"),
        (["--style_masks", "@left.png", "--style_normalizer", "image"], "styles by region take layer"),
    ],
)
def test_a_mask_that_cannot_apply_is_refused_in_one_line_before_anything_else(regions, capsys, extra, message):
    folder, run = regions
    assert run(*extra, epochs=2) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nst-tf: error: ") and message in lines[0], err
    assert not (folder / "out").exists()


def test_own_layers_and_masks_of_style_images_and_content_run_in_tiles(regions, capsys):
    folder, run = regions
    extra = ["--style_masks", "@left.png", "-", "--style_image_masks", "-", "@right_big.png", "--content_mask"]
    extra += ["@right.png", "--style_image_layers", "conv3_1:1", "-", "--mask_erosion", "--tile_size", "32"]
    assert run(*extra, epochs=2) == 0
    err = capsys.readouterr().err
    assert "tiles" in err and (folder / "out" / "generated_image.jpg").exists()


def test_one_set_of_masks_applies_to_every_image_of_a_folder(regions, capsys):
    folder, run = regions
    (folder / "photos").mkdir()
    for name, size in (("a.png", (WIDTH, HEIGHT)), ("b.png", (2 * WIDTH, 2 * HEIGHT))):
        with Image.open(folder / "content.png") as image:
            image.resize(size).save(folder / "photos" / name)
    argv = ["-c", "@photos", "--output_dir", "@styled", "--style_masks", "@left.png", "@right.png"]
    assert run(*argv, "--max_size", "64", epochs=2) == 0
    err = capsys.readouterr().err
    assert sorted(p.name for p in (folder / "styled").iterdir() if p.suffix == ".jpg") == ["a.jpg", "b.jpg"]
    assert err.count("resized to their images' sizes") == 1, err


def test_one_set_of_masks_applies_to_every_frame_of_a_video(regions, capsys):
    from nst_tf.plan.clip import encode

    folder, run = regions
    frames = [np.full((HEIGHT, WIDTH, 3), 100 + 20 * i, np.uint8) for i in range(3)]
    encode(str(folder / "clip.mp4"), frames, (WIDTH, HEIGHT), 3.0)
    argv = ["-c", "@clip.mp4", "-o", "@styled.mp4", "--style_masks", "@left_big.png", "@right.png"]
    assert run(*argv, epochs=2) == 0
    assert capsys.readouterr().err.count("resized to their images' sizes") == 1
    assert (folder / "styled.mp4").exists()
    assert run(*argv[:2], "-o", "@other.mp4", "--style_masks", "@square.png", epochs=2) == 2
    assert "not the aspect ratio" in capsys.readouterr().err
    # The frames kept are of these masks: a rerun with others is refused, not resumed.
    assert run(*argv[:4], "--style_masks", "@right.png", "@left.png", epochs=2) == 2
    assert "(regions differ)" in capsys.readouterr().err


def test_masks_follow_a_coarse_to_fine_run_to_each_scale(regions, capsys):
    folder, run = regions
    extra = ["--width", "96", "--height", "64", "--scales", "2", "--style_masks", "@left.png", "@right.png"]
    assert run(*extra, epochs=2) == 0
    err = capsys.readouterr().err
    assert err.count("resized to their images' sizes") == 1, err
    with Image.open(folder / "out" / "generated_image.jpg") as image:
        assert image.size == (96, 64)


def _stripes(folder, names, size=(WIDTH, HEIGHT)):
    """Content images of vertical black and white stripes, 4 pixels wide (each shifted by its position)."""
    folder.mkdir()
    for shift, name in enumerate(names):
        columns = (np.arange(size[0]) + 2 * shift) // 4 % 2 * 255
        Image.fromarray(np.broadcast_to(columns[None, :, None], (size[1], size[0], 3)).astype(np.uint8)).save(
            folder / name
        )


def _stripe_match(path, content, half):
    """How much of the stripes of ``content`` a result keeps on its ``half`` (0 left, 1 right): the correlation
    of their grey levels there."""
    with Image.open(path) as image, Image.open(content) as stripes:
        pair = [np.asarray(each.convert("L"), np.float64) for each in (image, stripes)]
    parts = [grey[:, : WIDTH // 2] if half == 0 else grey[:, WIDTH // 2 :] for grey in pair]
    return np.corrcoef(parts[0].ravel(), parts[1].ravel())[0, 1]


def test_a_content_mask_weights_the_content_of_every_image_of_a_folder(regions, capsys):
    folder, run = regions
    _stripes(folder / "photos", ["a.png", "b.png"])
    argv = ["-c", "@photos", "--alpha", "100", "--beta", "1", "--noise_ratio", "1", "--content_layer", "conv1_1"]
    argv += ["--style_masks", "@left.png", "@right.png"]
    assert run(*argv, "--output_dir", "@plain", epochs=100) == 0
    assert run(*argv, "--output_dir", "@masked", "--content_mask", "@left_big.png", epochs=100) == 0
    assert capsys.readouterr().err.count("resized to their images' sizes") == 1  # the content mask, once
    for name in ("a", "b"):
        content = folder / "photos" / f"{name}.png"
        plain, masked = (_stripe_match(folder / out / f"{name}.jpg", content, 1) for out in ("plain", "masked"))
        kept = _stripe_match(folder / "masked" / f"{name}.jpg", content, 0)
        # From noise, the stripes come back where the content counts: outside the mask (the right half) they are
        # no longer asked for, and nothing of them is rebuilt there.
        assert kept > 0.5 and abs(masked) < 0.08 and masked < plain - 0.08, (name, plain, masked, kept)
    # The results are of this mask: a rerun with another is refused, not resumed.
    assert run(*argv, "--output_dir", "@masked", "--content_mask", "@right.png", epochs=100) == 2
    assert "(regions differ)" in capsys.readouterr().err


def test_a_folder_image_not_of_the_content_masks_aspect_ratio_is_refused_in_one_line(regions, capsys):
    folder, run = regions
    _stripes(folder / "photos", ["a.png"])
    Image.fromarray(np.full((HEIGHT, HEIGHT, 3), 90, np.uint8)).save(folder / "photos" / "square.png")
    argv = ["-c", "@photos", "--output_dir", "@styled", "--content_mask", "@left.png", "--max_size", WIDTH]
    assert run(*argv, epochs=2) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("nst-tf: error: "), err
    assert "square.png" in lines[0] and "not the aspect ratio of --content_mask" in lines[0], err
    assert "give it a mask of its own aspect ratio" in lines[0]
    assert not (folder / "styled").exists()


def test_a_content_mask_applies_to_every_frame_of_a_video(regions, capsys):
    from nst_tf.plan.clip import encode

    folder, run = regions
    frames = [np.full((HEIGHT, WIDTH, 3), 100 + 20 * i, np.uint8) for i in range(3)]
    encode(str(folder / "clip.mp4"), frames, (WIDTH, HEIGHT), 3.0)
    argv = ["-c", "@clip.mp4", "-o", "@styled.mp4", "--content_mask", "@left_big.png"]
    assert run(*argv, epochs=2) == 0
    assert capsys.readouterr().err.count("resized to their images' sizes") == 1
    assert (folder / "styled.mp4").exists() and len(list((folder / "styled.frames").glob("*.png"))) == 3
    # The frames kept are of this mask: a rerun with another is refused, not resumed.
    assert run(*argv[:4], "--content_mask", "@right.png", epochs=2) == 2
    assert "(regions differ)" in capsys.readouterr().err


def _pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), int)


def test_a_batch_of_masked_images_gives_the_images_of_separate_runs(regions):
    folder, run = regions
    _stripes(folder / "photos", ["a.png", "b.png"])
    argv = ["-c", "@photos", "--style_masks", "@left.png", "@right.png", "--learning_rate", "1"]
    for size in (1, 2):
        assert run(*argv, "--output_dir", f"@batch{size}", "--batch_size", size, epochs=4) == 0
    for name in ("a.jpg", "b.jpg"):
        # Within 2 of 255 (the batch tolerance): the batched convolutions may sum in another order.
        assert np.abs(_pixels(folder / "batch2" / name) - _pixels(folder / "batch1" / name)).max() <= 2


def test_the_ray_engine_gives_the_local_engines_masked_images(regions, new_weights_file):
    import subprocess
    import sys

    folder, run = regions
    _stripes(folder / "photos", ["a.png", "b.png"])
    argv = ["-c", "@photos", "--style_masks", "@left.png", "@right.png", "--content_mask", "@left.png"]
    argv += ["--learning_rate", "1"]
    assert run(*argv, "--output_dir", "@local", epochs=4) == 0
    command = ["-c", folder / "photos", "-s", folder / "red.png", folder / "blue.png", "--model", new_weights_file]
    command += ["--output_dir", folder / "ray", "--width", WIDTH, "--height", HEIGHT, "--epochs", "4", "--seed", "1"]
    command += ["--alpha", "1", "--beta", "1000", "--style_layers", "conv1_1:0.5,conv2_1:0.5", "--engine", "ray"]
    command += [str(word).replace("@", f"{folder}/") for word in argv]
    result = subprocess.run(
        [sys.executable, "-m", "nst_tf", *map(str, command)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    for name in ("a.jpg", "b.jpg"):
        assert np.abs(_pixels(folder / "ray" / name) - _pixels(folder / "local" / name)).max() <= 2

"""Image reading (every common kind), fitting, normalizing, noise and saving."""

import os

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image, ImageOps

from nst_tf import (
    CONFIG,
    ImageError,
    deprocess_image,
    fit_image,
    generate_noise_image,
    load_image,
    read_image,
    reshape_and_normalize_image,
    save_image,
)


@pytest.fixture
def photo(rng):
    return rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)


def test_rgb_images_read_exactly(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "x.png")
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), photo)


def test_grayscale_becomes_three_equal_channels(tmp_path, photo):
    gray = photo[:, :, 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(image[:, :, c], gray)


def test_rgba_is_composited_over_white(tmp_path, photo):
    alpha = np.zeros((40, 60, 1), np.uint8)
    alpha[:20] = 255  # top opaque, bottom fully transparent
    alpha[20:30] = 128
    Image.fromarray(np.concatenate([photo, alpha], axis=2), mode="RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(image[:20], photo[:20])
    np.testing.assert_array_equal(image[30:], 255)
    expected = np.round(photo[20:30] * (128 / 255) + 255 * (1 - 128 / 255))
    np.testing.assert_allclose(image[20:30], expected, atol=1)


def test_sixteen_bit_png_scales_to_eight_bits(tmp_path):
    values = np.array([[0, 257, 32896, 65535]] * 32, dtype=np.uint16)
    values = np.tile(values, (1, 8))
    iio.imwrite(tmp_path / "deep.png", values)
    assert iio.imread(tmp_path / "deep.png").dtype == np.uint16
    image = read_image(tmp_path / "deep.png")
    np.testing.assert_array_equal(image[0, :4, 0], [0, 1, 128, 255])


def test_palette_images_expand_to_their_colours(tmp_path, photo):
    palette_image = Image.fromarray(photo).quantize(colors=16)
    palette_image.save(tmp_path / "p.png")
    expected = np.asarray(palette_image.convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)


def test_exif_rotated_photos_are_upright(tmp_path):
    stored = np.full((40, 60, 3), 255, np.uint8)
    stored[:20, :30] = (255, 0, 0)  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: display after rotating 90 degrees clockwise
    Image.fromarray(stored).save(tmp_path / "r.jpg", exif=exif, quality=95)
    image = read_image(tmp_path / "r.jpg")
    assert image.shape == (60, 40, 3)
    with Image.open(tmp_path / "r.jpg") as opened:
        np.testing.assert_array_equal(image, np.asarray(ImageOps.exif_transpose(opened)))
    assert image[5, 35, 0] > 200 and image[5, 35, 1] < 60  # red now at the top-right
    assert image[55, 5].min() > 200  # white at the bottom-left


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, r"missing\.jpg: image not found"),
        (lambda p: p.write_bytes(b""), r"missing\.jpg: file is empty"),
        (lambda p: p.write_text("hello, this is not a picture\n"), r"missing\.jpg: not a readable image"),
        (lambda p: p.mkdir(), r"missing\.jpg: is a folder"),
    ],
)
def test_unreadable_files_raise(tmp_path, make, message):
    path = tmp_path / "missing.jpg"
    make(path)
    with pytest.raises(ImageError, match=message):
        read_image(path)


def test_fit_keeps_aspect_ratio_by_centre_cropping(rng):
    wide = np.zeros((300, 600, 3), np.uint8)
    wide[:, 100:500] = 200  # the centred 4:3 region of this 2:1 image
    fitted = fit_image(wide, 400, 300)
    assert fitted.shape == (300, 400, 3)
    assert (fitted == 200).all()  # the black borders were cropped away, not squeezed in
    tall = np.zeros((800, 300, 3), np.uint8)
    tall[287:512] = 90  # the centred 4:3 region: 225 rows
    np.testing.assert_array_equal(fit_image(tall, 400, 300), np.full((300, 400, 3), 90))


def test_fit_leaves_an_image_of_the_right_size_untouched(photo):
    assert fit_image(photo, 60, 40) is photo


def test_images_smaller_than_the_network_allows_raise(tmp_path):
    Image.fromarray(np.zeros((20, 200, 3), np.uint8)).save(tmp_path / "strip.png")
    with pytest.raises(ImageError, match=r"strip\.png: image is 200x20 pixels; .* at least 32x32"):
        load_image(tmp_path / "strip.png")


def test_load_image_gives_the_configured_size(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "x.png")
    image = load_image(tmp_path / "x.png")
    assert image.shape == (CONFIG.IMAGE_HEIGHT, CONFIG.IMAGE_WIDTH, 3) and image.dtype == np.uint8


def test_normalize_subtracts_the_means_and_adds_a_batch_axis(photo):
    normalized = reshape_and_normalize_image(photo)
    assert normalized.shape == (1, 40, 60, 3) and normalized.dtype == np.float64  # the course's dtype
    np.testing.assert_allclose(normalized[0, 3, 4], photo[3, 4] - np.array([123.68, 116.779, 103.939]), atol=1e-4)
    np.testing.assert_array_equal(deprocess_image(normalized), photo)


def test_config_has_the_course_constants():
    assert (CONFIG.IMAGE_WIDTH, CONFIG.IMAGE_HEIGHT, CONFIG.COLOR_CHANNELS, CONFIG.NOISE_RATIO) == (400, 300, 3, 0.6)
    assert CONFIG.MEANS.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(CONFIG.MEANS.ravel(), [123.68, 116.779, 103.939], rtol=1e-7)
    assert CONFIG.VGG_MODEL == "pretrained-model/imagenet-vgg-verydeep-19.mat"
    assert CONFIG.OUTPUT_DIR == "output/"
    with pytest.raises(ValueError):
        CONFIG.MEANS[0, 0, 0, 0] = 0


def test_noise_image_blends_uniform_noise_with_the_content(photo):
    content = reshape_and_normalize_image(photo)
    noisy = generate_noise_image(content, noise_ratio=0.6, seed=7)
    assert noisy.shape == content.shape and noisy.dtype == np.float64  # float32 noise, float64 content
    noise = (noisy - 0.4 * content) / 0.6
    assert noise.min() >= -20 - 1e-3 and noise.max() <= 20 + 1e-3
    assert noise.min() < -19 and noise.max() > 19  # spans the whole range
    assert abs(noise.mean()) < 0.5
    np.testing.assert_array_equal(generate_noise_image(content, seed=7), noisy)
    assert not np.array_equal(generate_noise_image(content, seed=8), noisy)
    np.testing.assert_array_equal(generate_noise_image(content, noise_ratio=0.0), content)


@pytest.mark.parametrize("name", ["out.png", "nested/folder/out.png", "out.jpg"])
def test_save_image_adds_means_clips_and_creates_folders(tmp_path, name):
    image = np.zeros((1, 40, 50, 3), np.float32) - CONFIG.MEANS
    image[0, :10] = 1000.0  # clips to 255
    image[0, 10:20] = -1000.0  # clips to 0
    image[0, 20:] += 77.6  # truncates to 77, as the course's astype does
    save_image(tmp_path / name, image)
    pixels = iio.imread(tmp_path / name)
    tolerance = 0 if name.endswith(".png") else 3
    np.testing.assert_allclose(pixels[:8], 255, atol=tolerance)
    np.testing.assert_allclose(pixels[12:18], 0, atol=tolerance)
    np.testing.assert_allclose(pixels[22:], 77, atol=tolerance)
    assert sorted(os.listdir((tmp_path / name).parent)) == [os.path.basename(name)]  # no temporary left


def test_noise_image_without_a_seed_follows_numpys_global_seed_as_the_course_does(photo):
    content = reshape_and_normalize_image(photo)
    np.random.seed(3)
    first = generate_noise_image(content)
    np.random.seed(3)
    course = np.random.uniform(-20, 20, content.shape).astype("float32") * 0.6 + content * 0.4
    np.testing.assert_array_equal(first, course)
    np.random.seed(3)
    np.testing.assert_array_equal(generate_noise_image(content), first)
    assert not np.array_equal(generate_noise_image(content), first)  # the global generator moved on


def test_normalized_image_keeps_the_courses_float64_values(photo):
    normalized = reshape_and_normalize_image(photo)
    np.testing.assert_array_equal(normalized[0], photo.astype(np.float64) - np.array([123.68, 116.779, 103.939]))

"""Image reading (every common kind), fitting, normalizing, noise and saving."""

import errno
import os
import stat
import subprocess
import sys
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from nst_tf import (
    CONFIG,
    ImageError,
    NSTError,
    deprocess_image,
    fit_image,
    generate_noise_image,
    load_image,
    read_image,
    reshape_and_normalize_image,
    save_image,
    size_for,
)
from nst_tf.tensors.images import SAVE_FORMATS, ImageSize, image_size


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


# ---------------------------------------------------------------------------
# Colour modes, bit depths and transparency: Pillow converts, nothing is guessed from the channel count.


def _smooth(height=48, width=64):
    """An RGB image without sharp edges, so lossy formats and colour conversions keep it close."""
    image = np.empty((height, width, 3), np.uint8)
    image[:, :, 0] = (np.arange(width) * 200 // width + 30)[None, :]
    image[:, :, 1] = (np.arange(height) * 180 // height + 40)[:, None]
    image[:, :, 2] = 150
    return image


@pytest.mark.parametrize(
    "mode, name",
    [("CMYK", "cmyk.jpg"), ("CMYK", "cmyk.tif"), ("YCbCr", "ycbcr.tif"), ("LAB", "lab.tif"), ("RGB", "rgb.tif")],
)
def test_colour_modes_are_converted_to_rgb(tmp_path, mode, name):
    rgb = _smooth()
    Image.fromarray(rgb).convert(mode).save(tmp_path / name, quality=95)
    with Image.open(tmp_path / name) as stored:
        assert stored.mode == mode
        by_pillow = np.asarray(stored.convert("RGB"))
    image = read_image(tmp_path / name)
    np.testing.assert_array_equal(image, by_pillow)
    # The original colours, not the white a CMYK image read as RGBA (K as alpha) used to give.
    assert np.abs(image.astype(int) - rgb).mean() < 4


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_sixteen_bit_samples_scale_to_eight_bits_in_any_container(tmp_path, dtype):
    values = np.tile(np.array([[0, 257, 32896, 65535]], dtype), (32, 8))
    Image.fromarray(values).save(tmp_path / "deep.tif")
    with Image.open(tmp_path / "deep.tif") as stored:
        assert stored.mode == ("I;16" if dtype == np.uint16 else "I")
    image = read_image(tmp_path / "deep.tif")
    np.testing.assert_array_equal(image[0, :4], np.repeat([[0], [1], [128], [255]], 3, axis=1))


def test_float_images_in_zero_to_one_scale_to_eight_bits(tmp_path):
    values = np.tile(np.array([[0.0, 0.25, 0.5, 1.0]], np.float32), (32, 8))
    Image.fromarray(values).save(tmp_path / "float.tif")
    image = read_image(tmp_path / "float.tif")
    np.testing.assert_array_equal(image[5, :4, 1], np.round(np.array([0.0, 0.25, 0.5, 1.0]) * 255))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_images_with_non_finite_pixels_are_refused(tmp_path, bad):
    values = np.full((40, 40), 0.5, np.float32)
    values[3, 4] = bad
    Image.fromarray(values).save(tmp_path / "bad.tif")
    with pytest.raises(ImageError, match=r"bad\.tif: has 1 NaN or infinite pixel values"):
        read_image(tmp_path / "bad.tif")
    Image.fromarray(np.full((40, 40), np.nan, np.float32)).save(tmp_path / "nan.tif")
    with pytest.raises(ImageError, match=r"nan\.tif: has 1,600 NaN or infinite"):
        load_image(tmp_path / "nan.tif")


def test_palette_transparency_is_composited_over_white(tmp_path, photo):
    palette_image = Image.fromarray(photo).quantize(colors=8)
    indices = np.asarray(palette_image)
    palette_image.save(tmp_path / "p.png", transparency=0)  # palette entry 0 is transparent
    with Image.open(tmp_path / "p.png") as stored:
        assert stored.mode == "P" and stored.info["transparency"] == 0
    colours = np.asarray(palette_image.convert("RGB"))
    image = read_image(tmp_path / "p.png")
    assert (indices == 0).any() and (indices != 0).any()
    np.testing.assert_array_equal(image[indices == 0], 255)
    np.testing.assert_array_equal(image[indices != 0], colours[indices != 0])


def test_a_transparent_colour_key_becomes_white(tmp_path, photo):
    key = tuple(int(c) for c in photo[0, 0])
    Image.fromarray(photo).save(tmp_path / "k.png", transparency=key)
    image = read_image(tmp_path / "k.png")
    keyed = (photo == key).all(axis=2)
    np.testing.assert_array_equal(image[keyed], 255)
    np.testing.assert_array_equal(image[~keyed], photo[~keyed])

    gray = np.tile(np.array([[0, 1000, 65535, 500]], np.uint16), (32, 8))
    Image.fromarray(gray).save(tmp_path / "k16.png", transparency=1000)
    image = read_image(tmp_path / "k16.png")
    np.testing.assert_array_equal(image[0, :4, 0], [0, 255, 255, round(500 / 257)])


def test_gray_with_alpha_and_bilevel_images_become_rgb(tmp_path, photo):
    gray, alpha = photo[:, :, 0], photo[:, :, 1]
    Image.fromarray(np.stack([gray, alpha], axis=2)).save(tmp_path / "la.png")
    expected = np.round(gray * (alpha / 255) + 255 * (1 - alpha / 255))
    np.testing.assert_allclose(read_image(tmp_path / "la.png")[:, :, 2], expected, atol=1)

    bits = photo[:, :, 2] > 127
    Image.fromarray(bits).save(tmp_path / "bits.png")
    with Image.open(tmp_path / "bits.png") as stored:
        assert stored.mode == "1"
    np.testing.assert_array_equal(read_image(tmp_path / "bits.png")[:, :, 0], np.where(bits, 255, 0))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(tmp_path, orientation, photo):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(photo).save(tmp_path / "o.jpg", exif=exif, quality=95)
    with Image.open(tmp_path / "o.jpg") as opened:
        expected = np.asarray(ImageOps.exif_transpose(opened))
    np.testing.assert_array_equal(read_image(tmp_path / "o.jpg"), expected)
    assert image_size(tmp_path / "o.jpg") == (expected.shape[1], expected.shape[0])


# ---------------------------------------------------------------------------
# Damaged, huge and reduced images.


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg"])
def test_truncated_files_are_refused(tmp_path, name, rng):
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / name)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(ImageError, match=rf"{name.replace('.', '[.]')}: image file is truncated"):
        read_image(tmp_path / name)
    with pytest.raises(ImageError, match="truncated"):
        load_image(tmp_path / name)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # refused without touching Pillow's global


def test_images_over_pillows_warning_limit_are_read_without_a_warning(tmp_path, monkeypatch):
    Image.fromarray(_smooth(50, 60)).save(tmp_path / "big.png")  # 3,000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # Pillow warns above 2,000 and refuses above 4,000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_image(tmp_path / "big.png"), _smooth(50, 60))
        assert load_image(tmp_path / "big.png", 40, 40).shape == (40, 40, 3)
        assert image_size(tmp_path / "big.png") == (60, 50)


def test_images_over_pillows_hard_limit_are_refused_naming_their_pixel_count(tmp_path, monkeypatch):
    Image.fromarray(_smooth(50, 60)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for read in (read_image, load_image, image_size):
        with pytest.raises(ImageError, match=r"bomb\.png: has 3,000 pixels, over Pillow's limit .*2,000 pixels"):
            read(tmp_path / "bomb.png")


def _large_photo(height, width):
    """A smooth photo-like image built without large temporaries."""
    image = np.empty((height, width, 3), np.uint8)
    image[:, :, 0] = (np.arange(width) * 255 // width).astype(np.uint8)[None, :]
    image[:, :, 1] = (np.arange(height) * 255 // height).astype(np.uint8)[:, None]
    image[:, :, 2] = (np.arange(width) // 97 % 2)[None, :] * 90 + (np.arange(height) // 89 % 2)[:, None] * 90 + 40
    return image


def _opened_images(monkeypatch):
    """Records every image ``Image.open`` returns."""
    opened, real_open = [], Image.open

    def spy(*args, **kwargs):
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(Image, "open", spy)
    return opened


def test_large_jpegs_are_decoded_reduced_for_their_target(tmp_path, monkeypatch):
    Image.fromarray(_large_photo(3000, 4000)).save(tmp_path / "big.jpg", quality=90)
    full = fit_image(read_image(tmp_path / "big.jpg"), 400, 300)
    opened = _opened_images(monkeypatch)
    image = load_image(tmp_path / "big.jpg", 400, 300)
    # 4000x3000 to 400x300 allows 1/5 (keeping twice the target): the decoder's DCT scaling gives 1/4.
    assert [im.size for im in opened] == [(1000, 750)]
    assert image.shape == (300, 400, 3)
    difference = np.abs(image.astype(int) - full)
    assert difference.max() <= 8 and difference.mean() < 1
    reduced = read_image(tmp_path / "big.jpg", target=(400, 300))
    assert reduced.shape == (750, 1000, 3)
    assert read_image(tmp_path / "big.jpg").shape == (3000, 4000, 3)  # no target: full size


def test_large_images_of_other_formats_are_reduced_after_decoding(tmp_path, monkeypatch):
    Image.fromarray(_large_photo(1200, 1600)).save(tmp_path / "big.png")
    full = fit_image(read_image(tmp_path / "big.png"), 200, 150)
    factors, real_reduce = [], Image.Image.reduce

    def spy(self, factor, box=None):
        factors.append(factor)
        return real_reduce(self, factor, box)

    monkeypatch.setattr(Image.Image, "reduce", spy)
    image = load_image(tmp_path / "big.png", 200, 150)
    assert factors == [4]  # 1600x1200 -> 400x300, twice the target
    difference = np.abs(image.astype(int) - full)
    assert difference.max() <= 8 and difference.mean() < 1


def test_reduced_decoding_follows_the_exif_orientation_and_max_size(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated: 1200 wide, 1600 tall
    Image.fromarray(_large_photo(1200, 1600)).save(tmp_path / "turned.jpg", exif=exif, quality=90)
    assert image_size(tmp_path / "turned.jpg") == (1200, 1600)
    image = load_image(tmp_path / "turned.jpg", max_size=100)
    assert image.shape == (100, 75, 3)
    full = read_image(tmp_path / "turned.jpg")
    np.testing.assert_allclose(image, fit_image(full, 75, 100), atol=10)
    assert np.abs(image.astype(int) - fit_image(full, 75, 100)).mean() < 1


def test_image_size_reads_only_the_header(tmp_path, monkeypatch):
    Image.fromarray(_smooth(40, 70)).save(tmp_path / "x.png")
    Image.fromarray(_smooth(50, 33)).save(tmp_path / "x.jpg")

    def no_decoding(self):
        raise AssertionError("image_size decoded the image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert image_size(tmp_path / "x.png") == (70, 40)
    assert image_size(tmp_path / "x.jpg") == (33, 50)
    with pytest.raises(ImageError, match=r"nothing\.png: image not found"):
        image_size(tmp_path / "nothing.png")


# ---------------------------------------------------------------------------
# File names in messages.


@pytest.mark.parametrize("name", ["new\nline.png", "escape\x1b[31mred.png", "tab\there.png", "trailing-space.png "])
def test_file_names_with_control_characters_are_quoted_in_errors(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"not a picture")
    no_extension = tmp_path / name.replace(".png", "")
    attempts = [
        (lambda: read_image(path), path),
        (lambda: load_image(path), path),
        (lambda: image_size(path), path),
        (lambda: read_image(os.fsencode(path)), path),  # bytes paths are shown as text, not b'...'
        (lambda: read_image(tmp_path / "missing" / name), tmp_path / "missing" / name),
        (lambda: save_image(no_extension, np.zeros((1, 40, 40, 3))), no_extension),
    ]
    for attempt, shown in attempts:
        with pytest.raises(ImageError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(repr(str(shown)) + ": "), message
        assert not any(c in message for c in "\n\x1b\t"), message


def test_ordinary_file_names_read_naturally_in_errors(tmp_path):
    (tmp_path / "my photo.jpg").write_bytes(b"")
    with pytest.raises(ImageError) as caught:
        read_image(tmp_path / "my photo.jpg")
    assert str(caught.value) == f"{tmp_path / 'my photo.jpg'}: file is empty"


# ---------------------------------------------------------------------------
# Saving.


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002, 0o000])
def test_saved_images_get_the_permissions_open_would_give(tmp_path, umask):
    previous = os.umask(umask)
    try:
        save_image(tmp_path / "out.png", np.zeros((1, 40, 40, 3)))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "out.png").st_mode) == 0o666 & ~umask


def test_a_replaced_image_keeps_its_permissions(tmp_path):
    (tmp_path / "out.png").write_bytes(b"old")
    os.chmod(tmp_path / "out.png", 0o640)
    save_image(tmp_path / "out.png", np.zeros((1, 40, 40, 3)))
    assert stat.S_IMODE(os.stat(tmp_path / "out.png").st_mode) == 0o640
    assert read_image(tmp_path / "out.png").shape == (40, 40, 3)


def test_saving_through_a_symbolic_link_writes_its_target(tmp_path):
    (tmp_path / "real.png").write_bytes(b"old")
    os.symlink("real.png", tmp_path / "link.png")
    save_image(tmp_path / "link.png", np.zeros((1, 40, 40, 3)) - CONFIG.MEANS)
    assert os.path.islink(tmp_path / "link.png")
    np.testing.assert_array_equal(read_image(tmp_path / "real.png"), 0)


@pytest.mark.parametrize("extension", sorted(SAVE_FORMATS))
def test_every_listed_extension_saves_a_readable_image(tmp_path, extension):
    pixels = np.zeros((40, 48, 3), np.uint8)
    pixels[:20] = (200, 40, 40)
    pixels[20:, :24] = (30, 160, 90)
    save_image(tmp_path / f"out{extension.upper()}", reshape_and_normalize_image(pixels))
    image = read_image(tmp_path / f"out{extension.upper()}")
    if extension in (".jpg", ".jpeg", ".webp"):  # lossy: colours blur only along the edges
        assert image.shape == pixels.shape and np.abs(image.astype(int) - pixels).mean() < 4
    else:
        np.testing.assert_array_equal(image, pixels)
    assert os.listdir(tmp_path) == [f"out{extension.upper()}"]


@pytest.mark.parametrize(
    "name, message",
    [
        ("out", r"out: has no extension to name a format; save_image writes \.png, \.jpg"),
        ("out.xyz", r"out\.xyz: the extension \.xyz names no format; save_image writes \.png"),
    ],
)
def test_saving_without_a_known_extension_raises(tmp_path, name, message):
    with pytest.raises(ImageError, match=message):
        save_image(tmp_path / name, np.zeros((1, 40, 40, 3)))
    assert os.listdir(tmp_path) == []


def test_saving_onto_a_folder_raises_and_leaves_it_alone(tmp_path):
    (tmp_path / "out.png").mkdir()
    (tmp_path / "out.png" / "inside.txt").write_text("mine")
    with pytest.raises(ImageError, match=r"out\.png: is a folder"):
        save_image(tmp_path / "out.png", np.zeros((1, 40, 40, 3)))
    assert os.listdir(tmp_path / "out.png") == ["inside.txt"]
    assert os.listdir(tmp_path) == ["out.png"]


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    (tmp_path / "out.png").write_bytes(b"the previous image")

    def disk_full(self, file, *args, **kwargs):
        file.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(ImageError) as caught:
        save_image(tmp_path / "out.png", np.zeros((1, 40, 40, 3)))
    assert str(caught.value) == f"{tmp_path / 'out.png'}: cannot be saved: {os.strerror(errno.ENOSPC)}"
    assert os.listdir(tmp_path) == ["out.png"]
    assert (tmp_path / "out.png").read_bytes() == b"the previous image"


# ---------------------------------------------------------------------------
# Misuse of the public functions: NSTError naming the argument, never TypeError & co.

PIXELS = np.zeros((40, 40, 3), np.uint8)
NORMALIZED = np.zeros((1, 40, 40, 3))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: read_image(None), "path must be a file path .* got NoneType"),
        (lambda: read_image(3), "path must be a file path .* got int"),
        (lambda: read_image("a\0b.png"), "path .* contains a NUL character"),
        (lambda: read_image("x.png", target=(0, 300)), "target width must be a positive"),
        (lambda: read_image("x.png", target=400), "target must be a .width, height. pair"),
        (lambda: load_image(None), "path must be a file path"),
        (lambda: load_image("x.png", 400.5, 300), "width must be a whole number"),
        (lambda: load_image("x.png", max_size="big"), "max_size must be a whole number"),
        (lambda: load_image("x.png", fit="zoom"), "fit must be one of crop, stretch"),
        (lambda: image_size(None), "path must be a file path"),
        (lambda: fit_image(None, 400, 300), "image must be an array of 8-bit RGB pixels"),
        (
            lambda: fit_image(np.zeros((40, 40)), 400, 300),
            r"image must have shape \(height, width, 3\); got \(40, 40\)",
        ),
        (lambda: fit_image(np.zeros((40, 40, 3)), 400, 300), "image must hold 8-bit pixels .*float64"),
        (lambda: fit_image(PIXELS, 2.5, 300), "width must be a whole number of pixels; got 2.5"),
        (lambda: fit_image(PIXELS, 400, "300"), "height must be a whole number of pixels; got '300'"),
        (lambda: fit_image(PIXELS, True, 300), "width must be a whole number of pixels; got True"),
        (lambda: fit_image(PIXELS, 400, 0), "target size is 400x0 pixels"),
        (lambda: fit_image(PIXELS, 32, 2**20), "a 40x40 image cannot be cropped to 32x1048576: that aspect ratio"),
        (lambda: fit_image(PIXELS, 2**40, 40, "stretch"), "cannot be scaled to 1099511627776x40 pixels: "),
        (lambda: ImageSize(width=20), "width must be a whole number of at least 32; got 20"),
        (lambda: ImageSize(height=2**31), "height must be at most 2147483647"),
        (lambda: ImageSize(max_size=64, shorter_side=64), "max_size and shorter_side: give one of them"),
        (lambda: ImageSize(fit="zoom"), "fit must be one of crop, stretch"),
        (lambda: read_image("x" * 300 + ".png"), r"^x+\.png: cannot be read: File name too long$"),
        (lambda: size_for(300, 400, None), "max_size must be a whole number"),
        (lambda: reshape_and_normalize_image(np.zeros((4, 4))), r"image must have shape \(height, width, 3\)"),
        (lambda: reshape_and_normalize_image([["a", "b", "c"]]), "image must be an array of real numbers"),
        (lambda: reshape_and_normalize_image(None), "image must be an array of real numbers"),
        (lambda: reshape_and_normalize_image(np.full((4, 4, 3), np.nan)), "image holds 48 NaN or infinite"),
        (lambda: deprocess_image(PIXELS), r"image must be a normalized image of shape \(1, height, width, 3\)"),
        (lambda: deprocess_image("x"), "image must be an array of real numbers"),
        (lambda: save_image("out.png", PIXELS), r"shape \(1, height, width, 3\); got \(40, 40, 3\)"),
        (lambda: save_image("out.png", NORMALIZED + np.inf), "image holds 4,800 NaN or infinite"),
        (lambda: save_image(None, NORMALIZED), "path must be a file path"),
        (lambda: generate_noise_image("x"), "content_image must be an array of real numbers"),
        (lambda: generate_noise_image(NORMALIZED + np.nan), "content_image holds"),
    ]
    + [
        (lambda ratio=ratio: generate_noise_image(NORMALIZED, ratio), "noise_ratio must be a number between 0 and 1")
        for ratio in (-0.1, 1.5, np.nan, np.inf, "0.5", True, None)
    ]
    + [
        (lambda seed=seed: generate_noise_image(NORMALIZED, 0.6, seed), "seed must be a non-negative whole number")
        for seed in (True, -1, 2.5, "3", np.float64(3))
    ],
)
def test_misuse_raises_nst_errors_naming_the_argument(call, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NSTError, match=message):
        call()
    assert os.listdir(tmp_path) == []


def test_image_sizes_are_kept_as_python_integers():
    size = ImageSize(np.int64(64), np.int32(48), max_size=np.uint16(100))
    assert (size.width, size.height, size.max_size) == (64, 48, 100)
    assert all(type(value) is int for value in (size.width, size.height, size.max_size))


def test_saving_where_no_folder_can_be_made_raises_naming_the_path(tmp_path):
    (tmp_path / "taken").write_bytes(b"a file, not a folder")
    with pytest.raises(ImageError) as caught:
        save_image(tmp_path / "taken" / "out.png", NORMALIZED)
    shown = tmp_path / "taken"
    assert str(caught.value) == f"{shown / 'out.png'}: cannot create its folder {shown}: {os.strerror(errno.EEXIST)}"
    assert os.listdir(tmp_path) == ["taken"]


def test_noise_seeds_may_be_numpy_integers(photo):
    content = reshape_and_normalize_image(photo)
    np.testing.assert_array_equal(
        generate_noise_image(content, 0.6, np.int64(3)), generate_noise_image(content, 0.6, 3)
    )
    np.testing.assert_array_equal(
        generate_noise_image(content, np.float32(0.25), 4), generate_noise_image(content, 0.25, 4)
    )


@pytest.mark.parametrize("extension", [".jpg", ".png"])
def test_a_file_size_limit_never_publishes_a_cut_image(tmp_path, extension):
    # Pillow's encoders wrote the JPEG through the file descriptor themselves; a full disk (or this
    # limit) cut it short without an error, and the short file was renamed into place as "saved".
    code = (
        "import resource, sys\n"
        "import numpy as np\n"
        "from nst_tf.tensors.images import save_image\n"
        "from nst_tf.ground.errors import ImageError\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
        "noise = np.random.default_rng(0).uniform(-100, 100, (1, 200, 200, 3))\n"
        "try:\n"
        "    save_image(sys.argv[1], noise)\n"
        "except ImageError as error:\n"
        "    print('refused:', error)\n"
    )
    target = tmp_path / f"out{extension}"
    done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: ") and "cannot be saved: File too large" in done.stdout, done.stdout
    assert os.listdir(tmp_path) == []

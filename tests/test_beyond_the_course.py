"""Total variation, L-BFGS, layer choice, colour preservation, any size, several styles."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from nst_tf import (
    CONFIG,
    NSTError,
    StyleTransfer,
    StyleTransferConfig,
    compute_content_cost,
    compute_style_cost,
    load_image,
    stylize,
    total_variation_cost,
)
from nst_tf.cli import main
from nst_tf.colors import match_color_statistics, preserve_luminance, rgb_to_yiq, yiq_to_rgb
from nst_tf.lbfgs import LBFGS


@pytest.fixture
def images(rng):
    y, x = np.mgrid[0:48, 0:64]
    content = np.stack([2 * x, 3 * y, x + y + 40], axis=2).astype(np.float32)[None] - CONFIG.MEANS
    style = rng.normal(0, 40, size=(1, 48, 64, 3)).astype(np.float32)
    return content, style


# Total variation -------------------------------------------------------------


def tv_reference(x, form):
    x = np.float64(x[0])
    if form == "squared":
        return np.sum((x[1:] - x[:-1]) ** 2) + np.sum((x[:, 1:] - x[:, :-1]) ** 2)
    a = (x[:-1, :-1] - x[1:, :-1]) ** 2
    b = (x[:-1, :-1] - x[:-1, 1:]) ** 2
    return np.sum((a + b) ** 1.25)


@pytest.mark.parametrize("form", ["squared", "power"])
@pytest.mark.parametrize("shape", [(1, 5, 7, 3), (1, 32, 20, 1)])
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_total_variation_agrees_with_numpy_reference(form, shape, dtype, rtol, rng):
    x = rng.normal(0, 20, size=shape).astype(dtype)
    value = total_variation_cost(x, form)
    assert value.dtype == tf.as_dtype(dtype) and value.shape == ()
    np.testing.assert_allclose(value.numpy(), tv_reference(x, form), rtol=rtol)
    assert total_variation_cost(np.full(shape, 3.0, dtype), form).numpy() == 0


def test_total_variation_rejects_unknown_forms():
    with pytest.raises(NSTError, match="form must be one of squared, power; got 'cubic'"):
        total_variation_cost(np.zeros((1, 4, 4, 3), np.float32), "cubic")


@pytest.mark.parametrize("form", ["squared", "power"])
def test_tv_weight_adds_to_the_total_and_smooths_the_image(model, images, form):
    def last(tv_weight):
        config = StyleTransferConfig(epochs=20, print_every=20, seed=0, tv_weight=tv_weight, tv_form=form)
        return list(stylize(model, *images, config))[-1]

    plain, smooth = last(0.0), last(1.0)
    assert plain.tv_cost == 0
    assert smooth.total_cost == pytest.approx(
        10 * smooth.content_cost + 40 * smooth.style_cost + 1.0 * smooth.tv_cost, rel=1e-5
    )
    assert float(total_variation_cost(smooth.image, form)) < float(total_variation_cost(plain.image, form))


# L-BFGS ------------------------------------------------------------------------


def test_lbfgs_solves_a_quadratic(rng):
    n = 12
    q = rng.normal(size=(n, n))
    A = q @ q.T + n * np.eye(n)
    b = rng.normal(size=n)
    x = tf.Variable(np.zeros(n, np.float32))
    optimizer = LBFGS(history_size=5)
    optimizer.build([x])
    A_t, b_t = tf.constant(A, tf.float32), tf.constant(b, tf.float32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            f = 0.5 * tf.tensordot(x, tf.linalg.matvec(A_t, x), 1) - tf.tensordot(b_t, x, 1)
        optimizer.apply_gradients([(tape.gradient(f, x), x)])

    for _ in range(40):
        step()
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A, b), rtol=1e-3, atol=1e-4)
    assert int(optimizer.count) == 5 and int(optimizer.iterations) == 40


def test_lbfgs_keeps_one_history_across_reports(model, images):
    def run(print_every):
        config = StyleTransferConfig(epochs=12, print_every=print_every, seed=0, optimizer="lbfgs", lbfgs_history=8)
        transfer = StyleTransfer(model, *images, config)
        reports = list(transfer.run())
        return transfer, reports

    every_step, reports_1 = run(1)
    once, reports_12 = run(12)
    assert len(reports_1) == 12 and len(reports_12) == 2
    np.testing.assert_allclose(every_step.current_image(), once.current_image(), rtol=1e-5, atol=1e-3)
    assert int(every_step.optimizer.count) == 8  # 11 curvature pairs seen, the last 8 kept
    assert reports_1[-1].total_cost < 0.5 * reports_1[0].total_cost


def test_lbfgs_rejects_a_bad_history_size():
    with pytest.raises(NSTError, match="lbfgs_history must be a positive whole number; got 0"):
        StyleTransferConfig(optimizer="lbfgs", lbfgs_history=0)
    with pytest.raises(NSTError, match="optimizer must be one of adam, lbfgs; got 'sgd'"):
        StyleTransferConfig(optimizer="sgd")


# Layer control -------------------------------------------------------------------


def test_content_and_style_layers_can_be_chosen(model, images):
    content, style = images
    layers = (("conv2_2", 0.5), ("avgpool3", 1.5))
    config = StyleTransferConfig(epochs=2, print_every=1, seed=0, content_layer="conv3_2", style_layers=layers)
    for progress in stylize(model, content, style, config):
        G = model(progress.image, layers=["conv3_2", "conv2_2", "avgpool3"])
        a_C = model(content, layers=["conv3_2"])["conv3_2"]
        S = model(style, layers=["conv2_2", "avgpool3"])
        assert progress.content_cost == pytest.approx(float(compute_content_cost(a_C, G["conv3_2"])), rel=1e-4)
        assert progress.style_cost == pytest.approx(float(compute_style_cost(S, G, layers)), rel=1e-4)


# Colours ---------------------------------------------------------------------------


def test_yiq_round_trip(rng):
    rgb = rng.uniform(0, 255, size=(10, 3))
    np.testing.assert_allclose(yiq_to_rgb(rgb_to_yiq(rgb)), rgb, atol=1e-9)
    np.testing.assert_allclose(rgb_to_yiq([[255.0, 255.0, 255.0]]), [[255.0, 0.0, 0.0]], atol=1e-3)


def chroma(image):
    return rgb_to_yiq(np.float64(image) + CONFIG.MEANS)[..., 1:]


def luma(image):
    return rgb_to_yiq(np.float64(image) + CONFIG.MEANS)[..., 0]


def test_luminance_preservation_takes_light_from_the_generated_image_and_colour_from_the_content(images, rng):
    content, _ = images
    generated = rng.normal(0, 30, size=content.shape).astype(np.float32)
    kept = preserve_luminance(generated, content)
    np.testing.assert_allclose(chroma(kept), chroma(content), atol=1e-3)
    np.testing.assert_allclose(luma(kept), luma(generated), atol=1e-3)


def test_histogram_matching_gives_the_style_the_contents_colour_statistics(rng):
    mixing = np.array([[20.0, 5.0, 0.0], [4.0, 12.0, 3.0], [0.0, 6.0, 18.0]])
    content = (rng.normal(size=(1, 48, 64, 3)) @ mixing.T + [120, 110, 100] - CONFIG.MEANS).astype(np.float32)
    style = (rng.normal([150, 60, 90], [20, 10, 15], size=(1, 40, 40, 3)) - CONFIG.MEANS).astype(np.float32)
    matched = match_color_statistics(style, content)
    assert matched.shape == style.shape
    pixels = lambda image: np.float64(image).reshape(-1, 3) + CONFIG.MEANS.reshape(3)  # noqa: E731
    np.testing.assert_allclose(pixels(matched).mean(axis=0), pixels(content).mean(axis=0), atol=0.05)
    np.testing.assert_allclose(np.cov(pixels(matched), rowvar=False), np.cov(pixels(content), rowvar=False), atol=0.5)


@pytest.mark.parametrize("mode", ["luminance", "histogram"])
def test_preserve_colors_brings_the_result_to_the_contents_chroma(model, images, mode, rng):
    content, _ = images
    # A strongly coloured style (orange) that would otherwise tint the result.
    style = (rng.normal([230, 120, 20], 10, size=(1, 48, 64, 3)) - CONFIG.MEANS).astype(np.float32)

    def chroma_error(preserve_colors):
        config = StyleTransferConfig(epochs=30, print_every=30, seed=0, beta=400, preserve_colors=preserve_colors)
        image = list(stylize(model, content, style, config))[-1].image
        return np.abs(chroma(image).mean(axis=(0, 1, 2)) - chroma(content).mean(axis=(0, 1, 2))).sum()

    plain, preserved = chroma_error(None), chroma_error(mode)
    assert preserved < 0.5 * plain
    if mode == "luminance":
        assert preserved < 1e-2


# Any size, several styles --------------------------------------------------------------


def test_max_size_keeps_the_aspect_ratio(tmp_path):
    Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(tmp_path / "wide.png")
    assert load_image(tmp_path / "wide.png", max_size=120).shape == (80, 120, 3)
    Image.fromarray(np.zeros((300, 100, 3), np.uint8)).save(tmp_path / "tall.png")
    assert load_image(tmp_path / "tall.png", max_size=96).shape == (96, 32, 3)


def test_blending_two_styles_weighs_their_costs(model, images, rng):
    content, style_a = images
    style_b = rng.normal(0, 10, size=(1, 40, 40, 3)).astype(np.float32)

    def first(styles, weights):
        config = StyleTransferConfig(epochs=1, seed=0, style_blend_weights=weights)
        return list(stylize(model, content, styles, config))[0]

    alone_a = first(style_a, None)
    np.testing.assert_array_equal(first([style_a, style_b], (1.0, 0.0)).image, alone_a.image)
    mixed = first([style_a, style_b], (0.7, 0.3))
    only_b = first([style_b, style_a], (1.0, 0.0))
    initial = StyleTransfer(model, content, [style_a, style_b], StyleTransferConfig(seed=0, style_blend_weights=(7, 3)))
    start_a = StyleTransfer(model, content, style_a, StyleTransferConfig(seed=0)).costs()[2]
    start_b = StyleTransfer(model, content, style_b, StyleTransferConfig(seed=0)).costs()[2]
    assert initial.costs()[2] == pytest.approx(0.7 * start_a + 0.3 * start_b, rel=1e-5)
    assert not np.array_equal(mixed.image, only_b.image)


def test_blend_weights_must_match_the_style_images(model, images):
    content, style = images
    with pytest.raises(NSTError, match="style_blend_weights has 3 weights for 2 style images"):
        StyleTransfer(model, content, [style, style], StyleTransferConfig(style_blend_weights=(1, 1, 1)))


# The command line ---------------------------------------------------------------------


@pytest.fixture
def files(tmp_path, new_weights_file, rng):
    y, x = np.mgrid[0:60, 0:80]
    Image.fromarray(np.stack([x * 3, y * 4, (x + y) * 2], axis=2).astype(np.uint8)).save(tmp_path / "c.png")
    Image.fromarray(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)).save(tmp_path / "s1.png")
    Image.fromarray(rng.integers(0, 256, (70, 40, 3), dtype=np.uint8)).save(tmp_path / "s2.png")
    return tmp_path, new_weights_file


def base_args(tmp_path, weights):
    return ["--content_image_filename", str(tmp_path / "c.png"), "--model", weights,
            "--output_dir", str(tmp_path / "out"), "--epochs", "3", "--print_every", "2", "--seed", "0"]


def test_cli_runs_every_extra_option_together(files):
    tmp_path, weights = files
    argv = base_args(tmp_path, weights) + [
        "--style_image_filename", str(tmp_path / "s1.png"), str(tmp_path / "s2.png"),
        "--style_blend_weights", "0.7", "0.3", "--max_size", "64", "--tv_weight", "0.5", "--tv_form", "power",
        "--optimizer", "lbfgs", "--lbfgs_history", "4", "--preserve_colors", "luminance",
        "--content_layer", "conv3_1", "--style_layers", "conv1_1:0.5,conv2_1:0.5", "--precision", "bf16",
    ]  # fmt: skip
    assert main(argv) == 0
    with Image.open(tmp_path / "out" / "generated_image.jpg") as image:
        assert image.size == (64, 48)  # 80x60 content, longer side 64


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--style_layers", "conv1_1=0.5"], "argument --style_layers: expected NAME:WEIGHT pairs"),
        (["--style_layers", "conv1_9:1"], "style layer 'conv1_9' is not a VGG-19 layer"),
        (["--content_layer", "fc7"], "content_layer 'fc7' is not a VGG-19 layer"),
        (["--style_blend_weights", "1", "2"], "--style_blend_weights: 2 weights for 1 style images"),
        (["--tv_form", "cubic"], "argument --tv_form: invalid choice: 'cubic'"),
        (["--tv_weight", "-1"], "tv_weight must be zero or more"),
        (["--max_size", "10"], "max_size must be a whole number of at least 32; got 10"),
        (["--optimizer", "sgd"], "argument --optimizer: invalid choice: 'sgd'"),
    ],
)
def test_cli_rejects_bad_extra_options(files, capsys, extra, message):
    tmp_path, weights = files
    assert main(base_args(tmp_path, weights) + ["--style_image_filename", str(tmp_path / "s1.png")] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nst-tf: error: ") and message in err and "\n" not in err

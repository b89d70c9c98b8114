"""Keeping the content's colours (nst_tf/tensors/colors.py), alone and in a run."""

import numpy as np
import pytest

from nst_tf import CONFIG, NSTError, StyleTransferConfig, stylize
from nst_tf.tensors.colors import match_color_statistics, preserve_luminance, rgb_to_yiq, yiq_to_rgb


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

    def pixels(image):
        return np.float64(image).reshape(-1, 3) + CONFIG.MEANS.reshape(3)

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


def test_luminance_preservation_refuses_images_of_two_shapes():
    with pytest.raises(NSTError, match=r"generated and content must have the same shape; got \(1, 40, 40, 3\) and"):
        preserve_luminance(np.zeros((1, 40, 40, 3)), np.zeros((1, 40, 48, 3)))

"""Styles by region (Gatys et al. 2017): guided Gram matrices, masks at each layer's grid, the guided style term in
the whole, tiled and batch objectives and coarse to fine, each checked against NumPy (float64) or the course."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import NSTError, StyleCost, StyleTransfer, StyleTransferConfig, TiledStyleCost
from nst_tf.objective.batch import BatchStyleCost
from nst_tf.objective.terms import GuidedStyleTerm, StyleTerm
from nst_tf.plan.masks import GuidedContent, GuidedStyle, aspect_matches, fit_mask, mask_at_layer
from nst_tf.plan.networks.network_registry import NETWORKS
from nst_tf.runs.coarse_to_fine import CoarseToFine
from nst_tf.tensors.costs import compute_layer_style_cost
from nst_tf.tensors.cs231n import gram_matrix
from nst_tf.tensors.guided import guided_gram_matrix, guided_layer_style_cost, guided_style_loss
from nst_tf.tensors.images import reshape_and_normalize_image
from nst_tf.plan.weights.reader_registry import READERS, read_network_weights
from nst_tf.tensors.modules import MODULES, build_network
import test_seams as seams

VGG = NETWORKS["vgg19"]


def _np_guided_gram(features, mask):
    """sum_p m_p^2 F_p F_p^T in float64, (C, C), of features (1, H, W, C) and mask (H, W)."""
    flat = np.asarray(features, np.float64)[0].reshape(-1, features.shape[-1])
    weights = np.square(np.asarray(mask, np.float64)).reshape(-1, 1)
    return flat.T @ (weights * flat)


@pytest.fixture
def features(rng):
    return rng.normal(0, 1, (1, 6, 7, 5)).astype(np.float32), rng.uniform(0, 1, (6, 7)).astype(np.float32)


# The reference functions -----------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [True, False])
def test_guided_gram_matrix_is_numpys_weighted_gram(features, normalize):
    a, mask = features
    expected = _np_guided_gram(a, mask)
    if normalize:
        expected /= np.sum(np.square(mask, dtype=np.float64)) * a.shape[-1]
    got = guided_gram_matrix(a, mask, normalize=normalize).numpy()[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_an_all_ones_mask_gives_cs231ns_gram_matrix(features):
    a, _ = features
    ones = np.ones(a.shape[1:3], np.float32)
    np.testing.assert_allclose(guided_gram_matrix(a, ones).numpy(), gram_matrix(a).numpy(), rtol=1e-6)


def test_guided_layer_style_cost_is_numpys_and_the_courses_with_all_ones_masks(rng):
    a_S = rng.normal(0, 1, (1, 4, 6, 3)).astype(np.float32)
    a_G = rng.normal(0, 1, (1, 4, 6, 3)).astype(np.float32)
    m_S, m_G = rng.uniform(0, 1, (4, 6)), rng.uniform(0, 1, (4, 6))
    S = _np_guided_gram(a_S, m_S) / np.sum(m_S**2)
    G = _np_guided_gram(a_G, m_G) / np.sum(m_G**2)
    expected = np.sum((S - G) ** 2) / (4 * 3**2)
    assert float(guided_layer_style_cost(a_S, a_G, m_S, m_G)) == pytest.approx(expected, rel=1e-5)
    ones = np.ones((4, 6))
    course = float(compute_layer_style_cost(a_S, a_G))
    assert float(guided_layer_style_cost(a_S, a_G, ones, ones)) == pytest.approx(course, rel=1e-5)


def test_guided_style_loss_is_numpys_weighted_sum(rng):
    feats = {name: rng.normal(0, 1, (1, 5, 4, 3)).astype(np.float32) for name in ("a", "b")}
    masks = [rng.uniform(0, 1, (5, 4)) for _ in range(2)]
    targets = [rng.normal(0, 1, (1, 3, 3)) for _ in range(2)]
    expected = 0.0
    for name, mask, target, weight in zip("ab", masks, targets, (2.0, 0.5)):
        gram = _np_guided_gram(feats[name], mask) / (np.sum(mask**2) * 3)
        expected += weight * np.sum((gram - target[0]) ** 2)
    got = guided_style_loss(feats, ["a", "b"], targets, [2.0, 0.5], masks)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_a_mask_of_other_sizes_is_refused(features):
    a, _ = features
    with pytest.raises(NSTError, match="must have the features'"):
        guided_gram_matrix(a, np.ones((3, 3)))


# Masks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["avg", "max"])
@pytest.mark.parametrize("layer", ["conv1_1", "conv2_1", "conv3_1", "conv5_1"])
def test_a_mask_at_a_layer_has_the_networks_size_and_its_2x2_averages(layer, pooling):
    mask = np.random.default_rng(1).uniform(0, 1, (37, 50)).astype(np.float32)
    at = mask_at_layer(mask, VGG, layer, pooling)
    assert at.shape == tuple(VGG.length(n, layer, pooling) for n in mask.shape)
    if layer == "conv2_1":  # one pooling: each position the mean of its 2x2 block (the odd edge alone or dropped)
        expected = mask[:36, :50].reshape(18, 2, 25, 2).mean(axis=(1, 3))
        np.testing.assert_allclose(at[:18, :25], expected, rtol=1e-6)
        if pooling == "avg":
            np.testing.assert_allclose(at[18], mask[36].reshape(25, 2).mean(axis=1), rtol=1e-6)


def test_erosion_takes_each_3x3_windows_minimum():
    mask = np.ones((8, 8), np.float32)
    mask[4, 4] = 0.0
    eroded = mask_at_layer(mask, VGG, "conv1_1", "avg", erode=True)
    expected = np.ones((8, 8))
    expected[3:6, 3:6] = 0.0
    np.testing.assert_array_equal(eroded, expected)


def test_masks_of_the_images_aspect_ratio_within_one_percent_are_resized():
    assert aspect_matches((300, 400), (600, 800)) and aspect_matches((300, 403), (300, 400))
    assert not aspect_matches((300, 410), (300, 400))
    resized = fit_mask(np.kron(np.eye(2, dtype=np.float32), np.ones((4, 4), np.float32)), 4, 4)
    np.testing.assert_allclose(resized, np.kron(np.eye(2), np.ones((2, 2))))


@pytest.mark.parametrize(
    "mask, message",
    [
        (np.zeros((4, 4)), "is 0 everywhere"),
        (np.full((4, 4), 2.0), r"weights in \[0, 1\]"),
        (np.ones((4, 4, 3)), "must have shape"),
        ("left.png", "must be an array of weights"),
    ],
)
def test_a_guided_style_refuses_a_mask_that_is_not_weights(images, mask, message):
    with pytest.raises(NSTError, match=message):
        GuidedStyle(images[1], mask)


# The term in the objectives --------------------------------------------------------------------


def _costs(objective, image):
    return {name: float(value) for name, value in objective(image).items()}


def _halves(height, width):
    left = np.zeros((height, width), np.float32)
    left[:, : width // 2] = 1.0
    return left


def test_all_ones_guidance_gives_the_courses_style_cost(model, images):
    content, style = images
    config = StyleTransferConfig(tv_weight=1.0)
    image = tf.constant(content + 5.0)
    course = StyleCost(model, content, style, config)
    guided = StyleCost(model, content, GuidedStyle(style, np.ones((3, 4))), config)
    assert isinstance(guided.terms[1], GuidedStyleTerm) and isinstance(course.terms[1], StyleTerm)
    assert _costs(guided, image) == pytest.approx(_costs(course, image), rel=1e-5)


def test_the_guided_style_cost_is_numpys_over_the_regions(model, images, rng):
    content, style = images
    layers = (("conv1_1", 0.7), ("conv2_1", 0.3))
    config = StyleTransferConfig(style_layers=layers, style_blend_weights=(1.0, 3.0))
    left = _halves(48, 64)
    small = rng.normal(0, 40, (1, 32, 40, 3)).astype(np.float32)
    own = rng.uniform(0, 1, (32, 40)).astype(np.float32)
    guides = [GuidedStyle(style, left), GuidedStyle(small, 1 - left, image_mask=own, layers=layers[1:])]
    image = content + 5.0
    got = float(StyleCost(model, content, guides, config)(tf.constant(image))["style"])

    def activations(x, names):
        return {name: a.numpy() for name, a in model(tf.constant(x), layers=list(names)).items()}

    expected = 0.0
    for blend, guide, style_layers in zip((0.25, 0.75), guides, (layers, layers[1:])):
        names = [name for name, _ in style_layers]
        generated, styled = activations(image, names), activations(guide.image, names)
        for name, weight in style_layers:
            m_G = mask_at_layer(guide.mask, VGG, name, "avg")
            own_mask = np.ones(guide.image.shape[1:3]) if guide.image_mask is None else guide.image_mask
            m_S = mask_at_layer(own_mask, VGG, name, "avg")
            S = _np_guided_gram(styled[name], m_S) / np.sum(m_S.astype(np.float64) ** 2)
            G = _np_guided_gram(generated[name], m_G) / np.sum(m_G.astype(np.float64) ** 2)
            expected += blend * weight * np.sum((S - G) ** 2) / (4 * G.shape[0] ** 2)
    assert got == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("keep_forward", [False, True])
def test_guided_styles_cost_the_same_whole_and_in_tiles(model, images, rng, keep_forward):
    content, style = images
    config = StyleTransferConfig(alpha=1e5, tv_weight=1.0)
    ramp = np.broadcast_to(np.linspace(0, 1, 64, dtype=np.float32), (48, 64))
    big = rng.normal(0, 40, (1, 72, 80, 3)).astype(np.float32)
    guides = [GuidedStyle(style, ramp), GuidedStyle(big, 1 - ramp, image_mask=ramp[:36, :40])]
    image = tf.constant(content + 5.0)
    whole = StyleCost(model, content, guides, config)
    tiled = TiledStyleCost(model, content, guides, config, tile_size=32, keep_forward=keep_forward)
    assert len(tiled.tiles) == 4
    (whole_costs, whole_gradient), (tiled_costs, tiled_gradient) = (
        objective.value_and_gradient(image) for objective in (whole, tiled)
    )
    assert {k: float(v) for k, v in tiled_costs.items()} == pytest.approx(
        {k: float(v) for k, v in whole_costs.items()}, rel=1e-4
    )
    np.testing.assert_allclose(tiled_gradient, whole_gradient, atol=1e-4 * np.abs(whole_gradient).max())


def test_a_batch_with_guided_styles_and_content_costs_what_each_image_costs_alone(model, images):
    content, style = images
    config = StyleTransferConfig(alpha=1e5)
    guides = [GuidedStyle(style, _halves(48, 64)), GuidedStyle(style[:, ::-1], 1 - _halves(48, 64))]
    contents = np.concatenate([content, content[:, ::-1]])
    ramp = np.broadcast_to(np.linspace(0, 1, 64, dtype=np.float32), (48, 64))
    batch = BatchStyleCost(model, GuidedContent(contents, ramp), guides, config)(tf.constant(contents + 5.0))
    for i in range(2):
        one = GuidedContent(contents[i : i + 1], ramp)
        alone = _costs(StyleCost(model, one, guides, config), tf.constant(contents[i : i + 1] + 5.0))
        assert {name: float(values[i]) for name, values in batch.items()} == pytest.approx(alone, rel=1e-4)


def test_coarse_to_fine_takes_guided_styles_of_pixels_to_every_size(model, rng):
    content = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    config = StyleTransferConfig(epochs=2, print_every=1, style_layers=(("conv1_1", 1.0),))
    guides = [GuidedStyle(style, _halves(10, 14)), GuidedStyle(style[::-1], 1 - _halves(10, 14))]
    made = []

    def make(model, content, styles, config, size):
        made.append((size, [type(style).__name__ for style in styles]))
        return StyleCost(model, content, styles, config)

    run = CoarseToFine(model, content, guides, config, sizes=[(32, 48), (64, 96)], make_objective=make)
    for _ in run.run():
        pass
    assert made == [((32, 48), ["GuidedStyle"] * 2), ((64, 96), ["GuidedStyle"] * 2)]


def _texture(rng, colour, height, width):
    pixels = np.asarray(colour, np.float32) + rng.normal(0, 25, (height, width, 3))
    return reshape_and_normalize_image(np.clip(pixels, 0, 255).astype(np.uint8), "means").astype(np.float32)


def test_two_masked_textures_paint_their_own_halves_far_more_than_without_masks(model, rng):
    """A grey content image, a red and a blue texture masked to its left and right halves: the red-minus-blue of
    the left half minus the right half's, which masks should make large and a blend leaves near 0."""
    height, width = 32, 48
    red, blue = _texture(rng, (220, 40, 40), height, width), _texture(rng, (40, 60, 220), height, width)
    content = reshape_and_normalize_image(np.full((height, width, 3), 128, np.uint8), "means").astype(np.float32)
    config = StyleTransferConfig(
        epochs=100, seed=1, alpha=1.0, beta=1e3, learning_rate=5.0, style_layers=(("conv1_1", 0.5), ("conv2_1", 0.5))
    )
    left = _halves(height, width)

    def separation(styles):
        objective = StyleCost(model, content, styles, config)
        transfer = StyleTransfer(objective, config)
        for _ in transfer.run():
            pass
        pixels = objective.deprocess(transfer.image).astype(np.float64)
        red_minus_blue = pixels[..., 0] - pixels[..., 2]
        return red_minus_blue[:, : width // 2].mean() - red_minus_blue[:, width // 2 :].mean()

    masked = separation([GuidedStyle(red, left), GuidedStyle(blue, 1 - left)])
    unmasked = separation([red, blue])
    assert masked > 60 and masked > 5 * abs(unmasked), (masked, unmasked)


def test_a_content_mask_weights_the_content_cost_as_numpy_does_whole_and_in_tiles(model, images):
    content, style = images
    config = StyleTransferConfig(content_layer="conv2_2", alpha=1e5, style_layers=(("conv1_1", 1.0),))
    ramp = np.broadcast_to(np.linspace(0, 1, 64, dtype=np.float32), (48, 64))
    image = content + np.random.default_rng(2).normal(0, 10, content.shape).astype(np.float32)
    plain = StyleCost(model, content, style, config)
    ones = StyleCost(model, GuidedContent(content, np.ones((3, 4))), style, config)
    assert _costs(ones, tf.constant(image)) == pytest.approx(_costs(plain, tf.constant(image)), rel=1e-5)

    guided = GuidedContent(content, ramp)
    whole = StyleCost(model, guided, style, config)
    a_C, a_G = (
        model(tf.constant(x), layers=["conv2_2"])["conv2_2"].numpy().astype(np.float64) for x in (content, image)
    )
    m = mask_at_layer(ramp, VGG, "conv2_2", "avg")[None, :, :, None].astype(np.float64)
    expected = np.sum(m**2 * (a_C - a_G) ** 2) / (4 * np.prod(a_G.shape[1:]))
    assert _costs(whole, tf.constant(image))["content"] == pytest.approx(expected, rel=1e-4)
    tiled = TiledStyleCost(model, guided, style, config, tile_size=32)
    (costs, gradient), (tiled_costs, tiled_gradient) = (
        o.value_and_gradient(tf.constant(image)) for o in (whole, tiled)
    )
    assert float(tiled_costs["content"]) == pytest.approx(float(costs["content"]), rel=1e-4)
    np.testing.assert_allclose(tiled_gradient, gradient, atol=1e-4 * np.abs(gradient).max())


def test_retargeting_guided_styles_with_histogram_colours_gives_a_fresh_objectives_costs(model, images):
    content, style = images
    config = StyleTransferConfig(preserve_colors="histogram", style_layers=(("conv1_1", 1.0), ("conv2_1", 1.0)))
    guides = [GuidedStyle(style, _halves(48, 64)), GuidedStyle(style[:, ::-1], 1 - _halves(48, 64))]
    other = content[:, ::-1] * 0.5
    objective = StyleCost(model, content, guides, config)
    objective.retarget(other)
    fresh = StyleCost(model, other, guides, config)
    image = tf.constant(other + 3.0)
    assert _costs(objective, image) == pytest.approx(_costs(fresh, image), rel=1e-5)


@pytest.fixture
def toynet(monkeypatch):
    """tests/test_seams.py's new network, registered for the test."""
    monkeypatch.setitem(NETWORKS, "toynet", seams.TOY)
    monkeypatch.setitem(READERS, "toynet", seams.read_toy_weights)
    monkeypatch.setitem(MODULES, "toynet", seams.ToyNet)
    return build_network("toynet", read_network_weights("toynet", "7"))


def test_styles_by_region_take_a_new_networks_own_geometry_whole_and_in_tiles(toynet, rng):
    """ToyNet's SAME pooling rounds odd sizes up: 40x52 is 10x13 at c3, where its masks must lie."""
    content, style, image = seams._toy_images(rng)
    config = seams._toy_config()
    ramp = np.broadcast_to(np.linspace(0, 1, 52, dtype=np.float32), (40, 52))
    guides = [GuidedStyle(style, ramp, layers=(("c3", 1.0),)), GuidedStyle(style[:, ::-1], 1 - ramp)]
    whole = StyleCost(toynet, content, guides, config)
    assert whole.terms[1].styles[0].masks["c3"].shape == (1, 10, 13, 1)
    tiled = TiledStyleCost(toynet, content, guides, config, tile_size=16)
    assert len(tiled.tiles) == 12
    (costs, gradient), (tiled_costs, tiled_gradient) = (
        c.value_and_gradient(tf.constant(image)) for c in (whole, tiled)
    )
    assert {k: float(v) for k, v in tiled_costs.items()} == pytest.approx(
        {k: float(v) for k, v in costs.items()}, rel=1e-5
    )
    np.testing.assert_allclose(tiled_gradient, gradient, atol=1e-5 * np.abs(gradient).max())

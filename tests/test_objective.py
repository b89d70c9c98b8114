"""StyleCost: the objective of a run, alone and as the loop uses it (nst_tf/objective.py)."""

import numpy as np
import pytest

from nst_tf import (
    NSTError,
    StyleCost,
    StyleTransfer,
    StyleTransferConfig,
    compute_content_cost,
    compute_style_cost,
    stylize,
    total_variation_cost,
)


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
    initial = StyleTransfer(StyleCost(model, content, [style_a, style_b], StyleTransferConfig(seed=0, style_blend_weights=(7, 3))))
    start_a = StyleTransfer(StyleCost(model, content, style_a, StyleTransferConfig(seed=0))).costs()[2]
    start_b = StyleTransfer(StyleCost(model, content, style_b, StyleTransferConfig(seed=0))).costs()[2]
    assert initial.costs()[2] == pytest.approx(0.7 * start_a + 0.3 * start_b, rel=1e-5)
    assert not np.array_equal(mixed.image, only_b.image)


def test_blend_weights_must_match_the_style_images(model, images):
    content, style = images
    with pytest.raises(NSTError, match="style_blend_weights has 3 weights for 2 style images"):
        StyleTransfer(StyleCost(model, content, [style, style], StyleTransferConfig(style_blend_weights=(1, 1, 1))))

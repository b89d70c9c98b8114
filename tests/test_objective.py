"""StyleCost: the objective of a run, alone and as the loop uses it (nst_tf/objective/whole.py)."""

import numpy as np
import pytest
import tensorflow as tf

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
    initial = StyleTransfer(
        StyleCost(model, content, [style_a, style_b], StyleTransferConfig(seed=0, style_blend_weights=(7, 3)))
    )
    start_a = StyleTransfer(StyleCost(model, content, style_a, StyleTransferConfig(seed=0))).costs()["style"]
    start_b = StyleTransfer(StyleCost(model, content, style_b, StyleTransferConfig(seed=0))).costs()["style"]
    assert initial.costs()["style"] == pytest.approx(0.7 * start_a + 0.3 * start_b, rel=1e-5)
    assert not np.array_equal(mixed.image, only_b.image)


def test_blend_weights_must_match_the_style_images(model, images):
    content, style = images
    with pytest.raises(NSTError, match="style_blend_weights has 3 weights for 2 style images"):
        StyleTransfer(StyleCost(model, content, [style, style], StyleTransferConfig(style_blend_weights=(1, 1, 1))))


# The objective alone, and its parts -------------------------------------------------------


def test_the_costs_of_any_image_need_no_optimizer(model, images, rng):
    content, style = images
    image = (content + rng.normal(0, 20, content.shape)).astype(np.float32)
    costs = StyleCost(model, content, style, StyleTransferConfig(tv_weight=0.5))(image)
    J, J_content, J_style, J_tv = (costs[name] for name in ("total", "content", "style", "tv"))
    names = [name for name, _ in StyleTransferConfig().style_layers]
    G = model(image, layers=["conv4_2", *names])
    expected_content = compute_content_cost(model(content, layers=["conv4_2"])["conv4_2"], G["conv4_2"])
    expected_style = compute_style_cost(model(style, layers=names), G)
    np.testing.assert_allclose(float(J_content), float(expected_content), rtol=1e-5)
    np.testing.assert_allclose(float(J_style), float(expected_style), rtol=1e-4)
    np.testing.assert_allclose(float(J_tv), float(total_variation_cost(image)), rtol=1e-5)
    np.testing.assert_allclose(float(J), 10 * float(J_content) + 40 * float(J_style) + 0.5 * float(J_tv), rtol=1e-5)


def test_xla_gives_the_costs_eager_execution_gives(model, images, rng):
    content, style = images
    image = tf.constant((content + rng.normal(0, 20, content.shape)).astype(np.float32))
    cost = StyleCost(model, content, style, StyleTransferConfig())
    eager = cost(image)
    compiled = tf.function(cost, jit_compile=True)(image)
    assert list(compiled) == list(eager) == ["total", "content", "style"]
    for name in eager:
        np.testing.assert_allclose(float(compiled[name]), float(eager[name]), rtol=1e-4)


def test_astype_round_trips(model):
    there_and_back = model.astype(tf.float64).astype(tf.float32)
    assert model.astype(tf.float32) is model
    for a, b in zip(there_and_back.variables, model.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    bf16 = model.astype(tf.bfloat16)
    assert bf16.dtype == tf.bfloat16 and all(v.dtype == tf.bfloat16 for v in bf16.variables)
    for a, b in zip(bf16.variables, model.variables):
        np.testing.assert_array_equal(a.numpy(), tf.cast(b, tf.bfloat16).numpy())
    with pytest.raises(NSTError, match="dtype must be a floating-point type; got int32"):
        model.astype(tf.int32)


def test_a_precision_other_than_the_models_leaves_the_callers_model_alone(model, images):
    cost = StyleCost(model, *images, StyleTransferConfig(precision="bf16"))
    assert cost.model.dtype == tf.bfloat16 and model.dtype == tf.float32


def test_every_choice_list_is_exactly_what_its_dispatch_handles(images):
    from nst_tf.tensors import colors
    from nst_tf.plan.config import COLOR_MODES, OPTIMIZERS, TV_FORMS
    from nst_tf.loop.optimizer_makers import MAKERS, make_optimizer
    from nst_tf.plan.optimizers import OPTIMIZERS as REGISTRY

    assert set(MAKERS) == set(REGISTRY) and tuple(REGISTRY) == OPTIMIZERS

    for name in OPTIMIZERS:
        assert make_optimizer(StyleTransferConfig(optimizer=name)) is not None
    content, style = images
    for mode in COLOR_MODES + (None,):
        assert colors.present(mode, content, content).shape == content.shape
        assert colors.recolor_styles(mode, [style], content)[0].shape == style.shape
    with pytest.raises(NSTError, match="preserve_colors must be None or one of luminance, histogram"):
        colors.present("sepia", content, content)
    for form in TV_FORMS:
        assert float(total_variation_cost(content, form)) > 0


@pytest.mark.parametrize(
    "args, message",
    [
        ((3, "content", "style"), "model must be a VGG19"),
        (("model", None, "style"), "content_image must be a normalized image"),
        (("model", "content", []), "style_image: give at least one style image"),
        (("model", "content", "style", {"alpha": 1}), "config must be a StyleTransferConfig; got dict"),
    ],
)
def test_wrong_arguments_raise_nst_errors_naming_them(model, images, args, message):
    content, style = images
    values = {"model": model, "content": content, "style": style}
    with pytest.raises(NSTError, match=message):
        StyleCost(*[values.get(a, a) if isinstance(a, str) else a for a in args])


def test_the_loop_takes_only_an_objective(model, images):
    with pytest.raises(NSTError, match="objective must be a StyleCost"):
        StyleTransfer(model)
    with pytest.raises(NSTError, match="config must be a StyleTransferConfig"):
        StyleTransfer(StyleCost(model, *images), config="fast")


@pytest.mark.parametrize("seed", [3, np.int64(3), np.uint8(3)])
def test_numpy_integer_seeds_are_accepted(seed):
    assert StyleTransferConfig(seed=seed).seed == 3 and type(StyleTransferConfig(seed=seed).seed) is int


@pytest.mark.parametrize("seed", [True, -1, 2.5, "3"])
def test_other_seeds_are_refused(seed):
    with pytest.raises(NSTError, match="seed must be a non-negative whole number"):
        StyleTransferConfig(seed=seed)

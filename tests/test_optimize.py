"""The optimization loop on synthetic weights."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import (
    NonFiniteCostError,
    NSTError,
    StyleCost,
    StyleTransfer,
    StyleTransferConfig,
    compute_content_cost,
    compute_style_cost,
    generate_noise_image,
    stylize,
    total_cost,
)
from nst_tf.objective.batch import BatchStyleCost
from nst_tf.plan.optimizers import get_optimizer


@pytest.fixture
def images(rng):
    """Noise content and style (overrides conftest's smooth content: every pixel's gradient is large,
    so Adam's first step is far from its epsilon, which the first-step test relies on)."""
    content = rng.normal(0, 40, size=(1, 48, 64, 3)).astype(np.float32)
    style = rng.normal(0, 40, size=(1, 48, 64, 3)).astype(np.float32)
    return content, style


@pytest.mark.parametrize("style_size", [(48, 64), (40, 40)])
def test_total_cost_falls_over_30_steps(model, images, style_size, rng):
    content, _ = images
    style = rng.normal(0, 40, size=(1,) + style_size + (3,)).astype(np.float32)
    config = StyleTransferConfig(epochs=30, print_every=10, seed=0)
    reports = list(stylize(model, content, style, config))
    assert [p.iteration for p in reports] == [0, 10, 20, 29]
    totals = [p.total_cost for p in reports]
    assert totals[-1] < 0.5 * totals[0]
    for p in reports:
        assert p.image.shape == (1, 48, 64, 3)
        assert p.total_cost == pytest.approx(10 * p.content_cost + 40 * p.style_cost, rel=1e-5)


def test_reported_costs_are_those_of_the_reported_image(model, images):
    content, style = images
    config = StyleTransferConfig(epochs=3, print_every=1, seed=1)
    layers = ["conv4_2"] + [name for name, _ in config.style_layers]
    a_C = model(content, layers=["conv4_2"])["conv4_2"]
    S = model(style, layers=layers)
    for progress in stylize(model, content, style, config):
        G = model(progress.image, layers=layers)
        J_content = compute_content_cost(a_C, G["conv4_2"])
        J_style = compute_style_cost(S, G)
        assert progress.content_cost == pytest.approx(float(J_content), rel=1e-4)
        assert progress.style_cost == pytest.approx(float(J_style), rel=1e-4)
        assert progress.total_cost == pytest.approx(float(total_cost(J_content, J_style)), rel=1e-4)


def test_first_step_is_one_adam_step_of_the_course_cost(model, images):
    content, style = images
    config = StyleTransferConfig(epochs=1, seed=2)
    start = generate_noise_image(content, seed=2)
    layers = ["conv4_2"] + [name for name, _ in config.style_layers]
    a_C = model(content, layers=["conv4_2"])["conv4_2"]
    S = model(style, layers=layers)
    image = tf.constant(start)
    with tf.GradientTape() as tape:
        tape.watch(image)
        G = model(image, layers=layers)
        J = total_cost(compute_content_cost(a_C, G["conv4_2"]), compute_style_cost(S, G))
    g = tape.gradient(J, image).numpy().astype(np.float64)
    # Adam's first step: m = 0.1 g, v = 0.001 g^2, lr_t = 2.0 * sqrt(0.001) / 0.1.
    m, v = 0.1 * g, 0.001 * g**2
    expected = start - 2.0 * np.sqrt(1 - 0.999) / (1 - 0.9) * m / (np.sqrt(v) + config.adam_epsilon)
    (progress,) = stylize(model, content, style, config)
    np.testing.assert_allclose(progress.image, expected, rtol=1e-5, atol=1e-3)


def test_steps_between_reports_run_in_one_trace(model, images):
    transfer = StyleTransfer(StyleCost(model, *images, StyleTransferConfig(epochs=25, print_every=7, seed=0)))
    reports = [p.iteration for p in transfer.run()]
    assert reports == [0, 7, 14, 21, 24]
    assert transfer.iteration == 25
    assert transfer._run_steps.experimental_get_tracing_count() == 1


def test_same_seed_gives_the_same_image_and_other_seeds_do_not(model, images):
    def final(seed):
        return list(stylize(model, *images, StyleTransferConfig(epochs=3, seed=seed)))[-1].image

    np.testing.assert_array_equal(final(5), final(5))
    assert not np.array_equal(final(5), final(6))


def test_initial_image_is_used_when_given(model, images):
    content, style = images
    transfer = StyleTransfer(StyleCost(model, content, style, StyleTransferConfig(epochs=1)), initial_image=content)
    np.testing.assert_array_equal(transfer.current_image(), content)
    assert transfer.costs()["content"] == 0


def test_non_finite_cost_stops_the_run_and_keeps_the_last_finite_image(model, images):
    content, style = images
    config = StyleTransferConfig(epochs=50, print_every=10, seed=0, alpha=1e38, beta=1e38)
    transfer = StyleTransfer(StyleCost(model, content, style, config))
    start = transfer.current_image()
    with pytest.raises(NonFiniteCostError, match=r"total cost became NaN or infinite at iteration 0") as caught:
        list(transfer.run())
    np.testing.assert_array_equal(caught.value.last_finite_image, start)
    assert caught.value.iteration == 0


def test_non_finite_cost_midway_keeps_the_image_before_it(model, images):
    content, style = images
    transfer = StyleTransfer(StyleCost(model, content, style, StyleTransferConfig(epochs=40, print_every=10, seed=0)))
    reports = transfer.run()
    next(reports)  # iteration 0
    next(reports)  # iteration 10
    good = transfer.current_image()
    # ReLU maps NaN to 0, so an infinite image alone would not show in the
    # cost; a huge one overflows the squared content difference.
    transfer.image.assign(np.full(content.shape, 1e30, np.float32))
    with pytest.raises(NonFiniteCostError, match="iteration 11") as caught:
        next(reports)
    assert np.isfinite(caught.value.last_finite_image).all()
    np.testing.assert_array_equal(caught.value.last_finite_image, good)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be a positive whole number; got 0"),
        ({"epochs": -3}, "epochs must be a positive whole number; got -3"),
        ({"print_every": 0}, "print_every must be a positive whole number; got 0"),
        ({"learning_rate": 0.0}, "learning_rate must be positive; got 0.0"),
        ({"learning_rate": -1.0}, "learning_rate must be positive"),
        ({"alpha": -1.0}, "alpha must be zero or more; got -1.0"),
        ({"beta": float("nan")}, "beta must be a finite number; got nan"),
        ({"noise_ratio": 1.5}, "noise_ratio must be between 0 and 1"),
        ({"content_layer": "pool4"}, "content_layer 'pool4' is not a VGG-19 layer; valid names: conv1_1"),
        ({"style_layers": [("conv9_1", 1.0)]}, "style layer 'conv9_1' is not a VGG-19 layer"),
        ({"seed": -1}, "seed must be a non-negative whole number"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(NSTError, match=message.replace("(", r"\(").replace(")", r"\)")):
        StyleTransferConfig(**kwargs)


def test_config_defaults_are_the_course_values():
    config = StyleTransferConfig()
    assert (config.epochs, config.print_every, config.learning_rate, config.alpha, config.beta) == (
        200,
        20,
        2.0,
        10,
        40,
    )
    assert (config.noise_ratio, config.content_layer) == (0.6, "conv4_2")
    assert config.style_layers == tuple((f"conv{i}_1", 0.2) for i in range(1, 6))


def test_mismatched_images_raise(model, images):
    content, style = images
    with pytest.raises(NSTError, match=r"content_image must be a normalized image of shape \(1, height, width, 3\)"):
        StyleCost(model, content[0], style)
    with pytest.raises(NSTError, match=r"initial_image has shape \(1, 10, 10, 3\); expected the content's"):
        StyleTransfer(StyleCost(model, content, style), initial_image=np.zeros((1, 10, 10, 3)))


def test_many_short_runs_in_a_row_trace_without_retracing_warnings(model, images):
    # A coarse-to-fine run builds one StyleTransfer per size: TensorFlow warns of "frequent retracing"
    # when the same Python code is traced by calls five times in a row, unless each run traces up front.
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = tf.get_logger()
    logger.addHandler(handler)
    try:
        content, style = images
        for seed in range(7):
            transfer = StyleTransfer(StyleCost(model, content, style, StyleTransferConfig(epochs=2, seed=seed)))
            list(transfer.run())
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if "retracing" in r.getMessage()], [r.getMessage() for r in records]


# What each optimizer supports (nst_tf.plan.optimizers) ------------------------------------------

LBFGS_CONFIG = StyleTransferConfig(optimizer="lbfgs")


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda model, images: StyleTransfer(
                BatchStyleCost(
                    model, np.concatenate([images[0]] * 2), images[1], StyleTransferConfig(optimizer="lbfgs")
                )
            ),
            "a batch objective: L-BFGS keeps one curvature history per run; batches need --optimizer adam",
        ),
        (
            lambda model, images: StyleTransferConfig(optimizer="lbfgs", learning_rate_steps=((5, 1.0),)),
            r"learning_rate_steps: only Adam has a learning rate \(L-BFGS searches its step length\)",
        ),
        (lambda model, images: get_optimizer("sgd"), "optimizer must be one of adam, lbfgs; got 'sgd'"),
    ],
    ids=["batch", "schedule", "unknown"],
)
def test_an_optimizer_is_refused_where_its_description_says_it_does_not_go(model, images, make, message):
    with pytest.raises(NSTError, match=message):
        make(model, images)


def test_the_optimizers_state_is_what_its_description_says(model, images):
    """L-BFGS's memory figure is its description's rows; Adam's image-sized state is in the model's figures."""
    adam, lbfgs = get_optimizer("adam"), get_optimizer("lbfgs")
    assert adam.state_bytes(30, 40, 10) == 0
    assert lbfgs.state_bytes(30, 40, 10) == (2 * 10 + 4) * 3 * 30 * 40 * 4
    transfer = StyleTransfer(StyleCost(model, *images, StyleTransferConfig(optimizer="lbfgs", lbfgs_history=3)))
    held = sum(v.shape.num_elements() * v.dtype.size for v in transfer.optimizer.variables)
    image_bytes = images[0].size * 4
    assert 2 * 3 * image_bytes < held <= lbfgs.state_bytes(*images[0].shape[1:3], 3)

"""Options any run can use, added for CS231n's pipeline: a learning-rate schedule, a clamp before the
steps, the content and Gram normalizers, and the content and uniform starts."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import NSTError, StyleCost, StyleTransfer, StyleTransferConfig
from nst_tf.objective.terms import ContentTerm, StyleTerm
from nst_tf.tensors.images import start_image


def _transfer(model, images, **options):
    content, style = images
    config = StyleTransferConfig(epochs=100, print_every=100, start="content", **options)
    return StyleTransfer(StyleCost(model, content, style, config))


def test_a_learning_rate_schedule_is_the_rate_changed_by_hand_at_its_iteration(model, images):
    scheduled = _transfer(model, images, learning_rate=2.0, learning_rate_steps=((2, 0.25),))
    scheduled.step(4)
    by_hand = _transfer(model, images, learning_rate=2.0)
    by_hand.step(2)
    by_hand.optimizer.learning_rate = 0.25  # Adam keeps its moments, as with the schedule
    by_hand.step(2)
    np.testing.assert_allclose(scheduled.image.numpy(), by_hand.image.numpy(), rtol=0, atol=1e-4)
    unscheduled = _transfer(model, images, learning_rate=2.0)
    unscheduled.step(4)
    assert np.abs(unscheduled.image.numpy() - scheduled.image.numpy()).max() > 0.5


@pytest.mark.parametrize("until", [None, 2])
def test_a_clamp_holds_the_image_before_each_step_until_its_iteration(model, images, until):
    # Adam moves each pixel by about the learning rate a step (a little more when gradients shrink):
    # about 0.25 beyond the clamp while it holds, more once it no longer does.
    transfer = _transfer(model, images, learning_rate=0.25, clamp=(-1.0, 1.0), clamp_until=until)
    content = images[0]
    assert np.abs(content).max() > 10
    transfer.step(2)
    assert np.abs(transfer.image.numpy()).max() <= 1.3
    transfer.step(3)
    beyond = np.abs(transfer.image.numpy()).max()
    if until is None:
        assert beyond <= 1.3
    else:
        assert beyond > 1.4


def test_the_content_normalizer_none_is_the_plain_sum_of_squares(model, images):
    content, style = images
    generated = content + np.float32(7.0)
    config = StyleTransferConfig(alpha=1.0, beta=0.0, content_normalizer="none")
    costs = StyleCost(model, content, style, config)(generated)
    J_content = costs["content"]
    a_C = model(content, layers=["conv4_2"])["conv4_2"].numpy().astype(np.float64)
    a_G = model(generated, layers=["conv4_2"])["conv4_2"].numpy().astype(np.float64)
    expected = np.sum((a_C - a_G) ** 2)
    np.testing.assert_allclose(float(J_content), expected, rtol=1e-4)
    course = StyleCost(model, content, style, dataclasses.replace(config, content_normalizer="layer"))(generated)[
        "content"
    ]
    n_H, n_W, n_C = a_G.shape[1:]
    np.testing.assert_allclose(float(course), expected / (4 * n_H * n_W * n_C), rtol=1e-4)


def test_the_gram_normalizer_is_cs231ns_normalized_gram_distance(model, images):
    content, style = images
    style = style[:, :40, :56]  # another size: each Gram matrix is divided by its own image's sizes
    config = StyleTransferConfig(alpha=0.0, beta=1.0, style_layers=(("conv2_1", 1.0),), style_normalizer="gram")
    J_style = StyleCost(model, content, style, config)(content)["style"]

    def gram(image):
        a = model(image, layers=["conv2_1"])["conv2_1"].numpy().astype(np.float64)[0]
        h, w, c = a.shape
        f = a.reshape(h * w, c)
        return f.T @ f / (h * w * c)

    np.testing.assert_allclose(float(J_style), np.sum((gram(style) - gram(content)) ** 2), rtol=1e-4)


def test_the_content_and_uniform_starts(images):
    content = images[0]
    assert np.array_equal(start_image(content, StyleTransferConfig(start="content")), content)
    noise = start_image(content, StyleTransferConfig(start="uniform", seed=5))
    assert noise.shape == content.shape and noise.dtype == np.float32
    assert 0 <= noise.min() and noise.max() < 1 and noise.std() > 0.25
    assert np.array_equal(noise, start_image(content, StyleTransferConfig(start="uniform", seed=5)))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"learning_rate_steps": ((0, 0.1),)}, "learning_rate_steps iteration must be a positive whole number; got 0"),
        ({"learning_rate_steps": ((5, 0.1), (5, 0.2))}, "iteration must be a whole number of at least 6; got 5"),
        ({"learning_rate_steps": ((5, -1.0),)}, "learning rate from iteration 5 must be positive; got -1.0"),
        ({"learning_rate_steps": "180:0.1"}, "learning_rate_steps must be .iteration, rate. pairs"),
        ({"learning_rate_steps": ((5, 0.1),), "optimizer": "lbfgs"}, "only Adam has a learning rate"),
        ({"clamp": (1.5, -1.5)}, "clamp must have its low bound under its high one; got 1.5:-1.5"),
        ({"clamp": (0.0, float("inf"))}, "clamp bound must be a finite number; got inf"),
        ({"clamp": (0.0, 10**400)}, r"clamp bound must lie within float32's range .*; got 1000000000000"),
        ({"clamp": (-1e39, 1.0)}, r"clamp bound must lie within float32's range .*; got -1e\+39"),
        ({"clamp": (True, 2.0)}, "clamp bound must be a finite number; got True"),
        ({"clamp": (1.0, 1.00000001)}, "clamp must have its low bound under its high one; got 1.0:1.0"),
        ({"clamp": 3}, r"clamp must be a \(low, high\) pair; got 3"),
        ({"clamp_until": -1, "clamp": (0, 1)}, "clamp_until must be a whole number of at least 0; got -1"),
        ({"clamp_until": 5}, r"clamp_until needs clamp \(the range to clamp to"),
        ({"content_normalizer": "cs231n"}, "content_normalizer must be one of layer, none; got 'cs231n'"),
        ({"style_normalizer": "gramm"}, "style_normalizer must be one of layer, image, gram; got 'gramm'"),
    ],
)
def test_the_new_options_refuse_wrong_values_naming_them(options, message):
    with pytest.raises(NSTError, match=message):
        StyleTransferConfig(**options)


def test_the_terms_refuse_unknown_normalizers():
    with pytest.raises(NSTError, match="normalizer must be one of layer, none; got 'x'"):
        ContentTerm("conv4_2", tf.zeros([1, 2, 2, 3]), 1.0, normalizer="x")
    with pytest.raises(NSTError, match="normalizer must be one of layer, image, gram; got 'x'"):
        StyleTerm((("conv1_1", 1.0),), [{}], [1.0], "x", 1.0)

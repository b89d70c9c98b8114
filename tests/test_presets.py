"""Presets: the second edition and the Keras L-BFGS variant, checked against independent Keras pipelines."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import nst_tf
from nst_tf import NSTError, StyleCost, StyleTransfer, StyleTransferConfig, compute_content_cost, compute_style_cost
from nst_tf.app.cli import main
from nst_tf.runs.presets import PRESETS, preset
from reference import content_cost as ref_content_cost
from reference import layer_style_cost as ref_layer_style_cost

SECOND_EDITION_STYLE_LAYERS = [(f"block{b}_conv1", 0.2) for b in range(1, 6)]
SIZE = 64  # the second edition's 400x400, smaller


@pytest.fixture(scope="module")
def keras_vgg(keras_weights_file):
    vgg = tf.keras.applications.VGG19(include_top=False, input_shape=(SIZE, SIZE, 3), weights=keras_weights_file)
    vgg.trainable = False
    return vgg


def course_outputs(vgg, names):
    """The second edition's ``get_layer_outputs``: one Keras model, the named layers' outputs in order."""
    # The course writes [vgg.input]; Keras 3 warns about that structure, so the input goes in alone.
    return tf.keras.Model(vgg.input, [vgg.get_layer(name).output for name in names])


@pytest.fixture
def unit_images(rng):
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    content = np.stack([x / SIZE, y / SIZE, (x + y) / (2 * SIZE)], axis=2)[None].astype(np.float32)
    style = rng.uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
    return content, style


# The second edition's call forms ----------------------------------------------------------


def test_graded_functions_accept_the_second_editions_lists_of_outputs(keras_vgg, unit_images, rng):
    content, style = unit_images
    outputs = course_outputs(keras_vgg, [name for name, _ in SECOND_EDITION_STYLE_LAYERS] + ["block5_conv4"])
    generated = np.clip(content + rng.uniform(-0.25, 0.25, content.shape), 0, 1).astype(np.float32)
    a_C, a_S, a_G = outputs(content), outputs(style), outputs(generated)
    J_content = compute_content_cost(a_C, a_G)
    np.testing.assert_allclose(float(J_content), ref_content_cost(a_C[-1].numpy(), a_G[-1].numpy()), rtol=1e-5)
    J_style = compute_style_cost(a_S, a_G, SECOND_EDITION_STYLE_LAYERS)
    expected = sum(0.2 * ref_layer_style_cost(s.numpy(), g.numpy()) for s, g in zip(a_S[:-1], a_G[:-1]))
    np.testing.assert_allclose(float(J_style), expected, rtol=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a: compute_content_cost([a], a), "must both be non-empty lists of layer outputs"),
        (lambda a: compute_content_cost([], []), "must both be non-empty lists of layer outputs"),
        (lambda a: compute_style_cost([a, a, a], [a, a, a], nst_tf.STYLE_LAYERS), "2 style outputs"),
        (lambda a: compute_style_cost({"conv1_1": a}, nst_tf.STYLE_LAYERS), "the first edition's TF1 call"),
        (lambda a: compute_content_cost("a_C", a), "a_C must be a floating-point tensor|a_C must be a tensor"),
        (lambda a: compute_style_cost(3, {"conv1_1": a}), "style_activations must map layer names"),
    ],
)
def test_wrong_call_forms_raise_nst_errors(call, message):
    with pytest.raises(NSTError, match=message):
        call(tf.ones([1, 4, 4, 3]))


# The second edition's pipeline as a preset -------------------------------------------------


def course_train_steps(vgg, content, style, start, steps):
    """The second edition's train_step, as the course writes it, run ``steps`` times; returns the J values."""
    names = [name for name, _ in SECOND_EDITION_STYLE_LAYERS] + ["block5_conv4"]
    outputs = course_outputs(vgg, names)
    a_C, a_S = outputs(content), outputs(style)
    optimizer = tf.keras.optimizers.Adam(learning_rate=0.01)
    generated_image = tf.Variable(start)

    @tf.function()
    def train_step(generated_image):
        with tf.GradientTape() as tape:
            a_G = outputs(generated_image)
            J_style = compute_style_cost(a_S, a_G, SECOND_EDITION_STYLE_LAYERS)
            J_content = compute_content_cost(a_C, a_G)
            J = nst_tf.total_cost(J_content, J_style, alpha=10, beta=40)
        grad = tape.gradient(J, generated_image)
        optimizer.apply_gradients([(grad, generated_image)])
        generated_image.assign(tf.clip_by_value(generated_image, 0.0, 1.0))
        return J

    return [float(train_step(generated_image)) for _ in range(steps)], generated_image.numpy()


def test_second_edition_preset_takes_the_courses_train_steps(keras_weights_file, keras_vgg, unit_images):
    second = preset("second_edition")
    config = dataclasses.replace(second.config, seed=0)
    model = second.load_model(keras_weights_file)
    content, style = unit_images
    transfer = StyleTransfer(StyleCost(model, content, style, config))
    start = transfer.image.numpy()
    assert start.min() >= 0 and start.max() <= 1 and np.abs(start - content).max() <= 0.25
    ours = []
    for _ in range(3):
        ours.append(transfer.costs()["total"])  # train_step returns the cost before its update
        transfer.step(1)
    course, image = course_train_steps(keras_vgg, content, style, start, 3)
    np.testing.assert_allclose(ours, course, rtol=1e-4)
    # Adam moves each pixel by about lr * sign(gradient), so pixels whose gradient is float noise may
    # go either way in either implementation; the images agree on average, the costs closely.
    assert np.abs(transfer.image.numpy() - image).mean() < 2e-3
    assert transfer.image.numpy().min() >= 0 and transfer.image.numpy().max() <= 1


def test_second_edition_gradient_is_the_courses(keras_weights_file, keras_vgg, unit_images):
    second = preset("second_edition")
    content, style = unit_images
    start = np.clip(content + 0.1, 0, 1)
    cost = StyleCost(second.load_model(keras_weights_file), content, style, second.config)
    costs, gradient = cost.value_and_gradient(tf.constant(start))
    J = costs["total"]
    names = [name for name, _ in SECOND_EDITION_STYLE_LAYERS] + ["block5_conv4"]
    outputs = course_outputs(keras_vgg, names)
    image = tf.constant(start)
    with tf.GradientTape() as tape:
        tape.watch(image)
        a_G = outputs(image)
        J_course = nst_tf.total_cost(
            compute_content_cost(outputs(content), a_G),
            compute_style_cost(outputs(style), a_G, SECOND_EDITION_STYLE_LAYERS),
        )
    expected = tape.gradient(J_course, image).numpy()
    np.testing.assert_allclose(float(J), float(J_course), rtol=1e-5)
    # Max pooling routes the gradient to the larger of nearly equal activations, and which one that is can
    # change with the last bit of a convolution summed in another order: a few per cent of the pixels
    # differ, the gradient as a whole agrees.
    relative = np.linalg.norm(gradient.numpy() - expected) / np.linalg.norm(expected)
    assert relative < 1e-2  # 0.0028 measured


def test_second_edition_preset_loads_images_as_the_course_does(tmp_path):
    Image.fromarray(np.full((300, 500, 3), 255, np.uint8)).save(tmp_path / "wide.png")
    image = preset("second_edition").load_image(tmp_path / "wide.png")
    assert image.shape == (1, 400, 400, 3) and image.dtype == np.float32  # stretched, not cropped
    np.testing.assert_array_equal(image, 1.0)  # [0, 1], no mean subtraction


def test_second_edition_preset_from_the_command_line(workspace, small_keras_weights_file, capsys):
    argv = [
        "--preset",
        "second_edition",
        "--model",
        str(small_keras_weights_file),
        "--content_image_filename",
        str(workspace / "content.png"),
        "--style_image_filename",
        str(workspace / "style.png"),
        "--output_dir",
        str(workspace / "out"),
        "--width",
        "48",
        "--height",
        "40",
        "--epochs",
        "3",
        "--print_every",
        "2",
        "--seed",
        "0",
    ]  # fmt: skip  (option and value on one line)
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["Epoch 0 ", "Epoch 2 "]
    assert sorted(p.name for p in (workspace / "out").iterdir()) == [
        "generated_image.jpg",
        "image_0.jpg",
        "image_2.jpg",
    ]
    with Image.open(workspace / "out" / "image_2.jpg") as saved:
        assert saved.size == (48, 40) and np.asarray(saved).mean() > 20  # [0, 1] pixels saved as 0..255


def test_preset_defaults_show_in_help_and_options_override_them(capsys):
    from nst_tf.app.cli import chosen_preset, build_parser

    second = chosen_preset(["--preset", "second_edition", "--epochs", "7"])
    args = build_parser(second).parse_args(["--preset", "second_edition", "--epochs", "7"])
    assert (args.epochs, args.learning_rate, args.content_layer, args.pooling, args.fit) == (
        7,
        0.01,
        "conv5_4",
        "max",
        "stretch",
    )
    assert args.model.endswith("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert main(["--preset", "second_edition", "-h"]) == 0
    assert "(default: 2501)" in capsys.readouterr().out


def test_unknown_presets_are_refused(capsys):
    assert main(["--preset", "third_edition"]) == 2
    assert "invalid choice: 'third_edition'" in capsys.readouterr().err
    with pytest.raises(NSTError, match="preset must be one of first_edition, second_edition, keras_lbfgs"):
        preset("third_edition")


def test_the_first_edition_preset_is_the_default():
    assert PRESETS["first_edition"].config == StyleTransferConfig()
    assert PRESETS["first_edition"].size == nst_tf.ImageSize()


# The Keras L-BFGS variant as a preset -------------------------------------------


def keras_lbfgs_objective(vgg, style_bgr, combination_bgr):
    """The Keras L-BFGS notebook's loss, written as it writes it, on Caffe-preprocessed (BGR) images."""
    style_bgr, combination_bgr = (tf.constant(x, tf.float32) for x in (style_bgr, combination_bgr))
    height, width = style_bgr.shape[1:3]
    layers = ["block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4"]
    outputs = course_outputs(vgg, layers)

    def gram_matrix(x):
        features = tf.reshape(tf.transpose(x, (2, 0, 1)), [x.shape[2], -1])
        return tf.matmul(features, tf.transpose(features))

    def style_loss(style, combination):
        S, C = gram_matrix(style), gram_matrix(combination)
        channels, size = 3, height * width
        return tf.reduce_sum(tf.square(S - C)) / (4.0 * (channels**2) * (size**2))

    loss = 0.0
    for s, c in zip(outputs(style_bgr), outputs(combination_bgr)):
        loss += (5.0 / len(layers)) * style_loss(s[0], c[0])
    x = combination_bgr
    a = tf.square(x[:, : height - 1, : width - 1, :] - x[:, 1:, : width - 1, :])
    b = tf.square(x[:, : height - 1, : width - 1, :] - x[:, : height - 1, 1:, :])
    return float(loss + 0.2 * tf.reduce_sum(tf.pow(a + b, 1.25)))


def test_keras_lbfgs_preset_computes_the_keras_lbfgs_notebooks_objective(keras_weights_file, keras_vgg, rng):
    variant = preset("keras_lbfgs")
    model = variant.load_model(keras_weights_file)
    pixels = [rng.uniform(0, 255, (1, SIZE, SIZE, 3)) for _ in range(3)]
    content, style, generated = (nst_tf.reshape_and_normalize_image(p[0]) for p in pixels)
    ours = float(StyleCost(model, content, style, variant.config)(generated.astype(np.float32))["total"])
    caffe = tf.keras.applications.vgg19.preprocess_input  # RGB 0..255 -> BGR minus each channel's mean
    theirs = keras_lbfgs_objective(keras_vgg, caffe(pixels[1].copy()), caffe(pixels[2].copy()))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    # Where nst_tf deliberately differs: that notebook subtracts the blue mean from red and the red one from
    # blue before reversing the channels. Its value for the same pictures is then another number.
    wrong = [p.copy() for p in pixels]
    for p in wrong:
        p[..., 0] -= 103.939
        p[..., 1] -= 116.779
        p[..., 2] -= 123.68
    theirs_as_written = keras_lbfgs_objective(keras_vgg, wrong[1][..., ::-1], wrong[2][..., ::-1])
    assert not np.isclose(ours, theirs_as_written, rtol=1e-3)


def test_keras_lbfgs_preset_starts_from_the_content_and_lowers_the_cost(small_keras_weights_file, rng):
    variant = preset("keras_lbfgs")
    model = variant.load_model(small_keras_weights_file)
    content, style = (nst_tf.reshape_and_normalize_image(rng.uniform(0, 255, (40, 40, 3))) for _ in range(2))
    config = dataclasses.replace(variant.config, epochs=8, print_every=4)
    transfer = StyleTransfer(StyleCost(model, content, style, config))
    np.testing.assert_allclose(transfer.image.numpy(), content.astype(np.float32))
    before = transfer.costs()["total"]
    reports = list(transfer.run())
    assert reports[-1].total_cost < before and reports[-1].content_cost == 0 or config.alpha == 0

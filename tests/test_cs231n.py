"""CS231n's style-transfer functions (nst_tf.tensors.cs231n) against NumPy, and their argument checks."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import NSTError
from nst_tf.tensors.cs231n import (
    content_loss,
    deprocess,
    extract_features,
    gram_matrix,
    preprocess,
    rel_error,
    style_loss,
    tv_loss,
)
from nst_tf.plan.networks.squeezenet import LAYERS, random_squeezenet_weights
from nst_tf.tensors.squeezenet_module import SqueezeNet

DTYPES = [np.float32, np.float64]
SHAPES = [(1, 5, 7, 3), (1, 16, 16, 64), (2, 9, 4, 10), (1, 1, 1, 1)]
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def np_rel_error(x, y):
    """CS231n's, as the assignment defines it."""
    x, y = np.float64(x), np.float64(y)
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


def np_gram(features, normalize=True):
    features = np.float64(features)
    n, h, w, c = features.shape
    gram = np.einsum("nhwc,nhwd->ncd", features, features)
    return gram / (h * w * c) if normalize else gram


def _activation(rng, shape, dtype):
    """ReLU-like activations: non-negative, so Gram entries add without cancelling."""
    return np.abs(rng.normal(0, 1, shape)).astype(dtype)


# The losses -----------------------------------------------------------------------------------------


@pytest.mark.numeric
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_content_loss_is_the_weighted_sum_of_squares(rng, shape, dtype):
    current, original = _activation(rng, shape, dtype), _activation(rng, shape, dtype)
    expected = 6e-2 * np.sum((np.float64(current) - original) ** 2)
    got = content_loss(6e-2, tf.constant(current), original)
    assert got.dtype == dtype and got.shape == ()
    assert np_rel_error(got.numpy(), expected) < 1e-5
    assert np_rel_error(content_loss(tf.constant(6e-2, tf.float64), current, original), expected) < 1e-5


@pytest.mark.numeric
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("normalize", [True, False])
def test_gram_matrix_is_normalized_by_the_layers_size(rng, shape, dtype, normalize):
    features = _activation(rng, shape, dtype)
    got = gram_matrix(tf.constant(features), normalize=normalize)
    assert got.dtype == dtype and got.shape == (shape[0], shape[3], shape[3])
    assert np_rel_error(got.numpy(), np_gram(features, normalize)) < 1e-5


@pytest.mark.numeric
def test_gram_matrix_works_traced_with_unknown_sizes(rng):
    features = _activation(rng, (1, 11, 6, 8), np.float32)
    traced = tf.function(gram_matrix, input_signature=[tf.TensorSpec([None, None, None, 8])])
    assert np_rel_error(traced(features).numpy(), np_gram(features)) < 1e-5


@pytest.mark.numeric
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("as_dict", [False, True])
def test_style_loss_sums_the_weighted_gram_differences(rng, dtype, as_dict):
    shapes = [(1, 12, 10, 64), (1, 6, 5, 128), (1, 6, 5, 128), (1, 3, 3, 256), (1, 3, 3, 256)]
    feats = [_activation(rng, shape, dtype) for shape in shapes]
    layers, weights = [1, 2, 4], [300000.0, 1000.0, 15.0]
    targets = [np_gram(_activation(rng, shapes[i], dtype)).astype(dtype) for i in layers]
    expected = sum(w * np.sum((np_gram(feats[i]) - t) ** 2) for i, w, t in zip(layers, weights, targets))
    given = {str(i): f for i, f in enumerate(feats)} if as_dict else [tf.constant(f) for f in feats]
    got = style_loss(given, layers, [tf.constant(t) for t in targets], weights)
    assert got.dtype == dtype and got.shape == ()
    assert np_rel_error(got.numpy(), expected) < 1e-5


@pytest.mark.numeric
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 5, 7, 3), (1, 48, 64, 3), (1, 1, 9, 3), (2, 4, 4, 3)])
def test_tv_loss_sums_squared_neighbour_differences(rng, shape, dtype):
    img = rng.normal(0, 1, shape).astype(dtype)
    x = np.float64(img)
    expected = 2e-2 * (np.sum((x[:, 1:] - x[:, :-1]) ** 2) + np.sum((x[:, :, 1:] - x[:, :, :-1]) ** 2))
    got = tv_loss(tf.constant(img), 2e-2)
    assert got.dtype == dtype and got.shape == ()
    assert np_rel_error(got.numpy(), expected) < 1e-5


@pytest.mark.numeric
@pytest.mark.parametrize("dtype", DTYPES)
def test_rel_error_is_cs231ns(rng, dtype):
    x = rng.normal(0, 1, (4, 5)).astype(dtype)
    y = (x + rng.normal(0, 1e-3, x.shape)).astype(dtype)
    got = rel_error(tf.constant(x), y)
    assert got.dtype == tf.float64
    assert float(got) == pytest.approx(np_rel_error(x, y), rel=1e-12)
    assert float(rel_error(x, x)) == 0.0 and float(rel_error(np.zeros(3), np.zeros(3))) == 0.0
    assert float(rel_error(1.0, 3.0)) == pytest.approx(0.5)
    assert float(rel_error(np.zeros(2), 1e-9)) == pytest.approx(0.1)  # the 1e-8 floor


@pytest.mark.numeric
def test_the_losses_work_traced_and_give_gradients(rng):
    img = tf.Variable(rng.normal(0, 1, (1, 24, 20, 3)).astype(np.float32))
    model = SqueezeNet(random_squeezenet_weights(2))
    content_target = extract_features(tf.constant(img), model)[3]
    style_targets = [gram_matrix(f) for f in extract_features(tf.constant(rng.normal(0, 1, (1, 30, 30, 3))), model)]

    @tf.function
    def loss():
        feats = extract_features(img, model)
        return (
            content_loss(5e-2, feats[3], content_target)
            + style_loss(feats, [1, 4, 6, 7], [style_targets[i] for i in (1, 4, 6, 7)], [20000, 500, 12, 1])
            + tv_loss(img, 5e-2)
        )

    with tf.GradientTape() as tape:
        value = loss()
    gradient = tape.gradient(value, img)
    assert np.isfinite(float(value)) and np.isfinite(gradient.numpy()).all()
    assert np.abs(gradient.numpy()).max() > 0


def test_extract_features_lists_the_13_layers_in_order(rng):
    model = SqueezeNet(random_squeezenet_weights(2))
    image = rng.normal(0, 1, (1, 33, 40, 3)).astype(np.float32)
    feats = extract_features(image, model)
    by_name = model(image)
    assert len(feats) == 13
    for feature, name in zip(feats, LAYERS):
        np.testing.assert_array_equal(feature.numpy(), by_name[name].numpy())


# preprocess and deprocess ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, size, expected",
    [
        ((40, 60, 3), 20, (1, 20, 30, 3)),
        ((60, 40, 3), 20, (1, 30, 20, 3)),
        ((37, 50, 3), 24, (1, 24, 32, 3)),  # int(24 * 50 / 37) = 32
        ((50, 37, 3), 24, (1, 32, 24, 3)),
        ((30, 30, 3), 64, (1, 64, 64, 3)),
        ((45, 77, 3), 45, (1, 45, 77, 3)),
    ],
)
def test_preprocess_resizes_the_shorter_side(rng, shape, size, expected):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    got = preprocess(image, size)
    assert got.dtype == tf.float32 and tuple(got.shape) == expected


@pytest.mark.numeric
def test_preprocess_normalizes_as_torchvision_and_deprocess_inverts_it(rng):
    image = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    normalized = preprocess(tf.constant(image), 23)
    expected = (image / 255.0 - MEAN) / STD
    assert np_rel_error(normalized.numpy()[0], expected) < 1e-5
    np.testing.assert_array_equal(deprocess(normalized, should_rescale=False).numpy(), image)
    np.testing.assert_array_equal(deprocess(normalized[0], should_rescale=False).numpy(), image)


def test_preprocess_resizes_like_a_smooth_image_should(rng):
    y, x = np.mgrid[0:64, 0:96]
    image = np.stack([x * 2, y * 3, x + y], axis=2).astype(np.uint8)
    half = deprocess(preprocess(image, 32), should_rescale=False).numpy().astype(int)
    assert half.shape == (32, 48, 3)
    # A linear ramp stays that ramp at half the size: each pixel the mean of the 2x2 it replaces (but at
    # the edges, where the filter is cut), within rounding.
    pixels = image.astype(float)
    means = (pixels[0::2, 0::2] + pixels[1::2, 0::2] + pixels[0::2, 1::2] + pixels[1::2, 1::2]) / 4
    assert np.abs(half[1:-1, 1:-1] - means[1:-1, 1:-1]).max() <= 1


def test_deprocess_rescales_to_the_full_range_by_default(rng):
    img = rng.normal(0, 0.1, (1, 8, 9, 3)).astype(np.float32)
    pixels = deprocess(img).numpy()
    assert pixels.dtype == np.uint8 and pixels.shape == (8, 9, 3)
    assert (pixels.min(), pixels.max()) == (0, 255)
    gray = np.broadcast_to((0.5 - MEAN) / STD, (1, 4, 4, 3)).astype(np.float32)
    assert (deprocess(gray).numpy() == 0).all()  # a constant image: no division by zero
    assert (deprocess(gray, should_rescale=False).numpy() == 128).all()


def test_preprocess_works_traced_with_unknown_sizes(rng):
    traced = tf.function(
        lambda image: preprocess(image, 16), input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)]
    )
    assert tuple(traced(rng.integers(0, 256, (20, 50, 3), dtype=np.uint8)).shape) == (1, 16, 40, 3)
    assert tuple(traced(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).shape) == (1, 16, 16, 3)


# Wrong arguments ------------------------------------------------------------------------------------

F = np.ones((1, 4, 4, 8), np.float32)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: content_loss(1.0, F, F[:, :2]), r"content_current and content_original must have the same shape"),
        (lambda: content_loss(1.0, F, np.float64(F)), "must have the same dtype; got float32 and float64"),
        (
            lambda: content_loss(1.0, F[0], F[0]),
            r"content_current must have shape \(1, H_l, W_l, C_l\); got \(4, 4, 8\)",
        ),
        (lambda: content_loss(1.0, np.ones((1, 2, 2, 3), np.int32), F), "content_current must be a floating-point"),
        (lambda: content_loss("1", F, F), "content_weight must be a number or a scalar tensor; got '1'"),
        (lambda: content_loss(True, F, F), "content_weight must be a number or a scalar tensor; got True"),
        (lambda: content_loss([1.0, 2.0], F, F), "content_weight must be a number or a scalar tensor"),
        (lambda: content_loss(1.0, object(), F), "content_current must be a tensor or array; got object"),
        (lambda: gram_matrix(F[0]), r"features must have shape \(N, H, W, C\); got \(4, 4, 8\)"),
        (lambda: gram_matrix(F, normalize="yes"), "normalize must be True or False; got 'yes'"),
        (
            lambda: gram_matrix(np.ones((1, 2, 2, 2), np.uint8)),
            "features must be a floating-point tensor; got dtype uint8",
        ),
        (lambda: tv_loss(F[0], 1.0), r"img must have shape \(1, H, W, 3\); got \(4, 4, 8\)"),
        (lambda: tv_loss(F, None), "tv_weight must be a number or a scalar tensor; got None"),
        (lambda: rel_error("a", 1.0), "x must hold real numbers; got dtype string"),
        (lambda: rel_error(np.ones(3), np.ones(4)), r"x and y must have broadcastable shapes; got \(3\) and \(4\)"),
    ],
)
def test_wrong_arguments_are_refused_naming_them(call, message):
    with pytest.raises(NSTError, match=message):
        call()


G = np.ones((1, 8, 8), np.float32)


@pytest.mark.parametrize(
    "args, message",
    [
        (("feats", [0], [G], [1.0]), "feats must be a list or dict of activations; got str"),
        (([F], 0, [G], [1.0]), "style_layers must be a list or tuple; got int"),
        (([F], [0], G, [1.0]), "style_targets must be a list or tuple; got ndarray"),
        (([F], [], [], []), "style_layers: give at least one layer"),
        (([F], [0], [G, G], [1.0]), "one entry per layer; got 1, 2 and 1"),
        (([F], [1], [G], [1.0]), r"style_layers\[0\] must be an index into feats' 1 activations; got 1"),
        (([F], ["0"], [G], [1.0]), r"style_layers\[0\] must be an index into feats' 1 activations; got '0'"),
        (({"a": F}, [3], [G], [1.0]), r"style_layers\[0\] = 3: feats has no such layer \(it holds a\)"),
        (([F], [0], [G[:, :4]], [1.0]), r"the Gram matrix of layer 0 and style_targets\[0\] must have the same shape"),
        (([F], [0], [np.float64(G)], [1.0]), "must have the same dtype; got float32 and float64"),
        (([F], [0], [G], ["w"]), r"style_weights\[0\] must be a number or a scalar tensor; got 'w'"),
    ],
)
def test_style_loss_refuses_wrong_arguments_naming_them(args, message):
    with pytest.raises(NSTError, match=message):
        style_loss(*args)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: preprocess(np.zeros((8, 8, 3), np.float32), 4), "image must hold uint8 pixels; got dtype float32"),
        (lambda: preprocess(np.zeros((8, 8), np.uint8), 4), r"image must have shape \(H, W, 3\); got \(8, 8\)"),
        (
            lambda: preprocess(np.zeros((8, 8, 3), np.uint8), 0),
            "size must be a whole number of pixels from 1 to 32768; got 0",
        ),
        (lambda: preprocess(np.zeros((8, 8, 3), np.uint8), 4.0), "size must be a whole number of pixels from 1"),
        (lambda: preprocess(np.zeros((8, 8, 3), np.uint8), 2**31), "from 1 to 32768; got 2147483648"),
        (lambda: preprocess(np.zeros((0, 0, 3), np.uint8), 32), r"image holds no pixels; got shape \(0, 0, 3\)"),
        (
            lambda: content_loss(10**400, np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3))),
            "content_weight must be a number a",
        ),
        (lambda: deprocess(np.zeros((2, 4, 4, 3), np.float32)), r"img must have shape \(1, H, W, 3\) or \(H, W, 3\)"),
        (lambda: deprocess(np.zeros((4, 4, 3), np.float32), 1), "should_rescale must be True or False; got 1"),
        (lambda: deprocess(np.zeros((4, 4, 3), np.uint8)), "img must be a floating-point tensor; got dtype uint8"),
        (lambda: extract_features(F, len), "cnn must be an nst_tf network module"),
    ],
)
def test_the_helpers_refuse_wrong_arguments_naming_them(call, message):
    with pytest.raises(NSTError, match=message):
        call()


def test_a_style_layer_that_is_no_name_or_index_is_one_error():
    features = tf.zeros((1, 4, 4, 3))
    with pytest.raises(NSTError, match=r"style_layers\[0\] must be a layer name or index; got \[3\]"):
        style_loss({"3": features}, [[3]], [tf.zeros((1, 3, 3))], [1.0])

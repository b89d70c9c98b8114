"""Video's building blocks: optical flow, Ruder's consistency weights, the TF warp and the temporal term."""

import sys

import numpy as np
import pytest
import tensorflow as tf

import reference
from nst_tf import NSTError, StyleCost, StyleTransferConfig, TiledStyleCost, temporal_cost
from nst_tf.objective.terms import TemporalTerm
from nst_tf.plan.clip import probe
from nst_tf.tensors.flow import consistency_weights, flow_between, long_term_weights
from nst_tf.tensors.warp import warp

cv2 = pytest.importorskip("cv2")  # the test extra installs it: this never skips under the README's command


def _texture(height, width, seed=0):
    """A smooth random texture (blurred noise): something optical flow can follow, uint8 RGB."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (height, width, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).astype(np.uint8)


def _shifted(big, dy, dx, height, width, margin=16):
    """The window of ``big`` at (margin - dy, margin - dx): its content moved by (dy, dx) against (margin, margin)."""
    return big[margin - dy : margin - dy + height, margin - dx : margin - dx + width]


# Optical flow ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("dy, dx", [(0, 3), (-2, 4), (3, -1)])
def test_flow_recovers_a_known_translation_within_half_a_pixel(method, dy, dx):
    big = _texture(128, 160)
    previous, current = _shifted(big, 0, 0, 96, 128), _shifted(big, dy, dx, 96, 128)
    # current[p] = previous[p - (dy, dx)]: the flow from current to previous is -(dx, dy) everywhere.
    backward = flow_between(current, previous, method)
    interior = backward[12:-12, 12:-12].reshape(-1, 2)
    assert np.abs(np.median(interior, axis=0) - [-dx, -dy]).max() < 0.5
    assert np.mean(np.linalg.norm(interior - [-dx, -dy], axis=1) < 0.5) > 0.9
    forward = flow_between(previous, current, method)
    assert np.abs(np.median(forward[12:-12, 12:-12].reshape(-1, 2), axis=0) - [dx, dy]).max() < 0.5


def test_flow_refuses_what_it_cannot_compare():
    frame = _texture(32, 32)
    with pytest.raises(NSTError, match="--flow must be one of dis, farneback"):
        flow_between(frame, frame, "lucas")
    with pytest.raises(NSTError, match="the DIS preset must be one of ultrafast, fast, medium"):
        flow_between(frame, frame, preset="slow")
    with pytest.raises(NSTError, match="the frames' sizes differ"):
        flow_between(frame, frame[:16])
    with pytest.raises(NSTError, match="frame a must be uint8"):
        flow_between(frame.astype(np.float32), frame)


@pytest.mark.parametrize(
    "extra, call, named",
    [
        ("cv2", lambda: flow_between(_texture(32, 32), _texture(32, 32)), "OpenCV"),
        ("imageio_ffmpeg", lambda: probe("clip.mp4"), "imageio-ffmpeg"),
    ],
)
def test_a_missing_video_extra_is_one_line_naming_what_to_install(monkeypatch, extra, call, named):
    monkeypatch.setitem(sys.modules, extra, None)  # as if not installed: importing it raises ImportError
    with pytest.raises(NSTError, match=rf'^video needs {named}: pip install "nst_tf\[video\]" \(or pip install'):
        call()


# Consistency weights -----------------------------------------------------------------------------


def _uniform(height, width, dx, dy):
    return np.broadcast_to(np.float32([dx, dy]), (height, width, 2)).copy()


def test_weights_mark_the_disoccluded_border_and_not_the_interior():
    # The content moves 4 pixels right: frame t's 4 left columns come from outside frame t-1.
    backward, forward = _uniform(20, 30, -4, 0), _uniform(20, 30, 4, 0)
    weights = consistency_weights(backward, forward)
    assert weights.dtype == np.float32 and weights.shape == (20, 30)
    assert np.all(weights[:, :4] == 0) and np.all(weights[:, 4:] == 1)


def test_weights_are_zero_where_the_flows_disagree_and_on_motion_boundaries():
    backward, forward = _uniform(20, 30, -2, 0), _uniform(20, 30, 2, 0)
    forward[5:10, 10:20] = [-3, 5]  # frame t-1's pixels there went elsewhere: what frame t shows came out of hiding
    weights = consistency_weights(backward, forward)
    assert np.all(weights[5:10, 12:22] == 0) and weights[15, 25] == 1
    # A still background beside a region moving 6 pixels down: the boundary between them is not trusted.
    backward, forward = np.zeros((20, 30, 2), np.float32), np.zeros((20, 30, 2), np.float32)
    backward[:, 15:, 1], forward[:, 15:, 1] = -6, 6
    boundary = consistency_weights(backward, forward)
    assert np.all(boundary[8:, 14:16] == 0) and np.all(boundary[8:, :12] == 1) and np.all(boundary[8:, 18:] == 1)


def test_long_term_weights_count_a_frame_only_where_no_nearer_one_is_trusted():
    ones, zeros = np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)
    half = np.float32([[1, 0, 1], [0, 0, 1]])
    result = long_term_weights({4: ones, 1: half, 2: ones})
    np.testing.assert_array_equal(result[1], half)
    np.testing.assert_array_equal(result[2], 1 - half)
    np.testing.assert_array_equal(result[4], zeros)


def test_consistency_weights_refuse_mismatched_flows():
    with pytest.raises(NSTError, match=r"the flows must both have shape \(H, W, 2\)"):
        consistency_weights(np.zeros((4, 5, 2)), np.zeros((4, 6, 2)))


# The warp ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_warp_matches_a_numpy_bilinear_reference(rng, dtype):
    image = rng.normal(0, 50, (2, 9, 11, 3))
    flow = rng.uniform(-3, 3, (2, 9, 11, 2))
    got = warp(tf.constant(image, dtype), tf.constant(flow, dtype))
    assert got.dtype == dtype
    for b in range(2):
        np.testing.assert_allclose(got[b], reference.warp(image[b], flow[b]), rtol=1e-5, atol=1e-3)


def test_warp_by_the_backward_flow_brings_the_previous_frame_onto_the_current(rng):
    previous = rng.normal(0, 1, (1, 10, 12, 3)).astype(np.float32)
    current = np.roll(previous, 2, axis=2)  # moved 2 columns right
    flow = np.zeros((1, 10, 12, 2), np.float32)
    flow[..., 0] = -2
    np.testing.assert_allclose(warp(previous, flow)[:, :, 2:], current[:, :, 2:], atol=1e-6)


def test_warp_works_in_tf_function_with_unknown_sizes(rng):
    traced = tf.function(warp, input_signature=[tf.TensorSpec([1, None, None, 3]), tf.TensorSpec([1, None, None, 2])])
    image, flow = rng.normal(0, 1, (1, 6, 7, 3)), rng.uniform(-1, 1, (1, 6, 7, 2))
    np.testing.assert_allclose(traced(image, flow), warp(image, flow), atol=1e-6)


def test_warp_refuses_shapes_that_do_not_match():
    with pytest.raises(NSTError, match="does not match the image's"):
        warp(tf.zeros((1, 4, 5, 3)), tf.zeros((1, 4, 6, 2)))
    with pytest.raises(NSTError, match=r"warp needs an image \(B, H, W, C\) and a flow \(B, H, W, 2\)"):
        warp(tf.zeros((4, 5, 3)), tf.zeros((4, 5, 2)))


@pytest.mark.parametrize("dtype, width", [(tf.bfloat16, 600), (tf.float16, 2100)])
def test_warp_places_pixels_of_wide_low_precision_images_as_float32_does(rng, dtype, width):
    # bfloat16 counts whole numbers exactly only to 256, float16 to 2048: positions are float32.
    image = rng.normal(0, 50, (1, 4, width, 3)).astype(np.float32)
    flow = np.zeros((1, 4, width, 2), np.float32)
    flow[..., 0] = -3
    got = warp(tf.constant(image, dtype), flow)
    assert got.dtype == dtype
    expected = tf.cast(tf.constant(image, dtype), tf.float32)[:, :, :-3]  # each pixel from 3 columns left
    np.testing.assert_array_equal(tf.cast(got, tf.float32)[:, :, 3:], expected)


def test_warp_takes_a_nan_displacement_as_none(rng):
    image = rng.normal(0, 1, (1, 5, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(warp(image, np.full((1, 5, 6, 2), np.nan, np.float32)), image)


def test_library_calls_with_wrong_arguments_are_one_nst_error(rng):
    frame = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    with pytest.raises(NSTError, match="warp needs a floating image; got uint8"):
        warp(np.zeros((1, 4, 5, 3), np.uint8), np.zeros((1, 4, 5, 2), np.float32))
    with pytest.raises(NSTError, match=r"optical flow \(dis\) failed on frames of 8x8: "):
        flow_between(frame, frame)
    with pytest.raises(NSTError, match="H and W at least 2"):
        consistency_weights(np.zeros((1, 1, 2)), np.zeros((1, 1, 2)))
    with pytest.raises(NSTError, match=r"the weights of frame -2 have shape \(3, 3\); the nearer ones \(4, 4\)"):
        long_term_weights({1: np.ones((4, 4)), 2: np.ones((3, 3))})
    with pytest.raises(NSTError, match="warped holds 2 frames and weights 1; they must match"):
        temporal_cost(tf.zeros((1, 4, 5, 3)), tf.zeros((2, 4, 5, 3)), tf.zeros((1, 4, 5, 1)))
    for weight, message in ((-1.0, "at least 0"), (float("nan"), "a finite number"), (1e300, "float32's range")):
        with pytest.raises(NSTError, match=f"temporal_weight must .*{message}"):
            TemporalTerm((4, 5), weight)


# The temporal term -------------------------------------------------------------------------------


def test_temporal_cost_matches_the_reference_and_is_zero_for_the_warped_frame(rng):
    image = rng.normal(0, 30, (1, 5, 6, 3))
    warped = rng.normal(0, 30, (3, 5, 6, 3))
    weights = rng.integers(0, 2, (3, 5, 6)).astype(np.float64)
    got = temporal_cost(tf.constant(image), tf.constant(warped), tf.constant(weights[..., None]))
    np.testing.assert_allclose(got, reference.temporal_cost(image[0], warped, weights), rtol=1e-12)
    only_first = weights[..., None] * np.float64([1, 0, 0])[:, None, None, None]
    same = temporal_cost(tf.constant(warped[:1]), tf.constant(warped), tf.constant(only_first))
    assert float(same) == 0.0


def test_temporal_cost_gradient_matches_finite_differences(rng):
    warped = tf.constant(rng.normal(0, 1, (2, 4, 5, 3)))
    weights = tf.constant(rng.uniform(0, 1, (2, 4, 5, 1)))
    image = rng.normal(0, 1, (1, 4, 5, 3))
    theoretical, numerical = tf.test.compute_gradient(lambda x: temporal_cost(x, warped, weights), [image])
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-9)


def test_temporal_cost_refuses_other_shapes():
    with pytest.raises(NSTError, match=r"warped must have shape \(K, 4, 5, 3\) and dtype float32"):
        temporal_cost(tf.zeros((1, 4, 5, 3)), tf.zeros((1, 4, 6, 3)), tf.zeros((1, 4, 5, 1)))
    with pytest.raises(NSTError, match=r"weights must have shape \(K, 4, 5, 1\)"):
        temporal_cost(tf.zeros((1, 4, 5, 3)), tf.zeros((1, 4, 5, 3)), tf.zeros((1, 4, 5, 3)))


def test_the_temporal_term_adds_its_weighted_cost_to_j_and_is_zero_until_assigned(model, images, rng):
    content, style = images
    config = StyleTransferConfig(seed=0)
    term = TemporalTerm(content.shape[1:3], weight=50.0, count=3)
    plain = StyleCost(model, content, style, config)
    timed = StyleCost(model, content, style, config, extra_terms=[term])
    image = tf.constant(content + rng.normal(0, 5, content.shape).astype(np.float32))
    assert float(timed(image)["total"]) == float(plain(image)["total"])
    previous = content + rng.normal(0, 5, content.shape).astype(np.float32)
    weights = rng.integers(0, 2, content.shape[:3]).astype(np.float32)
    term.assign(previous, weights)
    expected = reference.temporal_cost(image[0].numpy(), previous, weights)
    np.testing.assert_allclose(float(term.image_cost(image)), expected, rtol=1e-5)
    np.testing.assert_allclose(float(timed(image)["total"]), float(plain(image)["total"]) + 50 * expected, rtol=1e-5)
    with pytest.raises(NSTError, match="the temporal term takes up to 3 frames"):
        term.assign(np.zeros((4, *content.shape[1:])), np.zeros((4, *content.shape[1:3])))


def test_the_temporal_terms_gradient_is_the_same_whole_and_tiled(model, rng):
    content = rng.normal(0, 40, (1, 64, 80, 3)).astype(np.float32)
    style = rng.normal(0, 40, (1, 48, 48, 3)).astype(np.float32)
    config = StyleTransferConfig(seed=0)
    gradients = []
    for tiled in (False, True):
        term = TemporalTerm((64, 80), weight=1e3)
        term.assign(content + 3.0, np.ones((1, 64, 80), np.float32))
        if tiled:
            cost = TiledStyleCost(model, content, style, config, tile_size=32, extra_terms=[term])
        else:
            cost = StyleCost(model, content, style, config, extra_terms=[term])
        costs, gradient = cost.value_and_gradient(tf.Variable(content))
        assert list(costs) == ["total", "content", "style", "temporal"]
        gradients.append((float(costs["total"]), gradient.numpy()))
    np.testing.assert_allclose(gradients[1][0], gradients[0][0], rtol=1e-4)
    np.testing.assert_allclose(gradients[1][1], gradients[0][1], rtol=1e-3, atol=1e-3 * np.abs(gradients[0][1]).max())


def test_extra_terms_must_be_image_terms(model, images):
    content, style = images
    with pytest.raises(NSTError, match="extra_terms must be image terms"):
        StyleCost(model, content, style, extra_terms=[object()])

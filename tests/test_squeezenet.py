"""SqueezeNet 1.1 (CS231n's network): its description, its tf.Module against NumPy, and its normalization."""

import math

import numpy as np
import pytest
import tensorflow as tf

import nst_tf.plan.config
from nst_tf import NSTError, StyleCost, StyleTransferConfig
from nst_tf.tensors.images import deprocess_image, pixel_range, reshape_and_normalize_image
from nst_tf.plan.memory import MemoryModel
from nst_tf.plan.tiles import TilePlan
from nst_tf.plan.networks.network_registry import NETWORKS, SQUEEZENET_NETWORK, get_network
from nst_tf.plan.networks.squeezenet import FIRES, LAYERS, MIN_IMAGE_SIZE, SqueezeNetWeights, random_squeezenet_weights
from nst_tf.tensors.squeezenet_module import SqueezeNet
from nst_tf.tensors.modules import build_network

#: (height, width) of the images compared with NumPy: every layer sees odd and even sizes among them.
SIZES = [(17, 17), (18, 21), (33, 47), (64, 64), (97, 130)]


@pytest.fixture(scope="module")
def weights():
    return random_squeezenet_weights(seed=5)


@pytest.fixture(scope="module")
def squeezenet(weights):
    return build_network(SQUEEZENET_NETWORK, weights)


def _image(height, width, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (1, height, width, 3)).astype(np.float32)


# A NumPy SqueezeNet, as torchvision computes it (NCHW there, HWC here) ------------------------------


def _conv(x, weight, bias, stride=1, padding=0):
    """PyTorch's Conv2d on x (H, W, C_in) with an OIHW kernel, in float64."""
    x = np.pad(np.float64(x), ((padding, padding), (padding, padding), (0, 0)))
    k = weight.shape[2]
    rows, columns = (x.shape[0] - k) // stride + 1, (x.shape[1] - k) // stride + 1
    out = np.zeros((rows, columns, weight.shape[0])) + bias
    for dy in range(k):
        for dx in range(k):
            window = x[dy : dy + stride * (rows - 1) + 1 : stride, dx : dx + stride * (columns - 1) + 1 : stride]
            out += np.einsum("hwi,oi->hwo", window, np.float64(weight[:, :, dy, dx]))
    return out


def _ceil_pool_size(n):
    """PyTorch's pooling_output_shape for kernel 3, stride 2, no padding, ceil_mode=True."""
    out = math.ceil((n - 3) / 2) + 1
    if (out - 1) * 2 >= n:  # the last window must start inside the input
        out -= 1
    return out


def _max_pool(x):
    rows, columns = _ceil_pool_size(x.shape[0]), _ceil_pool_size(x.shape[1])
    out = np.zeros((rows, columns, x.shape[2]))
    for i in range(rows):
        for j in range(columns):
            out[i, j] = x[2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max(axis=(0, 1))
    return out


def _fire(x, params, index):
    def conv_relu(y, part, padding=0):
        prefix = f"features.{index}.{part}"
        return np.maximum(_conv(y, params[f"{prefix}.weight"], params[f"{prefix}.bias"], padding=padding), 0)

    squeezed = conv_relu(x, "squeeze")
    return np.concatenate([conv_relu(squeezed, "expand1x1"), conv_relu(squeezed, "expand3x3", padding=1)], axis=2)


def numpy_squeezenet(image, params):
    """The 13 activations of torchvision's squeezenet1_1().features for image (H, W, 3), by index."""
    outputs, x = [], image
    for index in range(13):
        if index == 0:
            x = _conv(x, params["features.0.weight"], params["features.0.bias"], stride=2)
        elif index == 1:
            x = np.maximum(x, 0)
        elif index in FIRES:
            x = _fire(x, params, index)
        else:
            x = _max_pool(x)
        outputs.append(x)
    return outputs


def _relative_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


# The module -----------------------------------------------------------------------------------------


@pytest.mark.numeric
@pytest.mark.parametrize("height, width", SIZES)
def test_every_layer_is_torchvisions_at_float32_rounding(squeezenet, weights, height, width, strict_float32):
    image = _image(height, width, seed=height)
    expected = numpy_squeezenet(image[0], weights.params)
    got = squeezenet(image, layers=[str(i) for i in range(13)])
    for index, name in enumerate(LAYERS):
        activation = got[str(index)].numpy()
        assert activation.shape == (1,) + expected[index].shape, name
        assert _relative_error(activation[0], expected[index]) < 2e-6, name


def test_names_and_indices_give_the_same_tensors(squeezenet):
    image = _image(40, 52)
    by_name = squeezenet(image)
    by_index = squeezenet(image, layers=[str(i) for i in range(13)] + ["input"])
    assert tuple(by_name) == ("input",) + LAYERS
    assert list(by_index) == [str(i) for i in range(13)] + ["input"]
    for index, name in enumerate(LAYERS):
        np.testing.assert_array_equal(by_index[str(index)].numpy(), by_name[name].numpy())
    both = squeezenet(image, layers=["fire2", "3"])
    assert set(both) == {"fire2", "3"} and both["fire2"] is both["3"]


def test_the_channels_are_torchvisions():
    out = SqueezeNet(random_squeezenet_weights(1))(_image(17, 17))
    channels = {name: int(a.shape[-1]) for name, a in out.items()}
    assert channels == {
        "input": 3,
        **{"conv1": 64, "relu_conv1": 64, "pool1": 64, "fire2": 128, "fire3": 128, "pool3": 128},
        **{"fire4": 256, "fire5": 256, "pool5": 256, "fire6": 384, "fire7": 384, "fire8": 512, "fire9": 512},
    }


def test_the_description_knows_the_modules_sizes(squeezenet):
    # Every size from the smallest to 80 on one axis, through a traced call of unknown size.
    sizes = tf.function(
        lambda image: [tf.shape(a)[1] for a in squeezenet(image, layers=list(LAYERS)).values()],
        input_signature=[tf.TensorSpec([1, None, 17, 3])],
    )
    for height in range(MIN_IMAGE_SIZE, 81):
        got = [int(n) for n in sizes(tf.zeros([1, height, 17, 3]))]
        assert got == [SQUEEZENET_NETWORK.length(height, name, "max") for name in LAYERS], height


def test_lengths_follow_pytorchs_formulas():
    network = SQUEEZENET_NETWORK
    for n in range(0, 300):
        conv = (n - 3) // 2 + 1 if n >= 3 else 0
        assert network.length(n, "conv1", "max") == network.length(n, "1", "max") == conv
        pool = _ceil_pool_size(conv) if conv >= 2 else 0
        assert network.length(n, "pool1", "max") == pool == (conv // 2 if conv >= 2 else 0)
    assert network.length(16, "fire9", "max") == 0
    assert network.length(17, "fire9", "max") == network.length(17, "12", "max") == 1
    assert (network.length(224, "fire9", "max"), network.length(192, "pool3", "max")) == (13, 23)


def test_the_smallest_image_is_17_pixels_and_smaller_ones_are_refused_in_one_line(squeezenet):
    assert SQUEEZENET_NETWORK.min_image_size == MIN_IMAGE_SIZE == 17
    assert squeezenet(_image(17, 17), layers=["fire9"])["fire9"].shape == (1, 1, 1, 512)
    for height, width in [(16, 40), (40, 16), (3, 3)]:
        with pytest.raises(NSTError, match=r"image is \d+x\d+ pixels; SqueezeNet 1.1's .* need at least 17x17") as e:
            squeezenet(_image(height, width))
        assert "\n" not in str(e.value)


@pytest.mark.numeric
def test_it_runs_traced_with_the_eager_values_and_gradients(squeezenet, strict_float32):
    image = tf.constant(_image(45, 38))

    def loss(x):
        out = squeezenet(x, layers=["relu_conv1", "7", "fire9"])
        return sum(tf.reduce_sum(tf.square(a)) for a in out.values())

    def value_and_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = loss(x)
        return value, tape.gradient(value, x)

    traced = tf.function(value_and_gradient, input_signature=[tf.TensorSpec([1, None, None, 3])])
    (value, gradient), (traced_value, traced_gradient) = value_and_gradient(image), traced(image)
    assert np.isfinite(gradient.numpy()).all() and np.abs(gradient.numpy()).max() > 0
    assert float(traced_value) == pytest.approx(float(value), rel=1e-6)
    assert _relative_error(traced_gradient, gradient) < 1e-5
    # The gradient is the loss's: a central difference along it agrees.
    step = 1e-3 * gradient / tf.norm(gradient)
    slope = (float(loss(image + step)) - float(loss(image - step))) / (2 * float(tf.norm(step)))
    assert slope == pytest.approx(float(tf.norm(gradient)), rel=2e-2)


@pytest.mark.numeric
def test_float64_computes_the_same_network(squeezenet):
    image = _image(33, 40)
    reference = squeezenet(image, layers=["fire9"])["fire9"].numpy()
    as64 = squeezenet.astype(tf.float64)
    assert as64.dtype == tf.float64 and squeezenet.astype("float32") is squeezenet
    assert _relative_error(as64(image, layers=["12"])["12"], reference) < 1e-5


def test_float16_computes_the_same_network_at_its_precision(squeezenet):
    # Not "numeric": oneDNN held to AVX2 has no float16 convolution (.ci/run's reruns).
    image = _image(33, 40)
    reference = squeezenet(image, layers=["fire9"])["fire9"].numpy()
    half = squeezenet.astype(tf.float16)(image, layers=["12"])["12"]
    assert half.dtype == tf.float16 and _relative_error(half, reference) < 2e-2


def test_lean_gradient_is_accepted_and_changes_nothing(squeezenet):
    image = _image(20, 20)
    plain, lean = (squeezenet(image, layers=["pool3"], lean_gradient=lean)["pool3"] for lean in (False, True))
    np.testing.assert_array_equal(plain.numpy(), lean.numpy())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m(np.zeros((1, 20, 20, 3)), layers=["fire10"]), "layer 'fire10' is not a SqueezeNet 1.1 layer"),
        (lambda m: m(np.zeros((1, 20, 20, 3)), layers=["13"]), "valid names: conv1, relu_conv1, .*; or their"),
        (lambda m: m(np.zeros((1, 20, 20, 3)), layers="fire2"), "layers must be a list of layer names"),
        (lambda m: m(np.zeros((20, 20, 3))), r"image must have shape \(1, height, width, 3\)"),
        (lambda m: m(np.zeros((1, 20, 20, 4))), r"image must have shape \(1, height, width, 3\)"),
        (lambda m: m(object()), "image must be an array or tensor of shape"),
        (lambda m: m("image"), "image must hold real numbers; got dtype string"),
        (lambda m: m.astype(tf.int32), "dtype must be a floating-point type; got int32"),
    ],
)
def test_wrong_calls_are_refused_naming_the_argument(squeezenet, call, message):
    with pytest.raises(NSTError, match=message):
        call(squeezenet)


def _damaged(weights, key, value):
    params = dict(weights.params)
    if value is None:
        del params[key]
    else:
        params[key] = value
    return SqueezeNetWeights(params, "synthetic", "<test>")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda w: _damaged(w, "features.4.expand3x3.weight", None), "weights lack features.4.expand3x3.weight"),
        (
            lambda w: _damaged(w, "features.0.weight", np.zeros((3, 3, 3, 64), np.float32)),
            r"features.0.weight is float32 of shape \(3, 3, 3, 64\); SqueezeNet 1.1's is .* \(64, 3, 3, 3\)",
        ),
        (lambda w: _damaged(w, "features.3.squeeze.bias", np.zeros(16, np.int32)), "features.3.squeeze.bias is int32"),
        (lambda w: {"features.0.weight": 1}, "weights must be a SqueezeNetWeights; got dict"),
    ],
)
def test_weights_of_another_network_are_refused(weights, make, message):
    with pytest.raises(NSTError, match=message):
        SqueezeNet(make(weights))


def test_its_kernels_are_transposed_once_and_kept_as_constants(weights):
    model = SqueezeNet(weights)
    kernel = model._params["features.6.expand3x3.weight"]
    assert not kernel.trainable and not model.trainable_variables
    np.testing.assert_array_equal(kernel.numpy(), weights.params["features.6.expand3x3.weight"].transpose(2, 3, 1, 0))
    assert len(model.variables) == 50  # 25 convolutions, features only


def test_only_max_pooling_is_offered(weights):
    with pytest.raises(NSTError, match="pooling must be one of 'max'; got 'avg'"):
        SqueezeNet(weights, pooling="avg")
    assert build_network(SQUEEZENET_NETWORK, weights).pooling == "max"


# The description ------------------------------------------------------------------------------------


def test_it_is_registered_with_cs231ns_defaults():
    network = get_network("squeezenet")
    assert NETWORKS["squeezenet"] is network is SQUEEZENET_NETWORK
    assert network.normalizations == ("imagenet",) and network.poolings == ("max",)
    assert network.canonical(network.content_layer) == network.canonical("3") == "fire2"
    assert [network.canonical(str(i)) for i in (1, 4, 6, 7)] == [name for name, _ in network.style_layers]
    assert [w for _, w in network.style_layers] == [20000, 500, 12, 1]
    assert dict(network.aliases) == {str(i): name for i, name in enumerate(LAYERS)}


def test_names_and_indices_are_one_vocabulary():
    network = SQUEEZENET_NETWORK
    for index, name in enumerate(LAYERS):
        network.check_layer("content_layer", str(index))
        assert network.canonical(str(index)) == network.canonical(name) == name
        assert network.stride(str(index)) == network.stride(name)
    assert [network.stride(name) for name in LAYERS] == [2, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16, 16, 16]
    assert network.deepest(["3", "fire5", "1"]) == "fire5"
    assert network.deepest(["fire2", "8"]) == "8"
    with pytest.raises(NSTError, match="style layer 'conv4_1' is not a SqueezeNet 1.1 layer; valid names: conv1, "):
        network.check_layer("style layer", "conv4_1")
    with pytest.raises(NSTError, match="layer 3 is not a SqueezeNet 1.1 layer"):
        network.canonical(3)


def test_it_is_not_tiled_and_says_so_in_one_line():
    with pytest.raises(NSTError, match="SqueezeNet 1.1 cannot be computed in tiles"):
        TilePlan.of(["fire2"], 64, network="squeezenet")
    with pytest.raises(NSTError, match="SqueezeNet 1.1 has no tile geometry: its unpadded stride-2") as e:
        SQUEEZENET_NETWORK.margin(["fire2"])
    assert "\n" not in str(e.value)
    assert not SQUEEZENET_NETWORK.tileable


def test_its_memory_figures_feed_the_estimates():
    model = MemoryModel("squeezenet")
    assert model.whole(300, 400) > model.runtime() > 0
    growth = model.whole(300, 401) - model.whole(300, 400)
    assert growth == pytest.approx(300 * 1.1 * SQUEEZENET_NETWORK.pixel_bytes, abs=2)


def test_vgg19_is_described_as_before():
    vgg = get_network("vgg19")
    assert vgg.aliases == () and vgg.canonical("conv4_2") == "conv4_2"
    with pytest.raises(NSTError, match=r"^layer '3' is not a VGG-19 layer; valid names: conv1_1, .*avgpool5$"):
        vgg.check_layer("layer", "3")


# Its normalization and the objective ----------------------------------------------------------------


@pytest.mark.numeric
def test_the_imagenet_normalization_is_torchvisions_and_inverts_exactly():
    pixels = np.arange(256 * 3, dtype=np.uint16).reshape(16, 16, 3).astype(np.uint8)
    normalized = reshape_and_normalize_image(pixels, "imagenet")
    mean, std = np.float32([0.485, 0.456, 0.406]), np.float32([0.229, 0.224, 0.225])
    assert normalized.dtype == np.float32 and normalized.shape == (1, 16, 16, 3)
    np.testing.assert_allclose(normalized[0], (pixels / 255.0 - mean) / std, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(deprocess_image(normalized, "imagenet"), pixels)
    low, high = pixel_range("imagenet")
    assert low.shape == high.shape == (1, 1, 1, 3)
    np.testing.assert_array_equal(low, reshape_and_normalize_image(np.zeros((1, 1, 3), np.uint8), "imagenet"))
    np.testing.assert_array_equal(high, reshape_and_normalize_image(np.full((1, 1, 3), 255, np.uint8), "imagenet"))
    assert deprocess_image(high + 1, "imagenet").min() == 255 and deprocess_image(low - 1, "imagenet").max() == 0


def test_the_other_normalizations_are_unchanged():
    pixels = np.full((2, 2, 3), 100, np.uint8)
    np.testing.assert_array_equal(reshape_and_normalize_image(pixels, "unit"), np.float32(100) / np.float32(255))
    means = np.broadcast_to(100 - nst_tf.plan.config.CONFIG.MEANS, (1, 2, 2, 3))
    np.testing.assert_array_equal(reshape_and_normalize_image(pixels), means)
    with pytest.raises(NSTError, match="normalization must be one of means, unit, imagenet; got 'caffe'"):
        pixel_range("caffe")


@pytest.fixture
def imagenet_config(monkeypatch):
    """The config accepting "imagenet" (nst_tf.plan.config's NORMALIZATIONS does not list it yet)."""
    monkeypatch.setattr(
        nst_tf.plan.config, "NORMALIZATIONS", tuple(dict.fromkeys(nst_tf.plan.config.NORMALIZATIONS + ("imagenet",)))
    )
    return StyleTransferConfig(
        network="squeezenet",
        normalization="imagenet",
        content_layer="3",
        style_layers=(("1", 1.0), ("fire3", 1.0), ("6", 1.0), ("fire5", 1.0)),
        tv_weight=0.01,
        clip=True,
    )


def test_it_plugs_into_the_objective(squeezenet, imagenet_config, rng):
    content, style = (
        reshape_and_normalize_image(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "imagenet")
        for h, w in [(48, 64), (40, 40)]
    )
    objective = StyleCost(squeezenet, content, style, imagenet_config)
    image = tf.Variable(content + rng.normal(0, 0.5, content.shape).astype(np.float32))
    costs, gradient = objective.value_and_gradient(image)
    assert list(costs) == ["total", "content", "style", "tv"]
    assert all(np.isfinite(float(c)) for c in costs.values())
    assert float(costs["content"]) > 0 and float(costs["style"]) > 0
    assert np.isfinite(gradient.numpy()).all() and np.abs(gradient.numpy()).max() > 0
    objective.constrain(image)
    low, high = pixel_range("imagenet")
    assert (image.numpy() >= low).all() and (image.numpy() <= high).all()
    assert objective.deprocess(image).shape == (48, 64, 3)


def test_an_image_too_small_for_a_traced_call_of_unknown_size_fails_without_crashing():
    # TensorFlow's max pooling of a dynamic-size input smaller than its window crashed the interpreter (SIGFPE).
    model = SqueezeNet(random_squeezenet_weights(0))
    traced = tf.function(lambda x: model(x, layers=["fire9"]), input_signature=[tf.TensorSpec((1, None, None, 3))])
    with pytest.raises(tf.errors.InvalidArgumentError, match="SqueezeNet 1.1 needs images of at least 17x17"):
        traced(tf.zeros((1, 8, 8, 3)))
    assert traced(tf.zeros((1, 40, 40, 3)))["fire9"].shape == (1, 2, 2, 512)


def test_an_empty_batch_is_one_error():
    with pytest.raises(NSTError, match=r"image must hold at least one image; got shape \(0, 64, 64, 3\)"):
        SqueezeNet(random_squeezenet_weights(0))(np.zeros((0, 64, 64, 3), np.float32))

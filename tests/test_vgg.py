"""Reading the MatConvNet file (both layouts) and the VGG-19 tf.Module."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import tensorflow as tf

from nst_tf import CONFIG, GRAPH_LAYERS, VGG19, NSTError, WeightsFileError, load_vgg_model, read_vgg19_mat
from nst_tf.plan.synthetic import vgg19_mat_contents, write_vgg19_mat
from nst_tf.plan.networks.vgg19 import CONV_INDEX
from reference import vgg_forward

# Run again by .ci/run with oneDNN held to other instruction sets and with oneDNN off.
pytestmark = pytest.mark.numeric

COURSE_SHAPES_300x400 = {
    "conv1_1": (1, 300, 400),
    "conv1_2": (1, 300, 400),
    "avgpool1": (1, 150, 200),
    "conv2_1": (1, 150, 200),
    "avgpool2": (1, 75, 100),
    "conv3_1": (1, 75, 100),
    "avgpool3": (1, 38, 50),
    "conv4_1": (1, 38, 50),
    "conv4_2": (1, 38, 50),
    "avgpool4": (1, 19, 25),
    "conv5_1": (1, 19, 25),
    "avgpool5": (1, 10, 13),
}


def test_indices_are_the_course_indices():
    assert CONV_INDEX == {
        "conv1_1": 0,
        "conv1_2": 2,
        "conv2_1": 5,
        "conv2_2": 7,
        "conv3_1": 10,
        "conv3_2": 12,
        "conv3_3": 14,
        "conv3_4": 16,
        "conv4_1": 19,
        "conv4_2": 21,
        "conv4_3": 23,
        "conv4_4": 25,
        "conv5_1": 28,
        "conv5_2": 30,
        "conv5_3": 32,
        "conv5_4": 34,
    }


def test_synthetic_new_layout_supports_the_course_indexing_expression(new_weights_file):
    layers = scipy.io.loadmat(new_weights_file)["layers"]
    assert layers.shape == (1, 43)
    for name, i in CONV_INDEX.items():
        assert layers[0][i][0][0][0][0] == name
        W = layers[0][i][0][0][2][0][0]
        b = layers[0][i][0][0][2][0][1]
        assert W.ndim == 4 and W.shape[:2] == (3, 3) and W.dtype == np.float32
        assert b.shape == (W.shape[3], 1)
    fc6 = layers[0][37][0][0][2][0][0]
    assert fc6.shape == (7, 7, 512 // 16, 4096 // 16)


def test_synthetic_old_layout_orders_fields_as_the_old_file(tmp_path):
    path = write_vgg19_mat(tmp_path / "old.mat", layout="old", width_divisor=64)
    mat = scipy.io.loadmat(path)
    assert {"layers", "classes", "normalization"} <= set(mat) and "meta" not in mat
    conv = mat["layers"][0][0][0][0]
    assert conv.dtype.names[:4] == ("weights", "pad", "type", "name")
    assert mat["layers"][0][1][0][0].dtype.names == ("type", "name")  # relu
    assert mat["normalization"][0][0]["averageImage"].shape == (224, 224, 3)


def test_both_layouts_read_the_same_way(weights_file):
    weights = read_vgg19_mat(weights_file)
    assert list(weights.conv) == list(CONV_INDEX)
    assert weights.layout in ("new", "old")
    kernel, bias = weights.conv["conv1_1"]
    assert kernel.shape == (3, 3, 3, 4) and bias.shape == (4,)
    assert weights.conv["conv5_4"][0].shape == (3, 3, 32, 32)


def test_course_means_equal_the_files_mean_pixel(weights_file):
    np.testing.assert_allclose(read_vgg19_mat(weights_file).mean_pixel, CONFIG.MEANS.reshape(3), atol=1e-3)


def test_kernels_are_used_as_stored(new_weights_file):
    layers = scipy.io.loadmat(new_weights_file)["layers"]
    model = load_vgg_model(new_weights_file)
    for name, i in CONV_INDEX.items():
        kernel, bias = model._conv[name]
        np.testing.assert_array_equal(kernel.numpy(), layers[0][i][0][0][2][0][0])
        np.testing.assert_array_equal(bias.numpy(), layers[0][i][0][0][2][0][1].reshape(-1))


def test_untransposed_kernels_only_transpose_what_the_network_sees(weights, rng):
    # Why using the kernels as stored is harmless: the network with stored
    # kernels, run on an image, gives the transposed activations of the network
    # with spatially transposed kernels run on the transposed image. Content
    # and Gram costs sum over positions, so they do not change.
    transposed = type(weights)(
        conv={n: (np.ascontiguousarray(k.transpose(1, 0, 2, 3)), b) for n, (k, b) in weights.conv.items()},
        mean_pixel=weights.mean_pixel,
        layout=weights.layout,
        source=weights.source,
    )
    image = rng.normal(0, 50, size=(1, 37, 45, 3)).astype(np.float32)
    as_stored = VGG19(weights)(image)
    swapped = VGG19(transposed)(np.ascontiguousarray(image.transpose(0, 2, 1, 3)))
    for name in GRAPH_LAYERS:
        np.testing.assert_allclose(
            as_stored[name].numpy(), tf.transpose(swapped[name], [0, 2, 1, 3]).numpy(), rtol=1e-4, atol=1e-3
        )


def test_activations_equal_a_numpy_reference_forward_pass(weights_file, rng):
    weights = read_vgg19_mat(weights_file)
    image = rng.normal(0, 60, size=(1, 37, 45, 3)).astype(np.float32)  # sides not multiples of 32
    got = VGG19(weights)(image)
    expected = vgg_forward(image[0], weights.conv)
    assert set(got) == {"input"} | set(GRAPH_LAYERS)
    for name in GRAPH_LAYERS:
        assert got[name].shape == (1,) + expected[name].shape, name
        scale = np.abs(expected[name]).max()
        np.testing.assert_allclose(got[name].numpy()[0], expected[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def test_300x400_input_gives_the_course_graph_shapes(model):
    graph = model(np.zeros((1, 300, 400, 3), np.float32))
    assert list(graph) == ["input"] + list(GRAPH_LAYERS)
    for name, shape in COURSE_SHAPES_300x400.items():
        assert tuple(graph[name].shape[:3]) == shape, name
    assert graph["avgpool5"].shape[3] == 512 // 16


def test_requested_layers_stop_early_with_the_same_values(model, rng):
    image = rng.normal(0, 60, size=(1, 40, 56, 3)).astype(np.float32)
    full = model(image)
    partial = model(image, layers=["conv4_2", "conv1_1", "conv3_1"])
    assert list(partial) == ["conv4_2", "conv1_1", "conv3_1"]
    for name, value in partial.items():
        np.testing.assert_array_equal(value.numpy(), full[name].numpy())


def test_requested_layers_compute_nothing_deeper(model):
    @tf.function(input_signature=[tf.TensorSpec([1, 64, 64, 3], tf.float32)])
    def shallow(image):
        return model(image, layers=["conv2_1"])

    ops = shallow.get_concrete_function().graph.get_operations()
    assert sum(op.type == "Conv2D" for op in ops) == 3
    assert sum(op.type == "AvgPool" for op in ops) == 1


def test_module_traces_once_for_a_fixed_input_size(model, rng):
    calls = tf.function(lambda image: model(image, layers=["conv5_1"]))
    for _ in range(3):
        calls(tf.constant(rng.normal(size=(1, 48, 40, 3)), tf.float32))
    assert calls.experimental_get_tracing_count() == 1


def test_module_holds_only_non_trainable_conv_weights(model):
    assert len(model.variables) == 32 and not model.trainable_variables


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((1, 31, 64, 3), np.float32), r"64x31 pixels; VGG-19's five poolings need at least 32x32"),
        (np.zeros((1, 64, 64, 4), np.float32), r"image must have shape \(1, height, width, 3\)"),
        (np.zeros((64, 64, 3), np.float32), r"image must have shape \(1, height, width, 3\)"),
    ],
)
def test_bad_input_images_raise(model, image, message):
    with pytest.raises(NSTError, match=message):
        model(image)


def test_unknown_layer_names_raise(model):
    with pytest.raises(NSTError, match=r"unknown VGG-19 layer 'pool3'; valid names: input, conv1_1"):
        model(np.zeros((1, 32, 32, 3), np.float32), layers=["pool3"])


# Bad files ---------------------------------------------------------------


def save(tmp_path, contents, name="bad.mat"):
    path = tmp_path / name
    scipy.io.savemat(path, contents)
    return str(path)


def test_missing_file_says_where_the_weights_come_from(tmp_path):
    with pytest.raises(
        WeightsFileError,
        match=r"missing\.mat: file not found; download imagenet-vgg-verydeep-19\.mat.*pretrained-model/",
    ):
        read_vgg19_mat(tmp_path / "missing.mat")


@pytest.mark.parametrize("content", [b"this is not a matlab file\n" * 20, b""])
def test_a_file_that_is_not_a_mat_file_raises(tmp_path, content):
    path = tmp_path / "weights.mat"
    path.write_bytes(content)
    with pytest.raises(WeightsFileError, match=r"weights\.mat: cannot be read as a MATLAB \.mat file"):
        read_vgg19_mat(path)


@pytest.mark.parametrize("compress", [True, False])
def test_a_truncated_file_raises(tmp_path, compress):
    path = write_vgg19_mat(tmp_path / "full.mat", width_divisor=16, compress=compress)
    data = Path(path).read_bytes()
    truncated = tmp_path / "truncated.mat"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFileError, match=r"truncated\.mat: cannot be read .* may be truncated"):
        read_vgg19_mat(truncated)


def test_a_different_network_names_the_mismatched_layer(tmp_path):
    contents = vgg19_mat_contents(width_divisor=64)
    contents["layers"][0, 2]["name"] = "conv1_2_renamed"
    with pytest.raises(WeightsFileError, match=r"layer 2 is named 'conv1_2_renamed', expected 'conv1_2'"):
        read_vgg19_mat(save(tmp_path, contents))


def test_a_file_without_layers_raises(tmp_path):
    with pytest.raises(WeightsFileError, match=r"has no 'layers' variable"):
        read_vgg19_mat(save(tmp_path, {"something": np.zeros(3)}))


def test_too_few_layers_raise(tmp_path):
    contents = vgg19_mat_contents(width_divisor=64)
    contents["layers"] = contents["layers"][:, :20]
    with pytest.raises(WeightsFileError, match=r"'layers' holds 20 layers; VGG-19 has 43"):
        read_vgg19_mat(save(tmp_path, contents))


@pytest.mark.parametrize(
    "index, kernel_shape, message",
    [
        (2, (3, 3, 5, 1), r"conv1_2 kernel has shape \(3, 3, 5, 1\); expected \(3, 3, 1, out\)"),
        (0, (5, 5, 3, 1), r"conv1_1 kernel has shape \(5, 5, 3, 1\); expected \(3, 3, 3, out\)"),
        (0, (3, 3, 3), r"conv1_1 kernel has shape \(3, 3, 3\)"),
    ],
)
def test_wrong_kernel_shapes_raise(tmp_path, index, kernel_shape, message):
    contents = vgg19_mat_contents(width_divisor=64)
    contents["layers"][0, index]["weights"][0, 0] = np.ones(kernel_shape, np.float32)
    with pytest.raises(WeightsFileError, match=message):
        read_vgg19_mat(save(tmp_path, contents))


def test_a_bias_of_the_wrong_length_raises(tmp_path):
    contents = vgg19_mat_contents(width_divisor=64)
    contents["layers"][0, 5]["weights"][0, 1] = np.ones((7, 1), np.float32)
    with pytest.raises(WeightsFileError, match=r"conv2_1 bias has 7 values; expected 2"):
        read_vgg19_mat(save(tmp_path, contents))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_raise(tmp_path, bad):
    contents = vgg19_mat_contents(width_divisor=64)
    contents["layers"][0, 21]["weights"][0, 0][1, 1, 0, 0] = bad
    with pytest.raises(WeightsFileError, match=r"bad\.mat: conv4_2 weights contain NaN or infinite values"):
        read_vgg19_mat(save(tmp_path, contents))


def test_writer_refuses_to_replace_an_existing_file(tmp_path):
    precious = tmp_path / "imagenet-vgg-verydeep-19.mat"
    precious.write_bytes(b"the real weights")
    with pytest.raises(NSTError, match="exists; pass overwrite=True"):
        write_vgg19_mat(precious, width_divisor=64)
    assert precious.read_bytes() == b"the real weights"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layout": "newest"}, "layout must be one of new, old"),
        ({"width_divisor": 3}, "width_divisor must be a divisor of 64"),
    ],
)
def test_writer_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(NSTError, match=message):
        write_vgg19_mat(tmp_path / "x.mat", **kwargs)


@pytest.mark.parametrize("pooling", ["avg", "max"])
@pytest.mark.parametrize("flat", [False, True], ids=["noise", "flat-regions"])
def test_lean_gradient_gives_the_same_activations_and_input_gradient(new_weights_file, rng, pooling, flat):
    # Flat regions give ReLU zeros and ties inside max pooling windows, where
    # a mask or an argmax that differed from TensorFlow's own gradients would show.
    model = load_vgg_model(new_weights_file, pooling=pooling)
    image = rng.normal(0, 60, size=(1, 45, 67, 3)).astype(np.float32)
    if flat:
        image[:, 8:40, 16:48] = -200.0
    image = tf.constant(image)
    layers = ["conv1_1", "conv2_2", "avgpool3", "conv4_2", "conv5_1"]  # pool names stay with max pooling
    results = []
    for lean in (False, True):
        with tf.GradientTape() as tape:
            tape.watch(image)
            outputs = model(image, layers=layers, lean_gradient=lean)
            cost = tf.add_n([tf.reduce_sum(tf.square(a)) * (i + 1) for i, a in enumerate(outputs.values())])
        results.append((outputs, tape.gradient(cost, image)))
    (standard, gradient), (lean, lean_gradient) = results
    for name in layers:
        np.testing.assert_array_equal(lean[name].numpy(), standard[name].numpy(), err_msg=name)
    assert np.abs(gradient.numpy()).max() > 0
    np.testing.assert_allclose(lean_gradient.numpy(), gradient.numpy(), rtol=1e-5, atol=1e-6 * np.abs(gradient).max())

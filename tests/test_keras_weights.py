"""Keras' VGG19 weights (.h5): the reader, the writer, finding a file's kind, max pooling, Keras as referee."""

import os
import re
import shutil
import struct
import threading
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import tensorflow as tf
from reference import vgg_forward

from nst_tf import (
    CONFIG,
    GRAPH_LAYERS,
    VGG19,
    NSTError,
    WeightsFileError,
    load_vgg_model,
    read_vgg19_h5,
    read_vgg19_mat,
    reshape_and_normalize_image,
)
from nst_tf.plan.weights import keras as keras_weights
from nst_tf.plan.weights.readers import weights_file_kind
from nst_tf.plan.synthetic import write_vgg19_h5, write_vgg19_mat

WIDTH_DIVISOR = 16
SEED = 11

#: Keras' VGG19 convolutions in model order; the course's name is convB_C for blockB_convC.
KERAS_CONVS = [f"block{b}_conv{c}" for b, n in enumerate((2, 2, 4, 4, 4), start=1) for c in range(1, n + 1)]


def course_name(keras_name):
    """block3_conv2 -> conv3_2; block3_pool -> avgpool3 (the course's name for every pooling's output)."""
    conv = re.fullmatch(r"block(\d)_conv(\d)", keras_name)
    if conv:
        return f"conv{conv[1]}_{conv[2]}"
    return "avgpool" + re.fullmatch(r"block(\d)_pool", keras_name)[1]


@pytest.fixture(scope="session")
def mat_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mat") / "imagenet-vgg-verydeep-19.mat"
    return write_vgg19_mat(path, width_divisor=WIDTH_DIVISOR, seed=SEED)


def _file_factory(tmp_path_factory, width_divisor):
    folder = tmp_path_factory.mktemp(f"keras_d{width_divisor}")
    written = {}

    def h5_file(keras_version=2, include_top=False):
        key = (keras_version, include_top)
        if key not in written:
            name = f"vgg19_keras{keras_version}_{'top' if include_top else 'notop'}.h5"
            written[key] = write_vgg19_h5(
                folder / name, width_divisor, SEED, include_top=include_top, keras_version=keras_version
            )
        return written[key]

    return h5_file


@pytest.fixture(scope="session")
def small_h5(tmp_path_factory):
    """Files of 1/16 widths, written on first use: small_h5(keras_version=2, include_top=False)."""
    return _file_factory(tmp_path_factory, WIDTH_DIVISOR)


@pytest.fixture(scope="session")
def full_h5(tmp_path_factory):
    """Full-width files (about 80 MB each), as Keras' own VGG19 needs them."""
    return _file_factory(tmp_path_factory, 1)


@pytest.fixture
def rng():
    return np.random.default_rng(1409)


# Same numbers, two file formats -------------------------------------------


@pytest.mark.parametrize("include_top", [False, True], ids=["notop", "top"])
@pytest.mark.parametrize("keras_version", [1, 2])
def test_h5_and_mat_files_of_the_same_numbers_give_identical_activations(
    mat_file, small_h5, keras_version, include_top, rng
):
    from_mat = load_vgg_model(mat_file)
    from_h5 = load_vgg_model(small_h5(keras_version, include_top))
    image = rng.normal(0, 60, size=(1, 37, 45, 3)).astype(np.float32)
    expected, got = from_mat(image), from_h5(image)
    for name in GRAPH_LAYERS:
        np.testing.assert_allclose(got[name].numpy(), expected[name].numpy(), rtol=1e-6, atol=0, err_msg=name)


@pytest.mark.parametrize("keras_version", [1, 2])
def test_the_h5_stores_the_mat_numbers_with_conv1_1_in_bgr_order(mat_file, small_h5, keras_version):
    path = small_h5(keras_version)
    mat = read_vgg19_mat(mat_file)
    with h5py.File(path, "r") as root:
        for keras_name in KERAS_CONVS:
            group = root[keras_name]
            kernel_name, bias_name = [n.decode() for n in group.attrs["weight_names"]]
            kernel, bias = mat.conv[course_name(keras_name)]
            if keras_name == "block1_conv1":
                kernel = kernel[:, :, ::-1, :]  # input channels R, G, B stored as B, G, R
            np.testing.assert_array_equal(group[kernel_name][()], kernel)
            np.testing.assert_array_equal(group[bias_name][()], bias)
    weights = read_vgg19_h5(path)
    assert list(weights.conv) == list(mat.conv)
    for name, (kernel, bias) in mat.conv.items():
        np.testing.assert_array_equal(weights.conv[name][0], kernel)
        np.testing.assert_array_equal(weights.conv[name][1], bias)
        assert weights.conv[name][0].dtype == np.float32 and weights.conv[name][0].flags.c_contiguous


def test_mean_pixel_is_what_keras_preprocessing_subtracts(small_h5, rng):
    path = small_h5()
    weights = read_vgg19_h5(path)
    assert weights.layout == "keras" and weights.source == str(path)
    rgb = rng.uniform(0, 255, size=(1, 4, 5, 3)).astype(np.float32)
    bgr_centered = tf.keras.applications.vgg19.preprocess_input(rgb.copy())
    np.testing.assert_allclose(rgb - weights.mean_pixel, bgr_centered[..., ::-1], rtol=0, atol=1e-4)
    np.testing.assert_allclose(weights.mean_pixel, CONFIG.MEANS.reshape(3), rtol=1e-6)


# Keras as referee ------------------------------------------------------------


@pytest.mark.parametrize("keras_version", [1, 2])
def test_keras_vgg19_on_caffe_input_equals_nst_tf_with_max_pooling(full_h5, keras_version, rng):
    # 40x56: the third pooling halves 5x7, so Keras' VALID max pooling (2x3)
    # differs from SAME (3x4) in shape, not only at the border.
    height, width = 40, 56
    path = full_h5(keras_version)
    vgg = tf.keras.applications.VGG19(weights=str(path), include_top=False, input_shape=(height, width, 3))
    names = [layer.name for layer in vgg.layers if layer.name.startswith("block")]
    assert len(names) == 21
    activations = tf.keras.Model(vgg.input, [vgg.get_layer(name).output for name in names])
    rgb = rng.uniform(0, 255, size=(1, height, width, 3)).astype(np.float32)
    expected = activations(tf.keras.applications.vgg19.preprocess_input(rgb.copy()))

    got = load_vgg_model(path, pooling="max")(reshape_and_normalize_image(rgb[0]))
    for keras_name, value in zip(names, expected):
        value = value.numpy()
        mine = got[course_name(keras_name)].numpy()
        assert mine.shape == value.shape, keras_name
        scale = np.abs(value).max()
        assert scale > 0, keras_name
        np.testing.assert_allclose(mine, value, rtol=1e-4, atol=1e-4 * scale, err_msg=keras_name)


def small_keras_vgg19(include_top):
    """Keras' VGG19 architecture and layer names at 1/16 of the widths."""
    inputs = tf.keras.Input((224, 224, 3))
    x = inputs
    for block, convs in enumerate((2, 2, 4, 4, 4), start=1):
        for k in range(1, convs + 1):
            filters = 64 * 2 ** min(block - 1, 3) // WIDTH_DIVISOR
            x = tf.keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{k}")(x)
        x = tf.keras.layers.MaxPooling2D(2, 2, name=f"block{block}_pool")(x)
    if include_top:
        x = tf.keras.layers.Flatten(name="flatten")(x)
        x = tf.keras.layers.Dense(4096 // WIDTH_DIVISOR, activation="relu", name="fc1")(x)
        x = tf.keras.layers.Dense(4096 // WIDTH_DIVISOR, activation="relu", name="fc2")(x)
        x = tf.keras.layers.Dense(1000, activation="softmax", name="predictions")(x)
    return tf.keras.Model(inputs, x)


@pytest.mark.parametrize("include_top", [False, True], ids=["notop", "top"])
@pytest.mark.parametrize("keras_version", [1, 2])
def test_keras_own_loader_reads_the_written_files(mat_file, small_h5, keras_version, include_top):
    path = small_h5(keras_version, include_top)
    model = small_keras_vgg19(include_top)
    model.load_weights(str(path))
    ours = read_vgg19_h5(path)
    for keras_name in KERAS_CONVS:
        kernel, bias = model.get_layer(keras_name).get_weights()
        if keras_name == "block1_conv1":
            kernel = kernel[:, :, ::-1, :]
        np.testing.assert_array_equal(kernel, ours.conv[course_name(keras_name)][0])
        np.testing.assert_array_equal(bias, ours.conv[course_name(keras_name)][1])
    if include_top:
        layers = scipy.io.loadmat(mat_file)["layers"]
        for keras_name, index in (("fc1", 37), ("fc2", 39), ("predictions", 41)):
            kernel, bias = model.get_layer(keras_name).get_weights()
            mat_kernel, mat_bias = layers[0][index][0][0][2][0]
            np.testing.assert_array_equal(kernel, mat_kernel.reshape(-1, mat_kernel.shape[3]))
            np.testing.assert_array_equal(bias, mat_bias.reshape(-1))


# The writer's layout -----------------------------------------------------------


@pytest.mark.parametrize(
    "keras_version, kernel_path, bias_path, root_attributes",
    [
        (1, "block1_conv1/block1_conv1_W_1:0", "block1_conv1/block1_conv1_b_1:0", {"layer_names"}),
        (
            2,
            "block1_conv1/block1_conv1/kernel:0",
            "block1_conv1/block1_conv1/bias:0",
            {"layer_names", "backend", "keras_version"},
        ),
    ],
)
def test_writer_spells_datasets_as_keras_1_or_2(small_h5, keras_version, kernel_path, bias_path, root_attributes):
    with h5py.File(small_h5(keras_version, include_top=True), "r") as root:
        assert set(root.attrs) == root_attributes
        layer_names = [name.decode() for name in root.attrs["layer_names"]]
        assert layer_names[:4] == ["input_1", "block1_conv1", "block1_conv2", "block1_pool"]
        assert layer_names[-5:] == ["block5_pool", "flatten", "fc1", "fc2", "predictions"]
        assert len(layer_names) == 1 + 16 + 5 + 4
        assert root[kernel_path].shape == (3, 3, 3, 64 // WIDTH_DIVISOR)
        assert root[bias_path].shape == (64 // WIDTH_DIVISOR,)
        for empty in ("input_1", "block3_pool", "flatten"):
            assert len(root[empty].attrs["weight_names"]) == 0
        assert root["fc1"].attrs["weight_names"].shape == (2,)


def test_h5_writer_refuses_to_replace_an_existing_file(tmp_path):
    precious = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    precious.write_bytes(b"the real weights")
    with pytest.raises(NSTError, match="exists; pass overwrite=True"):
        write_vgg19_h5(precious, width_divisor=64)
    assert precious.read_bytes() == b"the real weights"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"keras_version": 3}, "keras_version must be 1 or 2; got 3"),
        ({"width_divisor": 3}, "width_divisor must be a divisor of 64"),
    ],
)
def test_h5_writer_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(NSTError, match=message):
        write_vgg19_h5(tmp_path / "x.h5", **kwargs)
    assert not (tmp_path / "x.h5").exists()


# Reading what Keras may write --------------------------------------------------


def altered(tmp_path, source, change, name="altered.h5"):
    """A copy of ``source`` with ``change(root)`` applied through h5py."""
    path = tmp_path / name
    shutil.copyfile(source, path)
    with h5py.File(path, "r+") as root:
        change(root)
    return path


def assert_same_weights(a, b):
    assert list(a.conv) == list(b.conv)
    for name in a.conv:
        np.testing.assert_array_equal(a.conv[name][0], b.conv[name][0])
        np.testing.assert_array_equal(a.conv[name][1], b.conv[name][1])


def garble_name_lists(root):
    """Removes ``layer_names`` and puts in each layer's ``weight_names`` what no loader could use."""
    del root.attrs["layer_names"]
    for index, layer in enumerate(KERAS_CONVS):
        garbage = [
            np.arange(3),
            np.array([b"k" * 5000, b"b"]),
            np.array(["x"] * 960, dtype=h5py.string_dtype()),
            np.array([root.ref] * 4, dtype=h5py.ref_dtype),
        ][index % 4]
        del root[layer].attrs["weight_names"]
        root[layer].attrs["weight_names"] = garbage


def test_the_name_lists_are_not_read_so_their_type_and_size_do_not_matter(tmp_path, small_h5):
    source = small_h5()
    assert_same_weights(read_vgg19_h5(altered(tmp_path, source, garble_name_lists)), read_vgg19_h5(source))


def test_weights_inside_a_whole_saved_model_are_read(tmp_path, small_h5):
    source = small_h5()
    path = tmp_path / "model.h5"
    with h5py.File(source, "r") as original, h5py.File(path, "w") as saved:
        group = saved.create_group("model_weights")
        for key, value in original.attrs.items():
            group.attrs[key] = value
        for key in original:
            original.copy(original[key], group)
        saved.attrs["model_config"] = b"{}"
    assert_same_weights(read_vgg19_h5(path), read_vgg19_h5(source))


def test_dense_layers_are_never_read(small_h5, monkeypatch):
    read = []
    original = h5py.Dataset.__getitem__

    def spy(self, *args, **kwargs):
        read.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    read_vgg19_h5(small_h5(2, include_top=True))
    assert len(read) == 32
    assert all(re.match(r"/block\d_conv\d/", name) for name in read), read


# The kind of file, from its content ----------------------------------------------


def test_an_h5_file_named_mat_and_a_mat_file_named_h5_load(tmp_path, small_h5, mat_file, rng):
    h5_named_mat = tmp_path / "imagenet-vgg-verydeep-19.mat"
    mat_named_h5 = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    shutil.copyfile(small_h5(), h5_named_mat)
    shutil.copyfile(mat_file, mat_named_h5)
    assert weights_file_kind(h5_named_mat) == "h5" and weights_file_kind(mat_named_h5) == "mat"
    image = rng.normal(0, 60, size=(1, 32, 40, 3)).astype(np.float32)
    expected = load_vgg_model(mat_file)(image, layers=["conv5_4"])["conv5_4"].numpy()
    for path in (h5_named_mat, mat_named_h5):
        got = load_vgg_model(path)(image, layers=["conv5_4"])["conv5_4"].numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("layout", ["new", "old"])
def test_both_mat_layouts_are_found_to_be_mat(tmp_path, layout):
    assert weights_file_kind(write_vgg19_mat(tmp_path / "w.mat", layout=layout, width_divisor=64)) == "mat"


def test_hdf5_after_a_user_block_is_found(tmp_path):
    path = tmp_path / "with_user_block.bin"
    with h5py.File(path, "w", userblock_size=1024) as root:
        root["x"] = np.zeros(3)
    assert Path(path).read_bytes()[:8] != b"\x89HDF\r\n\x1a\n"
    assert weights_file_kind(path) == "h5"
    with pytest.raises(
        WeightsFileError, match=r"HDF5 file without Keras' VGG19 layers \(no group 'block1_conv1'\); not"
    ):
        load_vgg_model(path)


# Bad files --------------------------------------------------------------------------


EXPECTED_KINDS = (
    r"expected MatConvNet's imagenet-vgg-verydeep-19\.mat \(a MATLAB 5\.0 MAT-file\) "
    r"or Keras' vgg19_weights_tf_dim_ordering_tf_kernels_notop\.h5 \(an HDF5 file\)"
)


@pytest.mark.parametrize("load", [load_vgg_model, read_vgg19_h5, weights_file_kind])
@pytest.mark.parametrize(
    "content, message",
    [
        (b"these are my notes, not weights\n" * 40, "is neither a MATLAB 5.0 MAT-file nor an HDF5 file; "),
        (b"", "is empty; "),
        (b"\x89HDF\r\n", "is neither a MATLAB 5.0 MAT-file nor an HDF5 file; "),
    ],
    ids=["text", "empty", "short"],
)
def test_a_file_of_neither_kind_names_both_kinds(tmp_path, load, content, message):
    path = tmp_path / "weights.h5"
    path.write_bytes(content)
    with pytest.raises(WeightsFileError, match=r"^.*weights\.h5: " + re.escape(message) + EXPECTED_KINDS + "$"):
        load(path)


@pytest.mark.parametrize(
    "name, message",
    [
        (
            "missing.h5",
            r"h5: file not found; download vgg19_weights_tf.*_notop\.h5 .*nst_tf\.download --weights keras",
        ),
        (
            "missing.mat",
            r"mat: file not found; download imagenet-vgg-verydeep-19\.mat .*python -m nst_tf\.download \(",
        ),
    ],
)
def test_a_missing_file_says_which_download_to_run(tmp_path, name, message):
    with pytest.raises(WeightsFileError, match=message):
        load_vgg_model(tmp_path / name)


def test_a_folder_is_not_a_weights_file(tmp_path):
    with pytest.raises(WeightsFileError, match=r": is a folder; expected MatConvNet's"):
        load_vgg_model(tmp_path)


def test_a_mat_file_given_to_the_h5_reader_says_what_to_use(mat_file):
    with pytest.raises(WeightsFileError, match=r"is a MATLAB \.mat file, not Keras' HDF5 weights; read it with"):
        read_vgg19_h5(mat_file)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_h5_file_raises(tmp_path, small_h5, keep):
    data = Path(small_h5()).read_bytes()
    path = tmp_path / "truncated.h5"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(WeightsFileError, match=r"truncated\.h5: cannot be read as an HDF5 file \(.*\); it may be"):
        load_vgg_model(path)


def drop_layer(name):
    def change(root):
        root.attrs["layer_names"] = [n for n in root.attrs["layer_names"] if n.decode() != name]
        del root[name]

    return change


def replace_weight(layer, index, value):
    def change(root):
        name = root[layer].attrs["weight_names"][index].decode()
        del root[layer][name]
        root[layer].create_dataset(name, data=value)

    return change


def drop_weight(layer, index):
    def change(root):
        del root[layer][root[layer].attrs["weight_names"][index].decode()]

    return change


def add_weight(layer, name):
    def change(root):
        root[layer][name] = np.ones(8, np.float32)

    return change


def add_layer(root):
    root.attrs["layer_names"] = [*root.attrs["layer_names"], b"block6_conv1"]
    group = root.create_group("block6_conv1")
    group.attrs["weight_names"] = np.array([b"block6_conv1/kernel:0", b"block6_conv1/bias:0"])
    group["block6_conv1/kernel:0"] = np.zeros((3, 3, 32, 32), np.float32)
    group["block6_conv1/bias:0"] = np.zeros(32, np.float32)


def nan_at(layer):
    def change(root):
        name = root[layer].attrs["weight_names"][0].decode()
        root[layer][name][1, 1, 0, 0] = np.nan

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda root: [root.__delitem__(layer) for layer in KERAS_CONVS],
            r"HDF5 file without Keras' VGG19 layers \(no group 'block1_conv1'\); "
            r"not vgg19_weights_tf_dim_.*_notop\.h5$",
        ),
        (
            drop_layer("block5_conv4"),
            r"has no weights for layer 'block5_conv4' \(1 of Keras' 16 VGG19 convolutions missing\); not Keras' VGG19",
        ),
        (
            lambda root: root.__delitem__("block3_conv3"),
            r"has no weights for layer 'block3_conv3' \(1 of Keras' 16 VGG19 convolutions missing\)",
        ),
        (add_layer, r"has weights for layer 'block6_conv1', which Keras' VGG19 does not have; not VGG19 weights"),
        (
            replace_weight("block2_conv1", 0, np.ones((3, 3, 5, 8), np.float32)),
            r"block2_conv1 \(conv2_1\) kernel has shape \(3, 3, 5, 8\); expected \(3, 3, 4, out\)",
        ),
        (
            replace_weight("block1_conv1", 0, np.ones((5, 5, 3, 4), np.float32)),
            r"block1_conv1 \(conv1_1\) kernel has shape \(5, 5, 3, 4\); expected \(3, 3, 3, out\)",
        ),
        (
            replace_weight("block4_conv3", 1, np.ones(7, np.float32)),
            r"block4_conv3 \(conv4_3\) bias has shape \(7,\); expected \(32,\)",
        ),
        (
            replace_weight("block1_conv2", 0, np.ones((3, 3, 4, 4), np.int32)),
            r"weight 'block1_conv2/kernel:0' of layer 'block1_conv2' has type int32; expected floating-point",
        ),
        (nan_at("block4_conv2"), r"block4_conv2 \(conv4_2\) weights contain NaN or infinite values"),
        (drop_weight("block3_conv1", 1), r"layer 'block3_conv1' holds 1 weights; expected kernel and bias$"),
        (
            add_weight("block3_conv1", "block3_conv1/gamma:0"),
            r"layer 'block3_conv1' holds more than 2 weights; expected kernel and bias$",
        ),
    ],
    ids=[
        "no-conv-layers",
        "vgg16-like",
        "no-group",
        "extra-layer",
        "kernel-channels",
        "kernel-size",
        "bias",
        "integers",
        "nan",
        "one-weight",
        "three-weights",
    ],
)
def test_an_h5_file_of_another_network_names_the_problem(tmp_path, small_h5, change, message):
    path = altered(tmp_path, small_h5(), change)
    with pytest.raises(WeightsFileError, match=r"^.*altered\.h5: " + message):
        read_vgg19_h5(path)
    with pytest.raises(WeightsFileError, match=message):
        load_vgg_model(path)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_biases_raise(tmp_path, small_h5, bad):
    def change(root):
        name = root["block5_conv1"].attrs["weight_names"][1].decode()
        root["block5_conv1"][name][3] = bad

    path = altered(tmp_path, small_h5(keras_version=1), change)
    with pytest.raises(WeightsFileError, match=r"block5_conv1 \(conv5_1\) weights contain NaN or infinite values"):
        read_vgg19_h5(path)


# Hostile files: nothing outside the file is touched, nothing is read before its size is checked ------------


def replace_with(layer, index, create):
    """A change for ``altered``: weight ``index`` of ``layer`` replaced by what ``create(group, name)`` makes."""

    def change(root):
        group = root[layer]
        name = group.attrs["weight_names"][index].decode()
        del group[name]
        create(group, name)

    return change


def external_storage(target, shape):
    def create(group, name):
        size = int(np.prod(shape)) * 4
        group.create_dataset(name, shape=shape, dtype="f4", external=[(str(target), 0, size)])

    return create


def virtual_dataset(source, unlimited=False):
    def create(group, name):
        maxshape = (3, 3, 3, None) if unlimited else None
        layout = h5py.VirtualLayout(shape=(3, 3, 3, 4), dtype="f4", maxshape=maxshape)
        origin = h5py.VirtualSource(str(source), "data", shape=(3, 3, 3, 4), maxshape=maxshape)
        if unlimited:
            layout[:, :, :, 0 : h5py.h5s.UNLIMITED] = origin[:, :, :, 0 : h5py.h5s.UNLIMITED]
        else:
            layout[...] = origin
        group.create_virtual_dataset(name, layout)

    return create


def link_to(make_link):
    def create(group, name):
        group[name] = make_link(name)

    return create


def corrupt_chunk(group, name):
    dataset = group.create_dataset(name, shape=(3, 3, 3, 4), dtype="f4", chunks=(3, 3, 3, 4), compression="gzip")
    dataset.id.write_direct_chunk((0, 0, 0, 0), b"this is not a deflate stream", filter_mask=0)


def hostile_change(case, tmp_path, source):
    """What ``altered`` applies to make hostile file ``case``; ``source`` is a good file to link to."""
    fifo, outside = tmp_path / "weights.fifo", str(source)
    changes = {
        "external-fifo": replace_with("block1_conv1", 0, external_storage(fifo, (3, 3, 3, 4))),
        "external-dev-zero": replace_with("block5_conv4", 0, external_storage("/dev/zero", (3, 3, 32, 32))),
        "virtual-missing": replace_with("block1_conv1", 0, virtual_dataset(tmp_path / "missing.h5")),
        "virtual-fifo": replace_with("block1_conv1", 0, virtual_dataset(fifo, unlimited=True)),
        "external-link-layer": lambda root: (
            root.__delitem__("block2_conv1"),
            root.__setitem__("block2_conv1", h5py.ExternalLink(outside, "/block2_conv1")),
        ),
        "external-link-weight": replace_with(
            "block3_conv1", 1, link_to(lambda name: h5py.ExternalLink(outside, f"/block3_conv1/{name}"))
        ),
        "external-link-subgroup": lambda root: (
            root["block1_conv2"].__delitem__("block1_conv2"),
            root["block1_conv2"].__setitem__("block1_conv2", h5py.ExternalLink(outside, "/block1_conv2/block1_conv2")),
        ),
        "soft-link": replace_with("block3_conv2", 1, link_to(lambda name: h5py.SoftLink("/block3_conv3/" + name))),
        "too-wide": replace_with("block1_conv1", 0, lambda g, n: g.create_dataset(n, data=np.ones((3, 3, 3, 128)))),
        "zero-wide": replace_with("block1_conv1", 0, lambda g, n: g.create_dataset(n, shape=(3, 3, 3, 0))),
        "lzf": replace_with(
            "block1_conv2", 0, lambda g, n: g.create_dataset(n, data=np.ones((3, 3, 4, 4), "f4"), compression="lzf")
        ),
        "corrupt-chunk": replace_with("block1_conv1", 0, corrupt_chunk),
    }
    return changes[case]


HOSTILE_H5 = [
    (
        "external-fifo",
        r"weight 'block1_conv1/kernel:0' of layer 'block1_conv1' keeps its numbers in another file, "
        r"\S*weights\.fifo \(HDF5 external storage\); this reader reads nothing outside the weights file$",
    ),
    ("external-dev-zero", r"'block5_conv4' keeps its numbers in another file, /dev/zero \(HDF5 external storage\)"),
    (
        "virtual-missing",
        r"weight 'block1_conv1/kernel:0' of layer 'block1_conv1' is an HDF5 virtual dataset, "
        r"whose numbers lie in other files; this reader reads nothing outside the weights file$",
    ),
    ("virtual-fifo", r"of layer 'block1_conv1' is an HDF5 virtual dataset, whose numbers lie in other files"),
    (
        "external-link-layer",
        r"layer 'block2_conv1' is an HDF5 external link \(to another file\); this reader follows no links$",
    ),
    (
        "external-link-weight",
        r"'block3_conv1/bias:0' in layer 'block3_conv1' is an HDF5 external link \(to another file\); this reader",
    ),
    (
        "external-link-subgroup",
        r"'block1_conv2' in layer 'block1_conv2' is an HDF5 external link \(to another file\); "
        r"this reader follows no links$",
    ),
    (
        "soft-link",
        r"'block3_conv2/bias:0' in layer 'block3_conv2' is an HDF5 soft link; this reader follows no links$",
    ),
    (
        "too-wide",
        r"block1_conv1 \(conv1_1\) kernel has shape \(3, 3, 3, 128\); expected \(3, 3, 3, out\), out from 1 to 64$",
    ),
    (
        "zero-wide",
        r"block1_conv1 \(conv1_1\) kernel has shape \(3, 3, 3, 0\); expected \(3, 3, 3, out\), out from 1",
    ),
    (
        "lzf",
        r"weight 'block1_conv2/kernel:0' of layer 'block1_conv2' is stored through HDF5 filters 32000 \('lzf'\); "
        r"this reader accepts shuffle, deflate \(gzip\) and fletcher32, each at most once and in that order$",
    ),
    ("corrupt-chunk", r"'block1_conv1' has a compressed chunk that is corrupt \(.*\); the file is damaged$"),
]


@pytest.mark.parametrize("case, message", HOSTILE_H5, ids=[case for case, _ in HOSTILE_H5])
def test_a_hostile_h5_file_is_refused_before_anything_is_read(tmp_path, small_h5, case, message):
    fifo = tmp_path / "weights.fifo"
    os.mkfifo(fifo)
    path = altered(tmp_path, small_h5(), hostile_change(case, tmp_path, small_h5()))
    done = threading.Event()

    def unblock():
        # Were the reader blocked opening the pipe, this writer would release
        # it (the test would then fail on the message rather than hang).
        if not done.wait(20):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    guard = threading.Thread(target=unblock, daemon=True)
    guard.start()
    try:
        with pytest.raises(WeightsFileError) as raised:
            read_vgg19_h5(path)
    finally:
        done.set()
        guard.join()
    assert "\n" not in str(raised.value) and str(raised.value).startswith(f"{path}: "), str(raised.value)
    assert re.search(message, str(raised.value)), str(raised.value)


@pytest.mark.parametrize("case", ["virtual-missing", "external-link-layer", "external-dev-zero", "too-wide"])
def test_the_command_refuses_a_hostile_h5_file_in_one_line(tmp_path, small_h5, workspace, capsys, cli_args, case):
    from nst_tf.app.cli import main

    path = altered(tmp_path, small_h5(), hostile_change(case, tmp_path, small_h5()))
    assert main(cli_args("--model", str(path))) == 2
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nst-tf: error: {path}: "), err
    assert re.search(dict(HOSTILE_H5)[case], lines[0]), lines[0]
    assert not (workspace / "out").exists()


def test_the_weights_of_a_saved_model_are_not_followed_into_another_file(tmp_path, small_h5):
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as saved:
        saved["model_weights"] = h5py.ExternalLink(str(small_h5()), "/")
    with pytest.raises(WeightsFileError, match=r"model\.h5: group 'model_weights' is an HDF5 external link"):
        read_vgg19_h5(path)


def test_too_many_chunks_are_refused(tmp_path, small_h5, monkeypatch):
    monkeypatch.setattr(keras_weights, "MAX_CHUNKS", 100)
    create = lambda g, n: g.create_dataset(n, data=np.ones((3, 3, 3, 4), "f4"), chunks=(1, 1, 1, 1))  # noqa: E731
    path = altered(tmp_path, small_h5(), replace_with("block1_conv1", 0, create))
    with pytest.raises(
        WeightsFileError, match=r"'block1_conv1' is stored in 108 chunks of shape \(1, 1, 1, 1\); expected"
    ):
        read_vgg19_h5(path)


def test_a_stored_chunk_larger_than_its_numbers_is_refused(tmp_path, small_h5):
    def create(group, name):
        dataset = group.create_dataset(name, shape=(3, 3, 3, 4), dtype="f4", chunks=(3, 3, 3, 4), compression="gzip")
        # A valid deflate stream of the chunk's 432 bytes, then 64 KiB that HDF5 would read along with it.
        dataset.id.write_direct_chunk((0, 0, 0, 0), zlib.compress(bytes(432)) + bytes(1 << 16))

    path = altered(tmp_path, small_h5(), replace_with("block1_conv1", 0, create))
    with pytest.raises(
        WeightsFileError, match=r"'block1_conv1' has a stored chunk of 655\d\d bytes, for 432 bytes of numbers$"
    ):
        read_vgg19_h5(path)


def test_stored_chunks_outside_a_weight_are_refused(tmp_path, small_h5):
    def create(group, name):
        group.create_dataset(name, data=np.ones((3, 3, 3, 8), "f4"), chunks=(3, 3, 3, 4), compression="gzip")

    path = altered(tmp_path, small_h5(), replace_with("block1_conv1", 0, create))
    # The kernel's dimensions, then its maximum ones: the first become (3, 3, 3, 4), leaving a chunk outside.
    data, dims = bytearray(path.read_bytes()), struct.pack("<4Q", 3, 3, 3, 8)
    assert data.count(dims) == 2
    at = data.find(dims)
    data[at : at + len(dims)] = struct.pack("<4Q", 3, 3, 3, 4)
    path.write_bytes(bytes(data))
    with h5py.File(path, "r") as root:
        assert root["block1_conv1/block1_conv1/kernel:0"].id.get_num_chunks() == 2
    with pytest.raises(
        WeightsFileError,
        match=r"'block1_conv1' holds more stored chunks than its 1 chunks of shape \(3, 3, 3, 4\); the file is damaged",
    ):
        read_vgg19_h5(path)


def test_compressed_chunked_float16_and_float64_weights_load(tmp_path, small_h5):
    def recreate(root):
        for layer, dtype in (("block1_conv1", "f2"), ("block4_conv2", "f8"), ("block5_conv3", ">f4")):
            for index in (0, 1):
                name = root[layer].attrs["weight_names"][index].decode()
                value = root[layer][name][()]
                del root[layer][name]
                root[layer].create_dataset(
                    name, data=value.astype(dtype), chunks=True, compression="gzip", shuffle=True, fletcher32=True
                )

    source = small_h5()
    got, expected = read_vgg19_h5(altered(tmp_path, source, recreate)), read_vgg19_h5(source)
    for name in expected.conv:
        for mine, theirs in zip(got.conv[name], expected.conv[name]):
            np.testing.assert_allclose(mine, theirs, rtol=1e-3 if name == "conv1_1" else 1e-7, atol=0)


def test_a_keras_file_after_a_user_block_loads(tmp_path, small_h5):
    path = tmp_path / "with_user_block.h5"
    with h5py.File(small_h5(), "r") as original, h5py.File(path, "w", userblock_size=4096) as copy:
        for key, value in original.attrs.items():
            copy.attrs[key] = value
        for key in original:
            original.copy(original[key], copy)
    with open(path, "r+b") as handle:
        handle.write(b"a user block: whatever the writer wants, skipped by HDF5".ljust(64))
    assert_same_weights(read_vgg19_h5(path), read_vgg19_h5(small_h5()))


def test_a_link_to_dev_zero_is_refused(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    (tmp_path / "weights.h5").symlink_to("/dev/zero")
    with pytest.raises(WeightsFileError, match=r"weights\.h5: is a character device, not a regular file$"):
        read_vgg19_h5(tmp_path / "weights.h5")


# Pooling ------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooling_matches_the_numpy_reference(mat_file, pooling, rng):
    weights = read_vgg19_mat(mat_file)
    image = rng.normal(0, 60, size=(1, 37, 45, 3)).astype(np.float32)  # odd sides: SAME and VALID differ
    got = VGG19(weights, pooling=pooling)(image)
    expected = vgg_forward(image[0], weights.conv, pooling=pooling)
    for name in GRAPH_LAYERS:
        assert got[name].shape == (1,) + expected[name].shape, name
        scale = np.abs(expected[name]).max()
        np.testing.assert_allclose(got[name].numpy()[0], expected[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def test_max_pooling_keeps_the_course_layer_names_and_drops_odd_rows(mat_file):
    weights = read_vgg19_mat(mat_file)
    image = np.zeros((1, 300, 400, 3), np.float32)
    avg = VGG19(weights)(image, layers=["avgpool3", "avgpool5"])
    max_ = VGG19(weights, pooling="max")(image, layers=["avgpool3", "avgpool5"])
    assert VGG19(weights, pooling="max").layer_names == VGG19(weights).layer_names
    assert avg["avgpool3"].shape[1:3] == (38, 50) and max_["avgpool3"].shape[1:3] == (37, 50)
    assert avg["avgpool5"].shape[1:3] == (10, 13) and max_["avgpool5"].shape[1:3] == (9, 12)


def test_astype_keeps_the_pooling(mat_file, rng):
    model = VGG19(read_vgg19_mat(mat_file), pooling="max")
    wide = model.astype(tf.float64)
    assert wide.pooling == "max" and wide.dtype == tf.float64
    image = rng.normal(0, 60, size=(1, 33, 35, 3)).astype(np.float32)
    np.testing.assert_allclose(
        wide(image, layers=["conv5_1"])["conv5_1"].numpy(),
        model(image, layers=["conv5_1"])["conv5_1"].numpy(),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("pooling", ["mean", "MAX", None, 2])
def test_an_unknown_pooling_raises(mat_file, tmp_path, pooling):
    message = r"pooling must be one of 'avg', 'max'; got " + re.escape(repr(pooling))
    with pytest.raises(NSTError, match=message):
        VGG19(read_vgg19_mat(mat_file), pooling=pooling)
    with pytest.raises(NSTError, match=message):  # checked before the file is opened
        load_vgg_model(tmp_path / "absent.mat", pooling=pooling)

"""VGG19 weights files written by Keras itself (Keras 3, as installed), read by nst_tf: the same network.

Keras 3 writes its legacy HDF5 format (the format of Keras' published
vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5) through
``keras.src.legacy.saving.legacy_h5_format.save_weights_to_hdf5_group``:
the weights alone, as Keras 2's ``model.save_weights("x.h5")`` wrote them,
and a whole model, as ``model.save("x.h5")`` writes it. Unlike Keras 2 it
lists the layers in variable-length strings, an ``input_layer`` first. Its own
``model.save_weights`` writes another format, ``.weights.h5``.
"""

import re
import warnings

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from nst_tf import WeightsFileError, load_vgg_model, read_vgg19_h5, reshape_and_normalize_image
from nst_tf.plan.weights.keras import KERAS_CONV_LAYERS


def _random_biases(model, seed):
    """Draws the convolutions' biases, which Keras starts at zero, so that a lost or misplaced bias shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name in KERAS_CONV_LAYERS:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape).astype(np.float32)])


def save_legacy_weights(model, path):
    """Writes ``model``'s weights to ``path`` with Keras 3's writer of its legacy HDF5 layout."""
    # Keras 3's save_weights takes only .weights.h5 names; this is the writer behind Keras 2's save_weights("x.h5").
    with h5py.File(path, "w") as root, warnings.catch_warnings():
        # Keras' conversion of its variables warns under NumPy 2 (its __array__ takes no copy argument).
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy_h5_format.save_weights_to_hdf5_group(root, model)


def write_keras_files(model, folder):
    """What Keras 3 writes of ``model``: {"weights": legacy .h5, "model": model.save .h5, "keras3": .weights.h5}."""
    files = {
        "weights": folder / "vgg19_weights.h5",
        "model": folder / "vgg19.h5",
        "keras3": folder / "vgg19.weights.h5",
    }
    save_legacy_weights(model, files["weights"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save(files["model"])
        model.save_weights(files["keras3"])
    return files


@pytest.fixture(scope="session")
def keras_vgg19(tmp_path_factory):
    """Keras' own VGG19 without the dense layers (random weights) and the files Keras writes of it (80 MB each)."""
    keras.utils.set_random_seed(7)
    model = keras.applications.VGG19(include_top=False, weights=None)
    _random_biases(model, seed=7)
    return model, write_keras_files(model, tmp_path_factory.mktemp("keras3_vgg19"))


@pytest.fixture(scope="session")
def keras_vgg19_top(tmp_path_factory):
    """Keras' own VGG19 with its dense layers, on 32x32 images for 10 classes (about 150 MB), in Keras' legacy file."""
    keras.utils.set_random_seed(8)
    model = keras.applications.VGG19(include_top=True, weights=None, input_shape=(32, 32, 3), classes=10)
    _random_biases(model, seed=8)
    path = tmp_path_factory.mktemp("keras3_vgg19_top") / "vgg19_weights.h5"
    save_legacy_weights(model, path)
    return model, path


def test_keras_3_writes_variable_length_layer_names_beginning_with_its_input_layer(keras_vgg19):
    model, files = keras_vgg19
    assert type(model.layers[0]).__name__ == "InputLayer"
    for key, group in (("weights", "/"), ("model", "/model_weights")):
        with h5py.File(files[key], "r") as root:
            names = root[group].attrs.get_id("layer_names")
            assert h5py.check_string_dtype(names.dtype).length is None, key
            assert list(root[group].attrs["layer_names"]) == [layer.name for layer in model.layers], key


@pytest.mark.parametrize("kind", ["weights", "model"])
def test_keras_3_legacy_files_give_the_activations_of_the_keras_model_itself(keras_vgg19, kind):
    model, files = keras_vgg19
    # 40x56: the third pooling halves 5x7, so Keras' VALID max pooling differs from SAME in shape.
    rgb = np.random.default_rng(3).uniform(0, 255, size=(1, 40, 56, 3)).astype(np.float32)
    names = [layer.name for layer in model.layers if layer.name.startswith("block")]
    assert len(names) == 21
    outputs = keras.Model(model.input, [model.get_layer(name).output for name in names])
    expected = outputs(keras.applications.vgg19.preprocess_input(rgb.copy()))

    got = load_vgg_model(files[kind], pooling="max")(reshape_and_normalize_image(rgb[0]))
    for keras_name, value in zip(names, expected):
        value = np.asarray(value)
        conv = re.fullmatch(r"block(\d)_conv(\d)", keras_name)
        mine = got[f"conv{conv[1]}_{conv[2]}" if conv else f"avgpool{keras_name[5]}"].numpy()
        assert mine.shape == value.shape, keras_name
        scale = np.abs(value).max()
        assert scale > 0, keras_name
        np.testing.assert_allclose(mine, value, rtol=1e-4, atol=1e-4 * scale, err_msg=keras_name)


def assert_weights_of(model, weights):
    """``weights`` (VGGWeights) hold ``model``'s convolutions, conv1_1's input channels reversed (BGR to RGB)."""
    assert list(weights.conv) == list(KERAS_CONV_LAYERS.values())
    for keras_name, name in KERAS_CONV_LAYERS.items():
        kernel, bias = model.get_layer(keras_name).get_weights()
        if keras_name == "block1_conv1":
            kernel = kernel[:, :, ::-1, :]
        np.testing.assert_array_equal(weights.conv[name][0], kernel, err_msg=keras_name)
        np.testing.assert_array_equal(weights.conv[name][1], bias, err_msg=keras_name)


@pytest.mark.parametrize("kind", ["weights", "model"])
def test_keras_3_legacy_files_hold_the_keras_models_numbers(keras_vgg19, kind):
    model, files = keras_vgg19
    assert_weights_of(model, read_vgg19_h5(files[kind]))


def test_keras_3_legacy_file_with_the_dense_layers_reads_the_convolutions(keras_vgg19_top):
    model, path = keras_vgg19_top
    with h5py.File(path, "r") as root:
        assert [name for name in root.attrs["layer_names"]][-4:] == ["flatten", "fc1", "fc2", "predictions"]
    assert_weights_of(model, read_vgg19_h5(path))


def test_a_keras_3_weights_h5_file_is_refused_in_one_line_naming_a_format_that_loads(keras_vgg19):
    model, files = keras_vgg19
    with pytest.raises(WeightsFileError) as raised:
        load_vgg_model(files["keras3"])
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{files['keras3']}: is a Keras 3 '.weights.h5' file"), message
    assert "model.save('vgg19.h5')" in message, message
    # What the message asks for: files["model"] is that file.
    assert files["model"].name == "vgg19.h5"
    assert_weights_of(model, read_vgg19_h5(files["model"]))


def test_the_command_refuses_a_keras_3_weights_h5_file_in_one_line(keras_vgg19, workspace, capsys, cli_args):
    from nst_tf.app.cli import main

    path = keras_vgg19[1]["keras3"]
    assert main(cli_args("--model", str(path))) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nst-tf: error: {path}: is a Keras 3 '.weights.h5' file"), lines
    assert not (workspace / "out").exists()

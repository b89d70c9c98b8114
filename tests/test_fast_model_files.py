"""The fast style model's network (shapes, instance normalization, styles) and its folder (description and
weights read back, and refused in one line when they are not what nst_tf wrote)."""

import json
import os

import h5py
import numpy as np
import pytest

from nst_tf.ground.errors import NSTError
from nst_tf.plan.fast_model import MAX_DESCRIPTION_BYTES, FastModelDescription, FastModelFolder, TransformSpec
from nst_tf.runs.fast_models import load_fast_model, new_fast_model, save_fast_model


def _description(styles=1, width=0.25, upsampling="resize"):
    names = tuple(f"style{index}" for index in range(styles))
    return FastModelDescription(TransformSpec(width=width, upsampling=upsampling, styles=styles), names, {"seed": 1})


def _pixels(batch, height, width, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def two_styles():
    model = new_fast_model(_description(styles=2))
    # Different scales and shifts per style, so that the styles' outputs differ.
    for weight in model.net.weights:
        if weight.path.endswith("gamma") or weight.path.endswith("beta"):
            shape = tuple(weight.shape)
            weight.assign(np.random.default_rng(len(weight.path)).normal(1.0, 0.5, shape).astype(np.float32))
    return model


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"width": 0}, "width must be above 0"),
        ({"width": float("nan")}, "width must be a finite number"),
        ({"width": 5}, "at most 4"),
        ({"blocks": -1}, "blocks must be a whole number of at least 0"),
        ({"blocks": 2.5}, "blocks must be"),
        ({"upsampling": "bicubic"}, "upsampling must be one of resize, transposed"),
        ({"styles": 0}, "styles must be a positive whole number"),
        ({"styles": 65}, "styles must be at most 64"),
    ],
)
def test_a_spec_out_of_range_is_refused_naming_its_field(fields, message):
    with pytest.raises(NSTError, match=message):
        TransformSpec(**fields)


@pytest.mark.parametrize("width, channels", [(1.0, (32, 64, 128)), (0.5, (16, 32, 64)), (0.01, (4, 4, 4))])
def test_channels_are_johnsons_times_the_width(width, channels):
    assert TransformSpec(width=width).channels == channels


@pytest.mark.parametrize("upsampling", ["resize", "transposed"])
@pytest.mark.parametrize("height, width", [(8, 8), (37, 51), (64, 30)])
def test_the_network_keeps_any_height_and_width_and_gives_pixels(upsampling, height, width):
    model = new_fast_model(_description(upsampling=upsampling))
    result = np.asarray(model(_pixels(2, height, width)))
    assert result.shape == (2, height, width, 3)
    assert result.min() >= 0 and result.max() <= 255
    assert result.std() > 1  # not a constant image


def test_each_image_of_a_batch_is_stylized_by_itself():
    model = new_fast_model(_description())
    batch = _pixels(3, 24, 20)
    together = np.asarray(model(batch))
    alone = np.concatenate([np.asarray(model(batch[i : i + 1])) for i in range(3)])
    np.testing.assert_allclose(together, alone, atol=1e-3)


def test_instance_normalization_matches_numpy():
    from nst_tf.tensors.transform_net import ConditionalInstanceNorm

    x = np.random.default_rng(1).normal(3.0, 2.0, (2, 5, 7, 4)).astype(np.float32)
    weights = np.array([[1.0, 0.0], [0.25, 0.75]], np.float32)
    layer = ConditionalInstanceNorm(2)
    layer.build([x.shape, weights.shape])
    gamma = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]], np.float32)
    beta = np.array([[0.0, 1.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]], np.float32)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    mean = x.mean(axis=(1, 2), keepdims=True)
    normalized = (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    expected = normalized * (weights @ gamma)[:, None, None] + (weights @ beta)[:, None, None]
    np.testing.assert_allclose(np.asarray(layer([x, weights])), expected, rtol=1e-4, atol=1e-4)


def test_a_style_by_name_is_its_one_hot_weights_and_styles_differ(two_styles):
    pixels = _pixels(1, 16, 16)
    second = np.asarray(two_styles(pixels, "style1"))
    np.testing.assert_array_equal(second, np.asarray(two_styles(pixels, (0, 1))))
    assert np.abs(second - np.asarray(two_styles(pixels))).max() > 1  # the default is the first style


def test_weights_are_normalized_to_sum_to_one(two_styles):
    assert two_styles.style_weights((1, 3)) == (0.25, 0.75)


@pytest.mark.parametrize(
    "weights, message",
    [("style9", "not one of this model's: style0, style1"), ((1,), "expected 2 numbers"), ((0, 0), "not all 0")],
)
def test_wrong_style_weights_are_refused(two_styles, weights, message):
    with pytest.raises(NSTError, match=message):
        two_styles.style_weights(weights)


def test_a_saved_model_loads_back_with_the_same_output(tmp_path, two_styles):
    save_fast_model(tmp_path / "model", two_styles)
    loaded = load_fast_model(tmp_path / "model")
    pixels = _pixels(1, 20, 28)
    np.testing.assert_array_equal(np.asarray(loaded(pixels, (0.5, 0.5))), np.asarray(two_styles(pixels, (0.5, 0.5))))
    assert loaded.description == two_styles.description
    assert sorted(os.listdir(tmp_path / "model")) == ["fast_model.json", "weights.weights.h5"]  # no temporary left


def _saved(tmp_path):
    folder = tmp_path / "model"
    save_fast_model(folder, new_fast_model(_description()))
    return folder


def _rewrite(folder, change):
    path = folder / "fast_model.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(format="something else"), "not an nst_tf fast style model"),
        (lambda d: d.update(version=2), "version 2 of the format"),
        (lambda d: d["network"].update(width=100), "network: width must be above 0 and at most 4"),
        (lambda d: d["network"].update(code="import os"), "expected an object with fields"),
        (lambda d: d.update(style_names=["a", "b"]), "expected 1 names"),
        (lambda d: d.update(training=[]), "training: expected an object"),
    ],
)
def test_a_description_that_is_not_one_is_refused_in_one_line(tmp_path, change, message):
    folder = _saved(tmp_path)
    _rewrite(folder, change)
    with pytest.raises(NSTError, match=message) as caught:
        load_fast_model(folder)
    assert "\n" not in str(caught.value) and str(folder) in str(caught.value)


def test_a_missing_folder_or_description_names_the_training_command(tmp_path):
    with pytest.raises(NSTError, match="no such folder; train one with: python -m nst_tf.train"):
        load_fast_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NSTError, match="no fast_model.json in it"):
        load_fast_model(tmp_path / "empty")


def test_a_description_that_is_not_json_or_too_large_is_refused(tmp_path):
    folder = _saved(tmp_path)
    (folder / "fast_model.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(NSTError, match="is not JSON"):
        load_fast_model(folder)
    (folder / "fast_model.json").write_bytes(b" " * (MAX_DESCRIPTION_BYTES + 1))
    with pytest.raises(NSTError, match="larger than"):
        load_fast_model(folder)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_a_pipe_as_the_description_is_refused_without_blocking(tmp_path):
    folder = _saved(tmp_path)
    os.remove(folder / "fast_model.json")
    os.mkfifo(folder / "fast_model.json")
    with pytest.raises(NSTError, match="named pipe"):
        FastModelFolder(folder).read_description()


def test_a_weights_file_larger_than_the_network_is_refused_before_it_is_read(tmp_path):
    folder = _saved(tmp_path)
    with h5py.File(folder / "weights.weights.h5", "a") as file:
        # A dataset the network has no room for; allocated lazily, so nothing large is written.
        file.create_dataset("extra", shape=(10**9,), dtype="float32")
    with pytest.raises(NSTError, match=r"holds \d+ numbers where the network of fast_model.json has \d+"):
        load_fast_model(folder)


def test_a_weights_file_of_integers_or_not_hdf5_is_refused(tmp_path):
    folder = _saved(tmp_path)
    with h5py.File(folder / "weights.weights.h5", "a") as file:
        file.create_dataset("ints", data=np.arange(3))
    with pytest.raises(NSTError, match="holds a int64 array; weights are floats"):
        load_fast_model(folder)
    (folder / "weights.weights.h5").write_bytes(b"PK\x03\x04 a zip, not HDF5")
    with pytest.raises(NSTError, match="is not HDF5"):
        load_fast_model(folder)


def test_weights_of_another_network_do_not_load(tmp_path):
    folder = _saved(tmp_path)
    other = tmp_path / "other"
    save_fast_model(other, new_fast_model(_description(width=0.125)))
    os.replace(other / "weights.weights.h5", folder / "weights.weights.h5")
    with pytest.raises(NSTError, match="its weights are of another network than fast_model.json describes"):
        load_fast_model(folder)


def test_a_missing_weights_file_says_when_it_is_written(tmp_path):
    folder = _saved(tmp_path)
    os.remove(folder / "weights.weights.h5")
    with pytest.raises(NSTError, match="no weights.weights.h5 in it; the training saves it at the end"):
        load_fast_model(folder)

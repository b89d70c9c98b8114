"""Exporting a fast style model: the SavedModel and the TensorFlow Lite file give the model's own output at any
size, their signatures are the documented ones, a second style blends, and a new export replaces the old whole."""

import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from nst_tf.ground.errors import NSTError
from nst_tf.plan.fast_model import FastModelDescription, TransformSpec
from nst_tf.runs import fast_export
from nst_tf.runs.fast_export import export_fast_model
from nst_tf.runs.fast_models import new_fast_model
from nst_tf.tensors.quiet import tensorflow as tf

#: The reloaded SavedModel runs the same graph with the same kernels; TensorFlow's graph optimizer may fuse a few
#: operations, which changes float32 rounding (about 1e-7 of values up to 255) but nothing a gray level would show.
SAVED_MODEL_TOLERANCE = 1e-3
#: TensorFlow Lite (XNNPACK) sums the convolutions' products in another order: about 1e-4 apart here at 0-255
#: (measured 2e-4), bounded at a hundredth of a gray level.
TFLITE_TOLERANCE = 1e-2
#: Sizes the signatures are called at: even sides, and odd ones that the network pads and crops back.
SIZES = [(1, 16, 20), (2, 13, 17)]


def _model(styles, seed=0):
    """A small network with a different scale and shift per style, so that the styles' outputs differ."""
    names = tuple(f"style{index}" for index in range(styles))
    model = new_fast_model(FastModelDescription(TransformSpec(width=0.125, blocks=1, styles=styles), names))
    return _randomize(model, seed)


def _randomize(model, seed):
    """``model`` with its normalizations' scales and shifts drawn anew from ``seed``."""
    rng = np.random.default_rng(seed)
    for weight in model.net.weights:
        if weight.path.endswith(("gamma", "beta")):
            weight.assign(rng.normal(1.0, 0.5, tuple(weight.shape)).astype(np.float32))
    return model


def _pixels(batch, height, width, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype(np.float32)


def _interpreter(path):
    with warnings.catch_warnings():  # TensorFlow's Interpreter says LiteRT's package now holds it; it still runs
        warnings.simplefilter("ignore", UserWarning)
        return tf.lite.Interpreter(model_path=path)


@pytest.fixture(scope="module")
def one_style(tmp_path_factory):
    model = _model(1)
    folder = tmp_path_factory.mktemp("one")
    return model, export_fast_model(model, folder)


@pytest.fixture(scope="module")
def two_styles(tmp_path_factory):
    """A model of two styles exported with the second one as serving_default's."""
    model = _model(2)
    folder = tmp_path_factory.mktemp("two")
    return model, export_fast_model(model, folder, style_weights="style1")


@pytest.mark.parametrize("batch, height, width", SIZES)
def test_the_saved_models_serving_default_gives_the_models_output(one_style, batch, height, width):
    model, exported = one_style
    images = _pixels(batch, height, width)
    served = tf.saved_model.load(exported.saved_model).signatures["serving_default"](images=tf.constant(images))
    assert set(served) == {"stylized"}
    np.testing.assert_allclose(served["stylized"].numpy(), model(images).numpy(), atol=SAVED_MODEL_TOLERANCE)


@pytest.mark.parametrize("batch, height, width", SIZES)
def test_the_tflite_model_gives_the_models_output_at_any_size(one_style, batch, height, width):
    model, exported = one_style
    images = _pixels(batch, height, width, seed=1)
    stylized = _interpreter(exported.tflite).get_signature_runner("serving_default")(images=images)["stylized"]
    assert stylized.shape == (batch, height, width, 3)
    np.testing.assert_allclose(stylized, model(images).numpy(), atol=TFLITE_TOLERANCE)


@pytest.mark.parametrize(
    "fixture, signatures",
    [
        ("one_style", {"serving_default": {"images": [None, None, None, 3]}}),
        (
            "two_styles",
            {
                "serving_default": {"images": [None, None, None, 3]},
                "blend": {"images": [None, None, None, 3], "style_weights": [None, 2]},
            },
        ),
    ],
)
def test_the_signatures_are_the_documented_ones(request, fixture, signatures):
    _, exported = request.getfixturevalue(fixture)
    assert exported.signatures == tuple(signatures)
    loaded = tf.saved_model.load(exported.saved_model)
    assert set(loaded.signatures) == set(signatures)
    interpreter = _interpreter(exported.tflite)
    lite = interpreter.get_signature_list()
    assert set(lite) == set(signatures)
    for name, inputs in signatures.items():
        _, specs = loaded.signatures[name].structured_input_signature
        assert {key: spec.shape.as_list() for key, spec in specs.items()} == inputs
        assert {spec.dtype for spec in specs.values()} == {tf.float32}
        outputs = loaded.signatures[name].structured_outputs
        assert list(outputs) == ["stylized"] and outputs["stylized"].shape.as_list() == [None, None, None, 3]
        assert outputs["stylized"].dtype == tf.float32
        assert sorted(lite[name]["inputs"]) == sorted(inputs) and lite[name]["outputs"] == ["stylized"]
        details = interpreter.get_signature_runner(name).get_input_details()
        for key, shape in inputs.items():
            assert details[key]["shape_signature"].tolist() == [-1 if side is None else side for side in shape]
            assert details[key]["dtype"] == np.float32


def test_a_second_style_serves_by_default_and_blends(two_styles):
    model, exported = two_styles
    images = _pixels(2, 13, 17, seed=2)
    mix = np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)
    want = np.concatenate([model(images[:1], [0.25, 0.75]).numpy(), model(images[1:], [0.5, 0.5]).numpy()])
    first, second = model(images, "style0").numpy(), model(images, "style1").numpy()
    assert np.abs(first - second).max() > 10  # the styles differ, so each comparison below tells them apart
    loaded = tf.saved_model.load(exported.saved_model)
    served = loaded.signatures["serving_default"](images=tf.constant(images))["stylized"].numpy()
    np.testing.assert_allclose(served, second, atol=SAVED_MODEL_TOLERANCE)
    blended = loaded.signatures["blend"](images=tf.constant(images), style_weights=tf.constant(mix))["stylized"]
    np.testing.assert_allclose(blended.numpy(), want, atol=SAVED_MODEL_TOLERANCE)
    lite = _interpreter(exported.tflite).get_signature_runner("blend")(images=images, style_weights=mix)
    np.testing.assert_allclose(lite["stylized"], want, atol=TFLITE_TOLERANCE)
    assert exported.style_weights == (0.0, 1.0)


def test_a_new_export_replaces_the_previous_one_whole(tmp_path):
    model = _model(1, seed=3)
    export_fast_model(model, tmp_path)
    images = _pixels(1, 12, 12, seed=4)
    before = model(images).numpy()
    _randomize(model, seed=5)  # as a longer training would change them
    want = model(images).numpy()
    assert np.abs(want - before).max() > 10
    again = export_fast_model(model, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["model.tflite", "saved_model"]  # no temporary folder left behind
    served = tf.saved_model.load(again.saved_model).signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(served["stylized"].numpy(), want, atol=SAVED_MODEL_TOLERANCE)
    lite = _interpreter(again.tflite).get_signature_runner("serving_default")(images=images)["stylized"]
    np.testing.assert_allclose(lite, want, atol=TFLITE_TOLERANCE)


def test_an_export_that_fails_leaves_the_previous_one_as_it_was(one_style, tmp_path, monkeypatch):
    model, exported = one_style
    shutil.copytree(exported.saved_model, tmp_path / "saved_model")
    shutil.copy(exported.tflite, tmp_path / "model.tflite")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}

    def fails(saved_model, signatures):
        raise RuntimeError("the converter stopped")

    monkeypatch.setattr(fast_export, "_tflite_bytes", fails)  # after the new SavedModel is written
    with pytest.raises(RuntimeError, match="the converter stopped"):
        export_fast_model(model, tmp_path, style_weights=None)
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


#: An export in a fresh process (the converter's C++ line comes once a process), Python's logging showing INFO
#: lines as a notebook's may: the library prints nothing.
QUIET_EXPORT = """
import logging, sys
logging.basicConfig(level=logging.INFO)
from nst_tf.plan.fast_model import FastModelDescription, TransformSpec
from nst_tf.runs.fast_export import export_fast_model
from nst_tf.runs.fast_models import new_fast_model
spec = TransformSpec(width=0.125, blocks=1)
export_fast_model(new_fast_model(FastModelDescription(spec, ("style",))), sys.argv[1])
"""


def test_an_export_prints_nothing(tmp_path):
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run(
        [sys.executable, "-c", QUIET_EXPORT, str(tmp_path)], capture_output=True, text=True, env=environment
    )
    assert run.returncode == 0 and (run.stdout, run.stderr) == ("", ""), run.stderr[-2000:]
    assert (tmp_path / "model.tflite").is_file()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: (path / "saved_model").write_text("mine"), "saved_model there is not a SavedModel"),
        (lambda path: (path / "saved_model").mkdir(), "saved_model there is not a SavedModel"),
        (lambda path: (path / "model.tflite").mkdir(), "model.tflite there is not a regular file"),
        (lambda path: (path / "out").write_text("mine"), "it is not a folder"),
    ],
)
def test_an_export_refuses_to_replace_what_it_did_not_write(tmp_path, make, message):
    make(tmp_path)
    before = {path: path.read_bytes() if path.is_file() else None for path in tmp_path.rglob("*")}
    with pytest.raises(NSTError, match=message):
        export_fast_model(_model(1), tmp_path / "out" if (tmp_path / "out").exists() else tmp_path)
    assert {path: path.read_bytes() if path.is_file() else None for path in tmp_path.rglob("*")} == before


@pytest.mark.parametrize("weights, message", [("style9", "is not one of this model's"), ([1, -1], "at least 0")])
def test_style_weights_not_the_models_are_refused_before_anything_is_written(tmp_path, weights, message):
    with pytest.raises(NSTError, match=message):
        export_fast_model(_model(2), tmp_path / "out", style_weights=weights)
    assert not (tmp_path / "out").exists()

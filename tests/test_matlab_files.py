"""MatConvNet's VGG-19 as MATLAB files that real writers produce: SciPy's savemat (MAT 5) and MATLAB's save -v7.3.

MatConvNet publishes imagenet-vgg-verydeep-19.mat as a MATLAB 5.0 MAT-file
(MATLAB's -v7, variables compressed), which SciPy reads. A user who loads it
in MATLAB and saves it again with -v7.3 gets an HDF5 file in MATLAB's own
layout, which SciPy cannot read; the reader refuses it in one line naming
the fix (save it with -v7, or download the original again).
"""

import itertools
import re

import h5py
import numpy as np
import pytest
import scipy.io

from nst_tf import CONFIG, WeightsFileError, load_vgg_model, read_vgg19_h5, read_vgg19_mat
from nst_tf.plan.networks.vgg19 import CONV_INDEX
from nst_tf.plan.synthetic import vgg19_mat_contents
from nst_tf.plan.weights.readers import weights_file_kind

# MATLAB's classes of NumPy's types, as its MATLAB_class attribute names them.
_MATLAB_CLASSES = {"float64": "double", "float32": "single", "bool": "logical", "uint8": "uint8", "int32": "int32"}


def _class(node, name):
    node.attrs.create("MATLAB_class", np.bytes_(name))  # a fixed-length ASCII string, as MATLAB writes it


def _matlab_value(parent, name, value, refs, names):
    """Writes ``value`` as MATLAB -v7.3 stores it: dict -> struct group, str -> char, object array -> cell."""
    if isinstance(value, dict):
        group = parent.create_group(name)
        _class(group, "struct")
        fields = [np.frombuffer(field.encode(), dtype="S1") for field in value]
        group.attrs.create("MATLAB_fields", np.array(fields + [None], dtype=object)[:-1], dtype=h5py.vlen_dtype("S1"))
        for field, item in value.items():
            _matlab_value(group, field, item, refs, names)
        return group
    if isinstance(value, str):
        # A 1xN char array: UTF-16 code units, stored transposed (HDF5 lists MATLAB's dimensions in reverse).
        dataset = parent.create_dataset(name, data=np.array([[ord(c)] for c in value], dtype=np.uint16))
        _class(dataset, "char")
        dataset.attrs.create("MATLAB_int_decode", np.int32(2))
        return dataset
    array = np.asarray(value)
    if array.dtype == object:
        # A cell: references to its elements, each kept in the group #refs#.
        cells = [_matlab_value(refs, next(names), item, refs, names).ref for item in array.ravel(order="F")]
        dataset = parent.create_dataset(name, data=np.array(cells, dtype=h5py.ref_dtype).reshape(array.shape[::-1]))
        _class(dataset, "cell")
        return dataset
    kind = _MATLAB_CLASSES[array.dtype.name]
    if array.size == 0:
        # MATLAB stores an empty array's dimensions in place of its values.
        dataset = parent.create_dataset(name, data=np.array(array.shape, dtype=np.uint64))
        dataset.attrs.create("MATLAB_empty", np.uint8(1))
    else:
        dataset = parent.create_dataset(
            name, data=np.atleast_2d(array).T.astype(np.uint8 if kind == "logical" else None)
        )
    _class(dataset, kind)
    return dataset


def write_matlab_v73(path, variables):
    """Writes ``variables`` (as for scipy.io.savemat) to ``path`` as MATLAB's ``save(..., '-v7.3')`` lays them out.

    An HDF5 file after a 512-byte user block holding MATLAB's header (116
    bytes of text, 8 of subsystem offset, version 0x0200, endian mark "IM");
    every array carries a ``MATLAB_class`` attribute; a cell is a dataset of
    object references to its elements, which live in the group ``#refs#``.
    """
    # MATLAB names the referenced objects a, b, ..., z, aa, ab, ...
    letters = "abcdefghijklmnopqrstuvwxyz"
    names = ("".join(name) for size in itertools.count(1) for name in itertools.product(letters, repeat=size))
    with h5py.File(path, "w", userblock_size=512) as root:
        refs = root.create_group("#refs#")
        canonical = refs.create_dataset(next(names), data=np.zeros(2, dtype=np.uint64))
        _class(canonical, "canonical empty")
        canonical.attrs.create("MATLAB_empty", np.uint8(1))
        for name, value in variables.items():
            _matlab_value(root, name, value, refs, names)
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Tue Mar  5 10:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as handle:
        handle.write(text.ljust(116) + b" " * 8 + b"\x00\x02IM")
    return path


@pytest.fixture(scope="module")
def v73_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("v73") / "imagenet-vgg-verydeep-19.mat"
    return write_matlab_v73(path, vgg19_mat_contents("new", width_divisor=64, seed=4))


def test_the_v73_file_is_hdf5_in_matlabs_layout(v73_file):
    with open(v73_file, "rb") as handle:
        assert handle.read(19) == b"MATLAB 7.3 MAT-file"
    with h5py.File(v73_file, "r") as root:
        assert root.userblock_size == 512
        layers = root["layers"]
        assert layers.attrs["MATLAB_class"] == b"cell" and layers.shape == (43, 1)
        conv1_1 = root[layers[0, 0]]
        assert conv1_1.name.startswith("/#refs#/") and conv1_1.attrs["MATLAB_class"] == b"struct"
        assert "".join(map(chr, conv1_1["name"][:, 0])) == "conv1_1"
        kernel = root[conv1_1["weights"][0, 0]]
        assert kernel.attrs["MATLAB_class"] == b"single" and kernel.shape == (1, 3, 3, 3)  # (3, 3, 3, 1) reversed
        assert root["meta/normalization/averageImage"].shape == (3, 1, 1)


@pytest.mark.parametrize("load", [read_vgg19_mat, load_vgg_model])
def test_a_matlab_v73_file_is_refused_in_one_line_naming_the_fix(v73_file, load):
    assert weights_file_kind(v73_file) == "mat"
    with pytest.raises(WeightsFileError) as raised:
        load(v73_file)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{v73_file}: "), message
    assert re.search(r"is a MATLAB 7\.3 \(HDF5\) file, which SciPy cannot read; save it in MATLAB with", message)
    assert "'-v7'" in message and "imagenet-vgg-verydeep-19.mat" in message, message


def test_the_keras_reader_sends_a_matlab_v73_file_to_the_mat_reader(v73_file):
    with pytest.raises(WeightsFileError, match=r"is a MATLAB \.mat file, not Keras' HDF5 weights; read it with"):
        read_vgg19_h5(v73_file)


def test_the_command_refuses_a_matlab_v73_file_in_one_line(v73_file, workspace, capsys, cli_args):
    from nst_tf.app.cli import main

    assert main(cli_args("--model", str(v73_file))) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nst-tf: error: {v73_file}: "), lines
    assert "MATLAB 7.3" in lines[0]
    assert not (workspace / "out").exists()


@pytest.mark.parametrize("compress", [False, True], ids=["v6", "v7-compressed"])
@pytest.mark.parametrize("layout", ["new", "old"])
def test_scipy_savemat_files_in_matconvnets_layout_hold_what_was_saved(tmp_path, layout, compress):
    contents = vgg19_mat_contents(layout, width_divisor=32, seed=9)
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    scipy.io.savemat(path, contents, do_compression=compress)
    weights = read_vgg19_mat(path)
    assert weights.layout == layout and list(weights.conv) == list(CONV_INDEX)
    for name, index in CONV_INDEX.items():
        kernel, bias = contents["layers"][0, index]["weights"][0]
        np.testing.assert_array_equal(weights.conv[name][0], kernel, err_msg=name)
        np.testing.assert_array_equal(weights.conv[name][1], bias.reshape(-1), err_msg=name)
    # The new layout stores the mean pixel, the old one an image whose mean over its pixels is the mean pixel.
    np.testing.assert_allclose(weights.mean_pixel, CONFIG.MEANS.reshape(3), rtol=0, atol=1e-4)

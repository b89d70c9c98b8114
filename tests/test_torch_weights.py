"""torch.save and .safetensors weights read without torch (nst_tf.plan.weights: torchfile, squeezenet_reader).

The files in tests/fixtures/torch/ were written by real torch (make_fixtures.py there says how), and
expected.npz holds their tensors as torch.load gave them. Everything hostile is made here by hand: pickles
assembled opcode by opcode (``_ops``), zip archives field by field (``_hand_zip``) or by Python's zipfile,
so that no expected value or file comes from the code under test. Reads that could exhaust memory run in a
child process that reports its own peak (VmHWM).
"""

import collections
import io
import json
import os
import pickle
import pickletools
import queue
import shlex
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from nst_tf.ground.errors import NSTError, WeightsFileError
from nst_tf.plan.networks.squeezenet import FEATURE_PARAMETERS, PARAMETERS, random_squeezenet_weights
from nst_tf.plan.weights.squeezenet_reader import (
    SQUEEZENET_MAX_BYTES,
    read_squeezenet,
    squeezenet_file_kind,
    write_squeezenet_weights,
)
from nst_tf.plan.weights.torchfile import read_safetensors, read_torch_file, write_safetensors, write_state_dict

# An optional dependency of nst_tf (the "safetensors" extra), and part of the "test" extra: its tests run
# everywhere the tests do, never skipped.
import safetensors.numpy as safetensors_numpy

#: The formats written and read.
FORMATS = ["zip", "legacy", "safetensors"]

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "torch"
EXPECTED = np.load(FIXTURES / "expected.npz")
RECORDED = sorted({key.split("::")[0] for key in EXPECTED.files if "::" in key})
MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
LIMIT = 1 << 20  # the byte ceiling of most reads here
SQUEEZE = "squeezenet1_1-b8a52dc0"


def _recorded(name):
    """The tensors torch.load gave for fixture ``name``, in the file's order."""
    return {key.split("::", 1)[1]: EXPECTED[key] for key in EXPECTED.files if key.startswith(f"{name}::")}


def _one_line(error, path):
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    return message


# Pickles by hand: protocol 2 opcodes, no memo ---------------------------------------------------


def G(module, name):
    """GLOBAL module.name."""
    return f"c{module}\n{name}\n".encode()


def S(text):
    """BINUNICODE."""
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def I(number):  # noqa: E743
    """An int: BININT1, BININT or LONG1."""
    if 0 <= number < 256:
        return b"K" + bytes([number])
    if -(1 << 31) <= number < 1 << 31:
        return b"J" + struct.pack("<i", number)
    data = number.to_bytes((number.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def T(*parts):
    """MARK parts TUPLE."""
    return b"(" + b"".join(parts) + b"t"


def D(*pairs):
    """An OrderedDict of (key ops, value ops) pairs, as torch pickles a state dict."""
    body = b"(" + b"".join(key + value for key, value in pairs) + b"u" if pairs else b""
    return G("collections", "OrderedDict") + b")R" + body


def L(*parts):
    return b"](" + b"".join(parts) + b"e"


STORAGE_NAMES = {
    "float32": "FloatStorage",
    "float16": "HalfStorage",
    "float64": "DoubleStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


def _tensor(key, numel, offset, size, stride, storage="FloatStorage", legacy=False):
    """``_rebuild_tensor_v2`` of storage ``key`` (declared ``numel`` elements) at ``offset``, ``size``, ``stride``."""
    pid = T(S("storage"), G("torch", storage), S(key), S("cpu"), I(numel), *([b"N"] if legacy else [])) + b"Q"
    hooks = G("collections", "OrderedDict") + b")R"
    args = T(pid, I(offset), T(*map(I, size)), T(*map(I, stride)), b"\x89", hooks)
    return G("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _c_strides(shape):
    strides, step = [], 1
    for length in reversed(shape):
        strides.insert(0, step)
        step *= max(length, 1)
    return strides


def _ops(value, storages, legacy=False):
    """Pickle opcodes for ``value``: dicts, lists, tuples, str, int, None, and arrays as tensors in ``storages``."""
    if isinstance(value, np.ndarray):
        key = str(len(storages))
        storages[key] = np.ascontiguousarray(value)
        name = STORAGE_NAMES[str(value.dtype)]
        return _tensor(key, value.size, 0, value.shape, _c_strides(value.shape), name, legacy)
    if isinstance(value, dict):
        return D(*[(_ops(k, storages, legacy), _ops(v, storages, legacy)) for k, v in value.items()])
    if isinstance(value, list):
        return L(*[_ops(item, storages, legacy) for item in value])
    if isinstance(value, tuple):
        return T(*[_ops(item, storages, legacy) for item in value])
    if isinstance(value, str):
        return S(value)
    if value is None:
        return b"N"
    return I(value)


# Containers by hand ---------------------------------------------------------------------------


def _hand_zip(entries, comment=b""):
    """A zip archive assembled field by field.

    Args:
        entries: dicts with ``name`` and ``data`` (the bytes as stored), and
            optionally ``method`` (0), ``size`` (declared, inflated), ``crc``
            (of the inflated bytes), ``flags`` (0; with 8 the local header
            holds zeros and ``descriptor`` follows the data).
    """
    out, directory = b"", b""
    for entry in entries:
        name, data = entry["name"].encode(), entry["data"]
        method, flags = entry.get("method", 0), entry.get("flags", 0)
        size, crc = entry.get("size", len(data)), entry.get("crc", zlib.crc32(data))
        local = (0, 0, 0) if flags & 8 else (crc, len(data), size)
        offset = len(out)
        out += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, flags, method, 0, 0, *local, len(name), 0) + name + data
        out += entry.get("descriptor", b"")
        fields = (20, 20, flags, method, 0, 0, crc, len(data), size, len(name), 0, 0, 0, 0, 0, offset)
        directory += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", *fields) + name
    count = len(entries)
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(out), len(comment))
    return out + directory + end + comment


def _zip_entries(pickled, storages, top="archive", byteorder="<"):
    entries = [{"name": f"{top}/data.pkl", "data": b"\x80\x02" + pickled + b"."}]
    for key, array in storages.items():
        entries.append(
            {"name": f"{top}/data/{key}", "data": array.astype(array.dtype.newbyteorder(byteorder)).tobytes()}
        )
    entries.append({"name": f"{top}/version", "data": b"3\n"})
    return entries


SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


def _legacy_bytes(pickled, storages, keys=None, counts=None, magic=0x1950A86A20F9469CFC6C, info=None, tail=b""):
    """torch.save's legacy format by hand: Python's pickles of the header and keys, ``pickled``, the storages."""
    keys = sorted(storages) if keys is None else keys
    counts = counts or {}
    head = b"".join(pickle.dumps(item, protocol=2) for item in (magic, 1001, SYS_INFO if info is None else info))
    data = b"".join(struct.pack("<q", counts.get(k, storages[k].size)) + storages[k].tobytes() for k in keys)
    return head + b"\x80\x02" + pickled + b"." + pickle.dumps(keys, protocol=2) + data + tail


def _torch_file(path, value, format="zip"):
    """``value`` saved in torch.save's ``format`` by this file's own pickler and containers; returns ``path``."""
    storages = {}
    pickled = _ops(value, storages, legacy=format == "legacy")
    data = _hand_zip(_zip_entries(pickled, storages)) if format == "zip" else _legacy_bytes(pickled, storages)
    Path(path).write_bytes(data)
    return path


def _raw_file(path, pickled, storages, format="zip"):
    """A torch.save file of the raw pickle body ``pickled`` and ``storages`` (key -> array)."""
    data = _hand_zip(_zip_entries(pickled, storages)) if format == "zip" else _legacy_bytes(pickled, storages)
    Path(path).write_bytes(data)
    return path


def _squeezenet_state(seed=0, dtype=np.float32):
    """torchvision's 52 SqueezeNet tensors, random, as a dict in torchvision's order."""
    rng = np.random.default_rng(seed)
    return {key: rng.standard_normal(shape).astype(dtype) for key, shape in PARAMETERS.items()}


def _deflate_bomb(mib):
    """A raw deflate stream of ``mib`` MiB of zeros, about 1 KB per MiB."""
    zeros, packer = bytes(1 << 20), zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    middle = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    return first + middle * (mib - 1) + b"\x03\x00"  # an empty last block


# Files real torch wrote -----------------------------------------------------------------------


def test_the_fixtures_were_recorded_by_torch():
    assert str(EXPECTED["torch_version"]) == "2.13.0+cpu"
    assert set(RECORDED) == {
        "facenet_pnet.pt",
        "lpips_alex.pth",
        "lpips_squeeze.pth",
        "lpips_vgg.pth",
        "plain_legacy.pt",
        "plain_zip.pt",
        "tiny_legacy.pt",
        "tiny_zip.pt",
    }


@pytest.mark.parametrize(
    "name, kind",
    [(name, "zip" if name.endswith("_zip.pt") else "legacy") for name in RECORDED]
    + [("evil_zip.pt", "zip"), ("evil_legacy.pt", "legacy")],
)
def test_the_fixtures_are_in_the_format_their_name_says(name, kind):
    head = (FIXTURES / name).read_bytes()[:32]
    if kind == "zip":
        assert head.startswith(b"PK\x03\x04")
    else:
        assert head[:4] == b"\x80\x02\x8a\x0a" and head[4:14] == MAGIC
    assert squeezenet_file_kind(FIXTURES / name) == kind


@pytest.mark.parametrize("name", RECORDED)
def test_files_torch_wrote_read_as_torch_read_them(name):
    values = read_torch_file(FIXTURES / name, max_bytes=LIMIT)
    expected = _recorded(name)
    assert isinstance(values, collections.OrderedDict)
    assert list(values) == list(expected)
    for key, want in expected.items():
        got = values[key]
        assert (got.dtype, got.shape) == (want.dtype, want.shape), key
        assert got.flags.c_contiguous and got.dtype.isnative, key
        np.testing.assert_array_equal(got, want, err_msg=key)


def test_views_of_one_storage_and_transposed_tensors_come_out_right():
    # Literals, as make_fixtures.py builds them: arange(12), its [2:8] viewed as (2, 3), arange(6) as (2, 3) transposed.
    for name in ("tiny_zip.pt", "tiny_legacy.pt"):
        values = read_torch_file(FIXTURES / name, max_bytes=LIMIT)
        np.testing.assert_array_equal(values["shared.view"], [[2, 3, 4], [5, 6, 7]])
        np.testing.assert_array_equal(values["transposed"], [[0, 3], [1, 4], [2, 5]])
        np.testing.assert_array_equal(values["bfloat16"], np.array([1.0, -2.5, 3.140625], np.float32))
        assert values["long"].tolist() == [-(2**40), 7] and values["scalar"].shape == ()
        assert values["empty"].shape == (0, 3)
    pnet = read_torch_file(FIXTURES / "facenet_pnet.pt", max_bytes=LIMIT)  # saved with strides (1, 10, 30, 90)
    assert pnet["conv1.weight"].shape == (10, 3, 3, 3) and pnet["conv1.weight"].flags.c_contiguous


# The writer against torch's bytes -------------------------------------------------------------


def test_the_zip_writer_writes_the_bytes_torch_wrote(tmp_path):
    theirs = (FIXTURES / "plain_zip.pt").read_bytes()
    with zipfile.ZipFile(FIXTURES / "plain_zip.pt") as archive:
        serialization_id = archive.read("plain_zip/.data/serialization_id").decode()
    path = write_state_dict(
        tmp_path / "plain.pt", _recorded("plain_zip.pt"), top="plain_zip", serialization_id=serialization_id
    )
    assert Path(path).read_bytes() == theirs


def _legacy_parts(data, itemsizes):
    """The legacy file ``data`` as (header pickles' bytes, main pickle's ops with storage keys renamed, keys, storages).

    Storage keys are renamed k0, k1, ... in the order the main pickle names them (torch uses memory
    addresses); ``itemsizes`` are the bytes per element of the storages in that order.
    """
    stream, pickles = io.BytesIO(data), []
    for _ in range(5):
        start = stream.tell()
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(stream)]
        pickles.append((data[start : stream.tell()], ops))
    keys = pickle.loads(pickles[4][0])
    renamed = {}
    for name, arg in pickles[3][1]:
        if arg in keys and arg not in renamed:
            renamed[arg] = f"k{len(renamed)}"
    main = [(name, renamed.get(arg, arg)) for name, arg in pickles[3][1]]
    storages = {}
    for key in keys:
        (count,) = struct.unpack("<q", stream.read(8))
        storages[renamed[key]] = (count, stream.read(count * itemsizes[int(renamed[key][1:])]))
    assert stream.read() == b""
    return [raw for raw, _ in pickles[:3]], main, keys, storages


def test_the_legacy_writer_writes_what_torch_wrote_but_the_storage_keys(tmp_path):
    tensors = _recorded("plain_legacy.pt")  # each in its own storage, so storage k<i> is tensor i's
    itemsizes = [array.dtype.itemsize for array in tensors.values()]
    theirs = _legacy_parts((FIXTURES / "plain_legacy.pt").read_bytes(), itemsizes)
    ours = _legacy_parts(Path(write_state_dict(tmp_path / "p.pt", tensors, "legacy")).read_bytes(), itemsizes)
    assert ours[0] == theirs[0]  # magic number, protocol version, system information: the same bytes
    assert ours[1] == theirs[1]  # the pickle, opcode for opcode, but the storage keys
    assert ours[2] == sorted(ours[2]) and theirs[2] == sorted(theirs[2])  # keys sorted as strings, as torch does
    assert ours[3] == theirs[3]  # each storage's count and bytes


class _Reference(pickle.Unpickler):
    """Python's own unpickler, mapping torch's globals to tuples: a second reading of what the writer writes."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda *args: ("tensor", *args)
        assert module == "torch" and name.endswith("Storage"), (module, name)
        return name

    def persistent_load(self, pid):
        return pid


@pytest.mark.parametrize("format", ["zip", "legacy"])
def test_many_tensors_pickle_as_python_reads_them(tmp_path, format):
    # 1001 tensors: dict items in two batches, over 256 memo entries (LONG_BINPUT, LONG_BINGET).
    tensors = {f"t{i}": np.full((i % 3 + 1,), i, np.float32) for i in range(1001)}
    path = write_state_dict(tmp_path / "many.pt", tensors, format)
    if format == "zip":
        with zipfile.ZipFile(path) as archive:  # Python's zipfile reads torch's layout too
            pickled = archive.read("archive/data.pkl")
            assert archive.testzip() is None
    else:
        stream = io.BytesIO(Path(path).read_bytes())
        for _ in range(3):  # magic number, protocol version, system information
            pickle.load(stream)
        pickled = stream.read()
    root = _Reference(io.BytesIO(pickled)).load()
    assert list(root) == list(tensors)
    for index, (name, call) in enumerate(root.items()):
        pid = ("storage", "FloatStorage", str(index), "cpu", index % 3 + 1) + ((None,) if format == "legacy" else ())
        assert call == ("tensor", pid, 0, (index % 3 + 1,), (1,), False, collections.OrderedDict()), name
    values = read_torch_file(path, max_bytes=LIMIT)
    assert all(np.array_equal(values[name], array) for name, array in tensors.items())


# Round trips ----------------------------------------------------------------------------------


def _assorted(seed):
    rng = np.random.default_rng(seed)
    return {
        "float32": rng.standard_normal((2, 3, 4)).astype(np.float32),
        "float16": rng.standard_normal(7).astype(np.float16),
        "float64": rng.standard_normal((3, 1)),
        "int64": rng.integers(-(2**60), 2**60, 5),
        "int32": rng.integers(-(2**30), 2**30, (2, 2)).astype(np.int32),
        "int16": rng.integers(-100, 100, 3).astype(np.int16),
        "int8": rng.integers(-100, 100, 3).astype(np.int8),
        "uint8": rng.integers(0, 255, 4).astype(np.uint8),
        "bool": rng.random(5) > 0.5,
        "scalar": np.array(rng.standard_normal(), np.float32),
        "empty": np.zeros((0, 3), np.float32),
        "fortran": np.asfortranarray(rng.standard_normal((3, 4)).astype(np.float32)),
        "big-endian": rng.standard_normal(4).astype(">f4"),
    }


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("format", ["zip", "legacy"])
def test_state_dicts_read_back_as_written(tmp_path, format, seed):
    tensors = _assorted(seed)
    values = read_torch_file(write_state_dict(tmp_path / "x.pt", tensors, format, top=f"t{seed}"), max_bytes=LIMIT)
    assert list(values) == list(tensors)
    for name, array in tensors.items():
        assert values[name].shape == array.shape and values[name].dtype == array.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(values[name], array, err_msg=name)


@pytest.mark.parametrize("format", ["zip", "legacy"])
def test_files_made_here_by_hand_read_too(tmp_path, format):
    tensors = {k: v for k, v in _assorted(2).items() if str(v.dtype) in STORAGE_NAMES}
    values = read_torch_file(_torch_file(tmp_path / "x.pt", tensors, format), max_bytes=LIMIT)
    assert all(np.array_equal(values[name], array) for name, array in tensors.items())


def test_a_zip_written_by_pythons_zipfile_reads_deflated_or_stored(tmp_path):
    tensors = {"a": np.arange(1000, dtype=np.float32), "b": np.ones((3, 3))}
    storages = {}
    pickled = _ops(tensors, storages)
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        path = tmp_path / f"z{compression}.pt"
        with zipfile.ZipFile(path, "w", compression) as archive:
            for entry in _zip_entries(pickled, storages, top="z"):
                archive.writestr(entry["name"], entry["data"])
        values = read_torch_file(path, max_bytes=LIMIT)
        assert all(np.array_equal(values[name], array) for name, array in tensors.items())


@pytest.mark.parametrize("format", ["zip", "legacy"])
def test_big_endian_files_read_as_their_numbers(tmp_path, format):
    tensor = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    storages = {}
    pickled = _ops({"w": tensor}, storages, legacy=format == "legacy")
    if format == "zip":
        entries = _zip_entries(pickled, storages, byteorder=">") + [{"name": "archive/byteorder", "data": b"big"}]
        data = _hand_zip(entries)
    else:
        head = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001))
        info = pickle.dumps({**SYS_INFO, "little_endian": False}, protocol=2)
        body = struct.pack(">q", 6) + tensor.astype(">f4").tobytes()
        data = head + info + b"\x80\x02" + pickled + b"." + pickle.dumps(["0"], protocol=2) + body
    (tmp_path / "b.pt").write_bytes(data)
    values = read_torch_file(tmp_path / "b.pt", max_bytes=LIMIT)
    np.testing.assert_array_equal(values["w"], tensor)


def test_safetensors_read_back_as_written(tmp_path):
    tensors = {k: v for k, v in _assorted(3).items() if k not in ("big-endian", "fortran")}
    path = write_safetensors(tmp_path / "x.safetensors", tensors)
    values = read_safetensors(path, max_bytes=LIMIT)
    assert set(values) == set(tensors)
    for name, array in tensors.items():
        assert values[name].dtype == array.dtype and values[name].shape == array.shape, name
        np.testing.assert_array_equal(values[name], array, err_msg=name)
    assert safetensors_numpy.load_file(path).keys() == tensors.keys()  # the library reads what was written


def test_a_tensor_named_many_times_is_copied_once(tmp_path):
    one = _tensor("0", 4, 0, (4,), (1,))
    # The pickle's memo: BINPUT the tensor once, BINGET it 999 times.
    pairs = [(S("a"), one + b"q\x01")] + [(S(f"b{i}"), b"h\x01") for i in range(999)]
    values = read_torch_file(
        _raw_file(tmp_path / "m.pt", D(*pairs), {"0": np.arange(4, dtype=np.float32)}), max_bytes=LIMIT
    )
    assert len(values) == 1000 and all(values[f"b{i}"] is values["a"] for i in range(999))


def test_a_web_of_lists_is_walked_once(tmp_path):
    # Ten levels, each a list naming the one below 1000 times: 1000**10 paths, 10 lists.
    body = b"]q\x000"  # EMPTY_LIST, BINPUT 0, POP
    for level in range(1, 11):  # a list of 1000 BINGETs of the level below, BINPUT, POP
        body += b"](" + (b"h" + bytes([level - 1])) * 1000 + b"eq" + bytes([level]) + b"0"
    body += b"h\x0a"
    start = time.perf_counter()
    value = read_torch_file(_raw_file(tmp_path / "web.pt", D((S("web"), body)), {}), max_bytes=LIMIT)
    assert time.perf_counter() - start < 20
    inner = value["web"]
    for _ in range(10):
        assert len(inner) == 1000 and all(item is inner[0] for item in inner)
        inner = inner[0]
    assert inner == []


# SqueezeNet ------------------------------------------------------------------------------------


@pytest.mark.parametrize("format", FORMATS)
def test_read_squeezenet_reads_what_was_written(tmp_path, format):
    weights = random_squeezenet_weights(5)
    path = write_squeezenet_weights(tmp_path / "w.pth", weights, format=format, seed=5)
    read = read_squeezenet(path)
    assert (read.layout, read.source) == (format, str(path))
    assert list(read.params) == list(FEATURE_PARAMETERS)
    for key in FEATURE_PARAMETERS:
        assert read.params[key].dtype == np.float32 and read.params[key].flags.c_contiguous
        np.testing.assert_array_equal(read.params[key], weights.params[key], err_msg=key)


@pytest.mark.parametrize("format", FORMATS)
def test_written_squeezenet_files_hold_torchvisions_52_tensors(tmp_path, format):
    path = write_squeezenet_weights(tmp_path / "w.pth", format=format, seed=2)
    if format == "safetensors":
        tensors = safetensors_numpy.load_file(path)
        assert sorted(tensors) == sorted(PARAMETERS)
    else:
        tensors = read_torch_file(path, max_bytes=SQUEEZENET_MAX_BYTES)
        assert list(tensors) == list(PARAMETERS)
    assert {key: value.shape for key, value in tensors.items()} == PARAMETERS
    assert all(value.dtype == np.float32 for value in tensors.values())
    defaults = random_squeezenet_weights(2).params
    assert all(np.array_equal(tensors[key], defaults[key]) for key in FEATURE_PARAMETERS)
    again = write_squeezenet_weights(tmp_path / "again.pth", format=format, seed=2)
    other = write_squeezenet_weights(tmp_path / "other.pth", format=format, seed=3)
    if format == "zip":  # the top folder is the file's stem, as torch names it
        assert zipfile.ZipFile(path).namelist()[0] == "w/data.pkl"
    else:
        assert Path(again).read_bytes() == Path(path).read_bytes()
    assert Path(other).read_bytes() != Path(path).read_bytes()


@pytest.mark.parametrize("format", ["zip", "legacy"])
def test_squeezenet_files_made_by_hand_read(tmp_path, format):
    state = _squeezenet_state(7)
    read = read_squeezenet(_torch_file(tmp_path / "w.pth", state, format))
    assert all(np.array_equal(read.params[key], state[key]) for key in FEATURE_PARAMETERS)


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_half_and_double_weights_become_float32(tmp_path, format, dtype):
    state = _squeezenet_state(8, dtype)
    if format == "safetensors":
        path = tmp_path / "w.safetensors"
        safetensors_numpy.save_file(state, path)
    else:
        path = _torch_file(tmp_path / "w.pth", state, format)
    read = read_squeezenet(path)
    for key in FEATURE_PARAMETERS:
        assert read.params[key].dtype == np.float32
        np.testing.assert_array_equal(read.params[key], state[key].astype(np.float32), err_msg=key)


@pytest.mark.parametrize("format", ["zip", "legacy"])
@pytest.mark.parametrize("wrap", ["state_dict", "module", "features only"])
def test_wrapped_and_prefixed_state_dicts_are_read(tmp_path, format, wrap):
    state = _squeezenet_state(9)
    if wrap == "state_dict":
        value = {"epoch": 90, "arch": "squeezenet1_1", "state_dict": state}
    elif wrap == "module":
        value = {f"module.{key}": array for key, array in state.items()}
    else:
        value = {key: array for key, array in state.items() if key in FEATURE_PARAMETERS}
    read = read_squeezenet(_torch_file(tmp_path / "w.pth", value, format))
    assert all(np.array_equal(read.params[key], state[key]) for key in FEATURE_PARAMETERS)


def _drop(state, key):
    del state[key]


def _set(key, value):
    return lambda state: state.__setitem__(key, value)


SQUEEZENET_PROBLEMS = {
    "missing": (
        lambda state: _drop(state, "features.12.expand3x3.bias"),
        r"has no features\.12\.expand3x3\.bias \(1 of SqueezeNet 1\.1's 50 feature tensors missing\); not "
        rf"torchvision's SqueezeNet 1\.1 weights \({SQUEEZE}\.pth\)$",
    ),
    "unknown": (
        _set("features.13.weight", np.zeros(3, np.float32)),
        r"holds features\.13\.weight, which SqueezeNet 1\.1 does not have \(1 such keys\)",
    ),
    "another network": (
        _set("conv1.weight", np.zeros(3, np.float32)),
        r"holds conv1\.weight, which SqueezeNet 1\.1 does not have",
    ),
    "shape": (
        _set("features.3.squeeze.weight", np.zeros((16, 64, 3, 3), np.float32)),
        r"features\.3\.squeeze\.weight has shape \(16, 64, 3, 3\); expected \(16, 64, 1, 1\)$",
    ),
    "transposed": (
        _set("features.0.weight", np.zeros((3, 3, 3, 64), np.float32)),
        r"features\.0\.weight has shape \(3, 3, 3, 64\); expected \(64, 3, 3, 3\)$",
    ),
    "integers": (
        _set("features.0.bias", np.zeros(64, np.int32)),
        r"features\.0\.bias has type int32; expected floating-point numbers \(float16, float32 or float64\)$",
    ),
    "nan": (
        lambda state: state["features.4.expand1x1.weight"].__setitem__((3, 2, 0, 0), np.nan),
        r"features\.4\.expand1x1\.weight contains NaN or infinite values \(as float32\)$",
    ),
    "inf": (
        lambda state: state["features.9.squeeze.bias"].__setitem__(0, -np.inf),
        r"features\.9\.squeeze\.bias contains NaN or infinite values",
    ),
    "beyond float32": (
        _set("features.10.squeeze.bias", np.full(48, 1e300)),
        r"features\.10\.squeeze\.bias contains NaN or infinite values \(as float32\)$",
    ),
}


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("problem", SQUEEZENET_PROBLEMS)
def test_wrong_squeezenet_contents_are_refused_naming_the_key(tmp_path, format, problem):
    change, message = SQUEEZENET_PROBLEMS[problem]
    state = _squeezenet_state(10)
    change(state)
    path = tmp_path / "w.pth"
    if format == "safetensors":
        safetensors_numpy.save_file(state, path)
    else:
        _torch_file(path, state, format)
    with pytest.raises(WeightsFileError, match=message) as error:
        read_squeezenet(path)
    _one_line(error, path)


@pytest.mark.parametrize(
    "value, message",
    [
        ([np.zeros(3, np.float32)], r"holds a list, not a state dict \(a dict of tensors\)$"),
        ({1: np.zeros(3, np.float32)}, r"has a key of type int; a state dict's keys are names$"),
        ({"features.0.weight": "weights"}, r"features\.0\.weight is a str, not a tensor$"),
    ],
)
def test_what_is_not_a_state_dict_is_refused(tmp_path, value, message):
    state = _squeezenet_state(11) if isinstance(value, dict) and "features.0.weight" in value else {}
    if state:
        state.update(value)
        value = state
    path = _torch_file(tmp_path / "w.pth", value)
    with pytest.raises(WeightsFileError, match=message):
        read_squeezenet(path)


def test_the_kind_comes_from_the_contents_not_the_name(tmp_path):
    state = _squeezenet_state(12)
    zipped = _torch_file(tmp_path / "weights.safetensors", state, "zip")
    legacy = _torch_file(tmp_path / "weights.zip", state, "legacy")
    safe = tmp_path / "weights.pth"
    safetensors_numpy.save_file(state, safe)
    assert [squeezenet_file_kind(p) for p in (zipped, legacy, safe)] == ["zip", "legacy", "safetensors"]
    assert [read_squeezenet(p).layout for p in (zipped, legacy, safe)] == ["zip", "legacy", "safetensors"]


EXPECTED_KINDS = (
    rf"expected torchvision's {SQUEEZE}\.pth \(a torch\.save file, zip or legacy format\) or a \.safetensors file "
    r"of the same state dict$"
)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "is empty"),
        (b"print('not weights')\n", "is neither a torch.save file nor a .safetensors file"),
        (
            b"MATLAB 5.0 MAT-file, Platform: GLNXA64" + bytes(100),
            "is neither a torch.save file nor a .safetensors file",
        ),
        (b"\x89HDF\r\n\x1a\n" + bytes(100), "is neither a torch.save file nor a .safetensors file"),
        (pickle.dumps({"features.0.weight": [1.0]}, protocol=2), "is neither a torch.save file nor a .safetensors"),
    ],
)
@pytest.mark.parametrize("function", [squeezenet_file_kind, read_squeezenet])
def test_other_files_are_refused_naming_the_expected_kinds(tmp_path, content, problem, function):
    path = tmp_path / "w.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsFileError, match=rf"w\.pth: {problem}.*; {EXPECTED_KINDS}") as error:
        function(path)
    _one_line(error, path)


@pytest.mark.parametrize("function", [squeezenet_file_kind, read_squeezenet])
def test_a_missing_file_says_how_to_download_it(tmp_path, function):
    with pytest.raises(WeightsFileError) as error:
        function(tmp_path / f"{SQUEEZE}.pth")
    expected = (
        f"file not found; download {SQUEEZE}.pth (about 5 MB, torchvision's SqueezeNet 1.1 ImageNet weights) with: "
        "python -m nst_tf.download --weights squeezenet"
    )
    assert expected in _one_line(error, tmp_path / f"{SQUEEZE}.pth")


@pytest.mark.parametrize("function", [squeezenet_file_kind, read_squeezenet])
def test_folders_pipes_and_dangling_links_are_refused(tmp_path, function):
    with pytest.raises(WeightsFileError, match=rf": is a folder; {EXPECTED_KINDS}"):
        function(tmp_path)
    os.mkfifo(tmp_path / "pipe")  # no writer: opening it for reading would block
    with pytest.raises(WeightsFileError, match=r"pipe: is a named pipe \(FIFO\), not a regular file$"):
        function(tmp_path / "pipe")
    os.symlink(tmp_path / "gone.pth", tmp_path / "link.pth")
    with pytest.raises(WeightsFileError, match=r"link\.pth: is a symbolic link to .*gone\.pth, which does not exist$"):
        function(tmp_path / "link.pth")


# Hostile pickles: nothing of them runs ------------------------------------------------------------


def _payloads(marker):
    """Pickle bodies that create ``marker`` when Python's own unpickler loads them."""
    command = S(f"touch {shlex.quote(str(marker))}")
    return {
        "os.system": G("os", "system") + T(command) + b"R",
        "posix.system": G("posix", "system") + T(command) + b"R",
        "builtins.eval": G("builtins", "eval") + T(S(f"open({str(marker)!r}, 'w').close()")) + b"R",
        "builtins.exec": G("builtins", "exec") + T(S(f"open({str(marker)!r}, 'w').close()")) + b"R",
        "subprocess.Popen": G("subprocess", "Popen") + T(L(S("touch"), S(str(marker)))) + b"R",
        # Protocol 4's STACK_GLOBAL takes the names from the stack.
        "os.system via STACK_GLOBAL": b"\x8c\x02os\x8c\x06system\x93" + T(command) + b"R",
    }


PAYLOADS = list(_payloads(Path("m")))


def _wait_for(marker, payload_result):
    if hasattr(payload_result, "wait"):  # Popen
        payload_result.wait(10)
    return marker.exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_each_payload_runs_under_pythons_own_unpickler(tmp_path, payload):
    # The control: these pickles are live, so the tests below that find no marker mean something.
    marker = tmp_path / "marker"
    result = pickle.loads(b"\x80\x02" + _payloads(marker)[payload] + b".")
    assert _wait_for(marker, result)


@pytest.mark.parametrize("format", ["zip", "legacy"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_are_refused_and_nothing_runs(tmp_path, format, payload):
    marker = tmp_path / "marker"
    name = payload.split(" ")[0]
    storages = {"0": np.zeros(64, np.float32)}
    # A plausible start (a real tensor), then the payload as the next value.
    body = D(
        (S("features.0.bias"), _tensor("0", 64, 0, (64,), (1,), legacy=format == "legacy")),
        (S("features.0.weight"), _payloads(marker)[payload]),
    )
    path = _raw_file(tmp_path / "evil.pth", body, storages, format)
    for read in (read_squeezenet, lambda p: read_torch_file(p, max_bytes=LIMIT)):
        with pytest.raises(WeightsFileError) as error:
            read(path)
        assert _one_line(error, path).endswith(
            f"its pickle names {name}, which a weights file has no use for; refused, and nothing of the file was run"
        )
    time.sleep(0.2)  # a process started in the background would have touched it by now
    assert not marker.exists()


@pytest.mark.parametrize("name", ["evil_zip.pt", "evil_legacy.pt"])
def test_torchs_own_hostile_files_are_refused_and_nothing_runs(tmp_path, monkeypatch, name):
    # make_fixtures.py checked that torch.load(weights_only=False) creates $NST_TF_MARKER from these files.
    marker = tmp_path / "marker"
    monkeypatch.setenv("NST_TF_MARKER", str(marker))
    for read in (read_squeezenet, lambda p: read_torch_file(p, max_bytes=LIMIT)):
        with pytest.raises(WeightsFileError, match=r"its pickle names posix\.system, which a weights file has no use"):
            read(FIXTURES / name)
    assert not marker.exists()


REBUILD = G("torch._utils", "_rebuild_tensor_v2")
HOOKS = G("collections", "OrderedDict") + b")R"
A_TENSOR = _tensor("0", 4, 0, (4,), (1,))

UNEXPECTED = {
    "INST of an allowed class": (b"(icollections\nOrderedDict\n", r"uses the opcode INST, which this reader refuses"),
    "OBJ": (b"(" + G("collections", "OrderedDict") + b"o", r"uses the opcode OBJ"),
    "NEWOBJ": (G("collections", "OrderedDict") + b")\x81", r"uses the opcode NEWOBJ"),
    "EXT1": (b"\x82\x01", r"uses the opcode EXT1"),
    "a set": (b"\x8f", r"uses the opcode EMPTY_SET"),
    "an unknown opcode": (b"\xff", r"uses the opcode 0xff \(unknown\)"),
    "BUILD of a tensor": (A_TENSOR + b"}b", r"sets the state of a tensor to a dict, which this reader refuses$"),
    "BUILD of a dict with a tuple": (HOOKS + T(b"N", b"}") + b"b", r"sets the state of an OrderedDict to a tuple"),
    "a storage type called": (
        G("torch", "FloatStorage") + T(I(2**40)) + b"R",
        r"calls torch\.FloatStorage; only collections\.OrderedDict and torch's tensor rebuilding are allowed",
    ),
    "a call of a call's result": (HOOKS + b")R", r"calls an OrderedDict; only collections\.OrderedDict"),
    "OrderedDict with two arguments": (G("collections", "OrderedDict") + T(b"N", b"N") + b"R", r"calls collections"),
    "a tensor from a string": (
        REBUILD + T(S("0"), I(0), T(I(1)), T(I(1)), b"\x89", HOOKS) + b"R",
        r"rebuilds a tensor from a str, not from a storage$",
    ),
    "rebuild with 3 arguments": (
        REBUILD + T(b"N", b"N", b"N") + b"R",
        r"calls torch\._utils\._rebuild_tensor_v2 with 3",
    ),
    "backward hooks": (
        REBUILD
        + T(
            T(S("storage"), G("torch", "FloatStorage"), S("0"), S("cpu"), I(4)) + b"Q",
            I(0),
            T(I(4)),
            T(I(1)),
            b"\x89",
            D((I(1), b"N")),
        )
        + b"R",
        r"gives a tensor backward hooks, which this reader refuses$",
    ),
    "_rebuild_parameter": (G("torch._utils", "_rebuild_parameter"), r"names torch\._utils\._rebuild_parameter"),
    "torch.load": (G("torch", "load"), r"names torch\.load, which a weights file has no use for"),
    "a text persistent id": (b"Pstorage\n", r"holds the persistent id 'storage'; expected \('storage', type, key"),
    "another persistent id": (T(S("module"), S("x")) + b"Q", r"holds the persistent id \('module', 'x'\)"),
    "a storage of a class": (
        T(S("storage"), G("collections", "OrderedDict"), S("0"), S("cpu"), I(4)) + b"Q",
        r"declares a storage of type collections\.OrderedDict; expected a torch storage type$",
    ),
    "a storage declared twice, differently": (
        L(_tensor("0", 4, 0, (4,), (1,)), _tensor("0", 5, 0, (4,), (1,))),
        r"storage '0' is declared twice, differently",
    ),
    "a bare storage": (
        T(S("storage"), G("torch", "FloatStorage"), S("0"), S("cpu"), I(4)) + b"Q",
        r"holds storage '0' where data belongs",
    ),
    "a tensor as a key": (D((A_TENSOR, I(1))), r"uses a tensor as a dict key; not a state dict$"),
    "a function as data": (REBUILD, r"holds torch\._utils\._rebuild_tensor_v2 where data belongs"),
    "17 levels of lists": (b"](" * 18 + b"e" * 18, r"nests its objects more than 16 deep; not a state dict$"),
    "a damaged pickle": (
        b"X\xff\xff\xff\x7fabc",
        r"its pickle \(data\.pkl\) cannot be unpickled \(.*\); the file is truncated",
    ),
}


@pytest.mark.parametrize("case", UNEXPECTED)
def test_allowed_names_in_unexpected_places_are_refused(tmp_path, case):
    body, message = UNEXPECTED[case]
    path = _raw_file(tmp_path / "x.pt", body, {"0": np.zeros(4, np.float32)})
    with pytest.raises(WeightsFileError, match=message) as error:
        read_torch_file(path, max_bytes=LIMIT)
    _one_line(error, path)


# Hostile storages and tensors -------------------------------------------------------------------


def _bad_size(legacy):
    pid = T(S("storage"), G("torch", "FloatStorage"), S("0"), S("cpu"), I(4), *([b"N"] if legacy else [])) + b"Q"
    return REBUILD + T(pid, I(0), T(b"G" + struct.pack(">d", 2.0)), T(I(1)), b"\x89", HOOKS) + b"R"


def _view(legacy):
    return T(S("storage"), G("torch", "FloatStorage"), S("0"), S("cpu"), I(4), T(S("1"), I(0), I(4))) + b"Q"


def _bounds(*args):
    return lambda legacy: _tensor(*args, legacy=legacy)


#: Case -> (pickle body for the zip (False) or legacy (True) format, message).
TENSOR_BOUNDS = {
    "2**40 elements declared": (
        _bounds("0", 2**40, 0, (4,), (1,)),
        r"declares storages of 4398046511104 bytes \(checked before reading any\), more than the 1048576 this reader",
    ),
    "storages adding up": (
        lambda legacy: L(*[_tensor(str(i), 2**16, 0, (4,), (1,), legacy=legacy) for i in range(5)]),
        r"declares storages of 1310720 bytes \(checked before reading any\), more than the 1048576",
    ),
    "a stride past the end": (
        _bounds("0", 10, 0, (3,), (5,)),
        r"a tensor of offset 0, size \(3,\), stride \(5,\) reads past the end of storage '0', of 10 elements$",
    ),
    "an offset past the end": (_bounds("0", 10, 10, (1,), (1,)), r"offset 10, size \(1,\), stride \(1,\) reads past"),
    "a 2-d stride past the end": (
        _bounds("0", 10, 2, (3, 3), (3, 1)),
        r"offset 2, size \(3, 3\), stride \(3, 1\) reads",
    ),
    "a huge offset": (
        _bounds("0", 10, 2**70, (1,), (1,)),
        r"offset 1180591620717411303424, size \(1,\), stride \(1,\) reads",
    ),
    "a vast offset": (
        _bounds("0", 10, 2**300, (1,), (1,)),
        r"offset 2\*\*300 or more, size \(1,\), stride \(1,\) reads",
    ),
    "2**40 elements from one by stride 0": (
        _bounds("0", 1, 0, (2**40,), (0,)),
        r"holds tensors of more than the 1048576 bytes this reader accepts$",
    ),
    "a negative stride": (
        _bounds("0", 10, 9, (3,), (-1,)),
        r"stride \(-1,\); expected at most 32 counts of 0 or more$",
    ),
    "a negative size": (_bounds("0", 10, 0, (-3,), (1,)), r"size \(-3,\), stride \(1,\); expected at most 32 counts"),
    "33 dimensions": (_bounds("0", 10, 0, (1,) * 33, (1,) * 33), r"expected at most 32 counts of 0 or more$"),
    "sizes and strides of other lengths": (
        _bounds("0", 10, 0, (2, 3), (1,)),
        r"a tensor of storage '0' has size \(2, 3\) and stride \(1,\)$",
    ),
    "a size that is a float": (_bad_size, r"size \(2\.0,\), stride \(1,\); expected at most 32 counts"),
    "an empty tensor 2**63 wide": (
        _bounds("0", 4, 0, (0, 2**63), (1, 1)),
        r"has size \(0, 9223372036854775808\), stride \(1, 1\); torch's sizes and strides are below 2\*\*63$",
    ),
    "a stride of 2**70": (
        _bounds("0", 4, 0, (2, 1), (1, 2**70)),
        r"size \(2, 1\), stride \(1, 1180591620717411303424\); torch's sizes and strides are below 2\*\*63$",
    ),
    "a negative count": (
        _bounds("0", -1, 0, (1,), (1,)),
        r"declares a storage as .*; expected a key, a location and a",
    ),
    "a storage view": (_view, r"storage '0' is a view of another storage, which this reader does not read$"),
}


@pytest.mark.parametrize("format", ["zip", "legacy"])
@pytest.mark.parametrize("case", TENSOR_BOUNDS)
def test_storages_and_tensors_beyond_bounds_are_refused_before_reading(tmp_path, format, case):
    make, message = TENSOR_BOUNDS[case]
    body = make(format == "legacy")
    # No storage data is written: each case is refused before any storage is read.
    path = _raw_file(tmp_path / "x.pt", body, {}, "zip") if format == "zip" else tmp_path / "x.pt"
    if format == "legacy":
        head = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, SYS_INFO))
        path.write_bytes(head + b"\x80\x02" + body + b"." + pickle.dumps([], protocol=2))
    with pytest.raises(WeightsFileError, match=message) as error:
        read_torch_file(path, max_bytes=LIMIT)
    _one_line(error, path)


@pytest.mark.parametrize(
    "size, stride",
    [((0, 2**63 - 1), (1, 1)), ((0,) + (2**62,) * 5, (1,) * 6), ((1,), (2**62,)), ((2, 1), (1, 2**63 - 1))],
    ids=[
        "an empty tensor 2**63 - 1 wide",
        "an empty tensor of 2**310 elements",
        "a stride of 2**62",
        "a stride of 2**63 - 1",
    ],
)
def test_sizes_and_strides_numpy_cannot_express_are_one_line(tmp_path, size, stride):
    # They pass the bounds (nothing is read past the storage) and failed in NumPy with a traceback.
    body = D((S("t"), _tensor("0", 4, 0, size, stride)))
    path = _raw_file(tmp_path / "x.pt", body, {"0": np.arange(4, dtype=np.float32)})
    with pytest.raises(WeightsFileError, match=r"describes a tensor NumPy cannot build \(") as error:
        read_torch_file(path, max_bytes=LIMIT)
    _one_line(error, path)


def test_an_empty_tensor_may_sit_at_the_end_of_its_storage(tmp_path):
    body = D((S("e"), _tensor("0", 4, 4, (0, 5), (5, 1))))
    value = read_torch_file(_raw_file(tmp_path / "e.pt", body, {"0": np.arange(4, dtype=np.float32)}), max_bytes=LIMIT)
    assert value["e"].shape == (0, 5)


# Hostile zip archives ---------------------------------------------------------------------------


def _small_zip_entries():
    storages = {}
    pickled = _ops({"w": np.arange(6, dtype=np.float32), "b": np.ones(2, np.float32)}, storages)
    return _zip_entries(pickled, storages)


def _patched(data, name, offset_in_entry, fmt, value, where="central"):
    """``data`` with the field at ``offset_in_entry`` of ``name``'s central (or local) header set to ``value``."""
    raw = name.encode()
    start = (data.rfind(raw) - 46) if where == "central" else (data.find(raw) - 30)
    data = bytearray(data)
    struct.pack_into(fmt, data, start + offset_in_entry, value)
    return bytes(data)


def _with(entries, member, **changes):
    """``entries`` with ``changes`` made to the entry named ``member``."""
    return [{**entry, **changes} if entry["name"] == member else entry for entry in entries]


def _zip_structure_cases():
    """Case -> (archive, message): damaged end records, directories and headers."""
    good = _hand_zip(_small_zip_entries())
    end = good.rfind(b"PK\x05\x06")
    return {
        "no end record": (good[:-22], r"is a zip archive without its end record; the file is truncated or damaged$"),
        "bytes after the end record": (good + b"junk", r"without its end record"),
        "a directory past the end": (
            good[: end + 16] + struct.pack("<I", len(good)) + good[end + 20 :],
            r"whose directory does not end where its end record says",
        ),
        "a member count over the limit": (
            good[: end + 8] + struct.pack("<HH", 5000, 5000) + good[end + 12 :],
            r"is a zip archive of 5000 members in \d+ bytes; this reader accepts 4096$",
        ),
        "a member count above the entries": (
            good[: end + 8] + struct.pack("<HH", 5, 5) + good[end + 12 :],
            r"whose directory is damaged: it holds 4 members, not 5$",
        ),
        "two disks": (good[: end + 4] + struct.pack("<H", 1) + good[end + 6 :], r"split over several disks"),
        "a local header past the end": (
            _patched(good, "archive/data/0", 42, "<I", 0x7FFFFFF0),
            r"zip member 'archive/data/0' has no local header where the directory says",
        ),
        "sizes that disagree": (
            _patched(_patched(good, "archive/version", 20, "<I", 1), "archive/version", 24, "<I", 1),
            r"zip member 'archive/version''s sizes or CRC differ between its local header and the directory",
        ),
        "a stored member of two sizes": (
            _patched(good, "archive/data/0", 24, "<I", 99),
            r"zip member 'archive/data/0' is stored, yet its directory gives it 24 and 99 bytes$",
        ),
        "a wrong CRC": (
            _patched(_patched(good, "archive/data/1", 16, "<I", 1), "archive/data/1", 14, "<I", 1, "local"),
            r"zip member 'archive/data/1' fails its CRC check; the file is damaged$",
        ),
        "an encrypted member": (_patched(good, "archive/data.pkl", 8, "<H", 1), r"'archive/data\.pkl' is encrypted"),
        "bzip2": (_patched(good, "archive/data.pkl", 10, "<H", 12), r"is compressed with zip method 12; torch\.save"),
    }


def _zip_member_cases():
    """Case -> (archive, message): members missing, doubled, compressed, or not what torch writes."""
    entries = _small_zip_entries()
    bomb = _deflate_bomb(4)  # 4 MiB of zeros in about 4 KB
    return {
        "a name twice": (_hand_zip(entries + entries[1:2]), r"holds two members named 'archive/data/0'"),
        "no top folder": (_hand_zip([{**e, "name": e["name"][8:]} for e in entries]), r"without a top folder"),
        "no pickle": (_hand_zip(entries[1:]), r"is a zip archive without 'archive/data\.pkl'; not a torch\.save file$"),
        "no version": (_hand_zip(entries[:-1]), r"is a zip archive without 'archive/version'"),
        "a version that is no number": (
            _hand_zip(_with(entries, "archive/version", data=b"three")),
            r"has the version record b'three'; expected a number",
        ),
        "a long version": (
            _hand_zip(_with(entries, "archive/version", data=b"3" * 100)),
            r"zip member 'archive/version' holds 100 bytes; this reader accepts at most 64 there$",
        ),
        "an unknown byte order": (
            _hand_zip(entries + [{"name": "archive/byteorder", "data": b"middle"}]),
            r"has the byte order b'middle'; expected 'little' or 'big'$",
        ),
        "a storage without data": (
            _hand_zip(_with(entries, "archive/data/1", name="archive/data/9")),
            r"has no data for storage '1'",
        ),
        "a storage of another length": (
            _hand_zip(_with(entries, "archive/data/0", data=bytes(28))),
            r"storage '0' holds 28 bytes; its pickle declares 24$",
        ),
        "a pickle over its limit": (
            _hand_zip(_with(entries, "archive/data.pkl", data=entries[0]["data"][:-1] + b"N0" * 600000 + b".")),
            r"zip member 'archive/data\.pkl' holds 1200\d+ bytes; this reader accepts at most 1048576 there$",
        ),
        "a bomb": (
            _hand_zip(_with(entries, "archive/data/0", data=bomb, method=8, size=24, crc=zlib.crc32(bytes(24)))),
            r"zip member 'archive/data/0' packs 24 bytes into \d+; the file is damaged$",
        ),
        "a small bomb": (
            _hand_zip(
                _with(
                    entries, "archive/data.pkl", data=_deflate_bomb(1), method=8, size=900, crc=zlib.crc32(bytes(900))
                )
            ),
            r"zip member 'archive/data\.pkl' inflates to more than its declared 900 bytes; refused \(a zip bomb\?\)$",
        ),
        "4 GiB declared": (
            _hand_zip(_with(entries, "archive/data.pkl", data=bomb, method=8, size=0xFFFFFFF0)),
            r"zip member 'archive/data\.pkl' holds 4294967280 bytes; this reader accepts at most 1048576 there$",
        ),
        "corrupt deflate": (
            _hand_zip(
                _with(entries, "archive/version", data=b"\xff\xff\xff", method=8, size=2, crc=zlib.crc32(b"3\n"))
            ),
            r"zip member 'archive/version' is compressed data that is corrupt",
        ),
        "a descriptor that disagrees": (
            _hand_zip(
                _with(entries, "archive/version", flags=8, descriptor=b"PK\x07\x08" + struct.pack("<3I", 0, 2, 3))
            ),
            r"zip member 'archive/version''s sizes or CRC differ",
        ),
    }


def _zip_cases():
    return {**_zip_structure_cases(), **_zip_member_cases()}


ZIP_CASES = list(_zip_cases())


@pytest.mark.parametrize("case", ZIP_CASES)
def test_damaged_and_hostile_zips_are_refused_in_one_line(tmp_path, case):
    data, message = _zip_cases()[case]
    path = tmp_path / "z.pt"
    path.write_bytes(data)
    with pytest.raises(WeightsFileError, match=message) as error:
        read_torch_file(path, max_bytes=LIMIT)
    _one_line(error, path)


def test_a_data_descriptor_that_agrees_is_read(tmp_path):
    entries = _small_zip_entries()
    for entry in entries:
        entry.update(
            flags=8, descriptor=b"PK\x07\x08" + struct.pack("<3I", zlib.crc32(entry["data"]), *[len(entry["data"])] * 2)
        )
    (tmp_path / "d.pt").write_bytes(_hand_zip(entries))
    assert read_torch_file(tmp_path / "d.pt", max_bytes=LIMIT)["w"].tolist() == [0, 1, 2, 3, 4, 5]


# Hostile legacy files ---------------------------------------------------------------------------


def _legacy_cases():
    storages = {}
    pickled = _ops({"w": np.arange(6, dtype=np.float32), "b": np.ones(2, np.float32)}, storages, legacy=True)
    good = _legacy_bytes(pickled, storages)
    return {
        "another first pickle": (
            _legacy_bytes(pickled, storages, magic=[0x1950A86A20F9469CFC6C]),
            r"does not start with torch\.save's magic number; not a torch\.save file$",
        ),
        "another version": (
            good.replace(b"\x80\x02M\xe9\x03.", b"\x80\x02M\xe8\x03.", 1),
            r"is torch\.save's legacy format of version 1000; expected 1001$",
        ),
        "system information that is a list": (
            _legacy_bytes(pickled, storages, info=[1]),
            r"has system information \[1\]; expected a dict",
        ),
        "a key too many": (
            _legacy_bytes(pickled, {**storages, "9": np.ones(1, np.float32)}),
            r"storage '9' is in its list of storages but not in its pickle; the file is damaged$",
        ),
        "a key missing": (
            _legacy_bytes(pickled, storages, keys=["0"]),
            r"storage '1' is in its pickle but has no data",
        ),
        "a key twice": (_legacy_bytes(pickled, storages, keys=["0", "1", "0"]), r"expected distinct keys"),
        "another count": (
            _legacy_bytes(pickled, storages, counts={"0": 5}),
            r"storage '0' holds 5 elements; its pickle declares 6$",
        ),
        "a count of 2**40": (_legacy_bytes(pickled, storages, counts={"1": 2**40}), r"holds 1099511627776 elements"),
        "cut inside a storage": (good[:-3], r"ends inside storage '1', 5 of its 8 bytes there$"),
        "cut before a count": (good[:-12], r"ends before storage '1' \(4 bytes left\); the file is truncated$"),
        "bytes after the storages": (good + b"abc", r"holds 3 bytes after its last storage; the file is damaged$"),
        "no list of keys": (
            good[: good.index(pickle.dumps(["0", "1"], protocol=2))],
            r"its list of storage keys cannot be",
        ),
        "a pickle over its limit": (
            _legacy_bytes(b"](" + b"N" * (1 << 20) + b"e", {}),
            r"its pickles take more than the 1048576 bytes this reader accepts$",
        ),
        "a string over the limit": (
            _legacy_bytes(b"X" + struct.pack("<I", 2**31 - 1) + b"a" * (1 << 20), {}),
            r"its pickles take more than the 1048576 bytes",
        ),
        "a string cut short": (
            # The header, then a pickle whose string would be 2 GiB long, where the file ends.
            _legacy_bytes(b"", {})[: -len(pickle.dumps([], protocol=2)) - 3]
            + b"\x80\x02X"
            + struct.pack("<I", 2**31 - 1),
            r"its pickle cannot be unpickled \(it ends before its STOP opcode\); the file is truncated or damaged$",
        ),
    }


LEGACY_CASES = list(_legacy_cases())


@pytest.mark.parametrize("case", LEGACY_CASES)
def test_damaged_and_hostile_legacy_files_are_refused_in_one_line(tmp_path, case):
    data, message = _legacy_cases()[case]
    path = tmp_path / "l.pt"
    path.write_bytes(data)
    with pytest.raises(WeightsFileError, match=message) as error:
        read_torch_file(path, max_bytes=LIMIT)
    _one_line(error, path)


# Cut and changed files: WeightsFileError or a good read, nothing else ----------------------------

CUT_FILES = ["tiny_zip.pt", "tiny_legacy.pt", "facenet_pnet.pt", "lpips_alex.pth", "plain_zip.pt", "evil_legacy.pt"]


@pytest.mark.parametrize("name", CUT_FILES)
def test_files_cut_anywhere_are_refused_in_one_line(tmp_path, name):
    data = (FIXTURES / name).read_bytes()
    cuts = sorted(set(range(0, len(data), max(1, len(data) // 300))) | {len(data) - 1, len(data) - 8, len(data) - 23})
    path = tmp_path / name
    for cut in cuts:
        path.write_bytes(data[:cut])
        with pytest.raises(WeightsFileError) as error:
            read_torch_file(path, max_bytes=LIMIT)
        _one_line(error, path)


@pytest.mark.parametrize("name", ["tiny_zip.pt", "tiny_legacy.pt", "plain_legacy.pt"])
def test_files_with_a_byte_changed_read_or_are_refused_in_one_line(tmp_path, name):
    data = (FIXTURES / name).read_bytes()
    rng = np.random.default_rng(sum(name.encode()))
    path, outcomes = tmp_path / name, collections.Counter()
    for offset in rng.choice(len(data), 300, replace=False):
        changed = bytearray(data)
        changed[offset] ^= 1 << int(rng.integers(8))
        path.write_bytes(changed)
        try:
            read_torch_file(path, max_bytes=LIMIT)
            outcomes["read"] += 1
        except WeightsFileError as error:
            assert "\n" not in str(error) and str(error).startswith(f"{path}: ")
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


# Hostile .safetensors files ---------------------------------------------------------------------


def _safetensors(header, data=b""):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _safetensors_cases():
    # The header's checks are the safetensors package's: each refusal names its reason.
    a, refused = (
        {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        r"is refused by safetensors \(Error while deserializing: ",
    )
    return {
        "a header of 2**40 bytes": (
            struct.pack("<Q", 2**40) + b"{}",
            r"declares a header of 1099511627776 bytes; this reader accepts at most 1048576$",
        ),
        "a header longer than the file": (
            struct.pack("<Q", 5000) + b'{"a": 1}',
            r"declares a header of 5000 bytes, longer than the file; the file is truncated$",
        ),
        "garbage": (_safetensors(b"{garbage\xff"), rf"{refused}invalid UTF-8 in header: .*\); the file is damaged$"),
        "a list": (_safetensors([1, 2]), rf"{refused}invalid JSON in header: invalid type: sequence"),
        "a name twice, once without fields": (
            _safetensors(b'{"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "a": {}}'),
            rf"{refused}invalid JSON in header: missing field `dtype`",
        ),
        "deep nesting": (_safetensors(b"[" * 100000 + b"]" * 100000), rf"{refused}invalid JSON in header"),
        "a long number": (_safetensors(b'{"a": ' + b"9" * 5000 + b"}"), rf"{refused}.*number out of range"),
        "bfloat16": (
            _safetensors({"a": {**a, "dtype": "BF16", "data_offsets": [0, 4]}}, bytes(4)),
            r"holds tensors of type 'BF16', which NumPy has no type for; save them as F32$",
        ),
        "a negative dimension": (_safetensors({"a": {**a, "shape": [-2]}}, bytes(8)), r"integer `-2`, expected usize"),
        "offsets past the data": (
            _safetensors({"a": {**a, "data_offsets": [0, 4000]}}, bytes(8)),
            rf"{refused}invalid shape, data type, or offset for tensor\); the file is damaged$",
        ),
        "offsets of another length": (
            _safetensors({"a": {**a, "data_offsets": [0, 4]}}, bytes(8)),
            rf"{refused}invalid shape, data type, or offset for tensor\)",
        ),
        "a huge shape": (
            _safetensors({"a": {**a, "shape": [2**40, 2**40]}}, bytes(8)),
            rf"{refused}.*overflow computing buffer size from shape",
        ),
        "missing fields": (_safetensors({"a": {"dtype": "F32"}}), rf"{refused}.*missing field `shape`"),
        "metadata of numbers": (
            _safetensors({"__metadata__": {"x": 1}}),
            r"invalid type: integer `1`, expected a string",
        ),
        "overlapping tensors": (
            _safetensors({"a": a, "b": a}, bytes(8)),
            r"is refused by safetensors \(.*\); the file is damaged$",
        ),
        "more tensor bytes than allowed": (
            _safetensors({"a": {**a, "shape": [300000], "data_offsets": [0, 1200000]}}, bytes(1200000)),
            r"holds 1200000 bytes of tensors, more than the 1048576 this reader accepts$",
        ),
        "too short": (b"\x05\x00", r"holds 2 bytes, too few for a \.safetensors file$"),
    }


SAFETENSORS_CASES = list(_safetensors_cases())


@pytest.mark.parametrize("case", SAFETENSORS_CASES)
def test_hostile_safetensors_headers_are_refused_in_one_line(tmp_path, case):
    data, message = _safetensors_cases()[case]
    path = tmp_path / "x.safetensors"
    path.write_bytes(data)
    with pytest.raises(WeightsFileError, match=message) as error:
        read_safetensors(path, max_bytes=LIMIT)
    _one_line(error, path)


def test_without_the_safetensors_package_one_line_says_how_to_install_it(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    safetensors_numpy.save_file(_squeezenet_state(1), path)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)  # import safetensors.numpy now fails
    pattern = r"^reading and writing \.safetensors files needs the safetensors package: pip install safetensors$"
    with pytest.raises(WeightsFileError, match=pattern):
        read_squeezenet(path)
    with pytest.raises(WeightsFileError, match=pattern):
        write_squeezenet_weights(tmp_path / "x.safetensors", format="safetensors")
    assert (
        read_squeezenet(_torch_file(tmp_path / "w.pth", _squeezenet_state(1))).layout == "zip"
    )  # torch files need none


# Memory: hostile files in a child that reports its own peak ---------------------------------------

MEMORY_MARGIN_MB = 150  # most the child's peak may grow over its imports, all cases together
CASE_SECONDS = 30

# Reads each case with read_squeezenet and prints one JSON line before ("start") and after it, with
# the process's peak memory (VmHWM: Linux's ru_maxrss would keep pytest's peak from before exec).
CHILD = r"""
import json, sys
from nst_tf.plan.weights.squeezenet_reader import read_squeezenet
from nst_tf.ground.errors import WeightsFileError
try:
    import safetensors.numpy  # in the baseline, as its reads need it
except ImportError:
    pass  # then the .safetensors cases are refused for want of it

def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024

print(json.dumps({"baseline": peak_mb()}), flush=True)
for case, path in json.loads(sys.argv[1]).items():
    print(json.dumps({"start": case}), flush=True)
    result = {"id": case}
    try:
        weights = read_squeezenet(path)
        result.update(outcome="ok", tensors=len(weights.params))
    except WeightsFileError as error:
        result.update(outcome="WeightsFileError", message=str(error))
    except BaseException as error:
        result.update(outcome=type(error).__name__, message=str(error)[:300])
    result["peak_mb"] = peak_mb()
    print(json.dumps(result), flush=True)
"""


def _memory_cases(folder):
    """Case -> path of hostile files that would need gigabytes, or a long time, if read naively."""
    one = np.zeros(1 << 20, np.float32)  # 4 MiB
    big = {"0": one}
    huge = D((S("features.0.weight"), _tensor("0", 2**40, 0, (4,), (1,))))
    bomb = _deflate_bomb(1024)  # 1 GiB of zeros in about 1 MB
    entries = _zip_entries(D((S("a"), _tensor("0", 1024, 0, (1024,), (1,)))), {"0": np.zeros(1024, np.float32)})
    web = b"]q\x000" + b"".join(
        b"](" + (b"h" + bytes([n - 1])) * 1000 + b"eq" + bytes([n]) + b"0" for n in range(1, 11)
    )
    files = {
        "zip storage of 2**40": _hand_zip(_zip_entries(huge, {})),
        "legacy storage of 2**40": _legacy_bytes(D((S("a"), _tensor("0", 2**40, 0, (4,), (1,), legacy=True))), {}),
        "legacy count of 2**40": _legacy_bytes(
            D((S("a"), _tensor("0", 4, 0, (4,), (1,), legacy=True))), {"0": one[:4]}, counts={"0": 2**40}
        ),
        "2**40 by stride 0": _hand_zip(_zip_entries(D((S("a"), _tensor("0", 1, 0, (2**40,), (0,)))), {"0": one[:1]})),
        "a 4 MiB tensor named 5000 times": _hand_zip(
            _zip_entries(
                D(
                    (S("a"), _tensor("0", 1 << 20, 0, (1 << 20,), (1,)) + b"q\x01"),
                    *[(S(f"b{i}"), b"h\x01") for i in range(5000)],
                ),
                big,
            )
        ),
        "a zip bomb": _hand_zip(_with(entries, "archive/data/0", data=bomb[:5000], method=8, size=4096)),
        "4 GiB declared": _hand_zip(_with(entries, "archive/data.pkl", data=bomb, method=8, size=0xFFFFFFF0)),
        "LONG_BINPUT 0xFFFFFFFF": _hand_zip(_zip_entries(b"}r\xff\xff\xff\xff", {})),
        "a pickle of empty dicts": _hand_zip(_zip_entries(b"(" + b"}" * ((256 << 10) - 16), {})),
        "a legacy pickle without end": _legacy_bytes(b"(" + b"]" * (64 << 20), {}),
        "a web of lists": _hand_zip(_zip_entries(D((S("web"), web + b"h\x0a")), {})),
        "a safetensors header of 2**40": struct.pack("<Q", 2**40) + b"{}",
        "a safetensors shape of 2**80": _safetensors(
            {"features.0.weight": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 2**82]}}, bytes(8)
        ),
    }
    paths = {}
    for case, data in files.items():
        paths[case] = str(folder / f"{len(paths)}.pth")
        Path(paths[case]).write_bytes(data)
    return paths


def _run_child(cases):
    """Outcomes of ``cases`` read by CHILD, and its baseline peak; a case silent for CASE_SECONDS stops it."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(cases)], cwd=REPO, stdout=subprocess.PIPE, text=True
    ) as process:
        lines = queue.Queue()
        threading.Thread(target=lambda: [*map(lines.put, process.stdout), lines.put(None)], daemon=True).start()
        results, started, baseline = {}, None, None
        while True:
            try:
                line = lines.get(timeout=CASE_SECONDS)
            except queue.Empty:
                process.kill()
                results[started] = {"outcome": f"hung for {CASE_SECONDS} s"}
                break
            if line is None:
                break
            record = json.loads(line)
            if "baseline" in record:
                baseline = record["baseline"]
            elif "start" in record:
                started = record["start"]
            else:
                results[record.pop("id")] = record
    return results, baseline


def test_hostile_files_are_refused_within_bounded_memory(tmp_path):
    cases = _memory_cases(tmp_path)
    cases["a good file"] = str(write_squeezenet_weights(tmp_path / "good.pth", seed=4))
    results, baseline = _run_child(cases)
    assert results.pop("a good file")["outcome"] == "ok"
    wrong = {case: results.get(case) for case in cases if case != "a good file"}
    wrong = {case: result for case, result in wrong.items() if not result or result["outcome"] != "WeightsFileError"}
    assert not wrong, wrong
    peaks = {case: round(result["peak_mb"] - baseline) for case, result in results.items()}
    assert max(peaks.values()) < MEMORY_MARGIN_MB, peaks


# Writing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("format", FORMATS)
def test_writing_replaces_a_file_and_leaves_nothing_else(tmp_path, format):
    path = tmp_path / "w.pth"
    path.write_bytes(b"old")
    write_squeezenet_weights(path, format=format)
    assert read_squeezenet(path).layout == format
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]


@pytest.mark.parametrize("format", FORMATS)
def test_writing_never_goes_through_a_link_or_into_a_folder(tmp_path, format):
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    os.symlink(target, tmp_path / "link.pth")
    with pytest.raises(
        WeightsFileError, match=r"link\.pth: is a symbolic link; weights are not written through links$"
    ):
        write_squeezenet_weights(tmp_path / "link.pth", format=format)
    assert target.read_bytes() == b"keep" and os.path.islink(tmp_path / "link.pth")
    (tmp_path / "folder").mkdir()
    with pytest.raises(WeightsFileError, match=r"folder: is a folder; give a file name$"):
        write_squeezenet_weights(tmp_path / "folder", format=format)
    with pytest.raises(WeightsFileError, match=r"w\.pth: cannot be written: No such file or directory$"):
        write_squeezenet_weights(tmp_path / "missing" / "w.pth", format=format)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "link.pth", "target"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"format": "tar"}, r"format must be 'zip' or 'legacy', not 'tar'$"),
        ({"top": "a/b"}, r"top must be a plain folder name, not 'a/b'$"),
        ({"top": ""}, r"top must be a plain folder name, not ''$"),
        ({"top": ".."}, r"top must be a plain folder name"),
        ({"serialization_id": "x1"}, r"serialization_id must be a string of digits, not 'x1'$"),
        ({"tensors": {"c": np.zeros(2, np.complex64)}}, r"tensor 'c' has type complex64; expected one of"),
        ({"tensors": {"o": np.array([object()])}}, r"tensor 'o' has type object"),
        ({"tensors": {3: np.zeros(2)}}, r"tensor names must be non-empty strings, not 3$"),
    ],
)
def test_write_state_dict_refuses_what_torch_would_not_write(tmp_path, arguments, message):
    arguments = {"tensors": {"a": np.zeros(2, np.float32)}, **arguments}
    with pytest.raises(NSTError, match=rf"^write_state_dict: {message}"):
        write_state_dict(tmp_path / "x.pt", **arguments)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "path, message",
    [(None, "must be a path; got NoneType"), (123, "must be a path; got int"), ("a\0b", "cannot hold a NUL character")],
)
def test_a_path_that_is_no_path_is_one_line(path, message):
    with pytest.raises(WeightsFileError, match=message):
        read_squeezenet(path)

"""Hostile torch.save and .safetensors files: one error line, exit status 2, in seconds, in bounded memory.

Each file is made here opcode by opcode or byte by byte, for the readers of nst_tf.plan.weights
(torchfile, squeezenet_reader), none larger than a real SqueezeNet file: a dict key nested 250,000
tuples deep (hashing it overflows the C stack), a legacy version nested 5,000 deep (a message that
shows it recursively fails), a .safetensors type that is a list, a pickle copying one dict 23,000
times, dict keys that all hash alike, tensor sizes of 400,000-bit integers, a .safetensors header
naming 104,000 tensors, and neighbours of each.
Each is read in a child process under an address-space cap (RLIMIT_AS), so that a crash, a
runaway allocation or a hang fails the test instead of pytest; a launcher between pytest and
the child reports the child's status, time and peak memory (ru_maxrss of its only child).
"""

import io
import json
import pickle
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst_tf.plan.networks.squeezenet import PARAMETERS
from nst_tf.plan.weights.squeezenet_reader import SQUEEZENET_MAX_PICKLE_BYTES
from nst_tf.plan.weights.torchfile import read_torch_file, write_state_dict

REPO = Path(__file__).resolve().parents[1]
ADDRESS_SPACE = 4 << 30  # a few GB: imports map more address space than they touch
SECONDS = 60  # per child; each takes well under 10 s
MEMORY_SLACK_MB = 48  # most a child's peak may exceed the same child's on a good file (or a plain bad one)

# Runs argv[3:] as its only child with RLIMIT_AS of argv[1] bytes and a timeout of argv[2] seconds; prints
# one JSON line: exit status (negative: the signal), seconds, peak memory in MiB, stdout and stderr.
LAUNCHER = r"""
import json, resource, subprocess, sys, time
limit, timeout, argv = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
start = time.monotonic()
child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
try:
    out, err = child.communicate(timeout=timeout)
except subprocess.TimeoutExpired:
    child.kill()
    out, err = child.communicate()
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
result = {"status": child.returncode, "seconds": time.monotonic() - start, "peak_mb": peak}
print(json.dumps({**result, "stdout": out.decode(errors="replace"), "stderr": err.decode(errors="replace")}))
"""

# Reads argv[1] with the library: prints the NSTError's class and message and exits 3, or prints "read".
LIBRARY = r"""
import sys
from nst_tf.ground.errors import NSTError
from nst_tf.plan.weights.squeezenet_reader import read_squeezenet
try:
    read_squeezenet(sys.argv[1])
except NSTError as error:
    print(f"{type(error).__name__}: {error}")
    sys.exit(3)
print("read")
"""


def _launch(argv):
    """``argv`` run under the launcher: its JSON record."""
    launcher = [sys.executable, "-c", LAUNCHER, str(ADDRESS_SPACE), str(SECONDS), *map(str, argv)]
    done = subprocess.run(launcher, cwd=REPO, capture_output=True, text=True, timeout=SECONDS + 60, check=True)
    return json.loads(done.stdout)


# Pickles by hand: protocol 2 opcodes ------------------------------------------------------------

ORDERED_DICT = b"ccollections\nOrderedDict\n"
REBUILD = b"ctorch._utils\n_rebuild_tensor_v2\n"


def S(text):
    """BINUNICODE."""
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def I(number):  # noqa: E743
    """An int: BININT1, BININT2, LONG1 or LONG4."""
    if 0 <= number < 256:
        return b"K" + bytes([number])
    if 0 <= number < 65536:
        return b"M" + struct.pack("<H", number)
    data = number.to_bytes((number.bit_length() + 8) // 8, "little", signed=True)
    return (b"\x8a" + bytes([len(data)]) if len(data) < 256 else b"\x8b" + struct.pack("<I", len(data))) + data


def deep_tuple(levels):
    """EMPTY_TUPLE wrapped ``levels`` times by TUPLE1: one byte a level."""
    return b")" + b"\x85" * levels


def zip_file(body, storages=()):
    """torch.save's zip format (as Python's zipfile lays it out) of the pickle ``body``, float32 storages of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02" + body + b".")
        for key, numel in storages:
            archive.writestr(f"archive/data/{key}", bytes(4 * numel))
        archive.writestr("archive/version", b"3\n")
    return out.getvalue()


def legacy_file(version=b"M\xe9\x03", info=None):
    """torch.save's legacy format of an empty state dict: magic number, ``version`` and ``info`` ops, no storages."""
    info = pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2)[2:-1] if info is None else info
    pickles = (I(0x1950A86A20F9469CFC6C), version, info, ORDERED_DICT + b")R", b"]")
    return b"".join(b"\x80\x02" + ops + b"." for ops in pickles)


def safetensors_file(header):
    """A .safetensors file of ``header`` (JSON, or its bytes) and no tensors."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text


def calls(function_ops, args_ops, count):
    """A list of ``count`` calls of one function on one argument tuple, each result kept: 5 bytes a call."""
    return b"](" + function_ops + b"q\x010" + args_ops + b"q\x020" + b"h\x01h\x02R" * count + b"e"


def dict_of(keys):
    """EMPTY_DICT, then SETITEMS of the ``keys`` (ops), each to None."""
    return b"}(" + b"".join(key + b"N" for key in keys) + b"u"


def tensor_args(numel_ops, offset_ops, size_ops, stride_ops):
    """The arguments of ``_rebuild_tensor_v2``: a float32 storage "0", offset, size, stride, False, OrderedDict()."""
    pid = b"(" + S("storage") + b"ctorch\nFloatStorage\n" + S("0") + S("cpu") + numel_ops + b"tQ"
    return b"(" + pid + offset_ops + size_ops + stride_ops + b"\x89" + ORDERED_DICT + b")Rt"


HUGE = I((1 << 400_000) - 1)  # a 400,000-bit integer: 50 KB of LONG4
TUPLE_KEY = deep_tuple(250_000)
HUGE_SIZE = b"(" + HUGE + b"q\x09" + b"h\x09" * 30 + I(0) + b"t"  # thirty-one times the one integer, then 0
PAIRS = b"](" + b"".join(b"](" + I(k) + b"Ne" for k in range(30_000)) + b"e"  # Python 2's [[0, None], ...]

# Kind -> the file; each is refused, in one line naming the file.
HOSTILE = {
    "a dict key 250,000 tuples deep": lambda: zip_file(b"}" + TUPLE_KEY + b"Ns"),
    "a dict key 150,000 tuples deep": lambda: zip_file(b"}" + deep_tuple(150_000) + b"Ns"),
    "a deep tuple in OrderedDict([(t, t)])": lambda: zip_file(
        ORDERED_DICT + b"](" + TUPLE_KEY + b"q\x00h\x00\x86e\x85R"
    ),
    "a deep tuple key in legacy system information": lambda: legacy_file(info=b"}" + TUPLE_KEY + b"Ns"),
    "a legacy version 5,000 tuples deep": lambda: legacy_file(version=deep_tuple(5_000)),
    "OrderedDict(d) of 30,000 entries 23,000 times": lambda: zip_file(
        calls(ORDERED_DICT, dict_of(I(k) for k in range(30_000)) + b"\x85", 23_000)
    ),
    "10,000 int keys hashing alike, copied": lambda: zip_file(
        calls(ORDERED_DICT, dict_of(I(k * (2**61 - 1)) for k in range(10_000)) + b"\x85", 1000)
    ),
    "sizes of thirty-one 400,000-bit integers and a 0": lambda: zip_file(
        calls(REBUILD, tensor_args(I(4), I(0), HUGE_SIZE, b"(" + I(1) * 32 + b"t"), 10), [("0", 4)]
    ),
    # Neighbours: the same attacks by other ways.
    "Python 2's OrderedDict of 30,000 pairs, copied": lambda: zip_file(calls(ORDERED_DICT, PAIRS + b"\x85", 5000)),
    "a value 100,000 lists deep": lambda: zip_file(
        ORDERED_DICT + b")R" + S("a") + b"]" * 100_000 + b"a" * 99_999 + b"s"
    ),
    "an int key of 2**31": lambda: zip_file(dict_of([I(2**31)])),
    "a storage of 2**400,000 elements": lambda: zip_file(calls(REBUILD, tensor_args(HUGE, I(0), b")", b")"), 1)),
    "an offset of 2**400,000, 3,000 times": lambda: zip_file(
        calls(REBUILD, tensor_args(I(4), HUGE, b"(K\x01t", b"(K\x01t"), 3000), [("0", 4)]
    ),
    "a safetensors type that is a list": lambda: safetensors_file(
        {"a": {"dtype": [], "shape": [], "data_offsets": [0, 0]}}
    ),
    "a safetensors type that is an object": lambda: safetensors_file(
        {"a": {"dtype": {}, "shape": [], "data_offsets": [0, 0]}}
    ),
    "a safetensors header of 104,000 names, one twice": lambda: safetensors_file(
        ("{" + ",".join(f'"{n:05x}":0' for n in [*range(104_000), 0]) + "}").encode()
    ),
    "a safetensors header of 104,000 names": lambda: safetensors_file(
        ("{" + ",".join(f'"{n:05x}":0' for n in range(104_000)) + "}").encode()
    ),
    "a safetensors shape of 4,000-digit numbers": lambda: safetensors_file(
        b'{"a": {"dtype": "F32", "shape": [' + b",".join([b"9" * 4000] * 32) + b'], "data_offsets": [0, 0]}}'
    ),
}

#: Kind -> what its one line says after the file's name.
EXPECTED = {
    "a dict key 250,000 tuples deep": r"uses a tuple as a dict key; not a state dict$",
    "a dict key 150,000 tuples deep": r"uses a tuple as a dict key; not a state dict$",
    "a deep tuple in OrderedDict([(t, t)])": r"uses a tuple as a dict key; not a state dict$",
    "a deep tuple key in legacy system information": r"uses a tuple as a dict key; not a state dict$",
    "a legacy version 5,000 tuples deep": r"legacy format of version \(\(\(\.\.\.\),\),\); expected 1001$",
    "OrderedDict(d) of 30,000 entries 23,000 times": r"calls collections\.OrderedDict with \(a dict,\), not as",
    "10,000 int keys hashing alike, copied": r"uses the number 2305843009213693951 as a dict key; not a state",
    "sizes of thirty-one 400,000-bit integers and a 0": r"size \(2\*\*399999 or more, .*; torch's sizes and strides",
    "Python 2's OrderedDict of 30,000 pairs, copied": r"its pickle calls and copies more than its length allows",
    "a value 100,000 lists deep": r"nests its objects more than 16 deep; not a state dict$",
    "an int key of 2**31": r"uses the number 2147483648 as a dict key; not a state dict$",
    "a storage of 2**400,000 elements": r"declares a storage as \('storage', .*, 2\*\*399999 or more\); expected",
    "an offset of 2**400,000, 3,000 times": r"a tensor of offset 2\*\*399999 or more, size \(1,\), .* reads past",
    "a safetensors type that is a list": r"refused by safetensors \(.*invalid type: sequence, expected string or map",
    "a safetensors type that is an object": r"refused by safetensors \(.*invalid value: map, expected map with a",
    "a safetensors header of 104,000 names, one twice": r"by safetensors \(.*invalid type: integer `0`, expected",
    "a safetensors header of 104,000 names": r"by safetensors \(.*invalid type: integer `0`, expected struct Tensor",
    "a safetensors shape of 4,000-digit numbers": r"refused by safetensors \(.*number out of range at line 1",
}

#: One file of each kind the attack found, for the command.
COMMAND_KINDS = [
    "a dict key 250,000 tuples deep",
    "a legacy version 5,000 tuples deep",
    "a safetensors type that is a list",
    "OrderedDict(d) of 30,000 entries 23,000 times",
    "10,000 int keys hashing alike, copied",
    "sizes of thirty-one 400,000-bit integers and a 0",
    "a safetensors header of 104,000 names, one twice",
]


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    """Kind -> path of its file (a .pth or .safetensors, by its contents)."""
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for index, (kind, make) in enumerate(HOSTILE.items()):
        data = make()
        suffix = ".safetensors" if data[8:9] == b"{" else ".pth"
        paths[kind] = folder / f"hostile{index}{suffix}"
        paths[kind].write_bytes(data)
    return paths


def test_the_files_are_small_and_their_pickles_fit_the_readers_limit(hostile_files):
    # Each attack needs no more than the reader accepts: the refusal is the new rule's, not a size limit's.
    for kind, path in hostile_files.items():
        data = path.read_bytes()
        assert len(data) < 1_300_000, kind
        if data.startswith(b"PK"):
            with zipfile.ZipFile(path) as archive:
                assert len(archive.read("archive/data.pkl")) <= SQUEEZENET_MAX_PICKLE_BYTES, kind


@pytest.mark.parametrize(
    "data, expected",
    [
        (zip_file(calls(REBUILD, tensor_args(I(4), I(0), b"(K\x04t", b"(K\x01t"), 3), [("0", 4)]), [[0.0] * 4] * 3),
        (zip_file(calls(ORDERED_DICT, b")", 3)), [{}] * 3),
        (zip_file(calls(ORDERED_DICT, b"](](K\x01Nee\x85", 3)), [{1: None}] * 3),  # Python 2's OrderedDict
        (zip_file(dict_of(I(k) for k in (0, 1, 2**31 - 1))), {0: None, 1: None, 2**31 - 1: None}),
        (legacy_file(), {}),
    ],
    ids=["tensors", "OrderedDict()", "OrderedDict of pairs", "int keys below 2**31", "a legacy file"],
)
def test_the_same_constructions_in_their_ordinary_sizes_read(tmp_path, data, expected):
    # The hostile files differ from these only in what the reader refuses.
    path = tmp_path / "ordinary.pth"
    path.write_bytes(data)
    value = read_torch_file(path, max_bytes=1 << 20)
    if type(value) is list:
        value = [item.tolist() if isinstance(item, np.ndarray) else item for item in value]
    assert value == expected


@pytest.fixture(scope="module")
def library_baseline(tmp_path_factory):
    """The library child's record for a good SqueezeNet file: what reading the real network takes."""
    folder = tmp_path_factory.mktemp("good")
    state = {key: np.full(shape, 0.5, np.float32) for key, shape in PARAMETERS.items()}
    path = write_state_dict(folder / "squeezenet1_1.pth", state)
    record = _launch([sys.executable, "-c", LIBRARY, path])
    assert (record["status"], record["stdout"]) == (0, "read\n"), record
    return record


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_files_are_one_weights_file_error_from_the_library(hostile_files, library_baseline, kind):
    path = hostile_files[kind]
    record = _launch([sys.executable, "-c", LIBRARY, path])
    assert record["status"] == 3, record  # not a crash (negative), a traceback (1) or a read (0)
    (line,) = record["stdout"].splitlines()
    assert line.startswith(f"WeightsFileError: {path}: "), line
    assert re.search(EXPECTED[kind], line), line
    assert record["seconds"] < 10, record["seconds"]
    assert record["peak_mb"] < library_baseline["peak_mb"] + MEMORY_SLACK_MB, (record["peak_mb"], library_baseline)


@pytest.fixture(scope="module")
def command(tmp_path_factory):
    """Runs the command with CS231n's preset, a small content and style image and ``--model`` the given file."""
    folder = tmp_path_factory.mktemp("command")
    image = folder / "image.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(image)

    def run(model):
        argv = [sys.executable, "-m", "nst_tf", "--preset", "cs231n_starry_night", "--model", model]
        argv += ["--output_dir", folder / "out", "--content_image_filename", image, "--style_image_filename", image]
        return _launch(argv)

    return run


@pytest.fixture(scope="module")
def command_baseline(command, tmp_path_factory):
    """The command's record for a weights file of 4 bytes, refused at once: what it takes to get that far."""
    path = tmp_path_factory.mktemp("plain") / "plain.pth"
    path.write_bytes(b"junk")
    record = command(path)
    assert record["status"] == 2 and f"{path}: is neither a torch.save file" in record["stderr"], record
    return record


@pytest.mark.parametrize("kind", COMMAND_KINDS)
def test_hostile_files_are_one_line_and_exit_status_2_from_the_command(hostile_files, command, command_baseline, kind):
    path = hostile_files[kind]
    record = command(path)
    assert record["status"] == 2, record
    (line,) = record["stderr"].splitlines()
    assert line.startswith(f"nst-tf: error: {path}: ") and re.search(EXPECTED[kind], line), line
    assert record["seconds"] < command_baseline["seconds"] + 20, (record["seconds"], command_baseline["seconds"])
    assert record["peak_mb"] < command_baseline["peak_mb"] + MEMORY_SLACK_MB, (record["peak_mb"], command_baseline)

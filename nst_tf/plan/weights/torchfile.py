"""torch.save files read and written without torch, and .safetensors files read through the safetensors package.

torch.save's zip format (PyTorch 1.6 on) holds, under one top folder, ``data.pkl`` (the pickle), ``data/<key>``
(each storage's raw bytes, little-endian unless ``byteorder`` says "big"), ``version`` and small records, stored
uncompressed with data descriptors. Its legacy format is five pickles (magic number 0x1950A86A20F9469CFC6C,
protocol version 1001, system information, the object, the sorted storage keys), then each storage as an 8-byte
element count and its bytes. A tensor is pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, requires_grad, backward_hooks)`` (``_rebuild_tensor(storage, offset, size, stride)`` before PyTorch 0.4),
a storage as the persistent id ``('storage', torch.FloatStorage, key, location, numel)`` (legacy: plus None).

A pickle can call any function, so only ``_Unpickler`` reads them: globals of an allow-list (``OrderedDict``, the
rebuild functions, the storage types; never imported or called), no opcode that makes other objects, storages as
persistent ids, dict keys that are str or ints in [0, 2**31) (a tuple's hash recurses as deep as it nests; large
ints can be made to hash alike). Tensors come back as NumPy arrays copied out of their storages.

Bounds, each refused in one ``WeightsFileError`` line naming the file: ``max_bytes`` for the declared storages
and for the tensors, before anything is read; ``max_pickle_bytes`` for the pickles (an opcode makes at most one
object; calls and the entries they copy are at most one per byte); sizes and strides below 2**63 and inside their
storage, before any arithmetic; nesting to ``MAX_NESTING``; a zip's directory to ``MAX_MEMBERS`` entries in
``MAX_DIRECTORY_BYTES`` before zipfile reads it, each member inflated no further than its declared size. A read
holds at most twice ``max_bytes`` plus the pickle's objects, in time linear in the file's length. ``.safetensors``
files are bounded by header and data length, then checked by the safetensors package (an optional dependency).
"""

import collections
import hashlib
import io
import math
import os
import pickle
import secrets
import struct
import zipfile
import zlib

import numpy as np

from ...ground.errors import NSTError, WeightsFileError, quoted
from .matfile import open_regular_file, weights_path

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
LEGACY_MAGIC_BYTES = LEGACY_MAGIC_NUMBER.to_bytes(10, "little")
ZIP_SIGNATURE = b"PK\x03\x04"

#: Most bytes the pickles of one file may take together; a state dict takes about 100 per tensor.
MAX_PICKLE_BYTES = 1 << 20
#: Most members a zip may list (torch writes one per storage and six records), in at most this many bytes.
MAX_MEMBERS, MAX_DIRECTORY_BYTES = 4096, 1 << 20
#: Most bytes of the small records (version, byteorder) read.
MAX_RECORD_BYTES = 64
#: Most dimensions of a tensor (NumPy's limit is 64).
MAX_DIMS = 32
#: Deepest nesting of lists, tuples and dicts around the tensors (a state dict is 1, wrapped 2).
MAX_NESTING = 16
#: Integer dict keys (an optimizer's parameter ids) lie below this: such ints are their own hash.
MAX_INT_KEY = 1 << 31
#: Sizes, strides and counts lie below this (torch's int64); checked before any arithmetic on them.
MAX_COUNT = 1 << 63
#: Most bytes of a .safetensors header; SqueezeNet's 52 tensors take about 5 KB.
MAX_SAFETENSORS_HEADER = 1 << 20

#: torch's storage types -> NumPy's little-endian types. BFloat16 has no NumPy type: its 16 bits are the
#: upper half of a float32's, so its storages are read as uint16 and widened to float32.
STORAGE_TYPES = dict(
    pair.split(":")
    for pair in "Double:<f8 Float:<f4 Half:<f2 BFloat16:<u2 Long:<i8 Int:<i4 Short:<i2 Char:i1 Byte:u1 Bool:?".split()
)
#: NumPy's types -> the storage types torch.save writes for them.
WRITTEN_STORAGE_TYPES = {
    np.dtype(code).newbyteorder("<"): name for name, code in STORAGE_TYPES.items() if name != "BFloat16"
}

SAFETENSORS_HINT = "reading and writing .safetensors files needs the safetensors package: pip install safetensors"

_REBUILD_V2 = ("torch._utils", "_rebuild_tensor_v2")


def _fail(path, problem):
    """Raises ``WeightsFileError``: ``path`` (shown safely) and ``problem``, one line."""
    raise WeightsFileError(f"{quoted(path)}: {problem}")


def _shown(value, limit=60, depth=0):
    """``value`` for a message in one short line: texts cut to ``limit`` characters, ints past 128 bits
    summarized (int -> str is quadratic in the digits), sequences to depth 2 with 8 items, other objects named."""
    if isinstance(value, (bool, float)) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 128 else f"2**{value.bit_length() - 1} or more"
    if isinstance(value, (str, bytes)):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    if type(value) not in (tuple, list):
        return _what(value)
    if depth >= 2:
        inner = "..." if value else ""
    else:
        inner = ", ".join(_shown(item, 20, depth + 1) for item in value[:8]) + (", ..." if len(value) > 8 else "")
        inner = inner if len(inner) <= 120 else inner[:117] + "..."
    return f"({inner}{',' if len(value) == 1 and depth < 2 else ''})" if type(value) is tuple else f"[{inner}]"


def _what(value):
    """What ``value`` is, in words: "a storage", "a tensor", "torch.FloatStorage", "a dict"."""
    if isinstance(value, (_Storage, _TensorRef, _Global)):
        return value.described
    if value is collections.OrderedDict:
        return "collections.OrderedDict"
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiouAEIOU" else f"a {name}"


class _Global:
    """A torch global named in a pickle, never imported or called: a rebuild function (``arguments``: its
    argument counts) or a storage type (``dtype``)."""

    def __init__(self, module, name, arguments=(), dtype=None):
        self.module, self.name, self.described, self.arguments = module, name, f"{module}.{name}", arguments
        self.dtype, self.bfloat16 = dtype, name == "BFloat16Storage"

    def __reduce__(self):
        return self.name  # written by name: see _Pickler.save_global

    def __call__(self, *args):  # pickle writes a call only of what is callable
        raise TypeError(f"{self.described} is not called here")


class _Storage:
    """A storage the pickle declares: key, type and element count; its bytes are read after the pickle."""

    def __init__(self, key, storage_type, numel):
        self.described, self.type, self.numel, self.array = f"storage {_shown(key)}", storage_type, numel, None
        self.nbytes = numel * storage_type.dtype.itemsize


class _TensorRef:
    """A tensor the pickle rebuilds: its storage, offset, size and stride, checked to lie inside the storage."""

    described = "a tensor"

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self):
        """The tensor as a new C-ordered NumPy array (float32 for bfloat16), once its storage is read."""
        source = self.storage.array
        values = np.zeros(self.size, source.dtype.newbyteorder("="))
        if values.size:  # ``rebuild`` checked that the last element read lies inside the storage
            steps = [step * source.dtype.itemsize for step in self.stride]
            values[...] = np.lib.stride_tricks.as_strided(source[self.offset :], shape=self.size, strides=steps)
        return (values.astype(np.uint32) << 16).view(np.float32) if self.storage.type.bfloat16 else values


_STORAGE_GLOBALS = {
    name: _Global("torch", f"{name}Storage", dtype=np.dtype(code)) for name, code in STORAGE_TYPES.items()
}
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    _REBUILD_V2: _Global(*_REBUILD_V2, arguments=(6, 7)),  # (storage, offset, size, stride, grad, hooks[, meta])
    ("torch._utils", "_rebuild_tensor"): _Global("torch._utils", "_rebuild_tensor", arguments=(4,)),  # before 0.4
    **{(value.module, value.name): value for value in _STORAGE_GLOBALS.values()},
}

# Opcodes that build objects of any class or reach outside the pickle (INST, OBJ, NEWOBJ, NEWOBJ_EX, the
# extension registry, out-of-band buffers); sets, which torch does not write; and protocol 0's DICT, which
# torch cannot write (protocol 0 has no tuples as persistent ids).
_REFUSED_OPCODES = {
    *("INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "NEXT_BUFFER", "READONLY_BUFFER"),
    *("BYTEARRAY8", "EMPTY_SET", "ADDITEMS", "FROZENSET", "DICT"),
}


class _Unpickler(pickle._Unpickler):
    """Unpickles a torch.save pickle through allow-lists; see the module docstring.

    Python's unpickler, not the C one: its memo is a dict (the C one allocates twice the largest memo index:
    LONG_BINPUT 0xFFFFFFFF would take 64 GB) and its opcode table can be narrowed.
    """

    dispatch = {}

    def __init__(self, file, path, max_bytes, storages):
        """Unpickles ``file`` (bytes in memory) of ``path``; ``max_bytes`` bounds storages and tensors; ``storages``
        (key -> ``_Storage``) is shared by one file's pickles. Calls and the entries they copy spend a budget of
        the pickle's length (torch's spend one per 15 bytes or fewer)."""
        super().__init__(file, encoding="utf-8")
        self.path, self.max_bytes, self.budget = path, max_bytes, len(file.getvalue())
        self.storages, self.storage_bytes, self.tensor_bytes = storages, 0, 0

    def fail(self, problem):
        _fail(self.path, problem)

    def find_class(self, module, name):
        """The allowed global ``module.name``; anything else is refused, never imported."""
        found = _ALLOWED_GLOBALS.get((module, name))
        if found is None:
            self.fail(
                f"its pickle names {quoted(f'{module[:60]}.{name[:60]}')}, which a weights file has no use for; "
                "refused, and nothing of the file was run"
            )
        return found

    def persistent_load(self, pid):
        """The ``_Storage`` that ``pid``, ``('storage', type, key, location, numel[, view])``, declares."""
        if type(pid) is not tuple or len(pid) not in (5, 6) or pid[0] != "storage":
            self.fail(f"its pickle holds the persistent id {_shown(pid)}; expected ('storage', type, key, ...)")
        storage_type, key, location, numel = pid[1:5]
        if not isinstance(storage_type, _Global) or storage_type.dtype is None:
            self.fail(f"its pickle declares a storage of type {_shown(storage_type)}; expected a torch storage type")
        if type(key) is not str or type(location) is not str or type(numel) is not int or not 0 <= numel < MAX_COUNT:
            self.fail(f"its pickle declares a storage as {_shown(pid)}; expected a key, a location and a count")
        if len(pid) == 6 and pid[5] is not None:
            self.fail(f"storage {_shown(key)} is a view of another storage, which this reader does not read")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, storage_type, numel)
            self.storage_bytes += storage.nbytes
            if self.storage_bytes > self.max_bytes:
                self.fail(
                    f"declares storages of {_shown(self.storage_bytes)} bytes (checked before reading any), "
                    f"more than the {self.max_bytes} this reader accepts"
                )
        elif storage.type is not storage_type or storage.numel != numel:
            self.fail(f"storage {_shown(key)} is declared twice, differently; the file is damaged")
        return storage

    def spend(self, work):
        """Takes ``work`` (calls, entries copied) from the budget; refuses the pickle once it is spent."""
        self.budget -= work
        if self.budget < 0:
            self.fail("its pickle calls and copies more than its length allows a state dict; not a state dict")

    def load_reduce(self):
        """REDUCE: ``OrderedDict()``, Python 2's ``OrderedDict([[key, value], ...])``, or a rebuild function."""
        args = self.stack.pop()
        function = self.stack[-1]
        if type(args) is not tuple:
            self.fail(f"its pickle calls {_what(function)} with {_what(args)}; the file is damaged")
        pairs = args[0] if len(args) == 1 and type(args[0]) is list else []
        self.spend(1 + len(pairs))
        if function is collections.OrderedDict:
            if args and not pairs or any(type(pair) not in (list, tuple) or len(pair) != 2 for pair in pairs):
                self.fail(f"its pickle calls collections.OrderedDict with {_shown(args)}, not as pickle does")
            self.stack[-1] = self.set_items(collections.OrderedDict(), [item for pair in pairs for item in pair])
        elif isinstance(function, _Global) and function.arguments:
            self.stack[-1] = self.rebuild(function, args)
        else:
            self.fail(
                f"its pickle calls {_what(function)}; only collections.OrderedDict and torch's tensor rebuilding "
                "are allowed, and nothing of the file was run"
            )

    def load_build(self):
        """BUILD: only a state dict's ``_metadata`` (its modules' versions), which is not needed and dropped."""
        state = self.stack.pop()
        if type(self.stack[-1]) is not collections.OrderedDict or type(state) is not dict:
            self.fail(
                f"its pickle sets the state of {_what(self.stack[-1])} to {_what(state)}, which this reader refuses"
            )

    def load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self.set_items(self.stack[-1], (key, value))

    def load_setitems(self):
        items = self.pop_mark()
        self.set_items(self.stack[-1], items)

    def set_items(self, target, items):
        """``target[key] = value`` for ``items`` (key, value, key, ...), each key checked before it is hashed."""
        for key in items[::2]:
            if not (type(key) is str or type(key) is int and 0 <= key < MAX_INT_KEY):
                self.fail(
                    f"uses {f'the number {_shown(key)}' if type(key) is int else _what(key)} as a dict key; "
                    "not a state dict"
                )
        target.update(zip(items[::2], items[1::2]))  # of a dict; anything else has no update, or refuses it
        return target

    def rebuild(self, function, args):
        """A ``_TensorRef`` of ``_rebuild_tensor_v2(storage, offset, size, stride, grad, hooks[, meta])`` or
        ``_rebuild_tensor(storage, offset, size, stride)``, checked against the storage and ``max_bytes``."""
        if len(args) not in function.arguments:
            self.fail(f"its pickle calls {function.described} with {len(args)} arguments; the file is damaged")
        storage, offset, size, stride = args[:4]
        if len(args) > 5 and args[5] is not None and (not isinstance(args[5], dict) or args[5]):
            self.fail("its pickle gives a tensor backward hooks, which this reader refuses")
        if not isinstance(storage, _Storage):
            self.fail(f"its pickle rebuilds a tensor from {_what(storage)}, not from a storage")
        if type(size) not in (tuple, list) or type(stride) not in (tuple, list) or len(size) != len(stride):
            self.fail(f"a tensor of {storage.described} has size {_shown(size)} and stride {_shown(stride)}")
        shape = f"size {_shown(size)}, stride {_shown(stride)}"
        if len(size) > MAX_DIMS or any(type(n) is not int or n < 0 for n in (offset, *size, *stride)):
            expected = f"expected at most {MAX_DIMS} counts of 0 or more"
            self.fail(f"a tensor of {storage.described} has offset {_shown(offset)}, {shape}; {expected}")
        if any(n >= MAX_COUNT for n in (*size, *stride)):  # before any arithmetic: products of huge ints take seconds
            self.fail(f"a tensor of {storage.described} has {shape}; torch's sizes and strides are below 2**63")
        self.spend(len(size))
        numel = math.prod(size)
        # The offset, which may be any int, is compared before it is added to.
        if offset > storage.numel or numel and offset + sum((n - 1) * k for n, k in zip(size, stride)) >= storage.numel:
            end = f"the end of {storage.described}, of {storage.numel} elements"
            self.fail(f"a tensor of offset {_shown(offset)}, {shape} reads past {end}")
        self.tensor_bytes += numel * (4 if storage.type.bfloat16 else storage.type.dtype.itemsize)
        if self.tensor_bytes > self.max_bytes:
            self.fail(f"holds tensors of more than the {self.max_bytes} bytes this reader accepts")
        return _TensorRef(storage, offset, tuple(size), tuple(stride))


def _dispatch():
    """The opcode table of ``_Unpickler``: Python's, with calls, BUILD and SETITEM(S) narrowed and the rest refused."""
    import pickletools

    def refuse(name):
        return lambda self: self.fail(
            f"its pickle uses the opcode {name}, which this reader refuses; nothing of the file was run"
        )

    table = {code: refuse(f"0x{code:02x} (unknown)") for code in range(256)}
    for opcode in pickletools.opcodes:
        code = opcode.code.encode("latin-1")[0]
        if opcode.name in _REFUSED_OPCODES:
            table[code] = refuse(opcode.name)
        elif opcode.name in ("REDUCE", "BUILD", "SETITEM", "SETITEMS"):
            table[code] = getattr(_Unpickler, f"load_{opcode.name.lower()}")
        else:
            table[code] = pickle._Unpickler.dispatch[code]
    return table


_Unpickler.dispatch = _dispatch()

# Errors Python's unpickler raises on damaged pickles (a WeightsFileError, itself a ValueError, passes).
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, LookupError, AttributeError, struct.error)
_PICKLE_ERRORS += (OverflowError,)


def _unpickle(unpickler, what):
    """``unpickler.load()``, its errors on a damaged pickle as one line naming ``what`` (the pickle)."""
    try:
        return unpickler.load()
    except WeightsFileError:
        raise
    except _PICKLE_ERRORS as error:
        detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        if isinstance(error, EOFError):  # Python's unpickler raises it bare where the bytes run out
            detail = "it ends before its STOP opcode"
        unpickler.fail(f"{what} cannot be unpickled ({detail}); the file is truncated or damaged")


def _materialize(value, path, done, depth=0):
    """``value`` with every ``_TensorRef`` in its dicts, lists and tuples replaced by its array.

    ``done`` (id -> (original, result)) copies once what the pickle names many times (BINGET). Raises
    ``WeightsFileError`` for nesting past ``MAX_NESTING``, a non-data object, or a tensor NumPy cannot build.
    """
    if value is None or type(value) in (str, bytes, int, float, bool):
        return value
    if id(value) in done:
        return done[id(value)][1]
    if depth > MAX_NESTING:
        _fail(path, f"nests its objects more than {MAX_NESTING} deep; not a state dict")
    if isinstance(value, _TensorRef):
        try:
            result = value.array()
        except (ValueError, OverflowError, MemoryError) as error:
            # Sizes or strides NumPy cannot express (an empty tensor of 2**310 elements, a stride of 2**62):
            # no file torch writes for a network has them.
            _fail(path, f"describes a tensor NumPy cannot build ({' '.join(str(error).split())[:80]})")
    elif type(value) in (dict, collections.OrderedDict, list):
        result = type(value)()
        done[id(value)] = (value, result)  # the original is kept, so that its id is not reused
        if type(value) is list:
            result.extend(_materialize(item, path, done, depth + 1) for item in value)
        else:
            result.update((key, _materialize(item, path, done, depth + 1)) for key, item in value.items())
    elif type(value) is tuple:
        result = tuple(_materialize(item, path, done, depth + 1) for item in value)
    else:
        _fail(path, f"holds {_what(value)} where data belongs; not a state dict")
    done[id(value)] = (value, result)
    return result


def torch_file_kind(handle):
    """ "zip", "legacy" or "safetensors" for the open binary file ``handle``, from its first bytes; None else:
    the pickled magic number after PROTO (and FRAME), ``PK\\x03\\x04`` or an empty zip's end record, or an
    8-byte header length and ``{``."""
    handle.seek(0)
    head = handle.read(32)
    handle.seek(0)
    if head.startswith((ZIP_SIGNATURE, b"PK\x05\x06")):
        return "zip"
    if head[:1] == b"\x80" and b"\x8a\x0a" + LEGACY_MAGIC_BYTES in head:
        return "legacy"
    return "safetensors" if head[8:9] == b"{" else None


def read_torch_file(path, *, max_bytes, max_pickle_bytes=MAX_PICKLE_BYTES, missing_hint=None):
    """The object a torch.save file (zip or legacy format) holds, its tensors as NumPy arrays; torch is never imported.

    Args:
        path: the file.
        max_bytes: most bytes its storages may declare, and its tensors hold, each together.
        max_pickle_bytes: most bytes its pickles may take together.
        missing_hint: what to add to "file not found".

    Returns:
        Dicts (``collections.OrderedDict`` as saved), lists, tuples, numbers, strings, and tensors as
        C-ordered arrays (bfloat16 widened to float32).

    Raises:
        WeightsFileError: one line naming the file: not a regular file, neither format, truncated or damaged,
            a pickle outside the allow-list (nothing of it is run), or beyond a bound (see the module docstring).
    """
    path = weights_path(path)
    with open_regular_file(path, missing_hint=missing_hint) as file:
        kind = torch_file_kind(file)
        if kind not in ("zip", "legacy"):
            _fail(path, "is not a torch.save file (neither a zip archive nor the legacy format)")
        return read_open_torch_file(file, path, kind, max_bytes=max_bytes, max_pickle_bytes=max_pickle_bytes)


def read_open_torch_file(file, path, kind, *, max_bytes, max_pickle_bytes=MAX_PICKLE_BYTES):
    """``read_torch_file`` on the open regular ``file`` of ``path``, of ``kind`` "zip" or "legacy"."""
    try:
        size = os.fstat(file.fileno()).st_size
        root = (_read_zip if kind == "zip" else _read_legacy)(file, path, size, max_bytes, max_pickle_bytes)
    except OSError as error:
        _fail(path, f"cannot be read: {error.strerror or error}")
    return _materialize(root, path, {})


def _read_legacy(file, path, size, max_bytes, max_pickle_bytes):
    """The legacy format's object, its tensors ``_TensorRef`` of storages whose bytes are read.

    Raises:
        WeightsFileError: a wrong header pickle, a refused pickle, storage keys unlike the pickle's, or
            storages cut short, of a wrong count, or followed by more.
    """
    data = file.read(max_pickle_bytes)  # the pickles lie in the file's first max_pickle_bytes bytes
    head = io.BytesIO(data)

    def unpickle(what, storages):
        try:
            return _unpickle(_Unpickler(head, path, max_bytes, storages), what)
        except WeightsFileError:
            if len(data) == max_pickle_bytes < size and head.tell() == len(data):  # it ran into the cut
                _fail(path, f"its pickles take more than the {max_pickle_bytes} bytes this reader accepts")
            raise

    magic, version, info = (
        unpickle(what, {}) for what in ("its magic number", "its version", "its system information")
    )
    if type(magic) is not int or magic != LEGACY_MAGIC_NUMBER:
        _fail(path, "does not start with torch.save's magic number; not a torch.save file")
    if type(version) is not int or version != LEGACY_PROTOCOL_VERSION:
        _fail(path, f"is torch.save's legacy format of version {_shown(version)}; expected {LEGACY_PROTOCOL_VERSION}")
    if not isinstance(info, dict) or type(info.get("little_endian", True)) is not bool:
        _fail(path, f"has system information {_shown(info)}; expected a dict; the file is damaged")
    storages = {}
    root = unpickle("its pickle", storages)
    keys = unpickle("its list of storage keys", {})
    if type(keys) is not list or any(type(key) is not str for key in keys) or len(set(keys)) != len(keys):
        _fail(path, f"lists its storages as {_shown(keys)}; expected distinct keys; the file is damaged")
    if set(keys) != set(storages):
        odd = sorted(set(keys) ^ set(storages))[0]
        where = "its list of storages but not in its pickle" if odd in keys else "its pickle but has no data"
        _fail(path, f"storage {_shown(odd)} is in {where}; the file is damaged")
    order, at = "<" if info.get("little_endian", True) else ">", head.tell()
    for key in keys:
        storage = storages[key]
        count = _read_at(file, at, 8)
        if len(count) < 8:
            _fail(path, f"ends before {storage.described} ({size - at} bytes left); the file is truncated")
        (count,) = struct.unpack(order + "q", count)
        if count != storage.numel:
            _fail(path, f"{storage.described} holds {_shown(count)} elements; its pickle declares {storage.numel}")
        if at + 8 + storage.nbytes > size:
            _fail(path, f"ends inside {storage.described}, {size - at - 8} of its {storage.nbytes} bytes there")
        storage.array = np.frombuffer(file.read(storage.nbytes), storage.type.dtype.newbyteorder(order))
        at += 8 + storage.nbytes
    if size > at:
        _fail(path, f"holds {size - at} bytes after its last storage; the file is damaged")
    return root


def _read_at(file, offset, count):
    file.seek(offset)
    return file.read(count)


# The zip format: Python's zipfile reads the directory, this module the members -------------------

_LOCAL = struct.Struct("<4s5H3I2H")  # a member's local header, 30 bytes
_CENTRAL = struct.Struct("<4s6H3I5H2I")  # its directory entry, 46 bytes
_END = struct.Struct("<4s4H2IH")  # the end record, 22 bytes
_END64 = struct.Struct("<4sQ2H2I4Q")  # zip64's end record, 56 bytes
_LOCATOR64 = struct.Struct("<4sIQI")  # and its locator, 20 bytes
_DESCRIPTORS = (struct.Struct("<III"), struct.Struct("<IQQ"))  # CRC and sizes after a member's data, or zip64's


def _zip_members(file, path, size):
    """The archive's members (``zipfile.ZipInfo``) by name, in directory order; the end record is read first
    and bounds the directory zipfile reads. ``WeightsFileError`` for a missing end record, several disks, a
    directory past the bounds, misplaced or damaged, or members named twice, encrypted, compressed other than
    by deflate, or of odd sizes."""
    try:
        end = zipfile._EndRecData(file)  # what ZipFile reads first: [signature, disk, first disk, ..., location]
        if end is None or end[-1] + _END.size + len(end[-2]) != size:
            _fail(path, "is a zip archive without its end record; the file is truncated or damaged")
        _, disk, first_disk, _, count, length, start, _, _, _ = end
        if disk or first_disk:
            _fail(path, "is a zip archive split over several disks, which torch.save never writes")
        if count > MAX_MEMBERS or length > MAX_DIRECTORY_BYTES:
            _fail(path, f"is a zip archive of {count} members in {length} bytes; this reader accepts {MAX_MEMBERS}")
        archive = zipfile.ZipFile(file)
    except WeightsFileError:  # a ValueError too
        raise
    except (zipfile.BadZipFile, ValueError, struct.error, EOFError, OverflowError, NotImplementedError) as error:
        _fail(path, f"is a zip archive that is damaged ({' '.join(str(error).split())[:120]})")
    if archive.start_dir != start:  # zipfile looks for a directory where it expects one, not where it is said to be
        _fail(path, "is a zip archive whose directory does not end where its end record says; the file is damaged")
    if len(archive.filelist) != count:
        _fail(
            path, f"is a zip archive whose directory is damaged: it holds {len(archive.filelist)} members, not {count}"
        )
    members = {}
    for member in archive.filelist:
        label, method = f"zip member {_shown(member.filename)}", member.compress_type
        packed, size = member.compress_size, member.file_size
        checks = (
            (member.filename in members, f"is a zip archive that holds two members named {label[11:]}; it is damaged"),
            (member.flag_bits & 0x41, f"{label} is encrypted, which torch.save never writes"),
            (method not in (0, 8), f"{label} is compressed with zip method {method}; torch.save stores it as it is"),
            (
                method == 0 and packed != size,
                f"{label} is stored, yet its directory gives it {packed} and {size} bytes",
            ),
            (packed > size + size // 256 + 1024, f"{label} packs {size} bytes into {packed}; the file is damaged"),
        )
        problem = next((problem for failed, problem in checks if failed), None)
        if problem:
            _fail(path, problem)
        members[member.filename] = member
    return members


def _member_bytes(file, path, member, limit):
    """The bytes of ``member`` (a ``zipfile.ZipInfo``), at most ``limit``, checked against its local header and
    CRC; ``WeightsFileError`` for more than ``limit``, a local header missing or unlike the directory, data cut
    short, a deflated member that does not inflate to its size, or a wrong CRC."""
    label = f"zip member {_shown(member.filename)}"
    if member.file_size > limit:
        _fail(path, f"{label} holds {_shown(member.file_size)} bytes; this reader accepts at most {limit} there")
    local = _read_at(file, member.header_offset, _LOCAL.size)
    if len(local) != _LOCAL.size or not local.startswith(ZIP_SIGNATURE):
        _fail(path, f"{label} has no local header where the directory says; the file is truncated or damaged")
    _, _, flags, _, _, _, crc, packed, size, name_length, extra_length = _LOCAL.unpack(local)
    data = _read_at(file, member.header_offset + _LOCAL.size + name_length + extra_length, member.compress_size)
    declared = (member.CRC, member.compress_size, member.file_size)
    if flags & 0x08:  # a data descriptor follows, its signature optional, its sizes zip64's or not
        tail = file.read(24)
        tail = tail[4:] if tail[:4] == b"PK\x07\x08" else tail
        agrees = any(len(tail) >= layout.size and layout.unpack_from(tail) == declared for layout in _DESCRIPTORS)
    else:  # zip64's local header has 0xFFFFFFFF for its sizes
        agrees = all(value in (expected, 0xFFFFFFFF) for value, expected in zip((crc, packed, size), declared))
    if len(data) != member.compress_size or not agrees:
        _fail(path, f"{label}'s sizes or CRC differ between its local header and the directory; the file is damaged")
    if member.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(data, member.file_size + 1)  # no further: a zip bomb stops there
        except zlib.error as error:
            _fail(path, f"{label} is compressed data that is corrupt ({error}); the file is damaged")
        if len(data) > member.file_size:
            _fail(path, f"{label} inflates to more than its declared {member.file_size} bytes; refused (a zip bomb?)")
        if len(data) < member.file_size or not inflater.eof:
            _fail(path, f"{label} inflates to less than its declared {member.file_size} bytes; the file is damaged")
    if zlib.crc32(data) != member.CRC:
        _fail(path, f"{label} fails its CRC check; the file is damaged")
    return data


def _read_zip(file, path, size, max_bytes, max_pickle_bytes):
    """The zip format's object, its tensors ``_TensorRef`` of storages whose bytes are read; the top folder is
    the first member's, as torch takes it. ``WeightsFileError`` as ``_zip_members`` and ``_member_bytes``, and
    for no ``data.pkl`` or version, a refused pickle, an unknown byte order, or storages missing or misfit."""
    members = _zip_members(file, path, size)
    if "/" not in next(iter(members), ""):
        _fail(path, "is a zip archive without a top folder; not a torch.save file")
    top = next(iter(members)).split("/")[0] + "/"

    def record(name, limit, required=True):
        member = members.get(top + name)
        if member is None and required:
            _fail(path, f"is a zip archive without {_shown(top + name)}; not a torch.save file")
        return None if member is None else _member_bytes(file, path, member, limit)

    version = record(".data/version", MAX_RECORD_BYTES, required=False) or record("version", MAX_RECORD_BYTES)
    if not version.strip().isdigit():
        _fail(path, f"has the version record {_shown(version)}; expected a number; the file is damaged")
    byteorder = record("byteorder", MAX_RECORD_BYTES, required=False) or b"little"
    if byteorder not in (b"little", b"big"):
        _fail(path, f"has the byte order {_shown(byteorder)}; expected 'little' or 'big'")
    storages = {}
    pickled = io.BytesIO(record("data.pkl", max_pickle_bytes))
    root = _unpickle(_Unpickler(pickled, path, max_bytes, storages), "its pickle (data.pkl)")
    for key, storage in storages.items():
        member = members.get(f"{top}data/{key}")
        if member is None:
            _fail(path, f"has no data for {storage.described} ({_shown(top + 'data/' + key)}); the file is damaged")
        if member.file_size != storage.nbytes:
            _fail(
                path,
                f"{storage.described} holds {_shown(member.file_size)} bytes; its pickle declares {storage.nbytes}",
            )
        data = _member_bytes(file, path, member, storage.nbytes)
        storage.array = np.frombuffer(data, storage.type.dtype.newbyteorder("<" if byteorder == b"little" else ">"))
    return root


# safetensors ---------------------------------------------------------------------------------


def _safetensors_numpy():
    """``safetensors.numpy``, imported on first use; ``WeightsFileError`` with the pip command where it is missing."""
    try:
        import safetensors.numpy
    except ImportError:
        raise WeightsFileError(SAFETENSORS_HINT) from None
    return safetensors.numpy


def read_safetensors(path, *, max_bytes, missing_hint=None):
    """The tensors of a .safetensors file, name -> NumPy array; ``max_bytes``: most bytes of tensors;
    ``missing_hint``: what to add to "file not found".

    Raises:
        WeightsFileError: one line naming the file: not a regular file, the safetensors package missing
            (with the pip command), a header longer than ``MAX_SAFETENSORS_HEADER`` or the file, more than
            ``max_bytes`` of tensors, or a file the safetensors package refuses.
    """
    path = weights_path(path)
    with open_regular_file(path, missing_hint=missing_hint) as file:
        return read_open_safetensors(file, path, max_bytes=max_bytes)


def read_open_safetensors(file, path, *, max_bytes):
    """``read_safetensors`` on the open regular ``file`` of ``path``. Only lengths are checked here; the
    safetensors package checks the header's JSON, types, shapes and offsets, in linear time and memory."""
    library = _safetensors_numpy()
    try:
        size = os.fstat(file.fileno()).st_size
        if size < 8:
            _fail(path, f"holds {size} bytes, too few for a .safetensors file")
        (length,) = struct.unpack("<Q", _read_at(file, 0, 8))
        if length > MAX_SAFETENSORS_HEADER:
            _fail(path, f"declares a header of {length} bytes; this reader accepts at most {MAX_SAFETENSORS_HEADER}")
        if 8 + length > size:
            _fail(path, f"declares a header of {length} bytes, longer than the file; the file is truncated")
        if size - 8 - length > max_bytes:
            _fail(path, f"holds {size - 8 - length} bytes of tensors, more than the {max_bytes} this reader accepts")
        data = _read_at(file, 0, size)
    except OSError as error:
        _fail(path, f"cannot be read: {error.strerror or error}")
    try:
        tensors = library.load(data)
    except KeyError as error:  # safetensors.numpy's lookup of a type NumPy lacks, such as BF16
        _fail(path, f"holds tensors of type {error}, which NumPy has no type for; save them as F32")
    except Exception as error:  # safetensors.SafetensorError
        _fail(path, f"is refused by safetensors ({' '.join(str(error).split())[:200]}); the file is damaged")
    return {name: np.array(value) for name, value in tensors.items()}


# Writing -------------------------------------------------------------------------------------


class _PersistentId(tuple):
    """A storage as torch.save pickles it: ``('storage', type, key, location, numel[, None])``."""


class _SavedTensor:
    """A C-contiguous array in its own storage ``key``, pickled as torch pickles a tensor."""

    def __init__(self, array, key, legacy):
        self.array, self.key, self.legacy = array, key, legacy

    def __reduce__(self):
        shape, strides, step = tuple(self.array.shape), [], 1
        for length in reversed(shape):  # torch's strides of a contiguous tensor count each length as at least 1
            strides.insert(0, step)
            step *= max(length, 1)
        storage_type = _STORAGE_GLOBALS[WRITTEN_STORAGE_TYPES[self.array.dtype.newbyteorder("<")]]
        pid = ("storage", storage_type, self.key, "cpu", self.array.size) + ((None,) if self.legacy else ())
        rebuild = _ALLOWED_GLOBALS[_REBUILD_V2]
        return rebuild, (_PersistentId(pid), 0, shape, tuple(strides), False, collections.OrderedDict())


class _Pickler(pickle._Pickler):
    """Python's pickler at protocol 2, as torch.save uses it: torch's globals by name, storages as persistent ids.

    Python's own pickler (not the C one) is subclassed, since it writes a global by ``save_global``,
    which here names torch's without importing them.
    """

    def persistent_id(self, obj):
        return tuple(obj) if type(obj) is _PersistentId else None

    def save_global(self, obj, name=None):
        if not isinstance(obj, _Global):
            return super().save_global(obj, name)
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
        self.memoize(obj)


def _pickled_state_dict(tensors, keys, legacy):
    """torch.save's pickle of an ``OrderedDict`` of ``tensors`` (name -> array), each in storage ``keys[name]``."""
    out = io.BytesIO()
    _Pickler(out, protocol=2).dump(
        collections.OrderedDict((name, _SavedTensor(array, keys[name], legacy)) for name, array in tensors.items())
    )
    return out.getvalue()


def _checked_tensors(tensors):
    """``tensors`` as name -> C-contiguous little-endian array of a type torch stores; ``NSTError`` otherwise."""
    checked = {}
    for name, value in dict(tensors).items():
        if type(name) is not str or not name:
            raise NSTError(f"write_state_dict: tensor names must be non-empty strings, not {_shown(name)}")
        array = np.asarray(value)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder != "|" else array.dtype
        if dtype not in WRITTEN_STORAGE_TYPES:
            raise NSTError(
                f"write_state_dict: tensor {_shown(name)} has type {array.dtype}; "
                f"expected one of {', '.join(sorted(str(t) for t in WRITTEN_STORAGE_TYPES))}"
            )
        checked[name] = np.asarray(array, dtype=dtype, order="C")  # ascontiguousarray would make 0-d arrays 1-d
    return checked


def _zip_bytes(records):
    """A zip archive of ``records`` (name -> bytes) as torch's writer (miniz) lays it out: members stored with
    flags 0x0808 (data descriptor, UTF-8; 0x0800 when empty), no time, data aligned to 64 bytes by an "FB" extra
    field of "Z"s; after the directory, zip64's end records and the end record."""
    out, directory = bytearray(), bytearray()
    for name, data in records.items():
        raw, offset = name.encode("utf-8"), len(out)
        padding = -(offset + _LOCAL.size + len(raw) + 4) % 64
        extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
        crc, flags = zlib.crc32(data), 0x0808 if data else 0x0800
        out += _LOCAL.pack(ZIP_SIGNATURE, 0, flags, 0, 0, 0, 0, 0, 0, len(raw), len(extra)) + raw + extra + data
        out += b"PK\x07\x08" + struct.pack("<3I", crc, len(data), len(data)) if data else b""
        entry = (0, 0, flags, 0, 0, 0, crc, len(data), len(data), len(raw), 0, 0, 0, 0, 0, offset)
        directory += _CENTRAL.pack(b"PK\x01\x02", *entry) + raw
    start, count, end64 = len(out), len(records), len(out) + len(directory)
    out += directory
    out += _END64.pack(b"PK\x06\x06", _END64.size - 12, 0x031E, 0x2D, 0, 0, count, count, len(directory), start)
    out += _LOCATOR64.pack(b"PK\x06\x07", 0, end64, 1)
    return bytes(out + _END.pack(b"PK\x05\x06", 0, 0, count, count, len(directory), start, 0))


def _serialized_zip(tensors, top, serialization_id):
    """torch.save's zip format (as PyTorch 2.13 writes it) of the state dict ``tensors``."""
    keys = {name: str(index) for index, name in enumerate(tensors)}
    pickled = _pickled_state_dict(tensors, keys, legacy=False)
    if serialization_id is None:
        # torch writes a random 40-digit number; one derived from the contents keeps the output reproducible.
        digest = hashlib.sha256(pickled)
        for array in tensors.values():
            digest.update(array.tobytes())
        serialization_id = str(int.from_bytes(digest.digest()[:16], "little")).zfill(40)
    records = {"data.pkl": pickled, ".format_version": b"1", ".storage_alignment": b"64", "byteorder": b"little"}
    records.update((f"data/{keys[name]}", array.tobytes()) for name, array in tensors.items())
    records.update({"version": b"3\n", ".data/serialization_id": serialization_id.encode("ascii")})
    return _zip_bytes({f"{top}/{name}": data for name, data in records.items()})


def _serialized_legacy(tensors):
    """torch.save's legacy format of the state dict ``tensors``: five pickles, then the storages in key order."""
    keys = {name: str(index) for index, name in enumerate(tensors)}
    info = {"protocol_version": LEGACY_PROTOCOL_VERSION, "little_endian": True}
    header = [LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {**info, "type_sizes": {"short": 2, "int": 4, "long": 4}}]
    order = sorted(keys.values())  # torch sorts its keys as strings
    by_key = {keys[name]: array for name, array in tensors.items()}
    storages = b"".join(struct.pack("<q", by_key[key].size) + by_key[key].tobytes() for key in order)
    pickles = b"".join(pickle.dumps(value, protocol=2) for value in header)
    return pickles + _pickled_state_dict(tensors, keys, legacy=True) + pickle.dumps(order, protocol=2) + storages


def write_state_dict(path, tensors, format="zip", top="archive", serialization_id=None):
    """Writes ``tensors`` as torch.save writes a state dict (an OrderedDict of tensors), without torch; returns
    ``path``. The bytes are PyTorch 2.13's for the same CPU tensors but for the legacy storage keys (torch's are
    memory addresses) and the zip serialization id.

    Args:
        path: the file to write; replaced atomically (written beside it, then renamed over it).
        tensors: name -> array (float16/32/64, int8/16/32/64, uint8 or bool), in the order to save.
        format: "zip" (torch.save's default) or "legacy" (``_use_new_zipfile_serialization=False``).
        top: the zip archive's top folder (torch names it after the file, "archive" for a buffer).
        serialization_id: the zip format's ``.data/serialization_id``, 40 digits (torch's is random; the
            default is derived from the tensors).

    Raises:
        NSTError: an unknown format, a bad top folder name or serialization id, or an array of another type.
        WeightsFileError: ``path`` is a symbolic link or a folder, or cannot be written.
    """
    if format not in ("zip", "legacy"):
        raise NSTError(f"write_state_dict: format must be 'zip' or 'legacy', not {_shown(format)}")
    if type(top) is not str or not top or not top.isprintable() or any(c in top for c in "/\\") or top in (".", ".."):
        raise NSTError(f"write_state_dict: top must be a plain folder name, not {_shown(top)}")
    if serialization_id is not None and (type(serialization_id) is not str or not serialization_id.isdigit()):
        raise NSTError(f"write_state_dict: serialization_id must be a string of digits, not {_shown(serialization_id)}")
    tensors = _checked_tensors(tensors)
    data = _serialized_zip(tensors, top, serialization_id) if format == "zip" else _serialized_legacy(tensors)
    return write_atomically(path, data)


def write_safetensors(path, tensors):
    """Writes ``tensors`` (name -> array) as a .safetensors file, atomically; ``WeightsFileError`` where the
    safetensors package is missing (with the pip command) or ``path`` cannot be written."""
    library = _safetensors_numpy()
    arrays = {name: np.asarray(value, order="C") for name, value in dict(tensors).items()}
    return write_atomically(path, library.save(arrays))


def write_atomically(path, data):
    """Writes ``data`` to a new file beside ``path``, then renames it over ``path`` (never half a file); returns
    ``path``. A symbolic link is refused (the rename would replace the link, not its target); the temporary file
    is created exclusively under an unpredictable name. ``WeightsFileError``: a link, a folder, or a failed write.
    """
    path = weights_path(path)
    if os.path.islink(path):
        _fail(path, "is a symbolic link; weights are not written through links")
    if os.path.isdir(path):
        _fail(path, "is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    temporary = os.path.join(folder, f".nst_tf-{secrets.token_hex(8)}.tmp")
    try:
        handle = os.open(temporary, flags, 0o666)
    except OSError as error:
        _fail(path, f"cannot be written: {error.strerror or error}")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.remove(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            _fail(path, f"cannot be written: {error.strerror or error}")
        raise
    return path

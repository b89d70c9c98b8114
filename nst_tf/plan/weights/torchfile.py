"""torch.save files read and written without torch, and .safetensors files read through the safetensors package.

torch.save writes one of two formats:

* the zip format (PyTorch 1.6 and later): a zip archive whose members lie in
  one top folder, ``<top>/data.pkl`` (the pickle), ``<top>/data/<key>`` (each
  storage's raw bytes, little-endian unless ``<top>/byteorder`` says "big"),
  ``<top>/version`` and a few small records. torch writes every member
  stored (not compressed), its data aligned to 64 bytes, sizes in a data
  descriptor after the data;
* the legacy format (``_use_new_zipfile_serialization=False``, and every
  file before PyTorch 1.6): five pickles one after the other (the magic
  number 0x1950A86A20F9469CFC6C, the protocol version 1001, a dict of system
  information, the object, the sorted list of storage keys), then each
  storage in that order as an 8-byte element count and its bytes.

In both, a tensor is pickled as a call of
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, backward_hooks)`` (``_rebuild_tensor(storage, offset, size,
stride)`` before PyTorch 0.4), and a storage as the persistent id
``('storage', torch.FloatStorage, key, location, numel)`` (the legacy format
adds a sixth element, a view's description, None unless the storage is a
view).

A pickle can call any function, so these files are unpickled only through
``_Unpickler``, which builds what torch.save builds for a state dict and
refuses anything else before it runs: globals of an allow-list
(``collections.OrderedDict``, the two rebuild functions and the storage
types, never imported or called); no opcode that makes other objects (INST,
OBJ, NEWOBJ, sets, buffers, protocol 0's DICT); storages as persistent ids;
``OrderedDict`` called as pickle calls it (with nothing, or from Python 2
with a list of pairs); dict keys that are str, or ints from 0 below 2**31
(an optimizer's parameter ids): no key is a tuple, whose hash recurses as
deep as it nests (through the C stack), and no two keys can be made to hash
alike. Tensors come back as NumPy arrays, copied out of their storages.

Bounds, each refused in one ``WeightsFileError`` line naming the file (the
tests craft each): ``max_bytes`` (the real network's size and a little
slack) is checked against every declared storage and every tensor before
anything is read or allocated; the pickles may take ``max_pickle_bytes``,
each opcode makes at most one object (at most about 80 bytes of them per
byte), and calls and the entries they copy are at most the pickle's length;
a tensor's sizes and strides are below 2**63 and its offset inside its
storage, checked before any arithmetic; what the pickle built is walked to
``MAX_NESTING`` deep, no deeper; a zip's directory, names and members are
checked against each other and the file's length before reading, members
inflated no further than their declared size. What a read holds is thus
bounded by ``max_bytes`` (twice, while tensors are copied out of their
storages) and the pickle's objects, and its time by the file's length,
whatever the file declares. Messages show values two levels deep, a few
items each, texts cut to 60 characters.

``.safetensors`` files (an 8-byte little-endian header length, a JSON
header, then the tensors' bytes) are checked here, header and all, before
the ``safetensors`` package (an optional dependency) reads them: each
field's type before its value, names twice found in one pass, shapes of
counts below 2**63.
"""

import collections
import hashlib
import io
import json
import math
import os
import pickle
import secrets
import struct
import zlib

import numpy as np

from ...ground.errors import NSTError, WeightsFileError, quoted
from .matfile import open_regular_file, weights_path

#: The legacy format's first pickle, its second, and their start as torch writes them (protocol 2).
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
LEGACY_MAGIC_BYTES = LEGACY_MAGIC_NUMBER.to_bytes(10, "little")

ZIP_SIGNATURE = b"PK\x03\x04"
_ZIP_EMPTY = b"PK\x05\x06"  # an archive without members: its end record comes first

#: Most bytes the pickles of one file may take together; a state dict takes about 100 per tensor. A
#: pickle builds at most about 80 bytes of objects per byte (an empty dict and its stack slot per opcode;
#: measured, 79 MB for a pickle of 1 MiB of them).
MAX_PICKLE_BYTES = 1 << 20

#: Most members a zip archive may list; torch writes one per storage and six records.
MAX_MEMBERS = 4096

#: Most bytes a zip's central directory may take (about 80 per member in torch's archives).
MAX_DIRECTORY_BYTES = 1 << 20

#: Most bytes of the small records (version, byteorder) read.
MAX_RECORD_BYTES = 64

#: Most dimensions a tensor may have (NumPy's limit is 64).
MAX_DIMS = 32

#: Deepest nesting of lists, tuples and dicts accepted around the tensors (a state dict is 1, wrapped 2).
MAX_NESTING = 16

#: Integer dict keys lie below this (an optimizer's state counts its parameters): such ints are their own hash.
MAX_INT_KEY = 1 << 31

#: Sizes and strides lie below this, torch's int64 (and NumPy's intp); checked before any arithmetic on them.
MAX_COUNT = 1 << 63

#: Most bytes a .safetensors header may take; one for SqueezeNet's 52 tensors takes about 5 KB.
MAX_SAFETENSORS_HEADER = 1 << 20

#: torch's storage types -> NumPy's little-endian types. BFloat16 has no NumPy type: its 16 bits are
#: the upper half of a float32's, so its storages are read as uint16 and widened to float32.
STORAGE_TYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}

#: NumPy's types -> the storage types torch.save writes for them.
WRITTEN_STORAGE_TYPES = {
    np.dtype(numpy_type).newbyteorder("<"): name
    for name, numpy_type in STORAGE_TYPES.items()
    if name != "BFloat16Storage"
}

#: safetensors' type names -> NumPy types, those its NumPy API reads.
SAFETENSORS_TYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "U64": "<u8",
    "I32": "<i4",
    "U32": "<u4",
    "I16": "<i2",
    "U16": "<u2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}

SAFETENSORS_HINT = "reading and writing .safetensors files needs the safetensors package: pip install safetensors"

_REBUILD_V2 = ("torch._utils", "_rebuild_tensor_v2")
_REBUILD = ("torch._utils", "_rebuild_tensor")


def _fail(path, problem):
    """Raises ``WeightsFileError``: ``path`` (shown safely) and ``problem``, one line."""
    raise WeightsFileError(f"{quoted(path)}: {problem}")


def _shown(value, limit=60, depth=0):
    """``value`` for a message, one short line: long texts cut, huge integers summarized, objects named.

    Args:
        value: anything a pickle can hold, nested however deep.
        limit: most characters of a text shown.
        depth: how deep ``value`` lies in what is shown; sequences below depth 2 are shown as "(...)".

    Returns:
        A str without line breaks or raw control characters, of at most about 600 characters.
    """
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        # int -> str takes time quadratic in the digits, and is refused past 4300 of them.
        return repr(value) if value.bit_length() <= 128 else f"2**{value.bit_length() - 1} or more"
    if isinstance(value, (str, bytes)):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    if type(value) in (tuple, list):
        if depth < 2:
            inner = ", ".join(_shown(item, 20, depth + 1) for item in value[:8]) + (", ..." if len(value) > 8 else "")
        else:
            inner = "..." if value else ""
        inner = inner if len(inner) <= 120 else inner[:117] + "..."
        return f"({inner}{',' if len(value) == 1 and depth < 2 else ''})" if type(value) is tuple else f"[{inner}]"
    return _what(value)


def _what(value):
    """What ``value`` is, in words: "a storage", "a tensor", "torch.FloatStorage", "a dict"."""
    if isinstance(value, (_Storage, _TensorRef, _StorageType, _Function)):
        return value.described
    if value is collections.OrderedDict:
        return "collections.OrderedDict"
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiouAEIOU" else f"a {name}"


class _StorageType:
    """A torch storage type named by the pickle (``torch.FloatStorage``); never imported, never called."""

    __slots__ = ("described", "dtype", "bfloat16", "out_itemsize")

    def __init__(self, name):
        self.described, self.dtype, self.bfloat16 = f"torch.{name}", np.dtype(STORAGE_TYPES[name]), "BFloat16" in name
        # Bytes per element of the arrays made from this storage: bfloat16 is widened to float32.
        self.out_itemsize = 4 if self.bfloat16 else self.dtype.itemsize


class _Function:
    """A torch function named by the pickle (``torch._utils._rebuild_tensor_v2``); this reader does its work."""

    __slots__ = ("arguments", "described")

    def __init__(self, module, name, arguments):
        self.arguments, self.described = arguments, f"{module}.{name}"


class _Storage:
    """A storage the pickle declares: key, type and element count; its bytes are read after the pickle."""

    __slots__ = ("described", "type", "numel", "nbytes", "array")

    def __init__(self, key, storage_type, numel):
        self.described, self.type, self.numel, self.array = f"storage {_shown(key)}", storage_type, numel, None
        self.nbytes = numel * storage_type.dtype.itemsize


class _TensorRef:
    """A tensor the pickle rebuilds: its storage, offset, size and stride, checked to lie inside the storage."""

    __slots__ = ("storage", "offset", "size", "stride")

    described = "a tensor"

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self):
        """The tensor as a new C-ordered NumPy array (float32 for bfloat16), once its storage is read."""
        source = self.storage.array
        native = source.dtype.newbyteorder("=")
        if 0 in self.size:
            values = np.zeros(self.size, native)
        else:
            # ``rebuild`` checked that the last element read lies inside the storage.
            steps = [step * source.dtype.itemsize for step in self.stride]
            view = np.lib.stride_tricks.as_strided(source[self.offset :], shape=self.size, strides=steps)
            values = np.empty(self.size, native)  # native order, C-contiguous
            values[...] = view
        if self.storage.type.bfloat16:
            values = (values.astype(np.uint32) << 16).view(np.float32)
        return values


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    _REBUILD_V2: _Function(*_REBUILD_V2, arguments=(6, 7)),  # (storage, offset, size, stride, grad, hooks[, meta])
    _REBUILD: _Function(*_REBUILD, arguments=(4,)),  # (storage, offset, size, stride), before PyTorch 0.4
    **{("torch", name): _StorageType(name) for name in STORAGE_TYPES},
}

# Opcodes that build objects of any class, or reach outside the pickle: INST, OBJ, NEWOBJ, NEWOBJ_EX,
# the extension registry (EXT1, EXT2, EXT4), out-of-band buffers; sets, which torch does not write; and
# protocol 0's DICT, which torch cannot write (protocol 0 has no tuples as persistent ids).
_REFUSED_OPCODES = {
    *("INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "NEXT_BUFFER", "READONLY_BUFFER"),
    *("BYTEARRAY8", "EMPTY_SET", "ADDITEMS", "FROZENSET", "DICT"),
}


def _is_key(key):
    """Whether ``key`` is a dict key torch's files hold: a str, or an int from 0 below ``MAX_INT_KEY``."""
    return type(key) is str or (type(key) is int and 0 <= key < MAX_INT_KEY)


class _Unpickler(pickle._Unpickler):
    """Unpickles a torch.save pickle through allow-lists; see the module docstring.

    Python's own unpickler (``pickle._Unpickler``) is subclassed rather than
    the C one (``pickle.Unpickler``): its memo is a dict, where the C one
    allocates an array twice as long as the largest memo index (LONG_BINPUT
    0xFFFFFFFF would take 64 GB), and its opcodes are dispatched through
    a table that can be narrowed. Its stack and memo grow with the pickle's
    length only, which the caller bounds; each opcode makes at most one
    object, and calls spend ``budget``, so its work grows with it too.
    """

    dispatch = {}

    def __init__(self, file, path, max_bytes, budget, storages=None):
        """An unpickler for one pickle of ``path``.

        Args:
            file: the pickle's bytes, a binary file object (bounded by the caller).
            path: the file's name, for messages.
            max_bytes: most bytes its storages, and its tensors, may declare together.
            budget: most calls, and entries they copy, together: the pickle's length in bytes
                (torch's pickles spend one per 15 bytes or fewer).
            storages: key -> ``_Storage`` declared so far, shared between the pickles of one file,
                or None where the pickle may hold no storages (the legacy format's small pickles).
        """
        super().__init__(file, encoding="utf-8")
        self.path, self.max_bytes, self.budget = path, max_bytes, budget
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
        if self.storages is None:
            self.fail("holds a storage where none belongs (the legacy format's header); the file is damaged")
        if type(pid) is not tuple or len(pid) not in (5, 6) or pid[0] != "storage":
            self.fail(f"its pickle holds the persistent id {_shown(pid)}; expected ('storage', type, key, ...)")
        storage_type, key, location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            self.fail(f"its pickle declares a storage of type {_shown(storage_type)}; expected a torch storage type")
        if type(key) is not str or type(location) is not str or type(numel) is not int or not 0 <= numel < MAX_COUNT:
            self.fail(f"its pickle declares a storage as {_shown(pid)}; expected a key, a location and a count")
        if len(pid) == 6 and pid[5] is not None:
            self.fail(f"storage {_shown(key)} is a view of another storage, which this reader does not read")
        known = self.storages.get(key)
        if known is not None:
            if known.type is not storage_type or known.numel != numel:
                self.fail(f"storage {_shown(key)} is declared twice, differently; the file is damaged")
            return known
        storage = _Storage(key, storage_type, numel)
        self.storage_bytes += storage.nbytes
        if self.storage_bytes > self.max_bytes:
            self.fail(
                f"declares storages of {_shown(self.storage_bytes)} bytes (checked before reading any), "
                f"more than the {self.max_bytes} this reader accepts"
            )
        self.storages[key] = storage
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
        elif isinstance(function, _Function):
            self.stack[-1] = self.rebuild(function, args)
        else:
            self.fail(
                f"its pickle calls {_what(function)}; only collections.OrderedDict and torch's tensor rebuilding "
                "are allowed, and nothing of the file was run"
            )

    def load_build(self):
        """BUILD: only a state dict's ``_metadata`` (its modules' versions), which is not needed and dropped."""
        state = self.stack.pop()
        target = self.stack[-1]
        if type(target) is not collections.OrderedDict or type(state) is not dict:
            self.fail(f"its pickle sets the state of {_what(target)} to {_what(state)}, which this reader refuses")

    def load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self.set_items(self.stack[-1], (key, value))

    def load_setitems(self):
        items = self.pop_mark()
        self.set_items(self.stack[-1], items)

    def set_items(self, target, items):
        """SETITEM(S): ``target[key] = value`` for the pairs in ``items`` (key, value, key, ...); returns ``target``.

        Each key is checked before it is hashed: a tuple's hash recurses as deep as the tuple, and ints
        of one residue modulo 2**61 - 1 share a hash (each insertion then probes all the others).
        """
        for key in items[::2]:
            if not _is_key(key):
                shown = f"the number {_shown(key)}" if type(key) is int else _what(key)
                self.fail(f"uses {shown} as a dict key; not a state dict")
        target.update(zip(items[::2], items[1::2]))  # of a dict; anything else has no update, or refuses it
        return target

    def rebuild(self, function, args):
        """``_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`` or
        ``_rebuild_tensor(storage, offset, size, stride)``, checked against the storage and the byte ceiling.

        Returns:
            A ``_TensorRef``.
        """
        if len(args) not in function.arguments:
            self.fail(f"its pickle calls {function.described} with {len(args)} arguments; the file is damaged")
        storage, offset, size, stride = args[:4]
        if len(args) > 5 and args[5] is not None and (not isinstance(args[5], dict) or args[5]):
            self.fail("its pickle gives a tensor backward hooks, which this reader refuses")
        if not isinstance(storage, _Storage):
            self.fail(f"its pickle rebuilds a tensor from {_what(storage)}, not from a storage")
        if type(size) not in (tuple, list) or type(stride) not in (tuple, list) or len(size) != len(stride):
            self.fail(f"a tensor of {storage.described} has size {_shown(size)} and stride {_shown(stride)}")
        numbers = (offset, *size, *stride)
        if len(size) > MAX_DIMS or any(type(n) is not int or n < 0 for n in numbers):
            self.fail(
                f"a tensor of {storage.described} has offset {_shown(offset)}, size {_shown(size)}, "
                f"stride {_shown(stride)}; expected at most {MAX_DIMS} counts of 0 or more"
            )
        if any(n >= MAX_COUNT for n in numbers[1:]):  # before any arithmetic: a product of huge ints takes seconds
            self.fail(
                f"a tensor of {storage.described} has size {_shown(size)}, stride {_shown(stride)}; "
                "torch's sizes and strides are below 2**63"
            )
        self.spend(len(size))
        numel = math.prod(size)
        # The offset, which may be any int, is compared before it is added to.
        if offset > storage.numel or numel and offset + sum((n - 1) * k for n, k in zip(size, stride)) >= storage.numel:
            self.fail(
                f"a tensor of offset {_shown(offset)}, size {_shown(size)}, stride {_shown(stride)} reads past the "
                f"end of {storage.described}, of {storage.numel} elements"
            )
        self.tensor_bytes += numel * storage.type.out_itemsize
        if self.tensor_bytes > self.max_bytes:
            self.fail(f"holds tensors of more than the {self.max_bytes} bytes this reader accepts")
        return _TensorRef(storage, offset, tuple(size), tuple(stride))


def _refuse_opcode(name):
    def refuse(self):
        self.fail(f"its pickle uses the opcode {name}, which this reader refuses; nothing of the file was run")

    return refuse


def _dispatch():
    """The opcode table of ``_Unpickler``: Python's, with calls, BUILD and SETITEM(S) narrowed and the rest refused."""
    import pickletools

    table = {}
    for opcode in pickletools.opcodes:
        code = opcode.code.encode("latin-1")[0]
        if opcode.name in _REFUSED_OPCODES:
            table[code] = _refuse_opcode(opcode.name)
        elif opcode.name in ("REDUCE", "BUILD", "SETITEM", "SETITEMS"):
            table[code] = getattr(_Unpickler, f"load_{opcode.name.lower()}")
        else:
            table[code] = pickle._Unpickler.dispatch[code]
    for code in range(256):
        table.setdefault(code, _refuse_opcode(f"0x{code:02x} (unknown)"))
    return table


_Unpickler.dispatch = _dispatch()

# Errors Python's unpickler raises on damaged pickles (a WeightsFileError, itself a ValueError, passes).
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, LookupError, AttributeError)
_PICKLE_ERRORS += (struct.error, OverflowError)


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
    """``value`` with every ``_TensorRef`` in it (in dicts, lists, tuples) replaced by its array.

    Args:
        value: what the pickle built.
        path: the file's name, for messages.
        done: id -> result of the tensors and containers met so far: a tensor
            or list the pickle names many times (BINGET) is copied once.
        depth: how deep ``value`` lies.

    Raises:
        WeightsFileError: nesting deeper than ``MAX_NESTING`` (so the walk
            recurses no deeper), or a storage, storage type or function
            where data belongs.
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
    elif type(value) in (dict, collections.OrderedDict):
        result = type(value)()
        done[id(value)] = (value, result)  # the original is kept, so that its id is not reused
        result.update((key, _materialize(item, path, done, depth + 1)) for key, item in value.items())
    elif type(value) is list:
        result = []
        done[id(value)] = (value, result)
        result.extend(_materialize(item, path, done, depth + 1) for item in value)
    elif type(value) is tuple:
        result = tuple(_materialize(item, path, done, depth + 1) for item in value)
    else:
        _fail(path, f"holds {_what(value)} where data belongs; not a state dict")
    done[id(value)] = (value, result)
    return result


def torch_file_kind(handle):
    """ "zip", "legacy" or "safetensors" for the open binary file ``handle``, from its first bytes; None else.

    The legacy format opens with the pickled magic number (after the
    pickle's PROTO opcode, and a FRAME from protocol 4 on); a zip archive
    with ``PK\\x03\\x04`` (or, empty, its end record); a .safetensors file
    with an 8-byte header length and the header's ``{``.
    """
    handle.seek(0)
    head = handle.read(32)
    handle.seek(0)
    if head.startswith((ZIP_SIGNATURE, _ZIP_EMPTY)):
        return "zip"
    if head[:1] == b"\x80" and b"\x8a\x0a" + LEGACY_MAGIC_BYTES in head:
        return "legacy"
    if head[8:9] == b"{":
        return "safetensors"
    return None


def read_torch_file(path, *, max_bytes, max_pickle_bytes=MAX_PICKLE_BYTES, missing_hint=None):
    """The object a torch.save file holds, its tensors as NumPy arrays; torch is never imported.

    Args:
        path: a torch.save file, zip or legacy format.
        max_bytes: most bytes its storages may declare, and its tensors hold, each together.
        max_pickle_bytes: most bytes its pickles may take together.
        missing_hint: what to add to "file not found".

    Returns:
        The object: dicts (``collections.OrderedDict`` as saved), lists,
        tuples, numbers, strings, and tensors as C-ordered arrays (bfloat16
        widened to float32).

    Raises:
        WeightsFileError: one line naming the file: not a regular file,
            neither format, truncated or damaged, a pickle that names
            anything outside the allow-list or builds what torch.save does
            not (nothing of it is run; see the module's docstring), storages
            or tensors beyond ``max_bytes``, or pickles beyond
            ``max_pickle_bytes``.
    """
    path = weights_path(path)
    with open_regular_file(path, missing_hint=missing_hint) as file:
        kind = torch_file_kind(file)
        if kind not in ("zip", "legacy"):
            _fail(path, "is not a torch.save file (neither a zip archive nor the legacy format)")
        return read_open_torch_file(file, path, kind, max_bytes=max_bytes, max_pickle_bytes=max_pickle_bytes)


def read_open_torch_file(file, path, kind, *, max_bytes, max_pickle_bytes=MAX_PICKLE_BYTES):
    """``read_torch_file`` on the open regular file ``file`` of ``path``, of the given ``kind`` ("zip" or "legacy").

    Raises:
        WeightsFileError: see ``read_torch_file``; a failed read too.
    """
    read = _read_zip if kind == "zip" else _read_legacy
    try:
        size = os.fstat(file.fileno()).st_size
        root = read(file, path, size, max_bytes, max_pickle_bytes)
    except OSError as error:
        _fail(path, f"cannot be read: {error.strerror or error}")
    return _materialize(root, path, {})


# The legacy format ---------------------------------------------------------------------------


def _read_legacy(file, path, size, max_bytes, max_pickle_bytes):
    """The legacy format's object, its tensors still ``_TensorRef`` of storages whose bytes are read.

    Raises:
        WeightsFileError: a wrong magic number, protocol or system information,
            a refused pickle, storage keys that do not match the pickle's, or
            storages cut short, of a wrong count, or followed by other bytes.
    """
    data = file.read(max_pickle_bytes)  # the pickles lie in the file's first max_pickle_bytes bytes
    head = io.BytesIO(data)

    def unpickle(what, storages=None):
        try:
            return _unpickle(_Unpickler(head, path, max_bytes, len(data), storages), what)
        except WeightsFileError:
            if len(data) == max_pickle_bytes < size and head.tell() == len(data):  # it ran into the cut
                _fail(path, f"its pickles take more than the {max_pickle_bytes} bytes this reader accepts")
            raise

    header = [unpickle(what) for what in ("its magic number", "its version")]
    if type(header[0]) is not int or header[0] != LEGACY_MAGIC_NUMBER:
        _fail(path, "does not start with torch.save's magic number; not a torch.save file")
    if type(header[1]) is not int or header[1] != LEGACY_PROTOCOL_VERSION:
        _fail(path, f"is torch.save's legacy format of version {_shown(header[1])}; expected {LEGACY_PROTOCOL_VERSION}")
    info = unpickle("its system information")
    if not isinstance(info, dict) or type(info.get("little_endian", True)) is not bool:
        _fail(path, f"has system information {_shown(info)}; expected a dict; the file is damaged")
    storages = {}
    root = unpickle("its pickle", storages)
    keys = unpickle("its list of storage keys")
    file.seek(head.tell())
    if type(keys) is not list or any(type(key) is not str for key in keys) or len(set(keys)) != len(keys):
        _fail(path, f"lists its storages as {_shown(keys)}; expected distinct keys; the file is damaged")
    if set(keys) != set(storages):
        odd = sorted(set(keys) ^ set(storages))[0]
        where = "its list of storages but not in its pickle" if odd in keys else "its pickle but has no data"
        _fail(path, f"storage {_shown(odd)} is in {where}; the file is damaged")
    byteorder = "<" if info.get("little_endian", True) else ">"
    for key in keys:
        storages[key].array = _legacy_storage(file, path, size, storages[key], byteorder)
    left = size - file.tell()
    if left:
        _fail(path, f"holds {left} bytes after its last storage; the file is damaged")
    return root


def _legacy_storage(file, path, size, storage, byteorder):
    """The next storage of a legacy file: its 8-byte count, checked against the pickle's, then its bytes.

    Returns:
        A read-only NumPy array of the storage's elements.
    """
    start = file.tell()
    count = file.read(8)
    if len(count) < 8:
        _fail(path, f"ends before {storage.described} ({size - start} bytes left); the file is truncated")
    (count,) = struct.unpack(byteorder + "q", count)
    if count != storage.numel:
        _fail(path, f"{storage.described} holds {_shown(count)} elements; its pickle declares {storage.numel}")
    if start + 8 + storage.nbytes > size:
        _fail(path, f"ends inside {storage.described}, {size - start - 8} of its {storage.nbytes} bytes there")
    data = file.read(storage.nbytes)
    if len(data) != storage.nbytes:
        _fail(path, f"ends inside {storage.described}; the file is truncated")
    return np.frombuffer(data, storage.type.dtype.newbyteorder(byteorder))


# The zip format ------------------------------------------------------------------------------

_CENTRAL = struct.Struct("<4s6H3I5H2I")  # 46 bytes
_LOCAL = struct.Struct("<4s5H3I2H")  # 30 bytes
_END = struct.Struct("<4s4H2IH")  # 22 bytes
_END64 = struct.Struct("<4sQ2H2I4Q")  # 56 bytes
_LOCATOR64 = struct.Struct("<4sIQI")  # 20 bytes
_STORED, _DEFLATED = 0, 8


#: A zip member as its central directory entry describes it.
_Member = collections.namedtuple("_Member", "name flags method crc packed size offset zip64")


def _read_at(file, offset, count):
    file.seek(offset)
    return file.read(count)


def _zip_end(file, path, size):
    """(member count, directory size, directory offset, where the directory must end) from the end records.

    Raises:
        WeightsFileError: no end record (truncated), several disks, or zip64
            records that are cut short or disagree with the end record.
    """
    tail_start = max(0, size - _END.size - 0xFFFF)
    tail = _read_at(file, tail_start, size - tail_start)
    at = len(tail)
    while True:  # the last end record whose comment reaches the end of the file exactly
        at = tail.rfind(b"PK\x05\x06", 0, at)
        if at < 0:
            _fail(path, "is a zip archive without its end record; the file is truncated or damaged")
        if at + _END.size <= len(tail) and at + _END.size + struct.unpack_from("<H", tail, at + 20)[0] == len(tail):
            break
    _, disk, first_disk, _, count, length, start, _ = _END.unpack_from(tail, at)
    end, disks = tail_start + at, 1
    locator = tail[at - _LOCATOR64.size : at] if at >= _LOCATOR64.size else b""
    if locator.startswith(b"PK\x06\x07"):
        _, locator_disk, offset64, disks = _LOCATOR64.unpack(locator)
        fits = offset64 + _END64.size <= end - _LOCATOR64.size
        record = _read_at(file, offset64, _END64.size) if fits else b""
        if len(record) != _END64.size or not record.startswith(b"PK\x06\x06"):
            _fail(path, "is a zip archive whose zip64 end record is missing or misplaced; the file is damaged")
        _, _, _, _, disk64, first64, _, count64, length64, start64 = _END64.unpack(record)
        for small, big in ((count, count64), (length, length64), (start, start64)):
            if small not in (big, 0xFFFF, 0xFFFFFFFF):
                _fail(path, "is a zip archive whose end records disagree on its directory; the file is damaged")
        count, length, start, end = count64, length64, start64, offset64
        disk, first_disk = disk | disk64 | locator_disk, first_disk | first64
    if disk or first_disk or disks != 1:
        _fail(path, "is a zip archive split over several disks, which torch.save never writes")
    return count, length, start, end


def _zip_directory(file, path, size):
    """The archive's members by name, in directory order, and where their data ends (the directory's start).

    Only the end records and the central directory are read.

    Raises:
        WeightsFileError: see ``_zip_end``; too many members or too long a
            directory, entries that are damaged, encrypted, compressed by
            other methods than deflate, stored with two sizes, or named twice.
    """
    count, length, start, end = _zip_end(file, path, size)
    if count > MAX_MEMBERS or length > MAX_DIRECTORY_BYTES:
        _fail(path, f"is a zip archive of {count} members in {length} bytes; this reader accepts {MAX_MEMBERS}")
    if start + length != end:
        _fail(path, "is a zip archive whose directory does not end where its end record says; the file is damaged")
    directory, members, at = _read_at(file, start, length), {}, 0
    for _ in range(count):
        if at + _CENTRAL.size > len(directory) or directory[at : at + 4] != b"PK\x01\x02":
            _fail(path, f"is a zip archive whose directory is damaged at its byte {at}")
        fields = _CENTRAL.unpack_from(directory, at)
        flags, method, _, _, crc, packed, unpacked, name_length, extra_length, comment_length = fields[3:13]
        offset = fields[-1]
        name = directory[at + _CENTRAL.size : at + _CENTRAL.size + name_length]
        extra = directory[at + _CENTRAL.size + name_length : at + _CENTRAL.size + name_length + extra_length]
        at += _CENTRAL.size + name_length + extra_length + comment_length
        unpacked, packed, offset, zip64 = _zip64_sizes(extra, (unpacked, packed, offset))
        member = _Member(_member_name(path, name), flags, method, crc, packed, unpacked, offset, zip64)
        _check_member(path, member, members, at <= len(directory))
        members[member.name] = member
    if at != len(directory):
        _fail(path, f"is a zip archive whose directory holds {len(directory) - at} bytes more than its entries")
    return members, start


def _zip64_sizes(extra, values):
    """(size, packed size, offset, whether zip64) with the zip64 extra field's values where the entry has 0xFFFFFFFF."""
    values, zip64 = list(values), False
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if tag == 1:
            body, zip64 = extra[at + 4 : at + 4 + length], True
            wide = [index for index, value in enumerate(values) if value == 0xFFFFFFFF]
            for position, index in enumerate(wide):
                if 8 * position + 8 <= len(body):
                    values[index] = struct.unpack_from("<Q", body, 8 * position)[0]
        at += 4 + length
    return (*values, zip64)


def _member_name(path, raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        _fail(path, f"is a zip archive with a member named {_shown(raw)}, not UTF-8; the file is damaged")


def _check_member(path, member, members, complete):
    """Refuses a directory entry that is cut short, named twice, encrypted, or stored in a way torch never reads."""
    label = f"zip member {_shown(member.name)}"
    if not complete:
        _fail(path, f"is a zip archive whose directory is cut short in {label}; the file is damaged")
    if member.name in members:
        _fail(path, f"is a zip archive that holds two members named {_shown(member.name)}; the file is damaged")
    if member.flags & 0x41:
        _fail(path, f"{label} is encrypted, which torch.save never writes")
    if member.method not in (_STORED, _DEFLATED):
        _fail(path, f"{label} is compressed with zip method {member.method}; torch.save stores members uncompressed")
    if member.method == _STORED and member.packed != member.size:
        _fail(path, f"{label} is stored, yet its directory gives it {member.packed} and {member.size} bytes")


def _member_bytes(file, path, member, end, limit):
    """The bytes of ``member``, at most ``limit`` of them, checked against its local header, descriptor and CRC.

    Args:
        file: the archive.
        path: its name, for messages.
        member: a ``_Member``.
        end: where the members' data ends (the central directory's start).
        limit: most bytes the member may hold once inflated.

    Raises:
        WeightsFileError: a member larger than ``limit``, a local header that
            is missing or disagrees with the directory, data past ``end``, a
            deflated member that inflates to more or less than its size, or
            a wrong CRC.
    """
    label = f"zip member {_shown(member.name)}"
    if member.size > limit:
        _fail(path, f"{label} holds {_shown(member.size)} bytes; this reader accepts at most {limit} there")
    if member.method == _DEFLATED and member.packed > member.size + member.size // 256 + 1024:
        _fail(path, f"{label} packs {member.size} bytes into {_shown(member.packed)}; the file is damaged")
    local = _read_at(file, member.offset, _LOCAL.size) if member.offset + _LOCAL.size <= end else b""
    if len(local) != _LOCAL.size or not local.startswith(ZIP_SIGNATURE):
        _fail(path, f"{label} has no local header where the directory says; the file is truncated or damaged")
    _, _, flags, method, _, _, crc, packed, size, name_length, extra_length = _LOCAL.unpack(local)
    if file.read(name_length) != member.name.encode("utf-8") or method != member.method:
        _fail(path, f"{label}'s local header names another member or method; the file is damaged")
    extra = file.read(extra_length)
    start = member.offset + _LOCAL.size + name_length + extra_length
    if start + member.packed > end:
        _fail(path, f"{label} runs past the end of the archive's data; the file is truncated or damaged")
    packed_data = _read_at(file, start, member.packed)
    if flags & 0x08:
        crc, packed, size = _descriptor(file, member)
    else:
        size, packed, _, _ = _zip64_sizes(extra, (size, packed, 0))
    if (crc, packed, size) != (member.crc, member.packed, member.size):
        _fail(path, f"{label}'s sizes or CRC differ between its local header and the directory; the file is damaged")
    data = packed_data if member.method == _STORED else _inflate(path, label, packed_data, member.size)
    if zlib.crc32(data) != member.crc:
        _fail(path, f"{label} fails its CRC check; the file is damaged")
    return data


def _descriptor(file, member):
    """(CRC, packed size, size) from the data descriptor after ``member``'s data (the file is positioned there)."""
    layout = struct.Struct("<IQQ" if member.zip64 else "<III")
    record = file.read(4 + layout.size)  # its signature is optional
    record = record[4:] if record[:4] == b"PK\x07\x08" else record[: layout.size]
    return layout.unpack(record) if len(record) == layout.size else (None, None, None)


def _inflate(path, label, packed, size):
    """A deflated member's ``size`` bytes, inflated no further than that (a zip bomb stops there)."""
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(packed, size + 1)
    except zlib.error as error:
        _fail(path, f"{label} is compressed data that is corrupt ({error}); the file is damaged")
    if len(data) > size:
        _fail(path, f"{label} inflates to more than its declared {size} bytes; refused (a zip bomb?)")
    if len(data) < size or not inflater.eof:
        _fail(path, f"{label} inflates to less than its declared {size} bytes; the file is damaged")
    return data


def _read_zip(file, path, size, max_bytes, max_pickle_bytes):
    """The zip format's object, its tensors still ``_TensorRef`` of storages whose bytes are read.

    The top folder is the first member's, as torch's reader takes it.

    Raises:
        WeightsFileError: see ``_zip_directory`` and ``_member_bytes``; no
            ``data.pkl`` or version record, a refused pickle, an unknown
            byte order, or storages without data or of another length than
            the pickle declares.
    """
    members, end = _zip_directory(file, path, size)
    if not members or "/" not in next(iter(members)):
        _fail(path, "is a zip archive without a top folder; not a torch.save file")
    top = next(iter(members)).split("/")[0] + "/"

    def record(name, limit, required=True):
        member = members.get(top + name)
        if member is None and required:
            _fail(path, f"is a zip archive without {_shown(top + name)}; not a torch.save file")
        return None if member is None else _member_bytes(file, path, member, end, limit)

    version = record(".data/version", MAX_RECORD_BYTES, required=False) or record("version", MAX_RECORD_BYTES)
    if not version.strip().isdigit():
        _fail(path, f"has the version record {_shown(version)}; expected a number; the file is damaged")
    byteorder = record("byteorder", MAX_RECORD_BYTES, required=False) or b"little"
    if byteorder not in (b"little", b"big"):
        _fail(path, f"has the byte order {_shown(byteorder)}; expected 'little' or 'big'")
    storages = {}
    pickled = record("data.pkl", max_pickle_bytes)
    root = _unpickle(_Unpickler(io.BytesIO(pickled), path, max_bytes, len(pickled), storages), "its pickle (data.pkl)")
    for key, storage in storages.items():
        member = members.get(f"{top}data/{key}")
        if member is None:
            _fail(path, f"has no data for {storage.described} ({_shown(top + 'data/' + key)}); the file is damaged")
        if member.size != storage.nbytes:
            _fail(path, f"{storage.described} holds {_shown(member.size)} bytes; its pickle declares {storage.nbytes}")
        data = _member_bytes(file, path, member, end, storage.nbytes)
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
    """The tensors of a .safetensors file, name -> NumPy array, its header checked before safetensors reads it.

    Args:
        path: the file.
        max_bytes: most bytes its tensors may take.
        missing_hint: what to add to "file not found".

    Raises:
        WeightsFileError: one line naming the file: not a regular file, the
            safetensors package missing (with the pip command), or a header
            too long, not JSON, or declaring types, shapes or offsets that do
            not fit the file or ``max_bytes``.
    """
    path = weights_path(path)
    with open_regular_file(path, missing_hint=missing_hint) as file:
        return read_open_safetensors(file, path, max_bytes=max_bytes)


def read_open_safetensors(file, path, *, max_bytes):
    """``read_safetensors`` on the open regular file ``file`` of ``path``."""
    library = _safetensors_numpy()
    try:
        size = os.fstat(file.fileno()).st_size
        file.seek(0)
        if size < 8:
            _fail(path, f"holds {size} bytes, too few for a .safetensors file")
        (length,) = struct.unpack("<Q", file.read(8))
        if length > MAX_SAFETENSORS_HEADER:
            _fail(path, f"declares a header of {length} bytes; this reader accepts at most {MAX_SAFETENSORS_HEADER}")
        if 8 + length > size:
            _fail(path, f"declares a header of {length} bytes, longer than the file; the file is truncated")
        if size - 8 - length > max_bytes:
            _fail(path, f"holds {size - 8 - length} bytes of tensors, more than the {max_bytes} this reader accepts")
        file.seek(0)
        data = file.read(size)
    except OSError as error:
        _fail(path, f"cannot be read: {error.strerror or error}")
    if len(data) != size:
        _fail(path, "changed while it was read")
    _check_safetensors_header(path, data[8 : 8 + length], size - 8 - length, max_bytes)
    try:
        tensors = library.load(data)
    except Exception as error:  # safetensors.SafetensorError and the like; the header passed the checks above
        detail = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        _fail(path, f"is refused by safetensors ({detail}); the file is damaged")
    return {name: np.array(value) for name, value in tensors.items()}


def _unique_pairs(pairs):
    """A JSON object's ``pairs`` as a dict; ValueError naming the first name given twice (found in one pass)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the name {_shown(twice)} appears twice")
    return result


def _check_safetensors_header(path, header, data_bytes, max_bytes):
    """Checks a .safetensors header: JSON, each tensor's type, shape and offsets within the data and the ceiling.

    Raises:
        WeightsFileError: naming the first problem.
    """
    try:
        entries = json.loads(header.decode("utf-8"), object_pairs_hook=_unique_pairs)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        _fail(path, f"has a header that is not valid JSON ({str(error)[:100]}); not a .safetensors file")
    if not isinstance(entries, dict):
        _fail(path, f"has a header that is {_what(entries)}; expected a JSON object")
    if len(entries) > MAX_MEMBERS:
        _fail(path, f"has a header of {len(entries)} entries; this reader accepts {MAX_MEMBERS}")
    total = 0
    for name, entry in entries.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or any(type(v) is not str for v in entry.values()):
                _fail(path, "has __metadata__ that is not a mapping of strings")
            continue
        label = f"tensor {_shown(name)}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            _fail(path, f"describes {label} as {_shown(entry)}; expected dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if type(dtype) is not str or dtype not in SAFETENSORS_TYPES:
            _fail(path, f"{label} has type {_shown(dtype)}; this reader reads {', '.join(SAFETENSORS_TYPES)}")
        if (
            type(shape) is not list
            or len(shape) > MAX_DIMS
            or any(type(n) is not int or not 0 <= n < MAX_COUNT for n in shape)
        ):
            _fail(path, f"{label} has shape {_shown(shape)}; expected at most {MAX_DIMS} counts from 0 below 2**63")
        if type(offsets) is not list or len(offsets) != 2 or any(type(n) is not int for n in offsets):
            _fail(path, f"{label} has data_offsets {_shown(offsets)}; expected [begin, end]")
        nbytes = math.prod(shape) * np.dtype(SAFETENSORS_TYPES[dtype]).itemsize
        if not 0 <= offsets[0] <= offsets[1] <= data_bytes or offsets[1] - offsets[0] != nbytes:
            _fail(
                path,
                f"{label} of type {dtype} and shape {_shown(shape)} ({_shown(nbytes)} bytes) lies at "
                f"{_shown(offsets)}, outside the file's {data_bytes} bytes of tensors or of another length",
            )
        total += nbytes
        if total > max_bytes:
            _fail(path, f"declares tensors of more than the {max_bytes} bytes this reader accepts")


# Writing -------------------------------------------------------------------------------------


class _Pickle:
    """Protocol-2 pickle opcodes as CPython's pickler writes them for torch.save's state dicts.

    Each object is memoized (BINPUT) as the pickler does; ``memo`` maps a
    key standing for an object that the pickler would meet again (a global,
    a literal string torch reuses) to its index, so that meeting it again
    writes BINGET.
    """

    def __init__(self):
        self.out, self.memo, self.count = bytearray(b"\x80\x02"), {}, 0

    def put(self):
        self.out += b"q" + bytes([self.count]) if self.count < 256 else b"r" + struct.pack("<I", self.count)
        self.count += 1

    def shared(self, key, write):
        """BINGET of ``key`` if met before; else ``write()`` and BINPUT."""
        if key in self.memo:
            index = self.memo[key]
            self.out += b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index)
            return
        write()
        self.memo[key] = self.count
        self.put()

    def global_(self, module, name):
        self.shared(("global", module, name), lambda: self.out.extend(f"c{module}\n{name}\n".encode("ascii")))

    def text(self, value, shared=False):
        def write():
            data = value.encode("utf-8", "surrogatepass")
            self.out.extend(b"X" + struct.pack("<I", len(data)) + data)

        if shared:
            self.shared(("str", value), write)
        else:
            write()
            self.put()

    def integer(self, value):
        if 0 <= value < 256:
            self.out += b"K" + bytes([value])
        elif 0 <= value < 65536:
            self.out += b"M" + struct.pack("<H", value)
        elif -(1 << 31) <= value < 1 << 31:
            self.out += b"J" + struct.pack("<i", value)
        else:
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(data)]) + data

    def integers(self, values):
        """A tuple of ints: EMPTY_TUPLE, or TUPLE1..3, or MARK ... TUPLE, memoized."""
        if not values:
            self.out += b")"
            return
        self.out += b"(" if len(values) > 3 else b""
        for value in values:
            self.integer(value)
        self.out += b"t" if len(values) > 3 else b"\x85\x86\x87"[len(values) - 1 : len(values)]
        self.put()


def _pickled_state_dict(tensors, keys, legacy):
    """torch.save's pickle of an ``OrderedDict`` of tensors, each in its own storage named by ``keys``.

    Args:
        tensors: name -> C-contiguous array of a type in ``WRITTEN_STORAGE_TYPES``.
        keys: name -> its storage's key.
        legacy: the legacy format (its persistent ids end with None).

    Returns:
        The pickle's bytes.
    """
    writer = _Pickle()
    writer.global_("collections", "OrderedDict")
    writer.out += b")R"
    writer.put()
    items = list(tensors.items())
    for batch in range(0, len(items), 1000):  # CPython's pickler sets dict items in batches of 1000
        chunk = items[batch : batch + 1000]
        writer.out += b"(" if len(chunk) > 1 else b""
        for name, array in chunk:
            writer.text(name)
            writer.global_(*_REBUILD_V2)
            writer.out += b"(("
            writer.text("storage", shared=True)
            writer.global_("torch", WRITTEN_STORAGE_TYPES[array.dtype.newbyteorder("<")])
            writer.text(keys[name])
            writer.text("cpu", shared=True)
            writer.integer(array.size)
            writer.out += b"Nt" if legacy else b"t"
            writer.put()
            writer.out += b"Q"
            writer.integer(0)
            writer.integers(array.shape)
            writer.integers(_c_strides(array))
            writer.out += b"\x89"
            writer.global_("collections", "OrderedDict")  # met before: BINGET
            writer.out += b")R"
            writer.put()
            writer.out += b"t"
            writer.put()
            writer.out += b"R"
            writer.put()
        writer.out += b"u" if len(chunk) > 1 else b"s"
    return bytes(writer.out + b".")


def _c_strides(array):
    """The element strides torch gives a contiguous tensor of ``array``'s shape (each length counted as at least 1)."""
    strides, step = [], 1
    for length in reversed(array.shape):
        strides.insert(0, step)
        step *= max(length, 1)
    return tuple(strides)


def _checked_tensors(tensors):
    """``tensors`` as name -> C-contiguous little-endian array, each of a type torch stores.

    Raises:
        NSTError: a name that is not a non-empty str, or an array of another type.
    """
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
    """A zip archive of ``records`` (name -> bytes) laid out as torch's writer (miniz) lays it out.

    Each member is stored with flags 0x0808 (a data descriptor follows;
    UTF-8 names; 0x0800 and no descriptor for an empty member), no time, its
    data aligned to 64 bytes by an "FB" extra field of "Z" padding; the
    directory is followed by zip64 end records and the end record.
    """
    out, directory = bytearray(), bytearray()
    for name, data in records.items():
        raw, offset = name.encode("utf-8"), len(out)
        padding = -(offset + _LOCAL.size + len(raw) + 4) % 64
        extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
        crc = zlib.crc32(data)
        flags = 0x0808 if data else 0x0800  # miniz writes no data descriptor after an empty member
        out += _LOCAL.pack(ZIP_SIGNATURE, 0, flags, 0, 0, 0, 0, 0, 0, len(raw), len(extra)) + raw + extra + data
        out += b"PK\x07\x08" + struct.pack("<3I", crc, len(data), len(data)) if data else b""
        directory += _CENTRAL.pack(
            b"PK\x01\x02", 0, 0, flags, 0, 0, 0, crc, len(data), len(data), len(raw), 0, 0, 0, 0, 0, offset
        )
        directory += raw
    start, count = len(out), len(records)
    out += directory
    end64 = len(out)
    out += _END64.pack(b"PK\x06\x06", _END64.size - 12, 0x031E, 0x2D, 0, 0, count, count, len(directory), start)
    out += _LOCATOR64.pack(b"PK\x06\x07", 0, end64, 1)
    out += _END.pack(b"PK\x05\x06", 0, 0, count, count, len(directory), start, 0)
    return bytes(out)


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
    magic = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC_BYTES + b"."
    version = b"\x80\x02M" + struct.pack("<H", LEGACY_PROTOCOL_VERSION) + b"."
    info = (
        b"\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03X\r\x00\x00\x00little_endianq\x02\x88"
        b"X\n\x00\x00\x00type_sizesq\x03}q\x04(X\x05\x00\x00\x00shortq\x05K\x02X\x03\x00\x00\x00intq\x06K\x04"
        b"X\x04\x00\x00\x00longq\x07K\x04uu."
    )
    order = sorted(keys.values())  # torch sorts its keys as strings
    listing = _Pickle()
    listing.out += b"]"
    listing.put()
    for batch in range(0, len(order), 1000):
        chunk = order[batch : batch + 1000]
        listing.out += b"(" if len(chunk) > 1 else b""
        for key in chunk:
            listing.text(key)
        listing.out += b"e" if len(chunk) > 1 else b"a"
    by_key = {keys[name]: array for name, array in tensors.items()}
    storages = b"".join(struct.pack("<q", by_key[key].size) + by_key[key].tobytes() for key in order)
    pickled = _pickled_state_dict(tensors, keys, legacy=True)
    return magic + version + info + pickled + bytes(listing.out + b".") + storages


def write_state_dict(path, tensors, format="zip", top="archive", serialization_id=None):
    """Writes ``tensors`` as torch.save writes a state dict (an OrderedDict of tensors), without torch.

    The bytes are those PyTorch 2.13's ``torch.save`` writes for the same
    tensors (each in its own storage, on the CPU), but for the legacy
    format's storage keys (torch uses memory addresses) and the zip
    format's serialization id; ``torch.load`` reads them.

    Args:
        path: the file to write; replaced atomically (written beside it, then renamed over it).
        tensors: name -> array (float16/32/64, int8/16/32/64, uint8 or bool), in the order to save.
        format: "zip" (torch.save's default) or "legacy" (``_use_new_zipfile_serialization=False``).
        top: the zip archive's top folder (torch names it after the file, "archive" for a buffer).
        serialization_id: the zip format's ``.data/serialization_id`` record, 40 digits;
            torch's is random, the default is derived from the tensors.

    Returns:
        ``path``.

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
    """Writes ``tensors`` (name -> array) as a .safetensors file through the safetensors package, atomically.

    Raises:
        WeightsFileError: the package is missing (with the pip command), or ``path`` cannot be written.
    """
    library = _safetensors_numpy()
    arrays = {name: np.asarray(value, order="C") for name, value in dict(tensors).items()}
    return write_atomically(path, library.save(arrays))


def write_atomically(path, data):
    """Writes ``data`` to a new file beside ``path``, then renames it over ``path``: never half a file.

    A symbolic link at ``path`` is refused rather than replaced (the rename
    would replace the link itself, not its target); the temporary file is
    created exclusively under an unpredictable name.

    Returns:
        ``path``.

    Raises:
        WeightsFileError: ``path`` is a link or a folder, or the file cannot be written.
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

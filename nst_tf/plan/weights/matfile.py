"""A structural check of MATLAB .mat files (format version 5, and 7's compressed variables).

``scipy.io.loadmat`` trusts a file's type codes and sizes. In scipy 1.17 one changed byte can crash the process
(a type code outside MATLAB's table indexes a C array), a 184-byte file declaring a 1x2^30 cell array allocates
8 GiB before finding the cells missing, and nested cells recurse on the C stack. ``check_open_mat_file`` walks
the structure first, in pure Python without building arrays, and refuses what loadmat could not read safely;
anything else wrong with a file that passes, loadmat raises an ordinary exception for.

The format (MathWorks, "MAT-File Format", version 5): a 128-byte header (text beginning "MATLAB 5.0 MAT-file",
subsystem offset, version 0x0100 and "IM", "MI" when big-endian), then one data element per variable: an 8-byte
tag (type, size), the data, zero padding to a multiple of 8 (a "small" element of up to 4 bytes packs all into
the tag). A variable is an miMATRIX, or an miCOMPRESSED zlib stream of one. An miMATRIX holds array flags (class
in the low byte, complex 0x800), dimensions (int32, at least two), name (int8), then by class: numeric parts
(real, imaginary); characters; one miMATRIX per cell; or struct field-name length, NUL-padded names and one
miMATRIX per element and field. An miMATRIX of size 0 is empty. Numeric data is seeked over or inflated in
chunks, never held whole.
"""

import errno
import math
import os
import stat
import struct
import zlib

from ...ground.errors import WeightsFileError, quoted
from ...ground.files import NotRegularFile, file_kind, open_regular

#: Most bytes of variable data one file may hold, after inflation (loadmat allocates about this much);
#: nst_tf.plan.synthetic's full-size VGG-19 file, laid out as the real one, holds 575 MB.
MAX_DATA_BYTES = 1 << 30
#: Most cells and struct field values one file may hold (loadmat builds an object of about 100 bytes
#: for each); the synthetic VGG-19 files have about 2,400.
MAX_VALUES = 1 << 20
#: Most characters of all char arrays of one file (loadmat stores each in 4 bytes); VGG-19's: 28,000.
MAX_CHARACTERS = 1 << 24
#: Deepest nesting of cells and structs (loadmat recurses once per level on the C stack); VGG-19's: 4.
MAX_DEPTH = 16
_BOUNDS = {"cells and struct fields": MAX_VALUES, "characters": MAX_CHARACTERS}

HEADER_BYTES = 128
_HEADER_TEXT = b"MATLAB 5.0 MAT-file"
#: How MATLAB files begin: version 5 (MatConvNet's) and 7.3 (HDF5 inside, which loadmat cannot read).
MAT_HEADERS = (_HEADER_TEXT, b"MATLAB 7.3 MAT-file")

# MATLAB's data types ("miINT8" ...), as codes in element tags.
MI_INT8, MI_UINT8, MI_UINT16, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED, MI_UTF8 = 1, 2, 4, 5, 6, 14, 15, 16
#: Numeric data types (miINT8 ... miUINT64); any of them may hold any numeric class (MATLAB stores a double
#: array of small integers as miUINT8).
NUMERIC_TYPES = {1, 2, 3, 4, 5, 6, 7, 9, 12, 13}
# Array classes ("mxCELL_CLASS" ...), in the low byte of the array flags.
MX_CELL, MX_STRUCT, MX_CHAR = 1, 2, 4
MX_NUMERIC = dict(
    zip(range(6, 16), ("double", "single", *(f"{u}int{bits}" for bits in (8, 16, 32, 64) for u in ("", "u"))))
)
_CHAR_WIDTHS = {MI_INT8: 1, MI_UINT8: 1, MI_UINT16: 2, MI_UTF8: 1, 17: 2, 18: 4}  # 17, 18: miUTF16, miUTF32
_REFUSED_CLASSES = {3: "object", 5: "sparse", 16: "function handle", 17: "opaque"}
_MAX_NAME = 63  # the longest variable name MATLAB writes (namelengthmax)
_MAX_DIMS = 32  # NumPy's limit, and the most loadmat's header reader takes
_CHUNK = 1 << 20  # bytes read, or inflated, at a time


class _Refused(Exception):
    """What is wrong with the file, and whether that is damage or an unsupported kind of file."""

    def __init__(self, problem, damaged=True):
        super().__init__(problem)
        self.problem, self.damaged = problem, damaged


def weights_path(path):
    """``path`` as the ``str`` or ``bytes`` a weights file is opened by; ``WeightsFileError`` for a non-path, a NUL."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise WeightsFileError(f"the weights file must be a path; got {type(path).__name__}") from None
    if ("\0" if isinstance(path, str) else b"\0") in path:
        raise WeightsFileError(f"{quoted(path)}: a file name cannot hold a NUL character")
    return path


def _refuse_path(path, problem):
    raise WeightsFileError(f"{quoted(path)}: {problem}")


def _stat_failure(path, error, missing_hint):
    """The message for ``error``, raised by stat or open on ``path``."""
    if isinstance(error, PermissionError):
        return "permission denied"
    if error.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    if isinstance(error, NotADirectoryError):
        return "a folder in the path is a file"
    if not isinstance(error, FileNotFoundError):
        return f"cannot be opened ({error.strerror or error})"
    if not os.path.islink(path):
        return "file not found" + (f"; {missing_hint}" if missing_hint else "")
    target = os.readlink(path)
    shown = quoted(target)
    if os.path.lexists(os.path.join(os.path.dirname(path), target)):  # the target is a link leading nowhere
        shown += f", which leads to {quoted(os.path.realpath(path))}"
    return f"is a symbolic link to {shown}, which does not exist"


def open_regular_file(path, missing_hint=None, folder_problem="is a folder, not a file"):
    """Opens ``path`` for binary reading if it is a regular file (or a link to one), checked before any read (a
    pipe would block forever, a device never end) and again once opened without blocking (a file swapped since).
    ``WeightsFileError`` naming the path and what it is: missing (with ``missing_hint``), a folder
    (``folder_problem``), a dangling link, not a regular file, or not openable.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        _refuse_path(path, _stat_failure(path, error, missing_hint))
    if stat.S_ISDIR(mode):
        _refuse_path(path, folder_problem)
    if not stat.S_ISREG(mode):
        _refuse_path(path, f"is {file_kind(mode)}, not a regular file")
    try:
        return open_regular(path)
    except NotRegularFile as error:
        _refuse_path(path, folder_problem if error.kind == "a folder" else f"is {error.kind}, not a regular file")
    except OSError as error:
        _refuse_path(path, _stat_failure(path, error, missing_hint))


def check_open_mat_file(file, path):
    """Checks the structure of the .mat file open as the binary ``file`` of ``path`` (see the module docstring);
    ``WeightsFileError`` naming the file and what is wrong: not a version 5 (or 7) .mat file, a damaged
    structure (type code, size, dimension, count, name, compressed data), a bound passed, or a failed read.
    """
    try:
        _walk_file(file, os.fstat(file.fileno()).st_size)
    except (_Refused, zlib.error) as refusal:
        problem = getattr(refusal, "problem", f"compressed data is corrupt: {refusal}")
        damage = "; it may be truncated or damaged" if getattr(refusal, "damaged", True) else ""
        _refuse_path(path, f"cannot be read as a MATLAB .mat file ({problem}){damage}")
    except OSError as error:
        _refuse_path(path, f"cannot be read ({error.strerror or error})")
    finally:
        file.seek(0)


def _walk_file(file, size):
    """Walks the header and each variable of ``file``, of ``size`` bytes; raises ``_Refused``."""
    header = _read_at(file, 0, HEADER_BYTES)
    if len(header) < HEADER_BYTES:
        raise _Refused(f"the file is {size} bytes, shorter than the {HEADER_BYTES}-byte header")
    if header[124:128] in (b"\x00\x02IM", b"\x02\x00MI") and header.startswith(b"MATLAB"):
        raise _Refused(
            "it is a MATLAB 7.3 (HDF5) file, which SciPy cannot read; save it in MATLAB with save(..., '-v7') "
            "or download imagenet-vgg-verydeep-19.mat again",
            damaged=False,
        )
    if not header.startswith(b"MATLAB"):
        raise _Refused(f"it does not begin with {_HEADER_TEXT.decode()!r}", damaged=False)
    if not header.startswith(_HEADER_TEXT):
        raise _Refused(f"its header text does not begin with {_HEADER_TEXT.decode()!r}")
    endian = {b"\x00\x01IM": "<", b"\x01\x00MI": ">"}.get(header[124:128])
    if endian is None:
        raise _Refused(f"header bytes 124-127 are {header[124:128]!r}, not version 0x0100 and endian mark 'IM'")
    walker, position = _Walker(endian), HEADER_BYTES
    while position + 8 <= size:  # fewer bytes after the last variable, loadmat refuses
        where = f"variable at byte {position}"
        data_type, length = walker.tag.unpack(_read_at(file, position, 8))  # past the file's end: "ends early"
        if data_type == MI_COMPRESSED:
            source = _InflatingSource(file, position + 8, length, where)
            length_inside = walker.tag.unpack(source.read(8))[1]
            walker.count_data(length_inside, where)
            walker.array(source, 8 + length_inside, 1, where, top=True)
        else:  # loadmat refuses any other type but miMATRIX
            walker.count_data(length, where)
            walker.array(_FileSource(file, position + 8), position + 8 + length, 1, where, top=True)
        position += 8 + length


def _read_at(file, offset, count):
    file.seek(offset)
    return file.read(count)


class _Source:
    """Reads a variable through a buffer; ``pos`` counts the bytes read or skipped."""

    def __init__(self, pos):
        self.pos, self._buffer, self._offset = pos, b"", 0

    def read(self, n):
        """The next ``n`` bytes; raises ``_Refused`` when the variable ends first."""
        if self._offset + n > len(self._buffer):
            self._buffer = self._buffer[self._offset :] + self._more(n - (len(self._buffer) - self._offset))
            self._offset = 0
            if n > len(self._buffer):
                raise _Refused(f"{self.label} ends {n - len(self._buffer)} bytes early, at {self.where(self.pos)}")
        self._offset, self.pos = self._offset + n, self.pos + n
        return self._buffer[self._offset - n : self._offset]


class _FileSource(_Source):
    """Reads an uncompressed variable; positions are offsets in the file."""

    label = "the file"

    def __init__(self, file, position):
        super().__init__(position)
        self.file = file
        file.seek(position)

    def _more(self, at_least):
        return self.file.read(max(at_least, 1 << 16))

    def skip(self, n):
        if self._offset + n <= len(self._buffer):
            self._offset += n
        else:
            self.file.seek(self.pos + n)
            self._buffer, self._offset = b"", 0
        self.pos += n

    def where(self, position):
        return f"byte {position}"


class _InflatingSource(_Source):
    """Reads a compressed variable's inflated data, a chunk at a time; positions are offsets in that data."""

    def __init__(self, file, start, length, where):
        super().__init__(0)
        self.file, self.start, self.unread, self.label = file, start, length, f"the compressed {where}"
        self._decompressor, self._flushed = zlib.decompressobj(), False
        file.seek(start)

    def _inflate(self, most):
        """Up to ``most`` more inflated bytes; b"" at the end of the data."""
        decompressor = self._decompressor
        while not decompressor.eof:
            if decompressor.unconsumed_tail:
                out = decompressor.decompress(decompressor.unconsumed_tail, most)
            elif self.unread:
                block = self.file.read(min(self.unread, _CHUNK))
                self.unread = self.unread - len(block) if block else 0  # a file cut while read ends here
                out = decompressor.decompress(block, most)
            elif not self._flushed:
                # Some MATLAB files end a compressed variable without the zlib end marker; loadmat reads them.
                self._flushed, out = True, decompressor.flush()
            else:
                return b""
            if out:
                return out
        return b""

    def _more(self, at_least):
        pieces, have = [], 0
        while have < at_least:
            pieces.append(self._inflate(max(at_least - have, 1 << 16)))
            if not pieces[-1]:
                break
            have += len(pieces[-1])
        return b"".join(pieces)

    def skip(self, n):
        """Skips ``n`` inflated bytes, a chunk at a time; raises ``_Refused`` when the data ends first."""
        for size in [_CHUNK] * (n // _CHUNK) + [n % _CHUNK]:
            self.read(size)

    def where(self, position):
        return f"inflated byte {position} of the compressed variable at byte {self.start - 8}"


def _label(label):
    """A label for messages: a variable name, or (parent label, "{", cell index) / (parent, ".", field name)."""
    if isinstance(label, str):
        return label
    parent, kind, key = label
    return f"{_label(parent)}{{{key}}}" if kind == "{" else f"{_label(parent)}{kind}{key}"


def _shape(dims):
    return "x".join(map(str, dims))


class _Walker:
    """Walks arrays, counting what loadmat would build against the module's bounds; labels are built only for
    messages (``_label``), as the walk visits thousands of small arrays."""

    def __init__(self, endian):
        self.endian, self.tag, self.int32 = endian, struct.Struct(endian + "II"), struct.Struct(endian + "i")
        self.flags = struct.Struct(endian + "IIII")
        self.data_bytes, self.counts = 0, dict.fromkeys(_BOUNDS, 0)

    def count_data(self, length, where):
        """Adds ``length`` data bytes; raises ``_Refused`` (not damage) past ``MAX_DATA_BYTES`` in all."""
        self.data_bytes += length
        if self.data_bytes > MAX_DATA_BYTES:
            raise _Refused(
                f"the variables up to the {where} hold {self.data_bytes} bytes, more than the {MAX_DATA_BYTES} "
                "this reader accepts",
                damaged=False,
            )

    def _count(self, source, start, count, label, what):
        """Adds ``count`` to the file's ``what`` ("characters", "cells and struct fields"); refuses past its bound."""
        self.counts[what] += count
        if self.counts[what] > _BOUNDS[what]:
            _bad(source, start, f"{_label(label)} brings the file's {what} to more than {_BOUNDS[what]}")

    def _element(self, source, end, part, label):
        """The tag of element ``part`` of array ``label``: (type, size, data of a small element or None)."""
        start, raw = source.pos, source.read(8)
        first, second = self.tag.unpack(raw)
        if first >> 16:  # a small element: at most 4 bytes, in the tag
            return first & 0xFFFF, first >> 16, raw[4 : 4 + (first >> 16)]
        if second + (-second % 8) > end - source.pos:  # read or skipped, it would run past what was checked
            _bad(source, start, f"{part}{_label(label)} of {second} bytes runs past its array")
        return first, second, None

    def _payload(self, source, length, small):
        if small is not None:
            return small
        data = source.read(length)
        source.skip(-length % 8)
        return data

    def array(self, source, end, depth, label, top=False):
        """Walks an miMATRIX's content (flags, dimensions, name, values), which must end exactly at ``end``."""
        start = source.pos
        if start == end:
            return  # an empty array
        if depth > MAX_DEPTH:
            _bad(source, start, f"{_label(label)} is nested more than {MAX_DEPTH} cells or structs deep")
        data_type, length, flags, _ = self.flags.unpack(source.read(16))
        klass = flags & 0xFF
        if data_type != MI_UINT32 or length != 8:
            _bad(source, start, f"array flags of {_label(label)} are not 8 bytes of type 6 (tag {data_type}, {length})")
        if klass in _REFUSED_CLASSES:
            problem = f"{_label(label)} is a MATLAB {_REFUSED_CLASSES[klass]} array, which this reader does not read"
            raise _Refused(problem, damaged=False)
        if klass not in MX_NUMERIC and klass not in (MX_CELL, MX_STRUCT, MX_CHAR):
            _bad(source, start, f"{_label(label)} has array class {klass}, which MATLAB does not define")
        dims = self._dimensions(source, end, label)
        at = source.pos
        data_type, length, small = self._element(source, end, "name of ", label)
        if data_type not in (MI_INT8, MI_UTF8) or length > _MAX_NAME:
            problem = f"name of {_label(label)} is {length} bytes of type {data_type}; expected at most 63 of type 1"
            _bad(source, at, problem)
        name = self._payload(source, length, small)
        label = f"variable {name.decode('latin-1')!r}" if top else label
        self._content(source, end, depth, label, (klass, flags, dims, start))
        if source.pos != end:
            problem = f"{_label(label)} ({_shape(dims)}) ends {end - source.pos} bytes before its declared size"
            _bad(source, source.pos, problem)

    def _dimensions(self, source, end, label):
        """An array's dimensions: 2 to ``_MAX_DIMS`` non-negative int32 values."""
        at = source.pos
        data_type, length, small = self._element(source, end, "dimensions of ", label)
        bad_size = length % 4 or not 8 <= length <= 4 * _MAX_DIMS
        if small is not None or data_type not in (MI_INT32, MI_UINT32) or bad_size:
            expected = f"expected 2 to {_MAX_DIMS} int32 values"
            _bad(source, at, f"dimensions of {_label(label)} are {length} bytes of type {data_type}; {expected}")
        dims = struct.unpack(f"{self.endian}{length // 4}i", self._payload(source, length, small))
        if min(dims) < 0:
            _bad(source, at, f"{_label(label)} has a negative dimension: {_shape(dims)}")
        return dims

    def _content(self, source, end, depth, label, header):
        """An array's values by its class: numbers, characters, cells or struct fields."""
        klass, flags, dims, start = header
        count = math.prod(dims)
        if klass in MX_NUMERIC:
            for part in ("", "imaginary ")[: 1 + bool(flags & 0x800)]:  # the complex flag
                at = source.pos
                data_type, length, small = self._element(source, end, f"{part}data of ", label)
                what = f"{part}data of {_label(label)} ({_shape(dims)} {MX_NUMERIC[klass]})"
                if data_type not in NUMERIC_TYPES:
                    _bad(source, at, f"{what} has data type {data_type}, which is not a numeric type")
                source.skip(0 if small is not None else length + (-length % 8))
        elif klass == MX_CHAR:
            at = source.pos
            data_type, length, small = self._element(source, end, "characters of ", label)
            what, width = f"characters of {_label(label)} ({_shape(dims)} char)", _CHAR_WIDTHS.get(data_type)
            if width is None:
                _bad(source, at, f"{what} have data type {data_type}, which is not a character type")
            if length % width or not count <= length <= 4 * count:
                _bad(source, at, f"{what} are {length} bytes of type {data_type}")
            self._count(source, at, count, label, "characters")
            source.skip(0 if small is not None else length + (-length % 8))
        elif klass == MX_CELL:
            self._values(source, start, end, count, label, f"a {_shape(dims)} cell array", count)
            for i in range(count):
                self._matrix(source, end, depth + 1, (label, "{", i + 1))
        else:
            fields = self._fields(source, end, label)
            what = f"a {_shape(dims)} struct array with {len(fields)} fields"
            self._values(source, start, end, count * len(fields), label, what, count * max(1, len(fields)))
            for i in range(count):
                element = (label, "(", f"{i + 1})") if count > 1 else label
                for name in fields:
                    self._matrix(source, end, depth + 1, (element, ".", name))

    def _values(self, source, start, end, count, label, what, visits):
        """Checks that ``count`` cells or field values fit what is left of the array, each in an 8-byte tag at
        least (loadmat allocates them all before reading any); counts the ``visits`` loadmat makes, one per
        value or per element of a struct array without fields."""
        left = end - source.pos
        if count * 8 > left:
            room = f"the {left} bytes left in it hold at most {left // 8} values"
            _bad(source, start, f"{_label(label)} is {what}, but {room}")
        self._count(source, start, visits, label, "cells and struct fields")

    def _matrix(self, source, end, depth, label):
        """Walks one miMATRIX element (tag and content) inside a cell or struct."""
        start = source.pos
        data_type, length, small = self._element(source, end, "", label)
        if small is not None or data_type != MI_MATRIX or length % 8:
            _bad(source, start, f"{_label(label)} is {length} bytes of data type {data_type}; expected an array (14)")
        self.array(source, source.pos + length, depth, label)

    def _fields(self, source, end, label):
        """A struct's field names: its field-name length, then its NUL-padded names."""
        at = source.pos
        _, length, small = self._element(source, end, "field-name length of ", label)
        slot = self.int32.unpack(self._payload(source, length, small)[:4].ljust(4, b"\0"))[0]
        if length != 4 or slot < 1:
            problem = f"is {length} bytes holding {slot}; expected an int32 above 0"
            _bad(source, at, f"field-name length of {_label(label)} {problem}")
        at = source.pos
        _, length, small = self._element(source, end, "field names of ", label)
        raw = self._payload(source, length, small)
        fields = [raw[i : i + slot].partition(b"\0") for i in range(0, length, slot)]
        for number, (name, nul, _) in enumerate(fields, 1):
            if not (nul and name.isascii() and name[:1].isalpha() and (name.replace(b"_", b"") or b"x").isalnum()):
                _bad(source, at, f"field {number} of {_label(label)} has no valid NUL-terminated name: {name!r}")
        return [name.decode() for name, _, _ in fields]


def _bad(source, position, problem):
    raise _Refused(f"{problem}, at {source.where(position)}")

"""A structural check of MATLAB .mat files (format version 5, and 7's compressed variables).

``scipy.io.loadmat`` trusts the type codes and sizes written in a file. In
scipy 1.17 one changed byte is enough to crash the whole process (a data
type code outside MATLAB's table is used as an index into a C array of
types), a 184-byte file declaring a 1x2^30 cell array makes it allocate
8 GiB before finding the cells missing, and nested cells recurse on the C
stack. ``check_mat_file`` walks the file's structure first, in pure Python
and without building arrays, and refuses anything loadmat could not read
safely; a file that passes has every type code, size and count where
loadmat expects them, so loadmat reads it or raises an ordinary exception.

The format (MathWorks, "MAT-File Format", version 5):

* a 128-byte header: 116 bytes of text beginning "MATLAB 5.0 MAT-file",
  8 bytes of subsystem offset, the version 0x0100 as a 16-bit integer and
  the characters "IM" written as a 16-bit integer (so "IM" in a
  little-endian file, "MI" in a big-endian one);
* then data elements, one per variable, to the end of the file. A data
  element is an 8-byte tag (data type, size in bytes) followed by its data
  and zero padding to a multiple of 8 bytes; a "small" element of up to 4
  bytes packs type (16 bits), size (16 bits) and data into the 8-byte tag.
  A variable is an miMATRIX element, or an miCOMPRESSED element whose data
  is a zlib stream holding one miMATRIX element (no padding after it);
* an miMATRIX element holds sub-elements: array flags (class in the low
  byte, complex flag 0x800), dimensions (int32, at least two), name (int8),
  then by class: numeric arrays their real part and, if complex, their
  imaginary part; char arrays their characters; cell arrays one miMATRIX
  per cell; structs the field-name length, the field names (NUL-padded to
  that length) and one miMATRIX per element and field, in column-major
  element order. An miMATRIX of size 0 is an empty array.

Numeric data is seeked over (uncompressed) or inflated in chunks and
counted (compressed), never held whole; only names and char data are read.
"""

import errno
import math
import os
import stat
import struct
import zlib

from ...ground.errors import WeightsFileError, quoted
from ...ground.files import NotRegularFile, file_kind, open_regular

#: Most bytes of variable data one file may hold, after inflation. loadmat
#: allocates about this much; the full-size synthetic VGG-19 file of
#: nst_tf.plan.synthetic, laid out as the real one, holds 575 MB.
MAX_DATA_BYTES = 1 << 30

#: Most cells and struct field values one file may hold. loadmat builds a
#: Python object for each (about 100 bytes); the synthetic VGG-19 files of
#: nst_tf.plan.synthetic, laid out as the real one, have about 2,400.
MAX_VALUES = 1 << 20

#: Most characters in all char arrays of one file. loadmat stores each in 4
#: bytes; the synthetic VGG-19 files have about 28,000.
MAX_CHARACTERS = 1 << 24

#: Deepest nesting of cells and structs accepted (the VGG-19 files nest 4 deep);
#: loadmat recurses once per level on the C stack.
MAX_DEPTH = 16

HEADER_BYTES = 128
_HEADER_TEXT = b"MATLAB 5.0 MAT-file"

#: How MATLAB files begin: version 5 (MatConvNet's) and 7.3 (HDF5 inside, which loadmat cannot read).
MAT_HEADERS = (_HEADER_TEXT, b"MATLAB 7.3 MAT-file")

# MATLAB's data types ("miINT8" ...), as codes in element tags.
MI_INT8, MI_UINT8, MI_INT16, MI_UINT16, MI_INT32, MI_UINT32 = 1, 2, 3, 4, 5, 6
MI_SINGLE, MI_DOUBLE, MI_INT64, MI_UINT64 = 7, 9, 12, 13
MI_MATRIX, MI_COMPRESSED, MI_UTF8, MI_UTF16, MI_UTF32 = 14, 15, 16, 17, 18

#: Numeric data types and their sizes in bytes. MATLAB may store an array in
#: a narrower type than its class (a double array of small integers as
#: miUINT8), so any of them may hold any numeric class.
NUMERIC_SIZES = {
    MI_INT8: 1,
    MI_UINT8: 1,
    MI_INT16: 2,
    MI_UINT16: 2,
    MI_INT32: 4,
    MI_UINT32: 4,
    MI_SINGLE: 4,
    MI_DOUBLE: 8,
    MI_INT64: 8,
    MI_UINT64: 8,
}

# Array classes ("mxCELL_CLASS" ...), in the low byte of the array flags.
MX_CELL, MX_STRUCT, MX_CHAR = 1, 2, 4
MX_NUMERIC = {
    6: "double",
    7: "single",
    8: "int8",
    9: "uint8",
    10: "int16",
    11: "uint16",
    12: "int32",
    13: "uint32",
    14: "int64",
    15: "uint64",
}
_CHAR_WIDTHS = {MI_INT8: 1, MI_UINT8: 1, MI_UINT16: 2, MI_UTF8: 1, MI_UTF16: 2, MI_UTF32: 4}
_CHAR_CODECS = {MI_INT8: "ascii", MI_UINT8: "ascii", MI_UTF8: "utf-8", MI_UINT16: "utf-8"}
_REFUSED_CLASSES = {3: "object", 5: "sparse", 16: "function handle", 17: "opaque"}
_COMPLEX_FLAG = 0x800

# Longest variable name MATLAB writes (namelengthmax), and the longest
# field-name slot: the longest field name plus its terminating NUL.
_MAX_NAME = 63
_MAX_FIELD_SLOT = 64
_MAX_DIMS = 32  # numpy's limit, and the most loadmat's header reader takes

_INFLATE_CHUNK = 1 << 20
_READ_AHEAD = 1 << 16


class _Refused(Exception):
    """What is wrong with the file, and whether that is damage or an unsupported kind of file."""

    def __init__(self, problem, damaged=True):
        super().__init__(problem)
        self.problem = problem
        self.damaged = damaged


def weights_path(path):
    """``path`` as the ``str`` or ``bytes`` a weights file is opened by.

    Raises:
        WeightsFileError: ``path`` is not a path (None, a number, ...) or holds a NUL character.
    """
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
    if isinstance(error, FileNotFoundError):
        try:
            is_link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            is_link = False
        if is_link:
            target = os.readlink(path)
            if os.path.lexists(os.path.join(os.path.dirname(path), target)):
                # The target is itself a link that leads nowhere.
                return (
                    f"is a symbolic link to {quoted(target)}, which leads to "
                    f"{quoted(os.path.realpath(path))}, which does not exist"
                )
            return f"is a symbolic link to {quoted(target)}, which does not exist"
        return "file not found" + (f"; {missing_hint}" if missing_hint else "")
    if isinstance(error, NotADirectoryError):
        return "a folder in the path is a file"
    return f"cannot be opened ({error.strerror or error})"


def open_regular_file(path, missing_hint=None, folder_problem="is a folder, not a file"):
    """Opens ``path`` for binary reading if it is a regular file (or a link to one).

    Anything else is refused, before any data is read: a named pipe would
    block the reader forever and a device would feed it without end. The
    file is opened without blocking and checked again after opening, so a
    file swapped for a pipe in between is refused too. ``missing_hint`` is
    appended to "file not found".

    Raises:
        WeightsFileError: naming the path and what it is: missing (with ``missing_hint``), a folder
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


def check_mat_file(path):
    """Checks the structure of the .mat file at ``path``; see the module docstring.

    Raises:
        WeightsFileError: naming the file and what is wrong: the path is not a readable regular file, or the
            file is not a version 5 .mat file (or a version 7 one with compressed variables), or its structure
            is damaged anywhere: a type code, a size, a dimension, a count, a name, compressed data, or more
            data than ``MAX_DATA_BYTES``.
    """
    with open_regular_file(path) as file:
        check_open_mat_file(file, path)


def check_open_mat_file(file, path):
    """``check_mat_file`` on a binary ``file`` opened on ``path`` (read from offset 0).

    Raises:
        WeightsFileError: as ``check_mat_file`` does, for the file's structure or a failed read.
    """
    try:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        file.seek(0)
        _walk_file(file, size)
    except _Refused as refusal:
        problem = refusal.problem
        if refusal.damaged:
            _refuse_path(path, f"cannot be read as a MATLAB .mat file ({problem}); it may be truncated or damaged")
        _refuse_path(path, f"cannot be read as a MATLAB .mat file ({problem})")
    except zlib.error as error:
        _refuse_path(
            path,
            f"cannot be read as a MATLAB .mat file (compressed data is corrupt: {error}); "
            "it may be truncated or damaged",
        )
    except OSError as error:
        _refuse_path(path, f"cannot be read ({error.strerror or error})")
    finally:
        file.seek(0)


def _walk_file(file, size):
    if size < HEADER_BYTES:
        raise _Refused(f"the file is {size} bytes, shorter than the {HEADER_BYTES}-byte header")
    header = file.read(HEADER_BYTES)
    if len(header) != HEADER_BYTES:
        raise _Refused("the file ended while its header was read")
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
    walker = _Walker(endian)
    position = HEADER_BYTES
    names = set()
    while position < size:
        where = f"variable at byte {position}"
        if size - position < 8:
            raise _Refused(f"{size - position} stray bytes after the last variable (at byte {position})")
        file.seek(position)
        data_type, length = walker.tag.unpack(file.read(8))
        if length == 0:
            raise _Refused(f"the {where} is empty")
        if length > size - position - 8:
            raise _Refused(f"the {where} declares {length} bytes but the file holds {size - position - 8} more")
        if data_type == MI_COMPRESSED:
            source = _InflatingSource(file, position + 8, length, where)
            inner_type, inner_length = walker.tag.unpack(source.read(8))
            if inner_type != MI_MATRIX:
                raise _Refused(f"the compressed {where} holds data type {inner_type}, not an array")
            walker.count_data(inner_length, where)
            source.set_limit(8 + inner_length)
            name = walker.variable(source, 8 + inner_length, where)
            source.finish()
        elif data_type == MI_MATRIX:
            walker.count_data(length, where)
            name = walker.variable(_FileSource(file, position + 8), position + 8 + length, where)
        else:
            raise _Refused(f"the {where} has data type {data_type}; expected an array (14) or compressed array (15)")
        if name in names:
            raise _Refused(f"two variables are named {name!r}")
        names.add(name)
        position += 8 + length


class _Source:
    """Reads a variable through a buffer; ``pos`` counts the bytes read or skipped."""

    def __init__(self):
        self.pos = 0
        self._buffer = b""
        self._offset = 0

    def _more(self, at_least):
        """At least ``at_least`` more bytes if there are that many, else all that remain."""
        raise NotImplementedError

    def read(self, n):
        """The next ``n`` bytes; raises ``_Refused`` when the variable ends first."""
        offset = self._offset
        if offset + n > len(self._buffer):
            self._buffer = self._buffer[offset:] + self._more(n - (len(self._buffer) - offset))
            offset = 0
            if n > len(self._buffer):
                raise _Refused(f"{self.label} ends {n - len(self._buffer)} bytes early, at {self.where(self.pos)}")
        self._offset = offset + n
        self.pos += n
        return self._buffer[offset : offset + n]


class _FileSource(_Source):
    """Reads an uncompressed variable; positions are offsets in the file."""

    label = "the file"

    def __init__(self, file, position):
        super().__init__()
        self.file = file
        self.pos = position
        file.seek(position)

    def _more(self, at_least):
        return self.file.read(max(at_least, _READ_AHEAD))

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
    """Reads a compressed variable's inflated data; positions are offsets in that data.

    Inflates at most ``limit`` + 1 bytes (``limit`` is set once the inner
    tag has declared the array's size), one chunk at a time.
    """

    def __init__(self, file, start, length, where):
        super().__init__()
        self.file = file
        self.start = start
        self.unread = length
        self.label = f"the compressed {where}"
        self.limit = 8 + 0xFFFFFFFF  # until the inner tag declares the array's size
        self._inflated = 0
        self._decompressor = zlib.decompressobj()
        self._flushed = False
        file.seek(start)

    def set_limit(self, limit):
        """Sets the most bytes to inflate; raises ``_Refused`` when more were inflated already."""
        self.limit = limit
        if self._inflated > limit:
            raise _Refused(f"{self.label} inflates to more than its array's {limit} bytes")

    def _inflate(self, most):
        """Up to ``most`` (>= 1) more inflated bytes; b"" at the end of the data."""
        most = max(1, min(most, self.limit + 1 - self._inflated))
        decompressor = self._decompressor
        while True:
            if decompressor.eof:
                return b""
            if decompressor.unconsumed_tail:
                out = decompressor.decompress(decompressor.unconsumed_tail, most)
            elif self.unread:
                block = self.file.read(min(self.unread, _INFLATE_CHUNK))
                if not block:
                    raise _Refused("the file ended early; it changed while it was read")
                self.unread -= len(block)
                out = decompressor.decompress(block, most)
            elif not self._flushed:
                # Some MATLAB files end a compressed variable without the
                # zlib end marker; loadmat accepts them, so this does too.
                self._flushed = True
                out = decompressor.flush()
            else:
                return b""
            if out:
                self._inflated += len(out)
                if self._inflated > self.limit:
                    raise _Refused(f"{self.label} inflates to more than its array's {self.limit} bytes")
                return out

    def _more(self, at_least):
        pieces, have = [], 0
        while have < at_least:
            out = self._inflate(max(at_least - have, _READ_AHEAD))
            if not out:
                break
            pieces.append(out)
            have += len(out)
        return b"".join(pieces)

    def skip(self, n):
        """Skips ``n`` inflated bytes; raises ``_Refused`` when the data ends first."""
        have = len(self._buffer) - self._offset
        if have >= n:
            self._offset += n
        else:
            self._buffer, self._offset = b"", 0
            remaining = n - have
            while remaining:
                out = self._inflate(min(remaining, _INFLATE_CHUNK))
                if not out:
                    raise _Refused(
                        f"{self.label} ends {remaining} bytes early, at {self.where(self.pos + n - remaining)}"
                    )
                remaining -= len(out)
        self.pos += n

    def finish(self):
        """Checks that nothing follows the array, reading the rest (and the zlib checksum); else raises ``_Refused``."""
        if len(self._buffer) > self._offset or self._inflate(1):
            raise _Refused(f"{self.label} holds data after its array")

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
    """Walks arrays; counts what loadmat would build against the module's limits.

    Labels of arrays are built only for messages (see ``_label``): the walk
    visits thousands of small arrays and should cost little next to loadmat.
    """

    def __init__(self, endian):
        self.endian = endian
        self.tag = struct.Struct(endian + "II")
        self.flags = struct.Struct(endian + "IIII")
        self.int32 = struct.Struct(endian + "i")
        self.data_bytes = 0
        self.values = 0
        self.characters = 0

    def count_data(self, length, where):
        """Adds ``length`` data bytes; raises ``_Refused`` (not damage) past ``MAX_DATA_BYTES`` in all."""
        self.data_bytes += length
        if self.data_bytes > MAX_DATA_BYTES:
            raise _Refused(
                f"the variables up to the {where} hold {self.data_bytes} bytes, more than the {MAX_DATA_BYTES} "
                "this reader accepts",
                damaged=False,
            )

    @staticmethod
    def _bad(source, position, problem):
        raise _Refused(f"{problem}, at {source.where(position)}")

    def _element(self, source, end, part, label):
        """Reads the tag of element ``part`` of array ``label``: (type, size, data of a small element or None)."""
        start = source.pos
        if end - start < 8:
            self._bad(source, start, f"{part}{_label(label)} is missing: its array ends {end - start} bytes later")
        raw = source.read(8)
        first, second = self.tag.unpack(raw)
        if first >> 16:
            length = first >> 16
            if length > 4:
                self._bad(source, start, f"{part}{_label(label)} is a small element of {length} bytes (at most 4)")
            return first & 0xFFFF, length, raw[4 : 4 + length]
        padded = second + (-second % 8)
        if padded > end - source.pos:
            over = padded - (end - source.pos)
            self._bad(source, start, f"{part}{_label(label)} of {second} bytes runs {over} bytes past its array")
        return first, second, None

    @staticmethod
    def _payload(source, length, small):
        if small is not None:
            return small
        data = source.read(length)
        if length % 8:
            source.skip(8 - length % 8)
        return data

    def variable(self, source, end, where):
        """Walks a top-level array whose content runs from ``source.pos`` to ``end``; returns its name."""
        return self._array(source, end, 1, where, top=True)

    def _matrix(self, source, end, depth, label):
        """Walks one miMATRIX element (tag and content) inside a cell or struct."""
        start = source.pos
        data_type, length, small = self._element(source, end, "", label)
        if small is not None or data_type != MI_MATRIX:
            self._bad(source, start, f"{_label(label)} has data type {data_type}; expected an array (14)")
        if length % 8:
            self._bad(source, start, f"{_label(label)} declares {length} bytes, not a multiple of 8")
        self._array(source, source.pos + length, depth, label)

    def _array(self, source, end, depth, label, top=False):
        """Walks an miMATRIX's content (flags, dimensions, name, values), which must end exactly at ``end``."""
        start = source.pos
        if start == end:
            return ""  # an empty array
        if depth > MAX_DEPTH:
            self._bad(source, start, f"{_label(label)} is nested more than {MAX_DEPTH} cells or structs deep")
        klass, flags = self._array_flags(source, end, label)
        dims = self._dimensions(source, end, label)
        name = self._name(source, end, label)
        if top:
            label = f"variable {name!r}"
        self._content(source, end, depth, label, (klass, flags, dims, start))
        if source.pos != end:
            self._bad(
                source,
                source.pos,
                f"{_label(label)} ({_shape(dims)}) ends {end - source.pos} bytes before its declared size",
            )
        return name

    def _array_flags(self, source, end, label):
        """(class, flags) from an array's 16-byte flags element; refuses classes this reader does not read."""
        start = source.pos
        if end - start < 16:
            self._bad(
                source, start, f"array flags of {_label(label)} are missing: its array ends {end - start} bytes later"
            )
        data_type, length, flags, _ = self.flags.unpack(source.read(16))
        if data_type != MI_UINT32 or length != 8:
            self._bad(
                source, start, f"array flags of {_label(label)} are not 8 bytes of type 6 (tag {data_type}, {length})"
            )
        klass = flags & 0xFF
        if klass in _REFUSED_CLASSES:
            problem = f"{_label(label)} is a MATLAB {_REFUSED_CLASSES[klass]} array, which this reader does not read"
            raise _Refused(problem, damaged=False)
        if klass not in MX_NUMERIC and klass not in (MX_CELL, MX_STRUCT, MX_CHAR):
            self._bad(source, start, f"{_label(label)} has array class {klass}, which MATLAB does not define")
        return klass, flags

    def _dimensions(self, source, end, label):
        """An array's dimensions: 2 to ``_MAX_DIMS`` non-negative int32 values."""
        at = source.pos
        data_type, length, small = self._element(source, end, "dimensions of ", label)
        if (
            small is not None
            or data_type not in (MI_INT32, MI_UINT32)
            or length % 4
            or not 8 <= length <= 4 * _MAX_DIMS
        ):
            self._bad(
                source,
                at,
                f"dimensions of {_label(label)} are {length} bytes of type {data_type}; expected 2 to "
                f"{_MAX_DIMS} int32 values",
            )
        dims = struct.unpack(f"{self.endian}{length // 4}i", self._payload(source, length, small))
        if min(dims) < 0:
            self._bad(source, at, f"{_label(label)} has a negative dimension: {_shape(dims)}")
        return dims

    def _name(self, source, end, label):
        """An array's name: at most ``_MAX_NAME`` bytes of printable ASCII."""
        at = source.pos
        data_type, length, small = self._element(source, end, "name of ", label)
        if data_type not in (MI_INT8, MI_UTF8) or length > _MAX_NAME:
            self._bad(
                source,
                at,
                f"name of {_label(label)} is {length} bytes of type {data_type}; expected at most "
                f"{_MAX_NAME} of type 1",
            )
        name = self._payload(source, length, small) if length else b""
        if name and not (name.isascii() and name.decode().isprintable()):
            self._bad(source, at, f"name of {_label(label)} holds bytes that are not printable ASCII: {name!r}")
        return name.decode()

    def _content(self, source, end, depth, label, header):
        """An array's values by its class: numbers, characters, cells or struct fields."""
        klass, flags, dims, start = header
        count = math.prod(dims)
        if klass in MX_NUMERIC:
            self._numeric(source, end, count, "", label, dims, klass)
            if flags & _COMPLEX_FLAG:
                self._numeric(source, end, count, "imaginary ", label, dims, klass)
        elif klass == MX_CHAR:
            self._char(source, end, count, label, dims)
        elif klass == MX_CELL:
            # Every cell takes at least an 8-byte tag; loadmat allocates all
            # cells before reading any.
            if count * 8 > end - source.pos:
                self._bad(
                    source,
                    start,
                    f"{_label(label)} is a {_shape(dims)} cell array, but the {end - source.pos} "
                    f"bytes left in it hold at most {(end - source.pos) // 8} cells",
                )
            self._count_values(source, start, count, label, dims, "cell")
            for i in range(count):
                self._matrix(source, end, depth + 1, (label, "{", i + 1))
        else:
            self._struct(source, end, depth, label, count, dims, start)

    def _count_values(self, source, position, count, label, dims, kind):
        self.values += count
        if self.values > MAX_VALUES:
            self._bad(
                source,
                position,
                f"{_label(label)} ({_shape(dims)} {kind}) brings the file's cells and struct "
                f"fields to more than {MAX_VALUES}",
            )

    def _numeric(self, source, end, count, part, label, dims, klass):
        at = source.pos
        data_type, length, small = self._element(source, end, f"{part}data of ", label)
        size = NUMERIC_SIZES.get(data_type)
        if size is None or length != count * size:
            what = f"{part}data of {_label(label)} ({_shape(dims)} {MX_NUMERIC[klass]})"
            if size is None:
                self._bad(source, at, f"{what} has data type {data_type}, which is not a numeric type")
            self._bad(source, at, f"{what} is {length} bytes; {count} values of type {data_type} take {count * size}")
        if small is None:
            source.skip(length + (-length % 8))

    def _char(self, source, end, count, label, dims):
        at = source.pos
        data_type, length, small = self._element(source, end, "characters of ", label)
        width = _CHAR_WIDTHS.get(data_type)
        if width is None or length % width or not count <= length <= 4 * count:
            what = f"characters of {_label(label)} ({_shape(dims)} char)"
            if width is None:
                self._bad(source, at, f"{what} have data type {data_type}, which is not a character type")
            self._bad(source, at, f"{what} are {length} bytes of type {data_type}")
        self.characters += count
        if self.characters > MAX_CHARACTERS:
            self._bad(source, at, f"{_label(label)} brings the file's characters to more than {MAX_CHARACTERS}")
        data = self._payload(source, length, small)
        # The characters loadmat decodes: 8-bit types as ASCII, UTF types as
        # named, uint16 by their low bytes as UTF-8 (loadmat's default codec);
        # it needs as many as the dimensions say.
        order = "le" if self.endian == "<" else "be"
        if data_type == MI_UINT16:
            data = data[(0 if order == "le" else 1) :: 2]
        codec = _CHAR_CODECS.get(data_type) or f"{'utf-16' if data_type == MI_UTF16 else 'utf-32'}-{order}"
        decoded = len(data) if codec == "ascii" else len(data.decode(codec, "replace"))
        if decoded != count:
            what = f"characters of {_label(label)} ({_shape(dims)} char)"
            self._bad(source, at, f"{what} decode to {decoded} characters, not {count}")

    def _struct(self, source, end, depth, label, count, dims, start):
        at = source.pos
        data_type, length, small = self._element(source, end, "field-name length of ", label)
        if data_type not in (MI_INT32, MI_UINT32) or length != 4:
            self._bad(
                source,
                at,
                f"field-name length of {_label(label)} is {length} bytes of type {data_type}; expected one int32",
            )
        slot = self.int32.unpack(self._payload(source, length, small))[0]
        if not 1 <= slot <= _MAX_FIELD_SLOT:
            self._bad(source, at, f"field-name length of {_label(label)} is {slot}; expected 1 to {_MAX_FIELD_SLOT}")
        at = source.pos
        data_type, length, small = self._element(source, end, "field names of ", label)
        if data_type not in (MI_INT8, MI_UTF8) or length % slot:
            self._bad(
                source,
                at,
                f"field names of {_label(label)} are {length} bytes of type {data_type}; expected "
                f"type 1 in slots of {slot} bytes",
            )
        raw = self._payload(source, length, small)
        fields = []
        for i in range(0, length, slot):
            name, nul, _ = raw[i : i + slot].partition(b"\0")
            if not (nul and _is_identifier(name)):
                self._bad(
                    source,
                    at,
                    f"field {len(fields) + 1} of {_label(label)} has no valid NUL-terminated name: "
                    f"{raw[i : i + slot]!r}",
                )
            name = name.decode()
            if name in fields:
                self._bad(source, at, f"{_label(label)} has two fields named {name!r}")
            fields.append(name)
        # Every field value takes at least an 8-byte tag; loadmat allocates
        # the whole struct array (one object per element and field) first.
        if count * len(fields) * 8 > end - source.pos:
            self._bad(
                source,
                start,
                f"{_label(label)} is a {_shape(dims)} struct array with {len(fields)} fields, "
                f"but the {end - source.pos} bytes left in it hold at most "
                f"{(end - source.pos) // 8} values",
            )
        self._count_values(source, start, count * max(1, len(fields)), label, dims, "struct")
        for i in range(count):
            element = (label, "(", f"{i + 1})") if count > 1 else label
            for name in fields:
                self._matrix(source, end, depth + 1, (element, ".", name))


def _is_identifier(name):
    """Whether ``name`` (bytes) is a MATLAB identifier: an ASCII letter, then letters, digits and underscores."""
    return name.isascii() and name[:1].isalpha() and (name.replace(b"_", b"") or b"x").isalnum()

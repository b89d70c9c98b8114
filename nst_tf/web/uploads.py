"""Uploads read from the page's form: each file bounded in bytes while it streams in, saved in the run's private
folder under a name the server makes (never the client's), then checked as an image from its header, its pixels
bounded before anything decodes them (Pillow's decompression-bomb guard, tighter). Each refusal is an
``UploadError`` with the HTTP status and a message the page shows.
"""

import os
import warnings

import PIL.Image

from ..ground.errors import NSTError

#: Chunks read from a part at a time, and the most bytes a text field may have.
_CHUNK = 64 * 1024
_FIELD_BYTES = 200
#: The form's text fields (the page's), and its file inputs.
FIELDS = (
    "preset",
    "size",
    "iterations",
    "alpha",
    "beta",
    "preserve_colors",
    "seed",
    "bundled_content",
    "bundled_style",
)
FILES = ("content", "style")


class UploadError(NSTError):
    """A refused upload or form: ``status`` (400, 413, ...) and the message."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


async def _read_bounded(part, most, what, sink=None):
    """Reads ``part`` in chunks, into ``sink`` (a binary file) or returned as bytes; ``UploadError`` 413 past
    ``most`` bytes."""
    size, chunks = 0, []
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size > most:
            raise UploadError(f"{what} is over {_amount(most)}; choose a smaller file", 413)
        if sink is None:
            chunks.append(chunk)
        else:
            sink.write(chunk)
    return size if sink is not None else b"".join(chunks)


def _amount(count):
    return f"{count / 2**20:g} MB" if count >= 2**16 else f"{count} bytes"


async def read_form(request, folder, limits):
    """The form of ``request``: ``(fields, content_path, style_paths)``, the text fields by name and the files
    saved in ``folder`` as ``content.upload`` and ``style-<n>.upload`` (None and [] where none was chosen)."""
    if not request.content_type.startswith("multipart/form-data"):
        raise UploadError("send the form as multipart/form-data (the page's Start button does)", 415)
    try:
        return await _read_parts(await request.multipart(), folder, limits)
    except NSTError:
        raise
    except (ValueError, AssertionError, LookupError) as error:  # aiohttp's multipart reader on a malformed body
        detail = " ".join(str(error).split())[:100]
        raise UploadError(f"the form's body is not valid multipart/form-data ({detail})") from None


async def _read_parts(reader, folder, limits):
    """``read_form``'s parts, from aiohttp's multipart ``reader``."""
    fields, content, styles = {}, None, []
    while (part := await reader.next()) is not None:
        name = part.name or ""
        if name not in FIELDS + FILES:
            raise UploadError(f"unknown field {name[:40]!r}; the form has {', '.join(FIELDS + FILES)}")
        if name in FILES and part.filename is not None:
            if name == "content" and content is not None or name == "style" and len(styles) >= limits.styles:
                raise UploadError(f"too many {name} images: one content photo and at most {limits.styles} styles")
            path = os.path.join(folder, "content.upload" if name == "content" else f"style-{len(styles)}.upload")
            what = "the content photo" if name == "content" else f"style image {len(styles) + 1}"
            with open(path, "xb") as sink:
                size = await _read_bounded(part, limits.upload_bytes, what, sink)
            if size == 0 and not part.filename:  # the browser sends an empty part for an empty file input
                os.remove(path)
            elif name == "content":
                content = path
            else:
                styles.append(path)
        elif name in fields or name in FILES:
            raise UploadError(f"the form has a repeated field, or a file field without a file: {name[:40]!r}")
        else:
            data = await _read_bounded(part, _FIELD_BYTES, f"the field {name[:40]!r}")
            fields[name] = data.decode("utf-8", "replace")
    return fields, content, styles


def check_image(path, what, limits):
    """Refuses (``UploadError``) a file at ``path`` that is not an image Pillow reads, or whose header claims
    more than ``limits.upload_pixels`` pixels; nothing is decoded here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(path) as image:
                width, height = image.size
    except (PIL.Image.DecompressionBombWarning, PIL.Image.DecompressionBombError):
        raise UploadError(f"{what} has too many pixels; at most {limits.upload_pixels:,}", 413) from None
    except Exception:  # noqa: BLE001 - any file Pillow cannot identify or parse is refused alike
        raise UploadError(f"{what} is not an image (a PNG, JPEG, WebP, ... file)", 400) from None
    if width * height > limits.upload_pixels:
        raise UploadError(
            f"{what} is {width}x{height} pixels ({width * height:,}); at most {limits.upload_pixels:,}", 413
        )

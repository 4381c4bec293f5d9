"""Photos lose their metadata on upload: a phone's JPEG carries EXIF with the GPS position where it was taken
(often the patient's home), the camera, the time and a thumbnail; PNGs can carry text and EXIF chunks too.

The strip is lossless (no pixel is decoded or re-encoded): JPEG segments and PNG chunks that can hold metadata
are dropped, and what the picture needs is kept (the colour profile; for a JPEG the orientation, written back as
a minimal EXIF block with that one tag, so a phone photo is not shown on its side). Anything after the image's
end (a phone's appended "multi-picture" images, which carry their own EXIF) is dropped too.
"""

from __future__ import annotations

import io
import struct

from PIL import Image, UnidentifiedImageError

from .errors import ChatError

_ORIENTATION_TAG = 0x0112
_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
# APP1 (EXIF, XMP), APP12 (camera "Ducky"/picture info), APP13 (Photoshop IRB, IPTC), COM (comments).
_JPEG_DROP = {0xE1, 0xEC, 0xED, 0xFE}
_JPEG_NO_LENGTH = {0x01, *range(0xD0, 0xD8)}  # TEM and the restart markers stand alone
# PNG chunks a picture needs to be shown as meant; everything else (tEXt, iTXt, zTXt, eXIf, tIME, ...) goes.
_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _unreadable() -> ChatError:
    return ChatError("attachment_type", "Bildet kunne ikke leses. Send det som JPEG eller PNG.")


def strip(data: bytes, content_type: str) -> bytes:
    """`data` (a sniffed image/jpeg or image/png) without its metadata, or ChatError if it is not well formed."""
    if content_type == "image/jpeg":
        return _strip_jpeg(data)
    if content_type == "image/png":
        return _strip_png(data)
    return data


def _orientation(data: bytes) -> int:
    try:
        image = Image.open(io.BytesIO(data))  # reads the headers only, no pixels
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise _unreadable() from None
    with image:
        try:
            value = image.getexif().get(_ORIENTATION_TAG, 1)
        except Exception:  # a malformed EXIF block: it is dropped anyway, the picture stays as stored
            value = 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orientation_segment(orientation: int) -> bytes:
    """APP1 with an EXIF block holding only the orientation (big-endian TIFF, one IFD entry)."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", _ORIENTATION_TAG, 3, 1, orientation, 0) + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def _strip_jpeg(data: bytes) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise _unreadable()
    orientation = _orientation(data)
    out = [data[:2]]
    if orientation != 1:
        out.append(_orientation_segment(orientation))
    pos = 2
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise _unreadable()
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            out.append(data[pos:pos + 2])
            pos += 2
            continue
        if marker == _EOI:
            out.append(data[pos:pos + 2])
            return b"".join(out)
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise _unreadable()
        if marker == _SOS:
            # Entropy-coded scans (and, in a progressive JPEG, the tables and scans between them) up to the
            # image's end: in coded data 0xFF is always followed by 0x00 or a restart marker, so the first
            # FF D9 is the end. Whatever follows it is dropped.
            eoi = data.find(b"\xff\xd9", end)
            if eoi < 0:
                raise _unreadable()
            out.append(data[pos:eoi + 2])
            return b"".join(out)
        if marker not in _JPEG_DROP and not (marker == 0xE2 and data[pos + 4:pos + 8] == b"MPF\x00"):
            out.append(data[pos:end])
        pos = end


def _strip_png(data: bytes) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise _unreadable()
    out = [_PNG_SIGNATURE]
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise _unreadable()
        if kind in _PNG_KEEP:
            out.append(data[pos:end])
        if kind == b"IEND":
            return b"".join(out)
        pos = end
    raise _unreadable()

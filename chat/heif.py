"""HEIC/HEIF photos (an iPhone's default) become JPEG on upload: browsers other than Safari cannot show HEIC.

Decoding is CPU work, so it runs in a worker thread (`asyncio.to_thread` in the attachment store). Limits:
the container's declared size is checked before any pixel is decoded (a small file can declare a huge image),
and the JPEG is at most MAX_EDGE on its long side, like the client's own scaling. The JPEG carries no EXIF or
XMP (no GPS position, camera or time): only the pixels are copied. HEIF's rotation is applied by the decoder,
so the JPEG needs no orientation tag.
"""

from __future__ import annotations

import io

import pillow_heif
from PIL import Image

from .errors import ChatError

# ISO BMFF major brands of still HEIF images (HEVC-coded: heic/heix; the generic mif1/msf1 too).
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
MAX_PIXELS = 50_000_000  # a 48 MP phone photo; anything larger is refused before decoding
MAX_EDGE = 2048
JPEG_QUALITY = 85


def is_heif(data: bytes) -> bool:
    return len(data) > 12 and data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def to_jpeg(data: bytes) -> bytes:
    """The photo as a JPEG without metadata, or ChatError (unreadable, too many pixels). Blocking: call it in a
    worker thread."""
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        width, height = heif.size
        if width * height > MAX_PIXELS:
            raise ChatError("attachment_too_large", "Bildet har for mange piksler.")
        decoded = heif.to_pillow()
    except ChatError:
        raise
    except Exception:  # libheif refuses malformed files with several exception types
        raise ChatError("attachment_type", "Bildet kunne ikke leses. Send det som JPEG.") from None
    decoded.thumbnail((MAX_EDGE, MAX_EDGE))
    clean = Image.new("RGB", decoded.size)  # a fresh image: none of the source's info (exif, xmp) comes along
    clean.paste(decoded.convert("RGB"))
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()

"""Photos are stored without their metadata: a phone JPEG's EXIF (GPS position, camera, time, thumbnail), its
comments and appended images, and a PNG's text and EXIF chunks are gone; the pixels are unchanged (lossless)
and a JPEG keeps its orientation. Real images made with Pillow; the store path on real Redis."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image

from chat.errors import ChatError
from chat.photo_metadata import strip

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def picture() -> Image.Image:
    image = Image.new("RGB", (64, 48), (200, 40, 40))
    for x in range(16):
        for y in range(12):
            image.putpixel((x, y), (20, 200, 60))  # a marker in one corner
    return image


def phone_jpeg(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"  # camera make
    exif[0x0132] = "2026:11:30 08:15:00"  # when
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (59.0, 54.0, 30.0)  # Oslo
    gps[3], gps[4] = "E", (10.0, 45.0, 12.0)
    out = io.BytesIO()
    picture().save(out, "JPEG", exif=exif, quality=95, comment=b"Storgata 1, Oslo")
    return out.getvalue()


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


def test_a_phone_jpeg_loses_gps_camera_time_and_comment_but_keeps_its_pixels_and_orientation() -> None:
    original = phone_jpeg(orientation=6)
    with Image.open(io.BytesIO(original)) as image:  # the test image really carries what must go
        assert image.getexif().get_ifd(GPS_IFD) and image.info.get("comment")
    stripped = strip(original, "image/jpeg")
    assert b"Storgata" not in stripped and b"PhoneMaker" not in stripped and b"2026:11:30" not in stripped
    with Image.open(io.BytesIO(stripped)) as image:
        exif = image.getexif()
        assert not exif.get_ifd(GPS_IFD)
        assert dict(exif) == {ORIENTATION: 6}  # only the orientation is left
        assert "comment" not in image.info
    assert pixels(stripped) == pixels(original)  # no re-encoding


def test_an_upright_jpeg_gets_no_exif_at_all_and_appended_images_are_dropped() -> None:
    original = phone_jpeg(orientation=1) + phone_jpeg(orientation=1)  # a second image after the end
    stripped = strip(original, "image/jpeg")
    with Image.open(io.BytesIO(stripped)) as image:
        assert dict(image.getexif()) == {}
    assert stripped.count(b"\xff\xd8") == 1 and stripped.endswith(b"\xff\xd9")
    assert pixels(stripped) == pixels(phone_jpeg(orientation=1))


def test_a_progressive_jpeg_is_kept_whole() -> None:
    out = io.BytesIO()
    picture().save(out, "JPEG", progressive=True, quality=90, exif=Image.Exif().tobytes())
    stripped = strip(out.getvalue(), "image/jpeg")
    assert pixels(stripped) == pixels(out.getvalue())


def test_a_png_loses_text_time_and_exif_chunks_and_keeps_its_pixels() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Location", "Storgata 1, Oslo")
    info.add_itxt("Author", "Kari Nordmann")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    picture().save(out, "PNG", pnginfo=info, exif=exif)
    original = out.getvalue()
    assert b"tEXt" in original and b"iTXt" in original and b"eXIf" in original
    stripped = strip(original, "image/png")
    for gone in (b"tEXt", b"iTXt", b"eXIf", b"Storgata", b"Kari", b"PhoneMaker"):
        assert gone not in stripped
    assert pixels(stripped) == pixels(original)


@pytest.mark.parametrize(("data", "content_type"), [
    (b"\xff\xd8\xff\xe0\x00", "image/jpeg"),  # cut inside a segment header
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 4, "image/jpeg"),  # a segment longer than the file
    (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR", "image/png"),  # cut inside a chunk
    (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x00IDAT" + zlib.crc32(b"IDAT").to_bytes(4, "big"), "image/png"),  # no IEND
])
def test_a_broken_image_is_refused_cleanly(data: bytes, content_type: str) -> None:
    with pytest.raises(ChatError) as refused:
        strip(data, content_type)
    assert refused.value.code == "attachment_type"


async def test_a_phone_jpeg_sent_in_the_chat_is_stored_and_served_without_its_gps(chat_app, joined) -> None:
    from tests.conftest import bearer

    pair, doctor, citizen = joined
    photo = phone_jpeg(orientation=6)
    ack = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "jpeg-1", "data": photo,
                                            "name": "IMG_0002.jpg"}, wait_s=30)
    assert ack["ok"], ack
    [msg] = await doctor.wait_for("message")
    r = await chat_app.get(f"/api/v1/consultations/{pair.cid}/attachments/{msg['attachment']['id']}",
                           headers=bearer(pair.doctor))
    assert r.status == 200 and r.content_type == "image/jpeg"
    body = await r.read()
    for secret in (b"Storgata", b"PhoneMaker", b"2026:11:30"):
        assert secret not in body, secret
    with Image.open(io.BytesIO(body)) as served:
        assert dict(served.getexif()) == {ORIENTATION: 6}
    assert pixels(body) == pixels(photo)
    assert ack["attachment"]["size"] == len(body)  # the quota counts what is stored


def test_a_jpeg_declaring_a_huge_picture_or_a_broken_exif_is_handled_without_decoding() -> None:
    import struct

    huge = phone_jpeg(orientation=1)
    at = huge.index(b"\xff\xc0")  # the frame header: height and width after length and precision
    huge = huge[:at + 5] + struct.pack(">HH", 65000, 65000) + huge[at + 9:]
    with pytest.raises(ChatError):
        strip(huge, "image/jpeg")
    broken = phone_jpeg(orientation=6)
    at = broken.index(b"Exif\x00\x00") + 6
    broken = broken[:at] + b"XX" + broken[at + 2:]  # not a TIFF byte order: the EXIF block cannot be read
    stripped = strip(broken, "image/jpeg")
    assert b"PhoneMaker" not in stripped and pixels(stripped) == pixels(phone_jpeg(orientation=6))

"""An iPhone's HEIC photo is accepted and stored as a JPEG without its metadata (no GPS position)."""

from __future__ import annotations

import io

import pillow_heif
from PIL import Image

from chat import heif
from tests.conftest import bearer

GPS_IFD = 0x8825


def heic_photo(width: int = 96, height: int = 64) -> bytes:
    """A real HEIC: left half red, right half blue (the markers), with EXIF naming a camera and a GPS position."""
    img = Image.new("RGB", (width, height), (220, 20, 20))
    img.paste((20, 20, 220), (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = "iPhone 15"  # Model
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (59.0, 54.0, 40.0), 3: "E", 4: (10.0, 45.0, 10.0)})
    out = io.BytesIO()
    pillow_heif.from_pillow(img).save(out, quality=90, exif=exif.tobytes())
    return out.getvalue()


def near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


async def test_a_heic_photo_is_stored_as_a_jpeg_without_exif_or_gps(chat_app, joined):
    pair, doctor, citizen = joined
    photo = heic_photo()
    assert heif.is_heif(photo) and b"Exif" in photo and b"iPhone 15" in photo  # the test file has it all
    ack = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "heic-1", "data": photo,
                                            "name": "IMG_0001.HEIC"}, wait_s=30)
    assert ack["ok"], ack
    att = ack["attachment"]
    assert att["content_type"] == "image/jpeg" and att["name"] == "IMG_0001.jpg"
    [msg] = await doctor.wait_for("message")
    assert msg["attachment"]["id"] == att["id"]

    r = await chat_app.get(f"/api/v1/consultations/{pair.cid}/attachments/{att['id']}",
                           headers=bearer(pair.doctor))
    assert r.status == 200 and r.content_type == "image/jpeg"
    body = await r.read()
    assert body.startswith(b"\xff\xd8\xff")
    for secret in (b"Exif", b"iPhone 15", b"Apple", b"http://ns.adobe.com/xap"):
        assert secret not in body, secret
    jpeg = Image.open(io.BytesIO(body))
    assert jpeg.format == "JPEG" and jpeg.size == (96, 64)
    assert not jpeg.getexif() and "xmp" not in jpeg.info
    rgb = jpeg.convert("RGB")
    assert near(rgb.getpixel((10, 32)), (220, 20, 20)) and near(rgb.getpixel((85, 32)), (20, 20, 220))


async def test_a_large_heic_is_scaled_down_and_a_broken_or_huge_one_refused(joined, monkeypatch):
    pair, _doctor, citizen = joined
    monkeypatch.setattr(heif, "MAX_EDGE", 40)
    ok = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "h-small",
                                           "data": heic_photo(), "name": "a.heic"}, wait_s=30)
    assert ok["ok"], ok
    broken = heic_photo()[:40] + b"\x00" * 400  # a HEIF header, then nothing decodable
    bad = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "h-bad", "data": broken})
    assert bad["error"] == "attachment_type"
    monkeypatch.setattr(heif, "MAX_PIXELS", 96 * 64 - 1)  # refused from the declared size, before decoding
    huge = await citizen.call("attachment", {"consultation_id": pair.cid, "client_id": "h-huge",
                                             "data": heic_photo(), "name": "b.heic"}, wait_s=30)
    assert huge["error"] == "attachment_too_large"
    assert (await citizen.send(pair.cid, "fortsatt her"))["ok"]


def test_the_jpeg_is_at_most_max_edge_on_its_long_side(monkeypatch):
    monkeypatch.setattr(heif, "MAX_EDGE", 48)
    assert Image.open(io.BytesIO(heif.to_jpeg(heic_photo()))).size == (48, 32)

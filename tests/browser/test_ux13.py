"""Issue 13 leftovers in real Chromium: continue by phone from the waiting room, upload progress in bytes,
HEIC photos. (200 % text on the dashboard: test_patient_experience.py; the notification tap:
test_turn_notification_sw.py.)"""

from __future__ import annotations

import io
import os
import struct
import zlib
from typing import Any

import pillow_heif
import pytest
from PIL import Image

from .conftest import dev_login, screen, shoot
from .test_patient_experience import REFUSE_MEDIA, doctor_takes, queue_citizen

THEIR_PHOTO = "#chat-log .msg-theirs .photo-thumb"
MY_PHOTO = "#chat-log .msg-mine .photo-thumb"

pytestmark = pytest.mark.browser


async def _dashboard(pages: Any, base: str, service: str = "legevakt") -> Any:
    doctor = await pages.open(base + "/")
    await dev_login(doctor, "clinician", "Dr. Kanal")
    await doctor.select_option("#service-select", service)
    return doctor


# --- continue by phone ------------------------------------------------------------------------------

async def test_a_waiting_citizen_continues_by_phone_and_keeps_the_place(server, pages) -> None:
    base, _ = server
    await queue_citizen(pages, base, "Først I Kø", channel="chat")
    citizen = await queue_citizen(pages, base, "Vil Bli Ringt", init=REFUSE_MEDIA)
    await citizen.locator("#queue-position").get_by_text("nummer 2").wait_for()
    doctor = await _dashboard(pages, base)
    row = doctor.locator("#queue-table tbody tr", has_text="Vil Bli Ringt")
    await row.locator(".channel-cell[data-channel=video]").get_by_text("Video").wait_for(timeout=10_000)
    assert await row.locator("svg.channel-icon[data-icon=video]").count() == 1

    # the camera is refused: the help box offers the phone instead of the legevakt number
    await citizen.click("#precall-start")
    await citizen.click("#media-help-phone")
    field = citizen.locator("#switch-phone")
    assert await field.evaluate("e => e === document.activeElement")
    await citizen.click("#switch-phone-submit")  # no number yet: told so, nothing sent
    await citizen.locator("#switch-phone-error").get_by_text("telefonnummeret").wait_for()
    assert await field.get_attribute("aria-invalid") == "true"
    await field.fill("912 34 567")
    await screen(citizen, "waiting-switch-to-phone")
    await citizen.click("#switch-phone-submit")

    await citizen.locator("#we-will-call").get_by_text("912 34 567").wait_for()
    assert await citizen.locator("#precall-start").count() == 0  # the camera check is gone
    assert await citizen.locator(".phone-switch:visible").count() == 0
    await citizen.locator("#queue-position").get_by_text("nummer 2").wait_for()  # same place
    await screen(citizen, "waiting-switched-to-phone")

    # the clinician's dashboard shows the new channel and number (it polls every 3 s)
    phone_cell = row.locator(".channel-cell[data-channel=phone]")
    await phone_cell.get_by_text("Telefon").wait_for(timeout=10_000)
    assert await phone_cell.locator("svg.channel-icon[data-icon=phone]").count() == 1
    assert "912 34 567" in await phone_cell.inner_text()
    assert await doctor.locator("#queue-table tbody tr").nth(1).get_attribute("data-ticket") == \
        await row.get_attribute("data-ticket")  # still second in line
    await screen(doctor, "dashboard-channel-phone")


async def test_the_switch_is_offered_in_the_chat_waiting_room_with_the_number_given_at_join(server, pages) -> None:
    base, _ = server
    citizen = await pages.open(base + "/", phone=True)
    await dev_login(citizen, "citizen", "Har Nummer")
    await citizen.goto(f"{base}/#/join/oslo/legevakt")
    await citizen.check("#ch-chat")
    await citizen.fill("#callback-phone", "+47 41 23 45 67")
    await citizen.fill("#reason", "Hoste")
    await citizen.click("#main form button[type=submit]")
    await citizen.click("#switch-to-phone")
    assert await citizen.input_value("#switch-phone") == "+47 41 23 45 67"  # confirm, not type again
    await citizen.click("#switch-phone-submit")
    await citizen.locator("#we-will-call").get_by_text("+47 41 23 45 67").wait_for()


# --- photos: progress in bytes, HEIC ------------------------------------------------------------------

def noise_png(width: int, height: int) -> bytes:
    """A PNG of random pixels: it does not compress, so its size is about width * height * 3 bytes."""
    raw = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


async def _chatting(pages: Any, base: str, name: str) -> tuple[Any, Any]:
    citizen = await queue_citizen(pages, base, name, channel="chat")
    doctor = await doctor_takes(pages, base)
    await citizen.locator("#chat-state").get_by_text("tilkoblet").wait_for(timeout=15_000)
    await doctor.locator("#chat-state").get_by_text("tilkoblet").wait_for(timeout=15_000)
    return citizen, doctor


PROGRESS = """() => {
  const p = document.querySelector('#photo-progress');
  const text = document.querySelector('.photo-progress-text');
  return p && {value: p.value, now: p.getAttribute('aria-valuenow'), valuetext: p.getAttribute('aria-valuetext'),
               text: text.textContent};
}"""


async def test_photo_upload_progress_counts_megabytes_over_a_slow_uplink(server, pages, tmp_path) -> None:
    base, _ = server
    citizen, doctor = await _chatting(pages, base, "Treg Opplasting")
    photo = noise_png(1100, 1000)
    total_mb = f"{len(photo) / (1024 * 1024):.1f}".replace(".", ",")
    assert len(photo) > 3 * 1024 * 1024
    path = tmp_path / "saar.png"
    path.write_bytes(photo)
    cdp = await citizen.context.new_cdp_session(citizen)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", {  # a slow mobile uplink: 256 KB/s, about 13 s
        "offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 256 * 1024})

    await citizen.set_input_files("#photo-file", str(path))
    seen: list[dict[str, Any]] = []
    shot = False
    for _ in range(900):  # until it is sent (the page's own upload timeout is 60 s)
        state = await citizen.evaluate(PROGRESS)
        if state is None:
            if seen:
                break
        else:
            seen.append(state)
            if not shot and 0 < state["value"] < 100:
                await shoot(citizen, "chat-photo-progress")
                shot = True
        await citizen.wait_for_timeout(100)
    during = [s for s in seen if 0 < s["value"] < 100]
    # It moves from 0 while sending, never back. In steps as coarse as Chromium hands the WebSocket frame to the
    # network (seen: 3 % at once, then nothing for seconds, then 27 % or straight to done).
    assert seen[0]["value"] == 0 and during, [(s["value"], s["text"]) for s in seen]
    values = [s["value"] for s in seen]
    assert values == sorted(values), values
    mid = during[len(during) // 2]
    assert mid["text"].endswith(f" av {total_mb} MB sendt") and "," in mid["text"].split(" av ")[0], mid
    assert mid["now"] == str(int(mid["value"])) and mid["valuetext"] == f"Bildet er {int(mid['value'])} prosent sendt"
    await citizen.locator(MY_PHOTO).wait_for(timeout=30_000)
    await doctor.wait_for_function(f"() => document.querySelector('{THEIR_PHOTO}')?.naturalWidth === 1100",
                                   timeout=30_000)


def heic_marker_photo() -> bytes:
    """A real HEIC (left half red, right half blue) with EXIF that must not reach the clinician."""
    img = Image.new("RGB", (120, 80), (220, 20, 20))
    img.paste((20, 20, 220), (60, 0, 120, 80))
    exif = Image.Exif()
    exif[0x0110] = "iPhone 15"
    out = io.BytesIO()
    pillow_heif.from_pillow(img).save(out, quality=90, exif=exif.tobytes())
    return out.getvalue()


PIXELS = """(sel) => {
  const img = document.querySelector(sel);
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const at = (x) => [...g.getImageData(x, Math.floor(c.height / 2), 1, 1).data].slice(0, 3);
  return {w: c.width, left: at(10), right: at(c.width - 10)};
}"""


async def test_an_iphone_heic_photo_arrives_as_a_picture_on_both_sides(server, pages, tmp_path) -> None:
    base, _ = server
    citizen, doctor = await _chatting(pages, base, "Iphone Bruker")
    path = tmp_path / "IMG_0042.HEIC"
    path.write_bytes(heic_marker_photo())
    await citizen.set_input_files("#photo-file", str(path))
    for page, sel in ((doctor, THEIR_PHOTO), (citizen, MY_PHOTO)):  # the sender sees the server's JPEG too
        await page.wait_for_function(f"() => document.querySelector('{sel}')?.naturalWidth === 120", timeout=20_000)
        px = await page.evaluate(PIXELS, sel)
        assert px["left"][0] > 170 and px["left"][2] < 80, px
        assert px["right"][2] > 170 and px["right"][0] < 80, px
    assert await citizen.locator("#photo-error").inner_text() == ""
    await screen(doctor, "chat-heic-photo")


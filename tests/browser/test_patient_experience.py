"""What patients and clinicians notice (issue 13) in real Chromium: the turn alert, presence on the tiles,
photos in the chat both ways, confirmations before leaving and the way back, guidance when the camera is
refused, the clinician's context and knock popup, invalid invite links, 200 % text at 390 px, nynorsk."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest
from aiohttp import ClientSession

from .conftest import dev_login, has_route, screen, shoot, slug
from .media_checks import frames_decoded, wait_for_more_frames

pytestmark = pytest.mark.browser

SIGNAL = "/api/v1/consultations/{consultation_id}/signal"
PHONE_390 = {"width": 390, "height": 844}

# Records what the page asks of the browser's alert APIs (a real Notification needs a desktop session).
RECORD_ALERTS = """(() => {
  window.__alerts = {notifications: [], vibrations: [], tones: 0, wakeLocks: 0, titles: new Set()};
  class FakeNotification {
    static permission = 'default';
    static async requestPermission() { FakeNotification.permission = 'granted'; return 'granted'; }
    constructor(title, opts) { window.__alerts.notifications.push({title, body: opts && opts.body}); }
    close() {}
  }
  window.Notification = FakeNotification;
  navigator.vibrate = (p) => { window.__alerts.vibrations.push(p); return true; };
  const osc = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () { window.__alerts.tones++; return osc.call(this); };
  Object.defineProperty(navigator, 'wakeLock', {value: {request: async () => {
    window.__alerts.wakeLocks++; return {release: async () => {}};
  }}});
  setInterval(() => window.__alerts.titles.add(document.title), 100);
})();"""

# getUserMedia refused the way a browser does when the user clicked "Block".
REFUSE_MEDIA = """(() => {
  window.__gum = 0;
  navigator.mediaDevices.getUserMedia = async () => {
    window.__gum++;
    throw new DOMException('Permission denied', 'NotAllowedError');
  };
})();"""

THEIR_PHOTO = "#chat-log .msg-theirs .photo-thumb"
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth + 1"
WIDER_THAN_SCREEN = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > innerWidth + 1 && e.getClientRects().length)
    .slice(0, 8).map(e => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A one-colour PNG (the colour is the marker the receiver checks)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


async def api_token(base: str, role: str, name: str, tenant: str = "oslo") -> str:
    async with ClientSession() as http, http.post(f"{base}/api/v1/dev/token", json={
            "sub": f"{role}-{slug(name)}", "role": role, "tenant": tenant, "name": name}) as resp:
        return (await resp.json())["token"]


async def take_next(base: str, token: str, service: str) -> dict[str, Any]:
    async with ClientSession() as http, http.post(
            f"{base}/api/v1/tenants/oslo/services/{service}/queue/take",
            headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def queue_citizen(pages: Any, base: str, name: str, *, service: str = "legevakt", channel: str = "video",
                        init: str | None = None, locale: str = "nb-NO") -> Any:
    page = await pages.open(base + "/", phone=True, locale=locale)
    if init:
        await page.add_init_script(init)
        await page.reload()
    await dev_login(page, "citizen", name)
    await page.goto(f"{base}/#/join/oslo/{service}")
    await page.check(f"#ch-{channel}")
    await page.fill("#reason", "Utslett på armen")
    await page.click("#main form button[type=submit]")
    await page.locator("#queue-position").wait_for()
    await page.wait_for_function("() => /\\d/.test(document.querySelector('#queue-position').textContent)")
    return page


async def doctor_takes(pages: Any, base: str, service: str = "legevakt") -> Any:
    doctor = await pages.open(base + "/")
    await dev_login(doctor, "clinician", "Dr. Lege")
    await doctor.select_option("#service-select", service)
    await doctor.locator("#queue-table tbody tr").first.wait_for()
    await doctor.click("#take-next")
    await doctor.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    return doctor


@pytest.fixture
async def media_server(start_app):  # type: ignore[no-untyped-def]
    base, app = await start_app(signal_drop_grace_s=6.0)
    if not has_route(app, SIGNAL):
        pytest.skip("the signaling WebSocket is not wired into the app")
    return base, app


# --- 1: the turn alert ------------------------------------------------------------------------------

async def test_called_citizen_gets_sound_vibration_notification_and_blinking_title(server, pages) -> None:
    base, _ = server
    citizen = await queue_citizen(pages, base, "Vera Venter", channel="chat", init=RECORD_ALERTS)
    # The waiting room asks for notifications with the reason, on a click; the screen is kept on.
    await citizen.get_by_text("Når legen er klar, spiller siden en lyd").wait_for()
    assert await citizen.evaluate("() => window.__alerts.wakeLocks") >= 1
    await citizen.click("#enable-alerts")
    await citizen.locator("#alerts-state").get_by_text("Varsler er på").wait_for()
    assert await citizen.locator("#enable-alerts").is_hidden()
    # "ring 113" is a tappable tel: link; a chat-only waiting room has no camera or microphone check.
    assert await citizen.locator("#main a#call-113[href='tel:113']").count() == 1
    assert await citizen.locator("#precall-start").count() == 0
    await screen(citizen, "waiting-alerts")
    assert await citizen.evaluate("() => window.__alerts.notifications.length") == 0

    doctor = await api_token(base, "clinician", "Dr. Varsel")
    await take_next(base, doctor, "legevakt")
    await citizen.wait_for_function("() => window.__alerts.notifications.length === 1", timeout=10_000)
    alerts = await citizen.evaluate("() => ({...window.__alerts, titles: [...window.__alerts.titles]})")
    assert alerts["notifications"][0]["title"] == "Det er din tur!"
    assert alerts["vibrations"] and alerts["vibrations"][0][0] > 0
    assert alerts["tones"] >= 3
    await citizen.wait_for_function("() => window.__alerts.titles.has('Det er din tur!')", timeout=5_000)
    await citizen.wait_for_function("() => location.hash.startsWith('#/room/')", timeout=10_000)


async def test_called_for_a_phone_consultation_alerts_too(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/", phone=True)
    await page.add_init_script(RECORD_ALERTS)
    await page.reload()
    await dev_login(page, "citizen", "Telefon Tone")
    await page.goto(f"{base}/#/join/oslo/legevakt")
    await page.check("#ch-phone")
    await page.fill("#callback-phone", "912 34 567")
    await page.fill("#reason", "Hoste")
    await page.click("#main form button[type=submit]")
    await page.locator("#queue-position").get_by_text("nummer 1").wait_for()
    await take_next(base, await api_token(base, "clinician", "Dr. Ring"), "legevakt")
    await page.get_by_text("Legen ringer deg nå.").wait_for(timeout=10_000)
    await page.wait_for_function("() => window.__alerts.tones >= 3 && window.__alerts.vibrations.length > 0")


async def test_a_citizen_who_gave_a_number_gets_an_sms_when_called(start_app, sms_webhook, pages) -> None:
    url, sent = sms_webhook
    base, _ = await start_app(sms_webhook_url=url)
    page = await pages.open(base + "/", phone=True)
    await dev_login(page, "citizen", "Sms Varsel")
    await page.goto(f"{base}/#/join/oslo/legevakt")
    await page.check("#ch-chat")
    await page.get_by_text("Mobilnummer for SMS når det er din tur (valgfritt)").wait_for()
    await page.fill("#callback-phone", "+47 912 34 567")
    await page.fill("#reason", "Sår hals")
    await page.click("#main form button[type=submit]")
    await page.locator("#queue-position").get_by_text("nummer 1").wait_for()
    assert sent == []
    await take_next(base, await api_token(base, "clinician", "Dr. Sms"), "legevakt")
    for _ in range(100):  # the SMS goes out beside take-next, not before its answer: wait for it
        if sent:
            break
        await page.wait_for_timeout(100)
    assert len(sent) == 1 and sent[0]["to"] == "+47 912 34 567"
    assert "din tur" in sent[0]["text"] and "Sår hals" not in sent[0]["text"]


# --- 5: leaving asks first ---------------------------------------------------------------------------

async def test_leaving_the_queue_asks_first_and_no_keeps_the_place(server, pages) -> None:
    base, _ = server
    citizen = await queue_citizen(pages, base, "Nøl Nølesen", channel="chat")
    await citizen.click("#leave-queue")
    dialog = citizen.locator("#leave-queue-dialog")
    await dialog.get_by_text("Du mister plassen din i køen").wait_for()
    await screen(citizen, "leave-queue-confirm")
    await citizen.click("#leave-queue-dialog-no")
    await dialog.wait_for(state="detached")
    assert "#/wait/" in citizen.url
    await citizen.locator("#queue-position").get_by_text("nummer 1").wait_for()
    # Escape is "no" as well.
    await citizen.click("#leave-queue")
    await dialog.wait_for()
    await citizen.keyboard.press("Escape")
    await dialog.wait_for(state="detached")
    assert "#/wait/" in citizen.url
    await citizen.click("#leave-queue")
    await citizen.click("#leave-queue-dialog-yes")
    await citizen.wait_for_function("() => location.hash === '#/services'")


async def test_leaving_the_consultation_asks_first_and_the_patient_can_rejoin(server, pages) -> None:
    base, _ = server
    citizen = await queue_citizen(pages, base, "Rita Retur", channel="chat")
    doctor = await doctor_takes(pages, base)
    await citizen.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await citizen.click("#leave-call")
    await citizen.locator("#leave-dialog").get_by_text("Du kan komme tilbake").wait_for()
    await citizen.click("#leave-dialog-no")
    await citizen.locator("#leave-dialog").wait_for(state="detached")
    assert "#/room/" in citizen.url
    await citizen.click("#leave-call")
    await citizen.click("#leave-dialog-yes")
    await citizen.get_by_role("heading", name="Du har forlatt samtalen").wait_for()
    await citizen.locator("#still-on").get_by_text("pågår fortsatt").wait_for()
    await screen(citizen, "left-rejoin")
    await doctor.locator("#presence-notice").get_by_text("Rita Retur har forlatt konsultasjonen.").wait_for(
        timeout=10_000)
    await citizen.click("#rejoin")
    await citizen.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await doctor.locator("#participants").get_by_text("Rita Retur").wait_for(timeout=10_000)
    # Once the consultation has ended there is nothing to rejoin.
    await doctor.click("#end-consultation")
    await doctor.click("#confirm-end")
    await citizen.get_by_role("heading", name="Konsultasjonen er avsluttet").wait_for(timeout=15_000)
    assert await citizen.locator("#rejoin").is_hidden()


# --- 2 and 6: presence, and camera/microphone refused -------------------------------------------------

async def test_doctor_sees_the_patient_drop_with_a_countdown_then_leave(media_server, pages) -> None:
    base, _ = media_server
    citizen = await queue_citizen(pages, base, "Dina Drop")
    doctor = await doctor_takes(pages, base)
    await citizen.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    row = doctor.locator("#participants li", has_text="Dina Drop")
    await row.locator(".presence-connected").wait_for(timeout=10_000)
    tile = doctor.locator("#remote-videos [data-participant]").first
    await tile.wait_for(timeout=15_000)

    # The patient's page goes away (phone locked, tab closed): within 3 s the doctor sees it.
    await citizen.close()
    await row.get_by_text("Mistet forbindelsen").wait_for(timeout=3_000)
    await doctor.locator("#remote-videos .badge-reconnecting").first.wait_for(timeout=3_000)
    first = await row.locator(".presence-reconnecting").inner_text()
    await screen(doctor, "presence-reconnecting")
    await doctor.wait_for_function(
        "(t) => { const el = document.querySelector('#participants .presence-reconnecting');"
        " return !el || el.textContent !== t; }", arg=first, timeout=5_000)  # the countdown runs
    # After the grace period: a banner says so, the tile and the row are gone.
    await doctor.locator("#presence-notice").get_by_text("Dina Drop mistet forbindelsen").wait_for(timeout=15_000)
    await row.wait_for(state="detached")
    assert await doctor.locator("#remote-videos [data-participant]").count() == 0
    await screen(doctor, "presence-left")


# A real network drop (the patient's link taken down): tests/browser/test_network_drop.py.


async def test_refused_camera_gets_guidance_and_the_doctor_sees_camera_and_microphone_off(media_server, pages) -> None:
    base, _ = media_server
    citizen = await queue_citizen(pages, base, "Blokk Kamera", init=REFUSE_MEDIA)
    await citizen.click("#precall-start")
    await citizen.locator("#check-camera.fail").get_by_text("ikke gitt tilgang").wait_for()
    await citizen.locator("#check-microphone.fail").wait_for()  # answered too, never left on "Sjekker"
    help_ = citizen.locator("#media-help")
    await help_.get_by_text("Kamera og mikrofon er blokkert").wait_for()
    assert "Chrome" in await help_.inner_text()
    assert "chatten" in await help_.inner_text()
    assert await help_.locator("#media-help-phone").get_by_text("Ring meg heller").count() == 1  # keeps the place
    assert "NotAllowedError" not in await citizen.locator("#main").inner_text()
    await screen(citizen, "precall-refused")

    doctor = await doctor_takes(pages, base)
    await citizen.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await citizen.locator("#media-help").wait_for()
    assert await citizen.locator("#camera").is_disabled()
    tile = doctor.locator("#remote-videos .tile-placeholder", has_text="Blokk Kamera")
    await tile.get_by_text("Kamera av").wait_for(timeout=10_000)
    await tile.get_by_text("Mikrofon av").wait_for()
    row = doctor.locator("#participants li", has_text="Blokk Kamera")
    await row.get_by_text("Kamera av").wait_for()
    await screen(doctor, "room-patient-camera-off")
    await screen(citizen, "room-camera-refused")


async def test_muting_shows_on_the_other_side(media_server, pages) -> None:
    base, _ = media_server
    citizen = await queue_citizen(pages, base, "Stille Pasient")
    doctor = await doctor_takes(pages, base)
    await citizen.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    row = doctor.locator("#participants li", has_text="Stille Pasient")
    await row.wait_for(timeout=10_000)
    assert await row.get_by_text("Mikrofon av").count() == 0
    await citizen.click("#mute")
    await row.get_by_text("Mikrofon av").wait_for(timeout=5_000)
    await citizen.click("#camera")
    await row.get_by_text("Kamera av").wait_for(timeout=5_000)
    await doctor.locator("#remote-videos .tile", has_text="Stille Pasient").get_by_text("Kamera av").wait_for()
    await citizen.click("#mute")
    await row.get_by_text("Mikrofon av").wait_for(state="detached", timeout=5_000)


# --- 4: photos in the chat ----------------------------------------------------------------------------

async def _pixel(page: Any, selector: str) -> list[int]:
    return await page.evaluate("""(sel) => {
        const img = document.querySelector(sel);
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d');
        g.drawImage(img, 0, 0);
        return [...g.getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data].slice(0, 3);
    }""", selector)


async def test_a_photo_travels_both_ways_and_opens_full_size(server, pages, tmp_path) -> None:
    base, _ = server
    citizen = await queue_citizen(pages, base, "Foto Pasient", channel="chat")
    doctor = await doctor_takes(pages, base)
    await citizen.locator("#chat-state").get_by_text("tilkoblet").wait_for(timeout=15_000)
    await doctor.locator("#chat-state").get_by_text("tilkoblet").wait_for(timeout=15_000)
    camera_input = citizen.locator("#photo-camera")
    assert await camera_input.get_attribute("accept") == "image/*"
    assert await camera_input.get_attribute("capture") is not None

    red = tmp_path / "utslett.png"
    red.write_bytes(png(64, 48, (220, 20, 30)))
    await citizen.set_input_files("#photo-file", str(red))
    await citizen.locator("#chat-log .msg-mine .photo-thumb").wait_for(timeout=15_000)
    thumb = doctor.locator("#chat-log .msg-theirs .photo-thumb")
    await thumb.wait_for(timeout=15_000)
    await doctor.wait_for_function(f"() => document.querySelector('{THEIR_PHOTO}').naturalWidth === 64")
    r, g, b = await _pixel(doctor, "#chat-log .msg-theirs .photo-thumb")
    assert r > 180 and g < 60 and b < 60, (r, g, b)
    assert await thumb.get_attribute("alt") == "Bilde fra Foto Pasient"

    # Back the other way, through the camera input (a JPEG-less browser picture is sent as is).
    blue = tmp_path / "svar.png"
    blue.write_bytes(png(40, 30, (20, 40, 220)))
    await doctor.set_input_files("#photo-camera", str(blue))
    back = citizen.locator("#chat-log .msg-theirs .photo-thumb")
    await back.wait_for(timeout=15_000)
    await citizen.wait_for_function(f"() => document.querySelector('{THEIR_PHOTO}').naturalWidth === 40")
    r, g, b = await _pixel(citizen, "#chat-log .msg-theirs .photo-thumb")
    assert b > 180 and r < 60, (r, g, b)
    await screen(citizen, "chat-photos")

    # Full size in a dialog; Escape closes it.
    await back.click()
    await citizen.locator("#photo-view .photo-full").wait_for()
    await screen(citizen, "chat-photo-full")
    await citizen.keyboard.press("Escape")
    await citizen.locator("#photo-view").wait_for(state="detached")

    # Not a picture: said in words, nothing sent.
    bad = tmp_path / "ikke-bilde.png"
    bad.write_bytes(b"<html>not a picture</html>")
    before = await doctor.locator("#chat-log .msg").count()
    await citizen.set_input_files("#photo-file", str(bad))
    await citizen.locator("#photo-error").get_by_text("ikke et bilde vi kan sende").wait_for(timeout=10_000)
    assert await doctor.locator("#chat-log .msg").count() == before


# --- 8: the clinician's room --------------------------------------------------------------------------

async def test_clinician_sees_context_knock_popup_exports_and_interpreter_gets_no_outcome(server, pages) -> None:
    base, _ = server
    citizen = await queue_citizen(pages, base, "Kontekst Pasient", channel="chat")
    doctor = await doctor_takes(pages, base)
    await doctor.add_init_script(RECORD_ALERTS)
    ctx = doctor.locator("#patient-context")
    await ctx.locator("#context-reason").get_by_text("Utslett på armen").wait_for(timeout=10_000)
    assert await ctx.locator("#context-priority").inner_text() == "Grønn – vanlig"
    assert await ctx.locator("#context-channel").inner_text() == "Chat"
    await citizen.fill("#chat-input", "Det klør")
    await citizen.press("#chat-input", "Enter")
    await doctor.locator("#chat-log").get_by_text("Det klør").wait_for(timeout=10_000)

    # Export for the patient record.
    async with doctor.expect_download() as dl:
        await doctor.click("#export-text")
    download = await dl.value
    text = (await download.path()).read_text(encoding="utf-8")
    assert "Det klør" in text

    # An interpreter knocks: a popup with admit/deny at the top of the screen, a sound.
    await doctor.evaluate("() => { window.__tones = 0; const o = AudioContext.prototype.createOscillator;"
                          " AudioContext.prototype.createOscillator = function () { window.__tones++;"
                          " return o.call(this); }; }")
    await doctor.select_option("#invite-role", "interpreter")
    await doctor.click("#create-invite")
    link = await doctor.locator("#invite-result input").input_value()
    interpreter = await pages.open(link)
    frames: list[str] = []  # what the server tells the interpreter over signaling
    interpreter.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
    await interpreter.fill("#invitee-name", "Ali Tolk")
    await interpreter.click("#join-invite")
    popup = doctor.locator("#knock-popup")
    await popup.get_by_text("Ali Tolk").wait_for(timeout=15_000)
    box = await popup.bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= (doctor.viewport_size or {})["height"]
    await doctor.wait_for_function("() => window.__tones >= 2")
    await screen(doctor, "knock-popup")
    await popup.get_by_role("button", name="Slipp inn Ali Tolk").click()
    await popup.wait_for(state="hidden", timeout=10_000)
    await interpreter.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)

    await doctor.click("#end-consultation")
    await doctor.check("#outcome-referred")
    await doctor.click("#confirm-end")
    await citizen.locator("#ended-outcome").get_by_text("Henvist videre").wait_for(timeout=15_000)
    await interpreter.get_by_role("heading", name="Konsultasjonen er avsluttet").wait_for(timeout=15_000)
    assert await interpreter.locator("#ended-outcome").count() == 0
    assert "Henvist" not in await interpreter.locator("#main").inner_text()
    ended = [f for f in frames if '"type": "ended"' in f or '"type":"ended"' in f]
    assert ended and all("referred" not in f for f in ended), ended


# --- 11: the same place from another device ---------------------------------------------------------

async def test_a_second_device_finds_the_ticket_instead_of_already_queued(server, pages) -> None:
    base, _ = server
    first = await queue_citizen(pages, base, "To Einingar", channel="chat")
    ticket_id = first.url.rsplit("/", 1)[1]
    login = await first.evaluate("() => { const s = JSON.parse(sessionStorage.getItem('nettlege.session'));"
                                 " return {token: s.token, user: s.user}; }")
    second = await pages.open(base + "/", phone=True)
    await second.evaluate("(s) => sessionStorage.setItem('nettlege.session', JSON.stringify(s))", login)
    await second.reload()  # the stored login is read when the page loads
    await second.goto(base + "/#/services")
    link = second.locator("#my-ticket a")
    await link.wait_for(timeout=10_000)
    assert await link.get_attribute("href") == f"#/wait/{ticket_id}"
    # Trying to queue again leads to the same place, not to "already queued".
    await second.evaluate("() => { const s = JSON.parse(sessionStorage.getItem('nettlege.session'));"
                          " delete s.ticket; sessionStorage.setItem('nettlege.session', JSON.stringify(s)); }")
    await second.goto(base + "/#/join/oslo/legevakt")
    await second.fill("#reason", "Igjen")
    await second.click("#main form button[type=submit]")
    await second.wait_for_function("(id) => location.hash === '#/wait/' + id", arg=ticket_id, timeout=10_000)
    await second.locator("#queue-position").get_by_text("nummer 1").wait_for()


async def test_a_citizen_waits_in_one_queue_at_a_time(server, pages) -> None:
    base, _ = server
    page = await queue_citizen(pages, base, "Ein Kø", channel="chat")
    ticket_id = page.url.rsplit("/", 1)[1]
    await page.goto(f"{base}/#/join/oslo/nettlege")
    await page.check("#ch-chat")
    await page.fill("#reason", "Noe annet")
    await page.click("#main form button[type=submit]")
    error = page.locator("#main .error")
    await error.get_by_text("Du kan stå i én kø om gangen").wait_for(timeout=10_000)
    assert await error.locator("a").get_attribute("href") == f"#/wait/{ticket_id}"
    await screen(page, "join-one-queue")


# --- 9: invite links ----------------------------------------------------------------------------------

async def test_an_invalid_invite_link_says_so_before_any_camera(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/", phone=True)
    await page.add_init_script(REFUSE_MEDIA)
    await page.goto(base + "/#/invite/not-a-real-invite-token")
    await page.reload()
    await page.locator("#invite-invalid").wait_for(timeout=10_000)
    assert await page.locator("#invitee-name").count() == 0
    assert await page.locator("#precall-start").count() == 0
    assert await page.evaluate("() => window.__gum") == 0
    await screen(page, "invite-invalid")


async def test_a_caller_without_sms_types_the_operators_six_digit_code(server, pages) -> None:
    base, _ = server
    operator = await pages.open(base + "/")
    await dev_login(operator, "operator", "Ola Operatør")
    await operator.fill("#op-phone", "+47 912 34 567")
    await operator.click("#create-for-caller")
    await operator.click("#make-code")
    code = (await operator.locator("#op-code-value").inner_text()).replace(" ", "")
    assert len(code) == 6 and code.isdigit()
    assert "/k" in await operator.locator("#op-code").inner_text()
    await screen(operator, "operator-code")

    caller = await pages.open(base + "/k", phone=True)
    await caller.get_by_role("heading", name="Skriv inn koden").wait_for()
    await screen(caller, "code-entry")
    await caller.fill("#short-code", "12345")
    await caller.click("#code-submit")
    await caller.locator("#code-error").get_by_text("seks sifre").wait_for()
    await caller.fill("#short-code", f"{code[:3]} {code[3:]}")
    await caller.click("#code-submit")
    await caller.locator("#invitee-name").wait_for(timeout=10_000)  # the invite, as from the link
    # The code is spent: typed again (another phone), it is refused in words.
    other = await pages.open(base + "/k", phone=True)
    await other.fill("#short-code", code)
    await other.click("#code-submit")
    await other.locator("#code-error").get_by_text("ukjent, brukt eller utløpt").wait_for()


# --- 10: 200 % text at 390 px -------------------------------------------------------------------------

# Buttons and drop-down lists whose text does not fit: wider content than box, or (a list) the chosen option's
# text wider than the list's padding box (selects draw their own arrow in the right padding: app.css).
CONTROL_TEXT_CUT = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  return [...document.querySelectorAll('select, button, .btn')].filter(el => el.offsetParent).filter(el => {
    if (el.scrollWidth > el.clientWidth + 1) return true;
    if (el.tagName !== 'SELECT' || el.selectedIndex < 0) return false;
    const cs = getComputedStyle(el);
    ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    return ctx.measureText(el.options[el.selectedIndex].text).width > room + 0.5;
  }).map(el => `${el.tagName}#${el.id} ${el.clientWidth}px: ${(el.value || el.textContent).slice(0, 30)}`);
}"""


async def _check_zoom(page: Any, name: str) -> None:
    await page.set_viewport_size(PHONE_390)
    await page.add_style_tag(content="html { font-size: 200% !important; }")
    await page.wait_for_timeout(100)  # one layout pass after the style change (no timing assert)
    wide = await page.evaluate(WIDER_THAN_SCREEN)
    assert await page.evaluate(NO_SIDEWAYS_SCROLL), f"{name}: sideways scroll at 200 % text: {wide}"
    clipped = await page.evaluate("""() => [...document.querySelectorAll('button, a.btn, label, h1, h2, p')]
        .filter(el => el.offsetParent && el.scrollWidth > el.clientWidth + 1
                && getComputedStyle(el).overflowX !== 'visible')
        .map(el => el.id || el.textContent.slice(0, 30))""")
    assert not clipped, f"{name}: clipped {clipped}"
    cut = await page.evaluate(CONTROL_TEXT_CUT)
    assert not cut, f"{name}: control text cut off at 200 % text: {cut}"
    await page.screenshot(path=str(__import__("pathlib").Path("test-artifacts/screenshots") / f"{name}-200pct.png"),
                          full_page=True)


async def test_200_percent_text_at_390_px_has_no_sideways_scroll(server, pages) -> None:
    base, _ = server
    page = await pages.open(base + "/", phone=True)
    await page.wait_for_selector("#dev-name")
    await _check_zoom(page, "login")
    await dev_login(page, "citizen", "Stor Tekst Med Et Langt Navn")
    await page.wait_for_selector(".service-list li")
    await _check_zoom(page, "services")
    await page.goto(base + "/#/join/oslo/legevakt")
    await page.locator("#reason").wait_for()
    await _check_zoom(page, "join")
    await page.fill("#reason", "Hodepine")
    await page.click("#main form button[type=submit]")
    await page.locator("#queue-position").get_by_text("nummer 1").wait_for()
    await _check_zoom(page, "waiting")
    # the clinician's dashboard on a phone: the priority list, the service list and Take next all fit, with
    # each label (the longest: "Grønn – vanlig", "Yellow – urgent")
    for locale, priorities in (("nb-NO", ("green", "yellow", "red")), ("en-GB", ("yellow", "green"))):
        dashboard = await pages.open(base + "/", phone=True, locale=locale)
        await dev_login(dashboard, "clinician", "Dr. Stor Tekst")
        await dashboard.select_option("#service-select", "legevakt")
        await dashboard.locator("#queue-table tbody tr select").wait_for()
        for priority in priorities:
            await dashboard.locator("#queue-table tbody tr select").select_option(priority)
            await dashboard.locator(f"#queue-table tbody tr.prio-{priority}").wait_for()
            await _check_zoom(dashboard, f"dashboard-{priority}-{locale}")
        await dashboard.close()
    doctor = await doctor_takes(pages, base)
    await page.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await _check_zoom(page, "room-citizen")
    await doctor.set_viewport_size(PHONE_390)
    await _check_zoom(doctor, "room-clinician")


async def test_three_person_call_on_390_px_keeps_the_controls_on_screen(media_server, pages) -> None:
    base, _ = media_server
    citizen = await queue_citizen(pages, base, "Tre Pasient")
    doctor = await doctor_takes(pages, base)
    await doctor.select_option("#invite-role", "relative")
    await doctor.click("#create-invite")
    link = await doctor.locator("#invite-result input").input_value()
    relative = await pages.open(link, phone=True)
    await relative.fill("#invitee-name", "Rolf Pårørende")
    await relative.click("#join-invite")
    await doctor.locator("#knock-popup").get_by_role("button", name="Slipp inn Rolf Pårørende").click(timeout=15_000)
    await relative.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await citizen.set_viewport_size(PHONE_390)
    await citizen.wait_for_function("() => document.querySelectorAll('#remote-videos .tile').length >= 2",
                                    timeout=20_000)
    leave = citizen.locator("#leave-call")
    box = await leave.bounding_box()
    assert box and 0 <= box["y"] and box["y"] + box["height"] <= PHONE_390["height"], box
    assert await citizen.evaluate(NO_SIDEWAYS_SCROLL)
    # The remote picture is 16:9.
    ratio = await citizen.evaluate("() => { const v = document.querySelector('#remote-videos video');"
                                   " const r = v.getBoundingClientRect(); return r.width / r.height; }")
    assert abs(ratio - 16 / 9) < 0.05
    await shoot(citizen, "room-three-people")


# --- 12: nynorsk ------------------------------------------------------------------------------------

async def test_nynorsk_from_the_browser_on_every_screen(server, pages) -> None:
    base, _ = server
    citizen = await pages.open(base + "/", phone=True, locale="nn-NO")
    await citizen.get_by_role("heading", name="Logg inn").wait_for()
    assert await citizen.evaluate("document.documentElement.lang") == "nn"
    assert await citizen.locator("#lang-select").input_value() == "nn"
    await screen(citizen, "login-nn")
    await dev_login(citizen, "citizen", "Nynorsk Brukar")
    await citizen.get_by_role("heading", name="Kontakt legen").wait_for()
    await citizen.locator(".badge-open").get_by_text("Ope no").first.wait_for()
    await screen(citizen, "services-nn")
    await citizen.goto(base + "/#/join/oslo/legevakt")
    await citizen.get_by_text("Korleis vil du snakke med legen?").wait_for()
    await screen(citizen, "join-nn")
    await citizen.check("#ch-chat")
    await citizen.fill("#reason", "Vondt i halsen")
    await citizen.click("#main form button[type=submit]")
    await citizen.locator("#queue-position").get_by_text("Du er nummer 1 i køen").wait_for()
    await citizen.get_by_role("heading", name="Venterommet").wait_for()
    await citizen.get_by_text("Varsel når det er din tur").wait_for()
    await screen(citizen, "waiting-nn")
    await citizen.goto(base + "/#/services")
    await citizen.get_by_role("link", name="Du står i kø. Gå til venterommet").click()
    await citizen.locator("#queue-position").get_by_text("Du er nummer 1 i køen").wait_for()
    doctor = await pages.open(base + "/", locale="nn-NO")
    await dev_login(doctor, "clinician", "Dr. Nynorsk")
    await doctor.get_by_role("heading", name="Køen").wait_for()
    await doctor.get_by_role("button", name="Ta neste").wait_for()
    await screen(doctor, "dashboard-nn")
    await doctor.select_option("#service-select", "legevakt")
    await doctor.locator("#queue-table tbody tr").first.wait_for()
    await doctor.click("#take-next")
    await doctor.get_by_role("heading", name="Chatkonsultasjon").wait_for(timeout=15_000)
    await doctor.locator("#room-status").get_by_text("Tilkopla").wait_for(timeout=15_000)
    await doctor.get_by_text("Om pasienten").wait_for()
    await screen(doctor, "room-clinician-nn")
    await citizen.locator("#room-status").get_by_text("Tilkopla").wait_for(timeout=15_000)
    await screen(citizen, "room-citizen-nn")
    await citizen.click("#leave-call")
    await citizen.locator("#leave-dialog").get_by_text("Forlate konsultasjonen?").wait_for()
    await screen(citizen, "leave-confirm-nn")
    await citizen.click("#leave-dialog-yes")
    await citizen.get_by_role("heading", name="Du har forlate samtalen").wait_for()
    await citizen.locator("#rejoin").get_by_text("Bli med igjen").wait_for(timeout=10_000)
    await screen(citizen, "left-nn")
    await citizen.goto(base + "/#/kode")
    await citizen.get_by_role("heading", name="Skriv inn koden").wait_for()
    await citizen.get_by_text("Koden du fekk (seks siffer)").wait_for()
    await screen(citizen, "code-entry-nn")
    # A server message in nynorsk too (Accept-Language follows the UI), on the first screen of a bad link.
    await citizen.goto(base + "/#/invite/ukjend-lenkje")
    await citizen.locator("#invite-invalid").get_by_text("Lenkja er ukjend").wait_for(timeout=10_000)
    await citizen.get_by_text("Be den som sende deg lenkja om ei ny").wait_for()
    await screen(citizen, "invite-invalid-nn")


async def test_every_new_screen_passes_axe_in_english(server, pages) -> None:
    base, _ = server
    citizen = await pages.open(base + "/", phone=True, locale="en-GB")
    await citizen.get_by_role("heading", name="Log in").wait_for()
    await screen(citizen, "login-en")
    await dev_login(citizen, "citizen", "English Patient")
    await citizen.get_by_role("heading", name="Contact a doctor").wait_for()
    await citizen.goto(base + "/#/kode")
    await citizen.get_by_role("heading", name="Enter the code").wait_for()
    await screen(citizen, "code-entry-en")
    await citizen.goto(base + "/#/join/oslo/legevakt")
    await citizen.get_by_text("How do you want to talk to the doctor?").wait_for()
    await screen(citizen, "join-en")
    await citizen.check("#ch-chat")
    await citizen.fill("#reason", "Sore throat")
    await citizen.click("#main form button[type=submit]")
    await citizen.get_by_text("An alert when it is your turn").wait_for()
    await screen(citizen, "waiting-en")
    await citizen.click("#leave-queue")
    await citizen.locator("#leave-queue-dialog").get_by_text("Leave the queue?").wait_for()
    await screen(citizen, "leave-queue-confirm-en")
    await citizen.click("#leave-queue-dialog-no")
    doctor = await pages.open(base + "/", locale="en-GB")
    await dev_login(doctor, "clinician", "Dr. English")
    await doctor.select_option("#service-select", "legevakt")
    await doctor.locator("#queue-table tbody tr").first.wait_for()
    await doctor.click("#take-next")
    await doctor.get_by_text("About the patient").wait_for(timeout=15_000)
    await doctor.locator("#room-status").get_by_text("Connected").wait_for(timeout=15_000)
    await screen(doctor, "room-clinician-en")
    await citizen.locator("#room-status").get_by_text("Connected").wait_for(timeout=15_000)
    await screen(citizen, "room-citizen-en")
    await citizen.click("#leave-call")
    await citizen.click("#leave-dialog-yes")
    await citizen.locator("#rejoin").get_by_text("Join again").wait_for(timeout=10_000)
    await screen(citizen, "left-en")


# --- 3: who is still there, on the dashboard ---------------------------------------------------------

async def test_dashboard_shows_whether_each_citizen_is_online(server, pages) -> None:
    base, _ = server
    stays = await queue_citizen(pages, base, "Blir Her", channel="chat")
    goes = await queue_citizen(pages, base, "Går Bort", channel="chat")
    doctor = await pages.open(base + "/")
    await dev_login(doctor, "clinician", "Dr. Oversikt")
    await doctor.select_option("#service-select", "legevakt")
    here = doctor.locator("#queue-table tbody tr", has_text="Blir Her")
    away = doctor.locator("#queue-table tbody tr", has_text="Går Bort")
    await here.locator(".owner-presence").get_by_text("På nett").wait_for(timeout=10_000)
    await away.locator(".owner-presence").get_by_text("På nett").wait_for(timeout=10_000)
    await goes.close()  # the waiting page is closed: the server hears the connection go
    await away.locator(".owner-presence").get_by_text("Frakoblet").wait_for(timeout=10_000)
    assert "På nett" in await here.locator(".owner-presence").inner_text()
    await screen(doctor, "dashboard-presence")
    await stays.locator("#queue-position").get_by_text("nummer 1").wait_for()  # still waiting, first in line


# --- 7: devices -------------------------------------------------------------------------------------

AUDIO_SENT = """() => { let n = 0; return window.nettlegeCall.pc.getStats().then(st => { st.forEach(s => {
    if (s.type === 'outbound-rtp' && s.kind === 'audio') n += s.packetsSent; }); return n; }); }"""
AUDIO_RECEIVED = """() => window.nettlegeCall.pc.getStats().then(st => { let n = 0; st.forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') n += s.packetsReceived; }); return n; })"""


async def test_devices_are_chosen_before_and_during_the_call(media_server, pages) -> None:
    base, _ = media_server
    citizen = await queue_citizen(pages, base, "Eining Vel")
    # Before: the pre-call check offers camera, microphone and speaker once access is given.
    await citizen.click("#precall-start")
    await citizen.locator("#check-camera.ok").wait_for()
    await citizen.locator("#pre-devices").wait_for()
    assert await citizen.locator("#pre-mic option").count() >= 2
    await citizen.select_option("#pre-mic", label="Fake Audio Input 1")
    await citizen.locator("#pre-devices-status").get_by_text("Mikrofon: Fake Audio Input 1").wait_for()
    await screen(citizen, "precall-devices")

    doctor = await doctor_takes(pages, base)
    await citizen.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    # The choice carried into the call.
    sent_label = "() => window.nettlegeCall.pc.getSenders().find(s => s.track && s.track.kind === 'audio').track.label"
    await citizen.wait_for_function(f"() => ({sent_label})() === 'Fake Audio Input 1'", timeout=10_000)
    # During: another microphone, without renegotiating; the doctor keeps receiving sound.
    await citizen.click("#devices-toggle")
    await citizen.locator("#devices-panel").wait_for()
    await citizen.select_option("#room-mic", label="Fake Audio Input 2")
    await citizen.wait_for_function(f"() => ({sent_label})() === 'Fake Audio Input 2'", timeout=10_000)
    before = await doctor.evaluate(AUDIO_RECEIVED)
    await doctor.wait_for_function(f"(b) => ({AUDIO_RECEIVED})().then(n => n > b + 20)", arg=before, timeout=10_000)
    # The speaker: every remote sound plays on the chosen output.
    out = await citizen.locator("#room-speaker option", has_text="Fake Audio Output 1").get_attribute("value")
    await citizen.select_option("#room-speaker", value=out)
    await citizen.wait_for_function(
        "(id) => [...document.querySelectorAll('.audios audio')].every(a => a.sinkId === id)"
        " && document.querySelectorAll('.audios audio').length > 0", arg=out, timeout=10_000)
    await screen(citizen, "room-devices")


# --- 10: the phone keyboard and the small self view ---------------------------------------------------

async def test_enter_is_a_new_line_on_a_touch_phone_and_the_self_view_moves(media_server, pages) -> None:
    base, _ = media_server
    ctx = await pages.browser.new_context(viewport=PHONE_390, has_touch=True, is_mobile=True, locale="nb-NO",
                                          permissions=["camera", "microphone"])
    pages.contexts.append(ctx)
    citizen = await ctx.new_page()
    citizen.on("pageerror", lambda e: pages.errors.append(f"touch: {e}"))
    await citizen.goto(base + "/")
    await dev_login(citizen, "citizen", "Touch Pasient")
    await citizen.goto(f"{base}/#/join/oslo/legevakt")
    await citizen.fill("#reason", "Vondt")
    await citizen.click("#main form button[type=submit]")
    await citizen.locator("#queue-position").get_by_text("nummer 1").wait_for()
    doctor = await doctor_takes(pages, base)
    await citizen.locator("#chat-state").get_by_text("tilkoblet").wait_for(timeout=15_000)
    await citizen.get_by_text("Enter gir ny linje").first.wait_for()
    await citizen.locator("#chat-input").click()
    await citizen.keyboard.type("Første linje")
    await citizen.keyboard.press("Enter")
    await citizen.keyboard.type("Andre linje")
    assert await citizen.input_value("#chat-input") == "Første linje\nAndre linje"
    assert await citizen.locator("#chat-log .msg").count() == 0  # nothing sent by Enter
    await citizen.locator("#chat-send").tap()
    await doctor.locator("#chat-log .msg-text").get_by_text("Andre linje").wait_for(timeout=10_000)
    assert await doctor.locator("#chat-log .msg-text").first.inner_text() == "Første linje\nAndre linje"

    # The small self view moves out of the way (arrow keys here; a finger drags it the same way).
    self_view = citizen.locator(".tile-self")
    # One remote picture (the doctor's, no name tile beside it): the self view floats over it.
    await citizen.wait_for_function(
        "() => document.querySelectorAll('#remote-videos .tile').length === 1"
        " && !document.querySelector('#remote-videos .tile-placeholder')"
        " && getComputedStyle(document.querySelector('.tile-self')).position === 'absolute'", timeout=15_000)
    where = "() => { const t = document.querySelector('.tile-self'); return [t.offsetLeft, t.offsetTop]; }"
    x0, y0 = await citizen.evaluate(where)
    await self_view.focus()
    for _ in range(3):
        await citizen.keyboard.press("ArrowLeft")
    await citizen.keyboard.press("ArrowDown")
    x1, y1 = await citizen.evaluate(where)
    assert x1 < x0 - 30 and y1 > y0, (x0, y0, x1, y1)

    # Front/back camera on a phone: the picture the doctor gets keeps coming after the switch.
    sent_video = "() => window.nettlegeCall.pc.getSenders().find(s => s.track && s.track.kind === 'video').track.id"
    first_track = await citizen.evaluate(sent_video)
    await citizen.locator("#devices-toggle").tap()
    await citizen.locator("#room-flip").tap()
    await citizen.locator("#room-devices-status").get_by_text("Bakkameraet er i bruk.").wait_for(timeout=10_000)
    assert await citizen.evaluate(sent_video) != first_track
    await wait_for_more_frames(doctor, await frames_decoded(doctor))

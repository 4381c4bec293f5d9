"""Consultations in real Chromium: citizen and clinician on video with chat, the nurse's exam camera,
an interpreter through the lobby, the operator's link to a caller, and reconnecting after a drop."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession

from .conftest import dev_login, has_route, screen, session_token
from .media_checks import PIXEL_VARIANCE, frames_decoded, wait_for_more_frames, wait_for_video

pytestmark = pytest.mark.browser

SIGNAL = "/api/v1/consultations/{consultation_id}/signal"


@pytest.fixture
async def media_server(server):  # type: ignore[no-untyped-def]
    base, app = server
    if not has_route(app, SIGNAL):
        pytest.skip("the signaling WebSocket is not wired into the app")
    return base, app


async def queue_citizen(pages, base: str, name: str, service: str = "legevakt", phone: bool = True):  # type: ignore[no-untyped-def]
    page = await pages.open(base + "/", phone=phone)
    await dev_login(page, "citizen", name)
    await page.goto(f"{base}/#/join/oslo/{service}")
    await page.fill("#reason", "Vondt i brystet")
    await page.click("#main form button[type=submit]")
    await page.locator("#queue-position").get_by_text("nummer 1").wait_for()
    return page


async def test_citizen_and_clinician_complete_a_video_consultation(media_server, pages) -> None:
    base, _ = media_server
    citizen = await queue_citizen(pages, base, "Kari Pasient")
    await citizen.click("#precall-start")
    await citizen.locator("#check-camera.ok").wait_for()

    doctor = await pages.open(base + "/")
    await dev_login(doctor, "clinician", "Dr. Lege")
    await doctor.select_option("#service-select", "legevakt")
    row = doctor.locator("#queue-table tbody tr").first
    await row.get_by_text("Vondt i brystet").wait_for()
    await row.locator(".badge").get_by_text("Grønn – vanlig").wait_for()
    await doctor.select_option(f"#{await row.locator('select').get_attribute('id')}", "yellow")
    await row.locator(".badge").get_by_text("Gul – haster").wait_for()
    await screen(doctor, "dashboard")
    await doctor.click("#take-next")

    # Both in the room; video both ways.
    await doctor.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await citizen.wait_for_function("() => location.hash.startsWith('#/room/')", timeout=15_000)
    await citizen.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await wait_for_video(doctor)
    await wait_for_video(citizen)
    await doctor.locator("#participants").get_by_text("Kari Pasient").wait_for()
    await doctor.locator("#participants .quality").first.wait_for(timeout=15_000)

    # Chat both ways.
    await citizen.fill("#chat-input", "Hei, jeg har vondt i brystet")
    await citizen.press("#chat-input", "Enter")
    await doctor.locator("#chat-log").get_by_text("Hei, jeg har vondt i brystet").wait_for(timeout=10_000)
    await doctor.fill("#chat-input", "Hvor lenge har du hatt det?")
    await doctor.click("#chat-send")
    await citizen.locator("#chat-log").get_by_text("Hvor lenge har du hatt det?").wait_for(timeout=10_000)
    await citizen.locator("#chat-log .msg-mine:not(.pending)").first.wait_for()
    assert await citizen.locator("#chat-log .msg").count() == 2
    await screen(citizen, "room-citizen")
    await screen(doctor, "room-clinician")

    # Camera off (audio only): the doctor's picture of the citizen goes black; on again, it comes back.
    await citizen.click("#camera")
    assert await citizen.get_attribute("#camera", "aria-pressed") == "true"
    await doctor.wait_for_function(f"() => ({PIXEL_VARIANCE})('#remote-videos video') < 5", timeout=10_000)
    await citizen.click("#camera")
    await doctor.wait_for_function(f"() => ({PIXEL_VARIANCE})('#remote-videos video') > 10", timeout=10_000)
    await citizen.click("#mute")
    assert await citizen.get_attribute("#mute", "aria-pressed") == "true"

    # The citizen drops off the network and comes back into the same consultation.
    room_url = citizen.url
    await citizen.context.set_offline(True)
    await citizen.locator("#conn-banner").get_by_text("Kobler til igjen").wait_for(timeout=10_000)
    await screen(citizen, "room-reconnecting")
    await doctor.fill("#chat-input", "Er du der fortsatt?")  # sent while the citizen is away
    await doctor.press("#chat-input", "Enter")
    await doctor.locator("#chat-log .msg-mine:not(.pending)", has_text="Er du der fortsatt?").wait_for()
    await citizen.context.set_offline(False)
    await citizen.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=30_000)
    await citizen.locator("#conn-banner").wait_for(state="hidden")
    assert citizen.url == room_url
    await citizen.locator("#chat-log").get_by_text("Er du der fortsatt?").wait_for(timeout=15_000)
    assert await citizen.locator("#chat-log .msg").count() == 3  # resynced, nothing twice
    await wait_for_video(citizen)
    await wait_for_video(doctor)
    await wait_for_more_frames(doctor, await frames_decoded(doctor))

    # End with an outcome: the citizen sees the end screen.
    await doctor.click("#end-consultation")
    await doctor.locator("#end-dialog").wait_for()
    await screen(doctor, "end-dialog")
    await doctor.check("#outcome-physical-followup")
    await doctor.click("#confirm-end")
    await citizen.get_by_role("heading", name="Konsultasjonen er avsluttet").wait_for(timeout=15_000)
    assert "Trenger fysisk oppfølging" in await citizen.locator("#ended-outcome").inner_text()
    await screen(citizen, "ended-citizen")
    await doctor.get_by_role("heading", name="Konsultasjonen er avsluttet").wait_for()
    await screen(doctor, "ended-clinician")


# The nurse's two video senders (exam camera, room camera) and what each sends (getStats outbound-rtp).
SENDERS = """async () => {
  const examId = document.querySelector('#exam-preview').srcObject.getVideoTracks()[0].id;
  const out = {};
  for (const sender of window.nettlegeCall.pc.getSenders()) {
    if (!sender.track || sender.track.kind !== 'video') continue;
    const entry = {preference: sender.getParameters().degradationPreference || null, width: 0, height: 0,
                   frames: 0};
    (await sender.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp') {
        entry.width = s.frameWidth || 0; entry.height = s.frameHeight || 0; entry.frames = s.framesSent || 0;
      }
    });
    out[sender.track.id === examId ? 'exam' : 'room'] = entry;
  }
  return out;
}"""
SENDERS_READY = f"async () => {{ const s = await ({SENDERS})(); return !!(s.exam && s.room); }}"
EXAM_SENT_AT_720P = (f"async () => {{ const s = await ({SENDERS})(); "
                     "return s.exam.width === 1280 && s.exam.height === 720; }")
ROOM_FRAMES_SENT = f"async (least) => (await ({SENDERS})()).room.frames >= least"


async def test_nurse_requests_a_doctor_and_shows_the_exam_camera(media_server, pages) -> None:
    base, _ = media_server
    nurse = await pages.open(base + "/")
    await dev_login(nurse, "nurse", "Siri Sykepleier")
    await nurse.check("#prio-red")
    await nurse.fill("#nurse-reason", "Pasient 80 år, pustebesvær")
    await screen(nurse, "nurse-request")
    await nurse.click("#request-doctor")
    await nurse.locator("#queue-position").get_by_text("nummer 1").wait_for()

    doctor = await pages.open(base + "/")
    await dev_login(doctor, "clinician", "Dr. Vakt")
    await doctor.select_option("#service-select", "legevakt")
    row = doctor.locator("#queue-table tbody tr").first
    await row.locator(".badge").get_by_text("Rød – akutt").wait_for()  # priority in text, not colour only
    await row.locator(".tag").get_by_text("Sykepleier").wait_for()
    await doctor.click("#take-next")
    await nurse.wait_for_function("() => location.hash.startsWith('#/room/')", timeout=15_000)
    await nurse.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await wait_for_video(doctor)

    # The nurse adds the exam camera: the doctor gets a second video labelled as such.
    options = await nurse.locator("#exam-camera-select option").all()
    assert len(options) >= 2
    await nurse.select_option("#exam-camera-select", index=1)
    exam = doctor.locator("#remote-videos figure.tile-exam")
    await exam.wait_for(timeout=20_000)
    assert "Undersøkelseskamera" in await exam.locator("figcaption").inner_text()
    await doctor.wait_for_function("() => document.querySelectorAll('#remote-videos video').length >= 2")
    await wait_for_video(doctor, "#remote-videos figure.tile-exam video")
    await doctor.locator("#participants").get_by_text("Undersøkelseskamera").wait_for()
    # The nurse sees her exam camera's picture; it is asked for at up to 1280×720.
    await nurse.wait_for_function("() => document.querySelector('#exam-preview').videoWidth > 0")
    constraints = await nurse.evaluate(
        "() => document.querySelector('#exam-preview').srcObject.getVideoTracks()[0].getConstraints()")
    assert constraints["width"] in (1280, {"ideal": 1280}) and constraints["height"] in (720, {"ideal": 720})
    # And it is sent so: the exam sender encodes 1280×720 and keeps the resolution when short of bandwidth,
    # while the room camera keeps the browser's default (frame rate first) and goes on at a video frame rate.
    await nurse.wait_for_function(SENDERS_READY, timeout=20_000)
    await nurse.wait_for_function(EXAM_SENT_AT_720P, timeout=30_000)
    senders = await nurse.evaluate(SENDERS)
    assert senders["exam"]["preference"] == "maintain-resolution", senders
    assert senders["room"]["preference"] != "maintain-resolution", senders
    await nurse.wait_for_function(ROOM_FRAMES_SENT, arg=senders["room"]["frames"] + 15 * 2, timeout=20_000)
    await screen(nurse, "room-nurse")
    await screen(doctor, "room-clinician-exam")


async def test_interpreter_joins_by_invite_through_the_lobby(media_server, pages) -> None:
    base, _ = media_server
    doctor = await pages.open(base + "/")
    await dev_login(doctor, "clinician", "Dr. Tolkesen")
    token = await session_token(doctor)
    async with ClientSession() as http, http.post(f"{base}/api/v1/consultations",
                                                  json={"tenant": "oslo", "service": "nettlege"},
                                                  headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 201, await resp.text()
        cid = (await resp.json())["id"]
    await doctor.goto(f"{base}/#/room/{cid}")
    await doctor.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await doctor.select_option("#invite-role", "interpreter")
    await doctor.click("#create-invite")
    link = await doctor.locator("#invite-result input").input_value()
    assert "/#/invite/" in link
    await doctor.get_by_role("button", name="Kopier lenke").click()
    await doctor.locator("#invite-result").get_by_text("Kopiert.").wait_for()
    await screen(doctor, "room-invite-link")

    interpreter = await pages.open(link, phone=True)
    await interpreter.get_by_text("Du er invitert som tolk.").wait_for()
    await screen(interpreter, "invite")
    await interpreter.fill("#invitee-name", "Ali Tolk")
    await interpreter.click("#join-invite")
    await interpreter.locator("#room-status").get_by_text("venter i lobbyen").wait_for(timeout=15_000)
    await screen(interpreter, "invite-lobby")

    entry = doctor.locator("#lobby li", has_text="Ali Tolk")
    await entry.wait_for(timeout=15_000)
    await screen(doctor, "room-knock")
    await entry.get_by_role("button", name="Slipp inn Ali Tolk").click()
    await interpreter.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await doctor.locator("#participants").get_by_text("Ali Tolk").wait_for(timeout=15_000)
    await wait_for_video(interpreter)
    await wait_for_video(doctor)
    # The spent invite's session token is the interpreter's login in this tab.
    await interpreter.locator("#whoami").get_by_text("Ali Tolk · Tolk").wait_for()

    # A relative knocks with a second link and is denied.
    await doctor.select_option("#invite-role", "relative")
    await doctor.click("#create-invite")
    await doctor.wait_for_function("(old) => document.querySelector('#invite-result input').value !== old", arg=link)
    relative_link = await doctor.locator("#invite-result input").input_value()
    relative = await pages.open(relative_link, phone=True)
    await relative.fill("#invitee-name", "Rolf Pårørende")
    await relative.click("#join-invite")
    await relative.locator("#room-status").get_by_text("venter i lobbyen").wait_for(timeout=15_000)
    await doctor.locator("#lobby li", has_text="Rolf Pårørende").get_by_role(
        "button", name="Avvis Rolf Pårørende").click()
    await relative.get_by_role("heading", name="Du ble ikke sluppet inn").wait_for(timeout=15_000)
    await screen(relative, "invite-denied")

    # The link was single use: opened again elsewhere, the first screen says so (before any camera) and
    # offers no name form to join with.
    other = await pages.open(link)
    await other.get_by_text("brukt", exact=False).first.wait_for(timeout=15_000)
    assert await other.locator("#invitee-name").count() == 0


async def test_operator_sends_a_link_and_sees_the_callers_camera(media_server, pages) -> None:
    base, _ = media_server
    operator = await pages.open(base + "/")
    await dev_login(operator, "operator", "Ola Operatør")
    await operator.fill("#op-phone", "912 34 567")
    await operator.click("#create-for-caller")
    await operator.locator("#op-sms-status").get_by_text("SMS er ikke satt opp").wait_for()
    link = await operator.locator("#op-result input").input_value()
    assert "/#/invite/" in link and "912" not in link
    await screen(operator, "operator-link")
    await operator.click("#open-room")
    await operator.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)

    caller = await pages.open(link, phone=True)
    await caller.fill("#invitee-name", "Innringer")
    await caller.click("#join-invite")
    await caller.locator("#room-status").get_by_text("Tilkoblet").wait_for(timeout=15_000)
    await wait_for_video(operator)
    await operator.locator("#participants").get_by_text("Innringer").wait_for()
    await screen(operator, "room-operator")
    # The caller leaves (asked first); the operator's room goes on without them and says so.
    await caller.click("#leave-call")
    await caller.locator("#leave-dialog").wait_for()
    await screen(caller, "leave-confirm")
    await caller.click("#leave-dialog-yes")
    await caller.get_by_role("heading", name="Du har forlatt samtalen").wait_for()
    await caller.locator("#rejoin").wait_for()  # the consultation is still on
    await screen(caller, "left-caller")
    await operator.locator("#participants").get_by_text("Innringer").wait_for(state="detached", timeout=15_000)
    await operator.locator("#presence-notice").get_by_text("Innringer har forlatt konsultasjonen.").wait_for()
    assert await operator.locator("#room-status").inner_text() == "Tilkoblet"


async def test_chat_consultation_without_camera_in_english(media_server, pages) -> None:
    base, _ = media_server
    citizen = await pages.open(base + "/", phone=True)
    await citizen.select_option("#lang-select", "en")
    await dev_login(citizen, "citizen", "Chloe Chat")
    await citizen.goto(f"{base}/#/join/oslo/nettlege")
    await citizen.check("#ch-chat")
    await citizen.fill("#reason", "Question about a prescription")
    await citizen.click("#main form button[type=submit]")
    await citizen.locator("#queue-position").get_by_text("You are number 1 in the queue").wait_for()
    doctor = await pages.open(base + "/")
    await dev_login(doctor, "clinician", "Dr. Skriv")
    await doctor.locator("#queue-table").get_by_text("Chat", exact=True).wait_for()
    await doctor.click("#take-next")
    await doctor.get_by_role("heading", name="Chatkonsultasjon").wait_for(timeout=15_000)
    await citizen.get_by_role("heading", name="Chat consultation").wait_for(timeout=15_000)
    assert await citizen.locator("video:visible").count() == 0
    await citizen.locator("#chat-state").get_by_text("Chat is connected.").wait_for(timeout=15_000)
    await citizen.fill("#chat-input", "Can I get a renewal?")
    await citizen.press("#chat-input", "Enter")
    await doctor.locator("#chat-log").get_by_text("Can I get a renewal?").wait_for(timeout=10_000)
    await doctor.fill("#chat-input", "Ja, jeg fornyer den nå.")
    await doctor.press("#chat-input", "Enter")
    await citizen.locator("#chat-log").get_by_text("Ja, jeg fornyer den nå.").wait_for(timeout=10_000)
    await screen(citizen, "room-chat-en")
    await doctor.click("#end-consultation")
    await doctor.check("#outcome-resolved")
    await doctor.click("#confirm-end")
    await citizen.get_by_role("heading", name="The consultation has ended").wait_for(timeout=15_000)
    assert "Resolved" in await citizen.locator("#ended-outcome").inner_text()


async def test_phone_ticket_gives_the_clinician_the_number_to_call(media_server, pages) -> None:
    base, _ = media_server
    citizen = await pages.open(base + "/", phone=True)
    await dev_login(citizen, "citizen", "Telefon Tone")
    await citizen.goto(f"{base}/#/join/oslo/legevakt")
    await citizen.check("#ch-phone")
    await citizen.fill("#callback-phone", "912 34 567")
    await citizen.fill("#reason", "Feber hos barn")
    await citizen.click("#main form button[type=submit]")
    await citizen.locator("#queue-position").get_by_text("nummer 1").wait_for()
    doctor = await pages.open(base + "/")
    await dev_login(doctor, "clinician", "Dr. Ring")
    await doctor.select_option("#service-select", "legevakt")
    await doctor.locator("#queue-table").get_by_text("(912 34 567)").wait_for()
    await doctor.click("#take-next")
    await doctor.get_by_role("heading", name="Telefonkonsultasjon").wait_for(timeout=15_000)
    await doctor.locator("#call-back a[href='tel:91234567']").wait_for()
    await citizen.get_by_text("Legen ringer deg nå.").wait_for(timeout=15_000)
    await screen(doctor, "room-phone-clinician")

"""axe-core on every screen in all three languages (issue 13): the citizen's way from login to the room and
out again (video with the camera refused, chat-only with a photo), the clinician's dashboard and room with
the knock popup, the interpreter, the nurse with the exam camera, the operator with the short code, the
invite's first screen (valid and used), /k, the admin view and the access log. Then 200 % text at 390 px on
the staff screens the other tests do not zoom. Each screen is screenshotted under test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientSession

from .conftest import dev_login, screen
from .test_patient_experience import PHONE_390, REFUSE_MEDIA, _check_zoom, png, queue_citizen

pytestmark = pytest.mark.browser

LOCALES = {"nb": "nb-NO", "nn": "nn-NO", "en": "en-GB"}
CONNECTED = {"nb": "Tilkoblet", "nn": "Tilkopla", "en": "Connected"}  # the `connected` string of each language
HAS_DIGIT = "(sel) => /\\d/.test((document.querySelector(sel) || {}).textContent || '')"


async def _connected(page: Any, lang: str) -> None:
    await page.locator("#room-status").get_by_text(CONNECTED[lang]).wait_for(timeout=20_000)


async def _staff(pages: Any, base: str, role: str, name: str, lang: str) -> Any:
    page = await pages.open(base + "/", locale=LOCALES[lang])
    await dev_login(page, role, name)
    assert await page.evaluate("document.documentElement.lang") == lang
    return page


async def _take_next(doctor: Any, service: str = "legevakt") -> None:
    await doctor.select_option("#service-select", service)
    await doctor.locator("#queue-table tbody tr").first.wait_for()
    await doctor.click("#take-next")


@pytest.mark.parametrize("lang", list(LOCALES))
async def test_citizen_and_clinician_screens_pass_axe(server, pages, tmp_path, lang) -> None:
    base, _ = server
    locale = LOCALES[lang]
    # A chat-only citizen first in the queue (the doctor takes her), then one on video whose camera is refused.
    chat = await queue_citizen(pages, base, "Chat Pasient", channel="chat", locale=locale)
    await screen(chat, f"a11y-waiting-chat-{lang}")

    video = await pages.open(base + "/", phone=True, locale=locale)
    await video.add_init_script(REFUSE_MEDIA)
    await video.reload()
    await video.wait_for_selector("#dev-name")
    assert await video.evaluate("document.documentElement.lang") == lang
    await screen(video, f"a11y-login-{lang}")
    await dev_login(video, "citizen", "Video Pasient")
    await video.locator(".service-list li").first.wait_for()
    await screen(video, f"a11y-services-{lang}")
    await video.goto(f"{base}/#/join/oslo/legevakt")
    await video.locator("#reason").wait_for()
    await screen(video, f"a11y-join-{lang}")
    await video.check("#ch-video")
    await video.fill("#reason", "Hodepine")
    await video.click("#main form button[type=submit]")
    await video.wait_for_function(HAS_DIGIT, arg="#queue-position")
    await screen(video, f"a11y-waiting-video-{lang}")
    await video.click("#precall-start")
    await video.locator("#check-camera.fail").wait_for()
    await video.locator("#media-help").wait_for()
    await screen(video, f"a11y-precall-refused-{lang}")

    # The clinician's dashboard, then the chat room with its patient context.
    doctor = await _staff(pages, base, "clinician", "Dr. Tilgjengelig", lang)
    await doctor.select_option("#service-select", "legevakt")
    await doctor.locator("#queue-table tbody tr").nth(1).wait_for()
    await screen(doctor, f"a11y-dashboard-{lang}")
    await doctor.click("#take-next")
    await _connected(doctor, lang)
    await doctor.locator("#context-reason").wait_for()
    await _connected(chat, lang)
    await screen(doctor, f"a11y-room-clinician-{lang}")
    await screen(chat, f"a11y-room-citizen-chat-{lang}")

    # A photo in the chat, opened full size in its dialog.
    picture = tmp_path / "utslett.png"
    picture.write_bytes(png(64, 48, (220, 20, 30)))
    await doctor.locator("#chat-state").get_by_text(CONNECTED[lang].lower()).wait_for(timeout=15_000)
    await chat.set_input_files("#photo-file", str(picture))
    thumb = doctor.locator("#chat-log .msg-theirs .photo-thumb")
    await thumb.wait_for(timeout=15_000)
    await thumb.click()
    await doctor.locator("#photo-view .photo-full").wait_for()
    await screen(doctor, f"a11y-photo-dialog-{lang}")
    await doctor.keyboard.press("Escape")
    await doctor.locator("#photo-view").wait_for(state="detached")

    # An interpreter knocks: the popup on the clinician's screen, then the interpreter's room.
    await doctor.select_option("#invite-role", "interpreter")
    await doctor.click("#create-invite")
    link = await doctor.locator("#invite-result input").input_value()
    interpreter = await pages.open(link, locale=locale)
    await interpreter.locator("#invitee-name").wait_for(timeout=10_000)
    await screen(interpreter, f"a11y-invite-valid-{lang}")
    await interpreter.fill("#invitee-name", "Ali Tolk")
    await interpreter.click("#join-invite")
    popup = doctor.locator("#knock-popup")
    await popup.get_by_text("Ali Tolk").wait_for(timeout=15_000)
    await screen(doctor, f"a11y-knock-popup-{lang}")
    await popup.locator("button[data-admit]").first.click()
    await popup.wait_for(state="hidden", timeout=10_000)
    await _connected(interpreter, lang)
    await screen(interpreter, f"a11y-room-interpreter-{lang}")
    # The same link a second time (another device): used, said on the first screen.
    again = await pages.open(link, phone=True, locale=locale)
    await again.locator("#invite-invalid").wait_for(timeout=10_000)
    assert await again.locator("#invitee-name").count() == 0
    async with ClientSession() as http, http.get(f"{base}/api/v1/invites/{link.rsplit('/', 1)[1]}") as resp:
        assert resp.status == 410 and (await resp.json())["error"] == "invite_used"
    await screen(again, f"a11y-invite-used-{lang}")

    # The chat citizen leaves (after the question) and is offered the way back; then her access log.
    await chat.click("#leave-call")
    await chat.locator("#leave-dialog").wait_for()
    await screen(chat, f"a11y-leave-confirm-{lang}")
    await chat.click("#leave-dialog-yes")
    await chat.locator("#rejoin").wait_for(timeout=10_000)
    await screen(chat, f"a11y-left-rejoin-{lang}")
    await chat.goto(base + "/#/access-log")
    await chat.locator("#access-log section").first.wait_for(timeout=10_000)
    await screen(chat, f"a11y-access-log-{lang}")


@pytest.mark.parametrize("lang", list(LOCALES))
async def test_nurse_operator_code_and_admin_screens_pass_axe(server, pages, lang) -> None:
    base, _ = server
    locale = LOCALES[lang]
    nurse = await _staff(pages, base, "nurse", "Siri Sykepleier", lang)
    await nurse.locator("#nurse-reason").wait_for()
    await nurse.check("#prio-red")
    await nurse.fill("#nurse-reason", "Pasient 80 år, pustebesvær")
    await screen(nurse, f"a11y-nurse-request-{lang}")
    await nurse.click("#request-doctor")
    await nurse.wait_for_function(HAS_DIGIT, arg="#queue-position")
    doctor = await _staff(pages, base, "clinician", "Dr. Vakt", lang)
    await _take_next(doctor)
    await nurse.wait_for_function("() => location.hash.startsWith('#/room/')", timeout=15_000)
    await _connected(nurse, lang)
    await nurse.select_option("#exam-camera-select", index=1)
    await nurse.wait_for_function("() => document.querySelector('#exam-preview').videoWidth > 0", timeout=15_000)
    await doctor.locator("#remote-videos figure.tile-exam").wait_for(timeout=20_000)
    await screen(nurse, f"a11y-room-nurse-exam-{lang}")
    await screen(doctor, f"a11y-room-clinician-exam-{lang}")

    operator = await _staff(pages, base, "operator", "Ola Operatør", lang)
    await operator.locator("#op-service option").first.wait_for(state="attached")
    await screen(operator, f"a11y-operator-{lang}")
    await operator.fill("#op-phone", "+47 912 34 567")
    await operator.click("#create-for-caller")
    await operator.click("#make-code")
    await operator.wait_for_function(HAS_DIGIT, arg="#op-code-value")
    await screen(operator, f"a11y-operator-code-{lang}")

    caller = await pages.open(base + "/k", phone=True, locale=locale)
    await caller.locator("#short-code").wait_for()
    await screen(caller, f"a11y-code-entry-{lang}")
    await caller.fill("#short-code", "12345")
    await caller.click("#code-submit")
    await caller.wait_for_function("() => document.querySelector('#code-error').textContent.trim() !== ''")
    await screen(caller, f"a11y-code-error-{lang}")

    admin = await _staff(pages, base, "admin", "Anne Admin", lang)
    await admin.locator("#audit-status.audit-ok").wait_for(timeout=15_000)
    await admin.wait_for_function("() => document.querySelector('#stats-status').textContent.trim() !== ''")
    await screen(admin, f"a11y-admin-{lang}")


async def test_200_percent_text_at_390_px_on_the_staff_screens(server, pages) -> None:
    base, _ = server
    citizen = await queue_citizen(pages, base, "Stor Tekst Med Et Ganske Langt Navn", channel="chat")
    doctor = await _staff(pages, base, "clinician", "Dr. Stor Tekst", "nb")
    await doctor.set_viewport_size(PHONE_390)
    await doctor.select_option("#service-select", "legevakt")
    await doctor.locator("#queue-table tbody tr").first.wait_for()
    await _check_zoom(doctor, "dashboard")
    await doctor.click("#take-next")
    await _connected(citizen, "nb")

    nurse = await _staff(pages, base, "nurse", "Siri Sykepleier", "nb")
    await nurse.locator("#nurse-reason").wait_for()
    await _check_zoom(nurse, "nurse-request")

    operator = await _staff(pages, base, "operator", "Ola Operatør", "nb")
    await operator.fill("#op-phone", "+47 912 34 567")
    await operator.click("#create-for-caller")
    await operator.click("#make-code")
    await operator.wait_for_function(HAS_DIGIT, arg="#op-code-value")
    await _check_zoom(operator, "operator")

    admin = await _staff(pages, base, "admin", "Anne Admin", "nb")
    await admin.locator("#audit-status.audit-ok").wait_for(timeout=15_000)
    await _check_zoom(admin, "admin")

    await citizen.goto(base + "/#/access-log")
    await citizen.locator("#access-log section").first.wait_for(timeout=10_000)
    await _check_zoom(citizen, "access-log")

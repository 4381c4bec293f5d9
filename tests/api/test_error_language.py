"""Server messages follow the UI language: Accept-Language nn or en swaps the bokmål message of an error
body for the nynorsk or English one; the code stays; unknown codes keep bokmål (never an empty text)."""

from signaling.messages import MESSAGES, preferred, translate
from tests.conftest import bearer, dev_token

Q = "/api/v1/tenants/oslo/services/nettlege/queue"


async def test_already_queued_in_bokmal_nynorsk_and_english(app_client):
    kari = await dev_token(app_client, "kari", "citizen")
    first = await app_client.post(Q, json={"channel": "chat", "reason": "hoste"}, headers=bearer(kari))
    assert first.status == 201
    seen = {}
    for lang in ("nb-NO", "nn-NO,nn;q=0.9", "en-GB,en;q=0.8", "de-DE"):
        resp = await app_client.post(Q, json={"channel": "chat", "reason": "hoste"},
                                     headers={**bearer(kari), "Accept-Language": lang})
        body = await resp.json()
        assert resp.status == 409 and body["error"] == "already_queued"
        seen[lang] = body["message"]
    assert seen["nb-NO"] == seen["de-DE"] == "Du står allerede i køen til denne tjenesten."
    assert seen["nn-NO,nn;q=0.9"] == "Du står allereie i køen til denne tenesta."
    assert seen["en-GB,en;q=0.8"] == "You are already in this service's queue."


async def test_not_found_and_unauthorized_in_english(app_client):
    kari = await dev_token(app_client, "kari", "citizen")
    resp = await app_client.get("/api/v1/tickets/t_doesnotexist", headers={**bearer(kari), "Accept-Language": "en"})
    body = await resp.json()
    assert resp.status == 404 and body["message"] in {m[1] for m in MESSAGES.values()}
    assert resp.headers["Content-Language"] == "en"
    resp = await app_client.get("/api/v1/me/access-log", headers={"Accept-Language": "nn"})
    assert resp.status == 401 and (await resp.json())["message"] == "Du må logge inn."


def test_preferred_language_from_the_header():
    assert preferred("nn-NO,nn;q=0.9,nb;q=0.8") == "nn"
    assert preferred("no") == "nb"
    assert preferred("nb;q=0.4, en;q=0.8") == "en"
    assert preferred("fr, de") == "nb"
    assert preferred("") == "nb"
    assert preferred("en;q=abc, nn") == "nn"


def test_a_code_without_a_translation_keeps_the_bokmal_message():
    assert translate("some_new_code", "en", "Noe på bokmål.") == "Noe på bokmål."
    expected = "For mange førespurnader. Prøv igjen om 7 sekund."
    assert translate("rate_limited", "nn", "x", {"retry_after_s": 7}) == expected

"""Error messages in the client's language: bokmål (the text in the code), nynorsk and English.

The error `code` is stable; the human `message` is written in bokmål where the error is raised. This
table gives the nynorsk and English text per code, and `localize_errors` (a middleware outside
`error_middleware`) swaps the message of a 4xx/5xx JSON body when `Accept-Language` prefers nn or en.
A code missing here keeps its bokmål message (never an empty one). Messages with a number in them take
it from the body (`retry_after_s`) or keep the bokmål text.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

LANGS = ("nb", "nn", "en")

# code → (nynorsk, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "already_queued": ("Du står allereie i køen til denne tenesta.", "You are already in this service's queue."),
    "ticket_not_found": ("Fann ikkje denne plassen i køen.", "This place in the queue was not found."),
    "ticket_not_waiting": ("Denne plassen i køen ventar ikkje lenger.",
                           "This place in the queue is no longer waiting."),
    "service_not_found": ("Fann ikkje denne tenesta.", "This service was not found."),
    "service_closed": ("Tenesta er stengd no.", "The service is closed now."),
    "callback_phone_required": ("Skriv telefonnummeret vi skal ringje deg på.",
                                "Give the phone number we should call you on."),
    "consultation_not_found": ("Fann ikkje denne konsultasjonen.", "This consultation was not found."),
    "consultation_ended": ("Konsultasjonen er avslutta.", "The consultation has ended."),
    "participant_not_found": ("Fann ikkje denne deltakaren.", "This participant was not found."),
    "not_in_lobby": ("Deltakaren ventar ikkje på å sleppe inn.", "The participant is not waiting to be let in."),
    "not_admitted": ("Du er ikkje sloppen inn i denne konsultasjonen.",
                     "You have not been let into this consultation."),
    "invite_unknown": ("Lenkja er ukjend. Be om ei ny lenkje.", "The link is not known. Ask for a new link."),
    "invite_used": ("Lenkja er allereie brukt. Be om ei ny lenkje.",
                    "The link has already been used. Ask for a new link."),
    "invite_expired": ("Lenkja har gått ut. Be om ei ny lenkje.", "The link has expired. Ask for a new link."),
    "already_participant": ("Du er allereie med i denne konsultasjonen.", "You are already in this consultation."),
    "not_found": ("Fann ikkje dette.", "Not found."),
    "forbidden": ("Du har ikkje tilgang til dette.", "You do not have access to this."),
    "unauthorized": ("Du må logge inn.", "You need to log in."),
    "login_required": ("Logg inn for å opne denne timen.", "Log in to open this appointment."),
    "code_exchange_failed": ("Innlogginga kunne ikkje fullførast. Prøv å logge inn på nytt.",
                             "The login could not be completed. Try logging in again."),
    "issuer_unavailable": ("Innloggingstenesta svarar ikkje. Prøv igjen.",
                           "The login service does not answer. Try again."),
    "sms_failed": ("SMS-en kunne ikkje sendast. Les lenkja opp for innringjaren.",
                   "The SMS could not be sent. Read the link out to the caller."),
    "not_an_invite": ("Berre invitasjonslenkjer frå denne tenesta kan sendast på SMS.",
                      "Only invite links from this service can be sent by SMS."),
    "bad_json": ("Førespurnaden er ikkje gyldig JSON.", "The request is not valid JSON."),
    "body_too_large": ("Førespurnaden er for stor.", "The request is too large."),
    "store_unavailable": ("Tenesta er mellombels overbelasta. Prøv igjen.",
                          "The service is overloaded right now. Try again."),
    "internal": ("Noko gjekk gale hos oss. Prøv igjen.", "Something went wrong on our side. Try again."),
    "denied": ("Du vart ikkje sloppen inn i denne konsultasjonen.", "You were not let into this consultation."),
    "replaced": ("Du kopla til frå ein annan stad; dette sambandet er lukka.",
                 "You connected from somewhere else; this connection is closed."),
    "answer_timeout": ("Svaret på tilbodet frå serveren kom ikkje i tide; koplar til på nytt.",
                       "The answer to the server's offer came too late; reconnecting."),
    "room_full": ("Konsultasjonen er full.", "The consultation is full."),
    "rate_limited": ("For mange førespurnader. Prøv igjen om {retry_after_s} sekund.",
                     "Too many requests. Try again in {retry_after_s} seconds."),
}


def preferred(accept_language: str | None) -> str:
    """nb, nn or en from an Accept-Language header (q-values honoured; `no` is bokmål; default nb)."""
    best, best_q = "nb", -1.0
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        base = tag.strip().lower().split("-")[0]
        base = {"no": "nb", "nob": "nb", "nno": "nn"}.get(base, base)
        if base not in LANGS:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        q -= i * 1e-6  # equal weights: the first listed wins
        if q > best_q:
            best, best_q = base, q
    return best


def translate(code: str, lang: str, message: str, params: dict[str, object] | None = None) -> str:
    texts = MESSAGES.get(code)
    if lang == "nb" or texts is None:
        return message
    text = texts[0] if lang == "nn" else texts[1]
    try:
        return text.format(**(params or {}))
    except (KeyError, IndexError, ValueError):
        return message


@web.middleware
async def localize_errors(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    resp = await handler(request)
    lang = preferred(request.headers.get("Accept-Language"))
    if lang == "nb" or resp.status < 400 or not isinstance(resp, web.Response) \
            or resp.content_type != "application/json" or not isinstance(resp.body, bytes | bytearray):
        return resp
    try:
        body = json.loads(resp.body)
    except ValueError:
        return resp
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not isinstance(body.get("message"), str):
        return resp
    params = {"retry_after_s": body.get("retry_after_s") or resp.headers.get("Retry-After", "")}
    body["message"] = translate(body["error"], lang, body["message"], params)
    resp.body = json.dumps(body).encode()
    resp.headers["Content-Language"] = lang
    resp.headers.add("Vary", "Accept-Language")
    return resp

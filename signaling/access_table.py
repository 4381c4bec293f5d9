"""The authorization tables of docs/security.md, rendered from the code that enforces them.

`python -m signaling.access_table` prints them; tests/api/test_access_matrix.py checks that the document
holds exactly this text and probes every route with the principals each row names.
"""

from __future__ import annotations

from .api import build_api
from .http import ACCESS_RULES, Access, Api
from .policy import INVITE_POLICY, STAFF_INVITEES

BEGIN, END = "<!-- authorization-table:begin -->", "<!-- authorization-table:end -->"


def route_table(api: Api) -> str:
    lines = ["| Method | Route | Roles | Condition | Session token |", "|---|---|---|---|---|"]
    for r in sorted(api.routes, key=lambda r: (r.path, r.method)):
        roles = "any" if r.roles is None else ", ".join(sorted(role.value for role in r.roles))
        if r.access is Access.PUBLIC:
            roles = "—"
        session = "yes (its consultation)" if r.scoped else ("—" if r.access is Access.PUBLIC else "no")
        lines.append(f"| {r.method} | `{r.path}` | {roles} | {r.access.value} | {session} |")
    return "\n".join(lines)


def condition_table() -> str:
    lines = ["| Condition | Who passes |", "|---|---|"]
    lines += [f"| {a.value} | {text} |" for a, text in ACCESS_RULES.items()]
    return "\n".join(lines)


def invite_table() -> str:
    lines = ["| Inviter (host) | May invite | How the invitee joins |", "|---|---|---|"]
    for inviter, invitees in INVITE_POLICY.items():
        staff = sorted(r.value for r in invitees & STAFF_INVITEES)
        guests = sorted(r.value for r in invitees - STAFF_INVITEES)
        how = "guests spend the invite anonymously (session token, no host powers)"
        if staff:
            how += f"; {', '.join(staff)} log in with their own identity and accept it"
        lines.append(f"| {inviter.value} | {', '.join(guests + staff)} | {how} |")
    return "\n".join(lines)


def render() -> str:
    return "\n\n".join([BEGIN, route_table(build_api()), condition_table(), invite_table(), END])


if __name__ == "__main__":
    print(render())

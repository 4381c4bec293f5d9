"""media.sdp.bundle_setup: every m-line of a client's BUNDLE group takes the DTLS role of the group's tagged
(first) m-line, as Firefox's answers to a server offer that adds an m-line need (issue 10, late joiner)."""

from __future__ import annotations

from media.sdp import bundle_setup


def _sdp(setups: list[str], group: str = "0 1 2") -> str:
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", f"a=group:BUNDLE {group}"]
    for mid, setup in enumerate(setups):
        kind = "audio" if mid == 0 else "video"
        lines += [f"m={kind} 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", f"a=mid:{mid}", f"a=setup:{setup}"]
    return "\r\n".join(lines) + "\r\n"


def _setups(sdp: str) -> list[str]:
    return [line.split(":", 1)[1] for line in sdp.splitlines() if line.startswith("a=setup:")]


def test_a_new_m_line_answered_active_takes_the_tagged_m_lines_passive() -> None:
    # Firefox's answer to the SFU's offer adding mid 2: its shared transport stays the DTLS server.
    assert _setups(bundle_setup(_sdp(["passive", "passive", "active"]))) == ["passive"] * 3


def test_a_consistent_sdp_is_unchanged() -> None:
    sdp = _sdp(["active", "active", "active"])
    assert bundle_setup(sdp) == sdp


def test_only_the_m_lines_in_the_group_follow_the_tag() -> None:
    # mid 2 is outside the BUNDLE group (its own transport): its role is its own
    assert _setups(bundle_setup(_sdp(["passive", "active", "active"], group="0 1"))) == ["passive", "passive",
                                                                                         "active"]


def test_the_tag_is_the_groups_first_mid_not_the_first_m_line() -> None:
    assert _setups(bundle_setup(_sdp(["active", "passive", "active"], group="1 0 2"))) == ["passive"] * 3


def test_without_a_bundle_group_nothing_changes() -> None:
    sdp = _sdp(["passive", "active"], group="").replace("a=group:BUNDLE \r\n", "")
    assert bundle_setup(sdp) == sdp

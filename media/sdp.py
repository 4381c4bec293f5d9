"""What the SFU reads from a client's SDP beyond what aiortc does: declined m-lines and video codecs.

A browser declines an m-line it cannot use by answering it with port 0 and nothing else (no ICE credentials,
no fingerprint; legal, RFC 8829 section 5.3.1): Firefox without OpenH264 does so for an H264 track. aiortc
knows no declined m-lines and refuses such an answer whole, so `accept_declined` turns each one into an
inactive m-line on the BUNDLE transport before aiortc reads it.
"""

from __future__ import annotations

import copy

from aiortc.sdp import GroupDescription, SessionDescription


def accept_declined(answer: str, offer: str) -> tuple[str, list[str]]:
    """The answer with every declined (port 0) audio/video m-line made `inactive`, and their mids.
    `offer` is our offer it answers (its codecs fill the declined m-lines). Raises ValueError if every
    m-line is declined (there is no transport left to take the credentials from)."""
    description = SessionDescription.parse(answer)
    declined = [(i, m) for i, m in enumerate(description.media) if m.port == 0 and m.kind in ("audio", "video")]
    if not declined:
        return answer, []
    accepted = next((m for m in description.media if m.port != 0 and m.ice is not None
                     and m.ice.usernameFragment), None)
    if accepted is None:
        raise ValueError("every media section was declined")
    offered = SessionDescription.parse(offer).media
    mids = []
    for index, media in declined:
        ours = offered[index] if index < len(offered) else None
        media.port = 9
        media.direction = "inactive"
        media.ice = copy.copy(accepted.ice)
        media.dtls = copy.deepcopy(accepted.dtls)
        media.rtcp_mux = True
        media.ice_candidates = []
        if ours is not None:
            media.rtp.muxId = media.rtp.muxId or ours.rtp.muxId
            media.rtp.codecs = copy.deepcopy(ours.rtp.codecs)
            media.fmt = list(ours.fmt)
            media.rtp.headerExtensions = []
        mids.append(media.rtp.muxId)
    for media in description.media:  # aiortc writes a=rtcp-mux only beside a=rtcp, which Firefox omits
        if media.rtcp_mux and media.rtcp_port is None:
            media.rtcp_port, media.rtcp_host = 9, "0.0.0.0"
    bundle = next((g for g in description.group if g.semantic == "BUNDLE"), None)
    if bundle is None:
        description.group.append(GroupDescription(semantic="BUNDLE", items=[m.rtp.muxId for m in description.media]))
    else:
        bundle.items += [mid for mid in mids if mid not in bundle.items]
    return str(description), mids


def bundle_setup(sdp: str) -> str:
    """The client's SDP with every m-line of its BUNDLE group carrying the DTLS role (`a=setup`) of the group's
    first m-line, the tagged one whose transport the group uses (RFC 8843). Firefox writes the attribute per
    m-line and, when it answers a server offer that adds an m-line, gives the new one `active` while the
    transport it shares stays `passive` (Firefox the DTLS server). aiortc applies the m-lines' roles to the one
    shared transport in turn, so the last m-line's wins: the SFU turned DTLS server too, either before its
    handshake (both sides wait for a ClientHello) or during it (SRTP keys exported for the wrong side), and
    Firefox received nothing. The other m-lines' values are ignored by the standard, so this changes nothing
    for a client that writes them consistently."""
    lines = sdp.splitlines()
    group = next((line.split()[1:] for line in lines if line.startswith("a=group:BUNDLE")), [])
    sections: list[list[int]] = []  # line indexes of each m-line's section
    for index, line in enumerate(lines):
        if line.startswith("m="):
            sections.append([])
        if sections:
            sections[-1].append(index)
    mids = [next((lines[i][len("a=mid:"):].strip() for i in section if lines[i].startswith("a=mid:")), None)
            for section in sections]
    setups = [next((i for i in section if lines[i].startswith("a=setup:")), None) for section in sections]
    tag = next((setups[mids.index(mid)] for mid in group if mid in mids and setups[mids.index(mid)] is not None),
               None)
    if tag is None:
        return sdp
    for mid, setup in zip(mids, setups, strict=True):
        if mid in group and setup is not None:
            lines[setup] = lines[tag]
    return "\r\n".join(lines) + "\r\n"


def decodes_h264(sdp: str) -> bool | None:
    """Whether the client can receive H264, from its offer's video m-lines (a browser lists every codec it
    decodes); None if it offered no video at all. Port 0 counts: in an offer it is a bundle-only m-line
    (Firefox offers all but its first m-line so), not a declined one."""
    video = [m for m in SessionDescription.parse(sdp).media if m.kind == "video"]
    if not video:
        return None
    return any(c.mimeType.lower() == "video/h264" for m in video for c in m.rtp.codecs)

"""The media path: an aiortc SFU that forwards encoded media as it comes, without decoding or encoding it.

Knows nothing of Redis or HTTP. The signaling WebSocket (`signaling/signal_ws.py`) is a thin adapter::

    sfu = Sfu(MediaConfig.for_host(host, ice_servers=[...]))     # one per process, closed in cleanup_ctx
    room = sfu.room(consultation_id)                              # created on demand
    peer = await room.join(participant_id, role, display_name, send=ws_send_json)   # once admitted
    # client messages:
    await peer.handle_offer(msg["sdp"], msg.get("track_labels"))  # sends {"type": "answer"} itself via `send`
    await peer.handle_answer(msg["sdp"])                           # answer to the server's offer
    await peer.add_candidate(msg.get("candidate"))                 # RTCIceCandidateInit or None
    await room.leave(participant_id)                               # "leave", or the grace period expired
    await room.close(outcome)                                      # consultation ended: "ended" to everyone
    room.participants()   # [{"id", "role", "display_name", "tracks": [{"id", "kind", "label"}], "stats"}]
    await sfu.close()     # shutdown: closes every RTCPeerConnection

`send(dict)` delivers, in order, everything the server says to that participant: `answer` (to the client's
offer), `offer` (server-initiated renegotiation when subscribed tracks change; never two outstanding; it also
carries `"tracks": [{"mid", "participant_id", "id", "kind", "label"}]` because browsers see mids, not msid
track ids), `participants` (on every change and every `stats_interval_s` with per-participant `stats`),
`quality` (`{"participant_id", "video": "paused"|"on", "reason": "bandwidth"}`: the video this participant
receives from that publisher is paused because its own link cannot carry video, or is back), `ended`.
A failing `send` (closed socket) is logged and ignored; removing the participant is the adapter's call.
Joining again with the same participant id replaces the old peer connection (Wi-Fi to 4G).

Every bad input raises `MediaError(code, message)`; `error.as_event()` is the signaling `error` event. Codes:
`sdp_invalid`, `sdp_too_large`, `no_offer_outstanding`, `offer_collision` (the client offered while the
server's offer was unanswered: the server is impolite, the client rolls back and answers), `codec_unsupported`,
`candidate_invalid`, `too_many_candidates`, `participant_left`, `consultation_ended`, `room_full`. None of them
is fatal for the connection; the peer keeps working after one.
`track_labels` (optional in the client's offer message) maps a track id (msid) or mid to a label such as
`exam-camera`; the msid of what a subscriber receives is "<publisher participant id> <track id>".

Media is forwarded as RTP packets, as they arrive: no depayloading, no jitter buffer, no re-packetizing.
Modules: `sfu` (rooms of a process), `room` (who is connected, who subscribes to what), `peer` (one
participant's peer connection and negotiation), `publisher` (`PublishedTrack`: in-sequence fan-out of a
publisher's packets, its REMB cap), `forwarder` (`TrackForwarder`: one subscriber's rewritten stream),
`bandwidth` (a subscriber's estimate, video share and pause), `keyframes` (rate-limited PLI), `rtp`
(keyframe starts in VP8/H264 payloads),
`aiortc_passthrough` (the only reach into aiortc internals), `ice` (STUN/TURN config, TURN REST credentials),
`stats` and `metrics` (counters and Prometheus), `config`, `errors`, `testing` (aiortc clients for tests and
load tests).
"""

from media.config import MediaConfig
from media.errors import MediaError
from media.peer import Peer
from media.room import Room
from media.sfu import Sfu

__all__ = ["MediaConfig", "MediaError", "Peer", "Room", "Sfu"]

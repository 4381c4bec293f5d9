"""The media path: an aiortc SFU that forwards encoded media as it comes, without decoding or encoding it.

Knows nothing of Redis or HTTP. The signaling WebSocket (`signaling/signal_ws.py`) is a thin adapter::

    sfu = Sfu(MediaConfig.for_host(host, ice_servers=[...]))     # one per process, closed in cleanup_ctx
    room = sfu.room(consultation_id)                              # created on demand
    peer = await room.join(participant_id, role, display_name, send=ws_send_json)
        # `send(dict)` delivers the server's messages to this participant: {"type": "answer"}, server
        # {"type": "offer"} (renegotiation, never two outstanding), {"type": "participants"}, {"type": "ended"}.
        # Joining again with the same participant id replaces the old peer connection.
    # client messages:
    await peer.handle_offer(msg["sdp"], msg.get("track_labels"))  # sends the answer itself via `send`
    await peer.handle_answer(msg["sdp"])                           # answer to the server's offer
    await peer.add_candidate(msg["candidate"])                     # RTCIceCandidateInit or None
    await room.leave(participant_id)                               # "leave", or the grace period expired
    await room.close(outcome)                                      # consultation ended: "ended" to everyone
    room.participants()   # [{"id", "role", "display_name", "tracks": [{"id", "kind", "label"}], "stats"}]
    await sfu.close()     # shutdown: closes every RTCPeerConnection

Every bad input raises `MediaError(code, message)`; `error.as_event()` is the signaling `error` event.
The track ids in `participants` are the msid track ids the subscriber sees, and the msid stream id is the
publisher's participant id, so a client can label what it receives (`camera`, `exam-camera`, `microphone`).

Modules: `sfu` (rooms of a process), `room` (who is connected, who subscribes to what), `peer` (one
participant's peer connection and negotiation), `publisher` (`PublishedTrack`, fan-out), `forwarder`
(`TrackForwarder`, a subscriber's bounded queue), `keyframes` (rate-limited PLI), `payload` (RTP packing),
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

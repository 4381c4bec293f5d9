"""Fails loudly if aiortc changes under `media.aiortc_passthrough` (written against aiortc 1.16)."""

from __future__ import annotations

import inspect

import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer

from media import aiortc_passthrough
from media.ice import rtc_configuration


def _rmem_max() -> int:
    with open("/proc/sys/net/core/rmem_max") as f:
        return int(f.read())


def test_aiortc_is_the_version_the_pass_through_was_written_against() -> None:
    assert aiortc.__version__.startswith(aiortc_passthrough.AIORTC_VERSION), (
        f"aiortc {aiortc.__version__}: re-check media/aiortc_passthrough.py against its receiver and sender")


def test_the_receiver_still_hands_reassembled_frames_to_a_decoder_queue() -> None:
    source = inspect.getsource(RTCRtpReceiver)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in source
    assert "input_q.get()" in inspect.getsource(aiortc.rtcrtpreceiver.decoder_worker)
    assert "if task is None:" in inspect.getsource(aiortc.rtcrtpreceiver.decoder_worker)
    jitter = inspect.getsource(JitterBuffer)
    for name in ("self._packets", "self._origin", "self._capacity", "self._is_video", "def remove(",
                 "return pli_flag, self._remove_frame(packet.sequence_number)"):
        assert name in jitter, name
    assert callable(RTCRtpReceiver._send_rtcp_pli)


def test_the_sender_still_packs_non_frames_with_its_lazily_created_encoder() -> None:
    source = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "if self.__encoder is None:" in source
    assert "self.__encoder.pack(data)" in source
    assert "self._send_keyframe()" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "transceiver.sender._stream_id" in inspect.getsource(aiortc.rtcpeerconnection)
    assert "transceiver.sender._track_id" in inspect.getsource(aiortc.rtcpeerconnection)


def test_create_offer_still_renumbers_every_m_line_without_yielding() -> None:
    """`keep_negotiated_numbering` undoes this right after createOffer; no await may sit in between, or
    aiortc could start a receiver with the reset numbers."""
    source = inspect.getsource(RTCPeerConnection.createOffer)
    assert "transceiver._headerExtensions = HEADER_EXTENSIONS[transceiver.kind][:]" in source
    assert "transceiver._codecs = filter_preferred_codecs(" in source
    assert "await " not in source
    assert "transceiver._set_mline_index(next_mline_index())" in source
    assert "headerExtensions=transceiver._headerExtensions" in inspect.getsource(aiortc.rtcpeerconnection)


async def test_the_private_attributes_used_exist_on_fresh_objects() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        transceiver = pc.addTransceiver("video", direction="sendrecv")
        receiver, sender = transceiver.receiver, transceiver.sender
        assert receiver._RTCRtpReceiver__started is False
        assert hasattr(receiver, "_RTCRtpReceiver__decoder_queue")
        assert receiver._RTCRtpReceiver__jitter_buffer._is_video is True
        assert sender._RTCRtpSender__started is False
        assert sender._RTCRtpSender__encoder is None
        assert isinstance(transceiver._codecs, list)
        [connection] = list(aiortc_passthrough.ice_connections(pc))
        for name in ("_local_candidates", "_local_candidates_start", "_local_candidates_end",
                     "_transport_policy", "_components"):
            assert hasattr(connection, name), name
        assert "addresses" in inspect.signature(connection.get_component_candidates).parameters
        aiortc_passthrough.restrict_gathering(pc, ["127.0.0.1"], None, receive_buffer_bytes=1 << 20)
        await connection.gather_candidates()
        assert {c.host for c in connection.local_candidates} == {"127.0.0.1"}
        import socket
        [protocol] = connection._protocols
        buffer = protocol.transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert buffer >= min(2 << 20, 2 * _rmem_max())  # Linux doubles what was asked, up to rmem_max
    finally:
        await pc.close()


def test_aioice_still_calls_what_make_ice_lite_replaces_through_the_instance() -> None:
    """`make_ice_lite` swaps methods on each Connection; they must still be looked up on `self`."""
    from aioice.ice import CandidatePair, Connection
    from aiortc import rtcicetransport, rtcpeerconnection

    assert "pair.task = asyncio.create_task(self.check_start(pair))" in inspect.getsource(Connection.check_start_task)
    connect = inspect.getsource(Connection.connect)
    assert "self._check_periodic()" in connect and "asyncio.create_task(self.query_consent())" in connect
    assert "return self._remote_candidates_expected()" in inspect.getsource(Connection._check_periodic)
    assert "self._remote_candidates_expected()" in inspect.getsource(Connection._check_list_maybe_fail)
    incoming = inspect.getsource(Connection.check_incoming)
    for text in ('type="prflx"', "self.check_start_task(pair)", "pair.remote_nominated = True",
                 "pair.nominated = True"):
        assert text in incoming, text
    assert "self._connection.add_remote_candidate(" in inspect.getsource(rtcicetransport.RTCIceTransport)
    assert "media.ice = iceGatherer.getLocalParameters()" in inspect.getsource(rtcpeerconnection)
    assert hasattr(CandidatePair.State, "SUCCEEDED") and "remote_nominated" in inspect.getsource(CandidatePair)
    assert "iceLite" in inspect.signature(aiortc.RTCIceParameters).parameters


async def test_make_ice_lite_replaces_the_methods_of_a_fresh_connection() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        pc.addTransceiver("audio", direction="recvonly")
        aiortc_passthrough.make_ice_lite(pc)
        [connection] = list(aiortc_passthrough.ice_connections(pc))
        for name in ("add_remote_candidate", "check_start", "query_consent", "_remote_candidates_expected"):
            assert name in vars(connection), name
        gatherer = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
        assert gatherer.getLocalParameters().iceLite is True
        offer = await pc.createOffer()
        assert "a=ice-lite" in offer.sdp
    finally:
        await pc.close()

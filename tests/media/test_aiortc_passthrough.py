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
    """What `install_receiver_sink` (the load generators' receive side) and `install_rtp_tap` rely on."""
    source = inspect.getsource(RTCRtpReceiver)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in source
    assert "input_q.get()" in inspect.getsource(aiortc.rtcrtpreceiver.decoder_worker)
    assert "if task is None:" in inspect.getsource(aiortc.rtcrtpreceiver.decoder_worker)
    jitter = inspect.getsource(JitterBuffer)
    for name in ("self._packets", "self._origin", "self._capacity", "self._is_video", "def remove(",
                 "return pli_flag, self._remove_frame(packet.sequence_number)"):
        assert name in jitter, name
    assert callable(RTCRtpReceiver._send_rtcp_pli)


def test_the_receiver_is_still_handed_each_packet_through_the_instance_and_keeps_what_the_tap_fills() -> None:
    """`RtpTap.handle` replaces `_handle_rtp_packet` on the instance and does its statistics, RTX and NACK
    part with the receiver's own private state."""
    assert "await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)" in inspect.getsource(
        aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data)
    handle = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    for text in ("self.__remote_bitrate_estimator.add(", "self.__active_ssrc[packet.ssrc] = ",
                 "self.__codecs.get(packet.payload_type)", "self.__remote_streams[packet.ssrc].add(packet)",
                 "self.__rtx_ssrc.get(packet.ssrc)", "unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)",
                 "self.__nack_generator.add(packet)", "await self._send_rtcp_nack("):
        assert text in handle, text
    assert "self.__active_ssrc.items()" in inspect.getsource(RTCRtpReceiver.getSynchronizationSources)
    run_rtcp = inspect.getsource(RTCRtpReceiver._run_rtcp)
    assert "self.__remote_streams.items()" in run_rtcp and "self.__rtcp_ssrc" in run_rtcp
    assert "def add(self, packet: RtpPacket)" in inspect.getsource(aiortc.rtcrtpreceiver.StreamStatistics)
    assert list(inspect.signature(aiortc.rate.RemoteBitrateEstimator.add).parameters) == [
        "self", "arrival_time_ms", "abs_send_time", "payload_size", "ssrc"]


def test_the_sender_still_sends_retransmits_and_reports_what_the_send_port_puts_in_its_state() -> None:
    """`RtpSendPort` sends through the sender's transport with the sender's extension map, fills its
    retransmission history and RTCP SR counters, and replaces `send`, `_handle_rtcp_packet` and
    `_send_keyframe` on the instance."""
    retransmit = inspect.getsource(RTCRtpSender._retransmit)
    assert "self.__rtp_history.get(sequence_number % RTP_HISTORY_SIZE)" in retransmit
    assert "packet.serialize(self.__rtp_header_extensions_map)" in retransmit
    run_rtp = inspect.getsource(RTCRtpSender._run_rtp)
    for text in ("self.__rtp_history[packet.sequence_number % RTP_HISTORY_SIZE]", "await self.transport._send_rtp(",
                 "self.__ntp_timestamp = clock.current_ntp_time()", "self.__rtp_timestamp = packet.timestamp",
                 "self.__octet_count += len(payload)", "self.__packet_count += 1",
                 "await self._next_encoded_frame(codec)", "except (asyncio.CancelledError, ConnectionError, "
                 "MediaStreamError)"):
        assert text in run_rtp, text
    sr = inspect.getsource(RTCRtpSender._run_rtcp)
    assert "packet_count=self.__packet_count" in sr and "rtp_timestamp=self.__rtp_timestamp" in sr
    rtcp = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "self._send_keyframe()" in rtcp and "await self._retransmit(seq)" in rtcp
    assert "self.__rtp_task = asyncio.ensure_future(self._run_rtp(parameters.codecs[0]))" in inspect.getsource(
        RTCRtpSender.send)
    assert "self.__mid = parameters.muxId" in inspect.getsource(RTCRtpSender.send)
    assert "await transceiver.sender.send(self.__localRtp(transceiver))" in inspect.getsource(aiortc.rtcpeerconnection)
    assert "await recipient._handle_rtcp_packet(packet)" in inspect.getsource(aiortc.rtcdtlstransport)
    assert "self.__encoder.target_bitrate = bitrate" in rtcp  # what a test publisher's encoder does on REMB
    # set_opus_bitrate (test publishers): a preset encoder is used as it is, and opens its codec lazily.
    assert "if self.__encoder is None:" in inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "self.codec.bit_rate = 96000" in inspect.getsource(aiortc.codecs.opus.OpusEncoder.__init__)
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
        for name in ("codecs", "active_ssrc", "remote_streams", "rtx_ssrc", "nack_generator",
                     "remote_bitrate_estimator", "kind", "rtcp_ssrc"):
            assert hasattr(receiver, f"_RTCRtpReceiver__{name}"), name
        assert receiver._RTCRtpReceiver__remote_bitrate_estimator is not None  # video: aiortc estimates
        assert sender._RTCRtpSender__started is False
        assert sender._RTCRtpSender__encoder is None
        for name in ("rtp_history", "rtp_header_extensions_map", "ntp_timestamp", "rtp_timestamp",
                     "octet_count", "packet_count"):
            assert hasattr(sender, f"_RTCRtpSender__{name}"), name
        tap = aiortc_passthrough.install_rtp_tap(receiver, on_packet=None)  # type: ignore[arg-type]
        assert receiver._handle_rtp_packet == tap.handle
        port = aiortc_passthrough.RtpSendPort(sender, lambda: None, lambda bitrate: None)
        assert not port.ready and sender._send_keyframe is not RTCRtpSender._send_keyframe
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
        assert "datagram_received" in vars(protocol)  # media datagrams skip aioice's STUN parse
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


def test_the_sender_still_keeps_its_last_sr_for_the_rtt_and_the_transport_sends_and_hands_on_rtp_by_itself() -> None:
    """`RtpSendPort` measures the round trip from the sender's last SR (`__lsr`, `__lsr_time`) as aiortc
    does; `lose_rtp` (test clients) replaces the DTLS transport's `_send_rtp` / `_handle_rtp_data` on the
    instance, which the sender and the transport's receive loop call through `self`/`transport`."""
    rtcp = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "time.time() - self.__lsr_time - (report.dlsr / 65536)" in rtcp
    assert "self.__lsr == report.lsr" in rtcp
    assert "self.__lsr_time = time.time()" in inspect.getsource(RTCRtpSender._run_rtcp)
    recv = inspect.getsource(aiortc.rtcdtlstransport.RTCDtlsTransport._recv_next)
    assert "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)" in recv
    assert "await self.transport._send_rtp(" in inspect.getsource(RTCRtpSender._run_rtp)


def test_the_fast_rtp_path_and_transport_cc_still_find_what_they_replace_and_read() -> None:
    """`install_fast_rtp_path` replaces the DTLS transport's `_handle_rtp_data` (called through `self`),
    parses with the ids in its `HeaderExtensionsMap` and routes with its router as aiortc does;
    `RtpTap` swaps in `media.nack.NackGenerator` (the receiver calls `add` and reads `missing`);
    `RtpSendPort` keeps `_SentPacket`s in the history that `_retransmit` wraps (`wrap_rtx`: marker,
    timestamp, payload, csrc, extensions); `accept_transport_cc` edits a transceiver's negotiated header
    extensions and codec feedback, which aiortc writes into the answer and configures the map from."""
    handle = inspect.getsource(aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtp_data)
    assert "packet = RtpPacket.parse(data, self._rtp_header_extensions_map)" in handle
    assert "receiver = self._rtp_router.route_rtp(packet)" in handle
    assert "self._rtp_header_extensions_map.configure(parameters)" in inspect.getsource(
        aiortc.rtcdtlstransport.RTCDtlsTransport._register_rtp_receiver)
    configure = inspect.getsource(aiortc.rtp.HeaderExtensionsMap.configure)
    assert "self.__ids.transport_sequence_number = ext.id" in configure
    assert aiortc_passthrough.TRANSPORT_CC_URI in configure
    for name in ("abs_send_time", "audio_level", "transport_sequence_number", "mid"):
        assert hasattr(aiortc.rtp.HeaderExtensionsMap()._HeaderExtensionsMap__ids, name), name  # type: ignore[attr-defined]
    route = inspect.getsource(aiortc.rtcdtlstransport.RtpRouter.route_rtp)
    assert "packet.ssrc" in route and "packet.payload_type" in route
    receiver = inspect.getsource(RTCRtpReceiver)
    assert "self.__nack_generator = NackGenerator()" in receiver
    assert "sorted(self.__nack_generator.missing)" in receiver
    wrap = inspect.getsource(aiortc.rtp.wrap_rtx)
    for text in ("packet.marker", "packet.timestamp", "packet.payload", "rtx.csrc = packet.csrc",
                 "rtx.extensions = packet.extensions"):
        assert text in wrap, text
    assert "wrap_rtx(" in inspect.getsource(RTCRtpSender._retransmit)
    assert "self.__ids.mid" in inspect.getsource(aiortc.rtp.HeaderExtensionsMap.set)
    description = inspect.getsource(aiortc.rtcpeerconnection.create_media_description_for_transceiver)
    assert "headerExtensions=transceiver._headerExtensions" in description
    assert "codecs=transceiver._codecs" in description
    assert 'lines.append(f"a=rtcp-fb:{codec.payloadType} {value}")' in inspect.getsource(aiortc.sdp)


async def test_an_offer_with_transport_cc_is_answered_with_it_on_the_m_lines_the_client_sends() -> None:
    """A browser-like offer (transport-cc on its sending m-lines) gets the header extension and
    `a=rtcp-fb:<pt> transport-cc` back; an offer without (aiortc peers) gets neither."""
    from aiortc import RTCSessionDescription

    client = RTCPeerConnection(rtc_configuration([]))
    server = RTCPeerConnection(rtc_configuration([]))
    try:
        client.addTransceiver("audio", direction="sendonly")
        client.addTransceiver("video", direction="sendonly")
        await client.setLocalDescription(await client.createOffer())
        plain = client.localDescription.sdp
        browser_like = plain.replace(
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
            f"a=extmap:7 {aiortc_passthrough.TRANSPORT_CC_URI}\r\n")
        browser_like = browser_like.replace("a=rtcp-fb:97 nack\r\n",
                                            "a=rtcp-fb:97 nack\r\na=rtcp-fb:97 transport-cc\r\n")
        assert browser_like.count("transport-wide-cc") == 2 and "transport-cc\r\n" in browser_like
        await server.setRemoteDescription(RTCSessionDescription(sdp=browser_like, type="offer"))
        aiortc_passthrough.accept_transport_cc(server, browser_like)
        answer = (await server.createAnswer()).sdp
        assert answer.count(f"a=extmap:7 {aiortc_passthrough.TRANSPORT_CC_URI}") == 2  # audio and video
        assert "a=rtcp-fb:97 transport-cc" in answer
        again = RTCPeerConnection(rtc_configuration([]))
        try:
            await again.setRemoteDescription(RTCSessionDescription(sdp=plain, type="offer"))
            aiortc_passthrough.accept_transport_cc(again, plain)
            assert "transport-wide-cc" not in (await again.createAnswer()).sdp
            assert "transport-cc" not in (await again.createAnswer()).sdp
        finally:
            await again.close()
    finally:
        await client.close()
        await server.close()


def test_aioice_still_hands_datagrams_to_the_connection_and_the_dtls_receive_loop_still_reads_srtp_so() -> None:
    """`install_direct_receive` replaces the aioice Connection's `data_received` (called through
    `self.receiver`) and does for SRTP/SRTCP what `_recv_next` does, with its counters and clock."""
    from aioice.ice import Connection, StunProtocol

    stun = inspect.getsource(StunProtocol.datagram_received)
    assert "self.receiver.data_received(data, self.local_candidate.component)" in stun
    assert "message = stun.parse_message(data)" in stun  # what `_media_first` skips for RTP/RTCP
    assert "self._queue.put_nowait((data, component))" in inspect.getsource(Connection.data_received)
    recv = inspect.getsource(aiortc.rtcdtlstransport.RTCDtlsTransport._recv_next)
    for text in ("data = await self.transport._recv()", "self.__rx_bytes += len(data)", "self.__rx_packets += 1",
                 "elif first_byte > 127 and first_byte < 192 and self._rx_srtp:",
                 "arrival_time_ms = clock.current_ms()", "if is_rtcp(data):",
                 "data = self._rx_srtp.unprotect_rtcp(data)", "await self._handle_rtcp_data(data)",
                 "data = self._rx_srtp.unprotect(data)", "except pylibsrtp.Error as exc:"):
        assert text in recv, text
    assert "self._recv = self._connection.recv" in inspect.getsource(aiortc.rtcicetransport.RTCIceTransport)
    assert "self._set_state(State.CONNECTED)" in inspect.getsource(aiortc.rtcdtlstransport.RTCDtlsTransport)
    assert "delta = current_datetime() - NTP_EPOCH" in inspect.getsource(aiortc.clock.current_ms)


def test_sending_rtp_still_goes_dtls_srtp_then_the_nominated_pairs_udp_protocol() -> None:
    """`_send_now` (the send port's packets) does what `_send_rtp` -> `Connection.sendto` ->
    `StunProtocol.send_data` do, with the transport's counters."""
    from aioice.ice import Connection, StunProtocol

    send = inspect.getsource(aiortc.rtcdtlstransport.RTCDtlsTransport._send_rtp)
    for text in ("if self._state != State.CONNECTED:", "data = self._tx_srtp.protect(data)",
                 "await self.transport._send(data)", "self.__tx_bytes += len(data)", "self.__tx_packets += 1"):
        assert text in send, text
    assert "self._send = self._connection.send" in inspect.getsource(aiortc.rtcicetransport.RTCIceTransport)
    assert "await self.sendto(data, 1)" in inspect.getsource(Connection.send)
    sendto = inspect.getsource(Connection.sendto)
    assert "active_pair = self._nominated.get(component)" in sendto
    assert "await active_pair.protocol.send_data(data, active_pair.remote_addr)" in sendto
    assert "self.transport.sendto(data, addr)" in inspect.getsource(StunProtocol.send_data)


def test_the_sender_rtp_loop_can_still_be_restarted_with_another_codec() -> None:
    """`follow_send_codec` (test publishers that switch codec as browsers do) reads the loop's locals, stops
    it without stopping its track, and starts a new one that draws its numbers before its first wait."""
    run_rtp = inspect.getsource(RTCRtpSender._run_rtp)
    for text in ("async def _run_rtp(self, codec: RTCRtpCodecParameters)", "sequence_number = random_sequence_number()",
                 "timestamp_origin = random32()", "if self.__track:\n            self.__track.stop()",
                 "self.__encoder = None", "self.__rtp_exited.set()",
                 "timestamp = uint32_add(timestamp_origin, enc_frame.timestamp)"):
        assert text in run_rtp, text
    assert "self.__track = track" in inspect.getsource(RTCRtpSender.replaceTrack)
    stop = inspect.getsource(RTCRtpSender.stop)
    assert "self.__rtp_task.cancel()" in stop and "self.__rtp_exited.wait()" in stop
    assert "codec.payloadType" in inspect.getsource(RTCRtpSender.send) and "self.__rtx_payload_type" in \
        inspect.getsource(RTCRtpSender._retransmit)

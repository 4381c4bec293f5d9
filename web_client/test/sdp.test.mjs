// node --test web_client/test/: the SDP adjustments for the aiortc SFU (run by tests/browser/test_js_units.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { alignHeaderExtensions, keepPayloadTypes, msidOf, useSfuPayloadTypes } from "../js/sdp.js";

const CHROME_OFFER = [
  "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "a=mid:0",
  "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
  "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
  "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
  "a=sendrecv", "a=msid:s1 a1",
  "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1",
  "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000",
  "a=rtpmap:8 PCMA/8000", "a=rtpmap:13 CN/8000", "a=rtpmap:110 telephone-event/48000",
  "a=rtpmap:126 telephone-event/8000",
  "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103", "a=mid:1",
  "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
  "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
  "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
  "a=sendrecv", "a=msid:s1 v1",
  "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli",
  "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
  "a=rtpmap:102 H264/90000", "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
  "a=rtpmap:103 rtx/90000", "a=fmtp:103 apt=102", "",
].join("\r\n");

const lines = (sdp, prefix) => sdp.split("\r\n").filter((l) => l.startsWith(prefix));

test("our offer uses the SFU's header extension ids and keeps every extension once per id", () => {
  const sdp = alignHeaderExtensions(CHROME_OFFER);
  assert.deepEqual(lines(sdp, "a=extmap:").slice(0, 3), [
    "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
  ]);
  assert.ok(sdp.includes("a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"));
});

test("our offer uses aiortc's payload types and leaves out codecs the SFU does not know", () => {
  const sdp = useSfuPayloadTypes(CHROME_OFFER);
  assert.deepEqual(lines(sdp, "m="), ["m=audio 9 UDP/TLS/RTP/SAVPF 96 9 0 8", "m=video 9 UDP/TLS/RTP/SAVPF 97 98 99 100"]);
  assert.ok(sdp.includes("a=rtpmap:96 opus/48000/2") && sdp.includes("a=fmtp:96 minptime=10;useinbandfec=1"));
  assert.ok(sdp.includes("a=rtpmap:97 VP8/90000") && sdp.includes("a=rtcp-fb:97 nack pli"));
  assert.ok(sdp.includes("a=fmtp:98 apt=97") && sdp.includes("a=fmtp:100 apt=99"));
  assert.ok(!sdp.includes("red/48000") && !sdp.includes("telephone-event"));
});

test("in the SFU's offer our earlier m-lines keep our payload types; its new m-lines are untouched", () => {
  const previous = CHROME_OFFER;
  const serverOffer = [
    "v=0", "o=- 3 3 IN IP4 0.0.0.0", "s=-", "t=0 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "a=mid:0", "a=recvonly",
    "a=rtpmap:96 opus/48000/2", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
    "m=video 9 UDP/TLS/RTP/SAVPF 97 98", "a=mid:1", "a=recvonly",
    "a=rtpmap:97 VP8/90000", "a=rtcp-fb:97 nack", "a=rtpmap:98 rtx/90000", "a=fmtp:98 apt=97",
    "m=video 9 UDP/TLS/RTP/SAVPF 97 98", "a=mid:2", "a=sendonly", "a=msid:p_1 t_9",
    "a=rtpmap:97 VP8/90000", "a=rtpmap:98 rtx/90000", "a=fmtp:98 apt=97", "",
  ].join("\r\n");
  const sdp = keepPayloadTypes(serverOffer, previous);
  assert.deepEqual(lines(sdp, "m="), [
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8", "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 9 UDP/TLS/RTP/SAVPF 97 98"]);
  assert.ok(sdp.includes("a=fmtp:97 apt=96") && sdp.includes("a=rtcp-fb:96 nack"));
  assert.deepEqual(msidOf(sdp, "2"), { stream: "p_1", track: "t_9" });
  assert.equal(msidOf(sdp, "7"), null);
});

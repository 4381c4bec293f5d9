// node --test web_client/test/: reading the SFU's SDP (run by tests/browser/test_js_units.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { msidOf } from "../js/sdp.js";

test("the msid of an m-line is found by its mid; an unknown mid gives null", () => {
  const sdp = [
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1 2",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=recvonly", "a=rtpmap:111 opus/48000/2",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=recvonly", "a=rtpmap:96 VP8/90000",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:2", "a=sendonly", "a=msid:p_1 t_9", "a=rtpmap:96 VP8/90000", "",
  ].join("\r\n");
  assert.deepEqual(msidOf(sdp, "2"), { stream: "p_1", track: "t_9" });
  assert.deepEqual(msidOf(sdp, 2), { stream: "p_1", track: "t_9" });
  assert.equal(msidOf(sdp, "1"), null);
  assert.equal(msidOf(sdp, "7"), null);
  assert.equal(msidOf(null, "2"), null);
});

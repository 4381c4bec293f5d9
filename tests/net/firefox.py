"""Debian's Firefox ESR as a participant, driven over its built-in WebDriver BiDi agent (there is no
geckodriver here). Run inside a network namespace (tests/netns.py): Firefox does not pair with loopback
server candidates, and the agent listens on the namespace's own loopback.

    python -m tests.net.firefox --url http://198.51.100.1:8080/ --cid C --token T

The page is the server's own index.html; the web client's `Call` (web_client/js/signaling.js) joins with a
fake camera and microphone. Prints JSON lines: {"event": "started"}, then every 0.3 s {"event": "stats",
"video_frames", "audio_packets", "markers": [[sender, counter], ...], "state", "errors", "connection"}.
Every signaling message both ways (tokens left out; with an SDP, its a=setup, ICE and fingerprint lines, then
the whole SDP) and the peer connection's state changes go to stderr, which pytest shows for a failed test.
Stops on stdin EOF or {"cmd": "quit"}. No OpenH264: Firefox then declines H264, as many installs do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

PREFS = {
    "media.navigator.streams.fake": True,  # a generated camera and microphone
    "media.navigator.permission.disabled": True,
    # The server is plain http on a TEST-NET address: let the page use the camera as on https.
    "media.devices.insecure.enabled": True,
    "media.getusermedia.insecure.enabled": True,
    "media.autoplay.default": 0,
    "media.gmp-gmpopenh264.enabled": False,  # no H264, as Firefox without the OpenH264 plugin
    "media.gmp-manager.url": "http://127.0.0.1:1/",  # never download it
    "media.peerconnection.video.h264_enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "network.proxy.type": 0,
}

JOIN = """async (cid, token) => { try {
  // What went over the signaling socket and through the peer connection's descriptions, for stderr (`STATS`
  // drains it): a failed negotiation shows its SDPs both ways.
  window.nettlegeSignals = [];
  const note = (...entry) => window.nettlegeSignals.push([performance.now() / 1000, ...entry]);
  const PlainSocket = window.WebSocket;
  window.WebSocket = class extends PlainSocket {
    constructor(...a) { super(...a); this.addEventListener("message", (e) => note("in", e.data)); }
    send(data) { note("out", data); super.send(data); }
  };
  const PlainPc = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends PlainPc {
    constructor(...a) {
      super(...a);
      for (const event of ["signalingstatechange", "iceconnectionstatechange", "connectionstatechange"]) {
        this.addEventListener(event, () => note("pc", `${event}: signaling ${this.signalingState}, ice `
          + `${this.iceConnectionState}, connection ${this.connectionState}`));
      }
    }
    async setLocalDescription(d) {
      try { await super.setLocalDescription(d); note("pc", `setLocalDescription(${d ? d.type : "implicit"}) ok`); }
      catch (e) { note("pc", `setLocalDescription(${d ? d.type : "implicit"}) failed: ${e}`); throw e; }
    }
    async setRemoteDescription(d) {
      try { await super.setRemoteDescription(d); note("pc", `setRemoteDescription(${d.type}) ok`); }
      catch (e) { note("pc", `setRemoteDescription(${d.type}) failed: ${e}`); throw e; }
    }
  };
  const { Call } = await import("/static/js/signaling.js");
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  const call = new Call({ consultationId: cid, token, displayName: "Firefox", localStream: stream });
  window.nettlegeCall = call;
  window.nettlegeErrors = [];
  window.nettlegeVideos = [];
  call.addEventListener("error", (e) => window.nettlegeErrors.push(`${e.detail.code}: ${e.detail.message}`));
  call.addEventListener("track", (e) => {
    if (e.detail.track.kind !== "video") return;
    const v = document.createElement("video");
    v.muted = true; v.autoplay = true; v.srcObject = new MediaStream([e.detail.track]);
    document.body.append(v);
    window.nettlegeVideos.push(v);
  });
  call.start();
  return "started";
} catch (e) { return "error: " + e + " " + (e && e.stack); } }"""

# The markers load_tests.clients.MarkerVideoTrack draws: a 16-bit counter in the top band, the sender id below.
STATS = """async () => {
  const call = window.nettlegeCall;
  const out = { video_frames: 0, audio_packets: 0, markers: [], state: call && call.state,
                signals: (window.nettlegeSignals || []).splice(0),
                errors: window.nettlegeErrors || [], connection: call && call.pc && call.pc.connectionState };
  if (call && call.pc) (await call.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") out.video_frames += s.framesDecoded || 0;
    if (s.type === "inbound-rtp" && s.kind === "audio") out.audio_packets += s.packetsReceived || 0;
  });
  for (const v of window.nettlegeVideos || []) {
    if (!v.videoWidth) continue;
    const c = document.createElement("canvas");
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext("2d");
    g.drawImage(v, 0, 0);
    const b = Math.floor(c.width / 16);
    const bit = (row, i) => {
      const d = g.getImageData(i * b + b / 4, row * b + b / 4, b / 2, b / 2).data;
      let sum = 0;
      for (let k = 0; k < d.length; k += 4) sum += d[k];
      return sum / (d.length / 4) > 128 ? 1 : 0;
    };
    let counter = 0, sender = 0;
    for (let i = 0; i < 16; i++) counter = counter * 2 + bit(0, i);
    for (let i = 0; i < 8; i++) sender = sender * 2 + bit(1, i);
    out.markers.push([sender, counter]);
  }
  return JSON.stringify(out);
}"""


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "at": time.monotonic(), **fields}) + "\n")
    sys.stdout.flush()


def log_signal(at: float, direction: str, data: str) -> None:
    """One signaling message (or peer connection event) on stderr, which pytest shows for a failed test: with
    an SDP, its DTLS role, ICE credentials and fingerprints per m-line first, then the whole SDP."""
    try:
        message = json.loads(data) if direction != "pc" else None
    except ValueError:
        message = None
    if not isinstance(message, dict):
        sys.stderr.write(f"firefox {at:9.3f} {direction} {data}\n")
        return
    sdp = message.get("sdp") if isinstance(message.get("sdp"), str) else None
    brief = {k: "..." if k == "sdp" or "token" in k else v for k, v in message.items()}
    sys.stderr.write(f"firefox {at:9.3f} {direction} {json.dumps(brief)[:300]}\n")
    if sdp:
        keys = ("m=", "a=setup:", "a=ice-ufrag:", "a=fingerprint:", "a=mid:", "a=group:", "a=sendrecv",
                "a=sendonly", "a=recvonly", "a=inactive", "a=bundle-only")
        summary = [line for line in sdp.splitlines() if line.startswith(keys)]
        sys.stderr.write("".join(f"    {line}\n" for line in summary))
        sys.stderr.write("".join(f"      | {line}\n" for line in sdp.splitlines()))
    sys.stderr.flush()


class Bidi:
    """The few WebDriver BiDi commands used: session.new, browsingContext.getTree/navigate, script.callFunction."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json(timeout=60)
            if message.get("id") == self.next_id:
                if message.get("type") == "error":
                    raise RuntimeError(f"{method}: {message.get('error')}: {message.get('message')}")
                return message["result"]

    async def function(self, context: str, declaration: str, *args: str) -> Any:
        result = await self.call("script.callFunction", {
            "functionDeclaration": declaration, "target": {"context": context}, "awaitPromise": True,
            "arguments": [{"type": "string", "value": a} for a in args]})
        if result.get("type") == "exception":
            raise RuntimeError(f"page script failed: {json.dumps(result.get('exceptionDetails'))[:500]}")
        return result["result"].get("value")


async def connect_agent(port: int, process: subprocess.Popen[bytes]) -> aiohttp.ClientWebSocketResponse:
    session = aiohttp.ClientSession()
    deadline = time.monotonic() + 60
    while True:
        try:
            return await session.ws_connect(f"ws://127.0.0.1:{port}/session", max_msg_size=0)
        except aiohttp.ClientError:
            if process.poll() is not None or time.monotonic() > deadline:
                await session.close()
                raise RuntimeError(f"Firefox's BiDi agent did not start (exit {process.poll()})") from None
            await asyncio.sleep(0.2)


async def drive(args: argparse.Namespace, process: subprocess.Popen[bytes]) -> None:
    ws = await connect_agent(args.port, process)
    bidi = Bidi(ws)
    await bidi.call("session.new", {"capabilities": {}})
    tree = await bidi.call("browsingContext.getTree", {})
    context = tree["contexts"][0]["context"]
    await bidi.call("browsingContext.navigate", {"context": context, "url": args.url, "wait": "complete"})
    started = await bidi.function(context, JOIN, args.cid, args.token)
    emit("started", result=started)
    if started != "started":
        raise RuntimeError(f"the page could not join: {started}")
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    line_task = asyncio.ensure_future(reader.readline())
    while True:
        stats = json.loads(await bidi.function(context, STATS))
        for entry in stats.pop("signals"):
            log_signal(*entry)
        emit("stats", **stats)
        done, _ = await asyncio.wait({line_task}, timeout=0.3)
        if done:
            line = line_task.result()
            if not line or json.loads(line).get("cmd") == "quit":
                break
            line_task = asyncio.ensure_future(reader.readline())
    with contextlib.suppress(Exception):
        await bidi.call("session.end", {})
    await ws.close()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so `finally` closes Firefox
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--cid", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, default=9222)
    args = parser.parse_args()
    binary = shutil.which("firefox-esr") or shutil.which("firefox")
    if binary is None:
        raise SystemExit("firefox-esr is not installed (make system-deps)")
    with tempfile.TemporaryDirectory(prefix="nettlege-firefox-") as profile:
        host = args.url.split("//", 1)[1].split(":", 1)[0].split("/", 1)[0]
        prefs = {**PREFS, "dom.securecontext.allowlist": host}
        Path(profile, "user.js").write_text("".join(
            f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items()))
        process = subprocess.Popen(
            [binary, "--headless", "--no-remote", "--profile", profile, f"--remote-debugging-port={args.port}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            asyncio.run(drive(args, process))
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()

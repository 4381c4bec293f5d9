"""Debian's Chromium as a participant inside a network namespace (tests/netns.py), driven by Playwright.

Playwright's driver stays in the test process; the browser it launches is a one-line wrapper that
`exec`s chromium through `ip netns exec`, so the browser (and every socket it opens) lives in the namespace
while Playwright's pipe to it (inherited descriptors 3 and 4) still works: `exec` keeps descriptors and
the process id, so closing the browser closes Chromium itself.

The page is the server's own index.html; the web client's `Call` (web_client/js/signaling.js) joins and
every remote video is watched frame by frame (requestVideoFrameCallback): each new marker drawn by
load_tests.clients.MarkerVideoTrack is recorded as [page time ms, sender, counter, peer connection
number] in `window.nlg.frames`. Peer connection number: 0 for the first, +1 after each reconnect;
`window.nlg.network` has the web client's own network-change triggers ([page ms, reason]).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from tests import netns
from tests.browser.conftest import CHROMIUM_ARGS

# Host candidates as addresses, not mDNS names: the server (aiortc) cannot resolve .local names.
NAMESPACE_ARGS = [*CHROMIUM_ARGS, "--disable-features=WebRtcHideLocalIpsWithMdns",
                  "--autoplay-policy=no-user-gesture-required"]

# A camera that draws MarkerVideoTrack's markers (counter in the top band, sender id below, 20 px blocks at
# 320 px) 30 times a second on a canvas, and a tone for a microphone: no device, no permission needed.
MARKER_STREAM = """(sender) => {
  const c = document.createElement("canvas");
  c.width = 320; c.height = 240;
  const g = c.getContext("2d");
  let counter = 0;
  const draw = () => {
    g.fillStyle = "rgb(128,128,128)"; g.fillRect(0, 0, 320, 240);
    const block = (bit, x, y) => { g.fillStyle = bit ? "#fff" : "#000"; g.fillRect(x, y, 20, 20); };
    for (let i = 0; i < 16; i++) block((counter >> (15 - i)) & 1, i * 20, 0);
    for (let i = 0; i < 8; i++) block((sender >> (7 - i)) & 1, i * 20, 20);
    counter = (counter + 1) & 0xffff;
  };
  draw();
  setInterval(draw, 33);
  const audio = new AudioContext();
  const tone = audio.createOscillator();
  const out = audio.createMediaStreamDestination();
  tone.connect(out); tone.start();
  return new MediaStream([...c.captureStream(30).getVideoTracks(), ...out.stream.getAudioTracks()]);
}"""

# Prefer H264 for everything this page sends and receives, as Safari does (Chromium's default is VP8).
PREFER_H264 = """() => {
  const add = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (...args) {
    const transceiver = add.apply(this, args);
    const kind = typeof args[0] === "string" ? args[0] : args[0].kind;
    if (kind === "video") {
      const codecs = RTCRtpReceiver.getCapabilities("video").codecs;
      transceiver.setCodecPreferences([...codecs.filter((c) => c.mimeType === "video/H264"),
                                       ...codecs.filter((c) => c.mimeType !== "video/H264")]);
    }
    return transceiver;
  };
}"""

JOIN = """async ([cid, token, sender]) => { try {
  const { Call } = await import("/static/js/signaling.js");
  const localStream = sender ? (""" + MARKER_STREAM + """)(sender) : null;
  const call = new Call({ consultationId: cid, token, displayName: "Chromium", localStream });
  const nlg = { errors: [], frames: [], pc: 0, states: [], resets: [], network: [] };
  window.nettlegeCall = call;
  window.nlg = nlg;
  call.addEventListener("error", (e) => nlg.errors.push(`${e.detail.code}: ${e.detail.message}`));
  call.addEventListener("state", (e) => nlg.states.push([performance.now(), e.detail.state]));
  call.addEventListener("reset", () => { nlg.pc += 1; nlg.resets.push(performance.now()); });
  call.addEventListener("network", (e) => nlg.network.push([performance.now(), e.detail.reason]));
  // As the consultation screen (web_client/js/views/room.js) wires the browser's network events.
  window.addEventListener("offline", () => call.networkLost());
  window.addEventListener("online", () => call.retryNow());
  call.addEventListener("track", (e) => {
    if (e.detail.track.kind !== "video") return;
    const pc = nlg.pc;
    const v = document.createElement("video");
    v.muted = true; v.autoplay = true; v.playsInline = true;
    v.srcObject = new MediaStream([e.detail.track]);
    document.body.append(v);
    const c = document.createElement("canvas");
    const g = c.getContext("2d", { willReadFrequently: true });
    let last = -1;
    const onFrame = () => {
      if (v.videoWidth >= 16) {
        c.width = v.videoWidth; c.height = v.videoHeight;
        g.drawImage(v, 0, 0);
        const b = Math.floor(c.width / 16), q = b >> 2;
        const d = g.getImageData(0, 0, c.width, 2 * b).data;
        const bit = (row, i) => {  // the mean of the block's middle half: one pixel may be an artefact
          let sum = 0, n = 0;
          for (let y = row * b + q; y < row * b + b - q; y++)
            for (let x = i * b + q; x < i * b + b - q; x++) { sum += d[(y * c.width + x) * 4]; n++; }
          return sum / n > 128 ? 1 : 0;
        };
        let counter = 0, sender = 0;
        for (let i = 0; i < 16; i++) counter = counter * 2 + bit(0, i);
        for (let i = 0; i < 8; i++) sender = sender * 2 + bit(1, i);
        if (counter !== last) { nlg.frames.push([performance.now(), sender, counter, pc]); last = counter; }
      }
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  });
  call.start();
  return "started";
} catch (e) { return "error: " + e + " " + (e && e.stack); } }"""

# The figures of every inbound stream, by kind (the one with most bytes is the forwarded one).
STATS = """async () => {
  const call = window.nettlegeCall;
  const out = { now: performance.now(), state: call && call.state, connection: call && call.pc
                && call.pc.connectionState, video: null, audio: null };
  if (!call || !call.pc) return out;
  const keep = ["bytesReceived", "packetsReceived", "packetsLost", "nackCount", "framesDecoded",
                "framesPerSecond", "freezeCount", "totalFreezesDuration", "jitterBufferDelay",
                "jitterBufferEmittedCount", "keyFramesDecoded", "pliCount", "firCount", "jitter"];
  (await call.pc.getStats()).forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    if (out[s.kind] && (out[s.kind].bytesReceived || 0) >= (s.bytesReceived || 0)) return;
    out[s.kind] = Object.fromEntries(keep.filter((k) => k in s).map((k) => [k, s[k]]));
  });
  return out;
}"""


async def until(predicate: Callable[[], Awaitable[Any]], within_s: float, what: str, every_s: float = 0.05) -> Any:
    """Poll the async `predicate` until it returns something truthy (returned); TimeoutError after `within_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not (result := await predicate()):
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {within_s} s waiting for {what}")
        await asyncio.sleep(every_s)
    return result


@contextlib.asynccontextmanager
async def chromium_in(namespace: netns.Namespace, extra_args: list[str] | None = None) -> AsyncIterator[Any]:
    """A headless Chromium whose network is `namespace`'s (`extra_args`: more command-line flags); closed
    afterwards."""
    from playwright.async_api import async_playwright

    binary = shutil.which("chromium")
    if binary is None:
        raise RuntimeError("Debian chromium is not installed (make system-deps)")
    with tempfile.TemporaryDirectory(prefix="nettlege-chromium-") as tmp:
        wrapper = _wrapper(Path(tmp), namespace, binary)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(wrapper), headless=True,
                                                 args=[*NAMESPACE_ARGS, *(extra_args or [])])
            try:
                yield browser
            finally:
                await browser.close()


def _wrapper(directory: Path, namespace: netns.Namespace, binary: str) -> Path:
    wrapper = directory / "chromium-in-namespace"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {namespace.name} {binary} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


class Participant:
    """One page in the namespaced Chromium that joined a consultation through the web client's `Call`."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.page_errors: list[str] = []
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    @classmethod
    async def join(cls, browser: Any, base_url: str, cid: str, token: str, *, publish_sender: int = 0,
                   prefer_h264: bool = False) -> Participant:
        """Join as a subscriber, or with `publish_sender` publish markers with that sender id and a tone."""
        context = await browser.new_context()
        participant = cls(await context.new_page())
        await participant.page.goto(base_url)
        if prefer_h264:
            await participant.page.evaluate(PREFER_H264)
        started = await participant.page.evaluate(JOIN, [cid, token, publish_sender])
        if started != "started":
            raise AssertionError(f"the page could not join: {started}")
        return participant

    async def now(self) -> float:
        """The page's clock (ms), which every recorded time uses."""
        return float(await self.page.evaluate("() => performance.now()"))

    async def frames(self, since: int = 0) -> list[list[float]]:
        """[page ms, sender, counter, peer connection number] per new marker, from the `since`-th on."""
        return list(await self.page.evaluate("(n) => window.nlg.frames.slice(n)", since))

    async def stats(self) -> dict[str, Any]:
        return dict(await self.page.evaluate(STATS))

    async def sent_video_codec(self) -> str | None:
        """The codec of what the page sends on its camera's m-line now (getStats outbound-rtp → codec)."""
        return await self.page.evaluate("""async () => {
          const pc = window.nettlegeCall && window.nettlegeCall.pc;
          if (!pc) return null;
          const stats = await pc.getStats();
          let codec = null;
          stats.forEach((s) => {
            if (s.type === "outbound-rtp" && s.kind === "video" && s.codecId && (s.packetsSent || 0) > 0)
              codec = stats.get(s.codecId).mimeType;
          });
          return codec;
        }""")

    async def record(self) -> dict[str, Any]:
        """Errors, states and reconnect times the page recorded."""
        return dict(await self.page.evaluate(
            "() => ({ errors: nlg.errors, states: nlg.states, resets: nlg.resets, pc: nlg.pc, network: nlg.network,"
            " online: navigator.onLine })"))

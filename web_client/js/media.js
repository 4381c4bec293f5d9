// Camera and microphone: getUserMedia, the microphone level meter, cameras for the exam camera,
// and the pre-call connection check.

import { session } from "./session.js";

let kept = null; // the stream from the pre-call check, handed on to the consultation

/**
 * Camera and/or microphone. `deviceId` picks the camera, `micId` the microphone (else the ones chosen
 * before, kept in the session), `facingMode` front ("user") or back ("environment") on a phone, and
 * `hd` asks for up to 1280×720 (the nurse's exam camera: detail matters more than motion).
 */
export async function getLocalMedia({ video = true, audio = true, deviceId, micId, facingMode, hd = false } = {}) {
  const chosen = session.get("devices") || {};
  const cam = deviceId ?? (facingMode ? undefined : chosen.camera);
  const mic = micId ?? chosen.mic;
  const constraints = {
    audio: audio ? { echoCancellation: true, noiseSuppression: true,
      ...(mic ? { deviceId: micId ? { exact: mic } : { ideal: mic } } : {}) } : false,
    video: video ? {
      width: { ideal: hd ? 1280 : 640 }, height: { ideal: hd ? 720 : 480 },
      ...(cam ? { deviceId: deviceId ? { exact: cam } : { ideal: cam } } : {}),
      ...(facingMode ? { facingMode: { ideal: facingMode } } : {}),
    } : false,
  };
  return navigator.mediaDevices.getUserMedia(constraints);
}

/** Cameras, microphones and speakers (labels only once the page may use the camera or microphone). */
export async function listDevices() {
  const all = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: all.filter((d) => d.kind === "videoinput"),
    mics: all.filter((d) => d.kind === "audioinput"),
    // Choosing the speaker needs setSinkId (Chromium, Firefox; not Safari on iOS).
    speakers: typeof HTMLMediaElement.prototype.setSinkId === "function"
      ? all.filter((d) => d.kind === "audiooutput") : [],
  };
}

/** Remember a choice ({camera}, {mic} or {speaker}) for this tab: the consultation uses it. */
export function rememberDevice(choice) {
  session.set("devices", { ...(session.get("devices") || {}), ...choice });
}

/** Play `el` on the chosen speaker (no-op where the browser cannot choose). */
export async function useSpeaker(el, id = session.get("devices")?.speaker) {
  if (!id || typeof el.setSinkId !== "function") return;
  try { await el.setSinkId(id); } catch { /* the device went away: the default plays */ }
}

export function keepStream(stream) { kept = stream; }

/** The pre-call stream if it is still live (the consultation takes it over), else null. */
export function takeKeptStream() {
  const s = kept;
  kept = null;
  if (s && s.getTracks().some((tr) => tr.readyState === "live")) return s;
  return null;
}

export function stopStream(stream) {
  stream?.getTracks().forEach((tr) => tr.stop());
}

/** Calls onLevel(0..1) about ten times a second with the microphone's loudness. Returns stop(). */
export function levelMeter(stream, onLevel) {
  const track = stream.getAudioTracks()[0];
  if (!track) return () => {};
  const ctx = new AudioContext();
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    const rms = Math.sqrt(sum / data.length);
    onLevel(Math.min(1, rms * 8));
  }, 100);
  ctx.resume().catch(() => {});
  return () => { clearInterval(timer); ctx.close().catch(() => {}); };
}

export async function listCameras() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((d) => d.kind === "videoinput");
}

/** Round trips to the server (median, ms) and whether the browser can do WebRTC at all. */
export async function connectionCheck() {
  const times = [];
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    const resp = await fetch("/healthz", { cache: "no-store" });
    if (!resp.ok) throw new Error(`healthz ${resp.status}`);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { rtt_ms: Math.round(times[1]), webrtc: typeof RTCPeerConnection === "function" };
}

/**
 * Notices a network change the browser has not reported yet, during a call: Chromium sees a new address
 * only after ~6 s, a phone moving from Wi-Fi to 4G should have media back within 2 s. Calls onLost(reason)
 * once, and returns stop():
 * - "stalled": no RTP bytes on any inbound stream for `stallMs` (~1 s), after media had been flowing, while
 *   `expecting()` says someone is sending. A quiet call is not a lost one: a remote camera off stops only
 *   video bytes, their audio goes on (and with camera and microphone both off nothing is expected);
 * - "online": the browser is back on a network;
 * - "connection": `navigator.connection` says the network type changed (where the browser tells it).
 * One getStats() every `everyMs`, and only while the call's peer connection lives.
 */
export function watchInbound(pc, { expecting, onLost, stallMs = 800, everyMs = 200 }) {
  let bytes = -1;
  let changedAt = performance.now();
  let flowing = false;
  let stopped = false;
  let polling = false;
  const connection = navigator.connection;
  let type = connection?.type;

  const lost = (reason) => {
    if (stopped) return;
    stop();
    onLost(reason);
  };
  const poll = async () => {
    if (stopped || polling || pc.connectionState === "closed") return;
    polling = true;
    let received = 0;
    try {
      received = await inboundBytes(pc);
    } catch { return; } finally { polling = false; }
    const now = performance.now();
    if (received !== bytes) {
      flowing = flowing || (bytes >= 0 && received > bytes);
      bytes = received;
      changedAt = now;
    } else if (!flowing || !expecting()) {
      changedAt = now; // nothing should arrive: count from when something should
    } else if (now - changedAt >= stallMs) {
      lost("stalled");
    }
  };
  const timer = setInterval(poll, everyMs);
  const onOnline = () => lost("online");
  // `change` also fires for new downlink / rtt estimates: only a new network type is a network change;
  // anything else is a hint to look at once.
  const onConnection = () => {
    if (connection.type !== undefined && connection.type !== type) lost("connection");
    else poll();
    type = connection.type;
  };
  window.addEventListener("online", onOnline);
  connection?.addEventListener?.("change", onConnection);

  function stop() {
    stopped = true;
    clearInterval(timer);
    window.removeEventListener("online", onOnline);
    connection?.removeEventListener?.("change", onConnection);
  }
  return stop;
}

async function inboundBytes(pc) {
  let bytes = 0;
  (await pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp") bytes += s.bytesReceived || 0; });
  return bytes;
}

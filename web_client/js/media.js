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

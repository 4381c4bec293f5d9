// Camera and microphone: getUserMedia, the microphone level meter, cameras for the exam camera,
// and the pre-call connection check.

let kept = null; // the stream from the pre-call check, handed on to the consultation

export async function getLocalMedia({ video = true, audio = true, deviceId } = {}) {
  const constraints = {
    audio: audio ? { echoCancellation: true, noiseSuppression: true } : false,
    video: video ? { width: { ideal: 640 }, height: { ideal: 480 }, ...(deviceId ? { deviceId: { exact: deviceId } } : {}) } : false,
  };
  return navigator.mediaDevices.getUserMedia(constraints);
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

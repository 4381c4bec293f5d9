// The pre-call check: camera preview, microphone level and connection, before the clinician calls.
import { h, tr, announce } from "../dom.js";
import { t } from "../i18n.js";
import { connectionCheck, getLocalMedia, keepStream, levelMeter, stopStream } from "../media.js";
import { mediaErrorKey, mediaHelp } from "./mediahelp.js";
import { devicePicker } from "./devices.js";

/** Returns {element, stop(keep)}: stop(true) hands the live stream on to the consultation. */
export function precallCheck({ video = true, onPhone = null } = {}) {
  const preview = h("video", { class: "preview", autoplay: true, muted: true, playsInline: true,
    i18nAttrs: { "aria-label": "camera_preview" } });
  preview.muted = true;
  preview.hidden = true; // shown once the check has a camera
  const meter = h("meter", { id: "mic-level", min: 0, max: 1, low: 0.05, high: 0.9, optimum: 0.5, value: 0 });
  const results = h("ul", { class: "checks", role: "list", "aria-live": "polite" });
  const camItem = h("li", { id: "check-camera" });
  const micItem = h("li", { id: "check-microphone" });
  const netItem = h("li", { id: "check-connection" });
  results.append(...(video ? [camItem] : []), micItem, netItem);
  const start = h("button", { type: "button", class: "btn", id: "precall-start", i18n: "precall_start" });
  const el = h("section", { class: "card precall", "aria-labelledby": "precall-h" },
    h("h2", { id: "precall-h", i18n: "precall_title" }),
    h("p", { class: "hint", i18n: "precall_intro" }),
    video ? preview : null,
    h("div", { class: "field" }, h("label", { for: "mic-level", i18n: "mic_level" }), meter),
    results, start);
  let help = null;
  // Devices: shown once the check has run (the browser names them only after access is given).
  const replaceStream = async (opts) => {
    const next = await getLocalMedia({ video, audio: true, ...opts });
    stopMeter();
    stopStream(stream);
    stream = next;
    if (video) preview.srcObject = stream;
    stopMeter = levelMeter(stream, (level) => { meter.value = level; });
  };
  const devices = devicePicker({ idPrefix: "pre", stream: () => stream,
    onCamera: (id) => replaceStream({ deviceId: id }), onMic: (id) => replaceStream({ micId: id }),
    onSpeaker: async () => {}, onFacing: video ? (facing) => replaceStream({ facingMode: facing }) : null });
  devices.element.hidden = true;
  el.insertBefore(devices.element, start);

  let stream = null;
  let stopMeter = () => {};
  let heard = false;
  const mark = (item, ok, key, params) => {
    item.className = ok ? "ok" : "fail";
    tr(item, key, params);
  };

  start.addEventListener("click", async () => {
    start.disabled = true;
    stopMeter();
    stopStream(stream);
    heard = false;
    [camItem, micItem, netItem].forEach((i) => tr(i, "checking"));
    help?.remove();
    help = null;
    try {
      stream = await getLocalMedia({ video, audio: true });
      if (video) {
        preview.srcObject = stream;
        preview.hidden = false;
        const vt = stream.getVideoTracks()[0];
        mark(camItem, !!vt && vt.readyState === "live", vt ? "camera_ok" : "camera_missing");
      }
      devices.element.hidden = false;
      devices.refresh().catch(() => {});
      const at = stream.getAudioTracks()[0];
      mark(micItem, !!at, at ? "mic_ok_speak" : "mic_missing");
      stopMeter = levelMeter(stream, (level) => {
        meter.value = level;
        if (level > 0.02 && !heard) { heard = true; mark(micItem, true, "mic_ok_heard"); }
      });
    } catch (e) {
      // Both items get an answer (never left on "checking"), and the box says what to do about it.
      const key = mediaErrorKey(e);
      if (video) mark(camItem, false, `camera_${key}`);
      mark(micItem, false, `mic_${key}`);
      help = mediaHelp(e, { onPhone });
      results.after(help);
    }
    try {
      const net = await connectionCheck();
      const good = net.webrtc && net.rtt_ms < 400;
      mark(netItem, good, good ? "connection_ok" : (net.webrtc ? "connection_slow" : "connection_no_webrtc"),
        { ms: net.rtt_ms });
    } catch {
      mark(netItem, false, "connection_fail");
    }
    start.disabled = false;
    tr(start, "precall_again");
    announce(t("precall_done"));
  });

  return {
    element: el,
    stop(keep) {
      if (!start.isConnected && !stream) return;
      stopMeter();
      if (keep && stream) keepStream(stream);
      else stopStream(stream);
      stream = null;
    },
  };
}

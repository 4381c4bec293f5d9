// Choosing camera, microphone and speaker (before the call in the pre-call check, and during it), and the
// front/back camera switch on a phone. The choice is remembered for the tab (media.rememberDevice).
import { h, tr } from "../dom.js";
import { t } from "../i18n.js";
import { listDevices, rememberDevice } from "../media.js";

/**
 * @param {object} o
 * @param {string} o.idPrefix unique per screen ("pre" or "room")
 * @param {() => MediaStream|null} o.stream the live stream (to show which devices are in use)
 * @param {(id: string) => Promise<void>} o.onCamera
 * @param {(id: string) => Promise<void>} o.onMic
 * @param {(id: string) => Promise<void>} [o.onSpeaker]
 * @param {(facing: string) => Promise<void>} [o.onFacing] front/back switch (phones)
 */
export function devicePicker({ idPrefix, stream, onCamera, onMic, onSpeaker, onFacing }) {
  const camera = h("select", { id: `${idPrefix}-camera` });
  const mic = h("select", { id: `${idPrefix}-mic` });
  const speaker = h("select", { id: `${idPrefix}-speaker` });
  const status = h("p", { class: "hint", role: "status", id: `${idPrefix}-devices-status` });
  const flip = h("button", { type: "button", class: "btn", id: `${idPrefix}-flip`, i18n: "camera_flip", hidden: true });
  const row = (id, key, select) => h("div", { class: "field" }, h("label", { for: id, i18n: key }), select);
  const camField = row(`${idPrefix}-camera`, "device_camera", camera);
  const speakerField = row(`${idPrefix}-speaker`, "device_speaker", speaker);
  const element = h("div", { class: "devices stack", id: `${idPrefix}-devices` },
    camField, row(`${idPrefix}-mic`, "device_mic", mic), speakerField, flip, status);
  let facing = "user";

  const fill = (select, devices, current, fallbackKey) => {
    select.replaceChildren(...devices.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === current },
      d.label || t(fallbackKey, { n: i + 1 }))));
  };

  async function refresh() {
    const { cameras, mics, speakers } = await listDevices();
    const s = stream();
    const inUse = (kind) => (kind === "video" ? s?.getVideoTracks() : s?.getAudioTracks())?.[0]?.getSettings().deviceId;
    fill(camera, cameras, inUse("video"), "camera_n");
    fill(mic, mics, inUse("audio"), "mic_n");
    fill(speaker, speakers, null, "speaker_n");
    camField.hidden = cameras.length === 0;
    speakerField.hidden = speakers.length === 0 || !onSpeaker;
    // A phone has a front and a back camera; facingMode picks them without knowing their ids.
    flip.hidden = !onFacing || !(cameras.length > 1 || matchMedia("(pointer: coarse)").matches);
  }

  const changed = (select, kind, apply) => select.addEventListener("change", async () => {
    try {
      await apply(select.value);
      rememberDevice({ [kind]: select.value });
      tr(status, `device_${kind}_set`, { name: select.selectedOptions[0]?.textContent || "" });
    } catch (e) {
      tr(status, "device_failed", { reason: e.name || e.message });
    }
  });
  changed(camera, "camera", onCamera);
  changed(mic, "mic", onMic);
  if (onSpeaker) changed(speaker, "speaker", onSpeaker);
  flip.addEventListener("click", async () => {
    facing = facing === "user" ? "environment" : "user";
    try {
      await onFacing(facing);
      tr(status, facing === "user" ? "camera_front" : "camera_back");
    } catch (e) {
      tr(status, "device_failed", { reason: e.name || e.message });
    }
  });
  navigator.mediaDevices?.addEventListener?.("devicechange", () => { refresh().catch(() => {}); });
  refresh().catch(() => {});
  return { element, refresh };
}

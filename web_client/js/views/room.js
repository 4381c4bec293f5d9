// The consultation room for everyone: video (or chat only), controls (mute, camera off, exam camera,
// leave or end), chat beside it, participants with a quality indicator; hosts also invite, admit or
// deny knocks and end with an outcome. A dropped network reconnects into the same consultation.
import { api, isNetworkError, request } from "../api.js";
import { announce, formatDuration, h, tr, trAttrs } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";
import { Call, qualityOf } from "../signaling.js";
import { msidOf } from "../sdp.js";
import { Chat } from "../chat.js";
import { getLocalMedia, listCameras, stopStream, takeKeptStream, useSpeaker } from "../media.js";
import { devicePicker } from "./devices.js";
import { chatPanel } from "./chatpanel.js";
import { hostPanel } from "./hostpanel.js";
import { confirmDialog } from "./confirm.js";
import { mediaHelp } from "./mediahelp.js";
import { patientContext } from "./context.js";

export const titleKey = "room_title";
const HOSTS = ["clinician", "nurse", "operator"];
const QUALITY_MS = 2000;

/** Open a room: used by the route and by the invite page (which has its own token). */
export function render(root, [cid], ctx, opts = {}) {
  const token = opts.token || session.get(`room_token_${cid}`) || session.token;
  const role = opts.role || session.user?.role;
  const isHost = HOSTS.includes(role);
  const statusLine = h("p", { class: "room-status", id: "room-status", role: "status", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const remote = h("div", { class: "videos", id: "remote-videos" });
  const audios = h("div", { class: "audios", hidden: true }); // remote sound; plays while not shown
  const selfVideo = h("video", { class: "self-video", autoplay: true, muted: true, playsInline: true });
  selfVideo.muted = true;
  const selfTile = h("figure", { class: "tile tile-self", tabindex: "0", i18nAttrs: { "aria-label": "self_view_move" } },
    selfVideo, h("figcaption", { i18n: "you" }));
  draggable(selfTile);
  const controls = h("div", { class: "controls", role: "toolbar", i18nAttrs: { "aria-label": "call_controls" } });
  const stage = h("section", { class: "stage", i18nAttrs: { "aria-label": "video_area" } },
    h("div", { class: "screens" }, remote, h("p", { class: "no-video", i18n: "no_video_yet" }), selfTile),
    audios, controls);
  const side = h("div", { class: "side" });
  const heading = h("h1", { id: "room-h", i18n: "room_title" });
  // Someone left or lost the connection: said once, visibly and to screen readers.
  const presenceNotice = h("p", { class: "notice presence-notice", id: "presence-notice", role: "status" });
  const roomEl = h("div", { class: "room" }, h("div", { class: "room-head" }, heading, statusLine), error,
    presenceNotice, h("div", { class: "room-grid" }, stage, side));
  root.append(roomEl);

  let call = null;
  let chat = null;
  let localStream = null;
  let examStream = null;
  let consultation = null;
  let closed = false;
  let qualityTimer = null;
  let pollTimer = null;
  const tiles = new Map(); // stream id → {tile, video, track ids}
  const prevStats = new Map();
  const quality = new Map(); // participant id → good|fair|poor
  const placeholders = new Map(); // participant id → tile shown while they send no picture
  const known = new Map(); // participant id → {name, presence} from the last `participants`
  const pausedVideo = new Set(); // participant ids whose video the server paused for our weak link
  let graceTimer = null;
  let graceAt = 0; // when the last `participants` (and its grace_s) arrived

  const setStatus = (key, params) => tr(statusLine, key, params);
  setStatus("connecting");

  // --- participants (from signaling, with the REST view for names and lobby state) -----------
  const participantsList = h("ul", { class: "participants", id: "participants", role: "list" });
  const participantsSection = h("section", { class: "card", "aria-labelledby": "participants-h" },
    h("h2", { id: "participants-h", class: "h3", i18n: "participants" }), participantsList);
  let host = null;

  function renderParticipants() {
    const list = call?.participants?.length ? call.participants : (consultation?.participants || []);
    participantsList.replaceChildren(...list.filter((p) => !p.state || p.state === "admitted").map((p) => {
      const q = quality.get(p.id);
      const me = p.id === call?.participantId;
      return h("li", { class: "participant", dataset: { participant: p.id } },
        h("span", { class: "p-name" }, p.display_name || t(`role_${p.role}`), me ? ` (${t("you")})` : ""),
        h("span", { class: "p-role", i18n: `role_${p.role}` }),
        presenceBadge(p),
        p.audio_off ? h("span", { class: "tag media-off", i18n: "mic_off_tag" }) : null,
        p.video_off ? h("span", { class: "tag media-off", i18n: "camera_off_tag" }) : null,
        q && p.presence !== "reconnecting" ? h("span", { class: `quality quality-${q}`, i18n: `quality_${q}` }) : null,
        (p.tracks || []).some((x) => x.label === "exam-camera") ? h("span", { class: "tag", i18n: "exam_camera" }) : null);
    }));
    // (The host panel keeps its own lobby view fresh: a stale `consultation` here would hide a knock.)
  }

  function graceLeft(p) {
    return Math.max(0, Math.round((p.grace_s || 0) - (Date.now() - graceAt) / 1000));
  }

  function presenceBadge(p) {
    if (!p.presence || !call?.participants?.length) return null;
    if (p.presence === "reconnecting") {
      return h("span", { class: "presence presence-reconnecting", i18n: "presence_reconnecting",
        i18nParams: { s: graceLeft(p) } });
    }
    return h("span", { class: "presence presence-connected", i18n: "presence_connected" });
  }

  /** Badges on a participant's tile: reconnecting (with the grace countdown), microphone off, camera off. */
  function tileBadges(p) {
    if (!p) return [];
    return [
      p.presence === "reconnecting" ? h("span", { class: "badge tile-badge badge-reconnecting", i18n: "presence_reconnecting",
        i18nParams: { s: graceLeft(p) } }) : null,
      p.audio_off ? h("span", { class: "badge tile-badge", i18n: "mic_off_tag" }) : null,
      p.video_off ? h("span", { class: "badge tile-badge", i18n: "camera_off_tag" }) : null,
    ].filter(Boolean);
  }

  /** Presence from each `participants`: who came, who is reconnecting, who left (banner, tile gone). */
  function onParticipants(list) {
    graceAt = Date.now();
    const now = new Map(list.map((p) => [p.id, p]));
    for (const [id, was] of known) {
      if (now.has(id) || id === call?.participantId) continue;
      const key = was.presence === "reconnecting" ? "presence_lost" : "presence_left";
      tr(presenceNotice, key, { name: was.name });
      announce(t(key, { name: was.name }));
    }
    known.clear();
    for (const p of list) known.set(p.id, { name: p.display_name || t(`role_${p.role}`), presence: p.presence });
    // Tiles: the gone participant's pictures go; someone without a picture gets a name tile.
    for (const entry of tiles.values()) {
      if (entry.audio) continue;
      if (entry.ownerId && !now.has(entry.ownerId)) entry.tile.remove();
    }
    syncPlaceholders(list);
    for (const entry of tiles.values()) if (!entry.audio) captionFor(entry);
    for (const [id, tile] of placeholders) tile.querySelector(".tile-badges").replaceChildren(...tileBadges(now.get(id)));
    clearInterval(graceTimer);
    if (list.some((p) => p.presence === "reconnecting")) {
      graceTimer = setInterval(() => {
        roomEl.querySelectorAll("[data-i18n='presence_reconnecting']").forEach((el) => {
          const pid = el.closest("[data-participant]")?.dataset.participant;
          const p = pid && now.get(pid);
          if (p) tr(el, "presence_reconnecting", { s: graceLeft(p) });
        });
      }, 1000);
    }
  }

  /** A name tile for each other participant who sends no picture; none for one whose picture arrived. */
  function syncPlaceholders(list) {
    const now = new Map(list.map((p) => [p.id, p]));
    for (const [id, tile] of placeholders) if (!now.has(id)) { tile.remove(); placeholders.delete(id); }
    for (const p of list) {
      if (p.id === call?.participantId) continue;
      const hasVideo = [...tiles.values()].some((e) => !e.audio && e.ownerId === p.id && e.tile.isConnected
        && (ownerOf(e)?.label || "camera") === "camera");
      let tile = placeholders.get(p.id);
      if (hasVideo) { tile?.remove(); placeholders.delete(p.id); continue; }
      if (!tile) {
        tile = h("figure", { class: "tile tile-placeholder", dataset: { participant: p.id } },
          h("div", { class: "tile-avatar", "aria-hidden": "true" }), h("figcaption"), h("div", { class: "tile-badges" }));
        placeholders.set(p.id, tile);
      }
      const name = p.display_name || t(`role_${p.role}`);
      tile.querySelector(".tile-avatar").textContent = name.trim().charAt(0).toUpperCase();
      tile.querySelector("figcaption").textContent = name;
      if (!tile.isConnected) remote.append(tile);
    }
  }

  // --- remote media ---------------------------------------------------------------------------
  /** Whose track this is and its label ("exam-camera"): the SFU sets each forwarded m-line's msid to
   * "<participant id> <published track id>" (read again on every change: m-lines are reused). */
  function ownerOf(entry) {
    const msid = msidOf(call?.pc?.remoteDescription?.sdp, entry.mid);
    const streamId = msid?.stream || entry.stream?.id;
    const trackId = msid?.track || entry.track.id;
    for (const p of call?.participants || []) {
      const x = (p.tracks || []).find((tk) => tk.id === trackId);
      if (x || p.id === streamId) return { p, label: x?.label || null };
    }
    return null;
  }

  function captionFor(entry) {
    if (entry.audio) return;
    const owner = ownerOf(entry);
    const name = owner ? (owner.p.display_name || t(`role_${owner.p.role}`)) : t("participant");
    const label = owner?.label === "exam-camera" ? ` – ${t("exam_camera")}` : "";
    const paused = owner && pausedVideo.has(owner.p.id) ? ` – ${t("video_paused_bandwidth")}` : "";
    entry.caption.textContent = `${name}${label}${paused}`;
    entry.tile.classList.toggle("tile-paused", Boolean(paused));
    trAttrs(entry.video, { "aria-label": ["video_of", { name: `${name}${label}` }] });
    entry.tile.classList.toggle("tile-exam", owner?.label === "exam-camera");
    if (owner) {
      entry.ownerId = owner.p.id;
      entry.tile.dataset.participant = owner.p.id;
      entry.badges.replaceChildren(...tileBadges(owner.p));
      entry.tile.classList.toggle("tile-reconnecting", owner.p.presence === "reconnecting");
    }
  }

  function onTrack({ track, streams, mid }) {
    const stream = streams[0] || new MediaStream([track]);
    const known = tiles.get(track.id);
    if (known) { // an m-line the SFU reuses for another track: same receiver track, new msid
      Object.assign(known, { stream, mid });
      if (!known.tile.isConnected) {
        (known.audio ? audios : remote).append(known.tile);
        const media = known.audio ? known.tile : known.video;
        media.play().catch(() => {}); // taken out of the page, it paused
      }
      captionFor(known);
      if (call?.participants?.length) syncPlaceholders(call.participants);
      return;
    }
    if (track.kind === "audio") {
      const audio = h("audio", { autoplay: true });
      audio.srcObject = new MediaStream([track]);
      useSpeaker(audio);
      audios.append(audio);
      tiles.set(track.id, { track, stream, mid, tile: audio, audio: true, caption: null, video: null });
      track.addEventListener("ended", () => { audio.remove(); tiles.delete(track.id); });
      return;
    }
    const video = h("video", { autoplay: true, playsInline: true, muted: true, class: "remote-video" });
    video.muted = true;
    video.srcObject = new MediaStream([track]);
    const caption = h("figcaption");
    const badges = h("div", { class: "tile-badges" });
    const tile = h("figure", { class: "tile", dataset: { track: track.id } }, video, caption, badges);
    const entry = { track, stream, video, caption, badges, tile, mid, ownerId: null };
    tiles.set(track.id, entry);
    captionFor(entry);
    remote.append(tile);
    if (call?.participants?.length) syncPlaceholders(call.participants); // the picture replaces the name tile
    track.addEventListener("ended", () => { tile.remove(); tiles.delete(track.id); });
    // An m-line the SFU stops using goes inactive: hide its tile until the line is reused.
    stream.addEventListener?.("removetrack", (e) => { if (e.track === track) tile.remove(); });
  }

  async function measureQuality() {
    if (!call?.pc) return;
    const stats = await call.pc.getStats();
    const byTrack = new Map();
    stats.forEach((s) => { if (s.type === "inbound-rtp") byTrack.set(s.trackIdentifier || s.id, s); });
    const next = new Map();
    for (const [id, s] of byTrack) {
      const q = qualityOf(prevStats.get(id), s);
      prevStats.set(id, s);
      const entry = tiles.get(id);
      const owner = entry ? ownerOf(entry)?.p : null;
      if (owner && q) {
        const worse = { good: 0, fair: 1, poor: 2 };
        if (!next.has(owner.id) || worse[q] > worse[next.get(owner.id)]) next.set(owner.id, q);
      }
    }
    for (const p of call.participants || []) {
      const sq = p.stats?.quality;
      if (sq && !next.has(p.id)) next.set(p.id, sq);
    }
    const changed = [...next].some(([k, v]) => quality.get(k) !== v) || next.size !== quality.size;
    quality.clear();
    next.forEach((v, k) => quality.set(k, v));
    if (changed) renderParticipants();
  }

  // --- controls -------------------------------------------------------------------------------
  function toggleButton(id, offKey, onKey, apply) {
    const btn = h("button", { type: "button", class: "btn btn-control", id, "aria-pressed": "false", i18n: offKey });
    btn.addEventListener("click", () => {
      const on = btn.getAttribute("aria-pressed") !== "true";
      btn.setAttribute("aria-pressed", String(on));
      tr(btn, on ? onKey : offKey);
      apply(on);
      announce(t(on ? `${id}_announce_on` : `${id}_announce_off`));
    });
    return btn;
  }

  function buildControls(withVideo) {
    controls.replaceChildren();
    if (withVideo) {
      controls.append(toggleButton("mute", "mute", "unmute", (on) => {
        call?.setMuted(on);
        selfTile.classList.toggle("mic-off", on);
      }));
      controls.append(toggleButton("camera", "camera_off", "camera_on", (on) => {
        call?.setCameraOff(on);
        selfTile.classList.toggle("camera-off", on);
      }));
      // Without a camera or microphone the buttons cannot turn them on.
      if (!localStream?.getAudioTracks().length) controls.querySelector("#mute").disabled = true;
      if (!localStream?.getVideoTracks().length) controls.querySelector("#camera").disabled = true;
    }
    if (withVideo) controls.append(devicesControl());
    if (role === "nurse" && withVideo) controls.append(examCameraControl());
    controls.append(h("button", { type: "button", class: isHost ? "btn" : "btn btn-danger", id: "leave-call",
      i18n: "leave", onclick: () => leave() }));
    if (isHost) {
      controls.append(h("button", { type: "button", class: "btn btn-danger", id: "end-consultation",
        i18n: "end_consultation", onclick: () => host.openEnd() }));
    }
  }

  /** "Devices": camera, microphone and speaker during the call, and front/back on a phone. */
  function devicesControl() {
    const swap = async (kind, opts) => {
      const s = await getLocalMedia({ video: kind === "video", audio: kind === "audio", ...opts });
      const track = kind === "video" ? s.getVideoTracks()[0] : s.getAudioTracks()[0];
      if (!call) throw new Error("no call");
      await call.replaceLocalTrack(kind, track);
      localStream = call.localStream;
      selfVideo.srcObject = localStream;
    };
    const picker = devicePicker({ idPrefix: "room", stream: () => localStream,
      onCamera: (id) => swap("video", { deviceId: id }), onMic: (id) => swap("audio", { micId: id }),
      onSpeaker: async (id) => { for (const a of audios.querySelectorAll("audio")) await useSpeaker(a, id); },
      onFacing: (facing) => swap("video", { facingMode: facing }) });
    const panel = h("div", { class: "card devices-panel", id: "devices-panel", hidden: true }, picker.element);
    const toggle = h("button", { type: "button", class: "btn", id: "devices-toggle", "aria-expanded": "false",
      "aria-controls": "devices-panel", i18n: "devices" });
    toggle.addEventListener("click", () => {
      panel.hidden = !panel.hidden;
      toggle.setAttribute("aria-expanded", String(!panel.hidden));
      if (!panel.hidden) picker.refresh().catch(() => {});
    });
    controls.after(panel);
    return toggle;
  }

  function examCameraControl() {
    const select = h("select", { id: "exam-camera-select" }, h("option", { value: "", i18n: "exam_camera_none" }));
    const wrap = h("div", { class: "field inline" }, h("label", { for: "exam-camera-select", i18n: "exam_camera" }), select);
    listCameras().then((cams) => {
      const mainId = localStream?.getVideoTracks()[0]?.getSettings().deviceId;
      cams.forEach((c, i) => select.append(h("option", { value: c.deviceId || `cam-${i}` },
        `${c.label || t("camera_n", { n: i + 1 })}${c.deviceId === mainId ? ` (${t("in_use")})` : ""}`)));
    }).catch(() => {});
    // The nurse sees what her exam camera sends.
    const preview = h("video", { class: "exam-preview", id: "exam-preview", autoplay: true, muted: true, playsInline: true,
      hidden: true, i18nAttrs: { "aria-label": "exam_camera_preview" } });
    preview.muted = true;
    wrap.append(preview);
    select.addEventListener("change", async () => {
      stopStream(examStream);
      examStream = null;
      preview.hidden = true;
      try {
        if (select.value) {
          const id = select.value.startsWith("cam-") ? undefined : select.value;
          examStream = await getLocalMedia({ video: true, audio: false, deviceId: id, hd: true });
          preview.srcObject = examStream;
          preview.hidden = false;
        }
        await call?.setExtraStream("exam-camera", examStream);
        announce(t(examStream ? "exam_camera_on" : "exam_camera_off"));
      } catch (e) {
        error.textContent = t("media_denied", { reason: e.name || e.message });
      }
    });
    return wrap;
  }

  // --- lifecycle ------------------------------------------------------------------------------
  async function leave() {
    const sure = await confirmDialog({ id: "leave-dialog", titleKey: "leave_confirm_title",
      textKey: isHost ? "leave_confirm_text_host" : "leave_confirm_text", confirmKey: "leave_confirm",
      cancelKey: "stay" });
    if (!sure || closed) return;
    call?.leave();
    finish(null, false);
  }

  function finish(outcome, ended) {
    if (closed) return;
    closed = true;
    teardown();
    session.set("consultation", null);
    // The outcome is the patient's and the clinicians' business, not an interpreter's or a relative's.
    const shown = ["interpreter", "relative"].includes(role) ? "" : outcome || "";
    if (opts.onFinish) opts.onFinish({ outcome: shown || null, ended });
    else ctx.navigate(`#/ended/${cid}?${new URLSearchParams({ outcome: shown, left: ended ? "" : "1" })}`);
  }

  function teardown() {
    clearInterval(qualityTimer);
    clearInterval(graceTimer);
    clearTimeout(pollTimer);
    window.removeEventListener("online", onOnline);
    window.removeEventListener("offline", onOffline);
    call?.leave?.();
    chat?.stop();
    host?.stop();
    stopStream(localStream);
    stopStream(examStream);
  }

  const onOffline = () => { ctx.setBanner("reconnecting"); setStatus("reconnecting"); call?.networkLost(); };
  const onOnline = () => { call?.retryNow(); };
  window.addEventListener("offline", onOffline);
  window.addEventListener("online", onOnline);

  /** Without a signaling socket (or before admission) the REST view tells us about an end. */
  async function poll() {
    if (closed) return;
    try {
      // An invitee reads with the session token it got for the spent invite (none yet: skip).
      const tok = session.get(`room_token_${cid}`) || (opts.token ? null : session.token);
      if (tok) consultation = await request("GET", `/api/v1/consultations/${cid}`, undefined, { token: tok });
      if (consultation?.state === "ended") { finish(consultation.outcome, true); return; }
      // Waiting in the lobby: the decision is in the store even if its event passed us by.
      const mine = consultation?.participants.find((p) => p.id === consultation.me);
      const waiting = ["lobby", "reconnecting", "failed"].includes(call?.state);
      if (waiting && mine?.state === "denied") { call.denied(); return; }
      if (call?.state === "lobby" && mine?.state === "admitted") call.networkLost(); // a fresh welcome
      renderParticipants();
    } catch (e) {
      if (!isNetworkError(e)) error.textContent = e.message;
    }
    if (call?.state !== "admitted") pollTimer = setTimeout(poll, 4000);
  }

  async function start() {
    session.set("consultation", cid);
    if (!opts.token) {
      try {
        consultation = await api.consultation(cid);
      } catch (e) {
        error.textContent = e.message;
        return;
      }
      if (consultation.state === "ended") { finish(consultation.outcome, true); return; }
    }
    const channel = consultation?.channel || opts.channel || "video";
    const withVideo = channel === "video";
    if (channel === "phone" && isHost && consultation?.ticket_id) {
      // A phone consultation: the clinician calls the citizen back; chat stays available.
      api.ticket(consultation.ticket_id).then((tk) => {
        if (!tk.callback_phone) return;
        error.before(h("p", { class: "notice", id: "call-back" },
          h("span", { i18n: "call_back_on" }), " ",
          h("a", { href: `tel:${tk.callback_phone.replace(/ /g, "")}`, class: "tel" }, tk.callback_phone)));
      }).catch(() => {});
    }
    heading.textContent = "";
    tr(heading, withVideo ? "room_title" : channel === "phone" ? "room_title_phone" : "room_title_chat");
    if (withVideo) {
      localStream = takeKeptStream();
      if (!localStream) {
        try { localStream = await getLocalMedia({ video: true, audio: true }); } catch (e) {
          // Refused or missing: explain, try the microphone alone, and go on (chat works without either).
          error.after(mediaHelp(e, { phoneFallback: !isHost }));
          try { localStream = await getLocalMedia({ video: false, audio: true }); } catch { localStream = null; }
        }
      }
      selfVideo.srcObject = localStream;
      selfTile.classList.toggle("camera-off", !localStream?.getVideoTracks().length);
      selfTile.classList.toggle("mic-off", !localStream?.getAudioTracks().length);
    } else {
      stage.classList.add("chat-only");
    }
    if (closed) { stopStream(localStream); return; }
    buildControls(withVideo);
    side.append(chatSection.element, participantsSection);
    if (isHost) {
      if (consultation?.ticket_id) side.prepend(patientContext(consultation.ticket_id));
      const away = Number(ctx.query?.get("offline"));
      if (away > 0) {
        error.before(h("p", { class: "notice", id: "owner-offline", role: "status", i18n: "owner_was_offline",
          i18nParams: { t: formatDuration(away) } }));
      }
      host = hostPanel({ cid, onEnded: (outcome) => finish(outcome, true), error });
      side.append(host.element);
    }
    renderParticipants();

    call = new Call({ consultationId: cid, token, displayName: opts.displayName || session.user?.name || "",
      localStream, resolveSignalUrl: async () => (await api.consultation(cid)).signal_url });
    window.nettlegeCall = call; // for the browser tests (getStats) and debugging
    call.addEventListener("state", (e) => {
      const { state, outcome } = e.detail;
      roomEl.classList.toggle("in-lobby", state === "lobby");
      if (state === "admitted") {
        ctx.setBanner(null);
        setStatus("connected");
        clearTimeout(pollTimer);
        // Chat needs an admitted participant; never the raw invite token (that would spend it twice).
        startChat(call.sessionToken || token);
        if (withVideo) sendMediaState(); // chat and phone consultations have no camera to report
        opts.onAdmitted?.();
      } else if (state === "lobby") setStatus("in_lobby");
      else if (state === "reconnecting") { ctx.setBanner("reconnecting"); setStatus("reconnecting"); }
      else if (state === "ended") finish(outcome, true);
      else if (state === "denied") { opts.onDenied ? opts.onDenied() : null; setStatus("denied"); teardown(); }
      else if (state === "failed") { setStatus("call_failed"); ctx.setBanner(null); poll(); }
    });
    call.addEventListener("welcome", (e) => {
      if (!e.detail.session_token) return;
      const previous = session.get(`room_token_${cid}`);
      session.set(`room_token_${cid}`, e.detail.session_token);
      // An invitee has no login of their own: the session token (bound to this consultation) is it. Session
      // tokens live 15 minutes and a fresh one comes every few: the login and the chat take it over.
      if (opts.token && (!session.token || session.token === previous)) {
        session.login(e.detail.session_token, {}, { keep: true });
      }
      if (chat && previous && chat.token === previous) chat.token = e.detail.session_token;
    });
    call.addEventListener("track", (e) => onTrack(e.detail));
    call.addEventListener("reset", () => {
      remote.replaceChildren();
      audios.replaceChildren();
      tiles.clear();
      prevStats.clear();
    });
    call.addEventListener("participants", () => {
      tiles.forEach(captionFor);
      onParticipants(call.participants);
      renderParticipants();
    });
    call.addEventListener("error", (e) => {
      // Negotiation races the client resolves itself are not the user's business.
      if (["offer_collision", "no_offer_outstanding", "not_admitted"].includes(e.detail.code)) return;
      error.textContent = e.detail.message || e.detail.code;
    });
    call.addEventListener("knock", () => host?.refresh());
    call.addEventListener("quality", (e) => { // the server paused (or resumed) video to us: our link is weak
      const { participant_id: pid, video } = e.detail || {};
      if (!pid || pausedVideo.has(pid) === (video === "paused")) return;
      if (video === "paused") pausedVideo.add(pid); else pausedVideo.delete(pid);
      tiles.forEach(captionFor);
      if (video === "paused") announce(t("video_paused_bandwidth"));
    });
    call.start();
    qualityTimer = setInterval(() => measureQuality().catch(() => {}), QUALITY_MS);
    poll();
  }

  /** Tell the others (their tiles) what is off here: muted, camera off, or no device at all. */
  function sendMediaState() {
    const mic = localStream?.getAudioTracks()[0];
    const cam = localStream?.getVideoTracks()[0];
    call?.setMediaState({ audio_off: !mic || !mic.enabled, video_off: !cam || !cam.enabled });
  }
  controls.addEventListener("click", (e) => { if (e.target.closest("#mute, #camera")) sendMediaState(); });

  const chatSection = chatPanel({ cid, tokenFor: () => call?.sessionToken || token });
  function startChat(chatToken) {
    if (chat) return;
    try {
      chat = new Chat(chatToken, cid);
      chatSection.attach(chat);
      chat.addEventListener("ended", (e) => finish(e.detail.outcome, true));
      chat.addEventListener("knock", () => host?.refresh());
      chat.start();
    } catch (e) {
      console.warn("chat", e);
    }
  }

  start();
  return () => { if (!closed) { closed = true; teardown(); } };
}

/** The small self view can be moved out of the way: dragged with a finger or mouse, or with the arrow keys. */
function draggable(tile) {
  let from = null;
  const place = (x, y) => {
    const box = tile.parentElement?.getBoundingClientRect();
    if (!box || getComputedStyle(tile).position !== "absolute") return;
    const maxX = box.width - tile.offsetWidth;
    const maxY = box.height - tile.offsetHeight;
    tile.style.left = `${Math.max(0, Math.min(maxX, x))}px`;
    tile.style.top = `${Math.max(0, Math.min(maxY, y))}px`;
    tile.classList.add("dragged");
  };
  tile.addEventListener("pointerdown", (e) => {
    if (getComputedStyle(tile).position !== "absolute") return;
    from = { x: e.clientX - tile.offsetLeft, y: e.clientY - tile.offsetTop };
    tile.setPointerCapture(e.pointerId);
  });
  tile.addEventListener("pointermove", (e) => { if (from) place(e.clientX - from.x, e.clientY - from.y); });
  const end = () => { from = null; };
  tile.addEventListener("pointerup", end);
  tile.addEventListener("pointercancel", end);
  tile.addEventListener("keydown", (e) => {
    const step = { ArrowLeft: [-20, 0], ArrowRight: [20, 0], ArrowUp: [0, -20], ArrowDown: [0, 20] }[e.key];
    if (!step) return;
    e.preventDefault();
    place(tile.offsetLeft + step[0], tile.offsetTop + step[1]);
  });
}

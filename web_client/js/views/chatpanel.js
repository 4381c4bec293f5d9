// The chat beside the video: a log (role=log, read out politely), a message box, photos (take one with
// the phone's camera or pick one; thumbnails open full size); messages show as "sending" until the
// server has stored them. On touch devices Enter is a new line (the Send button sends).
import { announce, h, tr } from "../dom.js";
import { t, getLang, locale } from "../i18n.js";

const MAX_PHOTO_BYTES = 5 * 1024 * 1024; // the server's limit
const MAX_EDGE = 2048; // larger photos are scaled down before sending (a phone photo is 12 MP)
const HEIF = /^image\/hei[cf](-sequence)?$/; // an iPhone's photos: the server turns them into JPEG
const touch = () => matchMedia("(pointer: coarse)").matches;

export function chatPanel({ cid, tokenFor } = {}) {
  const log = h("div", { class: "chat-log", id: "chat-log", role: "log", "aria-live": "polite",
    "aria-relevant": "additions", tabindex: "0", i18nAttrs: { "aria-label": "chat_messages" } });
  const state = h("p", { class: "hint", id: "chat-state", i18n: "chat_connecting" });
  const input = h("textarea", { id: "chat-input", rows: 2, maxLength: 2000, "aria-describedby": "chat-help" });
  const send = h("button", { type: "submit", class: "btn btn-primary", id: "chat-send", i18n: "send" });
  // Two ways to a photo: the camera straight away (capture) or the gallery/files.
  const takePhoto = h("input", { type: "file", id: "photo-camera", accept: "image/*", capture: "environment",
    class: "visually-hidden" });
  const pickPhoto = h("input", { type: "file", id: "photo-file", accept: "image/jpeg,image/png,image/*",
    class: "visually-hidden" });
  const photoError = h("p", { class: "error", id: "photo-error", role: "alert" });
  const form = h("form", { class: "chat-form" },
    h("label", { for: "chat-input", i18n: "write_message" }),
    h("p", { class: "hint", id: "chat-help", i18n: touch() ? "chat_help_touch" : "chat_help" }),
    input,
    h("div", { class: "btn-row chat-actions" },
      takePhoto, h("label", { for: "photo-camera", class: "btn file-btn", i18n: "photo_take" }),
      pickPhoto, h("label", { for: "photo-file", class: "btn file-btn", i18n: "photo_pick" }),
      send),
    photoError);
  const element = h("section", { class: "card chat", "aria-labelledby": "chat-h" },
    h("h2", { id: "chat-h", class: "h3", i18n: "chat" }), state, log, form);
  const byClientId = new Map();
  let chat = null;

  const time = (ts) => new Date((ts || Date.now() / 1000) * 1000)
    .toLocaleTimeString(locale(getLang()), { hour: "2-digit", minute: "2-digit" });

  function senderName(m) {
    const s = m.sender;
    if (!s) return "";
    return s.display_name || s.name || (s.role ? t(`role_${s.role}`) : "");
  }

  function item({ mine, name, text, ts, pending, body }) {
    const status = h("span", { class: "msg-status" });
    if (pending) tr(status, "sending");
    const li = h("div", { class: `msg ${mine ? "msg-mine" : "msg-theirs"}${pending ? " pending" : ""}` },
      h("p", { class: "msg-meta" }, h("span", { class: "msg-sender" }, mine ? t("you") : name), " · ",
        h("time", {}, time(ts)), " ", status),
      body || null,
      text ? h("p", { class: "msg-text" }, text) : null);
    log.append(li);
    log.scrollTop = log.scrollHeight;
    return li;
  }

  // --- photos -----------------------------------------------------------------------------------
  /** A thumbnail button that opens the photo full size (a modal dialog; Escape closes it). */
  function photo(url, name) {
    const img = h("img", { class: "photo-thumb", src: url, alt: t("photo_from", { name }) });
    const open = () => {
      const dialog = h("dialog", { class: "dialog photo-dialog", id: "photo-view", "aria-label": t("photo_from", { name }) },
        h("img", { class: "photo-full", src: url, alt: t("photo_from", { name }) }),
        h("form", { method: "dialog" }, h("button", { type: "submit", class: "btn", id: "photo-close", i18n: "close" })));
      document.body.append(dialog);
      dialog.addEventListener("close", () => dialog.remove());
      dialog.showModal();
    };
    return h("button", { type: "button", class: "photo-button", onclick: open,
      i18nAttrs: { "aria-label": ["photo_open", { name }] } }, img);
  }

  /** Someone else's photo: fetched with our token (admitted participants only), shown from a blob URL. */
  function remotePhoto(m, name) {
    const holder = h("div", { class: "photo-holder" }, h("span", { class: "hint", i18n: "photo_loading" }));
    fetch(`/api/v1/consultations/${cid}/attachments/${encodeURIComponent(m.attachment.id)}`,
      { headers: { Authorization: `Bearer ${tokenFor?.()}` } })
      .then(async (resp) => {
        if (!resp.ok) throw new Error(String(resp.status));
        holder.replaceChildren(photo(URL.createObjectURL(await resp.blob()), name));
        log.scrollTop = log.scrollHeight;
      })
      .catch(() => holder.replaceChildren(h("span", { class: "error", i18n: "photo_load_failed" })));
    return holder;
  }

  /** JPEG or PNG under the limit as is; HEIC/HEIF as is too (this browser may not read it; the server
   * converts it); anything else (or larger) redrawn as a JPEG at most MAX_EDGE wide. */
  async function prepare(file) {
    if (["image/jpeg", "image/png"].includes(file.type) && file.size <= MAX_PHOTO_BYTES) {
      return { data: await file.arrayBuffer(), type: file.type };
    }
    if (HEIF.test(file.type) || /\.hei[cf]$/i.test(file.name || "")) {
      if (file.size > MAX_PHOTO_BYTES) throw Object.assign(new Error(""), { code: "attachment_too_large" });
      return { data: await file.arrayBuffer(), type: "image/heic", viaServer: true };
    }
    let bitmap;
    try { bitmap = await createImageBitmap(file); } catch { throw Object.assign(new Error(""), { code: "photo_unreadable" }); }
    const scale = Math.min(1, MAX_EDGE / Math.max(bitmap.width, bitmap.height));
    const canvas = h("canvas", { width: Math.round(bitmap.width * scale), height: Math.round(bitmap.height * scale) });
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    if (!blob || blob.size > MAX_PHOTO_BYTES) throw Object.assign(new Error(""), { code: "attachment_too_large" });
    return { data: await blob.arrayBuffer(), type: "image/jpeg" };
  }

  async function sendPhoto(file) {
    photoError.textContent = "";
    if (!file) return;
    if (!chat) { tr(photoError, "photo_not_connected"); return; }
    // Bytes on screen ("1,2 av 3,4 MB"); the percentage on the progress bar for a screen reader, which also
    // hears it in quarters (not four times a second).
    const progress = h("progress", { class: "photo-progress", id: "photo-progress", max: 100,
      i18nAttrs: { "aria-label": "photo_sending" } });
    const label = h("span", { class: "hint photo-progress-text", i18n: "photo_preparing" });
    const li = item({ mine: true, pending: true, body: h("div", { class: "photo-holder" }, progress, " ", label) });
    li.classList.add("photo-pending");
    const mb = (n) => (n / (1024 * 1024)).toLocaleString(locale(getLang()),
      { minimumFractionDigits: 1, maximumFractionDigits: 1 });
    let quarter = -1;
    const onProgress = (sent, total) => {
      const pct = total ? Math.floor((100 * sent) / total) : 100;
      progress.value = pct;
      progress.setAttribute("aria-valuenow", String(pct));
      progress.setAttribute("aria-valuetext", t("photo_progress_sr", { pct }));
      if (sent >= total) tr(label, "photo_saving");
      else tr(label, "photo_progress", { sent: mb(sent), total: mb(total) });
      if (Math.floor(pct / 25) !== quarter) { quarter = Math.floor(pct / 25); announce(t("photo_progress_sr", { pct })); }
    };
    try {
      const { data, type, viaServer } = await prepare(file);
      const ack = await chat.sendAttachment(data, file.name || "bilde", onProgress);
      // A HEIC photo is shown as the JPEG the server made of it (this browser may not read HEIC).
      li.querySelector(".photo-holder").replaceWith(viaServer && ack.attachment
        ? remotePhoto({ attachment: ack.attachment }, t("you"))
        : h("div", { class: "photo-holder" }, photo(URL.createObjectURL(new Blob([data], { type })), t("you"))));
      li.classList.remove("pending", "photo-pending");
      const status = li.querySelector(".msg-status");
      delete status.dataset.i18n;
      status.textContent = "";
    } catch (e) {
      li.remove();
      const key = { attachment_too_large: "photo_too_large", attachment_type: "photo_wrong_type",
        photo_unreadable: "photo_wrong_type", not_connected: "photo_not_connected",
        upload_timeout: "photo_timeout" }[e.code];
      if (key) tr(photoError, key); else photoError.textContent = chatError({ error: e.code, message: e.message || t("photo_failed") });
    }
  }
  for (const picker of [takePhoto, pickPhoto]) {
    picker.addEventListener("change", () => { const f = picker.files?.[0]; picker.value = ""; sendPhoto(f); });
  }

  /** The chat server answers in bokmål; known codes are said in the UI's language instead. */
  function chatError(err) {
    const key = `chat_error_${err?.error || err?.code}`;
    const text = t(key);
    return text !== key ? text : (err?.message || t("not_sent"));
  }

  function attach(c) {
    chat = c;
    chat.addEventListener("state", (e) => {
      if (e.detail.error) state.textContent = chatError(e.detail.error);
      else tr(state, e.detail.connected ? "chat_connected" : "chat_reconnecting");
    });
    chat.addEventListener("message", (e) => {
      const m = e.detail;
      const mine = chat.isMine(m);
      const name = senderName(m);
      item({ mine, name, text: m.text, ts: m.ts, body: m.attachment ? remotePhoto(m, mine ? t("you") : name) : null });
    });
    chat.addEventListener("pending", (e) => {
      byClientId.set(e.detail.client_id, item({ mine: true, text: e.detail.text, pending: true }));
    });
    chat.addEventListener("delivered", (e) => delivered(e.detail.client_id));
    chat.addEventListener("failed", (e) => {
      const li = byClientId.get(e.detail.client_id);
      if (li) { li.classList.add("failed"); li.querySelector(".msg-status").textContent = chatError(e.detail); }
    });
  }

  function delivered(clientId) {
    const li = byClientId.get(clientId);
    if (!li) return;
    byClientId.delete(clientId);
    li.classList.remove("pending");
    const status = li.querySelector(".msg-status");
    delete status.dataset.i18n;
    status.textContent = "";
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || !chat) return;
    chat.send(text);
    input.value = "";
    input.focus();
  });
  input.addEventListener("keydown", (e) => {
    // A phone keyboard's Enter is the new-line key; there the Send button sends.
    if (e.key === "Enter" && !e.shiftKey && !touch()) { e.preventDefault(); form.requestSubmit(); }
    else chat?.typing();
  });

  return { element, attach };
}

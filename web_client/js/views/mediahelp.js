// Camera or microphone refused or missing: say what happened in words, how to allow it in this browser,
// and that the consultation can go on in the chat or by phone.
import { h } from "../dom.js";

/** Which browser's steps to show (the user agent is a hint only; the generic text covers the rest). */
export function browserFamily(ua = navigator.userAgent) {
  if (/iPhone|iPad|iPod/.test(ua)) return "ios";
  if (/SamsungBrowser/.test(ua)) return "samsung";
  if (/Firefox\//.test(ua)) return "firefox";
  if (/Edg\//.test(ua)) return "edge";
  if (/Chrome\//.test(ua) || /Chromium\//.test(ua)) return /Android/.test(ua) ? "chrome_android" : "chrome";
  if (/Safari\//.test(ua)) return "safari";
  return "other";
}

/** The reason key for a getUserMedia error. */
export function mediaErrorKey(err) {
  switch (err?.name) {
    case "NotAllowedError": case "SecurityError": case "PermissionDeniedError": return "media_refused";
    case "NotFoundError": case "DevicesNotFoundError": case "OverconstrainedError": return "media_not_found";
    case "NotReadableError": case "TrackStartError": case "AbortError": return "media_busy";
    default: return "media_failed";
  }
}

/** The guidance box (role=alert: it replaces a check the user is waiting for). */
export function mediaHelp(err, { id = "media-help", phoneFallback = true, onPhone = null } = {}) {
  const reason = mediaErrorKey(err);
  // Waiting in a queue (onPhone): the same ticket continues by phone. In a consultation: the legevakt number.
  const phone = onPhone
    ? h("p", {}, h("button", { type: "button", class: "btn", id: `${id}-phone`, i18n: "switch_phone", onclick: onPhone }))
    : phoneFallback ? h("p", {}, h("span", { i18n: "media_continue_phone" }), " ",
      h("a", { href: "tel:116117", class: "tel" }, "116117")) : null;
  return h("div", { class: "notice media-help", id, role: "alert", dataset: { reason } },
    h("h3", { class: "h4", i18n: `${reason}_title` }),
    h("p", { i18n: reason === "media_refused" ? `media_allow_${browserFamily()}` : `${reason}_text` }),
    h("p", { i18n: "media_continue_chat" }), phone);
}

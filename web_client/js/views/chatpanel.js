// The chat beside the video: a log (role=log, read out politely), a message box; messages show as
// "sending" until the server has stored them.
import { h, tr } from "../dom.js";
import { t, getLang } from "../i18n.js";

export function chatPanel() {
  const log = h("div", { class: "chat-log", id: "chat-log", role: "log", "aria-live": "polite",
    "aria-relevant": "additions", tabindex: "0", i18nAttrs: { "aria-label": "chat_messages" } });
  const state = h("p", { class: "hint", id: "chat-state", i18n: "chat_connecting" });
  const input = h("textarea", { id: "chat-input", rows: 2, maxLength: 2000, "aria-describedby": "chat-help" });
  const send = h("button", { type: "submit", class: "btn btn-primary", id: "chat-send", i18n: "send" });
  const form = h("form", { class: "chat-form" },
    h("label", { for: "chat-input", i18n: "write_message" }),
    h("p", { class: "hint", id: "chat-help", i18n: "chat_help" }),
    input, send);
  const element = h("section", { class: "card chat", "aria-labelledby": "chat-h" },
    h("h2", { id: "chat-h", class: "h3", i18n: "chat" }), state, log, form);
  const byClientId = new Map();
  let chat = null;

  const time = (ts) => new Date((ts || Date.now() / 1000) * 1000)
    .toLocaleTimeString(getLang() === "en" ? "en-GB" : "nb-NO", { hour: "2-digit", minute: "2-digit" });

  function senderName(m) {
    const s = m.sender;
    if (!s) return "";
    return s.display_name || s.name || (s.role ? t(`role_${s.role}`) : "");
  }

  function item({ mine, name, text, ts, pending }) {
    const status = h("span", { class: "msg-status" });
    if (pending) tr(status, "sending");
    const li = h("div", { class: `msg ${mine ? "msg-mine" : "msg-theirs"}${pending ? " pending" : ""}` },
      h("p", { class: "msg-meta" }, h("span", { class: "msg-sender" }, mine ? t("you") : name), " · ",
        h("time", {}, time(ts)), " ", status),
      h("p", { class: "msg-text" }, text));
    log.append(li);
    log.scrollTop = log.scrollHeight;
    return li;
  }

  function attach(c) {
    chat = c;
    chat.addEventListener("state", (e) => {
      if (e.detail.error) state.textContent = e.detail.error.message || e.detail.error.error;
      else tr(state, e.detail.connected ? "chat_connected" : "chat_reconnecting");
    });
    chat.addEventListener("message", (e) => {
      const m = e.detail;
      const mine = chat.isMine(m);
      item({ mine, name: senderName(m), text: m.text, ts: m.ts });
    });
    chat.addEventListener("pending", (e) => {
      byClientId.set(e.detail.client_id, item({ mine: true, text: e.detail.text, pending: true }));
    });
    chat.addEventListener("delivered", (e) => delivered(e.detail.client_id));
    chat.addEventListener("failed", (e) => {
      const li = byClientId.get(e.detail.client_id);
      if (li) { li.classList.add("failed"); li.querySelector(".msg-status").textContent = e.detail.message || t("not_sent"); }
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
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
    else chat?.typing();
  });

  return { element, attach };
}

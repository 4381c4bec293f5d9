// Send an invite link by SMS (when the server has an SMS webhook); otherwise the link stays on screen.
import { request } from "../api.js";
import { h, tr } from "../dom.js";
import { authConfig } from "../config.js";

export function sendLinkControl({ cid, url, error }) {
  const wrap = h("div", { class: "stack" });
  authConfig().then((cfg) => {
    if (!cfg.sms) {
      wrap.append(h("p", { class: "hint", i18n: "sms_not_configured" }));
      return;
    }
    const id = `sms-${Math.random().toString(36).slice(2, 8)}`;
    const phone = h("input", { id, type: "tel", autocomplete: "off", inputMode: "tel" });
    const status = h("p", { class: "hint", role: "status" });
    const send = h("button", { type: "button", class: "btn", i18n: "send_sms", onclick: async () => {
      try {
        await request("POST", `/api/v1/consultations/${cid}/sms`, { phone: phone.value.trim(), url });
        tr(status, "sms_sent");
      } catch (e) { error.textContent = e.message; }
    } });
    wrap.append(h("div", { class: "field" }, h("label", { for: id, i18n: "sms_phone" }), h("div", { class: "btn-row" }, phone, send)), status);
  }).catch(() => {});
  return wrap;
}

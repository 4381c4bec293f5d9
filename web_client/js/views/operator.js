// Operator (legevaktsentral): create a consultation for a caller and send them a link (SMS through
// the configured webhook; without one the link is shown here to read out or copy), then open the
// room and see the caller's camera.
import { api, request } from "../api.js";
import { h, tr } from "../dom.js";
import { session } from "../session.js";
import { authConfig } from "../config.js";
import { field } from "./login.js";
import { linkBox } from "./hostpanel.js";

export const titleKey = "operator_title";

export function render(root, _p, { navigate }) {
  const error = h("p", { class: "error", role: "alert" });
  const service = h("select", { id: "op-service" });
  const phone = h("input", { id: "op-phone", type: "tel", autocomplete: "off", inputMode: "tel" });
  const result = h("div", { class: "stack", id: "op-result", "aria-live": "polite" });
  const form = h("form", { class: "stack", novalidate: true },
    field("op-service", "service", service),
    field("op-phone", "caller_phone", phone, "caller_phone_hint"),
    h("button", { type: "submit", class: "btn btn-primary", id: "create-for-caller", i18n: "create_for_caller" }));
  root.append(h("section", { class: "card narrow", "aria-labelledby": "op-h" },
    h("h1", { id: "op-h", i18n: "operator_title" }), error, form, result));

  api.services(session.user.tenant).then((list) => {
    service.replaceChildren(...list.map((s) => h("option", { value: s.service }, s.name)));
    const lv = list.find((s) => s.service === "legevakt");
    if (lv) service.value = lv.service;
  }).catch((e) => { error.textContent = e.message; });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const c = await api.createConsultation({ tenant: session.user.tenant, service: service.value });
      const inv = await api.invite(c.id, { role: "citizen", ttl_s: 3600, lobby: false });
      const status = h("p", { class: "notice", id: "op-sms-status" });
      const cfg = await authConfig();
      if (cfg.sms && phone.value.trim()) {
        await request("POST", `/api/v1/consultations/${c.id}/sms`, { phone: phone.value.trim(), url: inv.url });
        tr(status, "sms_sent");
      } else {
        tr(status, "sms_not_configured_show");
      }
      result.replaceChildren(status, linkBox(inv.url, "citizen"), shortCode(c.id, inv.token),
        h("a", { class: "btn btn-primary", href: `#/room/${c.id}`, id: "open-room", i18n: "open_room" }));
      result.querySelector("input")?.focus();
    } catch (err) {
      error.textContent = err.message;
    }
  });
}

/** For a caller without SMS: six digits to read aloud, typed at the short address. */
function shortCode(cid, token) {
  const out = h("div", { class: "stack", id: "op-code", "aria-live": "polite" });
  const make = h("button", { type: "button", class: "btn", id: "make-code", i18n: "code_make" });
  make.addEventListener("click", async () => {
    try {
      const made = await request("POST", `/api/v1/consultations/${cid}/short-codes`, { token });
      const spaced = `${made.code.slice(0, 3)} ${made.code.slice(3)}`;
      out.replaceChildren(
        h("p", { class: "short-code", id: "op-code-value", "aria-label": made.code.split("").join(" ") }, spaced),
        h("p", { i18n: "code_read_aloud", i18nParams: { url: made.url.replace(/^https?:\/\//, ""),
          min: Math.round(made.expires_in_s / 60) } }));
      make.hidden = true;
    } catch (e) {
      out.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    }
  });
  return h("section", { class: "stack", "aria-labelledby": "op-code-h" },
    h("h2", { id: "op-code-h", class: "h3", i18n: "code_no_sms" }), make, out);
}

// "Ring meg heller": a citizen waiting for video or chat continues by phone. The ticket keeps its place in
// the queue; the number given when queueing is filled in to confirm, or a new one is typed.
import { api } from "../api.js";
import { announce, h, tr } from "../dom.js";
import { t } from "../i18n.js";

const PHONE = /^\+?[0-9][0-9 ]{7,14}$/; // the server's pattern

/** Returns {element, open()}: open() shows the form (also from the camera help's button). */
export function phoneSwitch(ticketId, { phone = "", onSwitched }) {
  const input = h("input", { id: "switch-phone", type: "tel", autocomplete: "tel", inputMode: "tel", value: phone,
    "aria-describedby": "switch-phone-hint" });
  const error = h("p", { class: "error", role: "alert", id: "switch-phone-error" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "switch-phone-submit",
    i18n: "switch_phone_submit" });
  const cancel = h("button", { type: "button", class: "btn", id: "switch-phone-cancel", i18n: "cancel" });
  const form = h("form", { class: "stack", novalidate: true, hidden: true },
    h("div", { class: "field" }, h("label", { for: "switch-phone", i18n: "callback_phone" }), input,
      h("p", { class: "hint", id: "switch-phone-hint", i18n: "switch_phone_hint" })),
    error, h("div", { class: "actions" }, submit, cancel));
  const start = h("button", { type: "button", class: "btn", id: "switch-to-phone", i18n: "switch_phone" });
  const element = h("section", { class: "card phone-switch", "aria-labelledby": "switch-phone-h" },
    h("h2", { id: "switch-phone-h", class: "h3", i18n: "switch_phone_title" }),
    h("p", { i18n: "switch_phone_text" }), start, form);

  const open = () => {
    element.hidden = false;
    start.hidden = true;
    form.hidden = false;
    element.scrollIntoView?.({ block: "nearest" });
    input.focus();
  };
  start.addEventListener("click", open);
  cancel.addEventListener("click", () => { form.hidden = true; start.hidden = false; error.textContent = ""; start.focus(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const number = input.value.trim();
    if (!PHONE.test(number)) {
      input.setAttribute("aria-invalid", "true");
      tr(error, number ? "phone_invalid" : "phone_required");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    submit.disabled = true;
    try {
      const ticket = await api.setChannel(ticketId, { channel: "phone", callback_phone: number });
      element.hidden = true;
      announce(t("switched_to_phone", { phone: ticket.callback_phone || number }));
      onSwitched(ticket);
    } catch (err) {
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });
  return { element, open };
}

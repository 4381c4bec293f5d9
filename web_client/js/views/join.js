// Citizen: choose video, chat or phone, give a short reason (and a callback number), join the queue.
import { api } from "../api.js";
import { h, tr } from "../dom.js";
import { session } from "../session.js";
import { field } from "./login.js";
import { emergencyNumbers, openingHours } from "./services.js";

export const titleKey = "join_title";
const MAX_REASON = 200;

export function render(root, [tenant, service], { navigate }) {
  const error = h("p", { class: "error", role: "alert" });
  const body = h("div", { class: "stack" });
  const heading = h("h1", { id: "join-h", i18n: "join_title" });
  root.append(h("section", { class: "card narrow", "aria-labelledby": "join-h" }, heading, error, body));

  api.services(tenant).then((all) => {
    const s = all.find((x) => x.service === service);
    if (!s) { tr(error, "service_not_found"); return; }
    heading.textContent = s.name;
    if (!s.open) {
      body.append(h("p", { class: "closed-message" }, s.closed_message || ""),
        h("h2", { id: "join-hours", class: "h4", i18n: "opening_hours" }), openingHours(s.opening_hours, "join-hours"),
        emergencyNumbers());
      return;
    }
    body.append(form(s));
  }).catch((e) => { error.textContent = e.message; });

  function form(s) {
    const radios = s.channels.map((c) => h("div", { class: "radio" },
      h("input", { type: "radio", name: "channel", id: `ch-${c}`, value: c, checked: c === s.channels[0] }),
      h("label", { for: `ch-${c}` }, h("span", { i18n: `channel_${c}` }), " ",
        h("span", { class: "hint", i18n: `channel_${c}_hint` }))));
    const reason = h("textarea", { id: "reason", name: "reason", rows: 3, maxLength: MAX_REASON, required: true });
    const counter = h("p", { class: "hint", id: "reason-count", "aria-live": "off" });
    const count = () => tr(counter, "chars_left", { n: MAX_REASON - reason.value.length });
    reason.addEventListener("input", count);
    count();
    const phone = h("input", { id: "callback-phone", name: "callback_phone", type: "tel", autocomplete: "tel",
      inputMode: "tel" });
    const phoneField = field("callback-phone", "callback_phone", phone, "callback_phone_hint");
    // Phone: the number the doctor calls (required). Video and chat: optional, for an SMS when it is your turn.
    const toggle = () => {
      const isPhone = form.querySelector("input[name=channel]:checked")?.value === "phone";
      tr(phoneField.querySelector("label"), isPhone ? "callback_phone" : "sms_turn_phone");
      tr(phoneField.querySelector(".hint"), isPhone ? "callback_phone_hint" : "sms_turn_phone_hint");
    };
    const form = h("form", { class: "stack", novalidate: true },
      h("fieldset", { class: "radios" }, h("legend", { i18n: "choose_channel" }), radios),
      phoneField,
      field("reason", "reason", reason, "reason_hint"), counter,
      h("p", { class: "hint", i18n: "emergency_hint" }),
      h("button", { type: "submit", class: "btn btn-primary", i18n: "join_queue" }));
    form.addEventListener("change", toggle);
    toggle();
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.textContent = "";
      const channel = form.querySelector("input[name=channel]:checked").value;
      if (!reason.value.trim()) {
        reason.setAttribute("aria-invalid", "true");
        tr(error, "reason_required");
        reason.focus();
        return;
      }
      const body = { channel, reason: reason.value.trim() };
      if (channel !== "phone" && phone.value.trim()) body.callback_phone = phone.value.trim();
      if (channel === "phone") {
        if (!phone.value.trim()) {
          phone.setAttribute("aria-invalid", "true");
          tr(error, "phone_required");
          phone.focus();
          return;
        }
        body.callback_phone = phone.value.trim();
      }
      try {
        const ticket = await api.joinQueue(tenant, service, body);
        session.set("ticket", ticket.ticket_id);
        navigate(`#/wait/${ticket.ticket_id}`);
      } catch (err) {
        if (err.code === "already_queued") {
          // Queued already (another device or tab): go to that place instead of a dead end.
          try {
            const mine = await api.myTicket();
            session.set("ticket", mine.ticket_id);
            if (mine.service === service) {
              navigate(`#/wait/${mine.ticket_id}`);
              return;
            }
            // One queue at a time: say where the citizen waits, with the way there.
            error.replaceChildren(h("span", { i18n: "queued_elsewhere" }), " ",
              h("a", { href: `#/wait/${mine.ticket_id}`, i18n: "back_to_waiting_room" }));
            return;
          } catch { /* fall through to the message */ }
        }
        error.textContent = err.message;
        error.focus?.();
      }
    });
    return form;
  }
}

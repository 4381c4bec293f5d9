// Nurse (satellite legevakt): request a doctor with a priority and a reason → waiting room → the
// room, where an exam camera can be added beside the room camera.
import { api } from "../api.js";
import { h, tr } from "../dom.js";
import { session } from "../session.js";
import { field } from "./login.js";

export const titleKey = "nurse_title";
const PRIORITIES = ["red", "yellow", "green"];

export function render(root, _p, { navigate }) {
  const error = h("p", { class: "error", role: "alert" });
  const service = h("select", { id: "nurse-service" });
  const reason = h("textarea", { id: "nurse-reason", rows: 3, maxLength: 200 });
  const active = session.get("ticket");
  const form = h("form", { class: "stack", novalidate: true },
    field("nurse-service", "service", service),
    h("fieldset", { class: "radios" }, h("legend", { i18n: "priority" }),
      PRIORITIES.map((p) => h("div", { class: "radio" },
        h("input", { type: "radio", name: "priority", id: `prio-${p}`, value: p, checked: p === "yellow" }),
        h("label", { for: `prio-${p}` }, h("span", { class: `badge prio prio-${p}`, i18n: `priority_${p}` }), " ",
          h("span", { class: "hint", i18n: `priority_${p}_hint` }))))),
    field("nurse-reason", "reason", reason, "nurse_reason_hint"),
    h("button", { type: "submit", class: "btn btn-primary", id: "request-doctor", i18n: "request_doctor" }));
  root.append(h("section", { class: "card narrow", "aria-labelledby": "nurse-h" },
    h("h1", { id: "nurse-h", i18n: "nurse_title" }),
    active ? h("p", { class: "notice" }, h("a", { href: `#/wait/${active}`, i18n: "back_to_waiting_room" })) : null,
    error, form));

  api.services(session.user.tenant).then((list) => {
    service.replaceChildren(...list.filter((s) => s.open).map((s) => h("option", { value: s.service }, s.name)));
    const lv = list.find((s) => s.service === "legevakt" && s.open);
    if (lv) service.value = lv.service;
  }).catch((e) => { error.textContent = e.message; });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!reason.value.trim()) {
      reason.setAttribute("aria-invalid", "true");
      tr(error, "reason_required");
      reason.focus();
      return;
    }
    const priority = form.querySelector("input[name=priority]:checked").value;
    try {
      const ticket = await api.joinQueue(session.user.tenant, service.value,
        { channel: "video", reason: reason.value.trim(), priority });
      session.set("ticket", ticket.ticket_id);
      navigate(`#/wait/${ticket.ticket_id}`);
    } catch (err) {
      error.textContent = err.message;
    }
  });
}

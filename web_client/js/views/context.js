// For the clinician in the room: what the patient wrote when queueing, the priority and the channel.
import { api } from "../api.js";
import { h, tr } from "../dom.js";

export function patientContext(ticketId) {
  const list = h("dl", { class: "context-list" });
  const section = h("section", { class: "card patient-context", id: "patient-context", "aria-labelledby": "context-h" },
    h("h2", { id: "context-h", class: "h3", i18n: "patient_context" }), list);
  api.ticket(ticketId).then((tk) => {
    const row = (key, value) => [h("dt", { i18n: key }), h("dd", {}, value)];
    list.replaceChildren(
      ...row("col_priority", h("span", { class: `badge prio prio-${tk.priority}`, id: "context-priority", i18n: `priority_${tk.priority}` })),
      ...row("col_channel", h("span", { id: "context-channel", i18n: `channel_${tk.channel}` })),
      ...row("col_reason", h("span", { id: "context-reason", class: "reason" }, tk.reason)),
      ...(tk.owner_name ? row("col_name", tk.owner_name) : []));
  }).catch(() => { tr(list, "context_unavailable"); });
  return section;
}

// Citizen: the municipality's services, open or closed (closed: opening hours, 116117 and 113).
import { api } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";

export const titleKey = "services_title";
export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

export function render(root) {
  const list = h("ul", { class: "service-list", role: "list" });
  const error = h("p", { class: "error", role: "alert" });
  const waiting = h("p", { class: "notice", id: "my-ticket" });
  const showTicket = (id) => waiting.replaceChildren(h("a", { href: `#/wait/${id}`, i18n: "back_to_waiting_room" }));
  const active = session.get("ticket");
  if (active) showTicket(active);
  else if (session.user?.role === "citizen") {
    // Another device, or a cleared tab: the server knows the place in the queue.
    api.myTicket().then((tk) => { session.set("ticket", tk.ticket_id); showTicket(tk.ticket_id); }).catch(() => {});
  }
  root.append(h("section", { "aria-labelledby": "services-h" },
    h("h1", { id: "services-h", i18n: "services_title" }),
    waiting, error, list));
  api.services(session.user?.tenant).then((services) => {
    list.replaceChildren(...services.map(serviceCard));
  }).catch((e) => { error.textContent = e.message; });
}

export function openingHours(hours, id) {
  return h("table", { class: "hours", "aria-labelledby": id },
    h("tbody", {}, DAYS.filter((d) => hours[d]).map((d) =>
      h("tr", {}, h("th", { scope: "row", i18n: `day_${d}` }), h("td", {}, hoursText(hours[d]))))));
}

function hoursText(v) {
  if (v === "24/7" || v === "00:00-24:00") return t("open_all_day");
  if (v === "closed" || !v) return t("closed");
  return v.replace("-", "–");
}

function serviceCard(s) {
  const id = `svc-${s.tenant}-${s.service}`;
  const status = s.open
    ? h("span", { class: "badge badge-open", i18n: "open_now" })
    : h("span", { class: "badge badge-closed", i18n: "closed_now" });
  const card = h("li", { class: "card service", "aria-labelledby": `${id}-h` },
    h("div", { class: "service-head" },
      h("h2", { id: `${id}-h` }, s.name), status),
    h("p", { class: "muted" }, s.tenant_name));
  if (s.open) {
    card.append(
      h("p", { i18n: "queue_length", i18nParams: { n: s.queue_length } }),
      h("a", { class: "btn btn-primary", href: `#/join/${s.tenant}/${s.service}`, i18n: "contact_service",
        i18nParams: { name: s.name } }));
  } else {
    card.append(
      h("p", { class: "closed-message" }, s.closed_message || ""),
      h("h3", { id: `${id}-hours`, class: "h4", i18n: "opening_hours" }),
      openingHours(s.opening_hours, `${id}-hours`),
      emergencyNumbers());
  }
  return card;
}

export function emergencyNumbers() {
  return h("ul", { class: "emergency", role: "list" },
    h("li", {}, h("a", { href: "tel:116117", class: "tel" }, "116117"), " ", h("span", { i18n: "call_legevakt" })),
    h("li", {}, h("a", { href: "tel:113", class: "tel tel-113" }, "113"), " ", h("span", { i18n: "call_113" })));
}

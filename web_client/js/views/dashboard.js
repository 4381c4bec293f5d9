// Clinician: the service's queue (priority colour and text, channel, reason, wait timer), set
// priority, take next → the consultation room.
import { api, isNetworkError } from "../api.js";
import { announce, formatDuration, h, tr } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";
import { todaysBookings } from "./bookings_today.js";

export const titleKey = "dashboard_title";
const POLL_MS = 3000;
const PRIORITIES = ["red", "yellow", "green"];
// Beside the channel's name, for a glance down the list (drawn here: no emoji font needed).
const CHANNEL_ICONS = {
  video: "M3 7h11v10H3zM14 10l6-3v10l-6-3z",
  chat: "M4 5h16v10H9l-5 4z",
  phone: "M6 3l3 0 2 5-2.5 1.5a11 11 0 0 0 6 6L16 13l5 2v3a2 2 0 0 1-2 2A16 16 0 0 1 4 5a2 2 0 0 1 2-2z",
};

function channelIcon(channel) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "channel-icon");
  svg.setAttribute("aria-hidden", "true");
  svg.dataset.icon = channel;
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", CHANNEL_ICONS[channel] || "");
  svg.append(path);
  return svg;
}
const OFFLINE_NOTICE_S = 10; // the server's OFFLINE_AFTER_S: take-next passes over citizens gone longer

export function render(root, [serviceParam], { navigate, setBanner }) {
  const tenant = session.user.tenant;
  const picker = h("select", { id: "service-select" });
  const error = h("p", { class: "error", role: "alert" });
  const info = h("p", { class: "notice", role: "status", "aria-live": "polite", id: "dashboard-status" });
  const take = h("button", { type: "button", class: "btn btn-primary", id: "take-next", i18n: "take_next" });
  const count = h("p", { id: "queue-count", class: "queue-count" });
  const tbody = h("tbody");
  const table = h("table", { class: "queue-table", id: "queue-table" },
    h("caption", { class: "visually-hidden", i18n: "queue_table_caption" }),
    h("thead", {}, h("tr", {},
      ["col_priority", "col_waited", "col_channel", "col_reason", "col_name", "col_set_priority"]
        .map((k) => h("th", { scope: "col", i18n: k })))),
    tbody);
  const empty = h("p", { class: "hint", i18n: "queue_empty" });
  root.append(h("section", { class: "stack", "aria-labelledby": "dash-h" },
    h("h1", { id: "dash-h", i18n: "dashboard_title" }),
    h("div", { class: "toolbar" },
      h("div", { class: "field inline" }, h("label", { for: "service-select", i18n: "service" }), picker),
      take),
    error, info, count, empty, h("div", { class: "table-wrap" }, table)));
  root.append(todaysBookings(navigate));  // booked consultations with this clinician as host

  let service = serviceParam || session.get("dashboard_service");
  let tickets = [];
  let timer = null;
  let tick = null;
  let stopped = false;

  api.services(tenant).then((services) => {
    picker.replaceChildren(...services.map((s) => h("option", { value: s.service }, s.name)));
    if (!services.some((s) => s.service === service)) service = services[0]?.service;
    picker.value = service;
    poll();
  }).catch((e) => { error.textContent = e.message; });
  picker.addEventListener("change", () => {
    service = picker.value;
    session.set("dashboard_service", service);
    poll();
  });

  async function poll() {
    clearTimeout(timer);
    if (stopped || !service) return;
    try {
      tickets = await api.queue(tenant, service);
      setBanner(null);
      error.textContent = "";
      draw();
    } catch (e) {
      if (isNetworkError(e)) setBanner("reconnecting");
      else error.textContent = e.message;
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function draw() {
    tr(count, "queue_count", { n: tickets.length });
    empty.hidden = tickets.length > 0;
    table.hidden = tickets.length === 0;
    take.disabled = false;
    tbody.replaceChildren(...tickets.map((tk) => {
      const name = tk.owner_name || t(`role_${tk.owner_role}`);
      const select = h("select", { id: `prio-${tk.ticket_id}`, dataset: { ticket: tk.ticket_id },
        i18nAttrs: { "aria-label": ["set_priority_for", { name }] } },
      PRIORITIES.map((p) => h("option", { value: p, selected: p === tk.priority, i18n: `priority_${p}` })));
      select.addEventListener("change", async () => {
        try {
          await api.setPriority(tk.ticket_id, select.value);
          announce(t("priority_set", { name, priority: t(`priority_${select.value}`) }));
          poll();
        } catch (e) { error.textContent = e.message; }
      });
      return h("tr", { class: `prio-row prio-${tk.priority}`, dataset: { ticket: tk.ticket_id } },
        h("td", { dataset: { label: t("col_priority") } },
          h("span", { class: `badge prio prio-${tk.priority}`, i18n: `priority_${tk.priority}` })),
        h("td", { dataset: { label: t("col_waited") } }, h("span", { class: "waited", dataset: { since: tk.enqueued_at } },
          formatDuration(Date.now() / 1000 - tk.enqueued_at))),
        h("td", { class: "channel-cell", dataset: { label: t("col_channel"), channel: tk.channel } },
          channelIcon(tk.channel), " ",
          h("span", { class: "channel-name", i18n: `channel_${tk.channel}` }),
          tk.callback_phone ? h("span", { class: "hint" }, ` (${tk.callback_phone})`) : null),
        h("td", { class: "reason", dataset: { label: t("col_reason") } }, tk.reason),
        h("td", { dataset: { label: t("col_name") } }, name, tk.owner_role === "nurse" ? h("span", { class: "tag", i18n: "role_nurse" }) : null,
          " ", ownerPresence(tk)),
        h("td", { dataset: { label: t("col_set_priority") } }, select));
    }));
  }

  /** Whether the citizen's waiting page is open now (the server hears it over the chat connection). */
  function ownerPresence(tk) {
    if (tk.owner_online === null || tk.owner_online === undefined) return null;
    if (tk.owner_online) return h("span", { class: "presence presence-connected owner-presence", i18n: "owner_online" });
    return h("span", { class: "presence presence-reconnecting owner-presence", i18n: "owner_offline",
      i18nParams: { t: formatDuration(Date.now() / 1000 - (tk.offline_since || Date.now() / 1000)) } });
  }

  tick = setInterval(() => {
    root.querySelectorAll(".waited").forEach((el) => {
      el.textContent = formatDuration(Date.now() / 1000 - Number(el.dataset.since));
    });
  }, 1000);

  take.addEventListener("click", async () => {
    take.disabled = true;
    try {
      const taken = await api.takeNext(tenant, service);
      if (!taken) {
        tr(info, "queue_empty_take");
        take.disabled = false;
        return;
      }
      // Every present citizen of that priority was taken first; this one's page has been gone a while.
      const away = taken.ticket?.owner_offline_s;
      navigate(`#/room/${taken.consultation_id}${away > OFFLINE_NOTICE_S ? `?offline=${Math.round(away)}` : ""}`);
    } catch (e) {
      error.textContent = e.message;
      take.disabled = false;
    }
  });

  return () => { stopped = true; clearTimeout(timer); clearInterval(tick); };
}

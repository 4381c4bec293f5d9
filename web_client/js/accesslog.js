// The citizen's access log, "Hvem har sett mine opplysninger": per consultation (and queue place), who (name and
// role, never an internal id), what and when, from GET /api/v1/me/access-log.
import { request } from "./api.js";
import { h } from "./dom.js";
import { addStrings, locale, t } from "./i18n.js";
import { accessLogStrings } from "./accesslog.strings.js";
import { useAdminCss } from "./admin.js";

addStrings(accessLogStrings);
export const titleKey = "accesslog_title";

function who(e) {
  if (e.actor_is_me) return t("accesslog_you");
  if (e.actor_role === "system") return t("accesslog_system");
  if (e.actor_name) return e.actor_name;
  return e.actor ? t("accesslog_unknown_name") : t(`role_${e.actor_role}`);
}

function role(e) {
  return e.actor_role === "system" ? "–" : t(`role_${e.actor_role}`);
}

/** Entries grouped by consultation (or by queue place for reads of a ticket), newest group first. */
export function groupEntries(entries) {
  const groups = new Map();
  for (const e of entries) {
    const key = e.consultation_id ? `c:${e.consultation_id}` : `t:${e.ticket_id || "-"}`;
    if (!groups.has(key)) groups.set(key, { key, consultation: !!e.consultation_id, entries: [] });
    groups.get(key).entries.push(e);
  }
  return [...groups.values()].sort((a, b) => b.entries[0].ts - a.entries[0].ts);
}

/** A cell that names its column, for the stacked layout on a phone. */
function cell(key, content) {
  return h("td", { i18nAttrs: { "data-label": key } }, content);
}

export function render(root) {
  useAdminCss();
  const body = h("div", { class: "stack", id: "access-log" });
  root.append(h("section", { class: "stack access-log", "aria-labelledby": "accesslog-h" },
    h("h1", { id: "accesslog-h", i18n: "accesslog_title" }),
    h("p", { i18n: "accesslog_intro" }), body));
  const when = (ts) => new Date(ts * 1000).toLocaleString(locale(), { dateStyle: "short", timeStyle: "short" });
  const day = (ts) => new Date(ts * 1000).toLocaleDateString(locale(), { dateStyle: "long" });
  request("GET", "/api/v1/me/access-log").then((entries) => {
    if (!entries.length) {
      body.append(h("p", { id: "access-log-empty", i18n: "accesslog_empty" }));
      return;
    }
    groupEntries(entries).forEach((g, i) => {
      const title = t(g.consultation ? "accesslog_consultation" : "accesslog_queue", { date: day(g.entries[0].ts) });
      body.append(h("section", { class: "card stack", "aria-labelledby": `al-${i}` },
        h("h2", { id: `al-${i}` }, title),
        h("div", { class: "table-wrap" }, h("table", { class: "data-table" },
          h("thead", {}, h("tr", {}, ["accesslog_when", "accesslog_who", "accesslog_role", "accesslog_what"]
            .map((k) => h("th", { scope: "col", i18n: k })))),
          h("tbody", {}, g.entries.map((e) => h("tr", {},
            cell("accesslog_when", h("time", { datetime: new Date(e.ts * 1000).toISOString() }, when(e.ts))),
            cell("accesslog_who", who(e)), cell("accesslog_role", role(e)),
            cell("accesslog_what", t(`action_${e.action}`)))))))));
    });
  }).catch((e) => body.append(h("p", { class: "error", role: "alert" }, e.message)));
}

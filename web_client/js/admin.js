// Admin (municipality): the pilot statistics for a period (table and plots per service, CSV export), the audit
// trail's verification status, and each service's opening hours and closures (stored at runtime, audited).
import { ApiError, request } from "./api.js";
import { announce, h, tr } from "./dom.js";
import { addStrings, locale, onLangChange, t } from "./i18n.js";
import { session } from "./session.js";
import { adminStrings } from "./admin.strings.js";
import { channelPlot, fmtSeconds, hourPlot, loadChart, outcomePlot, table, waitPlot } from "./admin.charts.js";

addStrings(adminStrings);
export const titleKey = "admin_title";

/** The admin and access-log screens' stylesheet, added once. */
export function useAdminCss() {
  if (document.getElementById("admin-css")) return;
  document.head.append(h("link", { rel: "stylesheet", href: "/static/css/admin.css", id: "admin-css" }));
}
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/** Today in Europe/Oslo as YYYY-MM-DD (the server's calendar). */
export function osloToday(now = new Date()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Oslo" }).format(now);
}

function minusDays(day, n) {
  const d = new Date(`${day}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() - n);
  return d.toISOString().slice(0, 10);
}

function seconds(v) { return v === null || v === undefined ? t("admin_none") : fmtSeconds(Math.round(v)); }

function summaryRows(s) {
  return [
    [t("admin_joined"), s.tickets.joined], [t("admin_taken"), s.tickets.taken], [t("admin_left"), s.tickets.left],
    [t("admin_abandoned"), s.tickets.abandoned], [t("admin_wait_p50"), seconds(s.wait_s.p50)],
    [t("admin_wait_p90"), seconds(s.wait_s.p90)], [t("admin_ended"), s.consultations.ended],
    ...Object.entries(s.consultations.outcomes).map(([k, v]) => [`– ${t(`outcome_${k}`)}`, v]),
    [t("admin_duration_p50"), seconds(s.consultations.duration_s.p50)],
    [t("admin_duration_p90"), seconds(s.consultations.duration_s.p90)],
    [t("admin_remote_requested"), s.remote_doctor.requested], [t("admin_remote_taken"), s.remote_doctor.taken],
    [t("admin_bookings_created"), s.bookings.created], [t("admin_bookings_cancelled"), s.bookings.cancelled],
    [t("admin_bookings_rescheduled"), s.bookings.rescheduled],
  ];
}

export function render(root) {
  useAdminCss();
  const tenant = session.user.tenant;
  const today = osloToday();
  const from = h("input", { type: "date", id: "stats-from", value: today, max: today, required: true });
  const to = h("input", { type: "date", id: "stats-to", value: today, max: today, required: true });
  const status = h("p", { class: "notice", role: "status", "aria-live": "polite", id: "stats-status" });
  const error = h("p", { class: "error", role: "alert", id: "admin-error" });
  const csv = h("button", { type: "button", class: "btn", id: "stats-csv", i18n: "admin_csv" });
  const audit = h("p", { id: "audit-status", role: "status" });
  const results = h("div", { id: "stats-results", class: "stack" });
  const settings = h("div", { id: "settings", class: "stack" });
  const quick = (key, days) => h("button", {
    type: "button", class: "btn btn-quiet", i18n: key,
    onclick: () => { to.value = today; from.value = minusDays(today, days); load(); },
  });
  const form = h("form", { class: "toolbar", id: "stats-form", novalidate: true },
    h("div", { class: "field inline" }, h("label", { for: "stats-from", i18n: "admin_from" }), from),
    h("div", { class: "field inline" }, h("label", { for: "stats-to", i18n: "admin_to" }), to),
    h("button", { type: "submit", class: "btn btn-primary", i18n: "admin_show" }),
    quick("admin_today", 0), quick("admin_last7", 6), quick("admin_last30", 29), csv);
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  csv.addEventListener("click", download);

  root.append(h("div", { class: "stack admin" },
    h("h1", { id: "admin-h", i18n: "admin_title" }),
    h("section", { class: "card", "aria-labelledby": "audit-h" }, h("h2", { id: "audit-h", i18n: "admin_audit" }), audit),
    h("section", { class: "stack", "aria-labelledby": "period-h" },
      h("h2", { id: "period-h", i18n: "admin_period" }), form, status, error, results),
    h("section", { class: "stack", "aria-labelledby": "settings-h" },
      h("h2", { id: "settings-h", i18n: "admin_settings" }), settings)));

  let charts = [];
  let stopped = false;
  const services = request("GET", `/api/v1/services?tenant=${encodeURIComponent(tenant)}`, undefined, { token: "" });
  const query = () => `from=${from.value}&to=${to.value}`;

  async function load() {
    error.textContent = "";
    tr(status, "admin_loading");
    try {
      const [report, Chart, list] = await Promise.all([
        request("GET", `/api/v1/tenants/${tenant}/stats?${query()}`), loadChart(), services]);
      if (stopped) return;
      draw(report, Chart, Object.fromEntries(list.map((s) => [s.service, s.name])));
      tr(status, "admin_loaded", { from: report.from, to: report.to });
    } catch (e) {
      status.textContent = "";
      error.textContent = e.message;
    }
  }

  function draw(report, Chart, names) {
    charts.forEach((c) => c.destroy());
    charts = [];
    results.replaceChildren();
    for (const s of report.services) {
      const id = `svc-${s.service}`;
      const plots = [waitPlot(`${id}-wait`, s), hourPlot(`${id}-hours`, s), outcomePlot(`${id}-outcomes`, s),
        channelPlot(`${id}-channels`, s)];
      results.append(h("section", { class: "card stack service-stats", id, "aria-labelledby": `${id}-h` },
        h("h3", { id: `${id}-h` }, names[s.service] || s.service),
        h("div", { class: "service-summary" },
          table(`${id}-summary`, [t("admin_figure"), t("admin_value")], summaryRows(s), names[s.service] || s.service),
          h("div", { class: "plots" }, plots.slice(0, 2).map((p) => p.element))),
        h("div", { class: "plots" }, plots.slice(2).map((p) => p.element))));
      charts.push(...plots.map((p) => p.draw(Chart)));
    }
  }

  async function download() {
    error.textContent = "";
    try {
      const resp = await fetch(`/api/v1/tenants/${tenant}/stats?${query()}&format=csv`,
        { headers: { Authorization: `Bearer ${session.token}` } });
      if (!resp.ok) throw new ApiError(resp.status, "", (await resp.json()).message);
      const url = URL.createObjectURL(await resp.blob());
      const a = h("a", { href: url, download: `nettlege-${tenant}-${from.value}-${to.value}.csv`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      error.textContent = e.message;
    }
  }

  async function loadAudit() {
    try {
      const s = await request("GET", `/api/v1/tenants/${tenant}/audit/status`);
      const when = new Date(s.checked_at * 1000).toLocaleString(locale());
      audit.className = s.intact ? "audit-ok" : "audit-bad";
      audit.textContent = `${s.intact ? t("admin_audit_ok") : t("admin_audit_bad", { n: s.problem_count })} `
        + t("admin_audit_checked", { when });
    } catch (e) {
      audit.textContent = e.message;
    }
  }

  async function loadSettings() {
    try {
      settings.replaceChildren(...await Promise.all((await services).map((s) => settingsForm(tenant, s))));
    } catch (e) {
      settings.textContent = e.message;
    }
  }

  load();
  loadAudit();
  loadSettings();
  // The plots' and tables' texts are drawn, not keyed: draw them again in the new language.
  onLangChange(() => { if (!stopped) { load(); loadAudit(); } });
  // Chart.js follows its container shrinking but not always growing back (grid/flex): resize on the window's.
  let resizing = null;
  const onResize = () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => charts.forEach((c) => c.resize()), 50);
  };
  window.addEventListener("resize", onResize);
  return () => {
    stopped = true;
    window.removeEventListener("resize", onResize);
    charts.forEach((c) => c.destroy());
  };
}

async function settingsForm(tenant, service) {
  const path = `/api/v1/tenants/${tenant}/services/${service.service}/settings`;
  const id = `set-${service.service}`;
  const current = await request("GET", path);
  const note = h("p", { class: "hint", id: `${id}-source` });
  const msg = h("p", { role: "status", "aria-live": "polite", id: `${id}-msg` });
  const err = h("p", { class: "error", role: "alert" });
  const inputs = {};
  const defaultInput = h("input", { id: `${id}-default`, "aria-describedby": `${id}-hint`, maxLength: 11 });
  const days = WEEKDAYS.map((d) => {
    inputs[d] = h("input", { id: `${id}-${d}`, "aria-describedby": `${id}-hint`, maxLength: 11 });
    return h("div", { class: "field" }, h("label", { for: `${id}-${d}`, i18n: `day_${d}` }), inputs[d]);
  });
  const closures = h("textarea", { id: `${id}-closures`, rows: 3, "aria-describedby": `${id}-hint` });
  function fill(s) {
    const hours = s.opening_hours;
    // The most common day value is the default; the other days show their own.
    const counts = {};
    WEEKDAYS.forEach((d) => { counts[hours[d]] = (counts[hours[d]] || 0) + 1; });
    const common = Object.entries(counts).sort((a, b) => b[1] - a[1])[0][0];
    defaultInput.value = common === "00:00-24:00" ? "24/7" : common;
    WEEKDAYS.forEach((d) => { inputs[d].value = hours[d] === common ? "" : hours[d]; });
    closures.value = s.closures.join("\n");
    tr(note, s.source === "runtime" ? "admin_settings_source_runtime" : "admin_settings_source_config");
  }
  fill(current);
  const form = h("form", { class: "card stack settings-form", id, novalidate: true },
    h("h3", {}, service.name),
    note,
    h("p", { class: "hint", id: `${id}-hint`, i18n: "admin_hours_hint" }),
    h("div", { class: "field" }, h("label", { for: `${id}-default`, i18n: "admin_default_hours" }), defaultInput),
    h("div", { class: "day-grid" }, days),
    h("div", { class: "field" }, h("label", { for: `${id}-closures`, i18n: "admin_closures" }), closures),
    err, msg,
    h("div", { class: "toolbar" },
      h("button", { type: "submit", class: "btn btn-primary", id: `${id}-save`, i18n: "admin_save" }),
      h("button", { type: "button", class: "btn", id: `${id}-reset`, i18n: "admin_reset", onclick: reset })));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    msg.textContent = "";
    const body = { default: defaultInput.value.trim() || "closed",
      closures: closures.value.split(/\s+/).filter(Boolean) };
    WEEKDAYS.forEach((d) => { if (inputs[d].value.trim()) body[d] = inputs[d].value.trim(); });
    try {
      fill(await request("PUT", path, body));
      tr(msg, "admin_saved");
      announce(t("admin_saved"));
    } catch (ex) {
      err.textContent = ex.message;
    }
  });
  async function reset() {
    err.textContent = "";
    try {
      fill(await request("DELETE", path));
      tr(msg, "admin_saved");
    } catch (ex) {
      err.textContent = ex.message;
    }
  }
  return form;
}

// The admin view's plots, drawn with Chart.js (web_client/vendor/chart.umd.min.js, from npm). Every plot is a
// <figure> with its caption, the canvas (an image to screen readers, labelled) and the same numbers as a table
// beside it: the table is what a keyboard or screen reader user reads.
import { h } from "./dom.js";
import { t } from "./i18n.js";

let loading = null;

/** Chart.js, loaded once and only on the screen that draws. */
export function loadChart() {
  if (window.Chart) return Promise.resolve(window.Chart);
  loading ??= new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = "/static/vendor/chart.umd.min.js";
    s.onload = () => resolve(window.Chart);
    s.onerror = () => { loading = null; reject(new Error("Chart.js could not be loaded")); };
    document.head.append(s);
  });
  return loading;
}

// Colours with enough contrast on white, told apart also by order and by the table.
const COLOURS = ["#0b5cad", "#b34700", "#1d7a3a", "#8a1f7a", "#5b5b5b"];

function table(id, columns, rows, label) {
  // In a scrolling region (reachable by keyboard): a data table may scroll sideways at 200 % text on a phone
  // (WCAG 1.4.10), the page itself does not.
  return h("div", { class: "table-wrap", role: "region", tabindex: "0", "aria-label": label },
    h("table", { class: "data-table", id },
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((v, i) => (i === 0 ? h("th", { scope: "row" }, v) : h("td", {}, v))))))));
}

/** A figure: caption, the plot, and its data table beside it. Returns {element, draw(Chart)}. */
function figure(id, caption, config, columns, rows) {
  const canvas = h("canvas", { id: `${id}-canvas`, role: "img", "aria-label": caption });
  const el = h("figure", { class: "plot", id },
    h("figcaption", {}, caption),
    h("div", { class: "plot-body" }, h("div", { class: "plot-canvas" }, canvas), table(`${id}-table`, columns, rows, caption)));
  return { element: el, draw: (Chart) => new Chart(canvas, config) };
}

const base = { animation: false, responsive: true, maintainAspectRatio: true, aspectRatio: 1.6 };

function fmtSeconds(s) {
  return s >= 60 ? t("admin_minutes", { m: Math.round(s / 60) }) : t("admin_seconds", { s });
}

export function waitPlot(id, s) {
  const hist = s.wait_histogram;
  const last = hist[hist.length - 2].le;
  const labels = hist.map((b) => (b.le === null ? t("admin_over", { v: fmtSeconds(last) })
    : t("admin_upto", { v: fmtSeconds(b.le) })));
  const counts = hist.map((b) => b.count);
  return figure(id, t("admin_wait_chart"), {
    type: "bar", data: { labels, datasets: [{ label: t("admin_count"), data: counts, backgroundColor: COLOURS[0] }] },
    options: { ...base, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  }, [t("admin_wait_bucket"), t("admin_count")], labels.map((l, i) => [l, counts[i]]));
}

export function hourPlot(id, s) {
  const labels = s.by_hour.map((x) => String(x.hour).padStart(2, "0"));
  const joined = s.by_hour.map((x) => x.joined);
  const taken = s.by_hour.map((x) => x.taken);
  return figure(id, t("admin_hour_chart"), {
    type: "bar",
    data: { labels, datasets: [{ label: t("admin_joined"), data: joined, backgroundColor: COLOURS[0] },
      { label: t("admin_taken"), data: taken, backgroundColor: COLOURS[1] }] },
    options: { ...base, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  }, [t("admin_hour"), t("admin_joined"), t("admin_taken")], labels.map((l, i) => [l, joined[i], taken[i]]));
}

function sharePlot(id, caption, column, entries) {
  const total = entries.reduce((n, [, v]) => n + v, 0);
  const labels = entries.map(([k]) => k);
  const values = entries.map(([, v]) => v);
  const pct = (v) => (total ? `${Math.round((100 * v) / total)} %` : "–");
  return figure(id, caption, {
    type: "doughnut",
    data: { labels, datasets: [{ data: values, backgroundColor: COLOURS }] },
    options: { ...base, aspectRatio: 1.4 },
  }, [column, t("admin_count"), t("admin_share")], entries.map(([k, v]) => [k, v, pct(v)]));
}

export function outcomePlot(id, s) {
  const entries = Object.entries(s.consultations.outcomes).map(([k, v]) => [t(`outcome_${k}`), v]);
  return sharePlot(id, t("admin_outcome_chart"), t("admin_outcome"), entries);
}

export function channelPlot(id, s) {
  const entries = Object.entries(s.channels).map(([k, v]) => [t(`channel_${k}`), v]);
  return sharePlot(id, t("admin_channel_chart"), t("admin_channel"), entries);
}

export { fmtSeconds, table };

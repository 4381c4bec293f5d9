// Small DOM helpers: build elements without innerHTML, announce to screen readers, move focus.
// Text that must follow the language switch is set with `i18n` (and `i18nParams`, `i18nAttrs`):
// the element keeps its key, and i18n.applyStatic() re-translates it in place.
import { t } from "./i18n.js";

/** h("button", {class: "x", onclick: fn}, "text", child) → an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "i18n") tr(el, v, attrs.i18nParams);
    else if (k === "i18nParams") continue;
    else if (k === "i18nAttrs") trAttrs(el, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

/** Set an element's text from a translation key; it follows later language switches. */
export function tr(el, key, params) {
  el.dataset.i18n = key;
  if (params) el.dataset.i18nParams = JSON.stringify(params);
  else delete el.dataset.i18nParams;
  el.textContent = t(key, params);
  return el;
}

/** Translated attributes, e.g. {"aria-label": "mute"} or {"aria-label": ["video_of", {name}]}. */
export function trAttrs(el, map) {
  el.dataset.i18nAttrs = JSON.stringify(map);
  for (const [attr, spec] of Object.entries(map)) {
    const [key, params] = Array.isArray(spec) ? spec : [spec];
    el.setAttribute(attr, t(key, params));
  }
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace the contents of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let politeTimer = null;
/** Say something to screen readers (polite) without moving focus. */
export function announce(text) {
  const region = document.getElementById("sr-status");
  if (!region) return;
  clearTimeout(politeTimer);
  region.textContent = "";
  politeTimer = setTimeout(() => { region.textContent = text; }, 50);
}

/** Put focus on a view's heading so keyboard and screen reader users start at the new content. */
export function focusHeading(root) {
  const heading = root.querySelector("h1, h2");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

export function formatDuration(seconds, lang) {
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  const r = s % 60;
  return `${m}:${String(r).padStart(2, "0")}`;
}

export function uuid() {
  return crypto.randomUUID ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

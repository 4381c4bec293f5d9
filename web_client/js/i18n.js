// Norwegian bokmål, nynorsk and English. The user's choice is kept in localStorage; without one the
// browser's languages decide (nn → nynorsk, en → English, anything else → bokmål).
// t(key, {param}) fills {param} placeholders. Elements created with dom.tr()/h({i18n}) carry their key
// and are re-translated in place by applyStatic(), so switching language never tears down a call.
import { nb } from "./strings/nb.js";
import { nn } from "./strings/nn.js";
import { en } from "./strings/en.js";

const DICTS = { nb, nn, en };
const LOCALES = { nb: "nb-NO", nn: "nn-NO", en: "en-GB" };
const STORE_KEY = "nettlege.lang";
let lang = "nb";
let chosen = false;
const listeners = [];

/** The first of the browser's languages we have: nn(o) is nynorsk, nb/no bokmål, en English. */
export function browserLang(langs = navigator.languages || [navigator.language]) {
  for (const l of langs) {
    const base = String(l).toLowerCase().split("-")[0];
    if (base === "nn") return "nn";
    if (base === "nb" || base === "no") return "nb";
    if (base === "en") return "en";
  }
  return "nb";
}

export function getLang() {
  const saved = localStorage.getItem(STORE_KEY);
  if (saved && DICTS[saved]) return saved;
  return lang === "nb" && !chosen ? browserLang() : lang;
}

/** For Intl (dates, numbers). */
export function locale(l = lang) { return LOCALES[l] || "nb-NO"; }

/** `remember`: the user chose it (kept); otherwise it is only the browser's default for this visit. */
export function setLang(next, { remember = true } = {}) {
  if (!DICTS[next]) return;
  const changed = next !== lang;
  lang = next;
  chosen = true;
  if (remember) localStorage.setItem(STORE_KEY, next);
  document.documentElement.lang = next;
  if (changed) listeners.forEach((fn) => fn(next));
}

export function onLangChange(fn) { listeners.push(fn); }

/** A screen's own strings ({nb: {...}, nn: {...}, en: {...}}), merged into the dictionaries when it loads. */
export function addStrings(dicts) {
  for (const [l, d] of Object.entries(dicts)) Object.assign(DICTS[l], d);
}

export function t(key, params) {
  let s = DICTS[lang][key] ?? DICTS.nb[key] ?? key;
  if (params) s = s.replace(/\{(\w+)\}/g, (_, p) => (params[p] ?? `{${p}}`));
  return s;
}

/** Re-translate every element that carries a key (data-i18n, data-i18n-attrs, data-i18n-aria). */
export function applyStatic(root) {
  root.querySelectorAll("[data-i18n]").forEach((el) => {
    const params = el.dataset.i18nParams ? JSON.parse(el.dataset.i18nParams) : undefined;
    el.textContent = t(el.dataset.i18n, params);
  });
  root.querySelectorAll("[data-i18n-attrs]").forEach((el) => {
    for (const [attr, spec] of Object.entries(JSON.parse(el.dataset.i18nAttrs))) {
      const [key, params] = Array.isArray(spec) ? spec : [spec];
      el.setAttribute(attr, t(key, params));
    }
  });
  root.querySelectorAll("[data-i18n-aria]").forEach((el) => {
    el.setAttribute("aria-label", t(el.dataset.i18nAria));
  });
}

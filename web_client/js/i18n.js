// Norwegian bokmål by default, English selectable; the choice is kept in localStorage.
// t(key, {param}) fills {param} placeholders. Elements created with dom.tr()/h({i18n}) carry their key
// and are re-translated in place by applyStatic(), so switching language never tears down a call.
import { nb } from "./strings/nb.js";
import { en } from "./strings/en.js";

const DICTS = { nb, en };
const STORE_KEY = "nettlege.lang";
let lang = "nb";
const listeners = [];

export function getLang() {
  const saved = localStorage.getItem(STORE_KEY);
  return saved && DICTS[saved] ? saved : lang;
}

export function setLang(next) {
  if (!DICTS[next]) return;
  const changed = next !== lang;
  lang = next;
  localStorage.setItem(STORE_KEY, next);
  document.documentElement.lang = next;
  if (changed) listeners.forEach((fn) => fn(next));
}

export function onLangChange(fn) { listeners.push(fn); }

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

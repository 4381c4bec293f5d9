// Entry point: hash router, top bar (language, who is logged in), connection banner.
import { t, setLang, getLang, applyStatic, onLangChange } from "./i18n.js";
import { session } from "./session.js";
import { focusHeading, replace, tr } from "./dom.js";
import { completeLogin } from "./oidc.js";
import * as login from "./views/login.js";
import * as services from "./views/services.js";
import * as join from "./views/join.js";
import * as waiting from "./views/waiting.js";
import * as room from "./views/room.js";
import * as dashboard from "./views/dashboard.js";
import * as nurse from "./views/nurse.js";
import * as operator from "./views/operator.js";
import * as invite from "./views/invite.js";
import * as ended from "./views/ended.js";
import * as code from "./views/code.js";
import * as admin from "./admin.js";
import * as accessLog from "./accesslog.js";
import * as booking from "./views/booking.js";

const ROUTES = [
  [/^\/login$/, login, false],
  [/^\/services$/, services, true],
  [/^\/join\/([a-z0-9-]+)\/([a-z0-9-]+)$/, join, true],
  [/^\/wait\/([A-Za-z0-9_-]+)$/, waiting, true],
  [/^\/room\/([A-Za-z0-9_-]+)$/, room, true],
  [/^\/dashboard(?:\/([a-z0-9-]+))?$/, dashboard, true],
  [/^\/nurse$/, nurse, true],
  [/^\/operator$/, operator, true],
  [/^\/invite\/([A-Za-z0-9_.~-]+)$/, invite, false],
  [/^\/ended\/([A-Za-z0-9_-]+)$/, ended, false],
  [/^\/kode$/, code, false],
  [/^\/admin$/, admin, true],
  [/^\/access-log$/, accessLog, true],
  [/^\/booking\/([A-Za-z0-9_.~-]+)$/, booking, false],
];

/** Where a logged-in user starts. */
export function homeFor(user) {
  switch (user?.role) {
    case "citizen": return "#/services";
    case "clinician": return "#/dashboard";
    case "nurse": return "#/nurse";
    case "operator": return "#/operator";
    case "admin": return "#/admin";
    default: return "#/services";
  }
}

let cleanup = null;
let current = null;

function parse() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  return { path, query: new URLSearchParams(query || "") };
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function render() {
  const { path, query } = parse();
  if (!path.startsWith("/")) return; // an in-page anchor, not a route
  const main = document.getElementById("main");
  if (typeof cleanup === "function") { try { cleanup(); } catch (e) { console.error(e); } }
  cleanup = null;
  replace(main);
  setBanner(null);
  if (path === "/") {
    navigate(session.token ? homeFor(session.user) : "#/login");
    return;
  }
  for (const [re, view, needsLogin] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    if (needsLogin && !session.token) {
      session.set("after_login", `#${path}`);
      navigate("#/login");
      return;
    }
    current = view;
    document.title = `${t(view.titleKey || "app_name")} – nettlege`;
    cleanup = view.render(main, m.slice(1), { query, navigate, setBanner, homeFor }) || null;
    focusHeading(main);
    updateTopbar();
    return;
  }
  replace(main, t("not_found"));
}

/** The visible "reconnecting" state (also read out: the banner is an assertive live region). */
export function setBanner(kind) {
  const el = document.getElementById("conn-banner");
  if (!kind) { el.hidden = true; el.textContent = ""; el.className = "conn-banner"; return; }
  el.hidden = false;
  el.className = `conn-banner conn-${kind}`;
  tr(el, kind);
}

function updateTopbar() {
  const who = document.getElementById("whoami");
  const user = session.user;
  who.textContent = user ? `${user.name || user.sub} · ${t(`role_${user.role}`)}` : "";
  document.getElementById("logout").hidden = !user;
  document.getElementById("access-log-link").hidden = user?.role !== "citizen";
}

async function boot() {
  setLang(getLang(), { remember: false });
  const select = document.getElementById("lang-select");
  select.value = getLang();
  select.addEventListener("change", () => setLang(select.value));
  onLangChange(() => {
    applyStatic(document);
    updateTopbar();
    if (current?.titleKey) document.title = `${t(current.titleKey)} – nettlege`;
  });
  document.getElementById("logout").addEventListener("click", () => {
    session.logout();
    navigate("#/login");
  });
  document.getElementById("skip-link").addEventListener("click", (e) => {
    e.preventDefault();
    const main = document.getElementById("main");
    main.focus();
  });
  applyStatic(document);
  // Returning from an OIDC provider: ?code=...&state=... on the redirect URI.
  const params = new URLSearchParams(location.search);
  if (params.get("code") && params.get("state")) {
    const next = await completeLogin(params);
    history.replaceState(null, "", `/${next || ""}`);
  }
  window.addEventListener("hashchange", render);
  window.addEventListener("nettlege-session", updateTopbar);
  render();
}

boot();

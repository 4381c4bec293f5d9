// Login: the dev login (role, name, municipality) in the embedded default; OIDC issuers when configured.
import { api } from "../api.js";
import { h, tr } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";
import { startLogin } from "../oidc.js";

export const titleKey = "login_title";
const ROLES = ["citizen", "clinician", "nurse", "operator", "admin"];

export function render(root, _params, { navigate, homeFor }) {
  const error = h("p", { class: "error", role: "alert" });
  const body = h("div", { class: "stack" }, h("p", { i18n: "loading" }));
  root.append(h("section", { class: "card narrow", "aria-labelledby": "login-h" },
    h("h1", { id: "login-h", i18n: "login_title" }), error, body));
  const pendingError = session.get("login_error");
  if (pendingError) { error.textContent = t(pendingError); session.set("login_error", null); }

  Promise.all([api.authConfig(), api.services().catch(() => [])]).then(([config, services]) => {
    body.replaceChildren();
    for (const issuer of config.issuers) {
      body.append(h("button", { type: "button", class: "btn btn-primary wide",
        onclick: () => startLogin(issuer, session.get("after_login")) },
      t("login_with", { name: issuerName(issuer) })));
    }
    if (config.dev_login) body.append(devForm(services));
    if (!config.dev_login && !config.issuers.length) body.append(h("p", { i18n: "login_none" }));
  }).catch((e) => { error.textContent = e.message; body.replaceChildren(); });

  function devForm(services) {
    const tenants = [...new Map(services.map((s) => [s.tenant, s.tenant_name])).entries()];
    const name = h("input", { id: "dev-name", name: "name", autocomplete: "name", required: true, maxLength: 80 });
    const role = h("select", { id: "dev-role", name: "role" },
      ROLES.map((r) => h("option", { value: r, i18n: `role_${r}` })));
    const tenant = h("select", { id: "dev-tenant", name: "tenant" },
      tenants.map(([id, label]) => h("option", { value: id }, label)));
    const form = h("form", { class: "stack", novalidate: true },
      h("p", { class: "hint", i18n: "dev_login_hint" }),
      field("dev-name", "your_name", name),
      field("dev-role", "role", role),
      field("dev-tenant", "municipality", tenant),
      h("button", { type: "submit", class: "btn btn-primary", i18n: "log_in" }));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.textContent = "";
      if (!name.value.trim()) {
        tr(error, "name_required");
        name.setAttribute("aria-invalid", "true");
        name.focus();
        return;
      }
      const sub = `dev-${role.value}-${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;
      try {
        const { token } = await api.devToken({ sub, role: role.value, tenant: tenant.value, name: name.value.trim() });
        const next = session.get("after_login"); // read first: a fresh login starts a fresh session
        session.login(token);
        navigate(next || homeFor(session.user));
      } catch (err) {
        error.textContent = err.message;
      }
    });
    return h("div", { class: "stack" }, config_divider(), form);
  }
}

function issuerName(issuer) {
  if (issuer.name && issuer.name !== issuer.issuer) return issuer.name;
  try { return new URL(issuer.issuer).hostname; } catch { return issuer.issuer; }
}

function config_divider() {
  return h("h2", { class: "h3", i18n: "dev_login" });
}

export function field(id, labelKey, control, hintKey) {
  const wrap = h("div", { class: "field" }, h("label", { for: id, i18n: labelKey }));
  if (hintKey) {
    const hint = h("p", { class: "hint", id: `${id}-hint`, i18n: hintKey });
    control.setAttribute("aria-describedby", `${id}-hint`);
    wrap.append(hint);
  }
  wrap.append(control);
  return wrap;
}

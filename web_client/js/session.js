// Who is logged in (token and its claims) and what they are doing (ticket, consultation), kept in
// sessionStorage so a reload or a dropped network brings the same tab back to the same place.

const KEY = "nettlege.session";

function decodeClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(atob(part).split("").map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""));
    return JSON.parse(json);
  } catch {
    return {};
  }
}

class Session {
  constructor() {
    this.data = {};
    try { this.data = JSON.parse(sessionStorage.getItem(KEY) || "{}"); } catch { this.data = {}; }
  }

  save() { sessionStorage.setItem(KEY, JSON.stringify(this.data)); }

  get token() { return this.data.token || null; }
  get user() { return this.data.user || null; }

  /** Log in with a JWT. `user` overrides claims (for issuers whose claim names differ); `keep` keeps
   * what this tab is doing (an invitee taking its session token as its login). */
  login(token, user = {}, { keep = false } = {}) {
    const c = decodeClaims(token);
    this.data = {
      ...(keep ? this.data : {}),
      token,
      user: {
        sub: c.sub,
        role: user.role || c.role || c.nettlege_role,
        tenant: user.tenant || c.tenant || c.nettlege_tenant,
        name: user.name || c.name || "",
      },
    };
    this.save();
    window.dispatchEvent(new Event("nettlege-session"));
  }

  logout() { this.data = {}; this.save(); }

  set(key, value) {
    if (value === undefined || value === null) delete this.data[key];
    else this.data[key] = value;
    this.save();
  }

  get(key) { return this.data[key] ?? null; }
}

export const session = new Session();
export { decodeClaims };

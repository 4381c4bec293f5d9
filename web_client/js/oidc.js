// OpenID Connect authorization-code flow with PKCE, in the browser.
// The verifier never leaves this tab until the code exchange; the exchange itself goes through
// nettlege (/api/v1/auth/token), which forwards it to the issuer's token endpoint (the page's CSP
// only allows connections to its own origin).
import { api } from "./api.js";
import { session } from "./session.js";

const PENDING = "nettlege.oidc";

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(n = 32) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

export function redirectUri() {
  return `${location.origin}/`;
}

export async function startLogin(issuer, next) {
  const verifier = randomString(48);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, issuer: issuer.issuer, next }));
  const url = new URL(issuer.authorization_endpoint);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", issuer.client_id);
  url.searchParams.set("redirect_uri", redirectUri());
  url.searchParams.set("scope", issuer.scope || "openid");
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", challenge);
  url.searchParams.set("code_challenge_method", "S256");
  location.assign(url.toString());
}

/** Back from the issuer with ?code&state: exchange the code, log in. Returns the hash to go to. */
export async function completeLogin(params) {
  let pending = null;
  try { pending = JSON.parse(sessionStorage.getItem(PENDING) || "null"); } catch { pending = null; }
  sessionStorage.removeItem(PENDING);
  if (!pending || pending.state !== params.get("state")) {
    session.set("login_error", "login_state_mismatch");
    return "#/login";
  }
  try {
    const tokens = await api.oidcToken({ issuer: pending.issuer, code: params.get("code"),
      code_verifier: pending.verifier, redirect_uri: redirectUri() });
    session.login(tokens.access_token);
    return pending.next || "#/";
  } catch (e) {
    session.set("login_error", e.message);
    return "#/login";
  }
}

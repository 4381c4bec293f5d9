// The REST API under /api/v1: one fetch wrapper; errors carry the server's Norwegian `message`.
import { session } from "./session.js";
import { getLang } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

/** True when the failure is the network (offline, server away), not an answer from the server. */
export function isNetworkError(err) {
  return !(err instanceof ApiError) || err.status === 0 || err.status >= 502;
}

export async function request(method, path, body, { token } = {}) {
  // Server messages come back in the UI's language (nb, nn or en).
  const headers = { Accept: "application/json", "Accept-Language": getLang() };
  const bearer = token ?? session.token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", e.message);
  }
  if (resp.status === 204) return null;
  let data = null;
  try { data = await resp.json(); } catch { /* empty or not JSON */ }
  if (!resp.ok) throw new ApiError(resp.status, data?.error, data?.message);
  return data;
}

export const api = {
  authConfig: () => request("GET", "/api/v1/auth/config", undefined, { token: "" }),
  oidcToken: (body) => request("POST", "/api/v1/auth/token", body, { token: "" }),
  devToken: (body) => request("POST", "/api/v1/dev/token", body, { token: "" }),
  services: (tenant) => request("GET", `/api/v1/services${tenant ? `?tenant=${encodeURIComponent(tenant)}` : ""}`,
    undefined, { token: "" }),
  joinQueue: (tenant, service, body) =>
    request("POST", `/api/v1/tenants/${tenant}/services/${service}/queue`, body),
  queue: (tenant, service) => request("GET", `/api/v1/tenants/${tenant}/services/${service}/queue`),
  takeNext: (tenant, service) => request("POST", `/api/v1/tenants/${tenant}/services/${service}/queue/take`),
  ticket: (id) => request("GET", `/api/v1/tickets/${id}`),
  leaveQueue: (id) => request("DELETE", `/api/v1/tickets/${id}`),
  setPriority: (id, priority) => request("PATCH", `/api/v1/tickets/${id}`, { priority }),
  setChannel: (id, body) => request("PUT", `/api/v1/tickets/${id}/channel`, body),
  createConsultation: (body) => request("POST", "/api/v1/consultations", body),
  consultation: (id) => request("GET", `/api/v1/consultations/${id}`),
  end: (id, outcome) => request("POST", `/api/v1/consultations/${id}/end`, { outcome }),
  invite: (id, body) => request("POST", `/api/v1/consultations/${id}/invites`, body),
  admit: (id, pid) => request("POST", `/api/v1/consultations/${id}/participants/${pid}/admit`),
  deny: (id, pid) => request("POST", `/api/v1/consultations/${id}/participants/${pid}/deny`),
  accessLog: () => request("GET", "/api/v1/me/access-log"),
  myTicket: () => request("GET", "/api/v1/me/ticket"),
};

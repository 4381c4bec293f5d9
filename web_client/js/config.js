// The server's login and feature settings (/api/v1/auth/config), fetched once.
import { api } from "./api.js";

let cached = null;
export function authConfig() {
  if (!cached) cached = api.authConfig().catch((e) => { cached = null; throw e; });
  return cached;
}

// For hosts (clinician, nurse, operator) in a room: who waits in the lobby (admit / deny), invite an
// interpreter, a relative or a second clinician (copy the link, or send it by SMS when configured),
// and end the consultation with an outcome. A knock rings and pops up admit/deny at the top of the screen;
// the chat can be exported for the patient record.
import { api, request } from "../api.js";
import { knockSound, unlockSound } from "../alerts.js";
import { session } from "../session.js";
import { announce, h, tr } from "../dom.js";
import { t } from "../i18n.js";
import { sendLinkControl } from "./sendlink.js";

const INVITE_ROLES = ["interpreter", "relative", "clinician"];
const OUTCOMES = ["resolved", "physical-followup", "referred", "emergency", "no-show"];
const POLL_MS = 15000; // a safety net: knocks arrive as signaling and chat events

export function hostPanel({ cid, onEnded, error }) {
  const lobby = h("ul", { class: "lobby", id: "lobby", role: "list" });
  const lobbyEmpty = h("p", { class: "hint", i18n: "lobby_empty" });
  const lobbySection = h("section", { class: "card", "aria-labelledby": "lobby-h" },
    h("h2", { id: "lobby-h", class: "h3", i18n: "lobby" }), lobbyEmpty, lobby);

  // An operator invites guests only; a second clinician is invited by a clinician or nurse (signaling/policy.py).
  const roles = INVITE_ROLES.filter((r) => r !== "clinician" || session.user?.role !== "operator");
  const role = h("select", { id: "invite-role" }, roles.map((r) => h("option", { value: r, i18n: `invite_as_${r}` })));
  const out = h("div", { class: "stack", id: "invite-result", "aria-live": "polite" });
  const make = h("button", { type: "button", class: "btn", id: "create-invite", i18n: "create_invite" });
  // A relative sees the earlier chat only when the host says so here; an interpreter never does.
  const historyAll = h("input", { type: "checkbox", id: "invite-history-all" });
  const historyField = h("div", { class: "field", hidden: role.value !== "relative" },
    historyAll, h("label", { for: "invite-history-all", i18n: "invite_history_all" }));
  role.addEventListener("change", () => { historyField.hidden = role.value !== "relative"; });
  const inviteSection = h("section", { class: "card", "aria-labelledby": "invite-h" },
    h("h2", { id: "invite-h", class: "h3", i18n: "invite" }),
    h("div", { class: "field" }, h("label", { for: "invite-role", i18n: "invite_role" }), role), historyField,
    make, out);

  make.addEventListener("click", async () => {
    try {
      const history = role.value === "relative" && historyAll.checked ? "all" : "from_join";
      const inv = await api.invite(cid, { role: role.value, ttl_s: 3600, lobby: true, history });
      out.replaceChildren(linkBox(inv.url, role.value), sendLinkControl({ cid, url: inv.url, error }));
      announce(t("invite_created"));
      out.querySelector("input")?.focus();
    } catch (e) {
      error.textContent = e.message;
    }
  });

  const exportSection = h("section", { class: "card", "aria-labelledby": "export-h" },
    h("h2", { id: "export-h", class: "h3", i18n: "export_title" }),
    h("p", { class: "hint", i18n: "export_hint" }),
    h("div", { class: "btn-row" },
      h("button", { type: "button", class: "btn", id: "export-pdf", i18n: "export_pdf", onclick: () => exportTranscript("pdf") }),
      h("button", { type: "button", class: "btn", id: "export-text", i18n: "export_text", onclick: () => exportTranscript("text") })));

  async function exportTranscript(format) {
    try {
      const token = session.get(`room_token_${cid}`) || session.token;
      const resp = await fetch(`/api/v1/consultations/${cid}/transcript?format=${format}`,
        { headers: { Authorization: `Bearer ${token}` } });
      if (!resp.ok) {
        const body = await resp.json().catch(() => ({}));
        error.textContent = body.message || `HTTP ${resp.status}`;
        return;
      }
      const url = URL.createObjectURL(await resp.blob());
      const a = h("a", { href: url, download: `chat-${cid}.${format === "pdf" ? "pdf" : "txt"}`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      announce(t("export_done"));
    } catch (e) {
      error.textContent = e.message;
    }
  }

  // The knock popup: fixed at the top, so admit/deny is visible without scrolling.
  const popupList = h("ul", { class: "lobby", role: "list" });
  const popup = h("section", { class: "knock-popup", id: "knock-popup", "aria-labelledby": "knock-popup-h", hidden: true },
    h("h2", { id: "knock-popup-h", class: "h3", i18n: "knock_title" }), popupList);
  document.body.append(popup);

  const element = h("div", { class: "stack", onpointerdown: unlockSound }, lobbySection, inviteSection, exportSection);
  let known = new Set();
  let timer = null;

  async function refresh() {
    clearTimeout(timer);
    try {
      const c = await api.consultation(cid);
      update(c);
    } catch { /* shown elsewhere */ }
    if (element.isConnected) timer = setTimeout(refresh, POLL_MS);
  }

  function update(c) {
    if (!c) return;
    const waiting = c.participants.filter((p) => p.state === "lobby");
    const ids = new Set(waiting.map((p) => p.id));
    const fresh = waiting.filter((p) => !known.has(p.id));
    for (const p of fresh) announce(t("knock_announce", { name: p.display_name || t(`role_${p.role}`) }));
    if (fresh.length) knockSound();
    known = ids;
    lobbyEmpty.hidden = waiting.length > 0;
    popup.hidden = waiting.length === 0;
    popupList.replaceChildren(...waiting.map((p) => lobbyItem(p, "popup")));
    lobby.replaceChildren(...waiting.map((p) => lobbyItem(p, "lobby")));
  }

  function lobbyItem(p, where) {
    const name = p.display_name || t(`role_${p.role}`);
    return h("li", { class: "lobby-item" },
      h("span", {}, name, " · ", h("span", { i18n: `role_${p.role}` })),
      h("span", { class: "btn-row" },
        h("button", { type: "button", class: "btn btn-primary", dataset: { admit: p.id, where },
          i18nAttrs: { "aria-label": ["admit_name", { name }] }, i18n: "admit", onclick: () => decide(p.id, true) }),
        h("button", { type: "button", class: "btn", dataset: { deny: p.id, where },
          i18nAttrs: { "aria-label": ["deny_name", { name }] }, i18n: "deny", onclick: () => decide(p.id, false) })));
  }

  async function decide(pid, admit) {
    try {
      await (admit ? api.admit(cid, pid) : api.deny(cid, pid));
      announce(t(admit ? "admitted_announce" : "denied_announce"));
      refresh();
    } catch (e) {
      error.textContent = e.message;
    }
  }

  // --- end with an outcome (a modal dialog: focus is trapped and returns to the button) -------
  const dialog = h("dialog", { class: "dialog", id: "end-dialog", "aria-labelledby": "end-h" });
  const form = h("form", { method: "dialog", class: "stack" },
    h("h2", { id: "end-h", i18n: "end_title" }),
    h("fieldset", { class: "radios" }, h("legend", { i18n: "outcome" }),
      OUTCOMES.map((o, i) => h("div", { class: "radio" },
        h("input", { type: "radio", name: "outcome", id: `outcome-${o}`, value: o, checked: i === 0 }),
        h("label", { for: `outcome-${o}`, i18n: `outcome_${o}` })))),
    h("div", { class: "btn-row" },
      h("button", { type: "submit", class: "btn btn-danger", id: "confirm-end", value: "end", i18n: "end_confirm" }),
      h("button", { type: "submit", class: "btn", value: "cancel", i18n: "cancel" })));
  dialog.append(form);
  document.body.append(dialog);
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "end") return;
    const outcome = form.querySelector("input[name=outcome]:checked").value;
    try {
      await api.end(cid, outcome);
      dialog.remove();
      onEnded(outcome);
    } catch (e) {
      error.textContent = e.message;
    }
  });

  refresh();
  return {
    element,
    update: (c) => update(c),
    refresh,
    openEnd: () => { dialog.returnValue = ""; dialog.showModal(); },
    stop: () => { clearTimeout(timer); dialog.remove(); popup.remove(); },
  };
}

/** A read-only link with a copy button. */
export function linkBox(url, roleKey) {
  const id = `link-${Math.random().toString(36).slice(2, 8)}`;
  const input = h("input", { id, type: "text", readOnly: true, value: url, class: "link-input" });
  const copied = h("span", { class: "hint", role: "status" });
  const copy = h("button", { type: "button", class: "btn", i18n: "copy_link", onclick: async () => {
    try { await navigator.clipboard.writeText(url); } catch { input.select(); document.execCommand?.("copy"); }
    tr(copied, "copied");
  } });
  return h("div", { class: "field link-box" },
    h("label", { for: id, i18n: "invite_link_for", i18nParams: { role: t(`role_${roleKey}`).toLowerCase() } }),
    h("div", { class: "btn-row" }, input, copy), copied);
}

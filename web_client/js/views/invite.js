// Invitee (interpreter, relative, a caller): opens a single-use link, gives a name, waits in the lobby
// until admitted, then the room. The invite is spent on joining; a reload uses the session token the
// server gave in exchange. A second clinician or nurse logs in first and accepts the invite with their own
// identity (never anonymously), then opens the room with that login.
import { request } from "../api.js";
import { h, tr } from "../dom.js";
import { session } from "../session.js";
import { field } from "./login.js";
import { render as renderRoom } from "./room.js";
import { precallCheck } from "./precall.js";
import { emergencyNumbers } from "./services.js";

export const titleKey = "invite_title";

export function render(root, [token], ctx) {
  const error = h("p", { class: "error", role: "alert" });
  const body = h("div", { class: "stack" });
  root.append(h("section", { class: "card narrow", "aria-labelledby": "invite-h" },
    h("h1", { id: "invite-h", i18n: "invite_title" }), error, body));
  let roomCleanup = null;
  let check = null;
  const spent = session.get(`invite_${token}`);

  if (spent) {
    open(spent.cid, spent.role, spent.name, session.get(`room_token_${spent.cid}`) || token);
  } else {
    request("GET", `/api/v1/invites/${encodeURIComponent(token)}`, undefined, { token: "" }).then((inv) => {
      if (inv.role === "clinician" || inv.role === "nurse") {
        acceptAsStaff(inv);
        return;
      }
      const name = h("input", { id: "invitee-name", autocomplete: "name", maxLength: 80, required: true });
      const form = h("form", { class: "stack", novalidate: true },
        h("p", { i18n: `invited_as_${inv.role}` }),
        field("invitee-name", "your_name", name),
        h("button", { type: "submit", class: "btn btn-primary", id: "join-invite", i18n: "join_consultation" }));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        if (!name.value.trim()) {
          name.setAttribute("aria-invalid", "true");
          tr(error, "name_required");
          name.focus();
          return;
        }
        session.set(`invite_${token}`, { cid: inv.consultation_id, role: inv.role, name: name.value.trim() });
        check.stop(true); // the tested camera and microphone go on into the consultation
        open(inv.consultation_id, inv.role, name.value.trim(), token);
      });
      check = precallCheck({ video: true });
      body.append(form, check.element);
      name.focus();
    }).catch((e) => {
      // Said on the first screen, before anything asks for the camera: what is wrong and what to do.
      if (e.status && e.status < 500) body.append(invalidLink(e));
      else error.textContent = e.message;
    });
  }

  // Staff join with their own login: accepting binds it to the consultation (a staff invite is never spent
  // anonymously), then the room opens with that login like any consultation of theirs.
  async function acceptAsStaff(inv) {
    const login = () => { session.set("after_login", `#/invite/${token}`); ctx.navigate("#/login"); };
    if (!session.token) { login(); return; }
    try {
      await request("POST", `/api/v1/invites/${encodeURIComponent(token)}/accept`);
    } catch (e) {
      if (e.status === 401) { login(); return; }
      if (e.code !== "already_participant") { body.append(invalidLink(e)); return; }
    }
    ctx.navigate(`#/room/${inv.consultation_id}`);
  }

  function open(cid, role, displayName, roomToken) {
    root.replaceChildren();
    roomCleanup = renderRoom(root, [cid], ctx, {
      token: roomToken, role, displayName, channel: "video",
      onDenied: () => {
        root.replaceChildren(h("section", { class: "card narrow", "aria-labelledby": "denied-h" },
          h("h1", { id: "denied-h", i18n: "denied_title" }), h("p", { i18n: "denied_text" })));
      },
    });
  }

  return () => { check?.stop(false); roomCleanup?.(); };
}

/** An unknown, used or expired link: the server's reason, then the next step. */
function invalidLink(err) {
  const key = { invite_used: "invite_used_title", invite_expired: "invite_expired_title" }[err.code] || "invite_invalid_title";
  return h("div", { class: "stack", id: "invite-invalid", role: "alert" },
    h("h2", { class: "h3", i18n: key }),
    err.message ? h("p", {}, err.message) : null,
    h("p", { i18n: "invite_invalid_next" }),
    emergencyNumbers());
}

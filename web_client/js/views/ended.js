// The end screen: the consultation ended (with its outcome) or you left it. Someone who left while the
// consultation goes on can go back in.
import { request } from "../api.js";
import { h } from "../dom.js";
import { session } from "../session.js";
import { emergencyNumbers } from "./services.js";

export const titleKey = "ended_title";

export function render(root, [cid], { query, homeFor }) {
  const outcome = query.get("outcome");
  const left = query.get("left") === "1";
  const user = session.user;
  const staff = ["clinician", "nurse", "operator"].includes(user?.role);
  const rejoin = h("a", { class: "btn btn-primary", id: "rejoin", href: `#/room/${cid}`, i18n: "rejoin", hidden: true });
  const stillOn = h("p", { id: "still-on", i18n: "consultation_still_on", hidden: true });
  root.append(h("section", { class: "card narrow stack", "aria-labelledby": "ended-h" },
    h("h1", { id: "ended-h", i18n: left ? "left_title" : "ended_title" }),
    outcome ? h("p", { id: "ended-outcome" }, h("span", { i18n: "outcome_label" }), " ",
      h("strong", { i18n: `outcome_${outcome}` })) : null,
    stillOn, rejoin,
    staff || left ? null : h("p", { i18n: "ended_text" }),
    staff ? null : emergencyNumbers(),
    user ? h("a", { class: "btn", href: homeFor(user), i18n: staff ? "back_to_queue" : "back_to_services" }) : null));

  // Left, not ended: offer the way back while the consultation is still on.
  const token = session.get(`room_token_${cid}`) || session.token;
  if (left && token) {
    request("GET", `/api/v1/consultations/${cid}`, undefined, { token }).then((c) => {
      if (c.state === "ended") return;
      stillOn.hidden = false;
      rejoin.hidden = false;
    }).catch(() => { /* gone or not ours: nothing to rejoin */ });
  }
}

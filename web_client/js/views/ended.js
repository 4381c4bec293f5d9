// The end screen: the consultation ended (with its outcome) or you left it.
import { h } from "../dom.js";
import { session } from "../session.js";
import { emergencyNumbers } from "./services.js";

export const titleKey = "ended_title";

export function render(root, _p, { query, homeFor }) {
  const outcome = query.get("outcome");
  const left = query.get("left") === "1";
  const user = session.user;
  const staff = ["clinician", "nurse", "operator"].includes(user?.role);
  root.append(h("section", { class: "card narrow", "aria-labelledby": "ended-h" },
    h("h1", { id: "ended-h", i18n: left ? "left_title" : "ended_title" }),
    outcome ? h("p", { id: "ended-outcome" }, h("span", { i18n: "outcome_label" }), " ",
      h("strong", { i18n: `outcome_${outcome}` })) : null,
    staff ? null : h("p", { i18n: "ended_text" }),
    staff ? null : emergencyNumbers(),
    user ? h("a", { class: "btn btn-primary", href: homeFor(user), i18n: staff ? "back_to_queue" : "back_to_services" }) : null));
}

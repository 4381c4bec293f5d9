// A caller without SMS: types the six digits the operator read aloud (at the short address /k) and lands
// on the invite, as if they had opened the link.
import { request } from "../api.js";
import { h, tr } from "../dom.js";
import { field } from "./login.js";

export const titleKey = "code_title";

export function render(root, _p, { navigate }) {
  const error = h("p", { class: "error", role: "alert", id: "code-error" });
  const input = h("input", { id: "short-code", inputMode: "numeric", autocomplete: "one-time-code",
    maxLength: 7, pattern: "[0-9 ]*", class: "code-input", required: true });
  const form = h("form", { class: "stack", novalidate: true },
    field("short-code", "code_label", input, "code_hint"),
    h("button", { type: "submit", class: "btn btn-primary", id: "code-submit", i18n: "code_submit" }));
  root.append(h("section", { class: "card narrow stack", "aria-labelledby": "code-h" },
    h("h1", { id: "code-h", i18n: "code_title" }), error, form));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const code = input.value.replace(/\s/g, "");
    if (!/^\d{6}$/.test(code)) {
      input.setAttribute("aria-invalid", "true");
      tr(error, "code_six_digits");
      input.focus();
      return;
    }
    try {
      const { token } = await request("POST", "/api/v1/short-codes/redeem", { code }, { token: "" });
      navigate(`#/invite/${token}`);
    } catch (err) {
      input.setAttribute("aria-invalid", "true");
      error.textContent = err.message;
      input.focus();
    }
  });
}

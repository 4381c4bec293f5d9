// "Are you sure?" as a modal <dialog> (focus stays inside and returns to the button that opened it).
import { h } from "../dom.js";

/** Resolves true when the user confirms. Keys are i18n keys; `id` names the dialog for tests. */
export function confirmDialog({ id, titleKey, textKey, confirmKey, cancelKey = "cancel", danger = true }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const dialog = h("dialog", { class: "dialog", id, "aria-labelledby": `${id}-h`, "aria-describedby": `${id}-text` },
      h("form", { method: "dialog", class: "stack" },
        h("h2", { id: `${id}-h`, i18n: titleKey }),
        h("p", { id: `${id}-text`, i18n: textKey }),
        h("div", { class: "btn-row" },
          h("button", { type: "submit", value: "yes", class: danger ? "btn btn-danger" : "btn btn-primary",
            id: `${id}-yes`, i18n: confirmKey }),
          h("button", { type: "submit", value: "no", class: "btn", id: `${id}-no`, i18n: cancelKey, autofocus: true }))));
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const yes = dialog.returnValue === "yes";
      dialog.remove();
      if (!yes) opener?.focus?.();
      resolve(yes);
    });
    dialog.showModal();
  });
}

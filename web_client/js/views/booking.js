// A booked consultation's join link (#/booking/<signed token>), sent by the booking system. The citizen's link
// opens the waiting room on its own from 15 minutes before the slot; the clinician's needs their own login
// first. Before the window the page says when it opens and tries again by itself.
import { ApiError, request } from "../api.js";
import { h, tr } from "../dom.js";
import { addStrings } from "../i18n.js";
import { session } from "../session.js";
import { render as renderRoom } from "./room.js";

addStrings({
  nb: { booking_title: "Timen din", booking_opening: "Åpner timen …", booking_retry: "Vi prøver igjen av oss selv." },
  nn: { booking_title: "Timen din", booking_opening: "Opnar timen …", booking_retry: "Vi prøver igjen av oss sjølve." },
  en: { booking_title: "Your appointment", booking_opening: "Opening your appointment …",
    booking_retry: "We will try again by ourselves." },
});
export const titleKey = "booking_title";
const RETRY_MS = 30000;

export function render(root, [token], ctx) {
  const msg = h("p", { role: "status", "aria-live": "polite", id: "booking-status", i18n: "booking_opening" });
  const error = h("p", { class: "error", role: "alert", id: "booking-error" });
  root.append(h("section", { class: "card narrow stack", "aria-labelledby": "booking-h" },
    h("h1", { id: "booking-h", i18n: "booking_title" }), msg, error));
  let timer = null;
  let roomCleanup = null;
  const saved = session.get(`booking_${token}`);

  async function open() {
    clearTimeout(timer);
    try {
      const got = saved || await request("POST", "/api/v1/bookings/links/redeem", { link: token },
        { token: session.token || "" });
      if (got.session_token) {
        session.set(`booking_${token}`, got);
        root.replaceChildren();
        roomCleanup = renderRoom(root, [got.consultation_id], ctx, {
          token: got.session_token, role: got.role, displayName: got.display_name, channel: "video" });
      } else {
        ctx.navigate(`#/room/${got.consultation_id}`);
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        session.set("after_login", `#/booking/${token}`);
        ctx.navigate("#/login");
        return;
      }
      error.textContent = e.message;
      if (e instanceof ApiError && e.code === "not_open_yet") {
        tr(msg, "booking_retry");
        timer = setTimeout(open, RETRY_MS);
      } else {
        msg.textContent = "";
      }
    }
  }
  open();
  return () => { clearTimeout(timer); roomCleanup?.(); };
}

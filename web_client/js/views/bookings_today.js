// The host clinician's booked consultations today (on the dashboard): slot time, the citizen's name, state,
// and a button into the room from 15 minutes before the slot.
import { request } from "../api.js";
import { h } from "../dom.js";
import { addStrings, locale } from "../i18n.js";

addStrings({
  nb: { bookings_today: "Dagens timer", bookings_none: "Ingen bestilte timer i dag.", bookings_open: "Åpne timen",
    bookings_opens_at: "Åpner kl. {time}", "bookings_state_scheduled": "Bestilt", "bookings_state_waiting": "Venter",
    "bookings_state_active": "Pågår", "bookings_state_ended": "Avsluttet", "bookings_state_no-show": "Møtte ikke" },
  nn: { bookings_today: "Timane i dag", bookings_none: "Ingen bestilte timar i dag.", bookings_open: "Opne timen",
    bookings_opens_at: "Opnar kl. {time}", "bookings_state_scheduled": "Bestilt", "bookings_state_waiting": "Ventar",
    "bookings_state_active": "Pågår", "bookings_state_ended": "Avslutta", "bookings_state_no-show": "Møtte ikkje" },
  en: { bookings_today: "Today's appointments", bookings_none: "No booked appointments today.",
    bookings_open: "Open the appointment", bookings_opens_at: "Opens at {time}", "bookings_state_scheduled": "Booked",
    "bookings_state_waiting": "Waiting", "bookings_state_active": "In progress", "bookings_state_ended": "Ended",
    "bookings_state_no-show": "Did not attend" },
});

/** A section listing today's bookings; `navigate` opens the room. Refresh with `.refresh()`. */
export function todaysBookings(navigate) {
  const list = h("ul", { class: "stack plain-list", id: "bookings-today" });
  const section = h("section", { class: "card stack", "aria-labelledby": "bookings-today-h" },
    h("h2", { id: "bookings-today-h", i18n: "bookings_today" }), list);
  const time = (ts) => new Date(ts * 1000).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
  section.refresh = async () => {
    try {
      const rows = await request("GET", "/api/v1/me/bookings");
      if (!rows.length) {
        list.replaceChildren(h("li", { class: "hint", i18n: "bookings_none" }));
        return;
      }
      const now = Date.now() / 1000;
      list.replaceChildren(...rows.map((b) => {
        const open = now >= b.opens_at && !["ended", "no-show"].includes(b.state);
        return h("li", { class: "booking-row", dataset: { consultation: b.consultation_id } },
          h("strong", {}, time(b.slot_at)), " ", b.citizen_name, " · ",
          h("span", { i18n: `bookings_state_${b.state}` }), " ",
          open ? h("button", { type: "button", class: "btn btn-primary", i18n: "bookings_open",
            onclick: () => navigate(`#/room/${b.consultation_id}`) })
            : h("span", { class: "hint", i18n: "bookings_opens_at", i18nParams: { time: time(b.opens_at) } }));
      }));
    } catch (e) {
      list.replaceChildren(h("li", { class: "error" }, e.message));
    }
  };
  section.refresh();
  return section;
}


// Citizen (and nurse): the waiting room. Live place in the queue and estimated wait, the pre-call
// check, leave the queue; called → the consultation. A dropped network shows "reconnecting" and
// comes back to the same ticket (the ticket id is kept in the session).
import { api, isNetworkError } from "../api.js";
import { announce, h, tr } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";
import { QueueEvents } from "../chat.js";
import { precallCheck } from "./precall.js";

export const titleKey = "waiting_title";
const POLL_MS = 3000;

export function render(root, [ticketId], { navigate, setBanner }) {
  const position = h("p", { class: "position", id: "queue-position" });
  const eta = h("p", { class: "eta", id: "queue-eta" });
  const status = h("div", { class: "card status-card", role: "status", "aria-live": "polite", "aria-atomic": "true" },
    position, eta);
  const extra = h("div", { class: "stack" });
  const error = h("p", { class: "error", role: "alert" });
  const leave = h("button", { type: "button", class: "btn btn-danger", id: "leave-queue", i18n: "leave_queue" });
  root.append(h("section", { class: "stack page-medium", "aria-labelledby": "wait-h" },
    h("h1", { id: "wait-h", i18n: "waiting_title" }),
    status, error, extra, leave));

  let check = null;
  let stopped = false;
  let timer = null;
  let lastPosition = null;
  let shownChannel = null;
  let offline = false;
  const events = new QueueEvents(session.token, ticketId, () => poll());

  function showChannel(ticket) {
    if (shownChannel) return;
    shownChannel = ticket.channel;
    if (ticket.channel === "phone") {
      extra.append(h("p", { class: "notice", i18n: "we_will_call", i18nParams: { phone: ticket.callback_phone || "" } }));
    } else {
      extra.append(h("p", { i18n: ticket.channel === "video" ? "waiting_video_hint" : "waiting_chat_hint" }));
      check = precallCheck({ video: ticket.channel === "video" });
      extra.append(check.element);
    }
  }

  function setOffline(on) {
    if (on === offline) return;
    offline = on;
    setBanner(on ? "reconnecting" : null);
    if (!on) announce(t("reconnected"));
  }

  async function poll() {
    if (stopped) return;
    clearTimeout(timer);
    try {
      const ticket = await api.ticket(ticketId);
      if (stopped) return;
      setOffline(false);
      showChannel(ticket);
      if (ticket.state === "waiting") {
        if (ticket.position !== lastPosition) {
          tr(position, "your_position", { n: ticket.position });
          lastPosition = ticket.position;
        }
        const minutes = Math.max(1, Math.round((ticket.eta_s || 0) / 60));
        tr(eta, ticket.eta_s ? "eta_minutes" : "eta_soon", { n: minutes });
      } else if (ticket.state === "taken" && ticket.consultation_id) {
        tr(position, "called_now");
        eta.textContent = "";
        stopped = true;
        check?.stop(true);
        session.set("ticket", null);
        if (ticket.channel === "phone") {
          extra.replaceChildren(h("p", { class: "notice", i18n: "phone_calling_now" }));
          leave.hidden = true;
          return;
        }
        navigate(`#/room/${ticket.consultation_id}`);
        return;
      } else {
        tr(position, "not_in_queue");
        eta.textContent = "";
        session.set("ticket", null);
        leave.hidden = true;
        extra.replaceChildren(h("a", { class: "btn", href: "#/services", i18n: "back_to_services" }));
        stopped = true;
        return;
      }
    } catch (e) {
      if (isNetworkError(e)) setOffline(true);
      else if (e.status === 404) {
        tr(position, "not_in_queue");
        session.set("ticket", null);
        stopped = true;
        return;
      } else error.textContent = e.message;
    }
    timer = setTimeout(poll, offline ? 1500 : POLL_MS);
  }

  leave.addEventListener("click", async () => {
    try {
      await api.leaveQueue(ticketId);
      stopped = true;
      session.set("ticket", null);
      navigate(session.user?.role === "nurse" ? "#/nurse" : "#/services");
    } catch (e) {
      error.textContent = e.message;
    }
  });

  const onOffline = () => setOffline(true);
  const onOnline = () => poll();
  window.addEventListener("offline", onOffline);
  window.addEventListener("online", onOnline);
  poll();
  events.start();

  return () => {
    stopped = true;
    clearTimeout(timer);
    events.stop();
    window.removeEventListener("offline", onOffline);
    window.removeEventListener("online", onOnline);
    if (check) check.stop(session.get("ticket") === null);
  };
}

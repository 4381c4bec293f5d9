// Citizen (and nurse): the waiting room. Live place in the queue and estimated wait, the pre-call
// check, leave the queue; called → the consultation. A dropped network shows "reconnecting" and
// comes back to the same ticket (the ticket id is kept in the session). While waiting the screen is
// kept on; when called, a sound, vibration, a notification (if allowed here) and a blinking title.
import { api, isNetworkError } from "../api.js";
import { askNotificationPermission, keepAwake, notificationPermission, turnAlert, unlockSound } from "../alerts.js";
import { announce, h, tr } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";
import { QueueEvents } from "../chat.js";
import { precallCheck } from "./precall.js";
import { confirmDialog } from "./confirm.js";
import { phoneSwitch } from "./phoneswitch.js";

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
  const alerts = alertsCard();
  root.append(h("section", { class: "stack page-medium", "aria-labelledby": "wait-h" },
    h("h1", { id: "wait-h", i18n: "waiting_title" }),
    status, error, alerts, extra,
    h("p", { class: "emergency-line" }, h("span", { i18n: "emergency_call" }), " ",
      h("a", { href: "tel:113", class: "tel tel-113", id: "call-113" }, "113")),
    leave));
  const releaseWakeLock = keepAwake();

  let check = null;
  let stopped = false;
  let timer = null;
  let lastPosition = null;
  let shownChannel = null;
  let offline = false;
  const events = new QueueEvents(session.token, ticketId, () => poll());

  let switcher = null;
  function showChannel(ticket) {
    if (shownChannel === ticket.channel) return;
    shownChannel = ticket.channel;
    check?.stop(false); // now by phone (switched here or on another device): the camera goes off
    check = null;
    extra.replaceChildren();
    if (ticket.channel === "phone") {
      extra.append(h("p", { class: "notice", id: "we-will-call", i18n: "we_will_call",
        i18nParams: { phone: ticket.callback_phone || "" } }));
      return;
    }
    if (ticket.channel === "video") {
      extra.append(h("p", { i18n: "waiting_video_hint" }));
      check = precallCheck({ video: true, onPhone: () => switcher?.open() });
      extra.append(check.element);
    } else {
      extra.append(h("p", { i18n: "waiting_chat_hint" })); // chat only: no camera or microphone check
    }
    offerPhone(ticket);
  }

  /** "Ring meg heller", when this service takes phone consultations. */
  async function offerPhone(ticket) {
    let services = [];
    try { services = await api.services(ticket.tenant); } catch { return; }
    if (stopped || shownChannel === "phone" || switcher?.element.isConnected) return;
    if (!services.some((s) => s.service === ticket.service && s.channels.includes("phone"))) return;
    switcher = phoneSwitch(ticketId, { phone: ticket.callback_phone || "", onSwitched: (tk) => showChannel(tk) });
    extra.append(switcher.element);
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
        turnAlert({ title: t(ticket.channel === "phone" ? "turn_alert_phone" : "turn_alert_title"),
          body: t(ticket.channel === "phone" ? "phone_calling_now" : "turn_alert_body") });
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
    const sure = await confirmDialog({ id: "leave-queue-dialog", titleKey: "leave_queue_confirm_title",
      textKey: "leave_queue_confirm_text", confirmKey: "leave_queue_confirm", cancelKey: "stay_in_queue" });
    if (!sure || stopped) return;
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
    releaseWakeLock();
    clearTimeout(timer);
    events.stop();
    window.removeEventListener("offline", onOffline);
    window.removeEventListener("online", onOnline);
    if (check) check.stop(session.get("ticket") === null);
  };
}

/** Ask for notifications here, with the reason, on the user's click (browsers ignore asks without one). */
function alertsCard() {
  const state = h("p", { class: "hint", id: "alerts-state", role: "status" });
  const button = h("button", { type: "button", class: "btn", id: "enable-alerts", i18n: "alerts_enable" });
  const show = (perm) => {
    button.hidden = perm !== "default";
    tr(state, `alerts_${perm}`);
  };
  button.addEventListener("click", async () => {
    unlockSound();
    show(await askNotificationPermission());
  });
  show(notificationPermission());
  // Any click on the page lets the sound play later (browsers block sound on untouched pages).
  const card = h("section", { class: "card alerts-card", "aria-labelledby": "alerts-h", onpointerdown: unlockSound },
    h("h2", { id: "alerts-h", class: "h3", i18n: "alerts_title" }),
    h("p", { i18n: "alerts_reason" }), button, state);
  return card;
}

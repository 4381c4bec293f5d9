// Telling a waiting citizen that it is their turn while they look elsewhere: a sound, vibration, a
// system notification (permission asked in the waiting room, with the reason), a blinking title; and a
// screen wake lock while waiting, so a phone on the table does not go to sleep and drop the page.

let audio = null; // one AudioContext, created on a user gesture so the browser lets it play later

/** Call from a click: browsers only let pages that were interacted with make sound. */
export function unlockSound() {
  try {
    audio ??= new AudioContext();
    audio.resume().catch(() => {});
  } catch { /* no Web Audio: vibration and the notification remain */ }
}

/** "granted" | "denied" | "default" | "unsupported". When granted (now or on an earlier visit), the service
 *  worker is registered right away, so it is active before the turn comes. */
export function notificationPermission() {
  const permission = typeof Notification === "function" ? Notification.permission : "unsupported";
  if (permission === "granted") workerRegistration();
  return permission;
}

export async function askNotificationPermission() {
  unlockSound();
  if (typeof Notification !== "function") return "unsupported";
  let permission;
  try { permission = await Notification.requestPermission(); } catch { permission = Notification.permission; }
  if (permission === "granted") workerRegistration();
  return permission;
}

let registering = null; // Promise<boolean>: the worker's registration, started once per page
const TAB = Math.random().toString(36).slice(2); // names this tab to the service worker (a tap comes back here)
const WORKER_WAIT_MS = 15_000;

/** The notifications-only service worker (/sw.js): Chrome on Android shows notifications only through one.
 *  Resolves to its registration once the worker is active, or to null where there is none (old browser,
 *  insecure origin, registration refused) or it is still not active after WORKER_WAIT_MS. Only the
 *  registration itself is kept: a slow activation (a busy phone) is waited for again on the next call
 *  instead of being remembered as "no worker". */
function workerRegistration() {
  if (!("serviceWorker" in navigator)) return Promise.resolve(null);
  registering ??= navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(() => true, () => false);
  return registering.then((ok) => ok && Promise.race([navigator.serviceWorker.ready,
    new Promise((resolve) => setTimeout(() => resolve(null), WORKER_WAIT_MS))])).then((reg) => reg || null);
}

/** The system notification: through the service worker when there is one, else the page's own. */
async function notify(title, body) {
  const options = { body, tag: "nettlege-turn", requireInteraction: true, vibrate: [400, 200, 400, 200, 400],
    data: { url: location.href, tab: TAB } }; // the waiting room: a tap on it comes back to this tab (sw.js)
  const reg = await workerRegistration();
  if (reg) {
    try {
      await reg.showNotification(title, options);
      reg.active?.postMessage({ type: "turn-tab", tab: TAB });
      return;
    } catch (err) { // e.g. permission only granted to the page's Notification: the fallback below
      console.warn("turn alert: the service worker could not show it:", err?.name, err?.message);
    }
  } else {
    console.warn("turn alert: no active service worker, the page shows the notification itself");
  }
  const n = new Notification(title, options);
  n.onclick = () => { window.focus(); n.close(); };
}

/** Three short rising tones. */
function chime() {
  unlockSound();
  if (!audio) return;
  const start = audio.currentTime + 0.05;
  [660, 880, 990].forEach((freq, i) => {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, start + i * 0.35);
    gain.gain.exponentialRampToValueAtTime(0.3, start + i * 0.35 + 0.03);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.35 + 0.3);
    osc.connect(gain).connect(audio.destination);
    osc.start(start + i * 0.35);
    osc.stop(start + i * 0.35 + 0.32);
  });
}

let blinkTimer = null;
let blinkStop = null;

/** Alternate the tab title with `text` until the user interacts with the page (or a minute passes). */
function blinkTitle(text) {
  stopBlink();
  let base = document.title;
  let on = false;
  blinkTimer = setInterval(() => {
    if (document.title !== text) base = document.title; // a new view set its own title meanwhile
    on = !on;
    document.title = on ? text : base;
  }, 1000);
  const until = Date.now() + 60_000;
  const stop = () => {
    if (document.visibilityState === "visible" || Date.now() > until) stopBlink(base);
  };
  const events = ["pointerdown", "keydown"];
  events.forEach((e) => window.addEventListener(e, stop));
  const expiry = setTimeout(() => stopBlink(base), 60_000);
  blinkStop = (restore) => {
    events.forEach((e) => window.removeEventListener(e, stop));
    clearTimeout(expiry);
    if (document.title === text) document.title = restore ?? base;
  };
}

export function stopBlink(restore) {
  clearInterval(blinkTimer);
  blinkTimer = null;
  const s = blinkStop;
  blinkStop = null;
  s?.(restore);
}

/** Everything at once, as far as this browser allows. Never throws. */
export function turnAlert({ title, body }) {
  try { chime(); } catch { /* sound is a bonus */ }
  try { navigator.vibrate?.([400, 200, 400, 200, 400]); } catch { /* not on desktops */ }
  if (notificationPermission() === "granted") notify(title, body).catch(() => { /* no notification here */ });
  blinkTitle(title);
}

/** Keep the screen on while waiting; re-acquired when the page becomes visible again. Returns release(). */
export function keepAwake() {
  let lock = null;
  let released = false;
  const acquire = async () => {
    if (released || document.visibilityState !== "visible" || !navigator.wakeLock) return;
    try { lock = await navigator.wakeLock.request("screen"); } catch { lock = null; }
    if (released) lock?.release().catch(() => {});
  };
  document.addEventListener("visibilitychange", acquire);
  acquire();
  return () => {
    released = true;
    document.removeEventListener("visibilitychange", acquire);
    lock?.release().catch(() => {});
    lock = null;
  };
}

/** A short two-tone ring for the clinician: someone knocks. */
export function knockSound() {
  try {
    unlockSound();
    if (!audio) return;
    const start = audio.currentTime + 0.02;
    [880, 660].forEach((freq, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.25, start + i * 0.25);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.25 + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(start + i * 0.25);
      osc.stop(start + i * 0.25 + 0.24);
    });
  } catch { /* sound is a bonus */ }
}

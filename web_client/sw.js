// The service worker: only so the "it is your turn" alert can be a system notification on Android phones,
// where Chrome refuses `new Notification(...)` and wants ServiceWorkerRegistration.showNotification.
// Deliberately no fetch handler and no cache: nothing of the citizen's (pages, API answers) is stored here.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

// The tab that showed a turn notification says so right after (`turn-tab`, with the tab id also put in the
// notification's data): a client's url need not follow the page's in-app (#) navigation, so it cannot tell
// two of our tabs apart. Kept in memory only: after a worker restart the tap falls back to the url.
const turnTabs = new Map(); // tab id -> client id

self.addEventListener("message", (event) => {
  if (event.data?.type === "turn-tab" && typeof event.data.tab === "string" && event.source) {
    if (turnTabs.size > 20) turnTabs.clear();
    turnTabs.set(event.data.tab, event.source.id);
  }
});

/** Which of our tabs a tap on the turn notification brings forward: the one that showed it, else one at
 *  its address (data.url, the waiting room) or in a waiting room or consultation, else any of ours. */
function turnWindow(windows, data) {
  const own = windows.filter((c) => new URL(c.url).origin === self.location.origin);
  const shower = turnTabs.get(data?.tab);
  const route = (c) => new URL(c.url).hash;
  return own.find((c) => c.id === shower) || own.find((c) => c.url === data?.url)
    || own.find((c) => /^#\/(room|wait)\//.test(route(c))) || own[0] || null;
}

/** Focus that tab; with none left (the page was closed), open the waiting room's address again. */
async function bringBack(data) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const tab = turnWindow(windows, data);
  if (tab) return tab.focus();
  const url = data?.url && new URL(data.url).origin === self.location.origin ? data.url : "/";
  return self.clients.openWindow(url);
}

// A tap on the notification brings the citizen back to the open tab (or opens the service if it was closed).
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(bringBack(event.notification.data));
});

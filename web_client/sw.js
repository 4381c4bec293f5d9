// The service worker: only so the "it is your turn" alert can be a system notification on Android phones,
// where Chrome refuses `new Notification(...)` and wants ServiceWorkerRegistration.showNotification.
// Deliberately no fetch handler and no cache: nothing of the citizen's (pages, API answers) is stored here.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

// A tap on the notification brings the citizen back to the open tab (or opens the service if it was closed).
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const own = windows.find((c) => new URL(c.url).origin === self.location.origin);
    if (own) return own.focus();
    return self.clients.openWindow("/");
  })());
});

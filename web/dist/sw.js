// The web app's service worker: shows each Web Push (the message object, which the
// browser has decrypted) as a notification, and shows its topic on a click.
self.addEventListener("push", (event) => {
  let m = {};
  try {
    m = event.data ? event.data.json() : {};
  } catch {
    m = { message: event.data ? event.data.text() : "" };
  }
  const title = m.title || m.topic || "tidings";
  event.waitUntil(
    self.registration.showNotification(title, { body: m.message || "", tag: m.id, data: { topic: m.topic } }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const topic = event.notification.data && event.notification.data.topic;
  event.waitUntil(show(topic ? `/app/topics/${encodeURIComponent(topic)}` : "/app/"));
});

// Shows `path` in a window of the app that is open (the app routes there itself, keeping
// its session), else in a new window.
async function show(path) {
  const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const app = open.find((c) => new URL(c.url).pathname.startsWith("/app/"));
  if (!app) return self.clients.openWindow(path);
  app.postMessage({ open: path });
  return app.focus().catch(() => {});
}

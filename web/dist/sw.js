// The web app's service worker: shows each Web Push (the message object, which the
// browser has decrypted) as a notification, and opens its topic on a click.
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
  const url = new URL(topic ? `/app/topics/${encodeURIComponent(topic)}` : "/app/", self.location.origin).href;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((open) => {
      const same = open.find((c) => c.url === url);
      return same ? same.focus() : self.clients.openWindow(url);
    }),
  );
});

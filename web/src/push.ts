// Web Push: the service worker, the browser's push subscription made with the
// server's VAPID key, and its registration with the server. A browser has one push
// subscription, so the server keeps one for it with every topic chosen here (the same
// endpoint registered again replaces the earlier one); which topics those are is a
// preference (no secret), kept in this browser.
import { call } from "./api";

const WORKER = "/app/sw.js";
const SAVED = "tidings.push";

interface Saved {
  id: string;
  topics: string[];
}

function saved(): Saved | null {
  try {
    return JSON.parse(localStorage.getItem(SAVED) ?? "null") as Saved | null;
  } catch {
    return null;
  }
}

export function pushSupported(): boolean {
  return "serviceWorker" in navigator && "PushManager" in window;
}

export function pushEnabled(topic: string): boolean {
  return saved()?.topics.includes(topic) ?? false;
}

/** Registers this browser's push subscription for `topics` (none: deletes it). */
async function register(topics: string[]): Promise<void> {
  const before = saved();
  if (topics.length === 0) {
    localStorage.removeItem(SAVED);
    if (before) await call("DELETE", `/api/webpush/subscriptions/${encodeURIComponent(before.id)}`);
    return;
  }
  if ((await Notification.requestPermission()) !== "granted") {
    throw new Error("Notifications are blocked for this site in the browser's settings.");
  }
  const registration = await navigator.serviceWorker.register(WORKER, { scope: "/app/" });
  await navigator.serviceWorker.ready;
  const { public_key } = await call<{ public_key: string }>("GET", "/api/webpush");
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true,
    // The Push API takes the key as base64url text too.
    applicationServerKey: public_key,
  });
  const json = subscription.toJSON();
  const made = await call<{ id: string }>("POST", "/api/webpush/subscriptions", {
    endpoint: json.endpoint,
    keys: json.keys,
    topics,
  });
  localStorage.setItem(SAVED, JSON.stringify({ id: made.id, topics } satisfies Saved));
}

/** Pushes of `topic` to this browser, on or off. */
export async function setPush(topic: string, on: boolean): Promise<void> {
  const others = (saved()?.topics ?? []).filter((t) => t !== topic);
  await register(on ? [...others, topic] : others);
}

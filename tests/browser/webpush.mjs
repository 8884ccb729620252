// Web Push made by the app's own code: the topic page's "Web Push" option registers the
// service worker, subscribes through PushManager with the server's VAPID key and
// registers the subscription with the server. Chromium cannot reach a real push
// service here, so PushManager.subscribe is stubbed to answer with keys made in the
// page by WebCrypto and the test's own push endpoint (PUSH_ENDPOINT); the keys go to
// PUSH_KEYS, with which the Rust test decrypts the push that endpoint receives.
// Usage: TIDINGS_URL=… PUSH_ENDPOINT=http://127.0.0.1:PORT/push/x PUSH_KEYS=FILE node webpush.mjs
import { writeFileSync } from "node:fs";
import { BASE, signUpWithTopic, browser, check, finish, problems, publish, step, watch } from "./lib.mjs";

const ENDPOINT = process.env.PUSH_ENDPOINT;
const KEYS = process.env.PUSH_KEYS;
if (!ENDPOINT || !KEYS) throw new Error("PUSH_ENDPOINT and PUSH_KEYS must be set");

const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
await context.grantPermissions(["notifications"], { origin: BASE });
// Runs in the page before the app: the stand-in for the browser's push service.
await context.addInitScript((endpoint) => {
  const b64u = (bytes) =>
    btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  PushManager.prototype.subscribe = async function (options) {
    // As a browser does, the same subscription again while it lasts.
    if (window.__subscription) return window.__subscription;
    const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
    const keys = {
      p256dh: b64u(await crypto.subtle.exportKey("raw", pair.publicKey)),
      auth: b64u(crypto.getRandomValues(new Uint8Array(16))),
    };
    const key = options.applicationServerKey;
    window.__push = {
      d: (await crypto.subtle.exportKey("jwk", pair.privateKey)).d,
      ...keys,
      application_server_key: typeof key === "string" ? key : b64u(key),
      user_visible_only: options.userVisibleOnly === true,
    };
    window.__subscription = { endpoint, toJSON: () => ({ endpoint, expirationTime: null, keys }) };
    return window.__subscription;
  };
}, ENDPOINT);
const page = await context.newPage();
watch(page, "user");
const main = () => page.locator("main");
const suffix = Date.now().toString(36);
const topic = `push-${suffix}`;
let key;

try {
  await step("sign up and open a new topic", async () => {
    key = await signUpWithTopic(page, `ada-${suffix}`, topic);
  });

  await step("Web Push subscribes through the service worker and PushManager", async () => {
    // Checked once the subscription is registered (not before: it may fail).
    await main().getByLabel("Web Push").click();
    await page.waitForFunction((t) => localStorage.getItem("tidings.push")?.includes(t), topic);
    await page.waitForFunction(() => document.querySelector("main input[type=checkbox]:checked") !== null);
    check(await main().getByLabel("Web Push").isChecked(), "the option is on");
    const push = await page.evaluate(() => window.__push);
    check(push.user_visible_only, "userVisibleOnly");
    const worker = await page.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL);
    check(worker === `${BASE}/app/sw.js`, `the service worker: ${worker}`);
    writeFileSync(KEYS, JSON.stringify({ ...push, topic }));
  });

  await step("a second topic joins the browser's one subscription", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Topics" }).click();
    await main().getByRole("button", { name: "New topic" }).click();
    await page.getByRole("dialog").getByLabel("Name", { exact: true }).fill(`${topic}-2`);
    await page.getByRole("dialog").getByRole("button", { name: "Create topic" }).click();
    await main().getByRole("status").getByText("Live").waitFor();
    await main().getByLabel("Web Push").click();
    await page.waitForFunction((t) => localStorage.getItem("tidings.push")?.includes(`${t}-2`), topic);
    const res = await fetch(`${BASE}/api/webpush/subscriptions`, { headers: { "X-API-Key": key } });
    const list = await res.json();
    check(list.length === 1, `one subscription: ${JSON.stringify(list)}`);
    check(JSON.stringify(list[0].topics) === JSON.stringify([topic, `${topic}-2`].sort()), `both topics: ${list[0].topics}`);
  });

  await step("a message published now is pushed", async () => {
    const sent = await publish(topic, "pushed to the browser", { "X-API-Key": key, Title: "Hi" });
    check(sent.status === 200, `publish: ${sent.status}`);
  });

  await step("the service worker shows a push as a notification; a click shows its topic", async () => {
    // The browser's push service stands in: DevTools hands the worker a push, as
    // Chromium does once it has decrypted one.
    const cdp = await context.newCDPSession(page);
    const registration = new Promise((resolve) => {
      cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations }) => {
        const ours = registrations.find((r) => r.scopeURL === `${BASE}/app/` && !r.isDeleted);
        if (ours) resolve(ours.registrationId);
      });
    });
    await cdp.send("ServiceWorker.enable");
    const registrationId = await registration;
    const pushed = { id: "m-1", topic, title: "Backup", message: "Backup done" };
    await cdp.send("ServiceWorker.deliverPushMessage", {
      origin: BASE,
      registrationId,
      data: JSON.stringify(pushed),
    });
    const shown = async () =>
      page.evaluate(async () =>
        (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({
          title: n.title,
          body: n.body,
          tag: n.tag,
          data: n.data,
        })),
      );
    let notes = [];
    for (let i = 0; i < 50 && notes.length === 0; i++) {
      notes = await shown();
      if (notes.length === 0) await page.waitForTimeout(100);
    }
    check(notes.length === 1, `one notification: ${JSON.stringify(notes)}`);
    const [note] = notes;
    check(note.title === "Backup" && note.body === "Backup done" && note.tag === "m-1", JSON.stringify(note));
    check(note.data?.topic === topic, `it names its topic: ${JSON.stringify(note.data)}`);

    // Away from the topic, a click on the notification brings the open app back to it.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Topics" }).click();
    await main().getByRole("heading", { name: "Topics" }).waitFor();
    const worker = context.serviceWorkers().find((w) => w.url() === `${BASE}/app/sw.js`);
    check(worker !== undefined, "the service worker is running");
    // The same handler a click runs (a script's event cannot hold the worker with
    // waitUntil, which a real click does).
    await worker.evaluate(async () => {
      const [n] = await self.registration.getNotifications();
      try {
        self.dispatchEvent(new NotificationEvent("notificationclick", { notification: n }));
      } catch {}
    });
    await page.waitForURL(`${BASE}/app/topics/${topic}`);
    await main().getByRole("heading", { name: topic, exact: true }).waitFor();
    const left = await shown();
    check(left.length === 0, `the clicked notification is closed: ${JSON.stringify(left)}`);
  });

  await step("no script error, CSP violation or alert", async () => {
    check(problems.length === 0, problems.join("\n"));
  });
} finally {
  await finish();
}

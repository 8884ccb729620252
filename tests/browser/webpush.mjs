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

  await step("no script error, CSP violation or alert", async () => {
    check(problems.length === 0, problems.join("\n"));
  });
} finally {
  await finish();
}

// The web app end to end in a real browser against a running server: the seeds' flows
// one after another, the XSS message shown as text, axe-core on every main page, and
// screenshots at phone and desktop width in light and dark.
// Usage: TIDINGS_URL=http://127.0.0.1:PORT [SCREENSHOTS=dir] node e2e.mjs
import { axe, BASE, browser, check, finish, problems, publish, relay, shoot, step, watch } from "./lib.mjs";

const viewport = { width: 1440, height: 900 };
const owner = await browser.newContext({ viewport });
// The Notification API, recorded: headless Chromium shows no notifications, so the
// test stands in for it and keeps what the app asked to show.
await owner.addInitScript(() => {
  window.__notifications = [];
  window.Notification = Object.assign(
    function (title, options) {
      window.__notifications.push({ title, body: options?.body });
    },
    { permission: "granted", requestPermission: async () => "granted" },
  );
});
const a = await owner.newPage();
watch(a, "owner");
// The second view goes through a relay that can cut its connections.
const network = await relay();
const reader = await browser.newContext({ viewport });
const b = await reader.newPage();
watch(b, "reader");

const suffix = Date.now().toString(36);
const email = `ada-${suffix}@example.com`;
const password = "correct horse battery";
const topic = `alerts-${suffix}`;
let firstKey, readToken, apiKey, newKey;
const main = () => a.locator("main");
const dialog = (page = a) => page.getByRole("dialog");

try {
  await step("the app answers and shows Log in", async () => {
    await a.goto(`${BASE}/app/`);
    await a.getByRole("heading", { name: "Log in" }).waitFor();
    await axe(a, "log in");
    await shoot(a, "login");
  });

  await step("a button per sign-in provider, when the server lists them", async () => {
    // Today's server answers /auth/providers with 404 (no buttons, as above); a server
    // with OpenID Connect lists its providers, stood in for here.
    await b.route("**/auth/providers", (route) =>
      route.fulfill({ json: [{ name: "google", label: "Google", login_url: "/auth/google" }] }),
    );
    await b.goto(`${network.url}/app/`);
    const button = b.getByRole("link", { name: "Continue with Google" });
    check((await button.getAttribute("href")) === "/auth/google?redirect_to=%2Fapp%2F", "provider link");
    await b.getByText("or", { exact: true }).waitFor();
    await b.unroute("**/auth/providers");
    check((await a.getByRole("link", { name: /Continue with/ }).count()) === 0, "no provider: no button");
  });

  await step("sign up", async () => {
    await a.getByRole("link", { name: "Sign up" }).click();
    await a.getByLabel("Email", { exact: true }).fill(email);
    await a.getByLabel("Username", { exact: true }).fill(`ada_${suffix}`);
    await a.getByLabel("Password", { exact: true }).fill(password);
    await axe(a, "sign up");
    await a.getByRole("button", { name: "Sign up" }).click();
    await dialog().getByRole("heading", { name: "Your first API key" }).waitFor();
    firstKey = (await dialog().locator("[data-secret]").textContent()).trim();
    check(firstKey.startsWith("noti_"), `first key shown: ${firstKey}`);
    await dialog().getByRole("button", { name: "Done" }).click();
    await main().getByRole("heading", { name: "Topics" }).waitFor();
    await main().getByText("No topics yet").waitFor();
    await axe(a, "topics (empty)");
  });

  await step("new private topic", async () => {
    await main().getByRole("button", { name: "New topic" }).click();
    await dialog().getByLabel("Name", { exact: true }).fill(topic);
    await dialog().getByLabel(/Private/).check();
    await dialog().getByLabel("Description").fill("Backup alerts");
    await dialog().getByRole("button", { name: "Create topic" }).click();
    await main().getByRole("heading", { name: topic }).waitFor();
    await main().getByText("private", { exact: true }).waitFor();
    await main().getByRole("status").getByText("Live").waitFor();
  });

  await step("Settings → Access Tokens → Create Token (read), shown once", async () => {
    await main().getByRole("link", { name: "Settings" }).click();
    await main().getByRole("heading", { name: "Topic settings" }).waitFor();
    await axe(a, "topic settings");
    await main().getByRole("link", { name: "Access Tokens" }).click();
    await main().getByText("No tokens yet").waitFor();
    await main().getByRole("button", { name: "Create Token" }).click();
    await dialog().getByLabel("Name", { exact: true }).fill("dashboard");
    check(await dialog().getByLabel(/Read/).isChecked(), "read is the default");
    await dialog().getByRole("button", { name: "Create Token" }).click();
    await dialog().getByText("it will not be shown again").waitFor();
    readToken = (await dialog().locator("[data-secret]").textContent()).trim();
    check(readToken.startsWith("tk_"), `token shown: ${readToken}`);
    check(!a.url().includes(readToken), "the token is not in the address");
    await dialog().getByRole("button", { name: "Copy" }).waitFor();
    await dialog().getByRole("button", { name: "Done" }).click();
    await main().getByRole("cell", { name: "dashboard", exact: true }).waitFor();
    check(!(await a.content()).includes(readToken), "the token is shown once only");
    await axe(a, "access tokens");
    await shoot(a, "access-tokens");
  });

  await step("the token subscribes from a second browser", async () => {
    await b.goto(`${network.url}/app/watch`);
    await b.getByLabel("Topic").fill(topic);
    await b.getByLabel("Access token").fill(readToken);
    await b.getByRole("button", { name: "Subscribe" }).click();
    await b.getByRole("status").getByText("Live").waitFor();
    check(!b.url().includes("tk_"), "the token is not in the address");
    await axe(b, "topic opened with a token");
  });

  await step("a publish by plain HTTP appears in both views within a second", async () => {
    await main().getByRole("link", { name: "Messages" }).click();
    await main().getByRole("status").getByText("Live").waitFor();
    const text = `Backup finished ${suffix}`;
    const t0 = Date.now();
    const res = await publish(topic, text, { "X-API-Key": firstKey, "X-Title": "Nightly", "X-Tags": "backup,ok" });
    check(res.status === 200, `publish: ${res.status}`);
    await Promise.all([
      a.getByText(text).waitFor({ timeout: 1000 }),
      b.getByText(text).waitFor({ timeout: 1000 }),
    ]);
    console.log(`     seen in both views ${Date.now() - t0} ms after the publish was sent`);
  });

  await step("the XSS message renders as text", async () => {
    const xss = "<img src=x onerror=alert(1)>";
    const res = await publish(topic, xss, { "X-API-Key": firstKey, "X-Title": "<b>bold?</b>", "X-Tags": "<i>t</i>" });
    check(res.status === 200, `publish: ${res.status}`);
    for (const page of [a, b]) {
      await page.getByText(xss, { exact: true }).waitFor({ timeout: 2000 });
      await page.getByText("<b>bold?</b>", { exact: true }).waitFor();
      await page.getByText("<i>t</i>", { exact: true }).waitFor();
      check((await page.locator("main img, main b, main i").count()) === 0, "no element made from a message");
    }
    await publish(topic, "Disk almost full", { "X-API-Key": firstKey, "X-Priority": "5", "X-Tags": "warning" });
    await a.getByText("Disk almost full").waitFor();
    await axe(a, "topic");
    await shoot(a, "topic");
  });

  await step("Notify me: a browser notification for a message at or above its priority", async () => {
    await main().getByLabel("Notify me").check();
    await main().getByLabel("from priority").selectOption("4");
    await publish(topic, "quiet one", { "X-API-Key": firstKey, "X-Priority": "2" });
    await publish(topic, "loud one", { "X-API-Key": firstKey, "X-Priority": "4", "X-Title": "Heads up" });
    await a.getByText("loud one").waitFor();
    const shown = await a.evaluate(() => window.__notifications);
    check(
      shown.length === 1 && shown[0].title === "Heads up" && shown[0].body === "loud one",
      `notifications: ${JSON.stringify(shown)}`,
    );
    await main().getByLabel("Notify me").uncheck();
  });

  await step("the Publish form publishes", async () => {
    await main().getByLabel("Message", { exact: true }).fill("From the form");
    await main().getByRole("button", { name: "More options" }).click();
    await main().getByLabel("Title", { exact: true }).fill("Manual");
    await main().getByLabel("Priority", { exact: true }).selectOption("4");
    await main().getByLabel("Tags", { exact: true }).fill("test");
    await main().getByRole("button", { name: "Publish", exact: true }).click();
    await a.getByText("From the form").waitFor();
    await b.getByText("From the form").waitFor();
  });

  await step("a dropped connection shows a banner and resumes with Last-Event-ID", async () => {
    const before = network.sent().length;
    network.drop();
    await b.getByText("The connection was lost").waitFor();
    const res = await publish(topic, "while away", { "X-API-Key": firstKey });
    check(res.status === 200, `publish: ${res.status}`);
    await b.getByText("while away").waitFor({ timeout: 10000 });
    await b.getByRole("status").getByText("Live").waitFor();
    const resumed = network.sent().slice(before);
    check(/^last-event-id: \w+/im.test(resumed), `the reconnect sent Last-Event-ID: ${resumed.slice(0, 400)}`);
    check((await b.getByText("From the form").count()) === 1, "nothing shown twice");
  });

  await step("Revoke closes the second view with a message saying so", async () => {
    await main().getByRole("link", { name: "Access Tokens" }).click();
    await main().getByRole("button", { name: "Revoke dashboard" }).click();
    await dialog().getByText("stops working at once").waitFor();
    await dialog().getByRole("button", { name: "Revoke" }).click();
    await main().getByText("No tokens yet").waitFor();
    await b.getByRole("alert").getByText("Access revoked").waitFor({ timeout: 3000 });
    const status = await publish(topic, "after revoke", { "X-Topic-Token": readToken });
    check(status.status === 401, `revoked token: ${status.status}`);
  });

  await step("Settings → API Keys → Create API Key → it publishes", async () => {
    await a.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Settings" }).click();
    await main().getByRole("heading", { name: "API Keys" }).waitFor();
    await main().getByRole("button", { name: "Create API Key" }).click();
    await dialog().getByLabel("Name", { exact: true }).fill("ci");
    await dialog().getByRole("button", { name: "Create API Key" }).click();
    await dialog().getByText("it will not be shown again").waitFor();
    apiKey = (await dialog().locator("[data-secret]").textContent()).trim();
    check(apiKey.startsWith("noti_"), `key shown: ${apiKey}`);
    await dialog().getByRole("button", { name: "Done" }).click();
    await main().getByRole("cell", { name: "ci", exact: true }).waitFor();
    await main().getByText(`noti_${apiKey.slice(5, 13)}…`).waitFor();
    const res = await publish(topic, "from ci", { "X-API-Key": apiKey });
    check(res.status === 200, `publish with the new key: ${res.status}`);
    // Away from the topic's page, the side bar counts what arrived.
    const sidebar = a.getByRole("navigation", { name: "Main" });
    await sidebar.getByRole("link", { name: new RegExp(`^${topic}\\s*1 unread$`) }).waitFor({ timeout: 2000 });
    await axe(a, "API keys");
    await shoot(a, "api-keys");
  });

  await step("Regenerate → the old key fails", async () => {
    await main().getByRole("button", { name: "Regenerate ci" }).click();
    await dialog().getByRole("button", { name: "Regenerate" }).click();
    await dialog().getByText("it will not be shown again").waitFor();
    newKey = (await dialog().locator("[data-secret]").textContent()).trim();
    check(newKey.startsWith("noti_") && newKey !== apiKey, "a new key is shown");
    await dialog().getByRole("button", { name: "Done" }).click();
    const old = await publish(topic, "old key", { "X-API-Key": apiKey });
    check(old.status === 401, `old key: ${old.status}`);
    const fresh = await publish(topic, "new key", { "X-API-Key": newKey });
    check(fresh.status === 200, `new key: ${fresh.status}`);
  });

  await step("an API error is shown in words next to its form", async () => {
    await a.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Topics" }).click();
    await main().getByRole("button", { name: "New topic" }).click();
    await dialog().getByLabel("Name", { exact: true }).fill(topic);
    await dialog().getByRole("button", { name: "Create topic" }).click();
    await dialog().getByRole("alert").getByText("Topic already exists").waitFor();
    await dialog().press("Escape");
    await dialog().waitFor({ state: "detached" });
    await axe(a, "topics");
    await shoot(a, "topics");
  });

  await step("delete a topic, after a confirmation naming it", async () => {
    const doomed = `doomed-${suffix}`;
    await main().getByRole("button", { name: "New topic" }).click();
    await dialog().getByLabel("Name", { exact: true }).fill(doomed);
    await dialog().getByRole("button", { name: "Create topic" }).click();
    await main().getByRole("heading", { name: doomed }).waitFor();
    await main().getByRole("link", { name: "Settings" }).click();
    await main().getByRole("button", { name: "Delete topic" }).click();
    await dialog().getByText(`The topic ${doomed}, all its messages`).waitFor();
    await dialog().getByRole("button", { name: "Delete topic" }).click();
    await main().getByRole("heading", { name: "Topics" }).waitFor();
    await main().getByRole("link", { name: topic }).waitFor();
    // Gone from the list and the side bar once they have reloaded.
    await a.getByRole("link", { name: doomed }).last().waitFor({ state: "detached" });
  });

  await step("Browser access and Account", async () => {
    // In-app navigation: a reload keeps the session only with the refresh cookie.
    await a.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Settings" }).click();
    await main().getByRole("link", { name: "Browser access" }).click();
    await main().getByRole("heading", { name: "Browser access" }).waitFor();
    await main().getByText(/^pk_/).waitFor();
    await main().getByRole("button", { name: "Generate signing key" }).click();
    await dialog().getByRole("button", { name: "Generate signing key" }).click();
    await dialog().getByText("BEGIN PRIVATE KEY").waitFor();
    await dialog().getByRole("button", { name: "Done" }).click();
    await main().getByText(/^Active since/).waitFor();
    await main().getByLabel("Origins, one a line").fill("not a url");
    await main().getByRole("button", { name: "Save origins" }).click();
    await main().getByRole("alert").waitFor();
    await main().getByLabel("Origins, one a line").fill("https://app.example.com");
    await main().getByRole("button", { name: "Save origins" }).click();
    await main().getByText("Saved.").waitFor();
    await axe(a, "browser access");
    await shoot(a, "browser-access");
    await main().getByRole("link", { name: "Account" }).click();
    await main().getByText("free", { exact: true }).waitFor();
    await main().getByText("10 messages per minute").waitFor();
    await main().getByText(/^\d+ of 10$/).waitFor();
    await axe(a, "account");
    await shoot(a, "account");
    // Spend the rest of the minute by plain HTTP: the page then tells nothing is left.
    let status = 200;
    for (let i = 0; i < 11 && status === 200; i++) {
      status = (await publish(topic, `spend ${i}`, { "X-API-Key": newKey })).status;
    }
    check(status === 429, `the quota ran out (${status})`);
    await main().getByRole("button", { name: "Check again" }).click();
    await main().getByText("0 of 10", { exact: true }).waitFor();
  });

  await step("at phone width the menu opens from the keyboard", async () => {
    await a.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Topics" }).click();
    await a.setViewportSize({ width: 375, height: 812 });
    const menu = a.getByRole("button", { name: "Menu" });
    await menu.focus();
    await a.keyboard.press("Enter");
    check((await menu.getAttribute("aria-expanded")) === "true", "the menu opened");
    await a.keyboard.press("Tab");
    check((await a.evaluate(() => document.activeElement?.textContent)) === "Topics", "then its first link");
    await a.getByRole("navigation", { name: "Main" }).getByRole("button", { name: "Log out" }).waitFor();
    await a.setViewportSize(viewport);
  });

  await step("log out → reload shows the login page → log in again, by keyboard", async () => {
    await a.getByRole("button", { name: "Log out" }).click();
    await a.getByRole("heading", { name: "Log in" }).waitFor();
    await a.reload();
    await a.getByRole("heading", { name: "Log in" }).waitFor();
    // With the keyboard alone: the first stop is Email, then Password; Enter submits.
    await a.keyboard.press("Tab");
    await a.keyboard.type(email);
    await a.keyboard.press("Tab");
    await a.keyboard.type("wrong password");
    await a.keyboard.press("Enter");
    await a.getByRole("alert").getByText("Incorrect email or password").waitFor();
    await a.keyboard.press("Control+A");
    await a.keyboard.type(password);
    await a.keyboard.press("Enter");
    await main().getByRole("heading", { name: "Topics" }).waitFor();
    await main().getByRole("link", { name: topic }).waitFor();
  });

  await step("reload keeps the session (refresh cookie)", async () => {
    const c = (await owner.cookies()).find((c) => c.name === "tidings_refresh");
    check(c !== undefined, "the server set the tidings_refresh cookie on login");
    check(c.httpOnly && c.sameSite === "Strict" && c.path === "/auth", `cookie flags: ${JSON.stringify(c)}`);
    await a.reload();
    await main().getByRole("heading", { name: "Topics" }).waitFor();
  });

  await step("no script error, CSP violation or alert in either view", async () => {
    check(problems.length === 0, problems.join("\n"));
  });
} finally {
  network.close();
  await finish();
}

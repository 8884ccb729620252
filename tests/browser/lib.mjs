// What the browser tests share: Debian's Chromium started through playwright-core,
// steps that stop the run at the first failure, axe-core, screenshots, and a watch for
// script errors, CSP violations and alerts. The server is at TIDINGS_URL; screenshots go
// to SCREENSHOTS when set; CHROMIUM overrides /usr/bin/chromium.
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
export const BASE = process.env.TIDINGS_URL;
const SHOTS = process.env.SCREENSHOTS;
if (!BASE) throw new Error("TIDINGS_URL is not set");

const started = Date.now();
let passed = 0;
export const warnings = [];
const axeReport = [];

export async function step(name, fn) {
  const t = Date.now();
  try {
    await fn();
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
    console.log(`${passed} passed, 1 failed`);
    await browser.close().catch(() => undefined);
    process.exit(1);
  }
  passed += 1;
  console.log(`ok   ${name} (${Date.now() - t} ms)`);
}

export function check(cond, what) {
  if (!cond) throw new Error(what);
}

// Signs `name` up in `page` (email `name@example.com`, username `name` with `_` for
// `-`), closes the dialog of the first API key, creates `topic` and waits until its
// view is live: the API key.
export async function signUpWithTopic(page, name, topic) {
  const main = () => page.locator("main");
  await page.goto(`${BASE}/app/signup`);
  await page.getByLabel("Email", { exact: true }).fill(`${name}@example.com`);
  await page.getByLabel("Username", { exact: true }).fill(name.replaceAll("-", "_"));
  await page.getByLabel("Password", { exact: true }).fill("correct horse battery");
  await page.getByRole("button", { name: "Sign up" }).click();
  const key = (await page.getByRole("dialog").locator("[data-secret]").textContent()).trim();
  await page.getByRole("dialog").getByRole("button", { name: "Done" }).click();
  await main().getByRole("button", { name: "New topic" }).click();
  await page.getByRole("dialog").getByLabel("Name", { exact: true }).fill(topic);
  await page.getByRole("dialog").getByRole("button", { name: "Create topic" }).click();
  await main().getByRole("status").getByText("Live").waitFor();
  return key;
}

export async function publish(topic, body, headers) {
  const res = await fetch(`${BASE}/${topic}`, { method: "POST", body, headers });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** Runs axe-core on the page in light and dark; fails on a serious or critical violation. */
export async function axe(page, name) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    // Evaluated through the DevTools protocol: the page's CSP (no inline script) stays on.
    await page.evaluate(AXE);
    const result = await page.evaluate(async () => {
      // eslint-disable-next-line no-undef
      const r = await axe.run(document, { resultTypes: ["violations"] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
    });
    const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
    const other = result.filter((v) => !bad.includes(v));
    axeReport.push(`${name} (${scheme}): ${bad.length} serious/critical, ${other.length} minor/moderate` +
      (other.length ? ` [${other.map((v) => `${v.id}:${v.impact}`).join(", ")}]` : ""));
    check(bad.length === 0, `axe on ${name} (${scheme}): ${JSON.stringify(bad)}`);
  }
  await page.emulateMedia({ colorScheme: "light" });
}

/** Screenshots of the page at 1440 and 375 wide, light and dark. */
export async function shoot(page, name) {
  if (!SHOTS) return;
  for (const [width, height] of [[1440, 900], [375, 812]]) {
    await page.setViewportSize({ width, height });
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.screenshot({ path: join(SHOTS, `${name}-${width}-${scheme}.png`) });
    }
  }
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.emulateMedia({ colorScheme: "light" });
}

// launch() gives Chromium a fresh, empty profile of its own, deleted at close.
if (SHOTS) mkdirSync(SHOTS, { recursive: true });
export const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

// Any script error, CSP violation or alert in either view fails the run.
export const problems = [];
export function watch(page, who) {
  page.on("pageerror", (e) => problems.push(`${who}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) problems.push(`${who}: ${m.text()}`);
  });
  page.on("dialog", (d) => {
    problems.push(`${who}: a ${d.type()} opened: ${d.message()}`);
    d.dismiss();
  });
}

/** Closes the browser and prints the axe results, warnings, time and the tally. */
export async function finish() {
  await browser.close();
  if (axeReport.length) {
    console.log("axe-core, per page:");
    for (const line of axeReport) console.log(`  ${line}`);
  }
  for (const line of warnings) console.log(line);
  console.log(`run time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, 0 failed${warnings.length ? `, ${warnings.length} skipped` : ""}`);
}

/**
 * A TCP relay to the server, for a browser to load the app through: `drop()` cuts every
 * connection at once, as a network drop would, and `sent()` is what clients sent.
 */
export async function relay() {
  const { hostname, port } = new URL(BASE);
  const sockets = new Set();
  let sent = "";
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", end);
      socket.on("close", end);
    }
    client.on("data", (data) => {
      sent += data.toString("latin1");
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((listening) => server.listen(0, "127.0.0.1", listening));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    drop: () => sockets.forEach((s) => s.destroy()),
    sent: () => sent,
    close: () => server.close(),
  };
}

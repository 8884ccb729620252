// An expired access token is renewed without the user noticing. Against a server whose
// access tokens live 5 seconds: the topic page keeps receiving (the server ends its
// stream at the expiry; the app reopens it from the last message with a renewed token)
// and an API call made after the expiry succeeds (one silent refresh on the 401).
// Usage: TIDINGS_URL=http://127.0.0.1:PORT node expiry.mjs
import { BASE, signUpWithTopic, browser, check, finish, problems, publish, step, watch } from "./lib.mjs";

const TTL_MS = 5000;
const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
watch(page, "user");
const main = () => page.locator("main");
const suffix = Date.now().toString(36);
const topic = `expiry-${suffix}`;
let key;

// Waiting out the token's lifetime is the point here: it cannot be polled.
const outlive = () => new Promise((done) => setTimeout(done, TTL_MS + 1500));

try {
  await step("sign up and open a new topic", async () => {
    key = await signUpWithTopic(page, `grace-${suffix}`, topic);
    check((await publish(topic, "before expiry", { "X-API-Key": key })).status === 200, "publish");
    await main().getByText("before expiry").waitFor();
  });

  await step("the live view outlives its access token", async () => {
    await outlive();
    check((await publish(topic, "after expiry", { "X-API-Key": key })).status === 200, "publish");
    await main().getByText("after expiry").waitFor({ timeout: 5000 });
    await main().getByRole("status").getByText("Live").waitFor();
    check((await main().getByText("before expiry").count()) === 1, "nothing shown twice");
  });

  await step("an API call after the expiry is refreshed silently", async () => {
    await outlive();
    await main().getByRole("link", { name: "Settings" }).click();
    await main().getByLabel("Description").fill("Renewed");
    await main().getByRole("button", { name: "Save" }).click();
    await main().getByText("Saved.").waitFor();
    await page.getByRole("button", { name: "Log out" }).waitFor();
    check(!(await page.getByRole("heading", { name: "Log in" }).isVisible()), "still signed in");
  });

  await step("no script error, CSP violation or alert", async () => {
    check(problems.length === 0, problems.join("\n"));
  });
} finally {
  await finish();
}

// Drives Debian's Chromium (headless, through playwright-core) through examples/spa against a
// running Latchkey. .ci/clients.sh starts both servers and sets:
//
//   SPA_URL      the page, e.g. http://127.0.0.1:8000/index.html?api=http://127.0.0.1:8080
//   API_URL      the API, e.g. http://127.0.0.1:8080 (the page's origin must be in
//                LATCHKEY_CORS_ORIGINS)
//   ACCESS_TTL   the API's LATCHKEY_ACCESS_TTL in seconds (short, so the refresh path runs)
//   SCREENSHOT   where to save a PNG of the logged-in page (optional)
//   CHROMIUM     the browser binary (default /usr/bin/chromium)
//
// Run: cd examples/spa/test && npm ci && node --test spa.test.mjs

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { chromium } from "playwright-core";

const SPA_URL = process.env.SPA_URL;
const API_URL = process.env.API_URL?.replace(/\/$/, "");
const ACCESS_TTL = Number(process.env.ACCESS_TTL ?? "2");
const SCREENSHOT = process.env.SCREENSHOT;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// Latchkey accepts an access token up to 10 s past its `exp` (clock-skew leeway, src/auth/jwt.rs),
// and `iat`/`exp` are whole seconds: past this many seconds after issue it is surely refused.
const LEEWAY = 10;
const EXPIRED_AFTER_MS = (ACCESS_TTL + LEEWAY + 2) * 1000;

// Flags Chromium needs on these machines (shared/field-notes.md); Playwright adds --headless
// and a fresh --user-data-dir itself.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

assert.ok(SPA_URL && API_URL, "set SPA_URL and API_URL");
const SPA_ORIGIN = new URL(SPA_URL).origin;
assert.notEqual(SPA_ORIGIN, new URL(API_URL).origin, "the page must be cross-origin to the API");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("browser example against Latchkey", { timeout: 180_000 }, async (t) => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });

  // Every request the page sends to the API, in order (CORS preflights are not reported).
  const calls = [];
  page.on("request", (request) => {
    if (request.url().startsWith(API_URL + "/")) calls.push(request);
  });
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("console", (message) => {
    // 4xx answers show up as console errors; CORS or CSP refusals would too.
    if (/CORS|Content Security Policy|Refused to/i.test(message.text())) pageErrors.push(message.text());
  });

  // [method, path, status, authorization header or undefined] of the calls from index `from` on.
  async function callsSince(from) {
    const out = [];
    for (const request of calls.slice(from)) {
      const response = await request.response();
      const headers = await request.allHeaders();
      out.push({
        method: request.method(),
        path: new URL(request.url()).pathname,
        status: response?.status(),
        auth: headers.authorization,
        response,
      });
    }
    return out;
  }
  const summary = (list) => list.map((c) => `${c.method} ${c.path} ${c.status}`);

  // Waits until the status box is in `state` showing `text`; fails with what it shows instead.
  async function expectStatus(state, text) {
    try {
      await page.waitForFunction(
        ([s, t]) => {
          const box = document.getElementById("status");
          return box.dataset.state === s && box.textContent.trim() === t;
        },
        [state, text],
        { timeout: 15_000 },
      );
    } catch {
      const box = page.locator("#status");
      const shown = `${await box.getAttribute("data-state")}: ${(await box.textContent()).trim()}`;
      assert.fail(`expected the page to show ${state}: ${text}, it shows ${shown}`);
    }
  }
  const waitForMe = (code) =>
    page.waitForResponse((r) => r.url() === `${API_URL}/v1/me` && r.request().method() === "GET" && r.status() === code);

  const email = `spa-${randomUUID().slice(0, 12)}@example.com`;
  const password = "correct horse battery staple";
  let signedUpAt;
  let accessToken;
  let refreshToken;

  await page.goto(SPA_URL);
  assert.equal(await page.title(), "Latchkey browser example");
  assert.equal((await page.locator("#api-url").textContent()).trim(), API_URL);
  await expectStatus("out", "Logged out");

  await t.test("signup shows the email from GET /v1/me", async () => {
    const from = calls.length;
    await page.fill("#email", email);
    await page.fill("#password", password);
    signedUpAt = Date.now();
    await Promise.all([waitForMe(200), page.click("#signup")]);
    await expectStatus("in", `Logged in as ${email}`);
    const made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/signup 201", "GET /v1/me 200"]);
    assert.equal(made[0].auth, undefined);
    assert.match(made[1].auth, /^Bearer ey/);
    assert.equal(await made[1].response.headerValue("access-control-allow-origin"), SPA_ORIGIN);
    const tokens = await made[0].response.json();
    accessToken = tokens.access_token;
    refreshToken = tokens.refresh_token;
    assert.equal(made[1].auth, `Bearer ${accessToken}`);
  });

  await t.test("the tokens are kept in memory only", async () => {
    const stored = await page.evaluate(() => ({
      local: localStorage.length,
      session: sessionStorage.length,
      cookie: document.cookie,
    }));
    assert.deepEqual(stored, { local: 0, session: 0, cookie: "" });
    const html = await page.content();
    assert.ok(!html.includes(accessToken) && !html.includes(refreshToken), "a token is in the DOM");
    const cookies = await page.context().cookies();
    assert.deepEqual(cookies, []);
  });

  await t.test("an expired access token is refreshed on 401 and the call retried once", async () => {
    const wait = signedUpAt + EXPIRED_AFTER_MS - Date.now();
    t.diagnostic(`waiting ${Math.ceil(wait / 1000)} s for the ${ACCESS_TTL} s access token to expire`);
    if (wait > 0) await sleep(wait);
    const from = calls.length;
    await Promise.all([waitForMe(200), page.click("#whoami")]);
    await expectStatus("in", `Logged in as ${email}`);
    const made = await callsSince(from);
    assert.deepEqual(summary(made), ["GET /v1/me 401", "POST /v1/auth/refresh 200", "GET /v1/me 200"]);
    assert.equal((await made[0].response.json()).code, "invalid_token");
    assert.equal(made[0].auth, `Bearer ${accessToken}`);
    assert.equal(made[1].auth, undefined);
    assert.deepEqual(JSON.parse(made[1].response.request().postData()), { refresh_token: refreshToken });
    const rotated = await made[1].response.json();
    assert.notEqual(rotated.refresh_token, refreshToken);
    assert.equal(made[2].auth, `Bearer ${rotated.access_token}`);
    accessToken = rotated.access_token;
    refreshToken = rotated.refresh_token;
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  await t.test("logout ends the session on the server and on the page", async () => {
    let from = calls.length;
    await page.click("#logout");
    await expectStatus("out", "Logged out");
    let made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/logout 204"]);
    assert.equal(made[0].auth, `Bearer ${accessToken}`);

    // The page asks again: it has no token any more, and the API says so.
    from = calls.length;
    await Promise.all([waitForMe(401), page.click("#whoami")]);
    await expectStatus("out", "Logged out (unauthorized)");
    made = await callsSince(from);
    assert.deepEqual(summary(made), ["GET /v1/me 401"]);
    assert.equal(made[0].auth, undefined);

    // The server really ended the session: the last access token and refresh token are dead.
    const me = await fetch(`${API_URL}/v1/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
    assert.equal(me.status, 401);
    assert.equal((await me.json()).code, "invalid_token");
    const refreshed = await fetch(`${API_URL}/v1/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
    assert.equal(refreshed.status, 401);
    assert.equal((await refreshed.json()).code, "invalid_refresh_token");
  });

  await t.test("log in again, then log out", async () => {
    const from = calls.length;
    await page.fill("#email", email);
    await page.fill("#password", password);
    await Promise.all([waitForMe(200), page.click("#login")]);
    await expectStatus("in", `Logged in as ${email}`);
    await page.click("#logout");
    await expectStatus("out", "Logged out");
    const made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/login 200", "GET /v1/me 200", "POST /v1/auth/logout 204"]);
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, "-logged-out.png"), fullPage: true });
  });

  await t.test("no script error, CORS or CSP refusal on the page", () => {
    assert.deepEqual(pageErrors, []);
  });
});

// Drives Debian's Chromium (headless, through playwright-core) through examples/spa against a
// running Latchkey. .ci/clients.sh starts both servers and sets:
//
//   SPA_URL      the page, e.g. http://127.0.0.1:8000/index.html?api=http://127.0.0.1:8080
//   API_URL      the API, e.g. http://127.0.0.1:8080, in refresh-cookie mode
//                (LATCHKEY_REFRESH_COOKIE=true; the page's origin must be in LATCHKEY_CORS_ORIGINS)
//   ACCESS_TTL   the API's LATCHKEY_ACCESS_TTL in seconds (short, so the refresh path runs)
//   SCREENSHOT   where to save a PNG of the logged-in page (optional)
//   CHROMIUM     the browser binary (default /usr/bin/chromium)
//
// Run: cd examples/spa/test && npm ci && node --test spa.test.mjs

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { launchChromium } from "./chromium.mjs";

const SPA_URL = process.env.SPA_URL;
const API_URL = process.env.API_URL?.replace(/\/$/, "");
const ACCESS_TTL = Number(process.env.ACCESS_TTL ?? "2");
const SCREENSHOT = process.env.SCREENSHOT;
// Latchkey accepts an access token up to 10 s past its `exp` (clock-skew leeway, src/auth/jwt.rs),
// and `iat`/`exp` are whole seconds: past this many seconds after issue it is surely refused.
const LEEWAY = 10;
const EXPIRED_AFTER_MS = (ACCESS_TTL + LEEWAY + 2) * 1000;

assert.ok(SPA_URL && API_URL, "set SPA_URL and API_URL");
const SPA_ORIGIN = new URL(SPA_URL).origin;
assert.notEqual(SPA_ORIGIN, new URL(API_URL).origin, "the page must be cross-origin to the API");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The refresh cookie Latchkey sets in cookie mode (src/auth/cookie.rs) and the header that
// cookie-authenticated requests must carry.
const COOKIE = "latchkey_refresh";
const CSRF_HEADER = "x-latchkey-csrf";

test("browser example against Latchkey in refresh-cookie mode", { timeout: 180_000 }, async (t) => {
  const browser = await launchChromium();
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 900, height: 1000 } });
  const page = await context.newPage();

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

  // The calls from index `from` on: method, path, status, the request's headers as sent
  // (cookies included), its body, and the response.
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
        csrf: headers[CSRF_HEADER],
        cookie: headers.cookie,
        body: request.postData(),
        response,
      });
    }
    return out;
  }
  const summary = (list) => list.map((c) => `${c.method} ${c.path} ${c.status}`);

  // The refresh cookie in Chromium's jar, for the API's host, or undefined. The whole jar is
  // searched: context.cookies(url) would match the cookie's Path (/v1/auth) against the URL's.
  const apiHost = new URL(API_URL).hostname;
  const jarCookie = async () =>
    (await context.cookies()).find((c) => c.name === COOKIE && c.domain === apiHost);

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

  // A cookie-mode token response: an access token and the user, no refresh token in the body.
  async function assertTokenResponse(response) {
    const tokens = await response.json();
    assert.match(tokens.access_token, /^ey/);
    assert.ok(!("refresh_token" in tokens), `a refresh_token in the body: ${JSON.stringify(tokens)}`);
    // The cookie is only stored because the page sent the request with credentials, and the
    // API allows credentials for this origin.
    assert.equal(await response.headerValue("access-control-allow-origin"), SPA_ORIGIN);
    assert.equal(await response.headerValue("access-control-allow-credentials"), "true");
    return tokens;
  }

  const email = `spa-${randomUUID().slice(0, 12)}@example.com`;
  const password = "correct horse battery staple";
  let signedUpAt;
  let accessToken;
  let refreshCookie;

  await t.test("on load the page looks for a session and finds no cookie", async () => {
    await page.goto(SPA_URL);
    assert.equal(await page.title(), "Latchkey browser example");
    assert.equal((await page.locator("#api-url").textContent()).trim(), API_URL);
    await expectStatus("out", "Logged out");
    const made = await callsSince(0);
    // No cookie yet: the API misses the refresh token it needs.
    assert.deepEqual(summary(made), ["POST /v1/auth/refresh 422"]);
    assert.equal(made[0].cookie, undefined);
  });

  await t.test("signup sets the HttpOnly refresh cookie and shows the email from GET /v1/me", async () => {
    const from = calls.length;
    await page.fill("#email", email);
    await page.fill("#password", password);
    signedUpAt = Date.now();
    await Promise.all([waitForMe(200), page.click("#signup")]);
    await expectStatus("in", `Logged in as ${email}`);
    const made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/signup 201", "GET /v1/me 200"]);
    assert.equal(made[0].auth, undefined);
    const tokens = await assertTokenResponse(made[0].response);
    accessToken = tokens.access_token;
    assert.equal(made[1].auth, `Bearer ${accessToken}`);
    assert.equal(await made[1].response.headerValue("access-control-allow-origin"), SPA_ORIGIN);
    // GET /v1/me goes without credentials, and the cookie's path keeps it off anyway.
    assert.equal(made[1].cookie, undefined);

    const cookie = await jarCookie();
    assert.ok(cookie, `no ${COOKIE} cookie in Chromium's jar for ${API_URL}`);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, "Strict");
    assert.equal(cookie.path, "/v1/auth");
    assert.ok(cookie.expires > Date.now() / 1000 + 3600, "the cookie must outlive the page (Max-Age)");
    refreshCookie = cookie.value;
  });

  await t.test("page script can reach neither token store: no refresh token, no readable cookie", async () => {
    const stored = await page.evaluate(() => ({
      local: localStorage.length,
      session: sessionStorage.length,
      cookie: document.cookie,
    }));
    assert.deepEqual(stored, { local: 0, session: 0, cookie: "" });
    const html = await page.content();
    assert.ok(!html.includes(accessToken) && !html.includes(refreshCookie), "a token is in the DOM");

    // On the page's origin the cookie's path would hide it from document.cookie anyway. A page
    // of the API's own origin under /v1/auth is where a readable cookie would show: HttpOnly
    // keeps it out of document.cookie there too.
    const apiPage = await context.newPage();
    try {
      await apiPage.goto(`${API_URL}/v1/auth/verify`);
      const seen = await apiPage.evaluate(() => document.cookie);
      assert.ok(!seen.includes(COOKIE), `document.cookie on the API's origin shows it: ${seen}`);
    } finally {
      await apiPage.close();
    }
  });

  await t.test("an expired access token is refreshed by cookie on 401 and the call retried once", async () => {
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

    // The refresh: no body, no bearer token, the CSRF header and the cookie.
    const refresh = made[1];
    assert.equal(refresh.auth, undefined);
    assert.equal(refresh.body, null);
    assert.equal(refresh.csrf, "1");
    assert.equal(refresh.cookie, `${COOKIE}=${refreshCookie}`);
    const rotated = await assertTokenResponse(refresh.response);
    assert.equal(made[2].auth, `Bearer ${rotated.access_token}`);
    accessToken = rotated.access_token;

    // The refresh rotated the cookie too.
    const cookie = await jarCookie();
    assert.ok(cookie?.httpOnly, "the rotated cookie must be HttpOnly");
    assert.notEqual(cookie.value, refreshCookie);
    refreshCookie = cookie.value;
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  await t.test("a reload loses the access token, and the cookie resumes the session", async () => {
    const from = calls.length;
    await Promise.all([waitForMe(200), page.reload()]);
    await expectStatus("in", `Logged in as ${email}`);
    const made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/refresh 200", "GET /v1/me 200"]);
    assert.equal(made[0].cookie, `${COOKIE}=${refreshCookie}`);
    accessToken = (await assertTokenResponse(made[0].response)).access_token;
    assert.equal(made[1].auth, `Bearer ${accessToken}`);
    refreshCookie = (await jarCookie()).value;
  });

  await t.test("logout ends the session on the server and clears the cookie", async () => {
    let from = calls.length;
    await page.click("#logout");
    await expectStatus("out", "Logged out");
    let made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/logout 204"]);
    // Logout by cookie: no body, no bearer token, the CSRF header.
    assert.equal(made[0].auth, undefined);
    assert.equal(made[0].body, null);
    assert.equal(made[0].csrf, "1");
    assert.equal(made[0].cookie, `${COOKIE}=${refreshCookie}`);
    assert.equal(await jarCookie(), undefined, "logout must clear the refresh cookie");

    // The page asks again: no access token, and the refresh it tries has no cookie to send.
    from = calls.length;
    await Promise.all([waitForMe(401), page.click("#whoami")]);
    await expectStatus("out", "Logged out (no refresh cookie)");
    made = await callsSince(from);
    assert.deepEqual(summary(made), ["GET /v1/me 401", "POST /v1/auth/refresh 422"]);
    assert.equal(made[0].auth, undefined);
    assert.equal(made[1].cookie, undefined);

    // The server really ended the session: the last access token and the last refresh cookie,
    // replayed from outside the browser, are dead.
    const me = await fetch(`${API_URL}/v1/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
    assert.equal(me.status, 401);
    assert.equal((await me.json()).code, "invalid_token");
    const refreshed = await fetch(`${API_URL}/v1/auth/refresh`, {
      method: "POST",
      headers: { Cookie: `${COOKIE}=${refreshCookie}`, [CSRF_HEADER]: "1" },
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
    assert.ok((await jarCookie())?.httpOnly, "login must set the HttpOnly refresh cookie");
    await page.click("#logout");
    await expectStatus("out", "Logged out");
    const made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/login 200", "GET /v1/me 200", "POST /v1/auth/logout 204"]);
    await assertTokenResponse(made[0].response);
    assert.equal(await jarCookie(), undefined, "logout must clear the refresh cookie");
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, "-logged-out.png"), fullPage: true });
  });

  await t.test("no script error, CORS or CSP refusal on the page", () => {
    assert.deepEqual(pageErrors, []);
  });
});

// Drives Debian's Chromium (headless, through playwright-core) through examples/spa against a
// running Latchkey. .ci/clients.sh starts both servers and sets:
//
//   SPA_URL      the page, e.g. http://127.0.0.1:8000/index.html?api=http://127.0.0.1:8080
//   API_URL      the API, e.g. http://127.0.0.1:8080, in refresh-cookie mode
//                (LATCHKEY_REFRESH_COOKIE=true; the page's origin must be in LATCHKEY_CORS_ORIGINS)
//   ACCESS_TTL   the API's LATCHKEY_ACCESS_TTL in seconds (short, so the refresh path runs)
//   SCREENSHOT   where to save a PNG of the logged-in page (optional; the logged-out page and
//                the authenticator's enrollment are saved next to it, as -logged-out and -mfa)
//   CHROMIUM     the browser binary (default /usr/bin/chromium)
//
// Run: cd examples/spa/test && npm ci && node --test spa.test.mjs

import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
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

// The authenticator app's side of TOTP (RFC 6238): HMAC-SHA1 over the 30-s step, 6 digits.
const TOTP_STEP_MS = 30_000;
const stepAt = (ms) => Math.floor(ms / TOTP_STEP_MS);

// RFC 4648 base32, as the page shows the secret (no padding).
function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bytes = [];
  let bits = 0;
  let value = 0;
  for (const char of text) {
    const index = alphabet.indexOf(char);
    assert.ok(index >= 0, `not base32: ${JSON.stringify(text)}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >> bits) & 0xff);
      value &= (1 << bits) - 1;
    }
  }
  return Buffer.from(bytes);
}

function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const hash = createHmac("sha1", secret).update(counter).digest();
  const offset = hash[hash.length - 1] & 0x0f;
  return String((hash.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

// An access token's claims, unverified: the test only reads what the API put there.
const claimsOf = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());

test("the TOTP of this test matches RFC 6238's test vectors", () => {
  // Appendix B, SHA1 key "12345678901234567890" (base32 below), last 6 of the 8 digits.
  const secret = base32Decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  assert.deepEqual(secret, Buffer.from("12345678901234567890"));
  assert.equal(totp(secret, stepAt(59_000)), "287082");
  assert.equal(totp(secret, stepAt(1_111_111_109_000)), "081804");
  assert.equal(totp(secret, stepAt(2_000_000_000_000)), "279037");
});

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
    assert.deepEqual(summary(made), ["POST /v1/auth/signup 201", "GET /v1/me 200", "GET /v1/me/mfa 200"]);
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
    assert.deepEqual(summary(made), ["GET /v1/me 401", "POST /v1/auth/refresh 200", "GET /v1/me 200", "GET /v1/me/mfa 200"]);
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
    assert.deepEqual(summary(made), ["POST /v1/auth/refresh 200", "GET /v1/me 200", "GET /v1/me/mfa 200"]);
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
    assert.deepEqual(summary(made), ["POST /v1/auth/login 200", "GET /v1/me 200", "GET /v1/me/mfa 200", "POST /v1/auth/logout 204"]);
    await assertTokenResponse(made[0].response);
    assert.equal(await jarCookie(), undefined, "logout must clear the refresh cookie");
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, "-logged-out.png"), fullPage: true });
  });

  // The second factor. The code confirming the enrollment spends its 30-s step: a login's code
  // must be of a later step (the API takes one step of skew either way, so the next one is
  // accepted at once).
  let secret;
  let confirmedStep;
  let recoveryCodes;
  const waitForPost = (path) =>
    page.waitForResponse((r) => r.url() === `${API_URL}${path}` && r.request().method() === "POST");

  await t.test("an authenticator is added: password, QR code and secret, a code, 10 recovery codes", async () => {
    let from = calls.length;
    await page.fill("#email", email);
    await page.fill("#password", password);
    await Promise.all([waitForMe(200), page.click("#login")]);
    await expectStatus("in", `Logged in as ${email}`);
    const login = await assertTokenResponse((await callsSince(from))[0].response);
    assert.equal((await page.locator("#aal").textContent()).trim(), "aal1");
    assert.equal(await page.locator("#factor").textContent(), "off");

    // A wrong password adds nothing: the error is shown, once (no refresh and retry), and the
    // form stays.
    from = calls.length;
    await page.fill("#enroll-password", "not the password");
    await Promise.all([waitForPost("/v1/me/mfa/totp"), page.click("#enroll-start")]);
    await page.locator("#error").waitFor({ state: "visible" });
    let made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/me/mfa/totp 401"]);
    assert.match(await page.locator("#error").textContent(), /\(invalid_credentials\)$/);
    assert.ok(await page.locator("#enroll-confirm").isHidden());

    from = calls.length;
    await page.fill("#enroll-password", password);
    await Promise.all([waitForPost("/v1/me/mfa/totp"), page.click("#enroll-start")]);
    await page.locator("#enroll-confirm").waitFor({ state: "visible" });
    made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/me/mfa/totp 200"]);
    assert.equal(await page.locator("#factor").textContent(), "pending");
    assert.equal(made[0].auth, `Bearer ${login.access_token}`);
    assert.deepEqual(JSON.parse(made[0].body), { password });
    const enrollment = await made[0].response.json();
    secret = enrollment.secret;
    assert.match(secret, /^[A-Z2-7]+$/);
    assert.equal((await page.locator("#enroll-secret").textContent()).trim(), secret);
    // The QR code is a data: image, and the page's CSP lets it load.
    assert.match(enrollment.qr_code, /^data:image\/svg\+xml;base64,/);
    assert.equal(await page.locator("#enroll-qr").getAttribute("src"), enrollment.qr_code);
    await page.waitForFunction(() => {
      const img = document.getElementById("enroll-qr");
      return img.complete && img.naturalWidth > 0;
    });
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, "-mfa.png"), fullPage: true });

    from = calls.length;
    confirmedStep = stepAt(Date.now());
    await page.fill("#enroll-code", totp(base32Decode(secret), confirmedStep));
    await Promise.all([waitForPost("/v1/me/mfa/totp/confirm"), page.click("#enroll-done")]);
    await page.locator("#recovery").waitFor({ state: "visible" });
    made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/me/mfa/totp/confirm 200"]);
    recoveryCodes = (await made[0].response.json()).recovery_codes;
    assert.equal(recoveryCodes.length, 10);
    assert.deepEqual(await page.locator("#recovery-codes li").allTextContents(), recoveryCodes);
    assert.match(await page.locator("#recovery").textContent(), /Store these recovery codes/);
    // The page keeps no copy of the secret; this session proved no second factor.
    assert.equal(await page.locator("#enroll-qr").getAttribute("src"), null);
    assert.ok(!(await page.content()).includes(secret), "the secret is still in the DOM");
    assert.equal((await page.locator("#aal").textContent()).trim(), "aal1");
    assert.ok(await page.locator("#enroll").isHidden());
    assert.equal(await page.locator("#factor").textContent(), "enabled, 10 recovery codes left");
  });

  await t.test("after a reload the enrolling session, still aal1, is not offered a second authenticator", async () => {
    const from = calls.length;
    await Promise.all([waitForMe(200), page.reload()]);
    await expectStatus("in", `Logged in as ${email}`);
    const made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/refresh 200", "GET /v1/me 200", "GET /v1/me/mfa 200"]);
    assert.equal((await page.locator("#aal").textContent()).trim(), "aal1");
    assert.equal(await page.locator("#factor").textContent(), "enabled, 10 recovery codes left");
    assert.ok(await page.locator("#enroll").isHidden());
  });

  // Logs out, then in with the password: the page shows the code form, and no token was issued.
  async function loginToChallenge() {
    await page.click("#logout");
    await expectStatus("out", "Logged out");
    assert.equal(await page.locator("#recovery-codes li").count(), 0, "recovery codes outlived the session");
    const from = calls.length;
    await page.fill("#email", email);
    await page.fill("#password", password);
    await Promise.all([waitForPost("/v1/auth/login"), page.click("#login")]);
    await expectStatus("mfa", "Second factor required");
    const made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/login 200"]);
    const answer = await made[0].response.json();
    assert.equal(answer.mfa_required, true);
    assert.ok(!("access_token" in answer) && !("refresh_token" in answer), `a token: ${JSON.stringify(answer)}`);
    assert.equal(await jarCookie(), undefined, "a challenge must not set the refresh cookie");
    assert.ok(await page.locator("#challenge").isVisible());
    assert.ok(await page.locator("#second-factor").isHidden());
    // The mfa_token is in a script variable only.
    const stored = await page.evaluate(() => ({
      local: localStorage.length,
      session: sessionStorage.length,
      cookie: document.cookie,
    }));
    assert.deepEqual(stored, { local: 0, session: 0, cookie: "" });
    assert.ok(!(await page.content()).includes(answer.mfa_token), "the mfa_token is in the DOM");
    return answer.mfa_token;
  }

  // Answers the challenge on the page and checks the login completed at aal2 with `amr`.
  async function verifyLogsIn(mfaToken, field, value, amr) {
    const from = calls.length;
    await page.fill("#challenge-code", value);
    await Promise.all([waitForMe(200), page.click("#challenge-verify")]);
    await expectStatus("in", `Logged in as ${email}`);
    const made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/mfa/verify 200", "GET /v1/me 200", "GET /v1/me/mfa 200"]);
    assert.equal(made[0].auth, undefined);
    assert.deepEqual(JSON.parse(made[0].body), { mfa_token: mfaToken, [field]: value });
    // Like a password login: the token response in the body, the refresh cookie in the jar.
    const tokens = await assertTokenResponse(made[0].response);
    const claims = claimsOf(tokens.access_token);
    assert.equal(claims.aal, "aal2");
    assert.deepEqual(claims.amr, amr);
    assert.equal(made[1].auth, `Bearer ${tokens.access_token}`);
    assert.ok((await jarCookie())?.httpOnly, "the second factor's login must set the HttpOnly refresh cookie");
    assert.equal((await page.locator("#aal").textContent()).trim(), "aal2");
    for (const hidden of ["#challenge", "#enroll", "#error"]) assert.ok(await page.locator(hidden).isHidden(), hidden);
  }

  await t.test("a login now asks for a code: a wrong one is refused and the form stays, the next step's logs in at aal2", async () => {
    const mfaToken = await loginToChallenge();
    const key = base32Decode(secret);

    const now = stepAt(Date.now());
    const accepted = [-2, -1, 0, 1, 2].map((d) => totp(key, now + d));
    let wrong = 0;
    while (accepted.includes(String(wrong).padStart(6, "0"))) wrong += 1;
    const from = calls.length;
    await page.fill("#challenge-code", String(wrong).padStart(6, "0"));
    await Promise.all([waitForPost("/v1/auth/mfa/verify"), page.click("#challenge-verify")]);
    await expectStatus("mfa", "Second factor required");
    const made = await callsSince(from);
    assert.deepEqual(summary(made), ["POST /v1/auth/mfa/verify 401"]);
    const problem = await made[0].response.json();
    assert.equal(problem.code, "invalid_mfa_code");
    assert.equal((await page.locator("#error").textContent()).trim(), `${problem.detail} (invalid_mfa_code)`);
    assert.ok(await page.locator("#challenge").isVisible());
    assert.equal(await jarCookie(), undefined);

    const step = Math.max(confirmedStep + 1, stepAt(Date.now()));
    await verifyLogsIn(mfaToken, "code", totp(key, step), ["pwd", "otp"]);
    assert.equal(await page.locator("#factor").textContent(), "enabled, 10 recovery codes left");
  });

  await t.test("a recovery code instead of a code logs in at aal2 too", async () => {
    const mfaToken = await loginToChallenge();
    await page.click("#challenge-switch");
    assert.equal((await page.locator("#challenge-label").textContent()).trim(), "Recovery code");
    await verifyLogsIn(mfaToken, "recovery_code", recoveryCodes[0], ["pwd", "recovery"]);
    assert.equal(await page.locator("#factor").textContent(), "enabled, 9 recovery codes left");
    await page.click("#logout");
    await expectStatus("out", "Logged out");
    assert.equal(await jarCookie(), undefined, "logout must clear the refresh cookie");
  });

  await t.test("a challenge past its wrong answers is refused: the page drops the form and says so", async () => {
    await loginToChallenge();
    await page.click("#challenge-switch");
    // Each wrong answer is the recovery code spent above. The API ends a challenge after a few
    // (5); the bound only stops a loop that would never end.
    const refusals = [];
    let last;
    while (refusals.at(-1) !== "invalid_mfa_token" && refusals.length < 10) {
      await page.fill("#challenge-code", recoveryCodes[0]);
      const [response] = await Promise.all([waitForPost("/v1/auth/mfa/verify"), page.click("#challenge-verify")]);
      last = await response.json();
      refusals.push(last.code);
      if (last.code === "invalid_mfa_code") await expectStatus("mfa", "Second factor required");
    }
    assert.ok(refusals.length > 1, `refused at once: ${refusals}`);
    assert.deepEqual(refusals.slice(0, -1), refusals.slice(0, -1).map(() => "invalid_mfa_code"));
    assert.equal(refusals.at(-1), "invalid_mfa_token");
    await expectStatus("out", "Logged out (invalid_mfa_token)");
    assert.equal((await page.locator("#error").textContent()).trim(), `${last.detail} (invalid_mfa_token)`);
    assert.ok(await page.locator("#challenge").isHidden());
    assert.equal(await jarCookie(), undefined);
  });

  await t.test("no script error, CORS or CSP refusal on the page", () => {
    assert.deepEqual(pageErrors, []);
  });
});

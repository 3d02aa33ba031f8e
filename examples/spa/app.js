// Latchkey browser example: no framework, no build step.
//
// Open index.html?api=http://127.0.0.1:8080 from a web server on another origin, and start
// Latchkey with LATCHKEY_REFRESH_COOKIE=true and LATCHKEY_CORS_ORIGINS set to this page's origin
// (e.g. http://127.0.0.1:8000).
//
// Refresh-cookie mode: the refresh token is an HttpOnly cookie (`latchkey_refresh`, path
// /v1/auth) that the browser keeps and sends, and no script on this page can read. Token
// responses carry no refresh_token. The access token lives in the `session` variable below and
// nowhere else (not in localStorage, sessionStorage or a readable cookie); a reload loses it, and
// the page gets a new one from the cookie.
//
// Second factor: for an account with one, a right password gets a challenge instead of a token,
// and POST /v1/auth/mfa/verify trades its mfa_token and a code for the token response a login
// gives. The mfa_token, like the access token, is kept in a variable only (`challenge` below).
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);

  // The API base URL, from ?api=…; only http(s) URLs, without a trailing slash.
  const apiBase = (function () {
    const raw = new URLSearchParams(window.location.search).get("api");
    if (!raw) return null;
    try {
      const url = new URL(raw);
      if (url.protocol !== "http:" && url.protocol !== "https:") return null;
      return url.origin + url.pathname.replace(/\/+$/, "");
    } catch (_) {
      return null;
    }
  })();

  // In memory only: { accessToken, user } or null. The refresh token is not here: it is the
  // HttpOnly cookie, out of reach of this script.
  let session = null;
  // One refresh at a time: concurrent 401s wait for the same refresh. Each refresh spends the
  // cookie it sends, so two at once would present the same cookie twice.
  let refreshing = null;
  // A login waiting for its second factor: { mfaToken, field } or null. `field` is the answer the
  // form takes, "code" (from the authenticator app) or "recovery_code". The mfa_token is half a
  // login: never in storage or the DOM, and dropped once answered, refused or abandoned.
  let challenge = null;
  // The account's second factor as GET /v1/me/mfa last said ({ totp, recovery_codes_left }), or
  // null when unknown. The access token's `aal` says what this session proved, not whether the
  // account has a factor: the session that enrolled one stays at aal1.
  let factor = null;

  // Sent with every request the cookie authenticates (refresh, logout). A page on another origin
  // cannot add a custom header without a CORS preflight, which only allowed origins pass, so the
  // API takes it as proof the request comes from this app (CSRF).
  const CSRF = { "X-Latchkey-Csrf": "1" };

  function showStatus(state, text) {
    const status = $("status");
    status.dataset.state = state;
    $("status-text").textContent = text;
  }

  function showLoggedIn(user) {
    showStatus("in", "Logged in as " + user.email);
    $("status").dataset.email = user.email;
    showSecondFactor();
  }

  function showLoggedOut(why) {
    showStatus("out", "Logged out" + (why ? " (" + why + ")" : ""));
    delete $("status").dataset.email;
    showSecondFactor();
  }

  // An error answer, for the error line: the problem's detail (or title), the invalid fields of a
  // 422, and its code.
  function problemText(status, body) {
    if (!body) return "HTTP " + status;
    let text = body.detail || body.title || "HTTP " + status;
    if (Array.isArray(body.errors) && body.errors.length) {
      text += ": " + body.errors.map((e) => e.field + " " + e.message).join("; ");
    }
    return body.code ? text + " (" + body.code + ")" : text;
  }

  // The error line under the status; an empty text hides it.
  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  // The access token's claims, to show the session's level. For display only: the page trusts
  // nothing in them, and the API checks the token's signature on every call.
  function claims(token) {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  // The second-factor section: shown while logged in, with the session's level (`aal` of the
  // access token). Adding an authenticator is offered to an aal1 session that is not already
  // adding one or showing the recovery codes of one just added; an aal2 session proved a factor
  // the account already has.
  function showSecondFactor() {
    $("second-factor").hidden = !session;
    if (!session) {
      resetEnrollment();
      return;
    }
    const aal = claims(session.accessToken).aal;
    $("aal").textContent = aal;
    $("aal-text").textContent = aal === "aal2" ? "(password and a second factor)" : "(password only)";
    $("factor").textContent = factorText();
    const enabled = aal === "aal2" || (factor && factor.totp === "enabled");
    $("enroll").hidden = enabled || !$("enroll-confirm").hidden || !$("recovery").hidden;
  }

  function factorText() {
    if (!factor) return "unknown";
    if (factor.totp !== "enabled") return factor.totp;
    const left = factor.recovery_codes_left;
    return "enabled, " + left + " recovery code" + (left === 1 ? "" : "s") + " left";
  }

  // Forgets an enrollment shown on the page: the secret, its QR code and the recovery codes.
  function resetEnrollment() {
    $("enroll-password").value = "";
    $("enroll-code").value = "";
    $("enroll-qr").removeAttribute("src");
    $("enroll-secret").textContent = "";
    $("enroll-confirm").hidden = true;
    $("recovery-codes").replaceChildren();
    $("recovery").hidden = true;
  }

  function log(line, ok) {
    const item = document.createElement("li");
    item.textContent = new Date().toISOString().slice(11, 19) + "  " + line;
    if (!ok) item.className = "fail";
    $("log").appendChild(item);
  }

  // One HTTP call to the API. Answers { status, body } where body is the parsed JSON (a token
  // response, a user, or a problem document with a `code`), or null for an empty answer.
  //
  // `cookie: true` is for the calls that set or send the refresh cookie (signup, login,
  // refresh, logout): a cross-origin fetch stores a Set-Cookie and sends cookies only with
  // credentials "include". Every other call omits credentials; the cookie's Path=/v1/auth keeps
  // it off them anyway.
  async function call(method, path, { body, token, headers: extra, cookie = false } = {}) {
    const headers = { Accept: "application/json", ...extra };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    let response;
    try {
      response = await fetch(apiBase + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: cookie ? "include" : "omit",
        cache: "no-store",
      });
    } catch (error) {
      log(method + " " + path + " → network error (is the API up, and this origin allowed by CORS?)", false);
      throw error;
    }
    const type = response.headers.get("content-type") || "";
    const parsed = /json/.test(type) ? await response.json() : null;
    const code = parsed && parsed.code ? " " + parsed.code : "";
    log(method + " " + path + " → " + response.status + code, response.ok);
    return { status: response.status, body: parsed };
  }

  function startSession(tokens) {
    session = { accessToken: tokens.access_token, user: tokens.user };
  }

  function endSession(why) {
    session = null;
    factor = null;
    showLoggedOut(why);
  }

  // Why a refresh failed, for the status line. Without a cookie (never logged in here, or logged
  // out) the API answers 422: the refresh token it needs is missing.
  function refreshFailure(status, body) {
    if (status === 422) return "no refresh cookie";
    return body && body.code ? body.code : "refresh failed";
  }

  // Trades the refresh cookie for a new access token (and a new cookie): POST with no body, the
  // cookie and the CSRF header. Answers true when the session goes on. Tried even when this
  // page holds no session: after a reload the cookie is all that is left of one.
  function refresh(quiet) {
    if (!refreshing) {
      refreshing = call("POST", "/v1/auth/refresh", { headers: CSRF, cookie: true })
        .then(({ status, body }) => {
          if (status === 200) {
            startSession(body);
            return true;
          }
          endSession(quiet ? undefined : refreshFailure(status, body));
          return false;
        })
        .finally(() => {
          refreshing = null;
        });
    }
    return refreshing;
  }

  // A 401 about the access token itself (missing, expired, revoked), which a refresh may cure.
  // Other 401s answer the request (a wrong password or code): retrying would send it twice.
  const TOKEN_REFUSED = ["unauthorized", "invalid_token"];

  // A call with the access token; when the token is refused, it refreshes once and retries once.
  async function authorized(method, path, options = {}) {
    const first = await call(method, path, { ...options, token: session && session.accessToken });
    if (first.status !== 401 || !(first.body && TOKEN_REFUSED.includes(first.body.code))) return first;
    if (!(await refresh())) return null;
    return call(method, path, { ...options, token: session.accessToken });
  }

  function credentials() {
    return { email: $("email").value, password: $("password").value };
  }

  async function signIn(path) {
    showError("");
    endChallenge();
    showStatus("busy", "Working…");
    const { status, body } = await call("POST", path, { body: credentials(), cookie: true });
    if (status === 200 && body && body.mfa_required) {
      $("password").value = "";
      startChallenge(body.mfa_token);
    } else if (status === 200 || status === 201) {
      await loggedIn(body);
    } else {
      endSession(body && body.code ? body.code : "HTTP " + status);
    }
  }

  async function loggedIn(tokens) {
    startSession(tokens);
    $("password").value = "";
    await whoAmI();
  }

  // The password was right and the account has a second factor: no session yet, a code form.
  function startChallenge(mfaToken) {
    session = null;
    showSecondFactor();
    challenge = { mfaToken, field: "code" };
    showChallengeField();
    $("challenge").hidden = false;
    showStatus("mfa", "Second factor required");
  }

  function endChallenge() {
    challenge = null;
    $("challenge").hidden = true;
    $("challenge-code").value = "";
  }

  // The challenge's one field takes a code from the app or a recovery code, as chosen.
  function showChallengeField() {
    const recovery = challenge.field === "recovery_code";
    $("challenge-label").textContent = recovery ? "Recovery code" : "Code from your authenticator app";
    $("challenge-switch").textContent = recovery ? "Use a code from the app instead" : "Use a recovery code instead";
    $("challenge-code").inputMode = recovery ? "text" : "numeric";
    $("challenge-code").value = "";
    $("challenge-code").focus();
  }

  async function switchChallenge() {
    challenge.field = challenge.field === "code" ? "recovery_code" : "code";
    showChallengeField();
  }

  // The login's second half. With credentials: the answer sets the refresh cookie, as a login's
  // does. A wrong code keeps the form for another try; a refused mfa_token (expired, used, or
  // past its wrong codes) ends the challenge, and only a new login helps.
  async function verifyChallenge() {
    showError("");
    showStatus("busy", "Working…");
    const answer = { mfa_token: challenge.mfaToken, [challenge.field]: $("challenge-code").value.trim() };
    const { status, body } = await call("POST", "/v1/auth/mfa/verify", { body: answer, cookie: true });
    if (status === 200) {
      endChallenge();
      await loggedIn(body);
      return;
    }
    showError(problemText(status, body));
    if (body && body.code === "invalid_mfa_token") {
      endChallenge();
      showLoggedOut(body.code);
    } else {
      showStatus("mfa", "Second factor required");
      $("challenge-code").value = "";
      $("challenge-code").focus();
    }
  }

  // Adding an authenticator, step 1: the API makes a secret and answers it with its QR code. It
  // asks for the current password, so that an access token alone cannot add a factor.
  async function startEnrollment() {
    showError("");
    const password = $("enroll-password").value;
    $("enroll-password").value = "";
    const answer = await authorized("POST", "/v1/me/mfa/totp", { body: { password } });
    // null: the refresh failed, and refresh() already said why.
    if (!answer) return;
    if (answer.status !== 200) {
      showError(problemText(answer.status, answer.body));
      return;
    }
    $("enroll-qr").src = answer.body.qr_code;
    $("enroll-secret").textContent = answer.body.secret;
    $("enroll").hidden = true;
    $("enroll-confirm").hidden = false;
    factor = { totp: "pending", recovery_codes_left: 0 };
    showSecondFactor();
    $("enroll-code").focus();
  }

  // Step 2: a code from the app turns the factor on, and the answer holds the recovery codes,
  // shown this once. The secret is in the app now: the page drops it and its QR code.
  async function confirmEnrollment() {
    showError("");
    const code = $("enroll-code").value.trim();
    $("enroll-code").value = "";
    const answer = await authorized("POST", "/v1/me/mfa/totp/confirm", { body: { code } });
    if (!answer) return;
    if (answer.status !== 200) {
      showError(problemText(answer.status, answer.body));
      return;
    }
    resetEnrollment();
    factor = { totp: "enabled", recovery_codes_left: answer.body.recovery_codes.length };
    for (const recoveryCode of answer.body.recovery_codes) {
      const item = document.createElement("li");
      item.textContent = recoveryCode;
      $("recovery-codes").appendChild(item);
    }
    $("recovery").hidden = false;
    showSecondFactor();
  }

  async function whoAmI() {
    const answer = await authorized("GET", "/v1/me");
    // null: the refresh failed, and refresh() already said why.
    if (!answer) return;
    const { status, body } = answer;
    if (status === 200) {
      if (session) session.user = body;
      await loadFactor();
      showLoggedIn(body);
    } else {
      endSession(body && body.code ? body.code : "HTTP " + status);
    }
  }

  // What the page offers depends on the account's factor, which only the API knows.
  async function loadFactor() {
    const answer = await authorized("GET", "/v1/me/mfa");
    factor = answer && answer.status === 200 ? answer.body : null;
  }

  // Logout by cookie: it names the session whatever became of the access token, ends it on the
  // server, and the answer clears the cookie.
  async function logOut() {
    showError("");
    endChallenge();
    await call("POST", "/v1/auth/logout", { headers: CSRF, cookie: true });
    endSession();
  }

  // On load: a live refresh cookie (from before a reload) resumes the session.
  async function resume() {
    showStatus("busy", "Looking for a session…");
    if (await refresh(true)) await whoAmI();
  }

  function guard(action) {
    return function () {
      action().catch((error) => {
        showStatus("out", "Error: " + error.message);
      });
    };
  }

  $("signup").addEventListener("click", guard(() => signIn("/v1/auth/signup")));
  $("login").addEventListener("click", guard(() => signIn("/v1/auth/login")));
  $("whoami").addEventListener("click", guard(whoAmI));
  $("logout").addEventListener("click", guard(logOut));
  $("challenge-switch").addEventListener("click", guard(switchChallenge));
  // Forms whose submit (a button, or Enter in a field) stays on the page: the CSP's
  // form-action 'none' would refuse a real submission anyway.
  for (const [form, action] of [
    ["challenge", verifyChallenge],
    ["enroll", startEnrollment],
    ["enroll-confirm", confirmEnrollment],
  ]) {
    const run = guard(action);
    $(form).addEventListener("submit", (event) => {
      event.preventDefault();
      run();
    });
  }

  if (apiBase) {
    $("api-url").textContent = apiBase;
    guard(resume)();
  } else {
    $("api-url").textContent = "(missing: open this page with ?api=http://127.0.0.1:8080)";
    showStatus("out", "No API configured");
    for (const button of document.querySelectorAll("button")) button.disabled = true;
  }
})();

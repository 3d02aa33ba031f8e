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
  }

  function showLoggedOut(why) {
    showStatus("out", "Logged out" + (why ? " (" + why + ")" : ""));
    delete $("status").dataset.email;
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
    showStatus("busy", "Working…");
    const { status, body } = await call("POST", path, { body: credentials(), cookie: true });
    if (status === 200 || status === 201) {
      startSession(body);
      $("password").value = "";
      await whoAmI();
    } else {
      endSession(body && body.code ? body.code : "HTTP " + status);
    }
  }

  async function whoAmI() {
    const answer = await authorized("GET", "/v1/me");
    // null: the refresh failed, and refresh() already said why.
    if (!answer) return;
    const { status, body } = answer;
    if (status === 200) {
      if (session) session.user = body;
      showLoggedIn(body);
    } else {
      endSession(body && body.code ? body.code : "HTTP " + status);
    }
  }

  // Logout by cookie: it names the session whatever became of the access token, ends it on the
  // server, and the answer clears the cookie.
  async function logOut() {
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

  if (apiBase) {
    $("api-url").textContent = apiBase;
    guard(resume)();
  } else {
    $("api-url").textContent = "(missing: open this page with ?api=http://127.0.0.1:8080)";
    showStatus("out", "No API configured");
    for (const button of document.querySelectorAll("button")) button.disabled = true;
  }
})();

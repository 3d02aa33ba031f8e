// Latchkey browser example: no framework, no build step.
//
// Open index.html?api=http://127.0.0.1:8080 from a web server on another origin, and start
// Latchkey with LATCHKEY_CORS_ORIGINS set to this page's origin (e.g. http://127.0.0.1:8000).
//
// The tokens are kept in the `session` variable below and nowhere else: not in localStorage,
// sessionStorage or cookies. A real deployment should keep the refresh token in Latchkey's
// HttpOnly refresh cookie mode once it is available, out of reach of page scripts.
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

  // In memory only: { accessToken, refreshToken, user } or null.
  let session = null;
  // One refresh at a time: concurrent 401s wait for the same refresh.
  let refreshing = null;

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
  async function call(method, path, { body, token } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    let response;
    try {
      response = await fetch(apiBase + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
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
    session = {
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      user: tokens.user,
    };
  }

  function endSession(why) {
    session = null;
    showLoggedOut(why);
  }

  // Trades the refresh token for a new pair. Answers true when the session goes on.
  function refresh() {
    if (!session) return Promise.resolve(false);
    if (!refreshing) {
      const spent = session.refreshToken;
      refreshing = call("POST", "/v1/auth/refresh", { body: { refresh_token: spent } })
        .then(({ status, body }) => {
          if (status === 200) {
            startSession(body);
            return true;
          }
          endSession(body && body.code ? body.code : "refresh failed");
          return false;
        })
        .finally(() => {
          refreshing = null;
        });
    }
    return refreshing;
  }

  // A call with the access token; on 401 it refreshes once and retries once.
  async function authorized(method, path, options = {}) {
    const first = await call(method, path, { ...options, token: session && session.accessToken });
    if (first.status !== 401 || !session) return first;
    if (!(await refresh())) return first;
    return call(method, path, { ...options, token: session.accessToken });
  }

  function credentials() {
    return { email: $("email").value, password: $("password").value };
  }

  async function signIn(path) {
    showStatus("busy", "Working…");
    const { status, body } = await call("POST", path, { body: credentials() });
    if (status === 200 || status === 201) {
      startSession(body);
      $("password").value = "";
      await whoAmI();
    } else {
      endSession(body && body.code ? body.code : "HTTP " + status);
    }
  }

  async function whoAmI() {
    const { status, body } = await authorized("GET", "/v1/me");
    if (status === 200) {
      if (session) session.user = body;
      showLoggedIn(body);
    } else {
      endSession(body && body.code ? body.code : "HTTP " + status);
    }
  }

  async function logOut() {
    if (session) await authorized("POST", "/v1/auth/logout");
    endSession();
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
    showLoggedOut();
  } else {
    $("api-url").textContent = "(missing: open this page with ?api=http://127.0.0.1:8080)";
    showStatus("out", "No API configured");
    for (const button of document.querySelectorAll("button")) button.disabled = true;
  }
})();

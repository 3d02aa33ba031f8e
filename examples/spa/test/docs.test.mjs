// Opens Latchkey's API reference (GET /docs, Redoc embedded in the binary) in Debian's Chromium
// (headless, through playwright-core) with every host but the API's blocked, and checks that it
// renders openapi.yaml: the page must work offline. .ci/clients.sh starts the API and sets:
//
//   API_URL      the API, e.g. http://127.0.0.1:8080
//   SCREENSHOT   where to save a PNG of the rendered page (optional)
//   CHROMIUM     the browser binary (default /usr/bin/chromium)
//
// Run: cd examples/spa/test && npm ci && API_URL=http://127.0.0.1:8080 node --test docs.test.mjs

import assert from "node:assert/strict";
import { test } from "node:test";

import { launchChromium } from "./chromium.mjs";

const API_URL = process.env.API_URL?.replace(/\/$/, "");
const SCREENSHOT = process.env.SCREENSHOT;

assert.ok(API_URL, "set API_URL");
const API_ORIGIN = new URL(API_URL).origin;

test("GET /docs renders the API reference from the API's own origin alone", { timeout: 120_000 }, async (t) => {
  const browser = await launchChromium();
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });

  // Every request of the page goes through here: the API's origin passes, anything else is
  // aborted and recorded (data: and blob: URLs, which never reach the network, are not routed).
  const sameOrigin = [];
  const elsewhere = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === API_ORIGIN) {
      sameOrigin.push(new URL(url).pathname);
      return route.continue();
    }
    elsewhere.push(url);
    return route.abort("blockedbyclient");
  });

  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error}`));
  page.on("console", (message) => {
    // CSP refusals ("Refused to load/execute/apply …") and script errors.
    if (message.type() === "error" || /Content Security Policy|Refused to/i.test(message.text())) {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on("requestfailed", (request) => problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`));

  const response = await page.goto(`${API_URL}/docs`);
  assert.equal(response.status(), 200);
  assert.match(response.headers()["content-type"], /^text\/html/);
  assert.match(response.headers()["content-security-policy"], /script-src 'self'/);
  assert.equal(await page.title(), "Latchkey API reference");

  await t.test("Redoc renders the operations of openapi.yaml", async () => {
    // An operation heading (the summary of POST /v1/auth/signup) and a path of the contract.
    await page.getByRole("heading", { name: "Create an account" }).first().waitFor({ timeout: 30_000 });
    await page.getByText("/v1/auth/login").first().waitFor({ timeout: 10_000 });
    assert.ok(await page.getByRole("heading", { name: /^Latchkey/ }).first().isVisible());
  });

  await t.test("its search runs (a blob: worker the CSP allows)", async () => {
    // The summary of POST /v1/auth/logout.
    await page.getByPlaceholder("Search...").fill("logout");
    await page
      .locator('[data-role="search:results"]')
      .getByText("End the current session, the others, or all of them")
      .first()
      .waitFor({ timeout: 10_000 });
    await page.getByPlaceholder("Search...").fill("");
  });

  await t.test("it loaded the page, the script and the spec from the API, and nothing else", async () => {
    if (SCREENSHOT) {
      await page.getByRole("heading", { name: "Create an account" }).first().scrollIntoViewIfNeeded();
      await page.screenshot({ path: SCREENSHOT });
    }
    assert.deepEqual(elsewhere, [], "requests to other hosts were attempted");
    for (const path of ["/docs", "/docs/redoc.standalone.js", "/openapi.yaml"]) {
      assert.ok(sameOrigin.includes(path), `${path} was not loaded: ${sameOrigin.join(", ")}`);
    }
    assert.deepEqual(problems, []);
  });
});

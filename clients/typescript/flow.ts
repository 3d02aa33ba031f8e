// The Latchkey session flow through openapi-fetch, typed by openapi-typescript from openapi.yaml.
//
//   npm ci && npm run generate && npm run typecheck
//   npx tsx flow.ts http://127.0.0.1:8080
//
// signup -> login -> me -> refresh -> logout -> me is 401, plus typed error handling: a second
// signup with the same email is a 409 Problem with code `email_taken`, a wrong password a 401
// Problem with code `invalid_credentials`. Then the second factor: enroll TOTP -> confirm ->
// logout -> login is a challenge -> code -> tokens at aal2. Any failed assertion throws and
// exits non-zero.

import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";

import createClient from "openapi-fetch";

import type { components, paths } from "./generated/latchkey.js";

type Problem = components["schemas"]["Problem"];
type TokenResponse = components["schemas"]["TokenResponse"];
type User = components["schemas"]["User"];

const baseUrl = process.argv[2]?.replace(/\/$/, "");
if (!baseUrl) {
  console.error("usage: tsx flow.ts BASE_URL");
  process.exit(2);
}

const api = createClient<paths>({ baseUrl });
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

// A problem document as the generated types describe it: `code` is what clients switch on.
function expectProblem(error: Problem | undefined, status: number, code: string): Problem {
  assert.ok(error, `expected a ${status} problem`);
  assert.equal(error.status, status);
  assert.equal(error.code, code);
  assert.equal(typeof error.detail, "string");
  return error;
}

// Compile-time checks that the generated types are really in force: each line below must be
// a type error, or `tsc --noEmit` fails on an unused @ts-expect-error.
function typeLevelChecks(): void {
  // @ts-expect-error the signup body requires a password
  void api.POST("/v1/auth/signup", { body: { email: "x@example.com" } });
  // @ts-expect-error logout scope is an enum
  void api.POST("/v1/auth/logout", { params: { query: { scope: "everything" } } });
  // @ts-expect-error a User never carries a password (hash)
  void ((user: User) => user.password);
  // @ts-expect-error a Problem's code is a string, not a number
  void ((problem: Problem): number => problem.code);
}
void typeLevelChecks;

/** RFC 6238 with HMAC-SHA1, 6 digits, for the 30-second step `step` of a base32 secret. */
function totp(secret: string, step: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const digest = createHmac("sha1", key).update(counter).digest();
  const offset = (digest[19] ?? 0) & 0x0f;
  return String((digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

/** Enroll TOTP, log out, log in: a challenge, then the code gets tokens at aal2. */
async function mfaFlow(password: string): Promise<void> {
  const email = `ts-mfa-${randomUUID().slice(0, 12)}@example.com`;
  const created = await api.POST("/v1/auth/signup", { body: { email, password } });
  const createdData = created.data;
  assert.ok(createdData && "access_token" in createdData);
  const session = bearer(createdData.access_token);
  const started = await api.POST("/v1/me/mfa/totp", { headers: session, body: { password } });
  assert.ok(started.data);
  const secret = started.data.secret;
  assert.match(started.data.otpauth_uri, /^otpauth:\/\/totp\//);
  // A code is accepted once per step: confirm with this step's, verify with the next one's
  // (within the server's one step of skew).
  const step = Math.floor(Date.now() / 1000 / 30);
  const confirmed = await api.POST("/v1/me/mfa/totp/confirm", {
    headers: session,
    body: { code: totp(secret, step) },
  });
  assert.equal(confirmed.data?.recovery_codes.length, 10);
  const status = await api.GET("/v1/me/mfa", { headers: session });
  assert.deepEqual(status.data, { totp: "enabled", recovery_codes_left: 10 });
  console.log("mfa      enrolled, 10 recovery codes");
  const out = await api.POST("/v1/auth/logout", { params: { query: { scope: "local" } }, headers: session });
  assert.equal(out.response.status, 204);

  const challenged = await api.POST("/v1/auth/login", { body: { email, password } });
  const challenge = challenged.data;
  assert.ok(challenge && "mfa_token" in challenge && challenge.mfa_required);
  console.log(`login    200 mfa_required, expires_in ${challenge.expires_in}`);
  const verified = await api.POST("/v1/auth/mfa/verify", {
    body: { mfa_token: challenge.mfa_token, code: totp(secret, step + 1) },
  });
  assert.ok(verified.data);
  const tokens: TokenResponse = verified.data;
  const claims = JSON.parse(Buffer.from(tokens.access_token.split(".")[1] ?? "", "base64url").toString());
  assert.equal(claims.aal, "aal2");
  const me = await api.GET("/v1/me", { headers: bearer(tokens.access_token) });
  assert.equal(me.data?.email, email);
  console.log("mfa      200 tokens at aal2, me 200");
}

/** In body mode (the default) the refresh token is in the token response; in cookie mode it is not. */
function refreshTokenOf(tokens: TokenResponse): string {
  assert.ok(tokens.refresh_token, "the token response carries no refresh_token (cookie mode?)");
  return tokens.refresh_token;
}

async function main(): Promise<void> {
  const email = `ts-${randomUUID().slice(0, 12)}@example.com`;
  const password = "correct horse battery staple";

  const health = await api.GET("/healthz");
  assert.equal(health.data?.status, "ok");

  // Sign up: 201 with a token response.
  const created = await api.POST("/v1/auth/signup", {
    body: { email: email.toUpperCase(), password, name: "Type Script" },
  });
  assert.equal(created.response.status, 201);
  // 202 (no tokens) answers only when the server requires verified addresses; this one does not.
  assert.ok(created.data && "access_token" in created.data, "signup returned no token response");
  const signedUp: TokenResponse = created.data;
  assert.equal(signedUp.user.email, email);
  assert.equal(signedUp.user.role, "user");
  assert.equal(signedUp.token_type, "Bearer");
  assert.equal(created.response.headers.get("cache-control"), "no-store");
  console.log(`signup   201 user ${signedUp.user.id}`);

  // The same email again: a typed 409 problem.
  const taken = await api.POST("/v1/auth/signup", { body: { email, password } });
  assert.equal(taken.response.status, 409);
  assert.equal(taken.response.headers.get("content-type"), "application/problem+json");
  assert.equal(taken.data, undefined);
  const takenProblem = expectProblem(taken.error, 409, "email_taken");
  console.log(`signup   409 ${takenProblem.code}`);

  // A wrong password: a typed 401 problem.
  const wrong = await api.POST("/v1/auth/login", { body: { email, password: "not the password" } });
  assert.equal(wrong.response.status, 401);
  const wrongProblem = expectProblem(wrong.error, 401, "invalid_credentials");
  console.log(`login    401 ${wrongProblem.code}`);

  // Log in: 200 with a new pair.
  const loggedIn = await api.POST("/v1/auth/login", { body: { email, password } });
  assert.equal(loggedIn.response.status, 200);
  // A login answers a token pair, or a challenge for an account with a second factor.
  const loggedInData = loggedIn.data;
  assert.ok(loggedInData && "access_token" in loggedInData);
  const tokens: TokenResponse = loggedInData;
  assert.ok(tokens.expires_in > 0);
  console.log(`login    200 expires_in ${tokens.expires_in}`);

  // Who am I?
  const me = await api.GET("/v1/me", { headers: bearer(tokens.access_token) });
  assert.equal(me.response.status, 200);
  assert.ok(me.data);
  const user: User = me.data;
  assert.equal(user.email, email);
  assert.equal(user.id, signedUp.user.id);
  assert.equal(user.name, "Type Script");
  console.log(`me       200 ${user.email}`);

  // Refresh: a new pair; the old refresh token is spent.
  const refreshed = await api.POST("/v1/auth/refresh", {
    body: { refresh_token: refreshTokenOf(tokens) },
  });
  assert.equal(refreshed.response.status, 200);
  assert.ok(refreshed.data);
  const rotated: TokenResponse = refreshed.data;
  assert.notEqual(rotated.refresh_token, tokens.refresh_token);
  const meAgain = await api.GET("/v1/me", { headers: bearer(rotated.access_token) });
  assert.equal(meAgain.data?.id, user.id);
  console.log("refresh  200 new pair, me 200");

  // Log out this session: 204, no body.
  const out = await api.POST("/v1/auth/logout", {
    params: { query: { scope: "local" } },
    headers: bearer(rotated.access_token),
  });
  assert.equal(out.response.status, 204);
  assert.equal(out.error, undefined);
  console.log("logout   204");

  // The ended session's access token is refused at once, before it expires.
  const after = await api.GET("/v1/me", { headers: bearer(rotated.access_token) });
  assert.equal(after.response.status, 401);
  assert.match(after.response.headers.get("www-authenticate") ?? "", /^Bearer /);
  const afterProblem = expectProblem(after.error, 401, "invalid_token");
  console.log(`me       401 ${afterProblem.code} (${afterProblem.detail})`);

  // And so is its refresh token.
  const dead = await api.POST("/v1/auth/refresh", {
    body: { refresh_token: refreshTokenOf(rotated) },
  });
  const deadProblem = expectProblem(dead.error, 401, "invalid_refresh_token");
  console.log(`refresh  401 ${deadProblem.code}`);

  await mfaFlow(password);

  console.log("typescript sdk flow: ok");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

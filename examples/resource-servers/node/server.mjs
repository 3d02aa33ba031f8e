// A resource server that trusts Latchkey access tokens knowing only Latchkey's JWKS URL, with
// jose's createRemoteJWKSet (which refetches the key set when a token names an unknown kid).
//
//   LATCHKEY_JWKS_URL=http://127.0.0.1:8080/.well-known/jwks.json \
//   LATCHKEY_ISSUER=latchkey LATCHKEY_AUDIENCE=api.example.com PORT=8001 node server.mjs
//
// GET /hello with `Authorization: Bearer <access token>`: 200 {"sub","role","sid"} for a valid
// token, 401 {"error"} for anything else (expired, tampered, another audience, unknown key).
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const jwksUrl = process.env.LATCHKEY_JWKS_URL ?? 'http://127.0.0.1:8080/.well-known/jwks.json';
const issuer = process.env.LATCHKEY_ISSUER ?? 'latchkey';
const audience = process.env.LATCHKEY_AUDIENCE; // required in tokens when set
const port = Number(process.env.PORT ?? 8001);

const keys = createRemoteJWKSet(new URL(jwksUrl));

async function verify(token) {
  const { payload } = await jwtVerify(token, keys, {
    issuer,
    audience,
    // Latchkey signs with one asymmetric algorithm; an HS256 token is never accepted here.
    algorithms: ['EdDSA', 'ES256'],
    typ: 'at+jwt',
    requiredClaims: ['sub', 'sid', 'exp', 'iat'],
  });
  return payload;
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer(async (req, res) => {
  if (req.method !== 'GET' || req.url !== '/hello') {
    return send(res, 404, { error: 'not_found' });
  }
  const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (!match) {
    return send(res, 401, { error: 'missing bearer token' });
  }
  try {
    const claims = await verify(match[1]);
    send(res, 200, { sub: claims.sub, role: claims.role, sid: claims.sid });
  } catch (err) {
    send(res, 401, { error: err.code ?? 'invalid_token' });
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`node resource server on http://127.0.0.1:${port}/hello, keys from ${jwksUrl}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

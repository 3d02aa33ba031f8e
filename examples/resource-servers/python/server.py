"""A resource server that trusts Latchkey access tokens knowing only Latchkey's JWKS URL, with
PyJWT's PyJWKClient (EdDSA and ES256 need the `cryptography` package; PyJWKClient refetches the
key set when a token names an unknown kid).

    pip install -r requirements.txt
    LATCHKEY_JWKS_URL=http://127.0.0.1:8080/.well-known/jwks.json \\
    LATCHKEY_ISSUER=latchkey LATCHKEY_AUDIENCE=api.example.com PORT=8002 python server.py

GET /hello with `Authorization: Bearer <access token>`: 200 {"sub","role","sid"} for a valid
token, 401 {"error"} for anything else (expired, tampered, another audience, unknown key).
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

JWKS_URL = os.environ.get("LATCHKEY_JWKS_URL", "http://127.0.0.1:8080/.well-known/jwks.json")
ISSUER = os.environ.get("LATCHKEY_ISSUER", "latchkey")
AUDIENCE = os.environ.get("LATCHKEY_AUDIENCE")  # required in tokens when set
PORT = int(os.environ.get("PORT", "8002"))

keys = jwt.PyJWKClient(JWKS_URL, cache_jwk_set=True, lifespan=300)


def verify(token):
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        raise jwt.InvalidTokenError("not an access token")
    key = keys.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key,
        # Latchkey signs with one asymmetric algorithm; an HS256 token is never accepted here.
        algorithms=["EdDSA", "ES256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        options={
            "require": ["exp", "iat", "sub", "sid", "iss"],
            "verify_aud": AUDIENCE is not None,
        },
    )


class Handler(BaseHTTPRequestHandler):
    def send(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        if self.path != "/hello":
            return self.send(404, {"error": "not_found"})
        auth = self.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return self.send(401, {"error": "missing bearer token"})
        try:
            claims = verify(auth.removeprefix("Bearer "))
        except jwt.PyJWTError as err:
            return self.send(401, {"error": type(err).__name__})
        self.send(200, {"sub": claims["sub"], "role": claims["role"], "sid": claims["sid"]})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"python resource server on http://127.0.0.1:{PORT}/hello, keys from {JWKS_URL}", flush=True)
    server.serve_forever()

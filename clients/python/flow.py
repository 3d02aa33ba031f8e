"""The Latchkey session flow through the Python SDK generated from openapi.yaml.

Generate and install the SDK first (see README, "Client SDKs and the browser example"), then:

    python clients/python/flow.py http://127.0.0.1:8080

signup -> login -> me -> refresh -> logout -> me is 401, plus typed error handling: a second
signup with the same email is a 409 `Problem` with code `email_taken`, a wrong password a 401
`Problem` with code `invalid_credentials`. Then the second factor: enroll TOTP -> confirm ->
logout -> login is a challenge -> code -> tokens at aal2. Exits non-zero on the first failed
assertion.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import uuid
from http import HTTPStatus

from latchkey_client import AuthenticatedClient, Client
from latchkey_client.api.auth import login, logout, refresh, signup, verify_mfa
from latchkey_client.api.health import healthz
from latchkey_client.api.me import (
    confirm_totp_enrollment,
    get_me,
    get_mfa_status,
    start_totp_enrollment,
)
from latchkey_client.models import (
    Health,
    LoginRequest,
    LogoutScope,
    MfaChallenge,
    MfaStatus,
    MfaStatusTotp,
    MfaVerifyRequest,
    Problem,
    RecoveryCodes,
    RefreshRequest,
    Role,
    SignupRequest,
    TokenResponse,
    TotpConfirmRequest,
    TotpEnrollment,
    TotpEnrollmentRequest,
    User,
)


def totp(secret: str, step: int) -> str:
    """RFC 6238 with HMAC-SHA1, 6 digits, for the 30-second step `step`."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[19] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def claims(access_token: str) -> dict:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def mfa_flow(base_url: str, client: Client, password: str) -> None:
    """Enroll TOTP, log out, log in: a challenge, then the code gets tokens at aal2."""
    email = f"py-mfa-{uuid.uuid4().hex[:12]}@example.com"
    created = signup.sync(client=client, body=SignupRequest(email=email, password=password))
    assert isinstance(created, TokenResponse), created
    session = authed(base_url, created.access_token)
    enrollment = start_totp_enrollment.sync(client=session, body=TotpEnrollmentRequest(password=password))
    assert isinstance(enrollment, TotpEnrollment), enrollment
    assert enrollment.otpauth_uri.startswith("otpauth://totp/"), enrollment.otpauth_uri
    assert enrollment.qr_code.startswith("data:image/svg+xml;base64,")
    # A code is accepted once per step: confirm with this step's, verify with the next one's
    # (within the server's one step of skew).
    step = int(time.time()) // 30
    codes = confirm_totp_enrollment.sync(client=session, body=TotpConfirmRequest(code=totp(enrollment.secret, step)))
    assert isinstance(codes, RecoveryCodes) and len(codes.recovery_codes) == 10, codes
    status = get_mfa_status.sync(client=session)
    assert isinstance(status, MfaStatus), status
    assert status.totp == MfaStatusTotp.ENABLED and status.recovery_codes_left == 10, status
    print("mfa      enrolled, 10 recovery codes")
    out = logout.sync_detailed(client=session, scope=LogoutScope.LOCAL)
    assert out.status_code == HTTPStatus.NO_CONTENT, out.status_code

    challenge = login.sync(client=client, body=LoginRequest(email=email, password=password))
    assert isinstance(challenge, MfaChallenge) and challenge.mfa_required, challenge
    print(f"login    200 mfa_required, expires_in {challenge.expires_in}")
    tokens = verify_mfa.sync(
        client=client,
        body=MfaVerifyRequest(mfa_token=challenge.mfa_token, code=totp(enrollment.secret, step + 1)),
    )
    assert isinstance(tokens, TokenResponse), tokens
    assert claims(tokens.access_token)["aal"] == "aal2"
    me = get_me.sync(client=authed(base_url, tokens.access_token))
    assert isinstance(me, User) and me.email == email, me
    print("mfa      200 tokens at aal2, me 200")


def authed(base_url: str, access_token: str) -> AuthenticatedClient:
    return AuthenticatedClient(base_url=base_url, token=access_token, raise_on_unexpected_status=True)


def main(base_url: str) -> None:
    client = Client(base_url=base_url, raise_on_unexpected_status=True)
    email = f"py-{uuid.uuid4().hex[:12]}@example.com"
    password = "correct horse battery staple"

    health = healthz.sync(client=client)
    assert isinstance(health, Health) and health.status == "ok", health

    # Sign up: 201 with a typed token response.
    created = signup.sync_detailed(
        client=client, body=SignupRequest(email=email.upper(), password=password, name="Py Thon")
    )
    assert created.status_code == HTTPStatus.CREATED, created
    assert isinstance(created.parsed, TokenResponse), created.parsed
    assert created.parsed.user.email == email  # lower-cased by the server
    assert created.parsed.user.role == Role.USER
    assert created.parsed.user.name == "Py Thon"
    assert created.headers.get("cache-control") == "no-store"
    print(f"signup   201 user {created.parsed.user.id}")

    # The same email again: 409, parsed into the Problem model.
    taken = signup.sync_detailed(client=client, body=SignupRequest(email=email, password=password))
    assert taken.status_code == HTTPStatus.CONFLICT, taken.status_code
    assert isinstance(taken.parsed, Problem), taken.parsed
    assert taken.parsed.code == "email_taken", taken.parsed
    assert taken.parsed.status == 409
    print(f"signup   409 {taken.parsed.code}")

    # A wrong password: 401 invalid_credentials, parsed into the Problem model.
    wrong = login.sync_detailed(client=client, body=LoginRequest(email=email, password="not the password"))
    assert wrong.status_code == HTTPStatus.UNAUTHORIZED, wrong.status_code
    assert isinstance(wrong.parsed, Problem), wrong.parsed
    assert wrong.parsed.code == "invalid_credentials", wrong.parsed
    print(f"login    401 {wrong.parsed.code}")

    # Log in: 200 with a new token pair.
    tokens = login.sync(client=client, body=LoginRequest(email=email, password=password))
    assert isinstance(tokens, TokenResponse), tokens
    assert tokens.token_type.value == "Bearer"
    assert tokens.expires_in > 0
    print(f"login    200 expires_in {tokens.expires_in}")

    # Who am I?
    me = get_me.sync(client=authed(base_url, tokens.access_token))
    assert isinstance(me, User), me
    assert me.email == email and me.id == created.parsed.user.id
    print(f"me       200 {me.email}")

    # Refresh: a new pair; the old refresh token is spent.
    rotated = refresh.sync(client=client, body=RefreshRequest(refresh_token=tokens.refresh_token))
    assert isinstance(rotated, TokenResponse), rotated
    assert rotated.refresh_token != tokens.refresh_token
    assert rotated.user.id == me.id
    me_again = get_me.sync(client=authed(base_url, rotated.access_token))
    assert isinstance(me_again, User) and me_again.id == me.id, me_again
    print("refresh  200 new pair, me 200")

    # Log out (this session): 204, no body.
    out = logout.sync_detailed(client=authed(base_url, rotated.access_token), scope=LogoutScope.LOCAL)
    assert out.status_code == HTTPStatus.NO_CONTENT, out.status_code
    print("logout   204")

    # The access token of the ended session is refused at once, before it expires.
    after = get_me.sync_detailed(client=authed(base_url, rotated.access_token))
    assert after.status_code == HTTPStatus.UNAUTHORIZED, after.status_code
    assert isinstance(after.parsed, Problem), after.parsed
    assert after.parsed.code == "invalid_token", after.parsed
    assert after.headers.get("www-authenticate", "").startswith("Bearer "), after.headers
    print(f"me       401 {after.parsed.code} ({after.parsed.detail})")

    # And so is its refresh token.
    dead = refresh.sync_detailed(client=client, body=RefreshRequest(refresh_token=rotated.refresh_token))
    assert dead.status_code == HTTPStatus.UNAUTHORIZED, dead.status_code
    assert isinstance(dead.parsed, Problem), dead.parsed
    assert dead.parsed.code == "invalid_refresh_token", dead.parsed
    print(f"refresh  401 {dead.parsed.code}")

    mfa_flow(base_url, client, password)

    print("python sdk flow: ok")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} BASE_URL")
    main(sys.argv[1].rstrip("/"))

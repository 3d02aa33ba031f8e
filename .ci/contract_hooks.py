"""schemathesis hooks for .ci/contract.sh: authenticate every generated request as an admin.

The fuzzer calls logout, DELETE /v1/me/sessions/{id}, PATCH/DELETE /v1/users/{id} and so on
with the very token it was given, so any token may be revoked (or its account demoted, disabled
or deleted) in the middle of the run. The provider below logs in afresh whenever schemathesis
sees a 401 or 403 (reactive re-authentication), and when the admin it uses can no longer log in
as an enabled admin it makes a new one with `latchkey admin create`, the operator's command, on
the same database.

Environment (set by .ci/contract.sh): CONTRACT_URL, CONTRACT_ADMIN_EMAIL,
CONTRACT_ADMIN_PASSWORD, CONTRACT_BIN, DATABASE_URL.
"""

import atexit
import base64
import collections
import unicodedata
import os
import sys
import re
import subprocess
import threading
import uuid

import requests
import schemathesis

URL = os.environ["CONTRACT_URL"]
PASSWORD = os.environ["CONTRACT_ADMIN_PASSWORD"]
BINARY = os.environ["CONTRACT_BIN"]


class _Admins:
    """The admin account currently used; replaced by a new one when it stops being usable."""

    def __init__(self) -> None:
        self.email = os.environ["CONTRACT_ADMIN_EMAIL"]
        self.spares = 0
        self.lock = threading.Lock()

    def login(self) -> dict | None:
        response = requests.post(
            f"{URL}/v1/auth/login",
            json={"email": self.email, "password": PASSWORD},
            timeout=10,
        )
        if response.status_code != 200:
            return None
        body = response.json()
        user = body["user"]
        if user["role"] != "admin" or user["disabled"]:
            return None
        return body

    def new_admin(self) -> None:
        self.spares += 1
        local, domain = os.environ["CONTRACT_ADMIN_EMAIL"].split("@")
        self.email = f"{local}+spare{self.spares}@{domain}"
        subprocess.run(
            [BINARY, "admin", "create", "--email", self.email, "--password-stdin"],
            input=PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def access_token(self) -> str:
        with self.lock:
            body = self.login()
            if body is None:
                # Demoted, disabled or deleted by the fuzzer (or its email changed): a new admin.
                self.new_admin()
                body = self.login()
            if body is None:
                raise RuntimeError(f"could not log in as the admin {self.email}")
            return body["access_token"]


ADMINS = _Admins()


# 403 too: an admin demoted mid-run still holds a valid token, without the admin role.
@schemathesis.auth(refresh_interval=3600, retry_on=[401, 403])
class AdminBearer:
    def get(self, case, context):
        return ADMINS.access_token()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# Rules of the contract that a request schema cannot state. Each is taught to schemathesis here,
# narrowly, instead of switching a check off; the run's summary counts the failures that rules 2
# and up drop ("Filtered: N"), and this file prints them by rule when the run ends.


# 1. Passwords are at most 72 *bytes* of UTF-8 (bcrypt's limit; longer ones are refused, never
# truncated), but JSON Schema's `maxLength: 72` counts characters. A generated password of at most
# 72 characters but more than 72 bytes is schema-valid and rightly refused with 422, so it is not
# generated. Passwords over 72 characters are over 72 bytes too and stay in the negative cases,
# as do those under 8 characters, which the server refuses as sent whatever they normalize to.
PASSWORD_MEMBERS = {
    "POST /v1/auth/signup": "password",
    "PUT /v1/me/password": "new_password",
    "POST /v1/auth/password/reset": "new_password",
}


@schemathesis.hook
def filter_body(context, body):
    member = PASSWORD_MEMBERS.get(getattr(context.operation, "label", None))
    if member is None or not isinstance(body, dict):
        return True
    password = body.get(member)
    if not isinstance(password, str) or not 8 <= len(password) <= 72:
        return True
    # The server also checks the NFKC form, which is what it hashes (README: passwords): a
    # schema-valid password that normalizes to fewer than 8 characters or more than 72 bytes is
    # rightly refused, so it is not generated either.
    normal = unicodedata.normalize("NFKC", password)
    return (
        len(password.encode("utf-8", "surrogatepass")) <= 72
        and len(normal) >= 8
        and len(normal.encode("utf-8", "surrogatepass")) <= 72
    )


# 2. `GET /v1/users?cursor=` takes only a cursor this server issued (a `next_cursor`); any other
# string is answered 400 `invalid_query`, as the contract documents. No schema can describe the
# set of issued cursors, so positive_data_acceptance's complaint about exactly that 400 for a
# cursor the server could never have issued is dropped. A 400 for a cursor that decodes like an
# issued one, or for anything else, still fails the run.
def _is_issued_cursor(cursor: str) -> bool:
    """Whether the server could have issued this: unpadded base64url of `<micros>|<uuid>`."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        return False
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        micros, user_id = text.split("|")
        int(micros)
        uuid.UUID(user_id)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _unissued_cursor_refused(case, problem) -> bool:
    cursor = (case.query or {}).get("cursor")
    return (
        case.operation.label == "GET /v1/users"
        and problem.get("status") == 400
        and problem.get("code") == "invalid_query"
        and "cursor" in problem.get("detail", "")
        and isinstance(cursor, str)
        and not _is_issued_cursor(cursor)
    )


# 3. `PATCH /v1/me` needs `current_password` when `email` changes the address, and answers 422
# with exactly one error, `current_password` `required`, when it is missing (documented in the
# operation's 422). Whether the address changes depends on the account's current email, which
# no request schema can know (and OpenAPI 3.0 has no `dependentRequired` either), so that one
# answer to a body with an `email` but no `current_password` is dropped.
def _email_change_without_password_refused(case, problem) -> bool:
    body = case.body if isinstance(case.body, dict) else {}
    return (
        case.operation.label == "PATCH /v1/me"
        and problem.get("status") == 422
        and problem.get("errors")
        == [
            {
                "field": "current_password",
                "code": "required",
                "message": "is required to change the email",
            }
        ]
        and "email" in body
        and "current_password" not in body
    )


# 4. `POST /v1/auth/password/reset`, `POST /v1/auth/email/verify` and
# `POST /v1/auth/email/confirm-change` take only a token the server mailed; any other string is
# answered 400 `invalid_reset_token` / `invalid_verification_token` /
# `invalid_email_change_token`, as the contract documents. Like issued cursors, the set of mailed tokens has no schema, so
# positive_data_acceptance's complaint about exactly that answer is dropped.
MAILED_TOKEN_CODES = {
    "POST /v1/auth/password/reset": "invalid_reset_token",
    "POST /v1/auth/email/verify": "invalid_verification_token",
    "POST /v1/auth/email/confirm-change": "invalid_email_change_token",
}


def _unmailed_token_refused(case, problem) -> bool:
    code = MAILED_TOKEN_CODES.get(case.operation.label)
    return code is not None and problem.get("status") == 400 and problem.get("code") == code


# 5. `POST /v1/auth/refresh` takes the refresh token from the body, or in refresh-cookie mode
# (`LATCHKEY_REFRESH_COOKIE=true`) from the `latchkey_refresh` cookie instead, so `refresh_token`
# is optional in the schema; when neither carries one the answer is 422 with exactly one error,
# `refresh_token` `required`, as RefreshRequest documents. Which of the two is needed depends on
# the server's mode (this run uses body mode), which no request schema can know, so that one
# answer to a body without `refresh_token` is dropped. The body itself is optional for the same
# reason, and an omitted one is read as `{}`: `case.body` is then not a dict, and counts as `{}`.
def _refresh_without_token_refused(case, problem) -> bool:
    body = case.body if isinstance(case.body, dict) else {}
    errors = problem.get("errors") or []
    return (
        case.operation.label == "POST /v1/auth/refresh"
        and problem.get("status") == 422
        and [(e.get("field"), e.get("code")) for e in errors] == [("refresh_token", "required")]
        and "refresh_token" not in body
    )


# 6. The second factor's routes answer by the account's state, which no schema can know: this
# run's admin has no second factor (it never learns a secret's code), so step-up, confirming
# without a pending enrollment, regenerating recovery codes, turning it off and an admin's reset
# of a user without one answer `409` `mfa_conflict`, as the contract documents. And a
# `MfaFactorRequest` needs exactly one of `code` and `recovery_code` (JSON Schema's `oneOf` over
# `required` would say so, but the SDK generators turn it into nonsense): neither or both is 422
# with exactly one error, `code` `required`.
MFA_OPERATIONS = {
    "POST /v1/auth/mfa/verify",
    "POST /v1/auth/mfa/step-up",
    "POST /v1/me/mfa/totp",
    "DELETE /v1/me/mfa/totp",
    "POST /v1/me/mfa/totp/confirm",
    "POST /v1/me/mfa/recovery-codes",
    "DELETE /v1/users/{id}/mfa",
}


def _second_factor_state_refused(case, problem) -> bool:
    if case.operation.label not in MFA_OPERATIONS:
        return False
    if problem.get("status") == 409 and problem.get("code") == "mfa_conflict":
        return True
    body = case.body if isinstance(case.body, dict) else {}
    errors = problem.get("errors") or []
    return (
        problem.get("status") == 422
        and [(e.get("field"), e.get("code")) for e in errors] == [("code", "required")]
        and ("code" in body) == ("recovery_code" in body)
    )


DROPPED: collections.Counter = collections.Counter()


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure except positive_data_acceptance's for rules 2 to 6 above."""
    if "positive_data_acceptance" not in getattr(failure, "checks", ()):
        return True
    try:
        problem = response.json()
    except ValueError:
        return True
    if not isinstance(problem, dict):
        return True
    for rule in (
        _unissued_cursor_refused,
        _email_change_without_password_refused,
        _unmailed_token_refused,
        _refresh_without_token_refused,
        _second_factor_state_refused,
    ):
        if rule(case, problem):
            DROPPED[rule.__name__.strip("_")] += 1
            return False
    return True


@atexit.register
def _report() -> None:
    dropped = ", ".join(f"{count} {rule}" for rule, count in sorted(DROPPED.items())) or "none"
    spares = f"; {ADMINS.spares} new admin(s) made" if ADMINS.spares else ""
    print(f"contract_hooks: failures dropped, by rule: {dropped}{spares}", file=sys.stderr)

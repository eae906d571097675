"""Who is calling: passwords, access tokens, the current principal and role checks.

Access tokens are short-lived HS256 JWTs (``iss``, ``aud``, ``exp``, ``iat``, ``nbf``,
``sub``, ``jti``, ``role``, ``ep``) with a ``kid`` header so the secret can be rotated;
the algorithm is pinned on decode. Each request re-reads the subject's row, so a
deactivated account or a revoked session (``auth_epoch`` bumped) stops at once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar, cast

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, request
from flask_smorest import Blueprint as SmorestBlueprint
from marshmallow import Schema
from sqlalchemy import Row, Table, bindparam, select

from api.clock import utcnow
from api.errors import Forbidden, Unauthorized
from api.extensions import db
from api.models import Participant, StaffUser
from api.models.base import INTEGER_MAX
from api.parsing import DiaryParser
from api.view_roles import admit

# A participant's row by Core, with the columns the session check and the diary rules
# read (`ParticipantFacts`) and no more: a diary submit (most participant requests) needs
# nothing else and no ORM object; the routes that do load it (`Principal.participant`).
_PARTICIPANTS = cast(Table, Participant.__table__)
_PRINCIPAL_COLUMNS = ("id", "site_id", "auth_epoch", "status", "timezone", "enrolled_on")
_PARTICIPANT_BY_ID = select(*(_PARTICIPANTS.c[n] for n in _PRINCIPAL_COLUMNS)).where(
    _PARTICIPANTS.c.id == bindparam("id")
)

ALGORITHM = "HS256"
STAFF_ROLES = ("coordinator", "monitor", "admin")
ALL_STAFF = STAFF_ROLES
PARTICIPANT = "participant"
SECURITY_SCHEME = "bearerAuth"

_password_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so both paths cost one KDF run.
_DUMMY_HASH = _password_hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash or _DUMMY_HASH, password) and bool(
            password_hash
        )
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other argon2 parameters than today's."""
    try:
        return _password_hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def hash_secret(value: str) -> str:
    """SHA-256 of a high-entropy random secret (refresh token, activation code).

    A fast hash is right here: the secrets are random, not chosen by people, so a KDF
    adds nothing, and lookups by hash must be an index hit.
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    kind: str  # "staff" | "participant"
    id: int
    role: str
    # Site ids the caller may see; None means every site (monitor, admin).
    site_ids: frozenset[int] | None
    staff: StaffUser | None = None
    # A participant's facts as read for this request's session check (_PRINCIPAL_COLUMNS).
    participant_row: Row[Any] | None = None

    @functools.cached_property
    def participant(self) -> Participant | None:
        """The calling participant as an ORM object in this request's session, loaded on
        first use (the session's own if it has one): the routes that change or walk the
        participant use it, while a diary submit reads `participant_row` alone."""
        if self.participant_row is None:
            return None
        return db.session.get(Participant, self.id)

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    def may_see_site(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids

    def audit_actor(self) -> tuple[str, int]:
        return self.kind, self.id


def principal_for_staff(staff: StaffUser) -> Principal:
    site_ids = frozenset(s.id for s in staff.sites) if staff.role == "coordinator" else None
    return Principal("staff", staff.id, staff.role, site_ids, staff=staff)


def principal_for_participant(row: Row[Any]) -> Principal:
    """The principal of a participant, from their `participants` row."""
    return Principal(
        "participant", row.id, PARTICIPANT, frozenset({row.site_id}), participant_row=row
    )


def issue_access_token(kind: str, subject_id: int, role: str, epoch: int) -> tuple[str, int]:
    """Sign an access token; returns the token and its lifetime in seconds."""
    config = current_app.config
    now = utcnow()
    ttl = config["ACCESS_TOKEN_TTL"]
    claims = {
        "iss": config["JWT_ISSUER"],
        "aud": config["JWT_AUDIENCE"],
        "sub": f"{kind}:{subject_id}",
        "role": role,
        "ep": epoch,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(
        claims, config["JWT_SECRET"], algorithm=ALGORITHM, headers={"kid": config["JWT_KEY_ID"]}
    )
    return token, int(ttl.total_seconds())


def _unverified_kid(token: str) -> str | None:
    """The `kid` of the token's header, read from that segment alone.

    Only picks the key: `jwt.decode` then checks the whole token against it. Reading just
    the header (not PyJWT's full parse of every segment) saves a second pass over the token.
    """
    segment = token.partition(".")[0].encode("ascii", "replace")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:
        # RecursionError: a header nested past the recursion limit is malformed too.
        raise Unauthorized("The access token is malformed.", error="invalid_token") from exc
    if not isinstance(header, dict) or not isinstance(header.get("kid", ""), str):
        raise Unauthorized("The access token is malformed.", error="invalid_token")
    kid: str | None = header.get("kid")
    return kid


def _signing_key_for(token: str) -> str:
    config = current_app.config
    kid = _unverified_kid(token)
    if kid == config["JWT_KEY_ID"]:
        return str(config["JWT_SECRET"])
    previous: dict[str, str] = config["JWT_PREVIOUS_KEYS"]
    if kid in previous:
        return previous[kid]
    raise Unauthorized("The access token was signed with an unknown key.", error="invalid_token")


def decode_access_token(token: str) -> dict[str, Any]:
    """Verify signature (pinned algorithm), issuer and audience; time checks use our clock."""
    config = current_app.config
    key = _signing_key_for(token)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=config["JWT_AUDIENCE"],
            issuer=config["JWT_ISSUER"],
            options={
                "require": ["exp", "iat", "nbf", "sub", "aud", "iss", "jti"],
                # Checked below against the service clock, which tests can move.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("The access token is invalid.", error="invalid_token") from exc
    now = utcnow().timestamp()
    try:
        expires, not_before = float(claims["exp"]), float(claims["nbf"])
    except (TypeError, ValueError) as exc:
        raise Unauthorized("The access token is invalid.", error="invalid_token") from exc
    if now >= expires:
        raise Unauthorized("The access token has expired.", error="token_expired")
    if now < not_before:
        raise Unauthorized("The access token is not valid yet.", error="invalid_token")
    return claims


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer access token is required.", error="missing_token")
    return token.strip()


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    kind, _, raw_id = str(claims.get("sub", "")).partition(":")
    # ASCII digits of a database integer only: "٣" or a 20-digit id never reach a query.
    digits = raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 10
    if not (digits and 0 < int(raw_id) <= INTEGER_MAX):
        raise Unauthorized("The access token is invalid.", error="invalid_token")
    subject_id = int(raw_id)
    if kind == "staff":
        staff = db.session.get(StaffUser, subject_id)
        if staff is None or not staff.is_active or staff.auth_epoch != claims.get("ep"):
            raise Unauthorized("The session is no longer valid.", error="session_revoked")
        return principal_for_staff(staff)
    if kind == "participant":
        row = db.session.connection().execute(_PARTICIPANT_BY_ID, {"id": subject_id}).first()
        if row is None or row.auth_epoch != claims.get("ep"):
            raise Unauthorized("The session is no longer valid.", error="session_revoked")
        return principal_for_participant(row)
    raise Unauthorized("The access token is invalid.", error="invalid_token")


def current_principal() -> Principal:
    """The authenticated caller of this request (decoded once, then cached on `g`)."""
    principal: Principal | None = g.get("principal")
    if principal is None:
        principal = _principal_from_claims(decode_access_token(_bearer_token()))
        g.principal = principal
    return principal


def require_roles(roles: Iterable[str], *, during_password_change: bool = False) -> Principal:
    """The caller, if its role is one of `roles`.

    A staff member whose password an admin reset (`must_change_password`) may use their
    token only where `during_password_change` is set (the own-password route): everything
    else answers 403 ``password_change_required``.
    """
    principal = current_principal()
    if principal.role not in roles:
        raise Forbidden("Your role may not do this.", error="forbidden_role")
    staff = principal.staff
    if staff is not None and staff.must_change_password and not during_password_change:
        raise Forbidden(
            "Change your password first (POST /api/v1/auth/staff/password).",
            error="password_change_required",
        )
    return principal


_F = TypeVar("_F", bound=Callable[..., Any])


def _documentation_only(decorator: Callable[[_F], _F]) -> Callable[[_F], _F]:
    """A flask-smorest decorator that only documents, without its pass-through layer.

    `doc` and `alt_response` wrap the view in a function that just calls it (through
    `ensure_sync`), to carry a copy of the view's `_apidoc` with their part added. A
    diary submit passes five of them on every request. The view itself can carry that
    copy: each view function is decorated in one place only, and the copy is a new dict,
    so nothing another decorator holds is changed. The OpenAPI document is the same.
    """

    def document(func: _F) -> _F:
        documented = decorator(func)
        func._apidoc = documented._apidoc  # type: ignore[attr-defined]
        return func

    return document


class Blueprint(SmorestBlueprint):
    """A flask-smorest Blueprint whose `auth` decorator checks roles and documents it."""

    ARGUMENTS_PARSER = DiaryParser()

    @staticmethod
    def doc(**kwargs: Any) -> Callable[[_F], _F]:
        """flask-smorest's `doc`, adding no layer to the view (`_documentation_only`)."""
        return _documentation_only(SmorestBlueprint.doc(**kwargs))

    def alt_response(
        self, status_code: int | str | HTTPStatus, response: str | None = None, **kwargs: Any
    ) -> Callable[[_F], _F]:
        """flask-smorest's `alt_response`, adding no layer to the view."""
        return _documentation_only(super().alt_response(status_code, response, **kwargs))

    def arguments(self, schema: type[Schema] | Schema, **kwargs: Any) -> Callable[[_F], _F]:
        """flask-smorest's `arguments`, with a schema class made into an instance once.

        webargs makes a new instance of a schema class for every request it parses (a
        deep copy of every declared field: a fifth of a diary submit's parsing). The
        schemas here hold no request state, so one instance serves every request, and the
        OpenAPI document is the same for the instance as for its class.
        """
        instance = schema() if isinstance(schema, type) else schema
        return super().arguments(instance, **kwargs)

    def auth(
        self, *roles: str, during_password_change: bool = False
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Require a bearer token whose role is one of `roles` (401 without, 403 wrong role)."""
        allowed = tuple(roles)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                require_roles(allowed, during_password_change=during_password_change)
                return func(*args, **kwargs)

            admit(wrapper, allowed)
            documented = self.doc(security=[{SECURITY_SCHEME: []}])(wrapper)
            documented = self.alt_response(401, response="UNAUTHORIZED")(documented)
            return self.alt_response(403, response="FORBIDDEN")(documented)

        return decorator

    def public(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Mark an endpoint as open to anyone (documented with no security)."""
        return self.doc(security=[])(admit(func, ("anyone",)))


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)

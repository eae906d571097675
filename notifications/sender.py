"""Sending reminder messages: through FCM (`FcmSender`) or, without credentials, to the log.

Both take a list of `Outgoing` messages and return one `Outcome` per message, in order;
the worker decides from the outcomes what becomes of each reminder.
"""

from __future__ import annotations

import email.utils
import itertools
import logging
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAX_BATCH = 500  # firebase-admin's limit for one send_each call
# FCM outcomes: the token is dead (deactivate it) / try again later / give up.
DEACTIVATING = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
TRANSIENT = frozenset(
    {
        "QUOTA_EXCEEDED",
        "UNAVAILABLE",
        "INTERNAL",
        "TIMEOUT",
        "UNAUTHENTICATED",  # our credentials: an operator can fix them before expiry
        "UNKNOWN",  # the whole batch failed (e.g. the token exchange): nothing was sent
    }
)
_CANONICAL = {
    "RESOURCE_EXHAUSTED": "QUOTA_EXCEEDED",
    "DEADLINE_EXCEEDED": "TIMEOUT",
    "NOT_FOUND": "UNREGISTERED",  # FCM answers 404 only for unregistered tokens
}
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


@dataclass(frozen=True)
class Outgoing:
    """One message for one device of one reminder."""

    reminder_id: int
    device_id: int
    token: str
    platform: str
    kind: str
    locale: str
    title: str
    body: str
    target_date: str
    expires_at: datetime
    # Every reminder this one message speaks for (a bundle); empty: `reminder_id` alone.
    reminder_ids: tuple[int, ...] = ()

    @property
    def covers(self) -> tuple[int, ...]:
        return self.reminder_ids or (self.reminder_id,)


@dataclass(frozen=True)
class Outcome:
    message_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.message_id is not None

    @property
    def deactivates_token(self) -> bool:
        return self.error_code in DEACTIVATING

    @property
    def transient(self) -> bool:
        return self.error_code in TRANSIENT


class Sender(Protocol):
    dry_run: bool

    def send(self, messages: list[Outgoing], now: datetime) -> list[Outcome]: ...


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    it = iter(items)
    return [list(chunk) for chunk in iter(lambda: list(itertools.islice(it, size)), [])]


# --- the log-only sender (no Firebase project) ---------------------------------------------


class LoggingSender:
    """Records and logs what would be sent: the worker runs on a fresh machine."""

    dry_run = True

    def send(self, messages: list[Outgoing], now: datetime) -> list[Outcome]:
        outcomes = []
        for m in messages:
            log.info(
                "reminder %s (%s) sent to device %s (%s, %s) [no FCM credentials: logged only]: "
                "%s | %s",
                ",".join(str(i) for i in m.covers),
                m.kind,
                m.device_id,
                m.platform,
                m.locale,
                m.title,
                m.body,
            )
            outcomes.append(Outcome(message_id=f"dry-run/{m.reminder_id}/{m.device_id}"))
        return outcomes


# --- FCM through firebase-admin -------------------------------------------------------------


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _fcm_error_code(exc: Exception) -> str | None:
    response = getattr(exc, "http_response", None)
    if response is None:
        return None
    try:
        details = response.json().get("error", {}).get("details", [])
    except (ValueError, AttributeError):
        return None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("@type") == _FCM_ERROR_TYPE:
            return detail.get("errorCode")
    return None


def outcome_of_error(exc: Exception, now: datetime) -> Outcome:
    """Turn a firebase-admin exception into our outcome: FCM's own error code first."""
    from firebase_admin import exceptions

    code = _fcm_error_code(exc)
    if code is None:
        if isinstance(exc, exceptions.DeadlineExceededError):
            code = "TIMEOUT"
        elif isinstance(exc, exceptions.FirebaseError):
            code = _CANONICAL.get(exc.code, exc.code)
        else:
            code = "UNKNOWN"
    response = getattr(exc, "http_response", None)
    retry_after = None
    if response is not None:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), now)
    return Outcome(error_code=str(code), error=str(exc)[:1000], retry_after=retry_after)


def to_fcm_message(m: Outgoing, now: datetime) -> Any:
    """The FCM message: notification text, data payload, and a collapse key per reminder
    (a bundle's is its smallest reminder id, the same on every retry)."""

    collapse = str(m.reminder_id)
    ttl = max(1, int((m.expires_at - now).total_seconds()))
    # The phones register FCM registration tokens (the contract's `token`), which FCM v1
    # takes as `message.token`; firebase-admin 7.7 warns, steering towards installation ids.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _message(m, collapse, ttl)


def _message(m: Outgoing, collapse: str, ttl: int) -> Any:
    from firebase_admin import messaging

    data = {"reminder_id": collapse, "kind": m.kind, "target_date": m.target_date}
    if len(m.covers) > 1:
        data["reminder_ids"] = ",".join(str(i) for i in m.covers)
    return messaging.Message(
        token=m.token,
        notification=messaging.Notification(title=m.title, body=m.body),
        data=data,
        android=messaging.AndroidConfig(collapse_key=collapse, priority="high", ttl=ttl),
        apns=messaging.APNSConfig(
            headers={
                "apns-collapse-id": collapse,
                "apns-expiration": str(int(m.expires_at.timestamp())),
            }
        ),
    )


class FcmSender:
    """`firebase_admin.messaging.send_each`, at most `batch_size` (≤ 500) messages a call."""

    dry_run = False

    def __init__(self, app: Any, batch_size: int = MAX_BATCH) -> None:
        self.app = app
        self.batch_size = max(1, min(MAX_BATCH, batch_size))

    def send(self, messages: list[Outgoing], now: datetime) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for chunk in _chunks(messages, self.batch_size):
            outcomes.extend(self._send_chunk(chunk, now))
        return outcomes

    def _send_chunk(self, chunk: list[Outgoing], now: datetime) -> list[Outcome]:
        from firebase_admin import messaging

        try:
            fcm_messages = [to_fcm_message(m, now) for m in chunk]
            batch = messaging.send_each(fcm_messages, app=self.app)
        except ValueError as exc:
            # One malformed message must not sink its neighbours: send them one by one.
            if len(chunk) > 1:
                return [o for m in chunk for o in self._send_chunk([m], now)]
            return [Outcome(error_code="INVALID_ARGUMENT", error=str(exc)[:1000])]
        except Exception as exc:  # the SDK wraps a batch-wide failure (e.g. token exchange)
            log.warning("FCM batch of %d failed: %s", len(chunk), exc)
            return [outcome_of_error(exc, now)] * len(chunk)
        return [
            Outcome(message_id=r.message_id) if r.success else outcome_of_error(r.exception, now)
            for r in batch.responses
        ]


def sender_from_config(config: dict[str, Any]) -> Sender:
    """FCM when credentials are configured; otherwise the logging sender."""
    path = config.get("FCM_CREDENTIALS")
    if not path:
        log.info("no FCM credentials configured: reminders are logged, not sent")
        return LoggingSender()
    import firebase_admin
    from firebase_admin import credentials

    from notifications.fcm_endpoint import point_messaging_at

    options: dict[str, Any] = {"httpTimeout": config.get("FCM_TIMEOUT_SECONDS", 10)}
    if config.get("FCM_PROJECT_ID"):
        options["projectId"] = config["FCM_PROJECT_ID"]
    app = firebase_admin.initialize_app(
        credentials.Certificate(path), options, name=f"reminders-{uuid.uuid4().hex[:8]}"
    )
    url = point_messaging_at(app, config.get("FCM_ENDPOINT"))
    log.info("sending reminders through FCM at %s", url)
    return FcmSender(app, config.get("FCM_BATCH_SIZE", MAX_BATCH))

"""Staff sign-in limits that slow an attacker down without locking the owner out.

Three counters of failed sign-ins, shared by every way staff sign in (the API's login
route and the web console call the same functions, so the limits are the same):

- per (account, client address), `LOGIN_RATE_LIMIT` (5 per 15 min): the attacker's own
  client stops guessing one account; the owner elsewhere is untouched;
- per client address, `LOGIN_CLIENT_RATE_LIMIT` (30 per 15 min): one client stops
  guessing many accounts;
- per account, from any client: after `LOGIN_ACCOUNT_BACKOFF_AFTER` failures (10) each
  further attempt must wait 1 s, 2 s, 4 s … up to `LOGIN_ACCOUNT_MAX_DELAY_SECONDS` (300)
  after the previous failure. It only delays: once the wait has passed, the right
  password signs in (and resets the count). The count is forgotten an hour after the
  last failure. A client address the account signed in from in the last 30 days skips
  this delay (its own per-(account, client) limit still holds), so an attacker who keeps
  an account at its longest delay from many addresses still cannot hold its owner out.

A refused attempt is not verified and not counted. Decisions use the service clock
(`api.clock.utcnow`), so tests move time instead of waiting; the counts live in the
storage named by `RATELIMIT_STORAGE_URI`: `memory://` (one process) or Redis
(`redis://…`, shared by every worker and machine). E-mail addresses and client addresses
are stored only as hashes.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from flask import Flask, current_app
from limits import parse

from api.clock import utcnow
from api.config import ConfigError
from api.errors import DomainError, TooManyAttempts, Unauthorized
from api.settings import settings

T = TypeVar("T")

ACCOUNT_MEMORY_SECONDS = 3600  # the per-account count is forgotten this long after a failure
KNOWN_CLIENT_SECONDS = 30 * 86400  # a client that signed in to an account stays known so long
EXTENSION = "login_throttle"
_PREFIX = "login-throttle:"
# Only a wrong e-mail or password counts: other refusals (a disabled account's own
# rules, a password that must be changed) are not guesses.
COUNTED_ERRORS = frozenset({"invalid_credentials"})


class _Store(Protocol):
    def get(self, key: str) -> str | None: ...

    def update(self, key: str, change: Callable[[str | None], str], ttl: int) -> None: ...

    def delete(self, *keys: str) -> None: ...

    def clear(self) -> None: ...


class MemoryStore:
    """Counts of one process (the default): enough for one server process only."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._data.get(key)
            return item[0] if item and item[1] > time.monotonic() else None

    def update(self, key: str, change: Callable[[str | None], str], ttl: int) -> None:
        with self._lock:
            now = time.monotonic()
            item = self._data.get(key)
            current = item[0] if item and item[1] > now else None
            self._data[key] = (change(current), now + ttl)
            if len(self._data) > 100_000:  # an address sweep: drop what has expired
                self._data = {k: v for k, v in self._data.items() if v[1] > now}

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class RedisStore:
    """Counts shared by every process that names the same Redis database."""

    def __init__(self, url: str) -> None:
        import redis

        self._errors = redis.RedisError
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def _call(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except self._errors as exc:
            raise DomainError(
                "Sign-in is unavailable for a moment; retry shortly.",
                status_code=503,
                error="service_unavailable",
            ) from exc

    def get(self, key: str) -> str | None:
        value = self._call(lambda: self._redis.get(key))
        return value.decode() if isinstance(value, bytes) else None

    def update(self, key: str, change: Callable[[str | None], str], ttl: int) -> None:
        def transaction(pipe: Any) -> None:
            raw = pipe.get(key)
            new = change(raw.decode() if raw else None)
            pipe.multi()
            pipe.set(key, new, ex=ttl)

        # WATCH/MULTI: a concurrent change of the key makes redis-py run it again.
        self._call(lambda: self._redis.transaction(transaction, key))

    def delete(self, *keys: str) -> None:
        self._call(lambda: self._redis.delete(*keys))

    def clear(self) -> None:
        keys = list(self._call(lambda: list(self._redis.scan_iter(match=_PREFIX + "*"))))
        if keys:
            self.delete(*keys)


def make_store(uri: str) -> _Store:
    if uri.startswith("memory://"):
        return MemoryStore()
    if uri.startswith(("redis://", "rediss://", "unix://", "redis+unix://")):
        return RedisStore(uri.replace("redis+unix://", "unix://", 1))
    raise ConfigError(
        f"RATELIMIT_STORAGE_URI {uri!r} is not supported: use memory:// (one process) or "
        "redis://host:port/db (several processes)"
    )


def init_app(app: Flask) -> None:
    """Bind the storage named by RATELIMIT_STORAGE_URI and check the limits parse."""
    for name in ("LOGIN_RATE_LIMIT", "LOGIN_CLIENT_RATE_LIMIT"):
        try:
            parse(app.config[name])
        except ValueError as exc:
            raise ConfigError(f"{name} must look like '5 per 15 minutes': {exc}") from exc
    app.extensions[EXTENSION] = make_store(app.config["RATELIMIT_STORAGE_URI"])


def reset(app: Flask) -> None:
    """Forget every count (tests; an operator unblocking everyone at once)."""
    app.extensions[EXTENSION].clear()


@dataclass(frozen=True)
class _Count:
    """`n` failures; `at` is the window's start (windows) or the last failure (account)."""

    n: int
    at: float

    @classmethod
    def load(cls, raw: str | None) -> _Count | None:
        if not raw:
            return None
        n, _, at = raw.partition(":")
        return cls(int(n), float(at))

    def dump(self) -> str:
        return f"{self.n}:{self.at}"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def _keys(email: str, client_address: str | None) -> tuple[str, str, str]:
    account = _digest(email.strip().lower())
    client = _digest(client_address or "unknown")
    return (
        f"{_PREFIX}pair:{account}:{client}",
        f"{_PREFIX}client:{client}",
        f"{_PREFIX}account:{account}",
    )


def _known_key(email: str, client_address: str | None) -> str:
    return f"{_PREFIX}known:{_digest(email.strip().lower())}:{_digest(client_address or '')}"


def _store() -> _Store:
    store: _Store = current_app.extensions[EXTENSION]
    return store


def _window(limit: str) -> tuple[int, int]:
    item = parse(limit)
    return item.amount, int(item.get_expiry())


def account_delay(failures: int) -> int:
    """Seconds the account waits after its `failures`-th failure (0 below the threshold)."""
    after = settings().login_account_backoff_after
    if failures < after:
        return 0
    ceiling = settings().login_account_max_delay_seconds
    return int(min(2 ** min(failures - after, 30), ceiling))


def _window_wait(count: _Count | None, limit: str, now: float) -> float:
    amount, seconds = _window(limit)
    if count is None or now >= count.at + seconds or count.n < amount:
        return 0.0
    return count.at + seconds - now


def _account_wait(count: _Count | None, now: float) -> float:
    if count is None or now - count.at >= ACCOUNT_MEMORY_SECONDS:
        return 0.0
    return max(0.0, count.at + account_delay(count.n) - now)


def seconds_to_wait(email: str, client_address: str | None) -> int:
    """How long this account may not be tried from this client (0: go ahead)."""
    pair_key, client_key, account_key = _keys(email, client_address)
    store, now, limits = _store(), utcnow().timestamp(), settings()
    waits = (
        _window_wait(_Count.load(store.get(pair_key)), limits.login_rate_limit, now),
        _window_wait(_Count.load(store.get(client_key)), limits.login_client_rate_limit, now),
        0.0
        if store.get(_known_key(email, client_address))
        else _account_wait(_Count.load(store.get(account_key)), now),
    )
    return math.ceil(max(waits))


def check(email: str, client_address: str | None) -> None:
    """Raise TooManyAttempts (429, with retry_after) if this attempt must wait."""
    wait = seconds_to_wait(email, client_address)
    if wait > 0:
        raise TooManyAttempts(
            f"Too many failed sign-ins; try again in {wait} seconds.", retry_after=wait
        )


def record_failure(email: str, client_address: str | None) -> None:
    """Count a wrong e-mail or password (known and unknown accounts alike)."""
    pair_key, client_key, account_key = _keys(email, client_address)
    store, now, limits = _store(), utcnow().timestamp(), settings()
    windows = ((pair_key, limits.login_rate_limit), (client_key, limits.login_client_rate_limit))
    for key, limit in windows:
        seconds = _window(limit)[1]

        def add_to_window(raw: str | None, seconds: int = seconds) -> str:
            count = _Count.load(raw)
            if count is None or now >= count.at + seconds:
                return _Count(1, now).dump()
            return _Count(count.n + 1, count.at).dump()

        store.update(key, add_to_window, ttl=seconds + 60)

    def add_to_account(raw: str | None) -> str:
        count = _Count.load(raw)
        if count is None or now - count.at >= ACCOUNT_MEMORY_SECONDS:
            return _Count(1, now).dump()
        return _Count(count.n + 1, now).dump()

    ceiling = limits.login_account_max_delay_seconds
    store.update(account_key, add_to_account, ttl=ACCOUNT_MEMORY_SECONDS + ceiling)


def record_success(email: str, client_address: str | None) -> None:
    """The owner got in: clear this account's counts (not the client's: an attacker
    signing in to an account of their own must not reset their guessing budget)."""
    pair_key, _client_key, account_key = _keys(email, client_address)
    store = _store()
    store.delete(pair_key, account_key)
    store.update(_known_key(email, client_address), lambda _old: "1", ttl=KNOWN_CLIENT_SECONDS)


def guarded(email: str, client_address: str | None, sign_in: Callable[[], T]) -> T:
    """Run `sign_in` under the limits: check, then count its outcome."""
    check(email, client_address)
    try:
        result = sign_in()
    except Unauthorized as exc:
        if exc.error in COUNTED_ERRORS:
            record_failure(email, client_address)
        raise
    record_success(email, client_address)
    return result

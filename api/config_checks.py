"""Start-up checks of the configuration: the signing key, generated or given, never weak."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Any

MIN_JWT_SECRET_LENGTH = 32
# Where the embedded default keeps the secret it generates (relative to the instance folder).
JWT_SECRET_FILE = "jwt-secret"
# Values once published with the code: refused as signing keys in every environment.
PUBLISHED_JWT_SECRETS = frozenset({"dev-only-insecure-secret-change-me-0000000000"})
_HOW_TO_MAKE_A_SECRET = (
    "e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
)

# The logger keeps the name it had before this module was split out of `config`.
log = logging.getLogger("api.config")


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration cannot run safely."""


def ensure_jwt_secret(config: dict[str, Any], instance_path: str) -> None:
    """Fill in a missing JWT_SECRET outside production from a secret generated once.

    The secret is random, never leaves the machine and is reused at every start (so
    restarts keep sessions), which makes the embedded default safe to run as it is. In
    production a generated secret is refused: several machines would each make their own,
    and losing the file would sign everyone out, so the operator must choose one.
    """
    if config.get("JWT_SECRET"):
        return
    if config.get("APP_ENV") == "production":
        raise ConfigError(
            "APP_ENV=production needs JWT_SECRET: set it to a random value of at least "
            f"{MIN_JWT_SECRET_LENGTH} characters, shared by every server process, "
            + _HOW_TO_MAKE_A_SECRET
        )
    path = Path(instance_path) / JWT_SECRET_FILE
    config["JWT_SECRET"] = load_or_create_secret(path)
    log.info("JWT_SECRET not set: signing with the generated secret kept in %s", path)


def load_or_create_secret(path: Path) -> str:
    """Read the generated secret, or create it atomically (mode 0600) if it is not there.

    The new secret is written to a private temporary file and hard-linked into place, so
    a reader never sees a half-written file and, when several processes start at once,
    the first link wins and every process reads that one.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
            except OSError as exc:
                raise ConfigError(
                    f"cannot create {path} ({exc.strerror}); set JWT_SECRET instead"
                ) from exc
        finally:
            tmp.unlink(missing_ok=True)
    return _read_secret_file(path)


def _read_secret_file(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{path} may be read by other users (mode {mode:04o}): run `chmod 600 {path}` "
            "or set JWT_SECRET"
        )
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < MIN_JWT_SECRET_LENGTH:
        raise ConfigError(
            f"{path} holds no usable secret (shorter than {MIN_JWT_SECRET_LENGTH} "
            "characters): delete it to have a new one generated, or set JWT_SECRET"
        )
    return secret


def check_production_safety(config: dict[str, Any]) -> None:
    """Refuse to start with a missing, published or short signing key, in any environment.

    Only production needs the key to be given (see ensure_jwt_secret); a weak key is
    refused everywhere, because a token it signs is accepted wherever the key is.
    """
    secret = config.get("JWT_SECRET") or ""
    if not secret:
        raise ConfigError(
            "JWT_SECRET is missing: set it to a random value of at least "
            f"{MIN_JWT_SECRET_LENGTH} characters, " + _HOW_TO_MAKE_A_SECRET
        )
    _check_key("JWT_SECRET", secret)
    for kid, previous in (config.get("JWT_PREVIOUS_KEYS") or {}).items():
        _check_key(f"JWT_PREVIOUS_KEYS (key {kid!r})", previous)
    if int(config.get("TRUSTED_PROXY_COUNT") or 0) < 0:
        raise ConfigError("TRUSTED_PROXY_COUNT must be 0 or the number of proxies in front")


def _check_key(name: str, secret: str) -> None:
    if secret in PUBLISHED_JWT_SECRETS:
        raise ConfigError(
            f"{name} is a value published with the source code and is refused: set a new "
            "random one, " + _HOW_TO_MAKE_A_SECRET
        )
    if len(secret) < MIN_JWT_SECRET_LENGTH:
        raise ConfigError(
            f"{name} is shorter than {MIN_JWT_SECRET_LENGTH} characters: set a long random "
            "value, " + _HOW_TO_MAKE_A_SECRET
        )

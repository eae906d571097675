"""Refuse every network connection outside the loopback: the tests talk to nothing else.

`install()` patches `socket.connect`/`connect_ex` and `getaddrinfo`; an attempt to reach
another address raises `OutboundBlocked` and is recorded in `attempts`. Subprocesses get
the same guard through `sitecustomize` (see `tests/guarded_site/`). `tests/conftest.py`
installs it for the whole run and fails any test that made an attempt.

Kept rather than replaced by pytest-socket, whose `--allow-hosts` mode does less than the
suite needs: it patches `connect` only (not `connect_ex`, not name lookups, so a DNS
query still leaves the machine); it lifts the guard for each test's teardown and between
tests; it raises `RuntimeError`, which the HTTP clients under test (requests,
firebase-admin's retries) do not take for a failed connection; and it keeps no record of
attempts, so one that library code catches and swallows goes unseen. Nor can it guard the
worker and gunicorn subprocesses, which load this module through `sitecustomize`.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

attempts: list[str] = []
_ORIGINAL: dict[str, Any] = {}
LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class OutboundBlocked(OSError):
    pass


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host)
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(address: Any, family: int) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_local(host):
        attempts.append(str(address))
        raise OutboundBlocked(f"socket guard: connection to {address!r} refused (loopback only)")


def install() -> None:
    if _ORIGINAL:
        return
    _ORIGINAL["connect"] = socket.socket.connect
    _ORIGINAL["connect_ex"] = socket.socket.connect_ex
    _ORIGINAL["getaddrinfo"] = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        _check(address, self.family)
        return _ORIGINAL["connect"](self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        _check(address, self.family)
        return _ORIGINAL["connect_ex"](self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local(host):
            attempts.append(str(host))
            raise OutboundBlocked(f"socket guard: name lookup of {host!r} refused (loopback only)")
        return _ORIGINAL["getaddrinfo"](host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


def uninstall() -> None:
    if not _ORIGINAL:
        return
    socket.socket.connect = _ORIGINAL.pop("connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = _ORIGINAL.pop("connect_ex")  # type: ignore[method-assign]
    socket.getaddrinfo = _ORIGINAL.pop("getaddrinfo")

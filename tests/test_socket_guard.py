"""The socket guard lets the tests reach the loopback and nothing else."""

from __future__ import annotations

import socket

import pytest

from tests import socket_guard
from tests.socket_guard import OutboundBlocked


def test_the_loopback_is_reachable_through_the_guard():
    assert "connect" in socket_guard._ORIGINAL, "the run installs the guard"
    assert socket.socket.connect is not socket_guard._ORIGINAL["connect"]
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        with socket.create_connection(("localhost", port), timeout=5):
            pass
    assert socket_guard.attempts == []


def test_any_other_address_or_name_is_refused_and_recorded(monkeypatch):
    """Refused before the real call: the stand-ins below would see anything let through."""
    let_through: list[object] = []
    for name in ("connect", "connect_ex"):
        monkeypatch.setitem(socket_guard._ORIGINAL, name, lambda s, a: let_through.append(a))
    monkeypatch.setitem(
        socket_guard._ORIGINAL, "getaddrinfo", lambda *a, **k: let_through.append(a)
    )
    with socket.socket() as sock:
        with pytest.raises(OutboundBlocked):
            sock.connect(("192.0.2.1", 443))
        with pytest.raises(OutboundBlocked):
            sock.connect_ex(("2001:db8::1", 443, 0, 0))
    with pytest.raises(OutboundBlocked):
        socket.getaddrinfo("fcm.googleapis.com", 443)
    assert let_through == []
    assert socket_guard.attempts == [
        "('192.0.2.1', 443)",
        "('2001:db8::1', 443, 0, 0)",
        "fcm.googleapis.com",
    ]
    socket_guard.attempts.clear()  # seen: the run's own check would fail the test otherwise

"""A fake FCM v1 server on 127.0.0.1: the OAuth2 token exchange and ``messages:send``.

The real firebase-admin SDK talks to it (the service account's ``token_uri`` and
``FCM_ENDPOINT`` point here). Each registration token can be given a script of answers
(`script`); answers follow FCM v1, with ``google.rpc`` error bodies carrying
``type.googleapis.com/google.firebase.fcm.v1.FcmError`` details and ``Retry-After`` on 429.
Every message received is recorded.

An outage can be switched on and off: `go_down` answers every message 503 (with or
without ``Retry-After``, as a front end in trouble would, without FCM error details);
`refuse_connections` closes the listening socket and every open connection, so new ones
are refused; `come_back` ends either.

Run it on its own (benchmarks, manual tries): ``python -m tests.fake_fcm --port 18201``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROJECT = "fake-project"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
# behaviour → (HTTP status, google.rpc status, message)
ERRORS = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for sending messages."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
}


@dataclass
class Received:
    token: str
    reminder_id: str | None
    kind: str | None
    answer: str
    message: dict[str, Any]
    at: float
    covers: tuple[str, ...] = ()  # every reminder id of a bundled message

    @property
    def reminder_ids(self) -> tuple[str, ...]:
        return self.covers or ((self.reminder_id,) if self.reminder_id else ())


@dataclass
class FakeFcmState:
    retry_after: str = "7"
    delay: float = 0.0  # seconds to wait before answering each message
    record_bodies: bool = True
    scripts: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    token_exchanges: int = 0
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued_tokens: set[str] = field(default_factory=set)
    public_key: Any = None
    # While set, every message is answered 503 with this Retry-After ("" for none).
    outage_retry_after: str | None = None

    def answer_for(self, token: str) -> str:
        """The next scripted answer for `token` (the last one repeats); ``ok`` by default."""
        with self.lock:
            script = self.scripts.get(token)
            if not script:
                return "ok"
            return script.pop(0) if len(script) > 1 else script[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *_args: Any) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """``/stats``: what was received (for benchmarks running the fake in a process)."""
        if self.path != "/stats":
            self._send(
                404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}}
            )
            return
        state = self.server.state
        with state.lock:
            ok = Counter(r.reminder_id for r in state.received if r.answer == "ok")
            total = len(state.received)
        repeats = sum(n - 1 for n in ok.values())
        self._send(200, {"messages": total, "distinct_reminders": len(ok), "repeats": repeats})

    def do_DELETE(self) -> None:
        """``/stats``: forget what was received."""
        with self.server.state.lock:
            self.server.state.received.clear()
        self._send(200, {})

    def do_POST(self) -> None:
        state = self.server.state
        raw = self._body()
        if self.path == "/token":
            self._token(state, raw)
        elif self.path.startswith("/v1/projects/") and self.path.endswith("/messages:send"):
            self._message(state, raw)
        else:
            self._send(
                404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}}
            )

    def _token(self, state: FakeFcmState, raw: bytes) -> None:
        form = parse_qs(raw.decode())
        assertion = (form.get("assertion") or [""])[0]
        try:
            # The SDK signs a JWT with the service account's key; check it like Google would.
            jwt.decode(
                assertion, state.public_key, algorithms=["RS256"], options={"verify_aud": False}
            )
        except jwt.PyJWTError as exc:
            self._send(400, {"error": "invalid_grant", "error_description": str(exc)})
            return
        with state.lock:
            state.token_exchanges += 1
            access = f"fake-access-{state.token_exchanges}"
            state.issued_tokens.add(access)
        self._send(200, {"access_token": access, "expires_in": 3600, "token_type": "Bearer"})

    def _message(self, state: FakeFcmState, raw: bytes) -> None:
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in state.issued_tokens:
            self._send(
                401, _error_body(401, "UNAUTHENTICATED", "Request had invalid credentials.", None)
            )
            return
        message = json.loads(raw)["message"]
        token = message.get("token", "")
        outage = state.outage_retry_after
        answer = "OUTAGE" if outage is not None else state.answer_for(token)
        if state.delay:
            time.sleep(state.delay)
        data = message.get("data") or {}
        with state.lock:
            state.received.append(
                Received(
                    token,
                    data.get("reminder_id"),
                    data.get("kind"),
                    answer,
                    message if state.record_bodies else {},
                    time.monotonic(),
                    tuple(filter(None, data.get("reminder_ids", "").split(","))),
                )
            )
            number = next(state.counter)
        if answer == "ok":
            self._send(200, {"name": f"projects/{PROJECT}/messages/{number}"})
            return
        if answer == "slow":
            time.sleep(5)
            self._send(200, {"name": f"projects/{PROJECT}/messages/{number}"})
            return
        if answer == "OUTAGE":
            headers = {"Retry-After": outage} if outage else None
            self._send(503, _error_body(503, "UNAVAILABLE", "Service unavailable.", None), headers)
            return
        status, rpc_status, text = ERRORS[answer]
        headers = {"Retry-After": state.retry_after} if status == 429 else None
        self._send(status, _error_body(status, rpc_status, text, answer), headers)


def _error_body(status: int, rpc_status: str, message: str, fcm_code: str | None) -> dict:
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    if fcm_code:
        error["details"] = [{"@type": FCM_ERROR_TYPE, "errorCode": fcm_code}]
    return {"error": error}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    state: FakeFcmState

    def server_activate(self) -> None:
        super().server_activate()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a connection cut by `refuse_connections` is expected

    def drop_connections(self) -> None:
        with self.connections_lock:
            open_ones = list(self.connections)
        for conn in open_ones:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class FakeFcm:
    """The server and a service-account file whose token_uri points at it."""

    def __init__(self, port: int = 0, directory: Path | None = None) -> None:
        self.state = FakeFcmState()
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.state.public_key = self._key.public_key()
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.state = self.state
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._directory = directory
        self.refusing = False

    def start(self) -> FakeFcm:
        self._thread.start()
        return self

    def stop(self) -> None:
        if not self.refusing:
            self.server.shutdown()
            self.server.server_close()

    def go_down(self, retry_after: str | None = None) -> None:
        """Answer every message 503 (``Retry-After: retry_after`` when given)."""
        self.state.outage_retry_after = retry_after or ""

    def refuse_connections(self) -> None:
        """Close the listening socket and every open connection: connecting is refused."""
        if self.refusing:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server.drop_connections()
        self.refusing = True

    def come_back(self) -> None:
        """End the outage: answer normally, listening again on the same port if closed."""
        self.state.outage_retry_after = None
        if self.refusing:
            self.server = _Server(("127.0.0.1", self.port), _Handler)
            self.server.state = self.state
            self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
            self._thread.start()
            self.refusing = False

    def __enter__(self) -> FakeFcm:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def script(self, token: str, *answers: str) -> None:
        with self.state.lock:
            self.state.scripts[token] = list(answers)

    def write_service_account(self, path: Path, token_uri: str | None = None) -> Path:
        """A throwaway service account (fresh RSA key) whose token exchange comes here
        (or to `token_uri`, e.g. a proxy in front of this server)."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT,
                    "private_key_id": "fake-key-1",
                    "private_key": pem,
                    "client_email": f"sender@{PROJECT}.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": token_uri or f"{self.url}/token",
                }
            )
        )
        return path

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    def delivered(self) -> Counter:
        """How many messages were accepted, per reminder id (a bundle counts for each)."""
        return Counter(
            int(rid) for r in self.received if r.answer == "ok" for rid in r.reminder_ids
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service-account", type=Path, required=True)
    args = parser.parse_args()
    fake = FakeFcm(args.port)
    fake.state.record_bodies = False
    fake.write_service_account(args.service_account)
    print(f"fake FCM at {fake.url}; service account {args.service_account}", flush=True)
    fake.server.serve_forever()


if __name__ == "__main__":
    main()

"""A lean fake FCM for benchmarks: asyncio, keep-alive, a few microseconds per message.

Answers the OAuth2 token exchange (``POST /token``, any assertion) and
``POST /v1/projects/<p>/messages:send`` with success, counts messages per reminder id
(``GET /stats``; ``DELETE /stats`` resets) and nothing else. The tests' fake
(`tests/fake_fcm.py`) speaks every error; this one exists so the benchmark measures the
sender, not the server.

    python bench/fast_fake_fcm.py --port 18202 --service-account /tmp/sa.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path

COUNTS: Counter = Counter()
TOTAL = [0]


def _response(status: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


TOKEN = _response(
    "200 OK", b'{"access_token": "fake-access-1", "expires_in": 3600, "token_type": "Bearer"}'
)


def _answer(method: str, path: str, body: bytes) -> bytes:
    if method == "POST" and path.endswith("/messages:send"):
        TOTAL[0] += 1
        data = json.loads(body)["message"].get("data") or {}
        COUNTS[data.get("reminder_id")] += 1
        return _response("200 OK", f'{{"name": "projects/p/messages/{TOTAL[0]}"}}'.encode())
    if method == "POST" and path == "/token":
        return TOKEN
    if path == "/stats":
        if method == "DELETE":
            COUNTS.clear()
            TOTAL[0] = 0
        repeats = sum(n - 1 for n in COUNTS.values())
        stats = {"messages": TOTAL[0], "distinct_reminders": len(COUNTS), "repeats": repeats}
        return _response("200 OK", json.dumps(stats).encode())
    return _response("404 Not Found", b"{}")


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                if line[:15].lower() == "content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
            writer.write(_answer(method, path, body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def write_service_account(path: Path, port: int) -> None:
    """A throwaway service account (fresh key) whose token exchange comes here."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key_id": "bench-key",
        "private_key": pem,
        "client_email": "sender@fake-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"http://127.0.0.1:{port}/token",
    }
    path.write_text(json.dumps(account))


async def main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=512)
    print(f"fast fake FCM at http://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service-account", type=Path, required=True)
    args = parser.parse_args()
    write_service_account(args.service_account, args.port)
    asyncio.run(main(args.port))

"""The one place that reaches into firebase-admin's internals (pinned: firebase-admin==7.7.0).

firebase-admin has no public setting for the FCM address or for its HTTP retries. This
module sets both on the messaging service of one `firebase_admin.App`:

- the ``messages:send`` URL, so ``FCM_ENDPOINT`` (a staging proxy, or the fake FCM of the
  tests) replaces ``https://fcm.googleapis.com``;
- an HTTP adapter for that base with a connection pool as large as a `send_each` batch
  (500: the SDK sends each message of a batch from its own thread; its own pool of 100
  would open and discard hundreds of connections per batch) and with *no* retries on
  HTTP status: the SDK would otherwise sleep out 429 ``Retry-After`` and
  retry 500/503 four times inside `send_each`, holding the worker's lease. The worker
  retries instead, with back-off, until the reminder expires. A connection that could not
  be opened is still retried once (nothing was sent).

The OAuth2 token exchange goes to the service account's ``token_uri``, a public field of
the credentials file, so nothing here touches it.
"""

from __future__ import annotations

import firebase_admin
import requests.adapters
from firebase_admin import messaging
from urllib3.util.retry import Retry

PINNED_VERSION = "7.7.0"
DEFAULT_BASE = "https://fcm.googleapis.com"
_POOL_SIZE = 500  # one connection per message of a full send_each batch


def _no_status_retries() -> Retry:
    return Retry(
        total=1,
        connect=1,
        read=False,  # a read timeout surfaces as a timeout (the worker retries it)
        status=0,
        redirect=0,
        other=0,
        status_forcelist=(),
        allowed_methods=None,
        respect_retry_after_header=False,
        raise_on_status=False,
    )


def point_messaging_at(app: firebase_admin.App, base_url: str | None) -> str:
    """Aim `app`'s messaging service at `base_url` (default FCM); returns the send URL."""
    if firebase_admin.__version__ != PINNED_VERSION:
        raise RuntimeError(
            f"notifications/fcm_endpoint.py supports firebase-admin {PINNED_VERSION}, "
            f"found {firebase_admin.__version__}: re-check the internals it uses"
        )
    base = (base_url or DEFAULT_BASE).rstrip("/")
    service = messaging._get_messaging_service(app)
    url = f"{base}/v1/projects/{service._project_id}/messages:send"
    service._fcm_url = url
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=_POOL_SIZE, pool_maxsize=_POOL_SIZE, max_retries=_no_status_retries()
    )
    service._client.session.mount(base, adapter)
    return url

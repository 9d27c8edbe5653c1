"""Webhooks: one signed JSON POST per configured URL and attempt; the outbox retries (:mod:`areya.notify.outbox`).

Headers: ``Content-Type: application/json``, ``X-Areya-Event`` (event type), ``X-Areya-Delivery`` (a unique id,
the same over retries: receivers can de-duplicate), ``X-Areya-Timestamp`` (epoch seconds) and, when a secret is
configured, ``X-Areya-Signature: sha256=<hex>`` = HMAC-SHA256(secret, ``"<timestamp>." + body``).  Receivers
check it with :func:`verify_signature` (constant-time compare, rejects stale timestamps against replays).

Worth retrying (:class:`~areya.notify.delivery.Retry`): connection errors, timeouts, HTTP 408, 429 and 5xx.  Any
other status is a permanent failure (:class:`HttpStatusError`): the outbox gives the delivery up at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from areya.notify.delivery import Retry
from areya.notify.events import AlertNotice

SIGNATURE_HEADER = "X-Areya-Signature"
TIMESTAMP_HEADER = "X-Areya-Timestamp"
EVENT_HEADER = "X-Areya-Event"
DELIVERY_HEADER = "X-Areya-Delivery"
RETRY_STATUSES = frozenset({408, 429})
USER_AGENT = "areya-webhook/1"


class HttpStatusError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RetryStatus(Retry):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None, tolerance_s: float = 300
) -> bool:
    """True if ``signature`` signs ``timestamp`` + ``body`` with ``secret`` and the timestamp is recent."""
    try:
        age = abs((time.time() if now is None else now) - float(timestamp))
    except (TypeError, ValueError):
        return False
    if age > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def webhook_payload(
    notice: AlertNotice, summary: str | None = None, idempotency_key: str | None = None
) -> dict[str, Any]:
    """The JSON body: the pub/sub event plus camera, note, a one-line summary (no patient names) and, from the
    outbox, the delivery's ``idempotency_key`` (the same over retries and restarts: de-duplicate on it)."""
    body = {"event": notice.to_event(), "camera_id": notice.camera_id, "note": notice.note, "summary": summary}
    if notice.extra.get("evidence"):  # the alert's evidence summary (areya.alerts.evidence), as on every surface
        body["evidence"] = notice.extra["evidence"]
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    return body


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def mask_url(url: str) -> str:
    """The webhook URL as stored in the outbox and shown (/ops, areya alerts outbox, logs, audit): password, path
    and query hidden; the real URL stays in the settings, looked up by its hash when a delivery is sent."""
    from areya.config import mask_url_secrets  # noqa: PLC0415

    return mask_url_secrets(url)


class WebhookSender:
    """POSTs notice bodies to URLs, one request per call (the outbox retries); ``clock`` is injectable."""

    def __init__(self, secret: str = "", *, timeout_s: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.timeout_s = timeout_s
        self.clock = clock

    def request(self, url: str, body: bytes, event_type: str, delivery_id: str) -> urllib.request.Request:
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: event_type,
            DELIVERY_HEADER: delivery_id,
            TIMESTAMP_HEADER: timestamp,
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        return urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only

    def post_once(self, url: str, body: bytes, event_type: str, delivery_id: str) -> int:
        """One POST (fresh timestamp and signature); returns the HTTP status, raises :class:`Retry` (worth another
        try) or :class:`HttpStatusError` (permanent)."""
        req = self.request(url, body, event_type, delivery_id)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - validated URLs
                resp.read(65536)
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
            if status in RETRY_STATUSES or status >= 500:
                raise RetryStatus(status, f"HTTP {status}") from None
            raise HttpStatusError(status, f"HTTP {status}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Retry(f"{type(exc).__name__}: {reason}") from None

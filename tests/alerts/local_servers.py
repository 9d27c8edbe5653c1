"""Real local servers the notification tests deliver to: a webhook receiver (HTTP) and an SMTP mailbox
(``aiosmtpd`` handler), plus a free loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """A local HTTP server answering each POST with the next scripted status, then with ``status`` (changeable);
    it records every request with the status it got.  ``delay_s`` (changeable): how long it waits, after recording
    a request, before it answers (longer than the sender's timeout: a timed-out request)."""

    def __init__(self, statuses: list[int] | None = None, status: int = 200, delay_s: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.status = status
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                    receiver.requests.append(
                        {"headers": dict(self.headers), "body": body, "path": self.path, "status": status}
                    )
                    delay_s = receiver.delay_s
                if delay_s:
                    time.sleep(delay_s)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender gave up waiting (a timeout) and closed the connection
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted_keys(self) -> list[str]:
        with self.lock:
            return [json.loads(r["body"])["idempotency_key"] for r in self.requests if r["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """An ``aiosmtpd`` handler keeping every accepted envelope; the first ``fail_first`` get a temporary 451."""

    def __init__(self, fail_first: int = 0) -> None:
        self.envelopes: list[Any] = []
        self.fail_first = fail_first

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        if self.fail_first > 0:
            self.fail_first -= 1
            return "451 Requested action aborted: try again later"
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def keys(self) -> list[str]:
        """The idempotency key of every accepted message."""
        return [
            str(message_from_bytes(e.content, policy=default_policy)["X-Areya-Idempotency-Key"]) for e in self.envelopes
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

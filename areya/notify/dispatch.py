"""The notifier: after a commit, announce alert notices.

* pub/sub event on ``areya:events`` — at once, in the caller's thread (cheap, for the live dashboards);
* webhooks and e-mail — durable, through the outbox (:mod:`areya.notify.outbox`): the transition already wrote
  its notice to the outbox in its own transaction; the notifier only wakes the outbox pump (the scheduler's
  polling thread, or a synchronous pass for ``background=False``: the CLI and tests).

A delivery that still fails after its retries stays in the outbox as ``failed`` (ops page, ``areya alerts
outbox``) and is recorded as a ``notify.failed`` audit event; counts go to ``areya:notify:stats`` in Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import redis
from sqlalchemy.orm import Session

from areya.notify.events import AlertNotice, publish_events
from areya.notify.outbox import OutboxPump, PumpReport

log = logging.getLogger(__name__)

FAILURES_KEY = "areya:notify:failures"  # (older versions' capped failure list; failures now live in the outbox)


class Notifier:
    """Publishes notices on pub/sub and drives the outbox pump; see the module doc.

    ``background=True`` (the scheduler): a pump thread polls the outbox and :meth:`notify` wakes it.
    ``background=False``: :meth:`notify` runs one synchronous outbox pass (without ``session_factory``: none).
    ``deliver=False`` (the web app): only pub/sub; the scheduler's pump sends the deliveries.
    """

    def __init__(
        self,
        settings: Any,
        *,
        redis_client: redis.Redis | None = None,
        session_factory: Callable[[], Session] | None = None,
        background: bool = True,
        deliver: bool = True,
        pump: OutboxPump | None = None,
    ) -> None:
        self.redis_client = redis_client
        self.session_factory = session_factory
        self.background = background
        self.pump = pump
        if self.pump is None and deliver and session_factory is not None:
            self.pump = OutboxPump(settings, session_factory, redis_client=redis_client)  # type: ignore[arg-type]
        if settings.webhook_urls and not settings.webhook_secret:
            log.warning("webhooks configured without webhook_secret: their bodies are not signed")
        self.reports: list[PumpReport] = []
        if self.pump is not None and background:
            self.pump.start()

    def notify(self, notices: Iterable[AlertNotice]) -> None:
        notices = list(notices)
        if notices and self.redis_client is not None:
            publish_events(self.redis_client, notices)
        if self.pump is None:
            return
        if self.background:
            self.pump.wake()
        elif notices:
            self.flush()

    def flush(self, timeout: float = 30.0) -> bool:  # noqa: ARG002 - kept for callers of the old API
        """One synchronous outbox pass now (fan out, send what is due); True when it ran."""
        if self.pump is None:
            return False
        try:
            self.reports.append(self.pump.run_once())
            del self.reports[:-100]
        except Exception:  # noqa: BLE001 - the change is committed; the scheduler's pump retries
            log.exception("outbox pass failed; the scheduler will retry")
            return False
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Stop the pump thread (pending deliveries stay in the outbox for the next pump)."""
        if self.pump is not None:
            self.pump.stop(timeout)

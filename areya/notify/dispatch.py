"""The notifier: after a commit, announce alert notices on every channel.

* pub/sub event on ``areya:events`` — at once, in the caller's thread (cheap);
* webhooks (every event type, every configured URL) and e-mail (opened / escalated) — in a background
  delivery thread by default, so that a slow or dead endpoint never delays a scheduler tick.

A delivery that still fails after its retries is recorded where people look: an ``notify.failed`` audit event
(channel, masked target, alert, attempts, error), a counter and a capped list in Redis
(``areya:notify:stats``, ``areya:notify:failures``), and a warning in the log.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

import redis
from sqlalchemy.orm import Session

from areya.notify.delivery import Backoff, DeliveryResult
from areya.notify.email import MAILED_EVENTS, EmailSender, recipients_for
from areya.notify.events import AlertNotice, publish_events
from areya.notify.webhook import WebhookSender

log = logging.getLogger(__name__)

STATS_KEY = "areya:notify:stats"
FAILURES_KEY = "areya:notify:failures"
FAILURES_KEPT = 200
_STOP = object()


def describe(session: Session, notice: AlertNotice) -> str:
    """One line for people: kind, ward, bed or camera, severity — no patient name."""
    from sqlalchemy import select  # noqa: PLC0415

    from areya.db.models import Bed, BedAssignment, Camera, Ward  # noqa: PLC0415

    ward = session.get(Ward, notice.ward_id) if notice.ward_id is not None else None
    where = ward.name if ward is not None else "no ward"
    if notice.patient_id is not None:
        bed = session.scalar(
            select(Bed.label)
            .join(BedAssignment, BedAssignment.bed_id == Bed.id)
            .where(BedAssignment.patient_id == notice.patient_id, BedAssignment.end_at.is_(None))
        )
        where += f" / {bed}" if bed else ""
    elif notice.camera_id is not None:
        camera = session.get(Camera, notice.camera_id)
        where += f" / camera {camera.name}" if camera is not None else f" / camera {notice.camera_id}"
    label = {
        "negative_emotion": "sustained negative emotion",
        "camera_offline": "camera offline",
        "pipeline_stalled": "pipeline stalled",
    }.get(notice.kind, notice.kind)
    severity = f", severity {notice.severity}" if notice.severity is not None else ""
    alert = f"alert {notice.alert_id}" if notice.alert_id is not None else "no open alert"
    return f"{label} — {where} ({alert}{severity})"


class Notifier:
    """Delivers notices to pub/sub, webhooks and e-mail; see the module doc.

    ``background=False`` delivers in the caller's thread (CLI, tests).  ``session_factory`` is used to find
    e-mail recipients, describe alerts and record failures; without it e-mail is skipped.
    """

    def __init__(
        self,
        settings: Any,
        *,
        redis_client: redis.Redis | None = None,
        session_factory: Callable[[], Session] | None = None,
        background: bool = True,
        webhook_sender: WebhookSender | None = None,
        email_sender: EmailSender | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.redis_client = redis_client
        self.session_factory = session_factory
        self.webhook_urls: tuple[str, ...] = tuple(settings.webhook_urls)
        self.webhook = webhook_sender or WebhookSender(settings.webhook_secret, sleep=sleep)
        self.email: EmailSender | None = email_sender
        if self.email is None and settings.smtp_host:
            self.email = EmailSender(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                                     backoff=Backoff(attempts=3), sleep=sleep)
        if self.webhook_urls and not self.webhook.secret:
            log.warning("webhooks configured without webhook_secret: their bodies are not signed")
        self.results: list[DeliveryResult] = []  # the latest deliveries (bounded), for tests and status
        self.background = background
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- entry point ---------------------------------------------------------------------------
    def notify(self, notices: Iterable[AlertNotice]) -> None:
        notices = list(notices)
        if not notices:
            return
        if self.redis_client is not None:
            publish_events(self.redis_client, notices)
        if not self.webhook_urls and self.email is None:
            return
        for notice in notices:
            if self.background:
                self._ensure_thread()
                try:
                    self._queue.put_nowait(notice)
                except queue.Full:
                    self._record(DeliveryResult("queue", "notifier", False, 0, error="delivery queue full"), notice)
            else:
                self.deliver(notice)

    def deliver(self, notice: AlertNotice) -> list[DeliveryResult]:
        """Webhooks then e-mail for one notice, in this thread (retries included)."""
        summary, recipients = self._lookup(notice)
        results = [self.webhook.send(url, notice, summary) for url in self.webhook_urls]
        if self.email is not None and notice.type in MAILED_EVENTS and recipients:
            results.append(self.email.send(notice, recipients, summary))
        for result in results:
            self._record(result, notice)
        return results

    def _lookup(self, notice: AlertNotice) -> tuple[str, list[str]]:
        summary = f"{notice.kind.replace('_', ' ')} (alert {notice.alert_id})"
        if self.session_factory is None:
            return summary, []
        try:
            with self.session_factory() as session:
                summary = describe(session, notice)
                wants_mail = self.email is not None and notice.type in MAILED_EVENTS
                return summary, recipients_for(session, notice) if wants_mail else []
        except Exception as exc:  # noqa: BLE001 - DB trouble must not stop the webhooks
            log.warning("alert %s: recipients/summary not available (%s)", notice.alert_id, exc)
            return summary, []

    # -- outcomes ------------------------------------------------------------------------------
    def _record(self, result: DeliveryResult, notice: AlertNotice) -> None:
        with self._lock:
            self.results.append(result)
            del self.results[:-500]
        if self.redis_client is not None:
            try:
                pipe = self.redis_client.pipeline(transaction=False)
                pipe.hincrby(STATS_KEY, f"{result.channel}_{'ok' if result.ok else 'failed'}", 1)
                if not result.ok:
                    entry = {**asdict(result), "alert_id": notice.alert_id, "event": notice.type, "at": time.time()}
                    pipe.lpush(FAILURES_KEY, json.dumps(entry))
                    pipe.ltrim(FAILURES_KEY, 0, FAILURES_KEPT - 1)
                pipe.execute()
            except redis.RedisError as exc:
                log.debug("notification stats not written to redis: %s", exc)
        if result.ok:
            log.debug("%s delivered to %s (%d attempt(s))", notice.type, result.target, result.attempts)
            return
        log.warning("%s for alert %s NOT delivered by %s to %s after %d attempt(s): %s", notice.type,
                    notice.alert_id, result.channel, result.target, result.attempts, result.error)
        if self.session_factory is None:
            return
        try:
            from areya.admin.audit import SYSTEM, record  # noqa: PLC0415

            with self.session_factory() as session, session.begin():
                record(session, SYSTEM, "notify.failed", patient_id=notice.patient_id,
                       target=f"{result.channel}:{result.target}"[:1000],
                       detail={"alert_id": notice.alert_id, "event": notice.type, "attempts": result.attempts,
                               "status": result.status, "error": (result.error or "")[:500]})
        except Exception as exc:  # noqa: BLE001 - already logged above
            log.warning("notification failure not recorded in the database: %s", exc)

    # -- background delivery -------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="areya-notify", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self.deliver(item)
            except Exception:  # noqa: BLE001 - one bad delivery must not end the thread
                log.exception("notification delivery failed")
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until queued deliveries are done (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def close(self, timeout: float = 10.0) -> None:
        """Finish queued deliveries (up to ``timeout``) and stop the delivery thread."""
        if self._thread is not None and self._thread.is_alive():
            self.flush(timeout)
            self._queue.put(_STOP)
            self._thread.join(timeout)
        self._thread = None

"""Durable notifications: the outbox table (:class:`~areya.db.models.NotificationOutbox`) and its pump.

1. A transition (:mod:`areya.alerts.lifecycle`) calls :func:`add_event` in its own transaction: one ``event``
   row holding the notice.  A rolled-back change leaves no row; a committed one is never lost.
2. The pump (:class:`OutboxPump`, run by ``areya scheduler``) fans each pending event out, in one transaction,
   into one row per delivery: ``webhook`` per configured URL (the row keeps the masked URL and the URL's SHA-256,
   never the URL itself) and ``email`` for opened / escalated alerts with recipients.  The payload (webhook body,
   e-mail summary and recipients) is fixed then, with an ``idempotency_key`` that stays the same over retries
   and restarts (webhook: body field and ``X-Areya-Delivery`` header; e-mail: ``X-Areya-Idempotency-Key`` and
   the Message-ID).
3. Due deliveries are claimed (a lease: ``next_attempt_at`` moved ahead, ``attempts`` + 1, in a committed
   conditional UPDATE, so two pumps never send the same row at once), sent once outside any transaction, and
   finished: delivered, retried after ``notify_retry_initial_s * 2**(attempts-1)`` (capped at
   ``notify_retry_max_s``, with jitter), or failed (permanent error or ``notify_max_attempts`` reached: a
   ``notify.failed`` audit event, a warning, and the row stays visible on the ops page and in
   ``areya alerts outbox``).  A pump killed mid-send leaves the claim to expire: the delivery is sent again
   (at-least-once; receivers de-duplicate by the key).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from areya.audit import SYSTEM, record
from areya.db.models import NotificationOutbox
from areya.db.types import utcnow
from areya.errors import Conflict, NotFound
from areya.notify.delivery import Retry
from areya.notify.email import MAILED_EVENTS, EmailSender, build_message, recipients_for
from areya.notify.events import AlertNotice, describe
from areya.notify.webhook import WebhookSender, encode_body, mask_url, webhook_payload

log = logging.getLogger(__name__)

CLAIM_BATCH = 50
KEEP_DELIVERED = timedelta(days=7)
STATS_KEY = "areya:notify:stats"  # Redis hash: sent / failed counts per channel


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def add_event(session: Session, notice: AlertNotice) -> NotificationOutbox:
    """Write the notice to the outbox in the caller's transaction (flushed, not committed)."""
    row = NotificationOutbox(
        idempotency_key=uuid.uuid4().hex,
        channel="event",
        event_type=notice.type,
        alert_id=notice.alert_id,
        payload=notice.to_payload(),
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    return row


def _delivery_key(event_key: str, channel: str, target_key: str) -> str:
    return f"{event_key}.{channel}.{target_key[:12]}"


def fan_out(session: Session, settings: Any, *, now: datetime | None = None, limit: int = 200) -> int:
    """Turn pending ``event`` rows into delivery rows (in the caller's transaction); returns events handled."""
    now = now or utcnow()
    events = session.scalars(
        select(NotificationOutbox)
        .where(NotificationOutbox.channel == "event", NotificationOutbox.status == "pending")
        .order_by(NotificationOutbox.id)
        .limit(limit)
    ).all()
    for event in events:
        notice = AlertNotice.from_payload(event.payload)
        summary = describe(session, notice)
        for url in settings.webhook_urls:
            key = _delivery_key(event.idempotency_key, "webhook", url_key(url))
            body = webhook_payload(notice, summary, idempotency_key=key)
            session.add(_delivery(event, "webhook", key, body, mask_url(url), url_key(url), now))
        if settings.smtp_host and notice.type in MAILED_EVENTS:
            recipients = recipients_for(session, notice)
            if recipients:
                target = ", ".join(recipients)
                key = _delivery_key(event.idempotency_key, "email", url_key(target))
                payload = {
                    "notice": notice.to_payload(),
                    "summary": summary,
                    "recipients": recipients,
                    "idempotency_key": key,
                }
                session.add(_delivery(event, "email", key, payload, target, None, now))
        event.status = "delivered"
        event.delivered_at = now
    session.flush()
    return len(events)


def _delivery(
    event: NotificationOutbox,
    channel: str,
    key: str,
    payload: dict[str, Any],
    target: str,
    target_key: str | None,
    now: datetime,
) -> NotificationOutbox:
    return NotificationOutbox(
        idempotency_key=key,
        channel=channel,
        event_type=event.event_type,
        alert_id=event.alert_id,
        payload=payload,
        target=target,
        target_key=target_key,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


# --------------------------------------------------------------------------- sending


@dataclass
class Outcome:
    ok: bool
    retry: bool = False
    status: int | None = None
    error: str | None = None


@dataclass
class PumpReport:
    fanned_out: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: str
    event_type: str
    alert_id: int | None
    payload: dict[str, Any]
    target: str | None
    target_key: str | None
    attempts: int
    idempotency_key: str


class OutboxPump:
    """Fans out, claims, sends and finishes outbox rows; :meth:`run_once`, or :meth:`start` a polling thread."""

    def __init__(
        self,
        settings: Any,
        session_factory: sessionmaker[Session],
        *,
        owner: str | None = None,
        redis_client: Any = None,
        webhook_sender: WebhookSender | None = None,
        email_sender: EmailSender | None = None,
        clock: Callable[[], datetime] = utcnow,
        poll_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.owner = owner or f"pump-{uuid.uuid4().hex[:8]}"
        self.redis_client = redis_client
        self.webhook = webhook_sender or WebhookSender(settings.webhook_secret, timeout_s=settings.notify_timeout_s)
        self.email = email_sender
        if self.email is None and settings.smtp_host:
            self.email = EmailSender(
                settings.smtp_host, settings.smtp_port, settings.smtp_from, timeout_s=settings.notify_timeout_s
            )
        self.urls = {url_key(u): u for u in settings.webhook_urls}
        self.clock = clock
        self.poll_s = poll_s
        self.lease = timedelta(seconds=2 * settings.notify_timeout_s + 5)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()
        self._pruned_at: datetime | None = None

    # -- one pass ------------------------------------------------------------------------------
    def run_once(self) -> PumpReport:
        from areya.db.engine import run_write  # noqa: PLC0415

        with self._run_lock:
            report = PumpReport()
            report.fanned_out = run_write(self.session_factory, lambda s: fan_out(s, self.settings, now=self.clock()))
            for row in self._claim():
                outcome = self._send(row)
                self._finish(row, outcome, report)
            now = self.clock()
            if self._pruned_at is None or now - self._pruned_at > timedelta(hours=1):
                run_write(self.session_factory, lambda s: prune(s, now=now))
                self._pruned_at = now
            if report.fanned_out or report.delivered or report.failed:
                log.debug("outbox: %s", report)
            return report

    def _claim(self) -> list[Claimed]:
        from areya.db.engine import run_write  # noqa: PLC0415

        def claim(session: Session) -> list[Claimed]:
            now = self.clock()
            rows = session.scalars(
                select(NotificationOutbox)
                .where(
                    NotificationOutbox.status == "pending",
                    NotificationOutbox.channel != "event",
                    NotificationOutbox.next_attempt_at <= now,
                )
                .order_by(NotificationOutbox.next_attempt_at, NotificationOutbox.id)
                .limit(CLAIM_BATCH)
            ).all()
            claimed: list[Claimed] = []
            for row in rows:
                done = session.execute(
                    update(NotificationOutbox)
                    .where(
                        NotificationOutbox.id == row.id,
                        NotificationOutbox.status == "pending",
                        NotificationOutbox.attempts == row.attempts,
                    )
                    .values(
                        next_attempt_at=now + self.lease,
                        attempts=NotificationOutbox.attempts + 1,
                        claimed_by=self.owner,
                        last_attempt_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                if done.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(
                        Claimed(
                            row.id,
                            row.channel,
                            row.event_type,
                            row.alert_id,
                            dict(row.payload),
                            row.target,
                            row.target_key,
                            row.attempts + 1,
                            row.idempotency_key,
                        )
                    )
            return claimed

        return run_write(self.session_factory, claim)

    def _send(self, row: Claimed) -> Outcome:
        try:
            if row.channel == "webhook":
                url = self.urls.get(row.target_key or "")
                if url is None:
                    return Outcome(False, error="webhook URL no longer configured")
                status = self.webhook.post_once(url, encode_body(row.payload), row.event_type, row.idempotency_key)
                return Outcome(True, status=status)
            if self.email is None:
                return Outcome(False, retry=True, error="smtp_host not configured in this process")
            payload = row.payload
            notice = AlertNotice.from_payload(payload["notice"])
            message = build_message(
                notice,
                list(payload["recipients"]),
                self.email.sender,
                payload["summary"],
                idempotency_key=row.idempotency_key,
            )
            return Outcome(True, status=self.email.send_once(message, list(payload["recipients"])))
        except Retry as exc:
            return Outcome(False, retry=True, status=getattr(exc, "status", None), error=str(exc))
        except Exception as exc:  # noqa: BLE001 - permanent: recorded, not retried
            return Outcome(False, status=getattr(exc, "status", None), error=f"{type(exc).__name__}: {exc}")

    def retry_delay(self, attempts: int) -> float:
        base = min(self.settings.notify_retry_max_s, self.settings.notify_retry_initial_s * (2 ** max(0, attempts - 1)))
        return base * (1.0 + random.uniform(0.0, 0.1))  # noqa: S311 - jitter, not security

    def _finish(self, row: Claimed, outcome: Outcome, report: PumpReport) -> None:
        from areya.db.engine import run_write  # noqa: PLC0415

        now = self.clock()
        give_up = not outcome.ok and (not outcome.retry or row.attempts >= self.settings.notify_max_attempts)

        def finish(session: Session) -> None:
            values: dict[str, Any] = {
                "last_status": outcome.status,
                "last_error": (outcome.error or None),
                "claimed_by": None,
            }
            if outcome.ok:
                values.update(status="delivered", delivered_at=now, last_error=None)
            elif give_up:
                values.update(status="failed")
            else:
                values.update(next_attempt_at=now + timedelta(seconds=self.retry_delay(row.attempts)))
            session.execute(
                update(NotificationOutbox)
                .where(NotificationOutbox.id == row.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if give_up:
                record(
                    session,
                    SYSTEM,
                    "notify.failed",
                    patient_id=(row.payload.get("event") or row.payload.get("notice") or {}).get("patient_id"),
                    target=f"{row.channel}:{row.target}"[:1000],
                    detail={
                        "alert_id": row.alert_id,
                        "event": row.event_type,
                        "attempts": row.attempts,
                        "status": outcome.status,
                        "error": (outcome.error or "")[:500],
                        "outbox_id": row.id,
                    },
                )

        run_write(self.session_factory, finish)
        self._stats(row.channel, "ok" if outcome.ok else ("failed" if give_up else "retry"))
        if outcome.ok:
            report.delivered += 1
            report.keys.append(row.idempotency_key)
        elif give_up:
            report.failed += 1
            log.warning(
                "%s for alert %s NOT delivered by %s to %s after %d attempt(s): %s",
                row.event_type,
                row.alert_id,
                row.channel,
                row.target,
                row.attempts,
                outcome.error,
            )
        else:
            report.retrying += 1
            log.info(
                "%s for alert %s: %s attempt %d to %s failed (%s); retrying",
                row.event_type,
                row.alert_id,
                row.channel,
                row.attempts,
                row.target,
                outcome.error,
            )

    def _stats(self, channel: str, what: str) -> None:
        if self.redis_client is None:
            return
        try:
            self.redis_client.hincrby(STATS_KEY, f"{channel}_{what}", 1)
        except Exception as exc:  # noqa: BLE001 - stats only
            log.debug("notification stats not written to redis: %s", exc)

    # -- background ----------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def start(self) -> OutboxPump:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="areya-outbox", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - database away: try again next poll
                log.exception("outbox pass failed; retrying")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None


# --------------------------------------------------------------------------- reading / operator


def outbox_counts(session: Session) -> dict[str, int]:
    """Delivery rows (not events) by status, plus ``retrying`` (pending after a failed attempt)."""
    counts = {s: 0 for s in ("pending", "delivered", "failed")}
    for status, n in session.execute(
        select(NotificationOutbox.status, func.count())
        .where(NotificationOutbox.channel != "event")
        .group_by(NotificationOutbox.status)
    ):
        counts[str(status)] = int(n)
    counts["retrying"] = int(
        session.scalar(
            select(func.count())
            .select_from(NotificationOutbox)
            .where(
                NotificationOutbox.channel != "event",
                NotificationOutbox.status == "pending",
                NotificationOutbox.last_error.is_not(None),
            )
        )
        or 0
    )
    return counts


def problem_deliveries(session: Session, limit: int = 50) -> list[NotificationOutbox]:
    """Failed deliveries and pending ones that have failed at least once, newest first."""
    return list(
        session.scalars(
            select(NotificationOutbox)
            .where(
                NotificationOutbox.channel != "event",
                (NotificationOutbox.status == "failed")
                | ((NotificationOutbox.status == "pending") & NotificationOutbox.last_error.is_not(None)),
            )
            .order_by(NotificationOutbox.id.desc())
            .limit(limit)
        )
    )


def redeliver(session: Session, outbox_id: int) -> NotificationOutbox:
    """Put a failed delivery back in the queue (attempts start again)."""
    row = session.get(NotificationOutbox, outbox_id)
    if row is None or row.channel == "event":
        raise NotFound(f"unknown delivery {outbox_id}")
    if row.status != "failed":
        raise Conflict(f"delivery {outbox_id} is {row.status}, not failed")
    row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
    session.flush()
    return row


def prune(session: Session, *, now: datetime | None = None, keep: timedelta = KEEP_DELIVERED) -> int:
    """Delete delivered rows older than ``keep`` (failed ones stay until redelivered or pruned by hand)."""
    from sqlalchemy import delete  # noqa: PLC0415

    cutoff = (now or utcnow()) - keep
    result = session.execute(
        delete(NotificationOutbox).where(
            NotificationOutbox.status == "delivered", NotificationOutbox.created_at < cutoff
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

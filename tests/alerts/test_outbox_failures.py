"""How the outbox pump treats a failed webhook delivery, against real local HTTP servers and the real database:
a permanent refusal (HTTP 4xx other than 408 / 429) is given up at once, with its reason; a temporary one (408,
429, 5xx, a timeout, a refused connection) is retried later with a doubling delay.  One pump attempt is one HTTP
request: the retries are the outbox's, none happen inside an attempt."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from alerts_helpers import T0, Hospital
from local_servers import WebhookReceiver, free_port
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.config import Settings
from areya.db.models import AuditEvent, NotificationOutbox
from areya.notify.events import AlertNotice
from areya.notify.outbox import OutboxPump, add_event
from areya.notify.webhook import mask_url

pytestmark = pytest.mark.postgres

PERMANENT = (400, 401, 403, 404, 410, 422)
TEMPORARY = (408, 429, 500, 502, 503)
RETRY_INITIAL_S = 5.0


@pytest.fixture
def receivers() -> Iterator[Callable[..., WebhookReceiver]]:
    made: list[WebhookReceiver] = []

    def make(status: int, delay_s: float = 0.0) -> WebhookReceiver:
        made.append(WebhookReceiver(status=status, delay_s=delay_s))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _event(session_factory: Callable[[], Session], hospital: Hospital) -> None:
    notice = AlertNotice(
        type="alert.opened",
        alert_id=42,
        ward_id=hospital.ward_id,
        patient_id=hospital.patients[0],
        kind="negative_emotion",
        severity=2,
        state="firing",
        at=T0,
    )
    with session_factory() as s, s.begin():
        add_event(s, notice)


def _deliveries(session_factory: Callable[[], Session]) -> dict[str, NotificationOutbox]:
    """Webhook delivery rows by their (masked) URL."""
    with session_factory() as s:
        rows = s.scalars(select(NotificationOutbox).where(NotificationOutbox.channel == "webhook")).all()
        return {str(r.target): r for r in rows}


def test_permanent_http_refusal_is_given_up_at_once_with_its_reason(
    receivers: Callable[..., WebhookReceiver],
    alert_settings: Settings,
    hospital: Hospital,
    session_factory: Callable[[], Session],
) -> None:
    """Mutants killed: a permanent refusal (HTTP 400, 401, 403, 404, 410, 422) is treated as temporary and the
    delivery retried later (by the sender's status classification, by the pump's give-up decision, or by the
    pump's handling of a non-retry error) instead of being marked failed on the first attempt."""
    by_status = {status: receivers(status) for status in PERMANENT}
    settings = alert_settings.replace(
        webhook_urls=tuple(r.url for r in by_status.values()), notify_max_attempts=10, notify_timeout_s=5
    )
    clock = [T0]
    pump = OutboxPump(settings, session_factory, clock=lambda: clock[0])  # type: ignore[arg-type]
    _event(session_factory, hospital)

    report = pump.run_once()
    assert (report.delivered, report.retrying, report.failed) == (0, 0, len(PERMANENT))
    rows = _deliveries(session_factory)
    for status, r in by_status.items():
        row = rows[mask_url(r.url)]
        assert len(r.requests) == 1, status  # one attempt, one request
        assert (row.status, row.attempts, row.last_status) == ("failed", 1, status)
        assert row.last_error == f"HttpStatusError: HTTP {status}"
    with session_factory() as s:
        audits = s.scalars(select(AuditEvent).where(AuditEvent.action == "notify.failed")).all()
    assert sorted((a.detail["status"], a.detail["attempts"]) for a in audits) == [(s, 1) for s in PERMANENT]
    assert {a.patient_id for a in audits} == {hospital.patients[0]}

    clock[0] += timedelta(days=1)  # long past any back-off: nothing is due again
    assert pump.run_once().failed == 0
    assert [len(r.requests) for r in by_status.values()] == [1] * len(PERMANENT)


def test_temporary_failures_are_retried_with_a_doubling_delay_one_request_per_attempt(
    receivers: Callable[..., WebhookReceiver],
    alert_settings: Settings,
    hospital: Hospital,
    session_factory: Callable[[], Session],
) -> None:
    """Mutants killed: a temporary failure (HTTP 408, 429, 5xx, a timeout, a refused connection) is given up at
    once, or retried without the doubling back-off; or one pump attempt sends the request more than once (a retry
    loop inside the attempt, beside the outbox's own retries)."""
    by_status = {status: receivers(status) for status in TEMPORARY}
    slow = receivers(200, delay_s=1.5)  # answers after the pump's 0.5 s timeout
    dead_url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: connection refused
    urls = (*(r.url for r in by_status.values()), slow.url, dead_url)
    settings = alert_settings.replace(
        webhook_urls=urls,
        notify_max_attempts=10,
        notify_retry_initial_s=RETRY_INITIAL_S,
        notify_retry_max_s=900,
        notify_timeout_s=0.5,
    )
    clock = [T0]
    pump = OutboxPump(settings, session_factory, clock=lambda: clock[0])  # type: ignore[arg-type]
    _event(session_factory, hospital)
    receiving = [*by_status.values(), slow]

    def check_pending(attempts: int, delay_s: float) -> None:
        """Every delivery pending after ``attempts`` attempts, due again ``delay_s`` (+ up to 10% jitter) later."""
        rows = _deliveries(session_factory)
        assert set(rows) == {mask_url(url) for url in urls}
        for url, row in rows.items():
            assert (row.status, row.attempts) == ("pending", attempts), url
            assert row.last_error, url
            wait = (row.next_attempt_at - clock[0]).total_seconds()
            assert delay_s <= wait <= delay_s * 1.1 + 1e-3, (url, wait)
        for status, r in by_status.items():
            assert rows[mask_url(r.url)].last_status == status
        assert rows[mask_url(slow.url)].last_status is None and "timed out" in str(rows[mask_url(slow.url)].last_error)
        assert "refused" in str(rows[mask_url(dead_url)].last_error).lower()
        assert [len(r.requests) for r in receiving] == [attempts] * len(receiving)  # one request per attempt

    first = pump.run_once()
    assert (first.delivered, first.retrying, first.failed) == (0, len(urls), 0)
    check_pending(1, RETRY_INITIAL_S)

    clock[0] += timedelta(seconds=RETRY_INITIAL_S / 2)  # not due yet
    assert pump.run_once().retrying == 0
    assert [len(r.requests) for r in receiving] == [1] * len(receiving)

    clock[0] += timedelta(seconds=RETRY_INITIAL_S * 1.1)  # due: the second attempt waits twice as long
    assert pump.run_once().retrying == len(urls)
    check_pending(2, 2 * RETRY_INITIAL_S)

    for r in receiving:  # the receivers recover: the next attempt delivers, once each
        r.status, r.delay_s = 200, 0.0
    clock[0] += timedelta(seconds=2 * RETRY_INITIAL_S * 1.1)
    third = pump.run_once()
    assert (third.delivered, third.retrying) == (len(receiving), 1)  # the dead URL stays dead
    rows = _deliveries(session_factory)
    assert [rows[mask_url(r.url)].status for r in receiving] == ["delivered"] * len(receiving)
    assert [len(r.requests) for r in receiving] == [3] * len(receiving)

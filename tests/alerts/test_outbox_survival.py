"""Durable notifications: deliveries pending in the outbox survive a SIGKILL of the scheduler process and arrive
exactly once (per idempotency key) at a real HTTP server and a real aiosmtpd SMTP server after the restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alerts_helpers import Hospital
from local_servers import Mailbox, free_port
from local_servers import WebhookReceiver as Receiver
from polling import wait_until
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from areya.alerts.lifecycle import acknowledge_alert, open_alert
from areya.comms.redis_server import EmbeddedRedis
from areya.config import Settings
from areya.db.models import Camera, NotificationOutbox
from areya.db.types import utcnow
from areya.notify.webhook import DELIVERY_HEADER

pytestmark = pytest.mark.postgres


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(status=503)  # refuses until the test switches it to 200
    yield r
    r.close()


def _deliveries(session_factory: Callable[[], Session]) -> list[NotificationOutbox]:
    with session_factory() as s:
        return list(
            s.scalars(
                select(NotificationOutbox).where(NotificationOutbox.channel != "event").order_by(NotificationOutbox.id)
            )
        )


def _start_scheduler(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "areya", "scheduler"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def test_pending_deliveries_survive_a_scheduler_kill(
    receiver: Receiver,
    alert_settings: Settings,
    alerts_redis: EmbeddedRedis,
    hospital: Hospital,
    session_factory: Callable[[], Session],
    tmp_path: Path,
) -> None:
    smtp_port = free_port()  # nothing listens yet: the e-mails fail (connection refused) and wait
    env = {
        **os.environ,
        "AREYA_DATA_DIR": str(alert_settings.data_dir),
        "AREYA_DATABASE_URL": alert_settings.database_url,
        "AREYA_REDIS_URL": alerts_redis.url,
        "AREYA_WEBHOOK_URLS": receiver.url,
        "AREYA_WEBHOOK_SECRET": "s3cret",
        "AREYA_SMTP_HOST": "127.0.0.1",
        "AREYA_SMTP_PORT": str(smtp_port),
        "AREYA_SMTP_FROM": "areya@hospital.example",
        "AREYA_NOTIFY_RETRY_INITIAL_S": "0.2",
        "AREYA_NOTIFY_RETRY_MAX_S": "1",
        "AREYA_NOTIFY_MAX_ATTEMPTS": "100",
        "AREYA_NOTIFY_TIMEOUT_S": "2",
        "AREYA_SCHEDULER_TICK_S": "1",
        "AREYA_LOCK_TTL_S": "3",
        "AREYA_LOG_LEVEL": "INFO",
    }
    with session_factory() as s, s.begin():
        s.execute(update(Camera).values(enabled=False))  # no camera alerts: only the notices below
        alert_ids = [
            open_alert(s, "negative_emotion", now=utcnow(), patient_id=p, ward_id=hospital.ward_id).id
            for p in hospital.patients
        ]
        acknowledge_alert(s, alert_ids[0], now=utcnow())
    # 3 opened (webhook + e-mail each) + 1 acknowledged (webhook only) = 7 deliveries
    log = tmp_path / "scheduler.log"
    first = _start_scheduler(env, log)
    try:

        def all_tried() -> bool:
            rows = _deliveries(session_factory)
            return len(rows) == 7 and all(r.last_error is not None and r.status == "pending" for r in rows)

        assert wait_until(all_tried, 60), "every delivery fanned out, tried and refused at least once"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    assert receiver.requests and not receiver.accepted_keys()  # tried, refused (503), nothing accepted yet
    rows = _deliveries(session_factory)
    assert Counter(r.channel for r in rows) == {"webhook": 4, "email": 3}
    assert all(r.status == "pending" for r in rows)

    # the endpoints recover, a new scheduler starts
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    with receiver.lock:
        receiver.status = 200
    second = _start_scheduler(env, log)
    try:
        assert wait_until(lambda: all(r.status == "delivered" for r in _deliveries(session_factory)), 90), (
            "every delivery delivered after the restart"
        )
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(20)
        except subprocess.TimeoutExpired:
            second.kill()
        controller.stop()

    rows = _deliveries(session_factory)
    webhook_keys = {r.idempotency_key for r in rows if r.channel == "webhook"}
    email_keys = {r.idempotency_key for r in rows if r.channel == "email"}
    assert len(webhook_keys) == 4 and len(email_keys) == 3
    # every key arrived, and exactly once (nothing was accepted twice)
    assert Counter(receiver.accepted_keys()) == dict.fromkeys(webhook_keys, 1)
    assert Counter(mailbox.keys()) == dict.fromkeys(email_keys, 1)
    # the key is the same over retries: the refused attempts before the kill carried the keys delivered after it
    tried_before = {json.loads(r["body"])["idempotency_key"] for r in receiver.requests if r["status"] == 503}
    assert tried_before == webhook_keys
    for request in receiver.requests:
        assert request["headers"][DELIVERY_HEADER] == json.loads(request["body"])["idempotency_key"]
    events = Counter(json.loads(r["body"])["event"]["type"] for r in receiver.requests if r["status"] == 200)
    assert events == {"alert.opened": 3, "alert.acknowledged": 1}
    for envelope in mailbox.envelopes:
        assert sorted(envelope.rcpt_tos) == ["dr.a2@hospital.example", "dr.a@hospital.example"]

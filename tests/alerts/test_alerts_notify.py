"""Notifications against real local servers: a webhook receiver (http.server) and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
import redis
from alerts_helpers import T0, Hospital
from local_servers import Mailbox, free_port
from local_servers import WebhookReceiver as Receiver
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.config import Settings, mask_url_secrets
from areya.db.models import AuditEvent
from areya.notify.delivery import Retry
from areya.notify.email import recipients_for
from areya.notify.events import EVENT_KEYS, AlertNotice
from areya.notify.outbox import STATS_KEY, OutboxPump, add_event, outbox_counts, problem_deliveries
from areya.notify.webhook import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    HttpStatusError,
    RetryStatus,
    WebhookSender,
    encode_body,
    verify_signature,
    webhook_payload,
)

SECRET = "s3cret-webhook-key"


def notice(hospital: Hospital, type_: str = "alert.opened", kind: str = "negative_emotion") -> AlertNotice:
    patient = hospital.patients[0] if kind == "negative_emotion" else None
    camera = hospital.camera_id if kind != "negative_emotion" else None
    return AlertNotice(
        type=type_,
        alert_id=42,
        ward_id=hospital.ward_id,
        patient_id=patient,
        kind=kind,
        severity=2,
        state="firing",
        at=T0,
        camera_id=camera,
        note="share 0.85 >= 0.60",
    )


# --------------------------------------------------------------------------- webhook receiver


@pytest.fixture
def receiver() -> Iterator[Callable[[list[int]], Receiver]]:
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses, status=200))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_webhook_signed_and_one_post_per_call(receiver: Callable[[list[int]], Receiver]) -> None:
    """The sender makes one signed request per call, failed or not: retrying is the outbox's (see
    test_outbox_failures.py), with the same delivery id each time."""
    r = receiver([503, 200])
    sender = WebhookSender(SECRET)
    n = AlertNotice(
        type="alert.opened",
        alert_id=7,
        ward_id=1,
        patient_id=3,
        kind="negative_emotion",
        severity=2,
        state="firing",
        at=T0,
    )
    body = encode_body(webhook_payload(n, "sustained negative emotion — Ward A / A1", idempotency_key="key-7"))
    with pytest.raises(RetryStatus) as refused:
        sender.post_once(r.url, body, n.type, "key-7")
    assert refused.value.status == 503 and len(r.requests) == 1
    assert sender.post_once(r.url, body, n.type, "key-7") == 200
    assert len(r.requests) == 2
    ids = {req["headers"][DELIVERY_HEADER] for req in r.requests}
    assert ids == {"key-7"}  # the delivery id the caller gave, on every try: receivers can de-duplicate
    for req in r.requests:
        h = req["headers"]
        assert h["Content-Type"] == "application/json" and h[EVENT_HEADER] == "alert.opened"
        assert verify_signature(SECRET, h[TIMESTAMP_HEADER], req["body"], h[SIGNATURE_HEADER])
        assert not verify_signature("wrong-secret", h[TIMESTAMP_HEADER], req["body"], h[SIGNATURE_HEADER])
        assert not verify_signature(SECRET, h[TIMESTAMP_HEADER], req["body"] + b" ", h[SIGNATURE_HEADER])
        assert not verify_signature(
            SECRET, h[TIMESTAMP_HEADER], req["body"], h[SIGNATURE_HEADER], now=float(h[TIMESTAMP_HEADER]) + 3600
        )  # replayed an hour later
    payload = json.loads(r.requests[-1]["body"])
    assert set(payload["event"]) == set(EVENT_KEYS) and payload["event"]["alert_id"] == 7
    assert payload["summary"] == "sustained negative emotion — Ward A / A1"


def test_webhook_errors_are_told_apart_permanent_or_worth_a_retry(
    receiver: Callable[[list[int]], Receiver],
) -> None:
    """HTTP 4xx other than 408 / 429 is permanent; 408, 429, 5xx and a refused connection are worth a retry (the
    outbox's decision on each: test_outbox_failures.py)."""
    r = receiver([400, 429, 408, 502])
    sender = WebhookSender(SECRET)
    n = AlertNotice(
        type="alert.resolved",
        alert_id=7,
        ward_id=1,
        patient_id=3,
        kind="negative_emotion",
        severity=2,
        state="resolved",
        at=T0,
    )
    body = encode_body(webhook_payload(n))
    with pytest.raises(HttpStatusError) as permanent:
        sender.post_once(r.url, body, n.type, "key-7")
    assert permanent.value.status == 400 and not isinstance(permanent.value, Retry)
    for status in (429, 408, 502):
        with pytest.raises(RetryStatus) as temporary:
            sender.post_once(r.url, body, n.type, "key-7")
        assert temporary.value.status == status
    assert len(r.requests) == 4  # one request per call
    with pytest.raises(Retry, match="(?i)refused"):
        sender.post_once(f"http://127.0.0.1:{free_port()}/hook", body, n.type, "key-7")


def _outbox_event(session_factory: Callable[[], Session], n: AlertNotice) -> None:
    with session_factory() as s, s.begin():
        add_event(s, n)


def test_failed_delivery_is_recorded_and_visible(
    receiver: Callable[[list[int]], Receiver],
    alert_settings: Settings,
    hospital: Hospital,
    session_factory: Callable[[], Session],
    rclient: redis.Redis,
) -> None:
    ok, failing = receiver([]), receiver([503] * 10)
    settings = alert_settings.replace(webhook_urls=(ok.url, failing.url), webhook_secret=SECRET, notify_max_attempts=3)
    clock = [T0]
    pump = OutboxPump(settings, session_factory, redis_client=rclient, clock=lambda: clock[0])  # type: ignore[arg-type]
    _outbox_event(session_factory, notice(hospital))
    for _ in range(3):  # each pass: the failing URL is due again once its backoff has passed
        pump.run_once()
        clock[0] += timedelta(hours=1)
    assert len(ok.requests) == 1 and len(failing.requests) == 3
    assert {ok.requests[0]["headers"][DELIVERY_HEADER]} != {r["headers"][DELIVERY_HEADER] for r in failing.requests}
    assert len({r["headers"][DELIVERY_HEADER] for r in failing.requests}) == 1  # one key over the retries
    stats = {k.decode(): int(v) for k, v in rclient.hgetall(STATS_KEY).items()}
    assert stats == {"webhook_ok": 1, "webhook_retry": 2, "webhook_failed": 1}
    with session_factory() as s:
        (audit,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "notify.failed")).all()
        shown = mask_url_secrets(failing.url)  # a receiver's token may be in the path: shown masked
        assert audit.target == f"webhook:{shown}" and audit.detail["attempts"] == 3
        assert audit.detail["alert_id"] == 42 and audit.patient_id == hospital.patients[0]
        (failed,) = problem_deliveries(s)
        assert (failed.status, failed.attempts, failed.last_status, failed.target) == ("failed", 3, 503, shown)
        assert outbox_counts(s) == {"pending": 0, "delivered": 1, "failed": 1, "retrying": 0}
    # the summary names the ward and the bed, not the patient
    body = json.loads(ok.requests[0]["body"])
    assert body["summary"] == "sustained negative emotion — Ward A / A1 (alert 42, severity 2)"
    assert body["idempotency_key"] == ok.requests[0]["headers"][DELIVERY_HEADER]
    assert "Patient A1" not in ok.requests[0]["body"].decode()


# --------------------------------------------------------------------------- e-mail


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def test_email_goes_to_the_doctors_of_the_ward(
    smtp_server: tuple[Mailbox, int],
    alert_settings: Settings,
    hospital: Hospital,
    session_factory: Callable[[], Session],
) -> None:
    mailbox, port = smtp_server
    settings = alert_settings.replace(smtp_host="127.0.0.1", smtp_port=port, smtp_from="areya@hospital.example")
    _outbox_event(session_factory, notice(hospital))
    _outbox_event(session_factory, notice(hospital, "alert.acknowledged"))  # acknowledgements: no mail
    OutboxPump(settings, session_factory).run_once()  # type: ignore[arg-type]
    (envelope,) = mailbox.envelopes
    # doctors covering ward A with an address; not the doctor of ward B, the inactive one, the nurse or admin
    assert envelope.mail_from == "areya@hospital.example"
    assert sorted(envelope.rcpt_tos) == ["dr.a2@hospital.example", "dr.a@hospital.example"]
    msg = message_from_bytes(envelope.content, policy=default_policy)
    assert msg["Subject"] == "[Areya] Alert: sustained negative emotion — Ward A / A1 (alert 42, severity 2)"
    assert msg["X-Areya-Alert"] == "42"
    text = msg.get_content()
    assert "share 0.85 >= 0.60" in text and "Patient A1" not in text and "MRN" not in text


def test_operational_email_goes_to_ward_nurses_and_admins_after_a_retry(
    smtp_server: tuple[Mailbox, int],
    alert_settings: Settings,
    hospital: Hospital,
    session_factory: Callable[[], Session],
) -> None:
    mailbox, port = smtp_server
    mailbox.fail_first = 1  # a temporary SMTP 451 first: the outbox tries again later
    settings = alert_settings.replace(smtp_host="127.0.0.1", smtp_port=port, smtp_from="areya@hospital.example")
    n = notice(hospital, "alert.escalated", kind="camera_offline")
    with session_factory() as s:
        recipients = recipients_for(s, n)
    assert recipients == ["admin@hospital.example", "nurse.a@hospital.example"]
    clock = [T0]
    pump = OutboxPump(settings, session_factory, clock=lambda: clock[0])  # type: ignore[arg-type]
    _outbox_event(session_factory, n)
    first = pump.run_once()
    assert (first.delivered, first.retrying, mailbox.envelopes) == (0, 1, [])
    clock[0] += timedelta(hours=1)
    second = pump.run_once()
    assert (second.delivered, second.retrying) == (1, 0)
    (envelope,) = mailbox.envelopes
    assert sorted(envelope.rcpt_tos) == recipients
    assert message_from_bytes(envelope.content, policy=default_policy)["Subject"].startswith(
        "[Areya] ESCALATED alert: camera offline"
    )

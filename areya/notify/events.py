"""In-app alert events: JSON messages on the Redis pub/sub channel ``areya:events``.

Every alert transition (opened, acknowledged, resolved, escalated, snoozed, transferred: the patient moved to
another bed; a discharge resolves the patient's open alerts, note "patient discharged") becomes one message, published
after the database commit, so that any web process subscribed to the channel can relay it to browsers as a
server-sent event.  The message is exactly::

    {"type": "alert.opened", "alert_id": 12, "ward_id": 3, "patient_id": 7, "kind": "negative_emotion",
     "severity": 2, "state": "firing", "at": "2026-11-24T10:15:00+00:00"}

(``patient_id`` is null for camera alerts; for ``alert.snoozed`` without an open alert, ``alert_id``,
``severity`` and ``state`` are null.)  No names or other patient data travel on the channel.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "areya:events"
EVENT_TYPES: tuple[str, ...] = (
    "alert.opened",
    "alert.acknowledged",
    "alert.resolved",
    "alert.escalated",
    "alert.snoozed",
    "alert.transferred",
)
EVENT_KEYS: tuple[str, ...] = ("type", "alert_id", "ward_id", "patient_id", "kind", "severity", "state", "at")


@dataclass(frozen=True)
class AlertNotice:
    """One alert transition to announce (pub/sub, webhooks, e-mail) once its transaction is committed.

    ``note`` and ``camera_id`` travel to webhooks and e-mail only, never on the pub/sub channel.
    """

    type: str
    alert_id: int | None
    ward_id: int | None
    patient_id: int | None
    kind: str
    severity: int | None
    state: str | None
    at: datetime
    camera_id: int | None = None
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown alert event type {self.type!r}")
        if self.at.tzinfo is None:
            raise ValueError("event time must be timezone-aware")

    def to_payload(self) -> dict[str, Any]:
        """Everything the notice carries, JSON-ready (the outbox stores this; :meth:`from_payload` reads it)."""
        return {
            **self.to_event(),
            "camera_id": self.camera_id,
            "note": self.note,
            "extra": json.loads(json.dumps(self.extra, default=str)),
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> AlertNotice:
        return cls(
            type=data["type"],
            alert_id=data.get("alert_id"),
            ward_id=data.get("ward_id"),
            patient_id=data.get("patient_id"),
            kind=data["kind"],
            severity=data.get("severity"),
            state=data.get("state"),
            at=datetime.fromisoformat(data["at"]),
            camera_id=data.get("camera_id"),
            note=data.get("note"),
            extra=dict(data.get("extra") or {}),
        )

    def to_event(self) -> dict[str, Any]:
        """The pub/sub message (exactly :data:`EVENT_KEYS`)."""
        return {
            "type": self.type,
            "alert_id": self.alert_id,
            "ward_id": self.ward_id,
            "patient_id": self.patient_id,
            "kind": self.kind,
            "severity": self.severity,
            "state": self.state,
            "at": self.at.astimezone(UTC).isoformat(),
        }


def encode_event(notice: AlertNotice) -> str:
    return json.dumps(notice.to_event(), separators=(",", ":"), sort_keys=True)


def decode_event(raw: bytes | str) -> dict[str, Any]:
    """Parse a pub/sub message; raises ValueError if it is not an alert event."""
    try:
        data = json.loads(raw)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON alert event: {exc}") from None
    if not isinstance(data, dict) or data.get("type") not in EVENT_TYPES:
        raise ValueError("not an alert event")
    return data


def publish_events(client: redis.Redis, notices: Iterable[AlertNotice], channel: str = CHANNEL) -> int:
    """Publish each notice on ``channel``; returns how many were published (Redis errors are logged, not raised)."""
    notices = list(notices)
    if not notices:
        return 0
    try:
        pipe = client.pipeline(transaction=False)
        for notice in notices:
            pipe.publish(channel, encode_event(notice))
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("%d alert event(s) not published on %s: %s", len(notices), channel, exc)
        return 0
    return len(notices)


def iter_events(
    client: redis.Redis, *, channel: str = CHANNEL, timeout_s: float = 1.0, stop: Any = None
) -> Iterator[dict[str, Any] | None]:
    """Subscribe and yield each alert event as a dict; yields None every ``timeout_s`` without one (keep-alive).

    ``stop`` (e.g. a threading.Event) ends the loop when set.  For a web process relaying server-sent events.
    """
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    try:
        while stop is None or not stop.is_set():
            message = pubsub.get_message(timeout=timeout_s)
            if message is None or message.get("type") != "message":
                yield None
                continue
            try:
                yield decode_event(message["data"])
            except ValueError:
                log.debug("ignored a non-event message on %s", channel)
    finally:
        pubsub.close()


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

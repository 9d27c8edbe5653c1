"""The dashboard's alert actions: thin wrappers around :mod:`areya.alerts.lifecycle` (the one implementation of
alert transitions) that commit the request's transaction and then announce the change (pub/sub ``areya:events``,
webhooks, e-mail) through :mod:`areya.notify`.  Errors are :class:`areya.errors.AdminError` subclasses
(Invalid, Conflict, NotFound, and the lifecycle's Forbidden); nothing is committed when one is raised."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from areya.db.models import Alert, AlertSnooze
from areya.db.types import utcnow
from areya.webapp.services import actor, db, services

log = logging.getLogger(__name__)
SNOOZE_CHOICES_MIN: tuple[int, ...] = (15, 30, 60, 120, 240, 480, 1440)


def _lifecycle() -> Any:
    from areya.alerts import lifecycle

    return lifecycle


def _announce() -> None:
    notices = _lifecycle().take_notices(db())
    if not notices:
        return
    notifier = services().notifier()
    if notifier is None:
        return
    try:
        notifier.notify(notices)
    except Exception:  # noqa: BLE001 - the change is committed; a notification problem must not fail the request
        log.exception("alert notices could not be announced")


def acknowledge(alert_id: int, note: str | None) -> Alert:
    alert = _lifecycle().acknowledge_alert(db(), alert_id, actor=actor(), note=note, policy=services().alert_policy())
    db().commit()
    _announce()
    return alert  # type: ignore[no-any-return]


def resolve(alert_id: int, note: str | None, finding: str | None = None) -> Alert:
    alert = _lifecycle().resolve_alert(
        db(), alert_id, actor=actor(), note=note, policy=services().alert_policy(), finding=finding
    )
    db().commit()
    _announce()
    return alert  # type: ignore[no-any-return]


def snooze(patient_id: int, minutes: int, reason: str, now: datetime | None = None) -> AlertSnooze:
    now = now or utcnow()
    snooze_row = _lifecycle().snooze_patient(
        db(), patient_id, until=now + timedelta(minutes=minutes), reason=reason, actor=actor(), now=now
    )
    db().commit()
    _announce()
    return snooze_row  # type: ignore[no-any-return]


def get_alert(alert_id: int) -> Alert:
    return _lifecycle().get_alert(db(), alert_id)  # type: ignore[no-any-return]


def history(alert_id: int) -> list[Any]:
    return list(_lifecycle().alert_history(db(), alert_id))

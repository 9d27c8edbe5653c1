"""Alert priorities, after IEC 60601-1-8 (medical electrical equipment: alarm systems): every alert kind has a
priority (high, medium or low) and a condition: a *patient* (physiological) condition or a *technical* one.

* A camera that stops seeing its beds (``camera_offline``, ``pipeline_stalled``) is a technical condition at
  **medium** priority: it blinds monitoring, so it is never below the mood inference it prevents.
* Sustained negative emotion is a patient condition at **medium** priority: an inference from facial
  expressions that prompts a look, never above the technical condition.
* No kind is **high** (reserved for conditions needing an immediate response; Areya raises none) or **low**.
* Escalation (not acknowledged after ``escalate_after_s``) re-notifies and raises the alert's urgency *within*
  its priority (``escalation_level``); it never changes the priority.
* Clinician lists (the alert inbox, the ward and central station views) sort by priority, then, at equal priority,
  patient conditions before technical ones (the standard allows this ordering), then urgency and age. An admin's
  inbox puts technical conditions first: they are routed to admins/IT, and shown to clinicians on the bed itself.
* The numeric ``severity`` that APIs, webhooks and e-mails have always carried is derived from the priority
  (:data:`areya.db.models.PRIORITY_SEVERITY`: high 3, medium 2, low 1) and no longer climbs on escalation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case

from areya.db.models import ALERT_PRIORITIES, PRIORITY_SEVERITY, Alert

PATIENT = "patient"
TECHNICAL = "technical"
KIND_PRIORITY: dict[str, str] = {"negative_emotion": "medium", "camera_offline": "medium", "pipeline_stalled": "medium"}
KIND_CONDITION: dict[str, str] = {
    "negative_emotion": PATIENT,
    "camera_offline": TECHNICAL,
    "pipeline_stalled": TECHNICAL,
}
PRIORITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(ALERT_PRIORITIES)}  # high 0 .. low 2


def priority_of(kind: str) -> str:
    """The priority an alert of ``kind`` is raised at (unknown kinds: low)."""
    return KIND_PRIORITY.get(kind, "low")


def condition_of(kind: str) -> str:
    """``patient`` or ``technical``: what the alert is about (unknown kinds: technical)."""
    return KIND_CONDITION.get(kind, TECHNICAL)


def severity_of(priority: str) -> int:
    """The backward-compatible number of a priority: high 3, medium 2, low 1."""
    return PRIORITY_SEVERITY.get(priority, 1)


def check_priority(priority: str) -> str:
    if priority not in PRIORITY_RANK:
        raise ValueError(f"unknown alert priority {priority!r}: use one of {', '.join(ALERT_PRIORITIES)}")
    return priority


def rank(alert: Any, *, technical_first: bool = False) -> tuple[int, int, int]:
    """Sort key of one alert (smaller first): priority, then the condition (patient first for clinicians,
    technical first for admins), then urgency (higher escalation level first)."""
    technical = condition_of(alert.kind) == TECHNICAL
    return (
        PRIORITY_RANK.get(alert.priority, len(PRIORITY_RANK)),
        int(technical) if not technical_first else int(not technical),
        -int(alert.escalation_level or 0),
    )


def sql_order(*, technical_first: bool = False) -> list[Any]:
    """:func:`rank` as SQL ``ORDER BY`` clauses on :class:`Alert` (add the age after them)."""
    technical_kinds = [k for k, c in KIND_CONDITION.items() if c == TECHNICAL]
    by_priority = case(PRIORITY_RANK, value=Alert.priority, else_=len(PRIORITY_RANK))
    technical = case((Alert.kind.in_(technical_kinds), 1), else_=0)
    return [by_priority.asc(), technical.desc() if technical_first else technical.asc(), Alert.escalation_level.desc()]

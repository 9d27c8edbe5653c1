"""Audit trail: every admin change (and patient data view) becomes an AuditEvent row."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from areya.db.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who performs an operation: a dashboard user (user_id) or a named operator/process (label)."""

    user_id: int | None = None
    label: str = "system"
    # recorded with every event of this actor, e.g. (("token", 7), ("issued_by", "admin")) for an API token
    context: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def cli(cls) -> Actor:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
        return cls(None, f"cli:{name}")


SYSTEM = Actor()


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    patient_id: int | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the session (committed with the change it describes)."""
    payload = {"by": actor.label, **dict(actor.context), **(detail or {})}
    event = AuditEvent(user_id=actor.user_id, action=action, patient_id=patient_id, target=target, detail=payload)
    session.add(event)
    return event

"""Helpers of the ADT tests: HL7 messages, ACK fields, a snapshot of every table."""

from __future__ import annotations

from typing import Any

import hl7
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.admin import patients as patient_ops
from areya.admin.refs import bed_ref
from areya.db.base import Base
from areya.db.models import AuditEvent

FACILITY = "GENHOSP"
LOCATIONS = (
    ("ICU^101^A", "ICU/1"),
    ("ICU^102^A", "ICU/2"),
    ("SURG^201^A", "Surgery/1"),
    ("ICU^199^Z", "ICU/99"),  # mapped, but Areya has no such bed
)


def adt(
    event: str,
    control_id: str,
    mrn: str = "MRN001",
    *,
    name: str = "Lovelace^Ada",
    location: str = "",
    prior: str = "",
    at: str = "20240109080000",
    authority: str = "GENHOSP",
) -> str:
    """An ADT^<event> message (segments joined by CR)."""
    segments = [
        f"MSH|^~\\&|PAS|{FACILITY}|AREYA|WARD|{at}||ADT^{event}^ADT_A01|{control_id}|P|2.5",
        f"EVN|{event}|{at}",
        f"PID|1||{mrn}^^^{authority}^MR||{name}||19500101|F",
        f"PV1|1|I|{location}|||{prior}",
    ]
    return "\r".join(segments)


def ack_fields(ack: str) -> dict[str, str]:
    """MSA-1, MSA-2 and ERR-3.1 / ERR-8 of an ACK, read back with the hl7 package."""
    message = hl7.parse(ack)
    out = {"code": str(message["MSA.F1"]), "control_id": str(message["MSA.F2"]), "type": str(message.segment("MSH")[9])}
    out["text"] = message.unescape(str(message.segment("MSA")(3))) if len(message.segment("MSA")) > 3 else ""
    try:
        message.segment("ERR")
    except KeyError:
        return out
    out["error_code"] = str(message["ERR.F3.R1.C1"])
    out["error"] = str(message["ERR.F8"])
    out["location"] = str(message.segment("ERR")[2])
    return out


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (to show a refused message changed nothing)."""
    session.rollback()  # a fresh read transaction: see what the listener committed
    return {
        table.name: [tuple(row) for row in session.execute(select(table).order_by(*table.primary_key.columns))]
        for table in Base.metadata.sorted_tables
    }


def bed_of(session: Session, mrn: str) -> str | None:
    session.rollback()  # a fresh read transaction: see what the listener committed
    patient = patient_ops.get_patient(session, mrn)
    current = patient_ops.current_assignment(session, patient)
    return bed_ref(current.bed) if current else None


def state(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """:func:`snapshot` without the audit trail (a refusal changes nothing but adds an ``adt.refused`` row)."""
    return {name: rows for name, rows in snapshot(session).items() if name != "audit_events"}


def audit_rows(session: Session, action: str) -> list[dict[str, Any]]:
    """The ``detail`` of each audit row of ``action``, oldest first."""
    session.rollback()
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return [dict(row.detail) for row in session.scalars(query)]

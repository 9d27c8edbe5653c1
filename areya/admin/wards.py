"""Wards and their beds."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from areya.admin.refs import bed_ref, clean_name, flush, get_bed, get_ward
from areya.audit import SYSTEM, Actor, record
from areya.db.models import Bed, BedAssignment, Camera, Ward
from areya.errors import Conflict


def add_ward(session: Session, name: str, *, actor: Actor = SYSTEM) -> Ward:
    name = clean_name(name, "ward name", 100)
    if session.scalar(select(Ward.id).where(Ward.name == name)) is not None:
        raise Conflict(f"ward {name!r} already exists")
    ward = Ward(name=name)
    session.add(ward)
    flush(session, f"add ward {name!r}")
    record(session, actor, "ward.add", target=f"ward:{ward.id}", detail={"name": name})
    return ward


def list_wards(session: Session) -> list[Ward]:
    return list(session.scalars(select(Ward).options(selectinload(Ward.beds)).order_by(Ward.name)))


def delete_ward(session: Session, name: str, *, actor: Actor = SYSTEM) -> None:
    """Delete an empty ward (no beds, no cameras); otherwise refuse."""
    ward = get_ward(session, name)
    n_beds = session.scalar(select(func.count()).select_from(Bed).where(Bed.ward_id == ward.id)) or 0
    n_cameras = session.scalar(select(func.count()).select_from(Camera).where(Camera.ward_id == ward.id)) or 0
    if n_beds or n_cameras:
        raise Conflict(f"ward {ward.name!r} is not empty ({n_beds} bed(s), {n_cameras} camera(s)); remove them first")
    record(session, actor, "ward.delete", target=f"ward:{ward.id}", detail={"name": ward.name})
    session.delete(ward)
    flush(session, f"delete ward {ward.name!r}")


def add_bed(session: Session, ward_name: str, label: str, *, actor: Actor = SYSTEM) -> Bed:
    ward = get_ward(session, ward_name)
    label = clean_name(label, "bed label", 50)
    if session.scalar(select(Bed.id).where(Bed.ward_id == ward.id, Bed.label == label)) is not None:
        raise Conflict(f"bed {label!r} already exists in ward {ward.name!r}")
    bed = Bed(ward=ward, label=label)
    session.add(bed)
    flush(session, f"add bed {ward.name}/{label}")
    record(session, actor, "bed.add", target=f"bed:{bed.id}", detail={"bed": f"{ward.name}/{label}"})
    return bed


def list_beds(session: Session, ward_name: str | None = None) -> list[tuple[Bed, BedAssignment | None]]:
    """Beds (of one ward or all) with their current assignment, if any."""
    query = (
        select(Bed, BedAssignment)
        .join(Ward, Ward.id == Bed.ward_id)
        .outerjoin(BedAssignment, (BedAssignment.bed_id == Bed.id) & BedAssignment.end_at.is_(None))
        .order_by(Ward.name, Bed.label)
    )
    if ward_name is not None:
        query = query.where(Bed.ward_id == get_ward(session, ward_name).id)
    return [(bed, assignment) for bed, assignment in session.execute(query)]


def delete_bed(session: Session, ref: str, *, actor: Actor = SYSTEM) -> None:
    """Delete a bed that never held a patient (beds with history are kept for the record)."""
    bed = get_bed(session, ref)
    used = session.scalar(select(func.count()).select_from(BedAssignment).where(BedAssignment.bed_id == bed.id))
    if used:
        raise Conflict(f"bed {bed_ref(bed)} has a patient history and cannot be deleted")
    record(session, actor, "bed.delete", target=f"bed:{bed.id}", detail={"bed": bed_ref(bed)})
    session.delete(bed)
    flush(session, f"delete bed {ref}")

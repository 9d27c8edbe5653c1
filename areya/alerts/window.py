"""The few SQL aggregate queries a tick needs: one GROUP BY over the window's observations for all patients."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from areya.alerts.rules import WindowStats
from areya.db.models import LABELS4, Bed, BedAssignment, Observation, Patient

_PROB_COLUMNS = {
    "angry": Observation.p_angry,
    "happy": Observation.p_happy,
    "relaxed": Observation.p_relaxed,
    "sad": Observation.p_sad,
}


def window_stats(
    session: Session, *, until: datetime, window_s: int, patient_ids: Iterable[int] | None = None
) -> dict[int, WindowStats]:
    """Per-patient aggregates of observations captured in ``(until - window_s, until]`` (one query)."""
    since = until - timedelta(seconds=window_s)
    columns = [
        Observation.patient_id,
        func.count(),
        *[func.sum(case((Observation.label4 == label, 1), else_=0)) for label in LABELS4],
        *[func.sum(_PROB_COLUMNS[label]) for label in LABELS4],
        func.min(Observation.captured_at),
        func.max(Observation.captured_at),
    ]
    query = (
        select(*columns)
        .where(Observation.captured_at > since, Observation.captured_at <= until)
        .group_by(Observation.patient_id)
    )
    if patient_ids is not None:
        ids = sorted(set(patient_ids))
        if not ids:
            return {}
        query = query.where(Observation.patient_id.in_(ids))
    out: dict[int, WindowStats] = {}
    k = len(LABELS4)
    for row in session.execute(query):
        patient_id, n = int(row[0]), int(row[1])
        counts = {label: int(row[2 + i] or 0) for i, label in enumerate(LABELS4)}
        sums = {label: float(row[2 + k + i] or 0.0) for i, label in enumerate(LABELS4)}
        out[patient_id] = WindowStats(
            patient_id=patient_id,
            n=n,
            counts=counts,
            negative_mass=sums["angry"] + sums["sad"],
            prob_sums=sums,
            first_at=row[2 + 2 * k],
            last_at=row[3 + 2 * k],
        )
    return out


def admitted_patient_wards(session: Session) -> dict[int, int | None]:
    """Admitted patient id -> ward id of the current bed (None without a bed)."""
    query = (
        select(Patient.id, Bed.ward_id)
        .outerjoin(BedAssignment, and_(BedAssignment.patient_id == Patient.id, BedAssignment.end_at.is_(None)))
        .outerjoin(Bed, Bed.id == BedAssignment.bed_id)
        .where(Patient.status == "admitted")
    )
    return {int(pid): (int(wid) if wid is not None else None) for pid, wid in session.execute(query)}


def last_observation_by_camera(session: Session, *, until: datetime, lookback_s: float) -> dict[int, datetime]:
    """Camera id -> time of its latest observation in ``(until - lookback_s, until]`` (one query)."""
    since = until - timedelta(seconds=lookback_s)
    query = (
        select(Observation.camera_id, func.max(Observation.captured_at))
        .where(Observation.captured_at > since, Observation.captured_at <= until, Observation.camera_id.is_not(None))
        .group_by(Observation.camera_id)
    )
    return {int(cid): at for cid, at in session.execute(query) if at is not None}

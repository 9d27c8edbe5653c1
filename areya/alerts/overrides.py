"""Per-ward and per-patient rule overrides (RuleOverride rows): validation, set/clear, resolution.

Precedence: global settings < ward override < patient override.  Keys are the settings names of
:data:`areya.alerts.rules.OVERRIDABLE` (``negative_window_s``, ``negative_min_obs``, ``negative_open_share``,
``negative_close_share``, ``resolve_period_s``, ``escalate_after_s``, ``negative_cooldown_s``,
``negative_reopen_margin``, and the per-patient baseline's ``negative_baseline_s`` (``off``),
``negative_baseline_min_obs``, ``negative_baseline_margin``, ``negative_baseline_ceiling``, and the night's
``negative_night_raise``), validated by the
same parsers as the settings.  A combination that became invalid later (e.g. the global open share lowered below a
ward's close share) is ignored with a warning at evaluation time, never crashing the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.alerts.errors import Invalid, NotFound
from areya.alerts.rules import OVERRIDABLE, RuleParams
from areya.audit import SYSTEM, Actor, record
from areya.config import Settings
from areya.db.models import Patient, RuleOverride, Ward
from areya.db.types import utcnow

log = logging.getLogger(__name__)


def parse_override_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated, typed override values (raises Invalid naming the bad key)."""
    parsers = {f.name: f.metadata["parse"] for f in fields(Settings) if f.name in OVERRIDABLE}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in parsers:
            raise Invalid(f"unknown rule setting {key!r}: use one of {', '.join(OVERRIDABLE)}")
        try:
            out[key] = parsers[key](value)
        except ValueError as exc:
            raise Invalid(f"{key}: {exc}") from None
    return out


def apply_values(params: RuleParams, values: Mapping[str, Any]) -> RuleParams:
    """``params`` with override values (settings names) applied; raises ValueError if the result is invalid."""
    return replace(params, **{OVERRIDABLE[key]: value for key, value in values.items() if key in OVERRIDABLE})


def _target(session: Session, ward_id: int | None, patient_id: int | None) -> tuple[str, Any]:
    if (ward_id is None) == (patient_id is None):
        raise Invalid("an override is for exactly one ward or one patient")
    if ward_id is not None:
        ward = session.get(Ward, ward_id)
        if ward is None:
            raise NotFound(f"unknown ward id {ward_id}")
        return f"ward:{ward.id}", RuleOverride.ward_id == ward.id
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(f"unknown patient id {patient_id}")
    return f"patient:{patient.id}", RuleOverride.patient_id == patient.id


def set_rule_override(
    session: Session,
    values: Mapping[str, Any],
    *,
    ward_id: int | None = None,
    patient_id: int | None = None,
    base: RuleParams | None = None,
    actor: Actor = SYSTEM,
) -> RuleOverride:
    """Merge ``values`` into the ward's or patient's override (created if missing); audited.

    With ``base`` (the global parameters), the resulting combination is checked too.
    """
    parsed = parse_override_values(values)
    if not parsed:
        raise Invalid("no rule setting given")
    target, condition = _target(session, ward_id, patient_id)
    row = session.scalar(select(RuleOverride).where(condition).order_by(RuleOverride.id).limit(1))
    merged = {**(row.settings if row is not None else {}), **parsed}
    if base is not None:
        try:
            apply_values(base, merged)
        except ValueError as exc:
            raise Invalid(f"override for {target}: {exc}") from None
    if row is None:
        row = RuleOverride(ward_id=ward_id, patient_id=patient_id, settings=merged, updated_at=utcnow())
        session.add(row)
    else:
        row.settings = merged  # a new dict: JSON columns track assignment, not in-place changes
        row.updated_at = utcnow()
    session.flush()
    record(session, actor, "alerts.override.set", patient_id=patient_id, target=target, detail={"settings": merged})
    return row


def clear_rule_override(
    session: Session,
    *,
    ward_id: int | None = None,
    patient_id: int | None = None,
    keys: list[str] | None = None,
    actor: Actor = SYSTEM,
) -> int:
    """Remove some keys (or all) of a ward's or patient's override; returns how many rows changed."""
    target, condition = _target(session, ward_id, patient_id)
    if keys:
        unknown = [k for k in keys if k not in OVERRIDABLE]
        if unknown:
            raise Invalid(f"unknown rule setting {unknown[0]!r}: use one of {', '.join(OVERRIDABLE)}")
    changed = 0
    for row in session.scalars(select(RuleOverride).where(condition)).all():
        remaining = {k: v for k, v in row.settings.items() if keys and k not in keys}
        if remaining:
            row.settings = remaining
            row.updated_at = utcnow()
        else:
            session.delete(row)
        changed += 1
    session.flush()
    record(session, actor, "alerts.override.clear", patient_id=patient_id, target=target, detail={"keys": keys})
    return changed


class OverrideResolver:
    """Rule parameters per (ward, patient), from the global parameters and all RuleOverride rows (cached)."""

    def __init__(self, base: RuleParams, rows: list[RuleOverride]) -> None:
        self.base = base
        self.ward_values: dict[int, dict[str, Any]] = {}
        self.patient_values: dict[int, dict[str, Any]] = {}
        for row in sorted(rows, key=lambda r: r.id):
            if row.ward_id is not None:
                self.ward_values.setdefault(row.ward_id, {}).update(row.settings or {})
            elif row.patient_id is not None:
                self.patient_values.setdefault(row.patient_id, {}).update(row.settings or {})
        self._cache: dict[tuple[int | None, int | None], RuleParams] = {}

    @classmethod
    def load(cls, session: Session, base: RuleParams) -> OverrideResolver:
        return cls(base, list(session.scalars(select(RuleOverride))))

    @property
    def empty(self) -> bool:
        return not self.ward_values and not self.patient_values

    def params(self, ward_id: int | None, patient_id: int | None = None) -> RuleParams:
        ward_key = ward_id if ward_id in self.ward_values else None
        patient_key = patient_id if patient_id in self.patient_values else None
        key = (ward_key, patient_key)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        params = self.base
        levels = (("ward", self.ward_values.get(ward_key)), ("patient", self.patient_values.get(patient_key)))
        for label, values in levels:
            if not values:
                continue
            try:
                params = apply_values(params, parse_override_values(values))
            except (ValueError, Invalid) as exc:
                log.warning(
                    "ignoring the %s override %s (ward %s, patient %s): %s", label, values, ward_id, patient_id, exc
                )
        self._cache[key] = params
        return params

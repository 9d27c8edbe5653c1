"""Ward view tiles: one per bed (patient, the rule window's evidence with the latest reading beside it, age of
the last observation, last-hour trend, open alerts, camera status), and a cheap watcher telling which tiles
changed since the last poll.

The tile's headline emotion summarises the window the negative-emotion rule reads (the most frequent label and
the rule's score with its threshold, :mod:`areya.alerts.evidence`); an open alert's own evidence is the same
object the inbox, the API and the notifications show.  A bed whose readings of the last :data:`UNCLEAR_FACE_S`
seconds were all set aside by the rule (face quality below ``min_face_quality``), over at least half of that time,
shows "Face not clearly visible" instead of an emotion guess."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from areya.alerts.evidence import NegativeEvidence
from areya.alerts.overrides import OverrideResolver
from areya.alerts.priority import TECHNICAL, condition_of, sql_order
from areya.alerts.rules import RuleParams
from areya.alerts.window import current_evidence
from areya.db.models import (
    ALERT_OPEN_STATES,
    LABELS4,
    Alert,
    AlertSnooze,
    Bed,
    BedAssignment,
    BedZone,
    Camera,
    Observation,
    Patient,
    User,
    Ward,
)
from areya.webapp.bed_state import BedState, OpenAlert, RecentResolve, bed_state
from areya.webapp.fmt import bed_name, zone
from areya.webapp.svg import stacked_bars
from areya.webapp.timeline import bucketize, floor_minute, minute_counts
from areya.worker.bedside import bedside_presence

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)
TREND_MINUTES = 60
UNCLEAR_FACE_S = 60  # a bed whose readings of the last minute were all set aside: "Face not clearly visible"
UNCLEAR_TEXT = "Face not clearly visible"
STATUS_RANK = {"error": 0, "offline": 1, "unknown": 2, "disabled": 3, "online": 4}


@dataclass
class CameraStatus:
    camera_id: int
    name: str
    status: str  # online | offline | error | unknown | disabled


@dataclass
class Tile:
    ward_id: int
    bed_id: int
    bed_label: str
    ward_name: str = ""
    patient_id: int | None = None
    patient_name: str | None = None
    mrn: str | None = None
    label4: str | None = None
    confidence4: float | None = None
    probs4: list[float] = field(default_factory=list)
    last_at: datetime | None = None
    trend_svg: str = ""
    window: NegativeEvidence | None = None  # the rule's window now (headline emotion, score, counts)
    alert_evidence: NegativeEvidence | None = None  # the open negative-emotion alert's evidence
    open_alerts: int = 0
    max_severity: int = 0
    alert_state: str | None = None  # firing if any firing, else acknowledged, else None
    alert_id: int | None = None  # the open alert the badge links to (firing first, then most severe)
    cameras: list[CameraStatus] = field(default_factory=list)
    snoozed_until: datetime | None = None
    quality: float | None = None  # the latest reading's face quality (None: not measured)
    latest_set_aside: bool = False  # the latest reading is below min_face_quality: the rule sets it aside
    recent: QualitySummary | None = None  # the readings of the last UNCLEAR_FACE_S seconds
    bedside_others: int = 0  # other people seen in the bed's zone within the last minute (areya.worker.bedside)
    bedside_text: str | None = None  # "Someone else at the bedside", or None
    state: BedState | None = None  # the one state the tile shows (areya.webapp.bed_state)
    technical: str | None = None  # the kind of an open technical alert on one of the bed's cameras

    @property
    def face_unclear(self) -> bool:
        """Every reading of the last :data:`UNCLEAR_FACE_S` seconds was set aside, over at least half that time:
        the tile says "Face not clearly visible" instead of an emotion."""
        return self.recent is not None and self.recent.unclear

    @property
    def camera_status(self) -> str:
        if not self.cameras:
            return "none"
        return min((c.status for c in self.cameras), key=lambda s: STATUS_RANK.get(s, 2))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ward_id": self.ward_id,
            "ward": self.ward_name,
            "bed_id": self.bed_id,
            "bed": self.bed_label,
            "patient_id": self.patient_id,
            "patient_name": self.patient_name,
            "mrn": self.mrn,
            "emotion": self.label4,
            "confidence": None if self.confidence4 is None else round(self.confidence4, 4),
            "probs4": dict(zip(LABELS4, (round(p, 4) for p in self.probs4), strict=False)) if self.probs4 else None,
            "last_observation_at": self.last_at.isoformat() if self.last_at else None,
            "window": self.window.public() if self.window is not None else None,
            "alert_evidence": self.alert_evidence.public() if self.alert_evidence is not None else None,
            "open_alerts": self.open_alerts,
            "max_severity": self.max_severity,
            "alert_state": self.alert_state,
            "alert_id": self.alert_id,
            "camera_status": self.camera_status,
            "cameras": [{"id": c.camera_id, "name": c.name, "status": c.status} for c in self.cameras],
            "snoozed_until": self.snoozed_until.isoformat() if self.snoozed_until else None,
            "quality": None if self.quality is None else round(self.quality, 4),
            "face_unclear": self.face_unclear,
            "bedside": {"others": self.bedside_others, "text": self.bedside_text},
            "state": self.state.as_dict() if self.state is not None else None,
            "technical": self.technical,
        }


@dataclass(frozen=True)
class QualitySummary:
    """The face quality of a patient's readings over a period: how many, how many set aside (below
    ``min_quality``), how many had a quality measured and their mean, and the first reading's time."""

    n: int
    n_set_aside: int
    n_measured: int
    mean: float | None
    first_at: datetime | None
    since: datetime
    min_quality: float

    @property
    def unclear(self) -> bool:
        """All readings set aside, and the first at least half the period ago (not one poor frame)."""
        if self.n <= 0 or self.n_set_aside < self.n or self.first_at is None:
            return False
        until = self.since + timedelta(seconds=UNCLEAR_FACE_S)
        return self.first_at <= until - timedelta(seconds=UNCLEAR_FACE_S / 2)


def quality_summaries(
    session: Session, patient_ids: list[int], since: datetime, until: datetime, min_quality: float
) -> dict[int, QualitySummary]:
    """Per patient, :class:`QualitySummary` of the readings captured in ``(since, until]`` (one query)."""
    if not patient_ids:
        return {}
    set_aside = case((Observation.quality < min_quality, 1), else_=0) if min_quality > 0 else None
    rows = session.execute(
        select(
            Observation.patient_id,
            func.count(),
            func.sum(set_aside) if set_aside is not None else func.count() * 0,
            func.count(Observation.quality),
            func.avg(Observation.quality),
            func.min(Observation.captured_at),
        )
        .where(
            Observation.patient_id.in_(patient_ids),
            Observation.captured_at > since,
            Observation.captured_at <= until,
        )
        .group_by(Observation.patient_id)
    )
    return {
        int(pid): QualitySummary(
            int(n),
            int(aside or 0),
            int(measured or 0),
            None if mean is None else float(mean),
            first,
            since,
            float(min_quality),
        )
        for pid, n, aside, measured, mean, first in rows
    }


def camera_statuses(session: Session, ward_id: int, client: redis.Redis | None) -> dict[int, CameraStatus]:
    """Every camera of the ward with its health (Redis, published by the ingestor; else the DB column)."""
    from areya.camera.health import read_health

    statuses: dict[int, CameraStatus] = {}
    for cam in session.scalars(select(Camera).where(Camera.ward_id == ward_id).order_by(Camera.name)):
        status = cam.health_status or "unknown"
        if not cam.enabled:
            status = "disabled"
        elif client is not None:
            try:
                health = read_health(client, cam.id)
            except Exception:  # noqa: BLE001 - Redis away: the DB column is the fallback
                health = {}
            if health.get("status"):
                status = str(health["status"])
        statuses[cam.id] = CameraStatus(cam.id, cam.name, status)
    return statuses


def _beds(session: Session, ward_id: int) -> list[tuple[Bed, Patient | None]]:
    rows = session.execute(
        select(Bed, Patient)
        .outerjoin(BedAssignment, (BedAssignment.bed_id == Bed.id) & BedAssignment.end_at.is_(None))
        .outerjoin(Patient, Patient.id == BedAssignment.patient_id)
        .where(Bed.ward_id == ward_id)
        .order_by(Bed.label)
    )
    return [(bed, patient) for bed, patient in rows]


def _open_alerts(session: Session, patient_ids: list[int]) -> dict[int, tuple[int, int, str]]:
    if not patient_ids:
        return {}
    out: dict[int, tuple[int, int, str]] = {}
    rows = session.execute(
        select(Alert.patient_id, Alert.state, func.count(), func.max(Alert.severity))
        .where(Alert.patient_id.in_(patient_ids), Alert.state.in_(ALERT_OPEN_STATES))
        .group_by(Alert.patient_id, Alert.state)
    )
    for pid, state, n, sev in rows:
        count, severity, current = out.get(pid, (0, 0, "acknowledged"))
        out[pid] = (count + int(n), max(severity, int(sev or 0)), "firing" if state == "firing" else current)
    return out


def _badge_alert_ids(session: Session, patient_ids: list[int]) -> dict[int, int]:
    """Per patient, the open alert a tile's badge links to: firing before acknowledged, then by priority (a patient
    condition before a technical one), newest."""
    if not patient_ids:
        return {}
    rows = session.execute(
        select(Alert.patient_id, Alert.id)
        .where(Alert.patient_id.in_(patient_ids), Alert.state.in_(ALERT_OPEN_STATES))
        .order_by((Alert.state == "firing").desc(), *sql_order(), Alert.opened_at.desc(), Alert.id.desc())
    )
    out: dict[int, int] = {}
    for pid, alert_id in rows:
        out.setdefault(int(pid), int(alert_id))
    return out


def _snoozes(session: Session, patient_ids: list[int], now: datetime) -> dict[int, datetime]:
    if not patient_ids:
        return {}
    rows = session.execute(
        select(AlertSnooze.patient_id, func.max(AlertSnooze.until))
        .where(AlertSnooze.patient_id.in_(patient_ids), AlertSnooze.until > now)
        .group_by(AlertSnooze.patient_id)
    )
    return {pid: until for pid, until in rows if until is not None}


def _bed_cameras(session: Session, ward_id: int) -> dict[int, list[int]]:
    rows = session.execute(
        select(BedZone.bed_id, BedZone.camera_id)
        .join(Camera, Camera.id == BedZone.camera_id)
        .where(Camera.ward_id == ward_id)
    )
    out: dict[int, list[int]] = defaultdict(list)
    for bed_id, camera_id in rows:
        out[bed_id].append(camera_id)
    return out


def _alert_evidence(session: Session, patient_ids: list[int]) -> dict[int, NegativeEvidence]:
    """Per patient, the evidence of the open negative-emotion alert (the newest if several)."""
    if not patient_ids:
        return {}
    out: dict[int, NegativeEvidence] = {}
    rows = session.execute(
        select(Alert.patient_id, Alert.evidence)
        .where(Alert.patient_id.in_(patient_ids), Alert.kind == "negative_emotion", Alert.state.in_(ALERT_OPEN_STATES))
        .order_by(Alert.opened_at.desc(), Alert.id.desc())
    )
    for pid, evidence in rows:
        parsed = NegativeEvidence.from_json(evidence)
        if parsed is not None:
            out.setdefault(int(pid), parsed)
    return out


def _open_negative(session: Session, patient_ids: list[int]) -> dict[int, OpenAlert]:
    """Per patient, the open negative-emotion alert (firing first, then the oldest) with who acknowledged it."""
    if not patient_ids:
        return {}
    rows = session.execute(
        select(Alert, User.username)
        .outerjoin(User, User.id == Alert.acknowledged_by)
        .where(Alert.patient_id.in_(patient_ids), Alert.kind == "negative_emotion", Alert.state.in_(ALERT_OPEN_STATES))
        .order_by((Alert.state == "firing").desc(), Alert.opened_at.asc(), Alert.id.asc())
    )
    out: dict[int, OpenAlert] = {}
    for alert, username in rows:
        out.setdefault(
            int(alert.patient_id),
            OpenAlert(
                alert.id, alert.state, alert.opened_at, alert.acknowledged_at, username, int(alert.escalation_level)
            ),
        )
    return out


def _recent_resolves(
    session: Session, patient_ids: list[int], now: datetime, params: dict[int, RuleParams]
) -> dict[int, RecentResolve]:
    """Per patient, the latest negative-emotion alert a clinician resolved by hand whose cool-down (the patient's
    ``cooldown_s``, or ``no_distress_cooldown_s`` after a "no distress seen" finding when longer) has not ended,
    with who resolved it and the score that reopens it before then."""
    longest = max((p.longest_cooldown_s for p in params.values()), default=0)
    if not patient_ids or longest <= 0:
        return {}
    rows = session.execute(
        select(Alert, User.username)
        .outerjoin(User, User.id == Alert.resolved_by)
        .where(
            Alert.patient_id.in_(patient_ids),
            Alert.kind == "negative_emotion",
            Alert.resolution == "manual",
            Alert.resolved_at > now - timedelta(seconds=longest),
        )
        .order_by(Alert.resolved_at.desc(), Alert.id.desc())
    )
    out: dict[int, RecentResolve] = {}
    for alert, username in rows:
        pid = int(alert.patient_id)
        p = params.get(pid)
        if pid in out or p is None or alert.resolved_at is None:
            continue
        until = alert.resolved_at + timedelta(seconds=p.cooldown_for(alert.finding))
        if until <= now:
            continue
        evidence = NegativeEvidence.from_json(alert.evidence)
        reopen = min(1.0, evidence.resolved_level() + p.reopen_margin) if evidence is not None else None
        out[pid] = RecentResolve(alert.id, alert.resolved_at, username or "system", until, reopen, alert.finding)
    return out


def _technical_alerts(session: Session, camera_ids: set[int]) -> dict[int, str]:
    """Camera id -> the kind of its open technical alert (camera offline, pipeline stalled)."""
    if not camera_ids:
        return {}
    rows = session.execute(
        select(Alert.camera_id, Alert.kind)
        .where(Alert.camera_id.in_(camera_ids), Alert.state.in_(ALERT_OPEN_STATES))
        .order_by(Alert.opened_at.asc(), Alert.id.asc())
    )
    out: dict[int, str] = {}
    for camera_id, kind in rows:
        if condition_of(kind) == TECHNICAL:
            out.setdefault(int(camera_id), kind)
    return out


def latest_observation(session: Session, patient_id: int) -> Observation | None:
    return session.scalar(
        select(Observation)
        .where(Observation.patient_id == patient_id)
        .order_by(Observation.captured_at.desc(), Observation.id.desc())
        .limit(1)
    )


def load_tiles(
    session: Session,
    ward_id: int,
    client: redis.Redis | None,
    now: datetime,
    bed_ids: set[int] | None = None,
    params: RuleParams | None = None,
    tz_name: str = "UTC",
) -> list[Tile]:
    """The ward's tiles (only ``bed_ids`` when given), ordered by bed label; ``params``: the global rule
    parameters (``RuleParams.from_settings(settings)``; ward and patient overrides are applied here);
    ``tz_name``: the hospital time zone (setting ``timezone``) of the trend's tooltips."""
    beds = [(b, p) for b, p in _beds(session, ward_id) if bed_ids is None or b.id in bed_ids]
    patient_ids = [p.id for _, p in beds if p is not None]
    end = floor_minute(now) + timedelta(minutes=1)
    start = end - timedelta(minutes=TREND_MINUTES)
    trends = minute_counts(session, patient_ids, start, end)
    alerts = _open_alerts(session, patient_ids)
    params = params or RuleParams()
    windows = current_evidence(session, params, now, {pid: ward_id for pid in patient_ids})
    resolver = OverrideResolver.load(session, params)
    resolves = _recent_resolves(session, patient_ids, now, {pid: resolver.params(ward_id, pid) for pid in patient_ids})
    negatives = _open_negative(session, patient_ids)
    ward_name = session.scalar(select(Ward.name).where(Ward.id == ward_id)) or ""
    recent = quality_summaries(session, patient_ids, now - timedelta(seconds=UNCLEAR_FACE_S), now, params.min_quality)
    alert_evidence = _alert_evidence(session, patient_ids)
    badge_alerts = _badge_alert_ids(session, patient_ids)
    snoozes = _snoozes(session, patient_ids, now)
    cams = camera_statuses(session, ward_id, client)
    bed_cams = _bed_cameras(session, ward_id)
    technical = _technical_alerts(session, {c for cs in bed_cams.values() for c in cs})
    tiles: list[Tile] = []
    for bed, patient in beds:
        tile = Tile(ward_id=ward_id, bed_id=bed.id, bed_label=bed.label, ward_name=ward_name)
        tile.cameras = [cams[c] for c in bed_cams.get(bed.id, []) if c in cams]
        tile.technical = next((technical[c] for c in bed_cams.get(bed.id, []) if c in technical), None)
        if patient is not None:
            tile.patient_id, tile.patient_name, tile.mrn = patient.id, patient.display_name, patient.mrn
            obs = latest_observation(session, patient.id)
            if obs is not None:
                tile.label4, tile.confidence4, tile.last_at = obs.label4, obs.confidence4, obs.captured_at
                tile.probs4 = obs.probs4
                tile.quality = obs.quality
                tile.latest_set_aside = obs.quality is not None and obs.quality < params.min_quality
            tile.recent = recent.get(patient.id)
            tile.bedside_others, tile.bedside_text = bedside_presence(client, bed.id)
            tile.window = windows.get(patient.id)
            tile.alert_evidence = alert_evidence.get(patient.id)
            buckets = bucketize(trends.get(patient.id, {}), start, end, 1, LABELS4)
            tile.trend_svg = stacked_bars(
                buckets,
                LABELS4,
                width=180,
                height=36,
                title=f"{bed_name(bed.label)}: emotions over the last hour",
                tz=zone(tz_name),
            )
            count, severity, state = alerts.get(patient.id, (0, 0, None))
            tile.open_alerts, tile.max_severity, tile.alert_state = count, severity, state
            tile.alert_id = badge_alerts.get(patient.id)
            tile.snoozed_until = snoozes.get(patient.id)
        tile.state = bed_state(
            has_patient=patient is not None,
            now=now,
            window=tile.window,
            alert_evidence=tile.alert_evidence,
            open_alert=negatives.get(patient.id) if patient is not None else None,
            resolve=resolves.get(patient.id) if patient is not None else None,
            camera_status=tile.camera_status,
            technical=tile.technical,
            face_unclear=tile.face_unclear,
            last_at=tile.last_at,
            tz_name=tz_name,
        )
        tiles.append(tile)
    return tiles


def load_station(
    session: Session,
    ward_ids: list[int],
    client: redis.Redis | None,
    now: datetime,
    params: RuleParams | None = None,
    tz_name: str = "UTC",
) -> list[Tile]:
    """Every bed of these wards, ordered by need (:meth:`BedState.sort_key`: needs attention, still low mood
    after a resolve, not monitored, calm, empty; the longest first), then ward and bed."""
    tiles = [t for w in ward_ids for t in load_tiles(session, w, client, now, params=params, tz_name=tz_name)]
    return sorted(tiles, key=station_key)


def station_key(tile: Tile) -> tuple[Any, ...]:
    state = tile.state.sort_key() if tile.state is not None else (99,)
    return (*state, tile.ward_name, tile.bed_label)


class TileWatcher:
    """Which beds' tiles changed since the previous poll, with a few cheap queries (new observation ids since
    the last seen id, current assignments, open alerts, snoozes, camera health)."""

    def __init__(self, ward_id: int, refresh_all_s: float = 60.0) -> None:
        self.ward_id = ward_id
        self.refresh_all_s = refresh_all_s
        self._last_id: int | None = None
        self._state: dict[int, tuple[Any, ...]] = {}
        self._last_full = time.monotonic()

    def poll(self, session: Session, client: redis.Redis | None, now: datetime) -> set[int]:
        beds = _beds(session, self.ward_id)
        patient_of = {bed.id: (p.id if p is not None else None) for bed, p in beds}
        patient_ids = [pid for pid in patient_of.values() if pid is not None]
        max_id = session.scalar(select(func.max(Observation.id))) or 0
        fresh: set[int] = set()
        if self._last_id is not None and max_id > self._last_id and patient_ids:
            fresh = set(
                session.scalars(
                    select(Observation.patient_id)
                    .distinct()
                    .where(Observation.id > self._last_id, Observation.patient_id.in_(patient_ids))
                )
            )
        alerts = _open_alerts(session, patient_ids)
        snoozes = _snoozes(session, patient_ids, now)
        cams = camera_statuses(session, self.ward_id, client)
        bed_cams = _bed_cameras(session, self.ward_id)
        technical = _technical_alerts(session, {c for cs in bed_cams.values() for c in cs})
        state: dict[int, tuple[Any, ...]] = {}
        for bed_id, pid in patient_of.items():
            cam_sig = tuple(
                sorted((c, cams[c].status, technical.get(c)) for c in bed_cams.get(bed_id, []) if c in cams)
            )
            state[bed_id] = (pid, alerts.get(pid) if pid else None, snoozes.get(pid) if pid else None, cam_sig)
        first = self._last_id is None
        self._last_id = max_id
        changed = {b for b, s in state.items() if self._state.get(b) != s}
        changed |= {b for b, pid in patient_of.items() if pid in fresh}
        previous, self._state = self._state, state
        if first:
            return set()
        changed |= set(previous) - set(state)
        if time.monotonic() - self._last_full >= self.refresh_all_s:
            self._last_full = time.monotonic()
            changed |= set(state)
        return changed

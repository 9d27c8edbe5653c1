"""Operational alerts: ``camera_offline`` (an enabled camera sends no frames) and ``pipeline_stalled``
(frames arrive but the camera's observations stopped).  Both resolve by themselves once healthy again.  A video
file camera whose health is ``ended`` (it played to its end, not looped) is finished, not offline: no alert.

The last frame time is the later of ``Camera.last_frame_at`` (written by the ingest service every few
seconds) and the ``last_frame_at`` of the camera's health hash in Redis (published every second), so either
source alone is enough.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from areya.alerts.errors import Conflict
from areya.alerts.lifecycle import auto_resolve, open_alert
from areya.alerts.rules import camera_is_offline, pipeline_is_stalled, stall_after_s
from areya.alerts.window import last_observation_by_camera
from areya.camera.waiting import waiting_for_zones
from areya.db.models import ALERT_OPEN_STATES, Alert, Camera

log = logging.getLogger(__name__)

OPERATIONAL_KINDS: tuple[str, ...] = ("camera_offline", "pipeline_stalled")


def redis_last_frames(client: redis.Redis | None, camera_ids: list[int]) -> dict[int, datetime]:
    """Camera id -> last frame time published in Redis health hashes (empty if Redis is unavailable)."""
    if client is None or not camera_ids:
        return {}
    from areya.camera.health import health_key  # noqa: PLC0415

    try:
        pipe = client.pipeline(transaction=False)
        for camera_id in camera_ids:
            pipe.hget(health_key(camera_id), "last_frame_at")
        values = pipe.execute()
    except redis.RedisError as exc:
        log.warning("camera health not readable from redis (%s); using the database only", exc)
        return {}
    out: dict[int, datetime] = {}
    for camera_id, raw in zip(camera_ids, values, strict=True):
        try:
            if raw:
                out[camera_id] = datetime.fromtimestamp(float(raw), UTC)
        except (TypeError, ValueError):
            continue
    return out


def _latest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def evaluate_cameras(
    session: Session,
    *,
    now: datetime,
    offline_s: float,
    redis_client: redis.Redis | None = None,
    last_observations: dict[int, datetime] | None = None,
) -> dict[str, int]:
    """Open / resolve camera alerts for every camera; returns counts of what was done.

    ``last_observations`` (camera id -> latest observation in the last ``2 * stall_s``) comes from the
    scheduler's window cache; without it, one SQL query finds it.
    """
    done = {"opened": 0, "resolved": 0}
    cameras = {c.id: c for c in session.scalars(select(Camera))}
    open_alerts: dict[tuple[str, int | None], Alert] = {}
    for alert in session.scalars(
        select(Alert).where(
            Alert.kind.in_(OPERATIONAL_KINDS), Alert.state.in_(ALERT_OPEN_STATES), Alert.patient_id.is_(None)
        )
    ):
        if alert.camera_id not in cameras:
            auto_resolve(session, alert, now=now, note="camera removed")
            done["resolved"] += 1
            continue
        open_alerts[(alert.kind, alert.camera_id)] = alert

    redis_frames = redis_last_frames(redis_client, [cid for cid, c in cameras.items() if c.enabled])
    stall_s = stall_after_s(offline_s)
    last_obs = (
        last_observations
        if last_observations is not None
        else last_observation_by_camera(session, until=now, lookback_s=2 * stall_s)
    )
    back_online = dict(
        session.execute(
            select(Alert.camera_id, func.max(Alert.resolved_at))
            .where(Alert.kind == "camera_offline", Alert.state == "resolved", Alert.camera_id.is_not(None))
            .group_by(Alert.camera_id)
        ).all()
    )

    waiting = waiting_for_zones(session)  # video files not played until a bed zone is drawn
    for camera_id, camera in cameras.items():
        offline_alert = open_alerts.get(("camera_offline", camera_id))
        stall_alert = open_alerts.get(("pipeline_stalled", camera_id))
        if not camera.enabled or camera_id in waiting:
            for alert in (offline_alert, stall_alert):
                if alert is not None:
                    note = "camera disabled" if not camera.enabled else "video file waits for a bed zone"
                    auto_resolve(session, alert, now=now, note=note)
                    done["resolved"] += 1
            continue
        last_frame = _latest(camera.last_frame_at, redis_frames.get(camera_id))
        if last_frame is not None and last_frame > now:
            last_frame = now  # clocks of other hosts slightly ahead
        ended = camera.health_status == "ended"  # a video file that played to its end: finished, not offline
        offline = not ended and camera_is_offline(
            last_frame_at=last_frame, created_at=camera.created_at, now=now, offline_s=offline_s
        )
        if ended and offline_alert is not None:
            auto_resolve(session, offline_alert, now=now, note="video file ended")
            done["resolved"] += 1
        elif offline and offline_alert is None:
            evidence = {
                "rule": "camera_offline",
                "offline_s": offline_s,
                "last_frame_at": last_frame.isoformat() if last_frame else None,
                "camera": camera.name,
                "health_status": camera.health_status,
                "last_error": camera.last_error,
            }
            if _open(session, "camera_offline", camera, now, evidence, f"no frame for more than {offline_s:g}s"):
                done["opened"] += 1
        elif not offline and offline_alert is not None:
            auto_resolve(session, offline_alert, now=now, note="frames arriving again")
            done["resolved"] += 1

        last = last_obs.get(camera_id)
        online_since = _latest(camera.created_at, back_online.get(camera_id)) or camera.created_at
        stalled = pipeline_is_stalled(
            camera_online=not offline and not ended,
            online_since=online_since,
            had_observations=last is not None,
            last_observation_at=last,
            now=now,
            stall_s=stall_s,
        )
        if stalled and stall_alert is None:
            evidence = {
                "rule": "pipeline_stalled",
                "stall_s": stall_s,
                "last_observation_at": last.isoformat() if last else None,
                "last_frame_at": last_frame.isoformat() if last_frame else None,
                "camera": camera.name,
            }
            if _open(
                session,
                "pipeline_stalled",
                camera,
                now,
                evidence,
                f"frames arriving but no observation for more than {stall_s:g}s",
            ):
                done["opened"] += 1
        elif stall_alert is not None and (ended or (last is not None and now - last <= timedelta(seconds=stall_s))):
            auto_resolve(
                session, stall_alert, now=now, note="video file ended" if ended else "observations arriving again"
            )
            done["resolved"] += 1
    return done


def _open(session: Session, kind: str, camera: Camera, now: datetime, evidence: dict[str, Any], note: str) -> bool:
    try:
        open_alert(session, kind, now=now, camera_id=camera.id, ward_id=camera.ward_id, evidence=evidence, note=note)
    except Conflict:
        log.info("%s alert for camera %d already open (another scheduler?)", kind, camera.id)
        return False
    return True

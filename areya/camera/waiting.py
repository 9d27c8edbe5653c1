"""Cameras that wait for a bed zone: a video-file camera is not played until it has one (a video played before
its zones are drawn would be over before any patient is seen), and so is not offline either."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.db.models import BedZone, Camera
from areya.source_url import SourceUrlError, source_kind


def waiting_for_zones(session: Session) -> set[int]:
    """Ids of the video-file cameras with no bed zone yet."""
    zoned = select(BedZone.camera_id).distinct()
    waiting = set()
    for camera in session.scalars(select(Camera).where(Camera.id.not_in(zoned))):
        try:
            if source_kind(camera.source_url) == "file":
                waiting.add(camera.id)
        except SourceUrlError:
            continue
    return waiting

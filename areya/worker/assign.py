"""Face -> bed (by the camera's bed zones) -> patient (by the bed history at capture time)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select


@dataclass(frozen=True)
class Zone:
    bed_id: int
    x0: float
    y0: float
    x1: float
    y1: float
    head: tuple[float, float, float, float] | None = None  # the drawn pillow region (None: the default)

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


@dataclass(frozen=True)
class Stay:
    patient_id: int
    start_at: datetime
    end_at: datetime | None

    def covers(self, at: datetime) -> bool:
        return self.start_at <= at and (self.end_at is None or at < self.end_at)


class BedResolver:
    """Zones and cameras' own detector options are cached for ``zone_ttl_s`` (read together); bed stays are read
    once per batch for the batch's time span."""

    def __init__(self, session_factory: Any, zone_ttl_s: float = 5.0) -> None:
        self.session_factory = session_factory
        self.zone_ttl_s = zone_ttl_s
        self._zones: dict[int, list[Zone]] = {}
        self._detector_options: dict[int, str] = {}
        self._zones_at = -1e9

    def zones(self, camera_id: int) -> list[Zone]:
        if time.monotonic() - self._zones_at > self.zone_ttl_s:
            self._load_zones()
        return self._zones.get(camera_id, [])

    def detector_options(self, camera_id: int) -> str | None:
        """The camera's own ``detector_options`` text (None: the global options), refreshed like the zones."""
        if time.monotonic() - self._zones_at > self.zone_ttl_s:
            self._load_zones()
        return self._detector_options.get(camera_id)

    def all_detector_options(self) -> dict[int, str]:
        """Camera id -> its ``detector_options`` text, for the cameras that have some (as last loaded)."""
        return dict(self._detector_options)

    def zones_now(self) -> None:
        """(Re)load the zones (and the cameras' detector options) now."""
        self._load_zones()

    def _load_zones(self) -> None:
        from areya.db.models import BedZone, Camera  # noqa: PLC0415

        zones: dict[int, list[Zone]] = {}
        with self.session_factory() as session:
            for z in session.scalars(select(BedZone)):
                zones.setdefault(z.camera_id, []).append(Zone(z.bed_id, z.x0, z.y0, z.x1, z.y1, z.head))
            options = {
                cid: text
                for cid, text in session.execute(
                    select(Camera.id, Camera.detector_options).where(Camera.detector_options.is_not(None))
                )
                if text
            }
        self._zones = zones
        self._detector_options = options
        self._zones_at = time.monotonic()

    def bed_for(self, camera_id: int, cx: float, cy: float) -> int | None:
        """The bed whose zone holds the normalized point (zones do not overlap; first match wins)."""
        for zone in self.zones(camera_id):
            if zone.contains(cx, cy):
                return zone.bed_id
        return None

    def zone_of(self, camera_id: int, bed_id: int) -> Zone | None:
        """The camera's zone of the bed (as last loaded)."""
        return next((z for z in self.zones(camera_id) if z.bed_id == bed_id), None)

    def stays(self, bed_ids: set[int], start: datetime, end: datetime) -> dict[int, list[Stay]]:
        """Bed stays overlapping [start, end] for these beds."""
        if not bed_ids:
            return {}
        from areya.db.models import BedAssignment  # noqa: PLC0415

        out: dict[int, list[Stay]] = {}
        with self.session_factory() as session:
            rows = session.execute(
                select(
                    BedAssignment.bed_id, BedAssignment.patient_id, BedAssignment.start_at, BedAssignment.end_at
                ).where(
                    BedAssignment.bed_id.in_(bed_ids),
                    BedAssignment.start_at <= end,
                    or_(BedAssignment.end_at.is_(None), BedAssignment.end_at > start),
                )
            )
            for bed_id, patient_id, start_at, end_at in rows:
                out.setdefault(bed_id, []).append(Stay(patient_id, start_at, end_at))
        return out


def patient_at(stays: dict[int, list[Stay]], bed_id: int, at: datetime) -> int | None:
    for stay in stays.get(bed_id, []):
        if stay.covers(at):
            return stay.patient_id
    return None

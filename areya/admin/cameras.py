"""Cameras (source URLs are secrets: only masked forms leave this module) and their bed zones."""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from areya.admin.refs import bed_ref, camera_ref, clean_name, flush, get_bed, get_camera, get_ward
from areya.audit import SYSTEM, Actor, record
from areya.db.models import BedZone, Camera, Ward
from areya.errors import Conflict, Invalid, NotFound
from areya.source_url import SourceUrlError, mask_source_url, validate_source_url

MAX_FPS = 60.0


def _check_fps(fps: float) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise Invalid(f"sample fps must be a number, got {fps!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_FPS:
        raise Invalid(f"sample fps must be in (0, {MAX_FPS:g}], got {fps!r}")
    return value


def _check_url(url: str) -> str:
    try:
        return validate_source_url(url)
    except SourceUrlError as exc:
        raise Invalid(str(exc)) from None


def check_detector_options(text: str | None, detector: str | None = None) -> str | None:
    """A camera's face detector options (``"rotations=90,min_face_px=40"``, the syntax of the
    ``detector_options`` setting) checked against backend ``detector`` (the ``detector`` setting; None: the
    default backend) and written in canonical form; empty -> None (the global options).  Bad -> :class:`Invalid`."""
    if text is None or not text.strip():
        return None
    from areya.detectors import detector_key
    from areya.detectors.options import camera_options_text

    try:
        return camera_options_text(detector_key(detector), text.strip())
    except ValueError as exc:
        raise Invalid(f"detector options: {exc}") from None


def add_camera(
    session: Session,
    ward_name: str,
    name: str,
    source_url: str,
    sample_fps: float = 2.0,
    *,
    enabled: bool = True,
    detector_options: str | None = None,
    detector: str | None = None,
    actor: Actor = SYSTEM,
) -> Camera:
    """Register a camera; ``detector_options``: its own face detector options, checked against backend
    ``detector`` (pass the ``detector`` setting) by :func:`check_detector_options`."""
    ward = get_ward(session, ward_name)
    name = clean_name(name, "camera name", 100)
    url = _check_url(source_url)
    fps = _check_fps(sample_fps)
    options = check_detector_options(detector_options, detector)
    if session.scalar(select(Camera.id).where(Camera.ward_id == ward.id, Camera.name == name)) is not None:
        raise Conflict(f"camera {name!r} already exists in ward {ward.name!r}")
    camera = Camera(ward=ward, name=name, source_url=url, sample_fps=fps, enabled=enabled, detector_options=options)
    session.add(camera)
    flush(session, f"add camera {ward.name}/{name}")
    detail: dict[str, object] = {"camera": f"{ward.name}/{name}", "url": mask_source_url(url), "fps": fps}
    if options:
        detail["detector_options"] = options
    record(session, actor, "camera.add", target=f"camera:{camera.id}", detail=detail)
    return camera


def list_cameras(session: Session, ward_name: str | None = None) -> list[Camera]:
    query = (
        select(Camera)
        .join(Ward, Ward.id == Camera.ward_id)
        .options(selectinload(Camera.ward), selectinload(Camera.zones))
        .order_by(Ward.name, Camera.name)
    )
    if ward_name is not None:
        query = query.where(Camera.ward_id == get_ward(session, ward_name).id)
    return list(session.scalars(query))


def set_camera_enabled(session: Session, ref: str, enabled: bool, *, actor: Actor = SYSTEM) -> Camera:
    camera = get_camera(session, ref)
    if camera.enabled != enabled:
        camera.enabled = enabled
        flush(session, f"{'enable' if enabled else 'disable'} camera {camera_ref(camera)}")
    record(session, actor, "camera.enable" if enabled else "camera.disable", target=f"camera:{camera.id}")
    return camera


def update_camera(
    session: Session,
    ref: str,
    *,
    source_url: str | None = None,
    sample_fps: float | None = None,
    detector_options: str | None = None,
    detector: str | None = None,
    actor: Actor = SYSTEM,
) -> Camera:
    """Change what is given (None: unchanged).  ``detector_options``: the camera's own face detector options,
    replacing its previous ones (``""``: none, the global options apply), checked against backend ``detector``."""
    camera = get_camera(session, ref)
    changes: dict[str, object] = {}
    if source_url is not None:
        camera.source_url = _check_url(source_url)
        changes["url"] = mask_source_url(camera.source_url)
    if sample_fps is not None:
        camera.sample_fps = _check_fps(sample_fps)
        changes["fps"] = camera.sample_fps
    if detector_options is not None:
        options = check_detector_options(detector_options, detector)
        if options != camera.detector_options:
            changes["detector_options"] = {"from": camera.detector_options, "to": options}
            camera.detector_options = options
    flush(session, f"update camera {camera_ref(camera)}")
    record(session, actor, "camera.update", target=f"camera:{camera.id}", detail=changes)
    return camera


def delete_camera(session: Session, ref: str, *, actor: Actor = SYSTEM) -> None:
    """Delete a camera and its zones (its observations stay, with camera_id set to NULL)."""
    camera = get_camera(session, ref)
    record(session, actor, "camera.delete", target=f"camera:{camera.id}", detail={"camera": camera_ref(camera)})
    session.delete(camera)
    flush(session, f"delete camera {ref}")


# --------------------------------------------------------------------------- zones


def check_zone(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    """Validate a normalized rectangle: finite, inside [0,1], x0 < x1 and y0 < y1."""
    try:
        coords = tuple(float(v) for v in (x0, y0, x1, y1))
    except (TypeError, ValueError):
        raise Invalid("zone coordinates must be numbers") from None
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in coords):
        raise Invalid(f"zone coordinates must be within [0, 1] (normalized to the image), got {coords}")
    if not (coords[0] < coords[2] and coords[1] < coords[3]):
        raise Invalid(
            f"zone needs x0 < x1 and y0 < y1, got x0={coords[0]} y0={coords[1]} x1={coords[2]} y1={coords[3]}"
        )
    return coords  # type: ignore[return-value]


def check_pillow(
    zone: tuple[float, float, float, float], head: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """Validate a pillow region: numbers, a rectangle inside the zone."""
    from areya.detectors.roles import check_head  # noqa: PLC0415

    try:
        return check_head(zone, tuple(float(v) for v in head))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise Invalid(str(exc) if isinstance(exc, ValueError) else "pillow coordinates must be numbers") from None


def set_zone(
    session: Session,
    camera: str,
    bed: str,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    *,
    head: tuple[float, float, float, float] | None = None,
    actor: Actor = SYSTEM,
) -> BedZone:
    """Create or replace the zone of bed ``WARD/BED`` in camera ``WARD/CAMERA`` (same ward; zones must not overlap).
    ``head``: its head-of-bed (pillow) region ``(x0, y0, x1, y1)``, inside the zone (None: the default, the top of
    the zone: :func:`areya.detectors.roles.default_head`)."""
    coords = check_zone(x0, y0, x1, y1)
    pillow = check_pillow(coords, head) if head is not None else None
    cam = get_camera(session, camera)
    target = get_bed(session, bed)
    if target.ward_id != cam.ward_id:
        raise Invalid(f"bed {bed_ref(target)} is not in camera {camera_ref(cam)}'s ward")
    zones = session.scalars(select(BedZone).where(BedZone.camera_id == cam.id)).all()
    zone = next((z for z in zones if z.bed_id == target.id), None)
    for other in zones:
        if other is zone:
            continue
        if coords[0] < other.x1 and other.x0 < coords[2] and coords[1] < other.y1 and other.y0 < coords[3]:
            raise Conflict(f"zone overlaps the zone of bed {bed_ref(other.bed)} on camera {camera_ref(cam)}")
    if zone is None:
        zone = BedZone(camera_id=cam.id, bed_id=target.id)
        session.add(zone)
    zone.x0, zone.y0, zone.x1, zone.y1 = coords
    zone.head_x0, zone.head_y0, zone.head_x1, zone.head_y1 = pillow if pillow is not None else (None,) * 4
    flush(session, f"set zone of bed {bed_ref(target)} on camera {camera_ref(cam)}")
    record(
        session,
        actor,
        "zone.set",
        target=f"zone:{zone.id}",
        detail={
            "camera": camera_ref(cam),
            "bed": bed_ref(target),
            "box": list(coords),
            "head": list(pillow) if pillow is not None else None,
        },
    )
    return zone


def list_zones(session: Session, camera: str | None = None) -> list[BedZone]:
    query = (
        select(BedZone)
        .options(selectinload(BedZone.camera).selectinload(Camera.ward), selectinload(BedZone.bed))
        .order_by(BedZone.camera_id, BedZone.bed_id)
    )
    if camera is not None:
        query = query.where(BedZone.camera_id == get_camera(session, camera).id)
    return list(session.scalars(query))


def delete_zone(session: Session, camera: str, bed: str, *, actor: Actor = SYSTEM) -> None:
    cam = get_camera(session, camera)
    target = get_bed(session, bed)
    zone = session.scalar(select(BedZone).where(BedZone.camera_id == cam.id, BedZone.bed_id == target.id))
    if zone is None:
        raise NotFound(f"camera {camera_ref(cam)} has no zone for bed {bed_ref(target)}")
    record(session, actor, "zone.delete", target=f"zone:{zone.id}", detail={"camera": camera_ref(cam)})
    session.delete(zone)
    flush(session, "delete zone")

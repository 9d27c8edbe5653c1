"""Admin: cameras (URL stored secret, shown masked), connection test, latest snapshot, bed-zone editor."""

from __future__ import annotations

import contextlib
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from areya.admin import (
    add_camera,
    bed_ref,
    camera_ref,
    check_detector_options,
    delete_camera,
    delete_zone,
    list_cameras,
    set_camera_enabled,
    set_zone,
    update_camera,
)
from areya.camera.url_policy import CameraUrlPolicy
from areya.camera.waiting import waiting_for_zones
from areya.db.models import Bed, BedZone, Camera, Ward
from areya.errors import AdminError
from areya.source_url import file_source_loops
from areya.webapp.access import ward_patient_ids
from areya.webapp.camera_probe import ProbeResult, probe_camera
from areya.webapp.forms import Form
from areya.webapp.probe_policy import ProbeRefused, check_probe_target
from areya.webapp.security import ADMIN, roles
from areya.webapp.services import actor, audit, db, services
from areya.webapp.tiles import camera_statuses
from areya.webapp.views.admin.blueprint import bp
from areya.webapp.views.admin.common import run_operation

HINTS = (
    ("detector options", "detector_options"),
    ("url", "url"),
    ("fps", "fps"),
    ("camera", "name"),
    ("ward", "ward_id"),
)
MAX_ZONES = 64


def _camera(camera_id: int) -> Camera:
    camera = db().get(Camera, camera_id)
    if camera is None:
        abort(404, description=f"no camera {camera_id}")
    return camera


def _snapshot(camera_id: int) -> bytes | None:
    client = services().redis
    if client is None:
        return None
    from areya.camera.health import latest_snapshot

    try:
        return latest_snapshot(client, camera_id)
    except Exception:  # noqa: BLE001 - Redis away: no snapshot
        return None


def _options_problem(camera: Camera) -> str | None:
    """Why the camera's stored detector options do not fit the configured backend (it changed since), if so."""
    if not camera.detector_options:
        return None
    try:
        check_detector_options(camera.detector_options, services().settings.detector)
    except AdminError as exc:
        return f"not applied: {str(exc).removeprefix('detector options: ')}"
    return None


def _stored_url(form: Form, url: str, *, loop: bool | None) -> str:
    """The source URL as the add and edit forms store it (one rule, that of `areya camera add`/`edit`): a video
    file must exist here and be readable and is stored as file:///absolute/path (?loop=1 when ``loop``; None: as
    the URL says); other sources unchanged (``loop`` must then be falsy).  A problem is the url field's error.

    First the camera URL policy, as for any source saved from the dashboard (areya.camera.url_policy): no host
    Areya may not connect to, no file outside camera_media_dir (refused before it is looked at: the answer does
    not tell whether it exists), no synthetic story or faces but the packaged ones."""
    from areya.camera.url_policy import CameraUrlRefused
    from areya.source_url import SourceUrlError, check_file_source

    try:
        CameraUrlPolicy.from_settings(services().settings).check(url, trusted=False, unresolved_ok=True)
        return check_file_source(url, loop=loop)
    except (CameraUrlRefused, SourceUrlError) as exc:
        form.error("url", str(exc))
        return url


def _list_page(form: Form | None = None, status: int = 200) -> tuple[str, int]:
    session = db()
    cameras = list_cameras(session)
    health: dict[int, str] = {}
    for ward_id in {c.ward_id for c in cameras}:
        health.update({cid: s.status for cid, s in camera_statuses(session, ward_id, services().redis).items()})
    wards = list(session.scalars(select(Ward).order_by(Ward.name)))
    problems = {c.id: p for c in cameras if (p := _options_problem(c))}
    return render_template(
        "admin/cameras.html",
        cameras=cameras,
        health=health,
        wards=wards,
        form=form or Form(),
        default_fps=services().settings.default_sample_fps,
        option_problems=problems,
        detector=services().settings.detector,
    ), status


@bp.route("/cameras", methods=["GET", "POST"])
@roles(*ADMIN)
def cameras() -> Response | tuple[str, int]:
    if request.method == "GET":
        return _list_page()
    form = Form(request.form)
    ward_id = form.integer("ward_id", "ward")
    name = form.text("name", "camera name", max_len=100)
    url = form.text("url", "camera URL", max_len=2048)
    fps = form.number("fps", "sample fps", lo=0.01, hi=60)
    loop = form.checkbox("loop")
    options = form.text("detector_options", "detector options", required=False, max_len=1000)
    ward = db().get(Ward, ward_id) if ward_id is not None else None
    if form.ok and ward is None:
        form.error("ward_id", "choose a ward")
    if url:
        url = _stored_url(form, url, loop=loop or None)
    detector = services().settings.detector
    camera = run_operation(
        form,
        lambda: add_camera(
            db(),
            ward.name if ward else "",
            name,
            url,
            fps or 2.0,
            detector_options=options or None,
            detector=detector,
            actor=actor(),
        ),
        HINTS,
        "url",
    )
    if camera is None:
        return _list_page(form, 400)
    flash(added_message(camera), "success")
    return redirect(url_for("admin.camera_edit", camera_id=camera.id))


def added_message(camera: Camera) -> str:
    """What the admin reads after adding a camera: a video file does not play until it has a bed zone."""
    text = f"Camera {camera_ref(camera)} added ({camera.masked_url})."
    if camera.id in waiting_for_zones(db()):
        return (
            f"{text} A video file does not play until it has a bed zone: test it (the test keeps a snapshot to "
            "draw on), then draw its bed zones."
        )
    return f"{text} Test it, then draw its bed zones."


def _edit_page(camera: Camera, form: Form | None = None, status: int = 200, probe: Any = None) -> tuple[str, int]:
    statuses = camera_statuses(db(), camera.ward_id, services().redis)
    zones = list(db().scalars(select(BedZone).where(BedZone.camera_id == camera.id)))
    shown = Form(
        {
            "fps": f"{camera.sample_fps:g}",
            "detector_options": camera.detector_options or "",
            "loop": "1" if file_source_loops(camera.source_url) else "",
        }
    )
    settings = services().settings
    return render_template(
        "admin/camera_edit.html",
        camera=camera,
        form=form or shown,
        status=statuses.get(camera.id),
        zones=zones,
        has_snapshot=_snapshot(camera.id) is not None,
        probe=probe,
        detector=settings.detector,
        global_options=_global_options(settings),
        options_problem=_options_problem(camera),
        waiting=camera.id in waiting_for_zones(db()),
    ), status


def _global_options(settings: Any) -> str:
    from areya.detectors.options import format_options

    return format_options(settings.detector_options)


@bp.route("/cameras/<int:camera_id>", methods=["GET", "POST"])
@roles(*ADMIN)
def camera_edit(camera_id: int) -> Response | tuple[str, int]:
    camera = _camera(camera_id)
    if request.method == "GET":
        return _edit_page(camera)
    form = Form(request.form)
    url = form.text("url", "camera URL", required=False, max_len=2048)
    fps = form.number("fps", "sample fps", lo=0.01, hi=60)
    enabled = form.checkbox("enabled")
    # the Loop box is shown ticked when the current source loops: with a new URL it is read as on the add form;
    # without one, a changed box makes the current video file loop or play once (checked again like a new URL)
    loop = form.checkbox("loop")
    if url:
        url = _stored_url(form, url, loop=loop or None)
    elif loop != file_source_loops(camera.source_url):
        url = _stored_url(form, camera.source_url, loop=loop)
    # a form without the field leaves the options as they are; an empty one removes them
    options = (
        form.text("detector_options", "detector options", required=False, max_len=1000)
        if "detector_options" in form.data
        else None
    )
    detector = services().settings.detector

    def op() -> Camera:
        cam = update_camera(
            db(),
            str(camera.id),
            source_url=url or None,
            sample_fps=fps,
            detector_options=options,
            detector=detector,
            actor=actor(),
        )
        if cam.enabled != enabled:
            set_camera_enabled(db(), str(camera.id), enabled, actor=actor())
        return cam

    if run_operation(form, op, HINTS, "url") is None:
        db().refresh(camera)
        return _edit_page(camera, form, 400)
    flash(f"Camera {camera_ref(camera)} saved.", "success")
    return redirect(url_for("admin.camera_edit", camera_id=camera.id))


@bp.route("/cameras/<int:camera_id>/test", methods=["POST"])
@roles(*ADMIN)
def camera_test(camera_id: int) -> tuple[str, int]:
    camera = _camera(camera_id)
    settings = services().settings
    try:
        check_probe_target(camera.source_url, settings)  # no fetching of loopback / metadata / arbitrary files
    except ProbeRefused as exc:
        audit("camera.test", target=f"camera:{camera.id}", detail={"ok": False, "refused": str(exc)})
        return _edit_page(camera, probe=ProbeResult(False, f"test refused: {exc}"), status=400)
    options = camera.detector_options
    zones = [(z.x0, z.y0, z.x1, z.y1) for z in db().scalars(select(BedZone).where(BedZone.camera_id == camera.id))]
    db().commit()  # no write transaction held while the camera is probed (seconds)
    policy = CameraUrlPolicy.from_settings(settings)
    result = probe_camera(camera.source_url, fps=camera.sample_fps, policy=policy)
    client = services().redis
    if result.ok and result.jpeg and client is not None and settings.snapshot_ttl_s > 0:
        from areya.camera.health import snapshot_key

        with contextlib.suppress(Exception):
            client.set(snapshot_key(camera.id), result.jpeg, ex=settings.snapshot_ttl_s)
    detail: dict[str, Any] = {"ok": result.ok, "message": result.message}
    if result.ok and result.frame is not None:
        note, faces = _test_detection(result.frame, zones, options)
        result.message = f"{result.message}; {note}"
        detail.update(message=result.message, faces=faces, detector_options=options)
    audit("camera.test", target=f"camera:{camera.id}", detail=detail)
    return _edit_page(camera, probe=result, status=200 if result.ok else 502)


def _test_detection(
    frame: Any, zones: list[tuple[float, float, float, float]], options: str | None
) -> tuple[str, int | None]:
    """Faces in the test frame, found as the worker finds them for this camera: the configured detector with
    the camera's own options laid over the global ones, in its bed zones when its zone_mode says so."""
    from areya.detectors import detector_from_settings

    try:
        detector = detector_from_settings(services().settings, camera_options=options)
    except (ValueError, RuntimeError) as exc:
        return f"face detection not run: {exc}", None
    try:
        if zones and detector.zone_mode != "frame":
            faces = detector.detect_in_zones(frame, zones)
        else:
            faces = detector.detect(frame)
    except ValueError as exc:
        return f"face detection failed: {exc}", None
    finally:
        detector.close()
    using = f"this camera's detector options {options}" if options else "the global detector options"
    return f"{len(faces)} face(s) found by {detector.name} with {using}", len(faces)


@bp.route("/cameras/<int:camera_id>/snapshot.jpg")
@roles(*ADMIN)
def camera_snapshot(camera_id: int) -> Response:
    camera = _camera(camera_id)
    jpeg = _snapshot(camera.id)
    if jpeg is None:
        abort(404, description="no recent snapshot for this camera")
    # a picture of the ward: every patient in a bed of the camera's ward may be on it
    audit("camera.snapshot_view", target=f"camera:{camera.id}", patient_ids=ward_patient_ids(db(), camera.ward_id))
    return Response(jpeg, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})


@bp.route("/cameras/<int:camera_id>/delete", methods=["POST"])
@roles(*ADMIN)
def camera_delete(camera_id: int) -> Response:
    camera = _camera(camera_id)
    ref = camera_ref(camera)
    try:
        delete_camera(db(), str(camera.id), actor=actor())
        db().commit()
        flash(f"Camera {ref} deleted.", "success")
    except AdminError as exc:
        db().rollback()
        flash(str(exc), "error")
    return redirect(url_for("admin.cameras"))


# --------------------------------------------------------------------------- zones


@bp.route("/cameras/<int:camera_id>/zones", methods=["GET"])
@roles(*ADMIN)
def zones(camera_id: int) -> str:
    camera = _camera(camera_id)
    beds = list(db().scalars(select(Bed).where(Bed.ward_id == camera.ward_id).order_by(Bed.label)))
    zones_data = [_zone_json(z) for z in db().scalars(select(BedZone).where(BedZone.camera_id == camera.id))]
    return render_template(
        "admin/zones.html", camera=camera, beds=beds, zones=zones_data, has_snapshot=_snapshot(camera.id) is not None
    )


def _zone_json(zone: BedZone) -> dict[str, Any]:
    head = zone.head
    return {
        "bed_id": zone.bed_id,
        "x0": zone.x0,
        "y0": zone.y0,
        "x1": zone.x1,
        "y1": zone.y1,
        "head": dict(zip(("x0", "y0", "x1", "y1"), head, strict=True)) if head is not None else None,
    }


def _zone_head(item: dict[str, Any]) -> tuple[float, float, float, float] | None | str:
    """The posted zone's pillow region (``head``: null or {x0, y0, x1, y1}); a message when malformed."""
    head = item.get("head")
    if head is None:
        return None
    values = [head.get(k) for k in ("x0", "y0", "x1", "y1")] if isinstance(head, dict) else []
    if len(values) != 4 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "the pillow region must be null or {x0, y0, x1, y1} numbers"
    return (float(values[0]), float(values[1]), float(values[2]), float(values[3]))  # type: ignore[arg-type]


def _zone_error(message: str, index: int | None = None, status: int = 400) -> Response:
    response = jsonify({"ok": False, "error": message, "index": index})
    response.status_code = status
    return response


@bp.route("/cameras/<int:camera_id>/zones", methods=["POST"])
@roles(*ADMIN)
def zones_save(camera_id: int) -> Response:
    """Replace the camera's zones with the posted list, all or nothing."""
    camera = _camera(camera_id)
    payload = request.get_json(silent=True)
    items = payload.get("zones") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return _zone_error('send JSON {"zones": [{"bed_id": 1, "x0": 0.1, "y0": 0.1, "x1": 0.4, "y1": 0.9}]}')
    if len(items) > MAX_ZONES:
        return _zone_error(f"at most {MAX_ZONES} zones per camera")
    session = db()
    beds = {b.id: b for b in session.scalars(select(Bed).where(Bed.ward_id == camera.ward_id))}
    seen: set[int] = set()
    parsed: list[tuple[Bed, list[float], tuple[float, float, float, float] | None]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return _zone_error("each zone must be an object", i)
        bed_id = item.get("bed_id")
        if not isinstance(bed_id, int) or isinstance(bed_id, bool) or bed_id not in beds:
            return _zone_error("choose a bed of this camera's ward for every zone", i)
        if bed_id in seen:
            return _zone_error(f"bed {beds[bed_id].label} has two zones on this camera", i)
        seen.add(bed_id)
        coords = [item.get(k) for k in ("x0", "y0", "x1", "y1")]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in coords):
            return _zone_error("zone coordinates must be numbers", i)
        head = _zone_head(item)
        if isinstance(head, str):
            return _zone_error(head, i)
        parsed.append((beds[bed_id], [float(v) for v in coords], head))  # type: ignore[arg-type]
    ref = str(camera.id)
    try:
        for zone in list(session.scalars(select(BedZone).where(BedZone.camera_id == camera.id))):
            delete_zone(session, ref, bed_ref(zone.bed), actor=actor())
        for i, (bed, (x0, y0, x1, y1), head) in enumerate(parsed):
            try:
                set_zone(session, ref, bed_ref(bed), x0, y0, x1, y1, head=head, actor=actor())
            except AdminError as exc:
                session.rollback()
                return _zone_error(f"bed {bed.label}: {exc}", i, 409 if "overlap" in str(exc) else 400)
        session.commit()
    except AdminError as exc:
        session.rollback()
        return _zone_error(str(exc))
    saved = [_zone_json(z) for z in session.scalars(select(BedZone).where(BedZone.camera_id == camera.id))]
    return jsonify({"ok": True, "zones": saved})

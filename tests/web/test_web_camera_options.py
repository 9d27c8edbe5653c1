"""Admin camera form: a camera's own face detector options round-trip (add, show, edit, clear, audited), bad ones
are a form error next to the field with nothing saved, options the configured backend no longer takes are flagged,
and the connection test reports the faces that camera's detector finds in the test frame."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select
from web_helpers import World, login

from areya.db.models import AuditEvent, Camera


def _field_error(html: str, name: str) -> str:
    match = re.search(
        rf'name="{name}"[^>]*>\s*<span class="field-error" id="err-{name}" role="alert">([^<]+)</span>', html
    )
    assert match, f"no error next to {name}"
    return match.group(1)


def _options(world: World, name: str) -> str | None:
    with world.session() as s:
        return s.scalar(select(Camera.detector_options).where(Camera.name == name))


def test_detector_options_round_trip_through_the_form(world: World) -> None:
    client, csrf = login(world.app, "admin")
    added = client.post(
        "/admin/cameras",
        data={
            "csrf_token": csrf,
            "ward_id": str(world.ids["ward_id"]),
            "name": "cam-side",
            "url": "rtsp://h/side",
            "fps": "2",
            "detector_options": "rotations=90, min_face_px=40",
        },
    )
    assert added.status_code == 302
    assert _options(world, "cam-side") == "rotations=90,min_face_px=40"  # stored in the canonical form
    listing = client.get("/admin/cameras").get_data(as_text=True)
    assert "<code>rotations=90,min_face_px=40</code>" in listing and "not applied" not in listing
    edit_url = added.headers["Location"]
    page = client.get(edit_url).get_data(as_text=True)
    assert re.search(r'name="detector_options" value="rotations=90,min_face_px=40"', page)
    assert "Laid over the global options of the blazeface detector" in page

    saved = client.post(
        edit_url,
        data={"csrf_token": csrf, "fps": "2", "enabled": "1", "detector_options": "zone_mode=zones,rotations=0/90"},
    )
    assert saved.status_code == 302 and _options(world, "cam-side") == "zone_mode=zones,rotations=0/90"
    kept = client.post(edit_url, data={"csrf_token": csrf, "fps": "1", "enabled": "1"})  # no such field: kept
    assert kept.status_code == 302 and _options(world, "cam-side") == "zone_mode=zones,rotations=0/90"
    cleared = client.post(edit_url, data={"csrf_token": csrf, "fps": "1", "enabled": "1", "detector_options": " "})
    assert cleared.status_code == 302 and _options(world, "cam-side") is None
    assert '<span class="muted">global</span>' in client.get("/admin/cameras").get_data(as_text=True)
    with world.session() as s:
        cam_id = s.scalar(select(Camera.id).where(Camera.name == "cam-side"))
        details = [
            (a, d)
            for a, d in s.execute(
                select(AuditEvent.action, AuditEvent.detail)
                .where(AuditEvent.target == f"camera:{cam_id}")
                .order_by(AuditEvent.id)
            )
        ]
    assert details[0][0] == "camera.add" and details[0][1]["detector_options"] == "rotations=90,min_face_px=40"
    assert [d.get("detector_options") for a, d in details if a == "camera.update"] == [
        {"from": "rotations=90,min_face_px=40", "to": "zone_mode=zones,rotations=0/90"},
        None,
        {"from": "zone_mode=zones,rotations=0/90", "to": None},
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("rotation=90", "detector options: unknown option 'rotation' for detector 'blazeface'; valid options: "),
        ("min_face_px=big", "detector options: option 'min_face_px' of detector 'blazeface' must be an integer"),
        ("model_path=/etc/passwd", "detector options: option 'model_path' cannot be set per camera"),
        ("rotations", "detector options: must be 'name=value' pairs"),
    ],
)
def test_bad_detector_options_are_a_form_error_and_nothing_is_saved(world: World, options: str, message: str) -> None:
    client, csrf = login(world.app, "admin")
    with world.session() as s:
        before = s.scalar(select(func.count()).select_from(Camera))
    bad = client.post(
        "/admin/cameras",
        data={
            "csrf_token": csrf,
            "ward_id": str(world.ids["ward_id"]),
            "name": "cam-9",
            "url": "rtsp://h/x",
            "fps": "2",
            "detector_options": options,
        },
    )
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert _field_error(html, "detector_options").startswith(message.replace("'", "&#39;"))
    assert f'value="{options}"' in html  # what was typed stays in the field
    with world.session() as s:
        assert s.scalar(select(func.count()).select_from(Camera)) == before
    cam = world.ids["camera_id"]
    edit = client.post(
        f"/admin/cameras/{cam}", data={"csrf_token": csrf, "fps": "5", "enabled": "1", "detector_options": options}
    )
    assert edit.status_code == 400
    assert _field_error(edit.get_data(as_text=True), "detector_options").startswith(message.replace("'", "&#39;"))
    with world.session() as s:
        row = s.get(Camera, cam)
        assert (row.detector_options, row.sample_fps) == (None, 2.0)  # the whole edit refused


def test_options_the_configured_backend_does_not_take_are_flagged(world: World) -> None:
    client, csrf = login(world.app, "admin")
    cam = world.ids["camera_id"]
    assert (
        client.post(
            f"/admin/cameras/{cam}",
            data={"csrf_token": csrf, "fps": "2", "enabled": "1", "detector_options": "tiles=2"},
        ).status_code
        == 302
    )
    services = world.app.extensions["areya"]
    services.settings = services.settings.replace(detector="haar")  # the deployment changed its backend
    listing = client.get("/admin/cameras").get_data(as_text=True)
    assert "not applied" in listing and "unknown option &#39;tiles&#39; for detector &#39;haar&#39;" in listing
    page = client.get(f"/admin/cameras/{cam}").get_data(as_text=True)
    assert "Detector options not applied: unknown option &#39;tiles&#39;" in page


def _side_face_video(path: Path) -> None:
    data = pytest.importorskip("skimage.data")
    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]
    lying = cv2.resize(
        cv2.rotate(head, cv2.ROTATE_90_COUNTERCLOCKWISE), None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA
    )
    frame = np.full((480, 640, 3), (200, 205, 210), np.uint8)
    frame[150 : 150 + lying.shape[0], 300 : 300 + lying.shape[1]] = lying
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (640, 480))
    assert writer.isOpened()
    for _ in range(3):
        writer.write(frame)
    writer.release()


def test_connection_test_detects_with_the_cameras_options(world: World, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    _side_face_video(media / "side.avi")
    services = world.app.extensions["areya"]
    services.settings = services.settings.replace(camera_media_dir=str(media))
    client, csrf = login(world.app, "admin")
    made = client.post(
        "/admin/cameras",
        data={
            "csrf_token": csrf,
            "ward_id": str(world.ids["ward_id"]),
            "name": "cam-side",
            "url": str(media / "side.avi"),
            "fps": "2",
            "loop": "1",
            "detector_options": "rotations=90",
        },
    )
    assert made.status_code == 302, made.get_data(as_text=True)[:2000]
    test_url = made.headers["Location"] + "/test"
    side = client.post(test_url, data={"csrf_token": csrf}).get_data(as_text=True)
    assert "1 face(s) found by blazeface with this camera&#39;s detector options rotations=90" in side
    client.post(made.headers["Location"], data={"csrf_token": csrf, "fps": "2", "enabled": "1", "detector_options": ""})
    upright = client.post(test_url, data={"csrf_token": csrf}).get_data(as_text=True)
    assert "0 face(s) found by blazeface with the global detector options" in upright
    with world.session() as s:
        tests = s.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "camera.test").order_by(AuditEvent.id)
        ).all()
    assert [(d["faces"], d["detector_options"]) for d in tests] == [(1, "rotations=90"), (0, None)]


def _source_url(world: World, camera_id: int) -> str:
    with world.session() as s:
        return s.get(Camera, camera_id).source_url


def _loop_box(html: str) -> bool:
    match = re.search(r'<input type="checkbox" name="loop" value="1"( checked)?>', html)
    assert match, "no Loop box"
    return bool(match.group(1))


def test_edit_form_checks_video_files_and_loops_like_the_add_form(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import quote

    services = world.app.extensions["areya"]  # the dashboard saves files under camera_media_dir only
    services.settings = services.settings.replace(camera_media_dir=str(tmp_path), camera_allow_networks=("10.0.0.0/8",))
    client, csrf = login(world.app, "admin")
    cam = world.ids["camera_id"]  # rtsp, with a password
    edit_url = f"/admin/cameras/{cam}"
    secret = _source_url(world, cam)
    assert _loop_box(client.get(edit_url).get_data(as_text=True)) is False
    base = {"csrf_token": csrf, "fps": "2", "enabled": "1"}

    looped_rtsp = client.post(edit_url, data={**base, "loop": "1"})
    html = looped_rtsp.get_data(as_text=True)
    assert looped_rtsp.status_code == 400 and _field_error(html, "url") == "loop applies to video files only"
    assert "s3cret" not in html
    outside = client.post(edit_url, data={**base, "url": "/no/such/file.mp4"})  # not looked at: no oracle
    assert outside.status_code == 400
    assert "only under camera_media_dir" in _field_error(outside.get_data(as_text=True), "url")
    missing = client.post(edit_url, data={**base, "url": str(tmp_path / "no-such-file.mp4")})
    assert missing.status_code == 400
    assert _field_error(missing.get_data(as_text=True), "url").startswith("video file not found: ")
    assert _source_url(world, cam) == secret  # nothing saved

    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"not checked here: the ingestor reads it")
    monkeypatch.chdir(tmp_path)
    relative = client.post(edit_url, data={**base, "url": "clip.avi", "loop": "1"})
    assert relative.status_code == 302, relative.get_data(as_text=True)[:2000]
    stored = f"file://{quote(str(clip.resolve()))}"
    assert _source_url(world, cam) == f"{stored}?loop=1"  # absolute, as the add form stores it
    assert _loop_box(client.get(edit_url).get_data(as_text=True)) is True

    assert client.post(edit_url, data=base).status_code == 302  # Loop unticked: the same file, played once
    assert _source_url(world, cam) == stored
    assert _loop_box(client.get(edit_url).get_data(as_text=True)) is False
    assert client.post(edit_url, data={**base, "loop": "1"}).status_code == 302
    assert _source_url(world, cam) == f"{stored}?loop=1"

    clip.unlink()  # deleted after registration
    gone = client.post(edit_url, data=base)  # a changed Loop box checks the file again
    assert gone.status_code == 400 and _field_error(gone.get_data(as_text=True), "url").startswith(
        "video file not found: "
    )
    assert _source_url(world, cam) == f"{stored}?loop=1"
    kept = client.post(edit_url, data={**base, "loop": "1", "fps": "1"})  # other edits need no file check
    assert kept.status_code == 302
    with world.session() as s:
        row = s.get(Camera, cam)
        assert (row.source_url, row.sample_fps) == (f"{stored}?loop=1", 1.0)

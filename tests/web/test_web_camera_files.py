"""Video-file cameras from the dashboard: only files under camera_media_dir, with a message that says where (or
that it is not set); a file camera with no bed zone is not played (nor reported offline) and the admin is told so;
it plays once a zone is drawn."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from web_helpers import World, login

from areya.db.engine import create_session_factory
from areya.db.models import Alert, Camera


def _clip(path: Path) -> Path:
    from areya.camera.synthetic import SyntheticWard

    SyntheticWard(beds=1, width=160, height=120, face_size=40).write_video(path, 0.4, fps=5)
    return path


def _add(world: World, url: str, name: str = "cam-file") -> tuple[int, str]:
    client, csrf = login(world.app, "admin")
    response = client.post(
        "/admin/cameras",
        data={"csrf_token": csrf, "ward_id": str(world.ids["ward_id"]), "name": name, "url": url, "fps": "2"},
        follow_redirects=True,
    )
    return response.status_code, response.get_data(as_text=True)


def _cameras(world: World, name: str) -> list[Camera]:
    with create_session_factory(world.engine)() as s:
        return list(s.scalars(select(Camera).where(Camera.name == name)))


def test_a_file_outside_camera_media_dir_is_refused_with_a_clear_message(world: World, tmp_path: Path) -> None:
    status, html = _add(world, "/etc/passwd")
    assert status == 400 and "camera_media_dir, which is not set: put the videos in one folder" in html
    services = world.app.extensions["areya"]
    services.settings = services.settings.replace(camera_media_dir=str(tmp_path / "media"))
    (tmp_path / "media").mkdir()
    status, html = _add(world, "/etc/passwd")
    assert status == 400 and f"only under camera_media_dir ({tmp_path / 'media'})" in html
    assert _cameras(world, "cam-file") == []  # nothing saved, nothing retried


def test_a_file_camera_waits_for_a_bed_zone_then_plays(world: World, tmp_path: Path) -> None:
    from areya import admin
    from areya.alerts.cameras import evaluate_cameras
    from areya.camera.service import load_cameras
    from areya.deploy.health import enabled_camera_ids

    media = tmp_path / "media"
    media.mkdir()
    services = world.app.extensions["areya"]
    services.settings = services.settings.replace(camera_media_dir=str(media))
    status, html = _add(world, str(_clip(media / "bed.avi")))
    assert status == 200 and "A video file does not play until it has a bed zone" in html
    assert "Not playing yet: a video file plays once it has a bed zone" in html  # the camera's own page
    [camera] = _cameras(world, "cam-file")
    factory = create_session_factory(world.engine)
    assert camera.id not in {c.camera_id for c in load_cameras(factory)}  # the ingestor does not play it
    assert camera.id not in enabled_camera_ids(factory)  # nor does its health check wait for it
    with factory() as s, s.begin():  # long after it was added: not offline, it is waiting
        evaluate_cameras(s, now=camera.created_at + timedelta(hours=1), offline_s=60)
    with factory() as s:
        assert not s.scalars(select(Alert).where(Alert.camera_id == camera.id)).all()
    with factory() as s, s.begin():
        admin.set_zone(s, str(camera.id), "ICU/3", 0.0, 0.0, 0.5, 1.0)
    assert camera.id in {c.camera_id for c in load_cameras(factory)} and camera.id in enabled_camera_ids(factory)

"""Private files and camera credentials encrypted at rest (issue 11, item 2): the real `areya` command, SQLite."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text

from areya import admin
from areya.camera.sources import SourceError, parse_source
from areya.config import load_settings
from areya.db.engine import create_db_engine, create_session_factory
from areya.db.migrate import current_revision, head_revision, upgrade
from areya.db.models import Camera
from areya.source_url import UNREADABLE, mask_source_url

PASSWORD = "Pa55-ward-cam-9f3k"
CAMERA_URL = f"rtsp://viewer:{PASSWORD}@10.0.0.5:554/stream1?token=also-{PASSWORD}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def raw_bytes(data_dir: Path) -> bytes:
    """Every byte Areya left under the data dir (DB, WAL, secret key, Redis folder), sockets aside."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file() and not p.is_socket())


def areya(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``areya ARGS`` in a fresh process started with a permissive umask (022), like a login shell's."""
    env = {
        "AREYA_DATA_DIR": str(data_dir),
        "AREYA_CAMERA_ALLOW_NETWORKS": "10.0.0.0/8",  # the test camera's network (areya.camera.url_policy)
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    result = subprocess.run(
        [sys.executable, "-m", "areya", *args],
        env=env,
        capture_output=True,
        text=True,  # noqa: S603
        timeout=timeout,
        preexec_fn=lambda: os.umask(0o022),
    )  # noqa: PLW1509
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_data_dir_is_private_and_camera_passwords_are_encrypted(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    areya(data_dir, "db", "upgrade")
    areya(data_dir, "ward", "add", "ICU")
    areya(data_dir, "camera", "add", "--ward", "ICU", "--name", "cam-1", "--url", CAMERA_URL, "--disabled")
    areya(
        data_dir,
        "camera",
        "add",
        "--ward",
        "ICU",
        "--name",
        "cam-2",
        "--fps",
        "5",
        "--url",
        "synthetic:beds=1,width=160,height=120,face_size=40",
    )
    listing = areya(data_dir, "camera", "list").stdout
    assert "rtsp://viewer:***@10.0.0.5:554/..." in listing and PASSWORD not in listing
    # the pipeline's ingest: embedded Redis (socket, pid, log) under the data dir, camera health into the DB
    areya(data_dir, "ingest", "--camera", "2", "--duration", "3")

    assert mode(data_dir) == 0o700
    created = [p for p in data_dir.rglob("*") if not p.is_socket()]
    assert {"areya.db", "secret_key", "redis"} <= {p.name for p in created}
    for path in created:
        assert mode(path) == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode(path))}"
    assert PASSWORD.encode() not in raw_bytes(data_dir)

    settings = load_settings(env={"AREYA_DATA_DIR": str(data_dir)})
    engine = create_db_engine(settings)
    try:
        with create_session_factory(engine)() as session:
            assert session.scalar(select(Camera.source_url).where(Camera.name == "cam-1")) == CAMERA_URL
            stored = session.execute(text("SELECT source_url FROM cameras WHERE name = 'cam-1'")).scalar_one()
    finally:
        engine.dispose()
    assert stored.startswith("areya-enc-v1:") and "viewer" not in stored


def test_an_existing_loose_data_dir_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    for name in ("areya.db", "areya.db-wal", "secret_key"):
        (data_dir / name).write_bytes(b"x" * 16 if name != "secret_key" else b"k" * 32)
        (data_dir / name).chmod(0o644)
    settings = load_settings(env={"AREYA_DATA_DIR": str(data_dir)})
    create_db_engine(settings).dispose()
    assert mode(data_dir) == 0o700
    assert {name: mode(data_dir / name) for name in ("areya.db", "areya.db-wal", "secret_key")} == {
        "areya.db": 0o600,
        "areya.db-wal": 0o600,
        "secret_key": 0o600,
    }


def test_plain_text_rows_of_older_versions_are_read_and_then_encrypted_by_the_migration(tmp_path: Path) -> None:
    settings = load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var")})
    upgrade(settings, "0003")
    engine = create_db_engine(settings)
    factory = create_session_factory(engine)
    try:
        with factory() as session:
            admin.add_ward(session, "ICU")
            session.commit()
            # rows as an older version (schema 0003) stored them, in plain text: SQL, since today's ORM has columns
            # that schema lacks
            ward_id = session.scalar(text("SELECT id FROM wards WHERE name = 'ICU'"))
            for name, url in (("cam-1", CAMERA_URL), ("file-cam", "/videos/ward.mp4")):
                session.execute(
                    text(
                        "INSERT INTO cameras (ward_id, name, source_url, sample_fps, enabled, health_status, "
                        "created_at) VALUES (:ward, :name, :url, 2.0, :on, 'unknown', :at)"
                    ),
                    {"ward": ward_id, "name": name, "url": url, "on": True, "at": "2026-11-29 12:00:00.000000"},
                )
            session.commit()
        with factory() as session:  # read both forms
            assert session.scalar(select(Camera.source_url).where(Camera.name == "cam-1")) == CAMERA_URL
        upgrade(settings)  # 0004 seals the plain-text network URL
        assert current_revision(settings) == head_revision(settings)
        with factory() as session:
            rows = dict(session.execute(text("SELECT name, source_url FROM cameras")).all())
            assert rows["cam-1"].startswith("areya-enc-v1:") and PASSWORD not in rows["cam-1"]
            assert rows["file-cam"] == "/videos/ward.mp4"  # no credentials in files: stored as given
            assert session.scalar(select(Camera.source_url).where(Camera.name == "cam-1")) == CAMERA_URL
    finally:
        engine.dispose()
    assert PASSWORD.encode() not in (tmp_path / "var" / "areya.db").read_bytes()


def test_a_changed_secret_key_makes_the_url_unreadable_not_a_crash(tmp_path: Path) -> None:
    settings = load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var")})
    upgrade(settings)
    engine = create_db_engine(settings)
    with create_session_factory(engine)() as session:
        admin.add_ward(session, "ICU")
        admin.add_camera(session, "ICU", "cam-1", CAMERA_URL, 2.0)
        session.commit()
    engine.dispose()
    other = create_db_engine(settings.replace(secret_key="another-secret-key-of-the-same-site"))
    try:
        with create_session_factory(other)() as session:
            camera = session.scalar(select(Camera).where(Camera.name == "cam-1"))
            assert camera is not None and PASSWORD not in camera.source_url
            assert camera.masked_url == UNREADABLE == mask_source_url(camera.source_url)
            with pytest.raises(SourceError, match="set the camera URL again"):
                parse_source(camera.source_url)
    finally:
        other.dispose()

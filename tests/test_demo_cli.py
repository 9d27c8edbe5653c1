"""The CLI is quiet and exact: one error style, file cameras checked and finished (not offline), quiet start."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from areya.cli import cli
from areya.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
NOISE = ("cuInit", "oneDNN", "cudart", "XNNPACK", "absl::InitializeLog", "alembic", "Context impl")


def _env(settings: Settings) -> dict[str, str]:
    return {"AREYA_DATA_DIR": str(settings.data_dir), "AREYA_DATABASE_URL": settings.database_url}


@pytest.mark.parametrize("args", [["web", "--port", "99999"], ["no-such-command"], ["--log-level", "LOUD", "db"],
                                  ["camera", "add", "--bogus"]])
def test_usage_errors_have_one_style_and_exit_2(args: list[str], settings: Settings) -> None:
    result = CliRunner().invoke(cli, args, env=_env(settings))
    assert result.exit_code == 2
    assert "error: " in result.output and "Error:" not in result.output


def test_runtime_click_errors_use_the_same_prefix(settings: Settings) -> None:
    result = CliRunner().invoke(cli, ["web", "--gunicorn"], env={**_env(settings), "PATH": "/nonexistent"})
    assert result.exit_code == 1 and result.output.startswith("error: gunicorn is not installed")


def test_config_check_validates_detector_and_model(settings: Settings) -> None:
    env = _env(settings)
    ok = CliRunner().invoke(cli, ["config", "check"], env=env)
    assert ok.exit_code == 0 and "configuration OK" in ok.output
    for key, value, message in (("AREYA_DETECTOR", "yolo", "AREYA_DETECTOR: must be one of"),
                                ("AREYA_EMOTION_MODEL", "no-such-model", "AREYA_EMOTION_MODEL: emotion model")):
        result = CliRunner().invoke(cli, ["config", "check"], env={**env, key: value})
        assert result.exit_code == 2 and result.output.startswith(f"error: configuration: {message}")


def _clip(path: Path, seconds: float = 1.0) -> Path:
    from areya.camera.synthetic import SyntheticWard

    SyntheticWard(beds=1, width=320, height=240, face_size=60).write_video(path, seconds, fps=5)
    return path


def test_camera_add_checks_video_files(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(settings)
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(cli, ["ward", "add", "ICU"], env=env).exit_code == 0
    missing = runner.invoke(cli, ["camera", "add", "--ward", "ICU", "--name", "c", "--url", "/no/such/file.mp4"],
                            env=env)
    assert missing.exit_code == 1 and missing.output.strip() == "error: video file not found: /no/such/file.mp4"
    looped = runner.invoke(cli, ["camera", "add", "--ward", "ICU", "--name", "rtsp", "--url", "rtsp://h/s", "--loop"],
                           env=env)
    assert looped.exit_code == 1 and "loop applies to video files only" in looped.output
    clip = _clip(tmp_path / "clip.avi")
    monkeypatch.chdir(tmp_path)
    added = runner.invoke(cli, ["camera", "add", "--ward", "ICU", "--name", "file", "--url", "clip.avi", "--loop"],
                          env=env)
    assert added.exit_code == 0, added.output
    assert f"file://{clip}?loop=1" in added.output  # stored absolute, so any ingest cwd finds it


def test_ingest_exits_when_every_video_file_has_ended(settings: Settings, tmp_path: Path) -> None:
    from areya.db.engine import create_db_engine
    from areya.db.models import Camera

    env = _env(settings)
    runner = CliRunner()
    clip = _clip(tmp_path / "clip.avi", seconds=2)
    for args in (["db", "upgrade"], ["ward", "add", "ICU"],
                 ["camera", "add", "--ward", "ICU", "--name", "rec", "--url", str(clip), "--fps", "5"]):
        assert runner.invoke(cli, args, env=env).exit_code == 0
    result = runner.invoke(cli, ["ingest", "--duration", "60"], env=env)
    assert result.exit_code == 0, result.output
    assert "ingest stopped (every video file ended): 1 camera(s)" in result.output
    engine = create_db_engine(load_settings(env=env))
    try:
        with engine.connect() as conn:
            status, error = conn.execute(select(Camera.health_status, Camera.last_error)).one()
    finally:
        engine.dispose()
    assert status == "ended" and error.startswith("end of video file")


def test_an_ended_file_camera_is_not_offline(session) -> None:  # noqa: ANN001 - the conftest session fixture
    from areya import admin
    from areya.alerts.cameras import evaluate_cameras
    from areya.db.models import Alert, Camera
    from areya.db.types import utcnow

    admin.add_ward(session, "ICU")
    camera = admin.add_camera(session, "ICU", "rec", "file:///videos/ward.mp4", 2.0)
    later = utcnow() + timedelta(minutes=10)
    camera.last_frame_at = utcnow()
    session.flush()
    assert evaluate_cameras(session, now=later, offline_s=60)["opened"] == 1  # a silent camera: offline
    camera = session.get(Camera, camera.id)
    camera.health_status = "ended"
    session.flush()
    assert evaluate_cameras(session, now=later + timedelta(seconds=5), offline_s=60)["resolved"] == 1
    assert evaluate_cameras(session, now=later + timedelta(minutes=5), offline_s=60)["opened"] == 0
    states = list(session.scalars(select(Alert.state)))
    assert states == ["resolved"]


def test_predict_prints_no_native_library_noise(tmp_path: Path) -> None:
    import cv2
    from skimage import data

    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AREYA_", "TF_"))}
    env["AREYA_DATA_DIR"] = str(tmp_path / "var")
    run = subprocess.run([sys.executable, "-m", "areya", "predict", str(image)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert "face 1 box=" in run.stdout
    assert not [line for line in run.stderr.splitlines() if any(n in line for n in NOISE)], run.stderr

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


@pytest.mark.parametrize(
    "args",
    [["web", "--port", "99999"], ["no-such-command"], ["--log-level", "LOUD", "db"], ["camera", "add", "--bogus"]],
)
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
    for key, value, message in (
        ("AREYA_DETECTOR", "yolo", "AREYA_DETECTOR: must be one of"),
        ("AREYA_EMOTION_MODEL", "no-such-model", "AREYA_EMOTION_MODEL: emotion model"),
    ):
        result = CliRunner().invoke(cli, ["config", "check"], env={**env, key: value})
        assert result.exit_code == 2 and result.output.startswith(f"error: configuration: {message}")


def test_config_check_validates_the_model_files_it_names(settings: Settings, tmp_path: Path) -> None:
    env = _env(settings)
    broken = tmp_path / "model.keras"
    broken.write_text("not a zip archive")
    (tmp_path / "notes.toml").write_text("")
    for extra, message in (
        ({"AREYA_EMOTION_MODEL": str(broken)}, f"AREYA_EMOTION_MODEL: {broken}: not a .keras archive"),
        ({"AREYA_EMOTION_MODEL": str(tmp_path / "notes.toml")}, "AREYA_EMOTION_MODEL: "),
        (
            {"AREYA_DETECTOR_OPTIONS": "model_path=/no/such.tflite"},
            "AREYA_DETECTOR_OPTIONS: model_path: file not found: /no/such.tflite",
        ),
        (
            {"AREYA_DETECTOR": "haar", "AREYA_DETECTOR_OPTIONS": "cascade_file=/no/such.xml"},
            "AREYA_DETECTOR_OPTIONS: cascade_file: file not found: /no/such.xml",
        ),
    ):
        result = CliRunner().invoke(cli, ["config", "check"], env={**env, **extra})
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"error: configuration: {message}"), result.output
    haar = CliRunner().invoke(cli, ["config", "check"], env={**env, "AREYA_DETECTOR": "haar"})
    assert haar.exit_code == 0 and "detector haar" in haar.output  # OpenCV's own cascade file is found


def test_prompts_end_in_the_same_error_style(settings: Settings) -> None:
    env = _env(settings)
    mismatch = CliRunner().invoke(
        cli, ["user", "add", "doc", "--role", "doctor"], env=env, input="password-one-1\npassword-two-2\n"
    )
    assert mismatch.exit_code == 1 and mismatch.output.rstrip().endswith("error: the two passwords do not match")
    aborted = CliRunner().invoke(cli, ["user", "add", "doc", "--role", "doctor"], env=env, input="")  # Ctrl-D
    assert aborted.exit_code == 1 and aborted.output.rstrip().endswith("error: aborted")
    for result in (mismatch, aborted):
        assert "Error:" not in result.output and "Aborted!" not in result.output


def test_ingest_refuses_unknown_camera_ids(settings: Settings) -> None:
    env = _env(settings)
    assert CliRunner().invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    result = CliRunner().invoke(cli, ["ingest", "--camera", "99", "--camera", "98", "--duration", "1"], env=env)
    assert result.exit_code == 1 and result.output.strip() == "error: unknown camera id 98, 99"


def test_synthetic_video_errors_are_one_line(tmp_path: Path) -> None:
    nowhere = CliRunner().invoke(cli, ["synthetic-video", str(tmp_path / "no" / "ward.avi"), "--seconds", "1"])
    assert nowhere.exit_code == 1
    assert nowhere.output.strip() == (
        f"error: cannot write video {tmp_path / 'no' / 'ward.avi'}: folder {tmp_path / 'no'} does not exist"
    )
    (tmp_path / "faces").mkdir()
    no_faces = CliRunner().invoke(
        cli, ["synthetic-video", str(tmp_path / "ward.avi"), "--seconds", "1", "--faces", str(tmp_path / "faces")]
    )
    assert no_faces.exit_code == 1 and no_faces.output.startswith("error: no class folders with images under")


def test_demo_refuses_faces_that_lack_the_storys_emotions(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    (tmp_path / "faces" / "happy").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "faces" / "happy" / "a.png"), np.full((48, 48), 128, np.uint8))
    result = CliRunner().invoke(
        cli,
        ["demo", "--faces", str(tmp_path / "faces"), "--duration", "1", "--no-web", "--no-scheduler"],
        env={"AREYA_DATA_DIR": str(tmp_path / "var")},
    )
    assert result.exit_code == 1, result.output
    last = result.output.rstrip().splitlines()[-1]
    assert last.startswith(f"error: no angry, neutral, sad faces in {tmp_path / 'faces'} (the story shows them")


def _demo_start(tmp_path: Path, *options: str) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AREYA_", "TF_"))}
    env["AREYA_DATA_DIR"] = str(tmp_path / "var")
    run = subprocess.run(
        [sys.executable, "-m", "areya", *options, "demo", "--duration", "1", "--no-web", "--no-scheduler"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout, run.stderr


def _passwords(stdout: str) -> dict[str, str]:
    rows = [line.split() for line in stdout.splitlines() if line.startswith("user: ") and "password:" in line]
    return {row[1]: row[3] for row in rows}


def test_demo_start_is_quiet_and_keeps_its_passwords(tmp_path: Path) -> None:
    """The first start: no TensorFlow/CUDA/Alembic lines, the story camera, passwords printed; the next start (at
    DEBUG, where the libraries' own lines come back) prints the same passwords."""
    out, err = _demo_start(tmp_path)
    assert not [line for line in (out + err).splitlines() if any(n in line for n in NOISE)], out + err
    assert "camera 1: synthetic:story=" in out and "story: Bed 1 Ada Sad-Example" in out
    first = _passwords(out)
    assert set(first) == {"admin", "nurse", "doctor"}
    out, err = _demo_start(tmp_path, "--log-level", "DEBUG")
    assert "alembic" in err  # kept for DEBUG
    assert _passwords(out) == first


def test_third_party_log_lines_only_at_debug() -> None:
    import logging

    from areya.logsetup import CHATTY_LOGGERS, setup_logging

    saved = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    try:
        setup_logging("INFO")
        assert not logging.getLogger("alembic.runtime.migration").isEnabledFor(logging.INFO)
        setup_logging("DEBUG")  # the same process asking for more: the libraries follow the root again
        assert all(logging.getLogger(name).level == logging.NOTSET for name in CHATTY_LOGGERS)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _clip(path: Path, seconds: float = 1.0) -> Path:
    from areya.camera.synthetic import SyntheticWard

    SyntheticWard(beds=1, width=320, height=240, face_size=60).write_video(path, seconds, fps=5)
    return path


def test_camera_add_checks_video_files(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(settings)
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(cli, ["ward", "add", "ICU"], env=env).exit_code == 0
    missing = runner.invoke(
        cli, ["camera", "add", "--ward", "ICU", "--name", "c", "--url", "/no/such/file.mp4"], env=env
    )
    assert missing.exit_code == 1 and missing.output.strip() == "error: video file not found: /no/such/file.mp4"
    looped = runner.invoke(
        cli, ["camera", "add", "--ward", "ICU", "--name", "rtsp", "--url", "rtsp://h/s", "--loop"], env=env
    )
    assert looped.exit_code == 1 and "loop applies to video files only" in looped.output
    clip = _clip(tmp_path / "clip.avi")
    monkeypatch.chdir(tmp_path)
    added = runner.invoke(
        cli, ["camera", "add", "--ward", "ICU", "--name", "file", "--url", "clip.avi", "--loop"], env=env
    )
    assert added.exit_code == 0, added.output
    assert f"file://{clip}?loop=1" in added.output  # stored absolute, so any ingest cwd finds it


def _camera_health(env: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    from areya.db.engine import create_db_engine
    from areya.db.models import Camera

    engine = create_db_engine(load_settings(env=env))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Camera.name, Camera.health_status, Camera.last_error)).all()
    finally:
        engine.dispose()
    return {name: (status, error) for name, status, error in rows}


def _file_cameras(env: dict[str, str], clips: dict[str, Path], *, zones: bool = True) -> None:
    """Video-file cameras in ward ICU, each with a bed and a zone (a video file plays only once it has one)."""
    runner = CliRunner()
    for args in (
        ["db", "upgrade"],
        ["ward", "add", "ICU"],
        *(
            ["camera", "add", "--ward", "ICU", "--name", name, "--url", str(clip), "--fps", "5"]
            for name, clip in clips.items()
        ),
    ):
        assert runner.invoke(cli, args, env=env).exit_code == 0
    for name in clips if zones else ():
        for args in (
            ["bed", "add", "ICU", name],
            ["zone", "set", "--camera", f"ICU/{name}", "--bed", f"ICU/{name}", "0", "0", "1", "1"],
        ):
            assert runner.invoke(cli, args, env=env).exit_code == 0, args


def test_ingest_until_end_exits_when_every_video_file_has_ended(settings: Settings, tmp_path: Path) -> None:
    env = _env(settings)
    _file_cameras(env, {"rec": _clip(tmp_path / "clip.avi", seconds=2)})
    result = CliRunner().invoke(cli, ["ingest", "--until-end", "--duration", "60"], env=env)
    assert result.exit_code == 0, result.output
    assert "ingest stopped (every video file ended): 1 camera(s)" in result.output
    status, error = _camera_health(env)["rec"]
    assert status == "ended" and error.startswith("end of video file")


def test_ingest_keeps_running_when_its_files_have_ended(settings: Settings, tmp_path: Path) -> None:
    import time

    env = _env(settings)
    _file_cameras(env, {"rec": _clip(tmp_path / "clip.avi", seconds=0.6)})
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["ingest", "--duration", "4"], env=env)  # a service: no --until-end
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 4  # ran to its --duration, long after the file ended
    assert "ingest stopped: 1 camera(s)" in result.output
    assert _camera_health(env)["rec"][0] == "ended"
    assert "--keep-running" not in CliRunner().invoke(cli, ["ingest", "--help"]).output


def test_ingest_until_end_exits_1_when_a_video_file_is_missing(settings: Settings, tmp_path: Path) -> None:
    env = _env(settings)
    deleted = _clip(tmp_path / "deleted.avi")
    _file_cameras(env, {"rec": _clip(tmp_path / "clip.avi"), "gone": deleted})
    deleted.unlink()  # after registration
    result = CliRunner().invoke(cli, ["ingest", "--until-end", "--duration", "60"], env=env)
    assert result.exit_code == 1, result.output
    assert "ingest stopped (every video file ended, 1 in error): 2 camera(s)" in result.output
    assert f"error: gone (id 2): video file not found: {deleted}" in result.output
    health = _camera_health(env)
    assert health["rec"][0] == "ended"
    status, error = health["gone"]
    assert status == "error" and error.startswith(f"video file not found: {deleted} (video file given up")


def test_ingest_until_end_without_enabled_cameras_exits_1_at_once(settings: Settings) -> None:
    env = _env(settings)
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(cli, ["ingest", "--until-end", "--duration", "60"], env=env)
    assert result.exit_code == 1 and "no enabled cameras to read" in result.output, result.output


def test_ingest_until_end_does_not_play_a_video_file_without_a_bed_zone(settings: Settings, tmp_path: Path) -> None:
    env = _env(settings)
    _file_cameras(env, {"rec": _clip(tmp_path / "clip.avi")}, zones=False)
    result = CliRunner().invoke(cli, ["ingest", "--until-end", "--duration", "60"], env=env)
    assert result.exit_code == 1 and "a video file plays once it has a bed zone" in result.output, result.output


def test_an_ended_file_camera_is_not_offline(session) -> None:  # noqa: ANN001 - the conftest session fixture
    from areya import admin
    from areya.alerts.cameras import evaluate_cameras
    from areya.db.models import Alert, Camera
    from areya.db.types import utcnow

    admin.add_ward(session, "ICU")
    camera = admin.add_camera(session, "ICU", "rec", "file:///videos/ward.mp4", 2.0)
    admin.add_bed(session, "ICU", "1")
    admin.set_zone(session, "ICU/rec", "ICU/1", 0.0, 0.0, 1.0, 1.0)  # without one it waits: never offline
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
    run = subprocess.run(
        [sys.executable, "-m", "areya", "predict", str(image)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "face 1 box=" in run.stdout
    assert not [line for line in run.stderr.splitlines() if any(n in line for n in NOISE)], run.stderr


def test_demo_on_a_busy_port_says_so_in_one_line_before_anything_starts(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["demo", "--port", str(port), "--duration", "1"], env={"AREYA_DATA_DIR": str(tmp_path / "var")}
        )
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (another areya demo or dashboard?): stop it, or choose another "
        "port with `areya demo --port N`"
    ]
    assert not (tmp_path / "var" / "areya.db").exists()  # said before the database (or the model) was touched


def test_demo_settings_give_the_dashboard_a_media_folder_and_the_port(tmp_path: Path) -> None:
    from areya.config import load_settings
    from areya.demo import demo_settings

    settings = demo_settings(load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var")}), 8123)
    assert settings.web_port == 8123 and settings.camera_media_dir == str(tmp_path / "var" / "media")
    assert (tmp_path / "var" / "media").is_dir()
    chosen = load_settings(env={"AREYA_DATA_DIR": str(tmp_path), "AREYA_CAMERA_MEDIA_DIR": str(tmp_path / "videos")})
    assert demo_settings(chosen, None).camera_media_dir == str(tmp_path / "videos")  # an operator's choice stays

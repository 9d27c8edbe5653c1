"""``areya demo`` and the pipeline CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select

from areya.cli import cli
from areya.config import load_settings
from areya.db.engine import create_db_engine
from areya.db.models import Camera, Observation, User
from areya.demo import run_demo


def test_demo_runs_the_whole_pipeline_and_stops_cleanly(tmp_path: Path, haar: Any, untrained_classifier: Any) -> None:
    settings = load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var"), "AREYA_DEFAULT_SAMPLE_FPS": "4"})
    lines: list[str] = []
    demo = run_demo(
        settings,
        beds=2,
        duration=6,
        classifier=untrained_classifier,
        detector=haar,
        web=False,
        scheduler=False,
        echo=lines.append,
    )
    text = "\n".join(lines)
    assert "embedded redis-server" in text and "redis: stopped" in text
    assert set(demo.passwords) == {"admin", "nurse", "doctor"} and all(len(p) >= 12 for p in demo.passwords.values())
    engine = create_db_engine(settings)
    try:
        with engine.connect() as conn:
            per_patient = dict(
                conn.execute(select(Observation.patient_id, func.count()).group_by(Observation.patient_id)).all()
            )
            users = set(conn.scalars(select(User.username)))
            camera_health = conn.scalar(select(Camera.health_status))
    finally:
        engine.dispose()
    assert set(per_patient) == set(demo.patient_ids.values())  # both beds' patients observed, nobody else
    assert users == {"admin", "nurse", "doctor"}
    assert camera_health == "offline"  # the ingestor wrote its shutdown
    assert not (tmp_path / "var" / "redis" / "redis.sock").exists()  # the embedded server is stopped


def test_pipeline_commands_are_listed_without_heavy_imports() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("demo", "ingest", "worker", "synthetic-video", "pipeline-metrics", "deadletters"):
        assert name in result.output
    result = runner.invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0 and "--source" in result.output and "--duration" in result.output


def test_synthetic_video_command_writes_a_video_and_its_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "ward.avi"
    result = CliRunner().invoke(
        cli, ["synthetic-video", str(out), "--seconds", "1", "--fps", "4", "--beds", "2", "--segment", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 4 frames" in result.output and "bed 2:" in result.output and out.stat().st_size > 0


def test_demo_sources_loop_video_files(tmp_path: Path) -> None:
    import pytest

    from areya.demo import demo_source_url

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00")
    assert demo_source_url(str(clip)) == f"file://{clip}?loop=1"
    assert demo_source_url(f"file://{clip}") == f"file://{clip}?loop=1"
    assert demo_source_url("rtsp://cam.example/stream") == "rtsp://cam.example/stream"
    assert demo_source_url("device:0") == "device:0"
    with pytest.raises(FileNotFoundError):
        demo_source_url(str(tmp_path / "missing.mp4"))

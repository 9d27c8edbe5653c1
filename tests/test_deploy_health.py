"""``areya health`` probes and ``areya sync-cameras`` against a real Redis server and real databases.

The probes read what the running services leave behind (consumer group, camera health, leader lock and
heartbeat), so each test makes a real service do that: a real consumer-group read, the ingest health
publisher, a real scheduler tick.  ``areya web --gunicorn`` (the compose/k8s/systemd command) is started for
real and probed over HTTP.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import func, select

from areya.camera.health import CameraHealth, publish_health
from areya.cli import cli
from areya.comms.redis_server import EmbeddedRedis
from areya.deploy import health as probes
from areya.deploy.cameras import read_camera_file

HOST = socket.gethostname()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def rclient(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis_server.client(socket_timeout=5)
    yield client
    client.close()


CLI_SECRET_KEY = "k" * 32


@pytest.fixture
def db_env(db_settings: Any) -> dict[str, str]:
    """CLI environment on the per-test database (no Redis)."""
    return {
        "AREYA_DATA_DIR": str(db_settings.data_dir),
        "AREYA_DATABASE_URL": db_settings.database_url,
        "AREYA_SECRET_KEY": CLI_SECRET_KEY,
        "AREYA_CAMERA_ALLOW_NETWORKS": "10.20.0.0/16",  # the test cameras' network (areya.camera.url_policy)
    }


@pytest.fixture
def cli_env(db_env: dict[str, str], redis_server: EmbeddedRedis) -> dict[str, str]:
    return {**db_env, "AREYA_REDIS_URL": f"unix://{redis_server.socket_path}"}


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


# --------------------------------------------------------------------------- probes


def test_worker_probe_follows_this_hosts_consumers(rclient: redis.Redis) -> None:
    assert not probes.check_worker(rclient, "frames", "workers").ok  # no stream / group: no worker started
    rclient.xgroup_create("frames", "workers", id="0", mkstream=True)
    idle = probes.check_worker(rclient, "frames", "workers", hostname=HOST)
    assert idle.ok and "no frame waiting" in idle.detail  # an idle worker is not a hung one
    rclient.xadd("frames", {"n": 1})
    rclient.xadd("frames", {"n": 2})
    rclient.xreadgroup("workers", "otherhost-1-abc", {"frames": ">"}, count=1, block=100)
    other = probes.check_worker(rclient, "frames", "workers", hostname=HOST)
    assert not other.ok and "waiting" in other.detail and "1 other" in other.detail
    rclient.xreadgroup("workers", f"{HOST}-42-beef", {"frames": ">"}, count=1, block=100)  # what a worker does
    rclient.xadd("frames", {"n": 3})
    mine = probes.check_worker(rclient, "frames", "workers", hostname=HOST)
    assert mine.ok and f"{HOST}-42-beef" in mine.detail
    time.sleep(1.2)
    silent = probes.check_worker(rclient, "frames", "workers", hostname=HOST, max_idle_s=1)
    assert not silent.ok and "silent" in silent.detail
    rclient.xreadgroup("workers", f"{HOST}-42-beef", {"frames": ">"}, count=10, block=100)  # backlog taken
    assert probes.check_worker(rclient, "frames", "workers", hostname=HOST, max_idle_s=1).ok


def test_ingest_probe_reads_the_camera_health_records(rclient: redis.Redis) -> None:
    assert probes.check_ingest(rclient, []).ok  # nothing to read
    assert not probes.check_ingest(rclient, [1, 2]).ok  # cameras but no health published
    health = CameraHealth(camera_id=2, sample_fps=2.0)
    health.frame()
    publish_health(rclient, 2, health.snapshot())
    fresh = probes.check_ingest(rclient, [1, 2])
    assert fresh.ok and "1/2" in fresh.detail
    stale = probes.check_ingest(rclient, [1, 2], max_age_s=30, now=time.time() + 60)
    assert not stale.ok and "not updated" in stale.detail


def test_scheduler_probe_with_a_real_leader(db_settings: Any, engine: Any, rclient: redis.Redis) -> None:
    from areya.alerts.lock import LOCK_KEY
    from areya.alerts.scheduler import AlertScheduler

    assert probes.check_scheduler(rclient, lock_ttl_s=15).ok  # no leader yet: fine
    rclient.set(LOCK_KEY, "otherhost:1:abc", px=15000)
    standby = probes.check_scheduler(rclient, lock_ttl_s=15, hostname=HOST)
    assert standby.ok and "standby" in standby.detail
    rclient.delete(LOCK_KEY)
    sched = AlertScheduler(db_settings, engine=engine, redis_client=rclient, lock_ttl_ms=15000)
    try:
        assert sched.tick() is not None  # leader: lock + heartbeat
        leader = probes.check_scheduler(rclient, lock_ttl_s=15, hostname=HOST)
        assert leader.ok and "leader" in leader.detail
        hung = probes.check_scheduler(rclient, lock_ttl_s=15, hostname=HOST, now=time.time() + 16)
        assert not hung.ok and "last ticked" in hung.detail
    finally:
        sched.stop()


def test_redis_probe_reports_a_dead_server(tmp_path: Path) -> None:
    client = redis.Redis(unix_socket_path=str(tmp_path / "none.sock"), socket_connect_timeout=1)
    result = probes.check_redis(client)
    assert not result.ok and "redis not answering" in result.detail


# --------------------------------------------------------------------------- areya health (CLI)


def test_health_deps_cli_checks_schema_and_redis(cli_env: dict[str, str], tmp_path: Path) -> None:
    ok = run(cli_env, "health")
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("deps: ok: database at") and "redis answers" in ok.output
    unmigrated = {**cli_env, "AREYA_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = run(unmigrated, "health", "deps")
    assert result.exit_code == 1 and "areya db upgrade" in result.output
    no_redis = {**cli_env, "AREYA_REDIS_URL": f"unix://{tmp_path / 'no.sock'}"}
    result = run(no_redis, "health", "scheduler")
    assert result.exit_code == 1 and "scheduler: unhealthy: redis not answering" in result.output


def test_health_ingest_cli_uses_the_enabled_cameras(cli_env: dict[str, str], rclient: redis.Redis) -> None:
    assert run(cli_env, "health", "ingest").output.strip() == "ingest: ok: no enabled camera to read"
    assert run(cli_env, "ward", "add", "ICU").exit_code == 0
    assert run(cli_env, "camera", "add", "--ward", "ICU", "--name", "c1", "--url", "synthetic:beds=2").exit_code == 0
    result = run(cli_env, "health", "ingest")
    assert result.exit_code == 1 and "no health published yet for 1 camera" in result.output
    health = CameraHealth(camera_id=1)
    health.frame()
    publish_health(rclient, 1, health.snapshot())
    assert run(cli_env, "health", "ingest").exit_code == 0


def test_health_web_cli_reports_nothing_listening(db_env: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(db_env, "health", "web", "--url", f"http://127.0.0.1:{port}/login")
    assert result.exit_code == 1 and result.output.startswith("web: unhealthy:")


def test_web_under_gunicorn_answers_the_health_probe(cli_env: dict[str, str], tmp_path: Path) -> None:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if not gunicorn.exists():
        pytest.skip("gunicorn not installed (pip install -e '.[dev]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **cli_env, "PATH": f"{gunicorn.parent}{os.pathsep}{os.environ['PATH']}"}
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen(
        [
            str(gunicorn.parent / "areya"),
            "web",
            "--gunicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--threads",
            "4",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/login"
        deadline = time.monotonic() + 90
        result = probes.check_web(url)
        while not result.ok and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            result = probes.check_web(url)
        assert result.ok, (tmp_path / "web.log").read_text()
        cli_result = run(cli_env, "health", "web", "--url", url)
        assert cli_result.exit_code == 0 and "answered 200" in cli_result.output
        assert b"gunicorn" in Path(f"/proc/{proc.pid}/cmdline").read_bytes()  # exec'd into gunicorn itself
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


# --------------------------------------------------------------------------- areya sync-cameras


CAMERAS = """
[[camera]]
ward = "ICU"
name = "bay-1"
url = "rtsp://viewer:hunter2secret@10.20.0.11:554/stream1"
fps = 2.0

[[camera]]
ward = "Ward B"
name = "bay-2"
url = "synthetic:beds=2,seed=3"
enabled = false
"""


def _cameras(db_settings: Any) -> dict[str, tuple[str, float, bool]]:
    from areya.db.engine import create_db_engine, create_session_factory
    from areya.db.models import Camera, Ward

    engine = create_db_engine(db_settings.replace(secret_key=CLI_SECRET_KEY))  # camera URLs: the CLI's key
    try:
        with create_session_factory(engine)() as session:
            rows = session.execute(
                select(Ward.name, Camera.name, Camera.source_url, Camera.sample_fps, Camera.enabled).join(
                    Ward, Ward.id == Camera.ward_id
                )
            )
            return {f"{w}/{c}": (url, fps, enabled) for w, c, url, fps, enabled in rows}
    finally:
        engine.dispose()


def test_sync_cameras_adds_updates_and_never_prints_urls(
    db_env: dict[str, str], db_settings: Any, tmp_path: Path
) -> None:
    path = tmp_path / "cameras.toml"
    path.write_text(CAMERAS)
    dry = run(db_env, "sync-cameras", str(path), "--dry-run")
    assert dry.exit_code == 0 and "dry run" in dry.output and _cameras(db_settings) == {}
    first = run(db_env, "sync-cameras", str(path))
    assert first.exit_code == 0, first.output
    assert "ICU/bay-1: added" in first.output and "Ward B: ward added" in first.output
    assert "hunter2secret" not in first.output
    assert _cameras(db_settings) == {
        "ICU/bay-1": ("rtsp://viewer:hunter2secret@10.20.0.11:554/stream1", 2.0, True),
        "Ward B/bay-2": ("synthetic:beds=2,seed=3", db_settings.default_sample_fps, False),
    }
    again = run(db_env, "sync-cameras", str(path))
    assert "ICU/bay-1: unchanged" in again.output and "0 change(s)" in again.output
    path.write_text(CAMERAS.replace("hunter2secret", "rotated-pass").replace("enabled = false", "enabled = true"))
    changed = run(db_env, "sync-cameras", str(path))
    assert "ICU/bay-1: updated (url)" in changed.output and "Ward B/bay-2: updated (enabled)" in changed.output
    assert "rotated-pass" not in changed.output
    assert _cameras(db_settings)["ICU/bay-1"][0].endswith("rotated-pass@10.20.0.11:554/stream1")
    assert _cameras(db_settings)["Ward B/bay-2"][2] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[camera]]\nward = "ICU"\nname = "x"\n', "'url' is required"),
        ('[[camera]]\nward = "ICU"\nname = "x"\nurl = "ftp://nope"\n', "ICU"),
        ('[[camera]]\nward = "ICU"\nname = "x"\nurl = "synthetic:beds=1"\nfps = "fast"\n', "'fps' must be a number"),
        (
            '[[camera]]\nward = "ICU"\nname = "x"\nurl = "synthetic:"\n[[camera]]\nward = "ICU"\nname = "x"\n'
            'url = "synthetic:"\n',
            "listed twice",
        ),
        ("cameras = 3\n", "unknown top-level key"),
        ("[[camera\n", "invalid TOML"),
    ],
)
def test_sync_cameras_bad_file_changes_nothing(
    db_env: dict[str, str], db_settings: Any, tmp_path: Path, text: str, message: str
) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[[camera]]\nward = "ICU"\nname = "ok"\nurl = "synthetic:beds=1"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text() + text if text.startswith("[[camera]]") else text)
    result = CliRunner().invoke(cli, ["sync-cameras", str(bad)], env=db_env)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    if message != "ICU":
        assert message in result.output
    assert _cameras(db_settings) == {}  # the good first entry was not written either


def test_sync_cameras_missing_file_is_one_clear_line(db_env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sync-cameras", str(tmp_path / "nope.toml")], env=db_env)
    assert result.exit_code == 1 and "error: camera file" in result.output and "No such file" in result.output


def test_the_example_camera_secret_parses(tmp_path: Path) -> None:
    import yaml

    path = Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "secret.example.yaml"
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d["metadata"]["name"] == "areya-cameras"]
    (tmp_path / "cameras.toml").write_text(doc["stringData"]["cameras.toml"])
    (spec,) = read_camera_file(tmp_path / "cameras.toml")
    assert (spec.ward, spec.name, spec.fps, spec.enabled) == ("ICU", "bay-1", 2.0, True)


def test_sync_counts_match_the_database(db_env: dict[str, str], db_settings: Any, tmp_path: Path) -> None:
    from areya.db.engine import create_db_engine, create_session_factory
    from areya.db.models import AuditEvent

    path = tmp_path / "cameras.toml"
    path.write_text(CAMERAS)
    assert run(db_env, "sync-cameras", str(path)).exit_code == 0
    engine = create_db_engine(db_settings)
    try:
        with create_session_factory(engine)() as session:
            actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("camera.%"))).all()
            assert sorted(actions) == ["camera.add", "camera.add"]
            assert (
                session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "ward.add")) == 2
            )  # ICU and Ward B
    finally:
        engine.dispose()

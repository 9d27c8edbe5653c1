"""bench/bench_scaleout.py building blocks: latency percentiles from histogram deltas, the saturated window,
the camera file it syncs, and its PostgreSQL / Redis servers (real Debian binaries; skipped when absent).
The run itself takes minutes and is not part of the suite (its figures are in deploy/README.md)."""

from __future__ import annotations

import importlib.util
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    # by file: pytest does not put the repository root (the ``bench`` package's parent) on sys.path
    spec = importlib.util.spec_from_file_location("bench_scaleout", ROOT / "bench" / "bench_scaleout.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scaleout"] = module
    spec.loader.exec_module(module)
    return module


so = _load()


def sample(t: float, processed: float, lag: int = 0, buckets: dict[float, float] | None = None) -> object:
    return so.Sample(
        t=t,
        published=0,
        processed=processed,
        dead=0,
        dropped=0,
        faces=3 * processed,
        assigned=0,
        written=0,
        duplicate=0,
        lag=lag,
        pending=0,
        latency=buckets or {},
        latency_sum=0,
        latency_count=0,
    )


def test_percentile_interpolates_within_the_bucket_of_the_window() -> None:
    inf = float("inf")
    a = sample(0, 0, buckets={0.1: 10, 0.5: 10, 1.0: 10, inf: 10})  # before: 10 fast frames
    b = sample(10, 0, buckets={0.1: 10, 0.5: 60, 1.0: 110, inf: 110})  # window: 50 in (0.1, 0.5], 50 in (0.5, 1]
    assert so.percentile(a, b, 0.5) == pytest.approx(0.5)
    assert so.percentile(a, b, 0.25) == pytest.approx(0.3)
    assert so.percentile(a, b, 0.95) == pytest.approx(0.95)
    assert so.percentile(a, a, 0.5) is None  # nothing committed in between


def test_throughput_uses_only_the_saturated_part() -> None:
    samples = [
        sample(0, 0, lag=500),
        sample(2, 100, lag=450),
        sample(4, 200, lag=300),
        sample(6, 260, lag=10),
        sample(8, 270, lag=0),
    ]
    phase = so.Phase("1 worker", 1, samples)
    first, last = phase.window(min_backlog=64)
    assert (first.t, last.t) == (0, 4)
    row = so._throughput(phase, 64)
    assert row["frames_per_s"] == 50.0 and row["faces_per_s"] == 150.0 and row["seconds"] == 4.0
    starved = so.Phase("2 workers", 2, [sample(0, 0, lag=5), sample(2, 10, lag=3)])
    assert so._throughput(starved, 64)["frames_per_s"] is None  # never claims a rate it did not saturate


def test_camera_file_is_what_sync_cameras_reads(tmp_path: Path) -> None:
    from areya.camera.synthetic import ward_from_uri
    from areya.deploy.cameras import read_camera_file

    path = tmp_path / "cameras.toml"
    so.camera_file(path, cameras=3, beds=2, fps=4.0, faces=None)
    specs = read_camera_file(path)
    assert [(s.ward, s.name, s.fps) for s in specs] == [(so.WARD, f"cam-{i}", 4.0) for i in (1, 2, 3)]
    assert len(ward_from_uri(specs[0].url).zones()) == 2  # the URL is a valid synthetic camera with 2 beds


@pytest.mark.skipif(not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")), reason="PostgreSQL not installed")
def test_postgres_with_a_password_on_loopback() -> None:
    import sqlalchemy

    work = Path(tempfile.mkdtemp(prefix="areya-test-pg-"))  # the postgres user must reach it (not under 0700 dirs)
    work.chmod(0o711)
    password = secrets.token_hex(8)
    pg = so.Postgres(work / "pg", so.free_port(), password)
    try:
        url = pg.start()
        assert url.startswith("postgresql+psycopg://areya:") and "@127.0.0.1:" in url
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            assert conn.scalar(sqlalchemy.text("select current_user")) == "areya"
        engine.dispose()
        bad = sqlalchemy.create_engine(url.replace(password, "wrong"))
        with pytest.raises(sqlalchemy.exc.OperationalError, match="password"), bad.connect():
            pass
        bad.dispose()
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_redis_with_a_password_and_nothing_on_disk(tmp_path: Path) -> None:
    import redis

    if not (
        shutil.which("redis-server", path="/usr/bin:/usr/local/bin")
        or (Path(sys.executable).parent / "redis-server").exists()
    ):
        pytest.skip("no redis-server")
    server = so.RedisServer(tmp_path / "redis", so.free_port(), secrets.token_hex(8))
    try:
        url = server.start()
        client = redis.Redis.from_url(url)
        assert client.config_get("appendonly")["appendonly"] == "no"  # frames never reach the disk
        assert client.config_get("save")["save"] == ""
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=server.port).ping()
        client.close()
    finally:
        server.stop()

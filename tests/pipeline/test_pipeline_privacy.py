"""Camera frames never reach the disk, and the embedded Redis is shared by its users (real redis-server, SQLite).

Issue 11, items 1 (frames in the append-only file) and 5 (whichever service started the embedded Redis stopped it
from under the others).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pipeline_helpers import STREAM, fast_config, pending, publish_ward, setup_ward, wait_until
from pipeline_standins import FixedClassifier

from areya.camera.health import snapshot_key
from areya.camera.reader import CameraConfig
from areya.camera.service import IngestService
from areya.camera.synthetic import SyntheticWard
from areya.comms.redis_server import EmbeddedRedis, connect, stop_owned_servers
from areya.config import Settings, load_settings
from areya.db.engine import create_db_engine, create_session_factory
from areya.db.migrate import upgrade
from areya.worker import Worker

JPEG_MARKER = b"\xff\xd8\xff"


@pytest.fixture
def var_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings whose data dir holds everything: the SQLite DB, the secret key and the embedded Redis."""
    settings = load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var")})
    yield settings
    stop_owned_servers()
    EmbeddedRedis(settings.redis_dir).stop()


def files_with_jpeg(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_socket() and JPEG_MARKER in path.read_bytes():
                found.append(str(path))
    return found


def test_frames_and_snapshots_never_reach_the_disk(var_settings: Settings, haar: Any) -> None:
    settings = var_settings
    upgrade(settings)
    engine = create_db_engine(settings)
    factory = create_session_factory(engine)
    ward = SyntheticWard(beds=2, seed=5)
    demo = setup_ward(factory, ward)
    client = connect(settings, socket_timeout=5)  # the embedded server under <data_dir>/redis, as services do
    redis_dir = EmbeddedRedis(settings.redis_dir)
    try:
        # ingest: the real camera reader samples the synthetic ward camera, publishes frames and keeps a snapshot
        camera = CameraConfig(demo.camera_id, "synthetic:beds=2,width=320,height=240,face_size=80", sample_fps=10)
        ingest = IngestService(
            client, stream=STREAM, maxlen=1000, cameras=[camera], snapshot_ttl_s=60, health_interval_s=0.2
        )
        ingest.start()
        try:
            assert wait_until(lambda: client.xlen(STREAM) >= 6 and client.exists(snapshot_key(demo.camera_id)))
        finally:
            ingest.stop()
        # the worker consumes them (observations in the SQLite file under the same data dir)
        Worker(client, engine, haar, FixedClassifier(), fast_config(batch_size=8)).run(idle_exit_s=0.5)
        assert pending(client) == 0
        # and frames still queued when Redis stops: the worst case for an append-only file
        publish_ward(client, ward, demo.camera_id, [0.0, 1.0, 2.0])
        newest = client.xrevrange(STREAM, count=1)[0][1]
        assert newest[b"jpeg"].startswith(JPEG_MARKER)  # the scan below would see a frame
        assert client.get(snapshot_key(demo.camera_id)).startswith(JPEG_MARKER)
        assert client.config_get("appendonly")["appendonly"] == "no" and client.config_get("save")["save"] == ""
    finally:
        client.close()
        engine.dispose()
        stop_owned_servers()  # the last user of the server it started: stopped (SHUTDOWN, nothing saved)
    assert redis_dir.running_pid() is None
    assert files_with_jpeg(settings.data_dir, settings.redis_dir) == []


def test_persistence_files_of_older_versions_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    (folder / "appendonlydir").mkdir(parents=True)
    for name in ("appendonly.aof", "dump.rdb", "appendonlydir/appendonly.aof.1.incr.aof"):
        (folder / name).write_bytes(b"*3\r\n$4\r\nXADD\r\n" + JPEG_MARKER + b"\xe0 a ward frame")
    server = EmbeddedRedis(folder).start()
    try:
        assert server.client().dbsize() == 0  # nothing loaded back from the old dump
    finally:
        server.stop()
    assert files_with_jpeg(folder) == []
    assert not [p for p in folder.iterdir() if p.name.startswith(("appendonly", "dump"))]


CHILD = """
import sys
from areya.comms.redis_server import connect, stop_owned_servers
from areya.config import load_settings

client = connect(load_settings(env={"AREYA_DATA_DIR": sys.argv[1]}))
print("ready", flush=True)
sys.stdin.readline()
print("ping", client.ping(), flush=True)
stop_owned_servers()
"""


def test_the_embedded_server_outlives_the_service_that_started_it(var_settings: Settings) -> None:
    server = EmbeddedRedis(var_settings.redis_dir)
    client = connect(var_settings)  # this process starts it (like `areya scheduler` starting first)
    client.set("areya:scheduler:leader", "me")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(var_settings.data_dir)],  # noqa: S603
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        stop_owned_servers()  # the starter exits first: the other user still needs the server
        assert server.running_pid() is not None and server.ping()
        assert server.client().get("areya:scheduler:leader") == b"me"
        out, _ = child.communicate("\n", timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0 and "ping True" in out
    assert wait_until(lambda: server.running_pid() is None, 30)  # its last user stopped it


def test_a_crashed_user_does_not_keep_the_server_and_an_owner_keeps_its_own(var_settings: Settings) -> None:
    folder = var_settings.redis_dir
    first = EmbeddedRedis(folder).acquire()
    crashed = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(var_settings.data_dir)],  # noqa: S603
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert crashed.stdout is not None and crashed.stdout.readline().strip() == "ready"
    crashed.kill()  # SIGKILL: its lease goes with it
    crashed.wait(timeout=30)
    assert first.release() is True  # now the last user: it stops the shared server
    assert EmbeddedRedis(folder).running_pid() is None

    owner = EmbeddedRedis(folder).start()  # started explicitly (areya demo, a fixture): its starter stops it
    try:
        user = EmbeddedRedis(folder).acquire()
        assert user.release() is False and owner.ping()
    finally:
        owner.stop()
    assert owner.running_pid() is None


def test_connect_without_starting_refuses_when_none_runs(var_settings: Settings) -> None:
    from areya.comms.redis_server import RedisServerError

    with pytest.raises(RedisServerError, match="no embedded redis running"):
        connect(var_settings, start_embedded=False)
    with pytest.raises(redis.ConnectionError):
        EmbeddedRedis(var_settings.redis_dir).client(socket_connect_timeout=1).ping()

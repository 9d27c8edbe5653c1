"""A worker SIGKILLed mid-batch: after a restart every frame is in the database exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from pipeline_helpers import count_observations, fast_config, pending, publish_ward, setup_ward
from pipeline_standins import FixedClassifier
from sqlalchemy import func, select

from areya.camera.synthetic import SyntheticWard
from areya.comms.redis_server import EmbeddedRedis
from areya.db.models import Observation
from areya.worker import Worker

pytestmark = pytest.mark.postgres

HERE = Path(__file__).resolve().parent


def test_worker_killed_mid_batch_then_restarted_processes_each_frame_exactly_once(
    redis_server: EmbeddedRedis,
    rclient: redis.Redis,
    engine: Any,
    session_factory: Any,
    database_url: str,
    haar: Any,
) -> None:
    ward = SyntheticWard(beds=2, seed=5)
    demo = setup_ward(session_factory, ward)  # both beds occupied, both zoned: 2 observations per frame
    n_frames = 12
    ids = publish_ward(rclient, ward, demo.camera_id, [i * 0.7 for i in range(n_frames)])

    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, str(HERE / "pipeline_worker_proc.py"), redis_server.socket_path, database_url, "1.0"],
        cwd=HERE.parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},
    )
    try:
        deadline = time.monotonic() + 120
        # wait until it has committed a batch and holds the next one in flight (read, not acknowledged)
        while time.monotonic() < deadline and proc.poll() is None:
            if count_observations(session_factory) >= 8 and pending(rclient) > 0:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        in_flight = pending(rclient)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert in_flight > 0
    assert count_observations(session_factory) < 2 * n_frames

    time.sleep(0.6)  # the dead worker's frames become claimable (claim_idle_ms=500)
    restarted = Worker(rclient, engine, haar, FixedClassifier(), fast_config(batch_size=4, claim_idle_ms=500))
    restarted.run(idle_exit_s=1.0)

    with session_factory() as session:
        rows = session.execute(select(Observation.frame_id, func.count()).group_by(Observation.frame_id)).all()
    per_frame = {fid: n for fid, n in rows}
    assert len(per_frame) == n_frames
    assert set(per_frame.values()) == {2}  # each frame exactly once: one row per face, no duplicate
    assert {fid.split(":", 1)[1] for fid in per_frame} == set(ids)
    assert pending(rclient) == 0
    assert count_observations(session_factory) == 2 * n_frames

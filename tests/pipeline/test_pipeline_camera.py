"""Cameras: the synthetic ward, file sources, reader threads, backoff, health, stalls, Redis restarts."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from pipeline_helpers import STREAM, setup_ward, wait_until
from sqlalchemy import select

from areya.camera.health import latest_snapshot, read_health
from areya.camera.reader import Backoff, CameraConfig, CameraReader
from areya.camera.scenario import Scenario
from areya.camera.service import IngestService
from areya.camera.sources import EndOfStream, SourceError, open_source, parse_source
from areya.camera.synthetic import SyntheticWard, parse_synthetic_uri, ward_from_uri
from areya.comms.frames import DROP_UNPUBLISHED, FramePublisher, decode_fields, read_counters
from areya.comms.redis_server import EmbeddedRedis
from areya.db.engine import write_scope
from areya.db.models import Camera
from conftest import CLIP, FER_TEST, requires


def _face_centres(detector: Any, frame: np.ndarray) -> list[tuple[float, float]]:
    h, w = frame.shape[:2]
    return [((b.x + b.w / 2) / w, (b.y + b.h / 2) / h) for b in detector.detect(frame)]


# --------------------------------------------------------------------------- synthetic ward


def test_synthetic_ward_is_deterministic_and_exposes_its_ground_truth() -> None:
    a, b = SyntheticWard(beds=4, seed=7), SyntheticWard(beds=4, seed=7)
    assert np.array_equal(a.render(3.3), b.render(3.3))
    assert not np.array_equal(a.render(3.3), a.render(4.4))  # heads move a little
    assert a.truth_at(1.0) == {0: "happy", 1: "happy", 2: "happy", 3: "happy"}  # built-in face: one class
    zones = [rect for _, rect in a.zones()]
    assert all(0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 for x0, y0, x1, y1 in zones)
    for i, (_, _, x1, _) in enumerate(zones[:-1]):
        assert x1 <= zones[i + 1][0]  # side by side, no overlap
    sc = Scenario.generate(2, ("angry", "sad", "happy"), duration=30, segment_s=5, empty_every=3, seed=1)
    assert sc.emotion_at(0, 11.0) is None  # every third segment: the bed is empty
    assert {sc.emotion_at(0, t) for t in (1, 6)} <= {"angry", "sad", "happy"}
    assert sc.emotion_at(1, 31.0) == sc.emotion_at(1, 1.0)  # scenarios loop
    empty = SyntheticWard(beds=2, scenario=Scenario.constant(["happy", None]))
    assert set(empty.face_boxes_at(0.0)) == {0}


def test_synthetic_uri_options_and_errors() -> None:
    assert parse_synthetic_uri("synthetic:beds=4,seed=7") == {"beds": "4", "seed": "7"}
    assert ward_from_uri("synthetic:beds=2,segment=3").beds == 2
    with pytest.raises(ValueError, match="unknown synthetic camera option"):
        parse_synthetic_uri("synthetic:bedz=4")
    with pytest.raises(ValueError, match="beds must be 1..12"):
        ward_from_uri("synthetic:beds=0")
    with pytest.raises(FileNotFoundError):
        ward_from_uri("synthetic:faces=/nonexistent/faces")


@pytest.mark.parametrize("detector", ["haar", "blazeface"])
@pytest.mark.parametrize("faces", [None, pytest.param(FER_TEST, marks=requires(FER_TEST))], ids=["astronaut", "fer"])
def test_detectors_find_every_synthetic_face_in_its_bed_zone(detector: str, faces: Path | None) -> None:
    from areya.detectors import create_detector

    classes = ("angry", "happy", "neutral", "sad") if faces else ("happy",)
    ward = SyntheticWard(
        beds=3, faces_dir=faces, seed=4, scenario=Scenario.generate(3, classes, duration=40, segment_s=4, seed=4)
    )
    det = create_detector(detector)
    zones = dict(ward.zones())
    for t in (1.0, 9.0, 17.0, 25.0, 33.0):
        centres = _face_centres(det, ward.render(t))
        for bed, (x0, y0, x1, y1) in zones.items():
            inside = [c for c in centres if x0 <= c[0] <= x1 and y0 <= c[1] <= y1]
            assert len(inside) == 1, (t, bed, centres)


def test_synthetic_video_file_as_a_file_camera(tmp_path: Path) -> None:
    ward = SyntheticWard(beds=2, width=320, height=240, face_size=60, seed=1)
    path = tmp_path / "ward.avi"
    assert ward.write_video(path, seconds=2, fps=5) == 10
    src = open_source(f"file://{path}", realtime=False)
    src.open()
    frames = 0
    with pytest.raises(EndOfStream):
        while True:
            src.grab()
            image, _ = src.retrieve()
            assert image.shape == (240, 320, 3)
            frames += 1
    assert frames == 10
    looped = open_source(f"file://{path}?loop=1", realtime=False)
    looped.open()
    for _ in range(25):  # past the end: starts again
        looped.grab()
    assert parse_source(f"file://{path}?loop=1").loop and not parse_source(str(path)).loop


# --------------------------------------------------------------------------- readers and ingest


def _counts(client: redis.Redis, camera_id: int) -> tuple[int, int]:
    published, dropped = read_counters(client, STREAM)
    return published.get(str(camera_id), 0), sum(n for (cam, _), n in dropped.items() if cam == str(camera_id))


def test_reader_samples_a_camera_onto_the_stream_with_a_snapshot(rclient: redis.Redis) -> None:
    cam = CameraConfig(4, "synthetic:beds=2,width=320,height=240,face_size=60", sample_fps=10)
    reader = CameraReader(cam, FramePublisher(rclient, STREAM, 1000), snapshot_ttl_s=30)
    reader.start()
    assert wait_until(lambda: reader.published >= 5)
    reader.stop()
    reader.join(5)
    entries = rclient.xrange(STREAM)
    messages = [decode_fields(f) for _, f in entries]
    assert [m.seq for m in messages] == list(range(len(messages)))
    assert {m.camera_id for m in messages} == {4}
    assert all(b.captured_at > a.captured_at for a, b in zip(messages, messages[1:], strict=False))
    assert messages[0].decode_image().shape == (240, 320, 3)
    snap = latest_snapshot(rclient, 4)
    assert snap is not None and snap[:2] == b"\xff\xd8" and 0 < rclient.ttl("areya:camera:4:snapshot") <= 30
    assert reader.health.snapshot()["frames"] == len(messages)


def test_unreachable_camera_backs_off_and_reads_offline(rclient: redis.Redis) -> None:
    cam = CameraConfig(9, "rtsp://nurse:s3cret@127.0.0.1:9/ward", sample_fps=2)
    service = IngestService(
        rclient,
        stream=STREAM,
        maxlen=100,
        cameras=[cam],
        health_interval_s=0.1,
        backoff_factory=lambda: Backoff(0.05, 0.2, jitter=0),
    )
    service.start()
    try:
        assert wait_until(lambda: read_health(rclient, 9).get("reconnects", 0) >= 4)
        health = read_health(rclient, 9)
    finally:
        service.stop()
    assert health["status"] == "offline"
    assert health["backoff_s"] == pytest.approx(0.2)  # capped
    assert "cannot open network source" in health["last_error"]
    assert "s3cret" not in health["last_error"]  # credentials never leak into health
    assert health["last_frame_at"] is None
    assert _counts(rclient, 9) == (0, 0)


class StallingSource:
    """Delivers one frame, then hangs in grab() (a camera whose stream froze)."""

    def __init__(self, release: threading.Event) -> None:
        self.name = "stalling"
        self.release = release
        self.grabs = 0

    def open(self) -> None:
        pass

    def grab(self) -> None:
        self.grabs += 1
        if self.grabs > 1:
            self.release.wait()
            raise SourceError("stream froze")

    def retrieve(self) -> tuple[np.ndarray, float]:
        return np.zeros((48, 64, 3), np.uint8), time.time()

    def clock(self) -> float:
        return time.monotonic()

    def close(self) -> None:
        pass


def test_a_stalled_camera_does_not_stall_its_neighbours(rclient: redis.Redis) -> None:
    release = threading.Event()
    stalled = CameraConfig(1, "rtsp://stalled.example/stream", sample_fps=10)
    healthy = CameraConfig(2, "synthetic:beds=1,width=320,height=240,face_size=60", sample_fps=10)

    def factory(cam: CameraConfig) -> Any:
        return StallingSource(release) if cam.camera_id == 1 else open_source(cam.source_url, fps=cam.sample_fps)

    service = IngestService(
        rclient,
        stream=STREAM,
        maxlen=1000,
        cameras=[stalled, healthy],
        health_interval_s=0.1,
        source_factory=factory,
        stall_min_s=0.5,
    )
    service.start()
    try:
        assert wait_until(lambda: _counts(rclient, 2)[0] >= 10 and read_health(rclient, 1).get("status") == "offline")
        health = read_health(rclient, 1)
        assert "stalled: no frame for" in health["last_error"]
        assert read_health(rclient, 2)["status"] == "online"
        assert _counts(rclient, 1)[0] == 1
    finally:
        release.set()
        service.stop()


def test_redis_restart_while_ingesting_loses_nothing_silently(redis_server: EmbeddedRedis) -> None:
    client = redis_server.client(socket_timeout=2, socket_connect_timeout=1)
    cam = CameraConfig(3, "synthetic:beds=1,width=320,height=240,face_size=60", sample_fps=10)
    service = IngestService(client, stream=STREAM, maxlen=10_000, cameras=[cam], health_interval_s=0.2)
    service.start()
    try:
        assert wait_until(lambda: _counts(client, 3)[0] >= 5)
        redis_server.stop()
        reader = service.readers[3]
        assert wait_until(lambda: reader.unpublished >= 3)  # frames sampled while Redis is away
        published_before = reader.published  # frozen while Redis is away
        redis_server.start()
        assert wait_until(lambda: _counts(client, 3)[0] >= 5)
        assert reader.is_alive()
    finally:
        service.stop()
    published, dropped = _counts(client, 3)
    _, reasons = read_counters(client, STREAM)
    assert reasons.get(("3", DROP_UNPUBLISHED), 0) >= 3
    # the server keeps nothing on disk: its frames and counters went with it, and it counts from the restart on
    assert published == reader.published - published_before
    assert published + dropped == reader.seq - published_before  # every frame since: on the stream or dropped
    assert client.xlen(STREAM) == published


def test_ingest_reads_enabled_cameras_from_the_db_and_writes_their_health(
    rclient: redis.Redis, session_factory: Any
) -> None:
    ward = SyntheticWard(beds=1)
    demo = setup_ward(session_factory, ward)
    with session_factory() as session, session.begin():
        camera = session.get(Camera, demo.camera_id)
        camera.source_url = "synthetic:beds=1,width=320,height=240,face_size=60"
        camera.sample_fps = 10
    service = IngestService(
        rclient,
        stream=STREAM,
        maxlen=1000,
        session_factory=session_factory,
        health_interval_s=0.1,
        db_health_interval_s=0.2,
        reload_interval_s=0.2,
    )
    service.start()
    try:
        assert wait_until(lambda: _counts(rclient, demo.camera_id)[0] >= 3)
        reader = service.readers[demo.camera_id]
        with write_scope(session_factory) as session:  # the service writes health meanwhile: BEGIN IMMEDIATE
            session.get(Camera, demo.camera_id).enabled = False
        assert wait_until(lambda: not service.readers)  # a disabled camera's reader is stopped
        reader.join(5)
        assert not reader.is_alive()
    finally:
        service.stop()
    with session_factory() as session:
        camera = session.scalars(select(Camera).where(Camera.id == demo.camera_id)).one()
        assert camera.last_frame_at is not None
        assert camera.health_status == "offline" and "camera disabled" in camera.last_error


def _short_clip(path: Path, seconds: float = 0.6) -> Path:
    SyntheticWard(beds=1, width=160, height=120, face_size=40).write_video(path, seconds, fps=5)
    return path


def test_ingest_keeps_running_and_reloading_cameras_after_its_files_end(
    rclient: redis.Redis, session_factory: Any, tmp_path: Path
) -> None:
    from areya import admin

    demo = setup_ward(session_factory, SyntheticWard(beds=1))
    with session_factory() as session, session.begin():
        camera = session.get(Camera, demo.camera_id)
        camera.source_url = f"file://{_short_clip(tmp_path / 'rec.avi')}"
        camera.sample_fps = 10
        ward = camera.ward.name
    service = IngestService(
        rclient,
        stream=STREAM,
        maxlen=1000,
        session_factory=session_factory,
        health_interval_s=0.05,
        reload_interval_s=0.2,
    )
    service.start()  # a service: no until_ended
    try:
        assert wait_until(service.all_files_ended, timeout=30)
        time.sleep(0.5)
        assert service._thread is not None and service._thread.is_alive()  # not exited: the files ended
        with write_scope(session_factory) as session:
            admin.add_camera(session, ward, "live", "synthetic:beds=1,width=160,height=120,face_size=40", 5.0)
        assert wait_until(lambda: len(service.readers) == 2, timeout=30)  # camera changes still picked up
    finally:
        service.stop()


def test_until_ended_a_missing_video_file_ends_in_error_and_is_reported(
    rclient: redis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = CameraConfig(1, f"file://{_short_clip(tmp_path / 'good.avi')}", sample_fps=10, name="good")
    gone = CameraConfig(2, f"file://{tmp_path / 'deleted.avi'}", sample_fps=10, name="gone")
    fast = {"health_interval_s": 0.05, "backoff_factory": lambda: Backoff(0.05, 0.1, jitter=0)}

    service = IngestService(rclient, stream=STREAM, maxlen=1000, cameras=[good, gone], **fast)
    started = time.monotonic()
    with caplog.at_level("ERROR", logger="areya.camera"):
        service.run(duration=30, until_ended=True)
    assert time.monotonic() - started < 25  # exited because every file ended, not at the deadline
    assert service.all_files_ended()
    assert service.files_ended_in_error() == {2: f"video file not found: {tmp_path / 'deleted.avi'}"}
    assert service.readers[1].end_error is None and service.readers[1].published > 0
    assert service.readers[2].health.reconnects == 0  # given up at once, not retried
    assert read_health(rclient, 1)["status"] == "ended"
    health = read_health(rclient, 2)
    assert health["status"] == "error"
    assert health["last_error"].startswith(f"video file not found: {tmp_path / 'deleted.avi'} (video file given up")
    assert any(r.levelname == "ERROR" and "gone: video file not found" in r.getMessage() for r in caplog.records)

    service = IngestService(rclient, stream=STREAM, maxlen=1000, cameras=[gone], **fast)
    service.start()  # without until_ended the file is retried (it may come back), as a live camera is
    try:
        assert wait_until(lambda: service.readers and service.readers[2].health.reconnects >= 3, timeout=30)
        assert not service.all_files_ended() and not service.files_ended_in_error()
    finally:
        service.stop()


@requires(CLIP)
def test_real_clip_as_a_file_camera_finds_faces_in_most_frames(rclient: redis.Redis) -> None:
    from areya.config import load_settings
    from areya.detectors import create_detector

    cam = CameraConfig(5, f"file://{CLIP}", sample_fps=5)
    reader = CameraReader(
        cam, FramePublisher(rclient, STREAM, 1000), source_factory=lambda c: open_source(c.source_url, realtime=False)
    )
    reader.run()  # until the end of the file
    assert reader.health.snapshot()["last_error"].startswith("end of video file")
    messages = [decode_fields(f) for _, f in rclient.xrange(STREAM)]
    assert len(messages) >= 20  # 5.6 s sampled at 5 frames/s
    detector = create_detector(load_settings(env={}).detector)
    with_face = sum(1 for m in messages if detector.detect(m.decode_image()))
    print(f"faces in {with_face}/{len(messages)} frames of {CLIP.name}")
    assert with_face >= 0.8 * len(messages)

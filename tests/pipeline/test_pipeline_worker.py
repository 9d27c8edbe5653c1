"""The worker end to end on a real embedded Redis and a real migrated database (SQLite; PostgreSQL in CI)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest
import redis
from pipeline_helpers import (
    DEAD,
    STREAM,
    count_observations,
    fast_config,
    pending,
    publish_ward,
    setup_ward,
)
from pipeline_standins import FixedClassifier
from sqlalchemy import event, select

from areya.camera.scenario import Scenario
from areya.camera.synthetic import SyntheticWard
from areya.comms.frames import FramePublisher, make_frame
from areya.db.models import LABELS4, Observation
from areya.emotion.schemes import FER_TO_AREYA4
from areya.metrics import render_metrics
from areya.worker import Worker, frame_id
from areya.worker.consumer import read_dead_letters
from conftest import FER_TEST, requires


def test_synthetic_ward_to_observations_for_exactly_the_right_patients(
    rclient: redis.Redis, engine: Any, session_factory: Any, haar: Any, untrained_classifier: Any
) -> None:
    ward = SyntheticWard(beds=3, seed=3, segment_s=2, duration=12)
    # bed 1: zone + patient -> observations; bed 2: zone, empty bed; bed 3: patient but no zone
    demo = setup_ward(session_factory, ward, zone_beds=[0, 1], occupied=[True, False, True])
    times = [0.0, 1.5, 3.0, 4.5, 6.0, 7.5]
    ids = publish_ward(rclient, ward, demo.camera_id, times)
    worker = Worker(rclient, engine, haar, untrained_classifier, fast_config())
    worker.run(idle_exit_s=0.3)

    with session_factory() as session:
        rows = session.scalars(select(Observation)).all()
    assert len(rows) == len(times)
    assert {r.patient_id for r in rows} == {demo.patient_ids[0]}
    assert {r.bed_id for r in rows} == {demo.bed_ids[0]}
    assert {r.camera_id for r in rows} == {demo.camera_id}
    assert sorted(r.frame_id for r in rows) == sorted(frame_id(demo.camera_id, i) for i in ids)
    for r in rows:
        assert r.label4 in LABELS4 and r.model_version == untrained_classifier.model_version
        assert sum(r.probs4) == pytest.approx(1.0, abs=1e-4) and len(r.probs7) == 7
        x0, y0, x1, y1 = ward.zones()[0][1]
        assert x0 <= r.box_x + r.box_w / 2 <= x1 and y0 <= r.box_y + r.box_h / 2 <= y1
    m = worker.metrics
    assert m.total("areya_faces_unassigned_total", camera=demo.camera_id, reason="empty_bed") == len(times)
    assert m.total("areya_faces_unassigned_total", camera=demo.camera_id, reason="outside_zones") == len(times)
    assert m.total("areya_frames_processed_total", camera=demo.camera_id) == len(times)
    assert pending(rclient) == 0
    text = render_metrics(rclient)
    assert f'areya_faces_assigned_total{{camera="{demo.camera_id}"}} {len(times)}' in text
    assert "areya_frame_latency_seconds_count" in text


def test_redelivered_frames_create_no_duplicates(
    rclient: redis.Redis, engine: Any, session_factory: Any, haar: Any
) -> None:
    ward = SyntheticWard(beds=2, seed=1)
    demo = setup_ward(session_factory, ward)
    publish_ward(rclient, ward, demo.camera_id, [0.0, 1.0, 2.0])

    class CrashBeforeAck(Worker):  # commits, then "dies" before acknowledging
        def _ack(self, ids: list[str]) -> int:
            return 0

    CrashBeforeAck(rclient, engine, haar, FixedClassifier(), fast_config(batch_size=8)).process_once()
    assert count_observations(session_factory) == 6
    assert pending(rclient) == 3
    time.sleep(0.25)
    survivor = Worker(rclient, engine, haar, FixedClassifier(), fast_config(claim_idle_ms=200, batch_size=8))
    result = survivor.process_once()
    assert result.frames == 3 and result.written == 0 and result.acked == 3
    assert survivor.metrics.total("areya_observations_duplicate_total") == 6
    assert count_observations(session_factory) == 6
    assert pending(rclient) == 0


def test_corrupt_jpeg_and_garbage_fields_go_to_dead_letter_with_reason(
    rclient: redis.Redis, engine: Any, session_factory: Any, haar: Any
) -> None:
    ward = SyntheticWard(beds=1, seed=0)
    demo = setup_ward(session_factory, ward)
    good = make_frame(demo.camera_id, 0, ward.render(0.0))
    corrupt = {**good.fields(), b"jpeg": b"\xff\xd8\xff\xe0" + bytes(200)}
    rclient.xadd(STREAM, corrupt)
    rclient.xadd(STREAM, {b"cam": b"1", b"seq": b"x", b"hello": b"world"})
    FramePublisher(rclient, STREAM, maxlen=100).publish(good)
    worker = Worker(rclient, engine, haar, FixedClassifier(), fast_config())
    worker.run(idle_exit_s=0.3)

    dead = read_dead_letters(rclient, DEAD)
    reasons = sorted(d["reason"] for d in dead)
    assert reasons == ["corrupt jpeg: cannot be decoded", "field 'seq' is not an integer: 'x'"]
    assert all("jpeg" not in d for d in dead)  # frames are not stored, even dead ones
    assert {d.get("jpeg_bytes") for d in dead} == {"204", None}
    assert count_observations(session_factory) == 1
    assert pending(rclient) == 0
    assert worker.metrics.total("areya_frames_dead_lettered_total", reason="bad_frame") == 2
    assert "areya_dead_letter_length 2" in render_metrics(rclient)


def test_frame_that_keeps_failing_is_dead_lettered_after_max_deliveries(
    rclient: redis.Redis, engine: Any, session_factory: Any, haar: Any
) -> None:
    ward = SyntheticWard(beds=1, seed=0)
    demo = setup_ward(session_factory, ward)
    publish_ward(rclient, ward, demo.camera_id, [0.0])
    worker = Worker(
        rclient,
        engine,
        haar,
        FixedClassifier(fail=True),
        fast_config(claim_idle_ms=100, max_deliveries=2, retry_initial_s=0.05, retry_max_s=0.1),
    )
    thread = threading.Thread(target=worker.run, kwargs={"idle_exit_s": 2.0})
    thread.start()
    deadline = time.monotonic() + 30
    while not rclient.exists(DEAD) and time.monotonic() < deadline:
        time.sleep(0.1)
    worker.stop()
    thread.join(10)
    [dead] = read_dead_letters(rclient, DEAD)
    assert dead["reason"].startswith("delivered 3 times (max 2)")
    assert worker.classifier.calls == 2
    assert count_observations(session_factory) == 0
    assert pending(rclient) == 0


def test_database_briefly_unavailable_no_crash_no_loss_no_early_ack(
    rclient: redis.Redis, engine: Any, session_factory: Any, haar: Any
) -> None:
    ward = SyntheticWard(beds=2, seed=2)
    demo = setup_ward(session_factory, ward)
    publish_ward(rclient, ward, demo.camera_id, [0.0, 1.0, 2.0, 3.0])

    down = threading.Event()
    down.set()

    @event.listens_for(engine, "do_connect")
    def refuse(*_: Any) -> None:  # the DB server is away: every new connection fails
        if down.is_set():
            raise engine.dialect.loaded_dbapi.OperationalError("connection refused (test: database down)")

    engine.dispose()  # drop pooled connections: the next use must connect
    worker = Worker(rclient, engine, haar, FixedClassifier(), fast_config(batch_size=8))
    thread = threading.Thread(target=worker.run, kwargs={"idle_exit_s": 0.5})
    thread.start()
    deadline = time.monotonic() + 20
    while worker.metrics.total("areya_worker_errors_total", stage="db") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.metrics.total("areya_worker_errors_total", stage="db") >= 3
    assert pending(rclient) == 4  # read, not acknowledged while the DB is down
    down.clear()
    thread.join(30)
    assert not thread.is_alive()
    assert count_observations(session_factory) == 8
    assert pending(rclient) == 0


@requires(FER_TEST)
def test_emotions_match_the_scenario_at_the_shipped_models_accuracy(
    rclient: redis.Redis, engine: Any, session_factory: Any, haar: Any
) -> None:
    from areya.emotion.inference import EmotionClassifier, models_dir

    try:
        classifier = EmotionClassifier.load()
    except (FileNotFoundError, OSError) as exc:
        pytest.skip(f"shipped emotion model not available yet: {exc}")
    beds, frames = 4, 12
    classes = tuple(FER_TO_AREYA4)  # angry, happy, neutral, sad
    scenario = Scenario.generate(beds, classes, duration=frames, segment_s=1.0, seed=11)
    ward = SyntheticWard(beds=beds, faces_dir=FER_TEST, scenario=scenario, seed=11)
    demo = setup_ward(session_factory, ward)
    ids = publish_ward(rclient, ward, demo.camera_id, [i + 0.5 for i in range(frames)])
    Worker(rclient, engine, haar, classifier, fast_config(batch_size=16)).run(idle_exit_s=0.3)

    bed_index = {bed_id: i for i, bed_id in enumerate(demo.bed_ids)}
    with session_factory() as session:
        rows = session.scalars(select(Observation)).all()
    assert len(rows) >= 0.9 * beds * frames  # the composition keeps faces detectable
    hits = Counter()
    for r in rows:
        t = ids[r.frame_id.split(":", 1)[1]]
        truth = FER_TO_AREYA4[ward.truth_at(t)[bed_index[r.bed_id]]]
        hits[r.label4 == truth] += 1
    accuracy = hits[True] / len(rows)
    print(f"4-class accuracy on {len(rows)} synthetic-ward faces: {accuracy:.2f}")
    # Through the worker (Haar box, margin crop, resize) the faces are framed unlike FER's aligned 48x48 crops, and
    # the shipped model loses accuracy on them: v3 0.54 on these 48 faces against 0.71 on PublicTest, v4 and v5 0.60
    # against 0.73 (Haar gives no eyes to level; bench/bench_ward_crops.py measures the default BlazeFace path).
    # What must hold: far above chance (0.25); the card's figure is printed beside it for the record.
    card = json.loads((models_dir() / "areya-fer" / "card.json").read_text())
    served = "tta" if card.get("served_tta", True) else "single"
    print(f"the card's PublicTest 4-class accuracy: {card['evaluations'][f'4class_{served}']['accuracy']:.2f}")
    assert accuracy >= 0.45, accuracy


class KnownFaces:
    """A detector stand-in that finds each frame's faces where the synthetic ward drew them (frames in order), with
    the score it gives each bed's face."""

    zone_mode = "frame"

    def __init__(self, boxes: list[dict[int, tuple[int, int, int, int]]], scores: dict[int, float]) -> None:
        self.boxes = list(boxes)
        self.scores = scores

    def detect(self, frame_bgr: np.ndarray) -> list[Any]:
        from areya.detectors import FaceBox

        return [FaceBox(*box, self.scores[bed]) for bed, box in self.boxes.pop(0).items()]


def test_a_poor_face_is_stored_with_its_low_quality_and_the_rule_sets_it_aside(
    rclient: redis.Redis, engine: Any, session_factory: Any
) -> None:
    import cv2

    from areya.alerts.window import window_stats
    from areya.config import Settings

    ward = SyntheticWard(beds=2, seed=4, segment_s=20, duration=40)
    demo = setup_ward(session_factory, ward)
    pub = FramePublisher(rclient, STREAM, maxlen=10_000)
    times = [0.5 * i for i in range(8)]
    boxes = []
    for seq, t in enumerate(times):
        frame = ward.render(t)
        found = ward.face_boxes_at(t)
        x, y, w, h = found[1]  # bed 2's patient in the dark, moving: the face dim, coarse and smeared, found weakly
        face = frame[y : y + h, x : x + w]
        coarse = cv2.resize(cv2.resize(face, (w // 6, h // 6), interpolation=cv2.INTER_AREA), (w, h))
        frame[y : y + h, x : x + w] = np.clip(cv2.GaussianBlur(coarse, (0, 0), 3.0) * 0.12 + 6, 0, 255)
        pub.publish(make_frame(demo.camera_id, seq, frame, captured_at=time.time()))
        boxes.append(found)
    detector = KnownFaces(boxes, {0: 0.92, 1: 0.5})
    Worker(rclient, engine, detector, FixedClassifier(), fast_config()).run(idle_exit_s=0.3)

    threshold = Settings().min_face_quality
    with session_factory() as session:
        rows = session.scalars(select(Observation)).all()
        stats = window_stats(session, until=max(r.captured_at for r in rows), window_s=60, min_quality=threshold)
    by_patient: dict[int, list[float]] = {}
    for r in rows:
        assert r.quality is not None and 0.0 <= r.quality <= 1.0
        by_patient.setdefault(r.patient_id, []).append(r.quality)
    clear, poor = by_patient[demo.patient_ids[0]], by_patient[demo.patient_ids[1]]
    assert len(clear) == len(poor) == len(times)
    assert min(clear) >= threshold > max(poor)  # the same answer: the face and its detection differ
    assert (stats[demo.patient_ids[1]].n, stats[demo.patient_ids[1]].n_set_aside) == (0, len(times))
    assert (stats[demo.patient_ids[0]].n, stats[demo.patient_ids[0]].n_set_aside) == (len(times), 0)


def test_fixed_classifier_is_shaped_like_the_real_one() -> None:
    [r] = FixedClassifier().classify([np.zeros((8, 8), np.uint8)])
    assert r.label4 == "relaxed" and r.label7 == "neutral"


def test_consumers_share_the_group_and_old_idle_names_are_forgotten(rclient: redis.Redis) -> None:
    from areya.worker.consumer import StreamConsumer

    pub = FramePublisher(rclient, STREAM, maxlen=100)
    for i in range(6):
        pub.publish(make_frame(1, i, np.zeros((8, 8, 3), np.uint8)))
    a = StreamConsumer(rclient, STREAM, "areya-workers", consumer="a", forget_idle_ms=150)
    b = StreamConsumer(rclient, STREAM, "areya-workers", consumer="b", forget_idle_ms=150)
    got_a = a.read_batch(3, 10, block_ms=10)
    got_b = b.read_batch(3, 10, block_ms=10)
    assert len(got_a) == 3 and len(got_b) == 3
    assert not {d.entry_id for d in got_a} & {d.entry_id for d in got_b}  # each frame to one worker
    a.ack([d.entry_id for d in got_a])
    b.ack([d.entry_id for d in got_b])
    time.sleep(0.3)
    a.claim_idle(10)  # nothing to claim: a tidies the group
    names = {c["name"] for c in rclient.xinfo_consumers(STREAM, "areya-workers")}
    assert names == {b"a"}

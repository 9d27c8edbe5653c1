"""End to end: synthetic ward camera -> Redis stream -> worker (real Haar face detection, bed zones, patients)
-> observations -> scheduler tick -> exactly one alert, for the sad patient, at the first tick with enough
evidence.  The emotion classifier is a deterministic stand-in reading a colour tint that the test puts on
each class's face (the real classifier's accuracy is the emotion package's business)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from areya.alerts.scheduler import AlertScheduler
from areya.config import Settings
from areya.db.engine import session_scope
from areya.db.models import Alert, Observation
from areya.notify.dispatch import Notifier

TINTS = {"sad": (1.35, 0.9, 0.75), "happy": (1.0, 1.0, 1.0), "neutral": (0.8, 1.25, 0.85)}  # BGR gains
STREAM = "areya:frames"


class TintClassifier:
    """Blue-dominant crop -> sad, red -> happy, green -> relaxed; confident (0.85)."""

    model_version = "tint-standin"

    def classify(self, crops: Sequence[np.ndarray]) -> list[Any]:
        from areya.emotion.inference import EmotionResult

        out = []
        for crop in crops:
            b, g, r = crop.reshape(-1, 3).mean(axis=0) if crop.ndim == 3 else (0.0, 0.0, 1.0)
            label = ("sad", "relaxed", "happy")[int(np.argmax([b, g, r]))]
            p4 = np.full(4, 0.05, np.float32)
            p4[("angry", "happy", "relaxed", "sad").index(label)] = 0.85
            p7 = np.full(7, 0.1, np.float32)
            out.append(EmotionResult(p4, p7 / p7.sum()))
        return out


def tinted_faces(folder: Path) -> Path:
    import cv2
    from skimage import data

    from areya.camera.synthetic import ASTRONAUT_FACE_BOX

    x, y, w, h = ASTRONAUT_FACE_BOX
    face = cv2.cvtColor(np.ascontiguousarray(data.astronaut()[y : y + h, x : x + w]), cv2.COLOR_RGB2BGR)
    for name, gain in TINTS.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        tinted = np.clip(face.astype(np.float32) * np.array(gain, np.float32), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / name / "face.png"), tinted)
    return folder


def test_one_sad_patient_among_calm_ones_gets_exactly_one_alert(
    tmp_path: Path,
    alert_settings: Settings,
    engine: Engine,
    session_factory: Callable[[], Session],
    rclient: redis.Redis,
) -> None:
    from areya.camera.scenario import Scenario
    from areya.camera.synthetic import SyntheticWard
    from areya.comms.frames import FramePublisher, make_frame
    from areya.demo import create_demo_ward
    from areya.detectors import create_detector
    from areya.worker import Worker, WorkerConfig

    ward = SyntheticWard(
        beds=3,
        width=960,
        height=540,
        faces_dir=tinted_faces(tmp_path / "faces"),
        scenario=Scenario.constant(["sad", "happy", "neutral"]),
        check_detectors=("haar",),
    )
    with session_scope(session_factory) as s:
        demo = create_demo_ward(s, source_url="synthetic:beds=3", beds=3, zones=ward.zones(), users=False)
    publisher = FramePublisher(rclient, STREAM, maxlen=10_000)
    worker = Worker(
        rclient,
        engine,
        create_detector("haar"),
        TintClassifier(),
        WorkerConfig(stream=STREAM, batch_size=8, batch_ms=50, block_ms=100),
    )
    notifier = Notifier(alert_settings, redis_client=rclient, session_factory=session_factory, background=False)
    scheduler = AlertScheduler(alert_settings, engine=engine, redis_client=rclient, notifier=notifier, owner="e2e")
    frames = [ward.render(0.5 * i) for i in range(4)]  # a few distinct sways, re-used (rendering is slow)
    try:

        def feed(count: int, start: int) -> None:
            for i in range(count):
                publisher.publish(
                    make_frame(demo.camera_id, start + i, frames[i % len(frames)], captured_at=time.time())
                )
            worker.run(idle_exit_s=0.3)

        feed(alert_settings.negative_min_obs - 1, 0)  # one observation short of the minimum evidence
        assert scheduler.tick().opened == 0
        feed(1, 100)  # the 20th: the rule holds now
        report = scheduler.tick()
        assert report.opened == 1
        feed(10, 200)
        assert scheduler.tick().opened == 0  # no duplicate
    finally:
        scheduler.stop()

    with session_factory() as s:
        per_patient = {
            pid: s.scalars(select(Observation.label4).where(Observation.patient_id == pid)).all()
            for pid in demo.patient_ids.values()
        }
        (alert,) = s.scalars(select(Alert).where(Alert.kind == "negative_emotion")).all()
    sad_patient = demo.patient_ids[0]
    assert set(per_patient[sad_patient]) == {"sad"} and len(per_patient[sad_patient]) == 30
    assert set(per_patient[demo.patient_ids[1]]) == {"happy"} and set(per_patient[demo.patient_ids[2]]) == {"relaxed"}
    assert (alert.patient_id, alert.ward_id, alert.state) == (sad_patient, demo.ward_id, "firing")
    assert alert.evidence["counts"]["sad"] == 20 and alert.evidence["share"] == pytest.approx(0.9)

"""Per-camera detector options in the worker (real embedded Redis, real migrated database): a camera mounted on its
side (``rotations=90``) gets a detector made for the global options with its own laid over them and finds the
face lying on its side; a camera without options uses the global detector, which does not. Options the backend
does not take are logged once, counted and not applied; a changed option is picked up with the zones."""

from __future__ import annotations

import logging
import time
from typing import Any

import cv2
import numpy as np
import pytest
import redis
from pipeline_helpers import STREAM, pending
from pipeline_standins import FixedClassifier
from sqlalchemy import select

from areya import admin
from areya.comms.frames import FramePublisher, make_frame
from areya.config import Settings
from areya.db.engine import session_scope
from areya.db.models import Observation
from areya.detectors.cameras import options_key
from areya.worker import build_worker


def side_face_frame() -> np.ndarray:
    """640x480, the astronaut's face (~60 px) turned a quarter counter-clockwise: a camera mounted on its side."""
    data = pytest.importorskip("skimage.data")
    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]
    lying = cv2.resize(
        cv2.rotate(head, cv2.ROTATE_90_COUNTERCLOCKWISE), None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA
    )
    frame = np.full((480, 640, 3), (200, 205, 210), np.uint8)
    frame[150 : 150 + lying.shape[0], 300 : 300 + lying.shape[1]] = lying
    return frame


def ward_with_cameras(session_factory: Any, options: dict[str, str | None]) -> dict[str, tuple[int, int]]:
    """Ward ICU: per camera name, a bed (zone: the whole image) with a patient; -> name: (camera id, patient id)."""
    out = {}
    with session_scope(session_factory) as s:
        admin.add_ward(s, "ICU")
        for i, (name, text) in enumerate(options.items(), start=1):
            admin.add_bed(s, "ICU", str(i))
            cam = admin.add_camera(
                s, "ICU", name, f"synthetic:beds=1,seed={i}", detector_options=text, detector="blazeface"
            )
            admin.set_zone(s, f"ICU/{name}", f"ICU/{i}", 0.0, 0.0, 1.0, 1.0)
            patient = admin.admit_patient(s, f"MRN{i}", f"Patient {i}", f"ICU/{i}")
            out[name] = (cam.id, patient.id)
    return out


def publish(client: redis.Redis, camera_id: int, frame: np.ndarray, n: int = 1) -> None:
    pub = FramePublisher(client, STREAM, maxlen=1000)
    for seq in range(n):
        pub.publish(make_frame(camera_id, seq, frame, captured_at=time.time()))


def observations(session_factory: Any) -> list[tuple[int, int]]:
    with session_factory() as s:
        return [tuple(r) for r in s.execute(select(Observation.camera_id, Observation.patient_id))]


def test_camera_on_its_side_gets_its_own_detector_and_finds_the_face(
    rclient: redis.Redis, db_settings: Settings, engine: Any, session_factory: Any
) -> None:
    cams = ward_with_cameras(session_factory, {"side": "rotations=90", "plain": None})
    (side, side_patient), (plain, _) = cams["side"], cams["plain"]
    settings = db_settings.replace(detector_options="zone_mode=frame,min_score=0.5")
    worker = build_worker(settings, client=rclient, engine=engine, classifier=FixedClassifier())
    frame = side_face_frame()
    publish(rclient, side, frame)
    publish(rclient, plain, frame)
    worker.run(idle_exit_s=0.3)

    assert observations(session_factory) == [(side, side_patient)]  # found only by the side camera's detector
    m = worker.metrics
    assert m.total("areya_faces_detected_total", camera=side) == 1
    assert m.total("areya_faces_detected_total", camera=plain) == 0
    assert m.total("areya_frames_processed_total", camera=plain) == 1
    assert pending(rclient) == 0
    # the cache: the global detector, and one for the global options with the camera's laid over them
    global_opts = {"zone_mode": "frame", "min_score": 0.5}
    assert set(worker.detectors.detectors) == {
        options_key(global_opts),
        options_key({**global_opts, "rotations": (90,)}),
    }
    assert worker._detector_for(plain) is worker.detector
    turned = worker._detector_for(side)
    assert turned is not worker.detector and turned.rotations == (90,)
    assert (turned.min_score, turned.zone_mode) == (0.5, "frame")  # the global options still apply


def test_options_the_backend_refuses_are_logged_counted_and_not_applied_then_fixed(
    rclient: redis.Redis, db_settings: Settings, engine: Any, session_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cams = ward_with_cameras(session_factory, {"cam": "tiles=2"})  # saved for BlazeFace; the worker runs Haar
    camera_id = cams["cam"][0]
    settings = db_settings.replace(detector="haar", detector_options="zone_mode=frame")
    worker = build_worker(settings, client=rclient, engine=engine, classifier=FixedClassifier())
    worker.resolver.zone_ttl_s = 0.0  # re-read zones and options every time
    frame = np.full((240, 320, 3), 128, np.uint8)
    publish(rclient, camera_id, frame, n=3)
    with caplog.at_level(logging.ERROR, logger="areya.worker.worker"):
        worker.run(idle_exit_s=0.3)
    errors = [r.getMessage() for r in caplog.records if "detector options" in r.getMessage()]
    assert len(errors) == 1, errors  # once per camera and options, not per frame
    assert "'tiles=2' are not applied (unknown option 'tiles' for detector 'haar'" in errors[0]
    assert worker.metrics.total("areya_worker_errors_total", stage="camera_options") == 3
    assert worker.metrics.total("areya_frames_processed_total", camera=camera_id) == 3  # with the global one
    assert worker._detector_for(camera_id) is worker.detector

    with session_scope(session_factory) as s:
        admin.update_camera(s, str(camera_id), detector_options="min_face_px=16", detector="haar")
    fixed = worker._detector_for(camera_id)  # read again with the zones
    assert fixed is not worker.detector and fixed.min_face_px == 16
    assert len(worker.detectors.detectors) == 2

"""The night-ward end-to-end bench's own parts, on generated faces: which beds must alert, the videos it plays
through the services, and how it scores what the services wrote (false, early and missed alerts; readings set
aside).  The run through the services is ``tests/test_bench_quick.py``'s (``--quick``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic_faces import synthetic_face

from bench.bench_night_ward_e2e import (
    CONDITIONS,
    BedResult,
    BedTruth,
    bed_truths,
    published_frames,
    render_camera,
    score_beds,
    service_env,
    summary,
)

LIT, NIGHT = CONDITIONS


def test_every_camera_has_two_beds_that_must_alert_and_four_that_must_not() -> None:
    for seed in range(5):
        beds = bed_truths("cam", "lit", np.random.default_rng(seed), onset=60)
        assert sorted(b.role for b in beds) == ["angry", "happy", "neutral", "neutral", "neutral", "sad"]
        assert [b.bed for b in beds] == list(range(6))
        for b in beds:
            assert b.must_alert == (b.role in ("sad", "angry"))
            assert b.emotion_at(0) == ("neutral" if b.must_alert else b.role)  # calm before the onset
            assert b.emotion_at(60) == b.role and b.emotion_at(1000) == b.role
    first = bed_truths("cam", "lit", np.random.default_rng(1), onset=60)
    assert first == bed_truths("cam", "lit", np.random.default_rng(1), onset=60)  # seeded


@pytest.fixture(scope="module")
def pools() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(3)
    return {
        name: [synthetic_face(i, rng) for _ in range(3)] for i, name in enumerate(("angry", "happy", "neutral", "sad"))
    }


def test_videos_hold_each_face_and_the_night_is_dim(tmp_path: Path, pools: dict[str, list[np.ndarray]]) -> None:
    means = {}
    for cond in (LIT, NIGHT):
        beds = bed_truths(cond.name, cond.name, np.random.default_rng(0), onset=4)
        video = tmp_path / f"{cond.name}.avi"
        zones = render_camera(video, beds, pools, cond, np.random.default_rng(0), fps=2, duration=6, hold_s=3)
        assert len(zones) == 6 and all(0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 for x0, y0, x1, y1 in zones)
        cap = cv2.VideoCapture(str(video))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame.astype(np.float32))
        cap.release()
        assert len(frames) == 12 and frames[0].shape == (720, 1280, 3)
        assert cap.get(cv2.CAP_PROP_FPS) in (0.0, 2.0)
        means[cond.name] = float(np.mean([f.mean() for f in frames]))
        if cond is LIT:  # within a hold the frames differ by sway and noise; a new hold shows new faces
            within = np.abs(frames[0] - frames[1]).mean()
            across = np.abs(frames[5] - frames[6]).mean()
            assert within < across
    assert 0.25 < means["night"] / means["lit"] < 0.7  # 35-60 % of the light, flicker and noise


def _truth(role: str, onset: float = 0.0, condition: str = "night") -> BedTruth:
    return BedTruth("cam", condition, 0, role, onset)


def test_scoring_counts_false_early_and_missed_alerts_and_readings_set_aside() -> None:
    truths = [_truth("neutral"), _truth("happy"), _truth("sad", 60), _truth("angry", 60), _truth("sad", 60)]
    results = [BedResult(t, frames=100, published=100) for t in truths]
    patient_of = {10 + i: i for i in range(len(truths))}
    start = 1_000.0
    observations = [
        (10, start + 0.0, 0.3, 0.9),
        (10, start + 0.2, 0.9, 0.9),  # the same frame again: one frame found, two observations
        (10, start + 1.0, 0.7, 0.2),  # poor: set aside, in no mean
        (12, start + 10.0, 0.2, 0.8),  # calm part
        (12, start + 70.0, 0.8, 0.8),  # sad part
        (99, start, 0.5, 0.5),  # another ward's patient: ignored
    ]
    alerts = [(10, start + 30), (12, start + 95), (13, start + 20)]  # calm bed, after the onset, before it
    score_beds(results, observations, alerts, patient_of, {"cam": start}, fps=1.0, min_quality=0.45)
    neutral, happy, sad, angry, missed = results
    assert (neutral.observations, neutral.found, neutral.set_aside) == (3, 2, 1)
    assert neutral.neg_calm == [0.3, 0.9] and neutral.verdict == "FALSE ALERT"
    assert happy.verdict == "ok" and happy.found == 0
    assert sad.neg_calm == [0.2] and sad.neg_negative == [0.8] and sad.verdict == "ok" and sad.delay == 35
    assert angry.verdict == "EARLY ALERT" and angry.delay is None
    assert missed.verdict == "MISSED"
    s = summary(results)
    assert (s["calm"], s["negative"], s["false"], s["early"], s["missed"], s["delays"]) == (2, 3, 1, 1, 1, [35])


def test_services_get_the_run_rule_and_none_of_the_callers_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AREYA_NEGATIVE_OPEN_SHARE", "0.99")  # the caller's own: not the run's
    env = service_env(tmp_path, {"negative_window_s": "60", "no_such_setting": "1"})
    assert env["AREYA_NEGATIVE_WINDOW_S"] == "60" and env["AREYA_DATA_DIR"] == str(tmp_path)
    assert env["AREYA_DATABASE_URL"] == f"sqlite:///{tmp_path / 'areya.db'}"
    assert "AREYA_NEGATIVE_OPEN_SHARE" not in env and "AREYA_NO_SUCH_SETTING" not in env


def test_frames_published_are_read_from_the_ingestors_log() -> None:
    text = (
        "2026-12-07 07:37:44,893 INFO areya.camera.reader: lit-2: end of video file /tmp/x/lit-2.avi "
        "(240 frame(s) published)\n"
        "2026-12-07 07:37:44,901 INFO areya.camera.reader: night-1: end of video file /tmp/x/night-1.avi "
        "(231 frame(s) published)\n"
        "ingest stopped (every video file ended): 2 camera(s), 471 frame(s) published\n"
    )
    assert published_frames(text) == {"lit-2": 240, "night-1": 231}


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013").is_dir(), reason="no ../shared"
)
def test_faces_classed_by_ferplus_are_what_most_annotators_read() -> None:
    from bench.bench_night_ward import ferplus_labels, keyed_faces
    from bench.bench_night_ward_e2e import face_pools

    pools = face_pools(3, 7, labels="ferplus")
    assert all(1 <= len(pools[c]) <= 3 for c in ("angry", "happy", "neutral", "sad"))
    faces, _, keys = keyed_faces(10, 7)
    majority = dict(zip((f.tobytes() for f in faces), ferplus_labels(keys), strict=True))
    for name, group in pools.items():
        for face in group:
            assert majority[face.tobytes()] == name  # a calm bed's face is one most of ten people call calm

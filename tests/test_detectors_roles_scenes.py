"""Bedside roles on generated ward scenes (bench/bench_bedside_roles.py's scenes: PublicTest faces pasted into a
six-bed ward, found by the configured detector as the worker finds them, judged by ``BedRoles`` frame by frame):
a visitor seated beside a patient is never taken for the patient, nor a nurse leaning over the pillow for 20 s
while the patient's face is hidden; the patient's faces keep the patient role."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FER_TEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013" / "publictest"
pytestmark = pytest.mark.skipif(not FER_TEST.is_dir(), reason=f"{FER_TEST} not available")


@pytest.fixture(scope="module")
def scene_parts():  # noqa: ANN201 - (bench module, detector, faces)
    from bench import bench_bedside_roles as bench
    from bench.ward_path import detector_for_bench

    detector = detector_for_bench()
    faces = bench.detectable_faces(FER_TEST, 20, np.random.default_rng(bench.SEED), detector)
    return bench, detector, faces


@pytest.mark.parametrize("kind", ["visitor seated", "staff leaning"])
def test_someone_else_at_the_bedside_is_not_taken_for_the_patient(scene_parts, kind: str) -> None:  # noqa: ANN001
    bench, detector, faces = scene_parts
    found, zones, shown = bench.record_scene(kind, bench.SEED, 16, detector, faces)
    counts = bench.judge(found, zones, "all cues")
    assert shown["other"] > 0 and counts["other"] >= shown["other"] // 2  # the others were found in the zones
    assert counts["other_taken"] == 0
    assert counts["patient"] >= shown["patient"] * 0.8
    assert counts["patient_kept"] >= 0.9 * counts["patient"]
    before = bench.judge(found, zones, "every face (before)")
    assert before["other_taken"] == before["other"]  # what counting every face for the patient did

"""Whose face is it (areya.detectors.roles): the patient's face at the pillow keeps the patient role; a visitor
beside the bed, a nurse leaning over the pillow, a passer-by at the foot do not take it; corrections override.

Geometry: a 1280x720 frame, a bed zone of 360x640 px (x 100-460, y 40-680), its default pillow region the top
35 % of the zone, its middle 70 % of the width; the patient's face 80 px on the pillow."""

from __future__ import annotations

import pytest

from areya.detectors.roles import (
    OTHER,
    PATIENT,
    BedGeometry,
    BedRoles,
    Cues,
    FaceSeen,
    check_head,
    default_head,
    score_parts,
)

W, H = 1280, 720
ZONE = (100 / W, 40 / H, 460 / W, 680 / H)
BED = BedGeometry(ZONE)
PATIENT_LYING = FaceSeen(280, 150, 80, 80.0)  # on the pillow, rolled on its side
PATIENT_ON_BACK = FaceSeen(280, 150, 80, 3.0)  # on the pillow, upright as a camera at the foot sees it
VISITOR = FaceSeen(125, 380, 88, 2.0)  # seated at the left side of the bed, half-way down
NURSE = FaceSeen(370, 130, 125, -8.0)  # leaning over the pillow, nearer the camera
PASSER_BY = FaceSeen(280, 640, 120, 0.0)  # at the foot of the bed


def run(roles: BedRoles, frames: list[list[FaceSeen]], t0: float = 0.0, step: float = 2.0) -> list[list[str]]:
    return [roles.assign("bed", BED, faces, W, H, t0 + i * step) for i, faces in enumerate(frames)]


def test_default_pillow_is_the_top_middle_of_the_zone_and_a_drawn_one_must_lie_inside() -> None:
    x0, y0, x1, y1 = default_head((0.1, 0.2, 0.5, 1.0))
    assert (x0, y0, x1, y1) == pytest.approx((0.16, 0.2, 0.44, 0.48))
    assert check_head((0.1, 0.2, 0.5, 1.0), (0.2, 0.2, 0.4, 0.4)) == (0.2, 0.2, 0.4, 0.4)
    with pytest.raises(ValueError, match="inside the bed zone"):
        check_head((0.1, 0.2, 0.5, 1.0), (0.0, 0.2, 0.4, 0.4))
    with pytest.raises(ValueError, match="x0 < x1"):
        check_head((0.1, 0.2, 0.5, 1.0), (0.4, 0.2, 0.2, 0.4))


def test_the_patients_lying_face_at_the_pillow_is_the_patient_and_a_seated_visitor_is_not() -> None:
    roles = BedRoles()
    # the visitor is there from the first frame: the cues, not the order of arrival, decide
    assert run(roles, [[VISITOR, PATIENT_LYING]] * 5) == [[OTHER, PATIENT]] * 5
    parts = score_parts(PATIENT_LYING, BED, W, H, None, Cues())
    assert parts["head"] == 2.0 and parts["pose"] == 1.5
    assert sum(score_parts(VISITOR, BED, W, H, 80, Cues()).values()) < 0


def test_a_patient_on_the_back_at_the_pillow_is_the_patient_too() -> None:
    assert run(BedRoles(), [[PATIENT_ON_BACK, VISITOR]] * 3) == [[PATIENT, OTHER]] * 3


def test_the_patient_track_keeps_the_role_when_someone_else_appears_and_while_a_nurse_hides_it() -> None:
    roles = BedRoles()
    frames = [[PATIENT_ON_BACK]] * 5  # 10 s alone
    frames += [[PATIENT_ON_BACK, NURSE]] * 3 + [[NURSE]] * 4 + [[PATIENT_ON_BACK, NURSE]] * 3  # a nurse for 20 s
    frames += [[PATIENT_ON_BACK, PASSER_BY]] * 3
    got = run(roles, frames)
    assert got[:5] == [[PATIENT]] * 5
    assert got[5:8] == [[PATIENT, OTHER]] * 3
    assert got[8:12] == [[OTHER]] * 4  # the nurse's face at the pillow is not the patient's while it is hidden
    assert got[12:15] == [[PATIENT, OTHER]] * 3
    assert got[15:] == [[PATIENT, OTHER]] * 3
    patient = [t for t in roles.tracks("bed") if t.role == PATIENT]
    assert len(patient) == 1 and patient[0].first_at == 0.0  # the same track throughout


def test_the_patient_sitting_up_stays_the_patient() -> None:
    lying = PATIENT_LYING
    steps = [FaceSeen(lying.cx, lying.cy + k * 60, 80, lying.roll * (1 - k / 3)) for k in (1, 2, 3)]
    frames = [[lying]] * 4 + [[s] for s in steps] + [[steps[-1]]] * 4 + [[s] for s in reversed(steps)] + [[lying]]
    got = run(BedRoles(), frames)
    assert all(r == [PATIENT] for r in got)


def test_someone_else_alone_at_the_foot_or_beside_is_not_taken_for_the_patient() -> None:
    assert run(BedRoles(), [[PASSER_BY]] * 3) == [[OTHER]] * 3
    assert run(BedRoles(), [[VISITOR]] * 3) == [[OTHER]] * 3


def test_a_visitor_taken_first_hands_the_role_to_the_patient_once_the_patients_face_is_found() -> None:
    near_visitor = FaceSeen(170, 260, 80, 0.0)  # beside the pillow, mid-way: scores just above 0 alone
    roles = BedRoles()
    got = run(roles, [[near_visitor]] * 2 + [[near_visitor, PATIENT_LYING]] * 5)
    assert got[-1] == [OTHER, PATIENT]


def test_corrections_pin_or_refuse_a_track_and_auto_undoes_them() -> None:
    roles = BedRoles()
    run(roles, [[PATIENT_ON_BACK, VISITOR]] * 2)
    visitor = next(t for t in roles.tracks("bed") if t.role == OTHER)
    assert roles.correct("bed", "patient", visitor.id)
    assert run(roles, [[PATIENT_ON_BACK, VISITOR]], t0=4.0) == [[OTHER, PATIENT]]
    assert roles.correct("bed", "auto")  # the cues decide again: the pillow face takes the role back
    assert run(roles, [[PATIENT_ON_BACK, VISITOR]], t0=6.0) == [[PATIENT, OTHER]]
    assert roles.correct("bed", "not_patient")
    got = run(roles, [[PATIENT_ON_BACK, VISITOR]] * 3, t0=8.0)
    assert got[-1] == [OTHER, OTHER]  # refused: the pillow face is someone else; the visitor scores too low
    assert not roles.correct("bed", "patient", 9999) and not roles.correct("no such bed", "auto")
    with pytest.raises(ValueError, match="unknown correction"):
        roles.correct("bed", "maybe")


def test_a_redelivered_frame_gets_the_same_roles_and_before_roles_every_face_counted() -> None:
    roles = BedRoles()
    first = roles.assign("bed", BED, [PATIENT_LYING, VISITOR], W, H, 10.0)
    assert roles.assign("bed", BED, [PATIENT_LYING, VISITOR], W, H, 10.0) == first == [PATIENT, OTHER]
    assert len(roles.tracks("bed")) == 2
    assert run(BedRoles(everyone_patient=True), [[PATIENT_LYING, VISITOR]]) == [[PATIENT, PATIENT]]


def test_snapshot_says_where_faces_are_and_when_someone_else_was_there_without_pictures() -> None:
    roles = BedRoles()
    run(roles, [[PATIENT_LYING, VISITOR, PASSER_BY]] * 2)
    snap = roles.snapshot("bed")
    assert snap["others"] == 2 and snap["others_at"] == 2.0
    where = {t["role"] + ":" + t["where"] for t in snap["tracks"]}
    assert where == {"patient:at the pillow", "other:at the left side of the bed", "other:at the foot of the bed"}
    assert {type(v) for t in snap["tracks"] for v in t.values()} <= {int, float, str, bool, type(None)}

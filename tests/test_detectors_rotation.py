"""Rotated passes: boxes found in turned views map back to frame coordinates (quarter turns exactly, other
angles by the centre), ``RotatedPasses`` merges the passes, rolled faces are cropped upright, and BlazeFace with
``rotations=0/90/270`` finds a face lying on its side.  Generated data only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from detector_fakes import WideBlobs, blob_boxes

from areya.detectors import FaceBox, create_detector, crop_face
from areya.detectors.rotated import RotatedPasses
from areya.detectors.rotation import box_from_rotated, rotate_frame


@pytest.mark.parametrize("angle", [90, 180, 270])
def test_quarter_turn_boxes_map_back_exactly(angle: int) -> None:
    frame = np.zeros((480, 640), np.uint8)
    frame[100:130, 400:460] = 255  # 60 x 30 at (400, 100)
    turned, matrix = rotate_frame(frame, angle)
    assert turned.shape == ((640, 480) if angle % 180 else (480, 640))
    (seen,) = blob_boxes(turned)
    back = box_from_rotated(seen, matrix, angle)
    assert back.as_tuple() == (400, 100, 60, 30)
    assert back.roll == (angle if angle <= 180 else angle - 360)


def test_other_angles_map_the_centre_back_and_keep_the_size() -> None:
    frame = np.zeros((480, 640), np.uint8)
    cv2.circle(frame, (450, 120), 20, 255, -1)
    turned, matrix = rotate_frame(frame, 45)
    assert turned.shape[0] > 480 and turned.shape[1] > 640  # the whole frame stays in view
    (seen,) = blob_boxes(turned)
    back = box_from_rotated(seen, matrix, 45)
    cx, cy = back.center()
    assert abs(cx - 450.5) <= 1.5 and abs(cy - 120.5) <= 1.5
    assert (back.w, back.h) == (seen.w, seen.h) and back.roll == 45


def test_rotated_passes_find_a_face_lying_on_its_side_in_frame_coordinates() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[50:80, 40:100] = 255  # upright ("wide")
    frame[200:260, 500:530] = 255  # on its side ("tall"): only a quarter turn shows it upright
    assert [b.as_tuple() for b in WideBlobs().detect(frame)] == [(40, 50, 60, 30)]
    det = RotatedPasses(WideBlobs(), [0, 90, 270])
    found = sorted(det.detect(frame), key=lambda b: b.x)
    assert [b.as_tuple() for b in found] == [(40, 50, 60, 30), (500, 200, 30, 60)]
    assert found[0].roll == 0 and found[1].roll in (90, -90)
    assert det.name == "wide"
    side_only = RotatedPasses(WideBlobs(), [90])  # a camera mounted on its side: one pass, turned
    assert [b.as_tuple() for b in side_only.detect(frame)] == [(500, 200, 30, 60)]
    with pytest.raises(ValueError, match="at least one angle"):
        RotatedPasses(WideBlobs(), [])


def test_rolled_box_gives_an_upright_crop() -> None:
    """An arrow pointing up, turned 90 degrees counter-clockwise in the frame: the crop of its box with roll 90
    points up again (white mass in the crop's upper half)."""
    arrow = np.zeros((60, 60), np.uint8)
    cv2.fillPoly(arrow, [np.array([[30, 5], [10, 30], [50, 30]], np.int32)], 255)
    arrow[30:55, 25:35] = 255
    frame = np.zeros((300, 300), np.uint8)
    frame[100:160, 100:160] = cv2.rotate(arrow, cv2.ROTATE_90_COUNTERCLOCKWISE)
    box = FaceBox(100, 100, 60, 60, 0.9, 90.0)
    upright = crop_face(frame, box, margin=0.0)
    assert upright.shape == (60, 60)
    top, bottom = upright[:30].sum(), upright[30:].sum()
    assert top > 1.5 * bottom
    plain = crop_face(frame, FaceBox(100, 100, 60, 60, 0.9), margin=0.0)  # no roll: as it lies
    assert abs(int(plain[:30].sum()) - int(plain[30:].sum())) < 0.2 * plain.sum()


def test_blazeface_with_rotations_finds_a_face_lying_on_its_side() -> None:
    data = pytest.importorskip("skimage.data")
    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]  # face ~100 px at (75, 75)
    lying = cv2.rotate(head, cv2.ROTATE_90_CLOCKWISE)  # 250 x 260 -> 260 wide, 250 tall
    lying = cv2.resize(lying, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)  # face ~60 px
    frame = np.full((480, 640, 3), (200, 205, 210), np.uint8)
    x, y = 300, 150
    frame[y : y + lying.shape[0], x : x + lying.shape[1]] = lying
    # the face box (75, 75, 100, 100) in the head, turned clockwise with it: x' = 260 - (75 + 100), y' = 75
    truth = FaceBox(x + round(85 * 0.6), y + round(75 * 0.6), 60, 60)
    upright_only = create_detector("blazeface", zone_mode="frame")
    assert not [f for f in upright_only.detect(frame) if f.iou(truth) > 0.3]  # the upright pass misses it
    turned = create_detector("blazeface", rotations="0/90/270", zone_mode="frame")
    (face,) = [f for f in turned.detect(frame) if f.iou(truth) > 0.4]
    assert face.roll == -90  # turn it 90 degrees counter-clockwise to make it upright
    crop = crop_face(frame, face, margin=0.5)  # with some context: BlazeFace misses faces filling its whole view
    again = upright_only.detect(cv2.resize(crop, (192, 192)))
    assert again, "the crop of a rolled face must be upright for the classifier"
    assert abs(again[0].eye_roll()) < 10.0

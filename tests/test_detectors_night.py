"""The night ward: a patient lying on the side in a dim frame (gain 0.4, flicker bands, sensor noise, JPEG) is found
by the worker's full zone scan and cut upright for the classifier, whichever side they lie on.  A generated six-bed
ward with the one real face of scikit-image (the astronaut)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from areya.detectors import FaceBox, create_detector, crop_face, detect_for_camera

HEAD = (100, 0, 250, 260)  # x, y, w, h of the astronaut's head and shoulders
FACE = FaceBox(175, 75, 100, 100)  # her face in the picture (forehead to chin, ear to ear)
BEDS = [(c * 427 + 20, r * 360 + 20, 387, 320) for r in range(2) for c in range(3)]  # six beds in 1280 x 720


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def night_ward(astronaut: np.ndarray, bed: int, face_px: int, roll: float) -> tuple[np.ndarray, FaceBox, list]:
    """The ward at night with the patient of ``bed`` lying with the face rolled ``roll`` degrees (counter-clockwise),
    the face ``face_px`` wide, on the pillow; the frame, the face's box and the bed zones."""
    rng = np.random.default_rng(7)
    frame = np.full((720, 1280, 3), (150, 160, 170), np.uint8)
    for x, y, w, h in BEDS:
        cv2.rectangle(frame, (x, y), (x + w, y + h), (225, 228, 232), -1)  # sheet
        cv2.rectangle(frame, (x, y + h // 2), (x + w, y + h), (120, 90, 80), -1)  # blanket
        cv2.ellipse(frame, (x + w // 2, y + h // 4), (w * 2 // 5, h // 7), 0, 0, 360, (242, 242, 240), -1)  # pillow
    hx, hy, hw, hh = HEAD
    scale = face_px / FACE.w
    head = cv2.resize(astronaut[hy : hy + hh, hx : hx + hw], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    side = math.ceil(max(head.shape[:2]) * 1.5)
    canvas = np.zeros((side, side, 3), np.uint8)
    mask = np.zeros((side, side), np.float32)
    oy, ox = (side - head.shape[0]) // 2, (side - head.shape[1]) // 2
    canvas[oy : oy + head.shape[0], ox : ox + head.shape[1]] = head
    cv2.ellipse(mask, (side // 2, side // 2), (head.shape[1] * 9 // 20, head.shape[0] * 9 // 20), 0, 0, 360, 1.0, -1)
    fx, fy = ox + (FACE.x - hx + FACE.w / 2) * scale, oy + (FACE.y - hy + FACE.h / 2) * scale  # face centre
    turn = cv2.getRotationMatrix2D((fx, fy), roll, 1.0)
    canvas = cv2.warpAffine(canvas, turn, (side, side))
    mask = cv2.GaussianBlur(cv2.warpAffine(mask, turn, (side, side)), (0, 0), side * 0.03)[:, :, None]
    x, y, w, h = BEDS[bed]
    cx, cy = x + w // 2, y + h // 4 + 10  # the face's centre on the pillow
    x0, y0 = round(cx - fx), round(cy - fy)
    region = frame[y0 : y0 + side, x0 : x0 + side].astype(np.float32)
    frame[y0 : y0 + side, x0 : x0 + side] = (region * (1 - mask) + canvas * mask).astype(np.uint8)
    dim = frame.astype(np.float32) * 0.4  # 40 % of the ward's light
    dim *= (1 + 0.06 * np.sin(np.arange(720) / 25.0))[:, None, None]  # mains flicker: bands
    dim += rng.normal(0, 5, dim.shape)  # sensor noise
    ok, jpeg = cv2.imencode(".jpg", np.clip(dim, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 70])
    image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    zones = [(bx / 1280, by / 720, (bx + bw) / 1280, (by + bh) / 720) for bx, by, bw, bh in BEDS]
    return image, FaceBox(round(cx - face_px / 2), round(cy - face_px / 2), face_px, face_px), zones


def upright_eye_roll(crop: np.ndarray) -> float | None:
    """The roll of the face in a crop by its eyes (0: upright), as BlazeFace sees it."""
    big = cv2.resize(crop, (384, 384), interpolation=cv2.INTER_CUBIC)
    found = create_detector("blazeface", zone_mode="frame", redetect_roll=0).detect(big)
    rolls = [r for f in found if (r := f.eye_roll(max_offset=180.0)) is not None]
    return rolls[0] if rolls else None


@pytest.mark.parametrize("roll", [90.0, -90.0, 75.0])
def test_a_dim_lying_face_is_found_by_the_worker_scan_and_turned_upright(astronaut: np.ndarray, roll: float) -> None:
    frame, truth, zones = night_ward(astronaut, bed=4, face_px=72, roll=roll)
    detector = create_detector("blazeface")  # the defaults: zone scan, turned looks, found again upright
    # the camera's first two frames get full scans (one turned look each, 90 then 270 degrees)
    seen = [detect_for_camera(detector, frame, zones, "night-camera") for _ in range(2)]
    hits = [f for faces in seen for f in faces if f.iou(truth) >= 0.4]
    assert hits, [list(faces) for faces in seen]
    face = hits[0]
    assert abs(abs(face.roll) - abs(roll)) <= 30  # known to lie on its side
    # the worker's crop rule (the classifier gets margin 0.15; a wider view lets BlazeFace see the face in it)
    eye_roll = upright_eye_roll(crop_face(frame, face, margin=1.0))
    assert eye_roll is not None and abs(eye_roll) <= 20  # turned upright
    lying = crop_face(frame, FaceBox(*face.as_tuple(), face.score), margin=1.0)  # not turned: the face still lies
    flat = upright_eye_roll(lying)
    assert flat is None or abs(flat) > 45

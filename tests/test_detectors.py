"""Face detection backends on generated frames (a real public-domain face pasted into canvases) and, when
present, on the shared sample image and video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from areya.detectors import (
    DEFAULT_DETECTOR,
    FaceBox,
    FaceDetector,
    available_detectors,
    create_detector,
    crop_face,
    validate_frame,
)
from areya.detectors.annotate import draw_faces
from areya.detectors.blazeface import MODELS, generate_anchors, tile_windows, weighted_nms

SHARED_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video"
TWO_PEOPLE = SHARED_VIDEO / "two-people.jpg"
EXPRESSIONS = SHARED_VIDEO / "expressions-720x576.mp4"

# skimage.data.astronaut(): 512x512 RGB, one face; hand-marked face box (forehead to chin, ear to ear)
ASTRONAUT_FACE = FaceBox(175, 75, 100, 100)
HEAD_REGION = (100, 0, 250, 260)  # x, y, w, h: the head and shoulders, pasted into canvases


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def detectors() -> dict[str, FaceDetector]:
    """One instance per backend for the whole module (creating one loads a model)."""
    return {name: create_detector(name) for name in ("blazeface", "blazeface-short", "haar")}


def paste_head(
    astronaut: np.ndarray, scale: float, fx: float, fy: float, size=(640, 480)
) -> tuple[np.ndarray, FaceBox]:
    """A ``size`` canvas with the astronaut's head scaled by ``scale`` at relative position (fx, fy) in [0, 1],
    and where its face is."""
    x, y, w, h = HEAD_REGION
    head = cv2.resize(astronaut[y : y + h, x : x + w], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cw, ch = size
    canvas = np.full((ch, cw, 3), (90, 110, 100), np.uint8)
    hh, hw = head.shape[:2]
    px, py = round(fx * (cw - hw)), round(fy * (ch - hh))
    canvas[py : py + hh, px : px + hw] = head
    f = ASTRONAUT_FACE
    expected = FaceBox(
        round((f.x - x) * scale) + px, round((f.y - y) * scale) + py, round(f.w * scale), round(f.h * scale)
    )
    return canvas, expected


POSITIONS = [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0), (1.0, 0.0)]


# ----------------------------------------------------------------------------------------------- FaceBox
def test_facebox_helpers() -> None:
    b = FaceBox(10, 20, 30, 40, 0.9)
    assert b.center() == (25.0, 40.0)
    assert b.area == 1200
    assert b.normalized(100, 200) == pytest.approx((0.1, 0.1, 0.3, 0.2))
    assert FaceBox(-10, -5, 30, 30).clip(15, 100) == FaceBox(0, 0, 15, 25)
    assert FaceBox(90, 90, 30, 30).normalized(100, 100) == pytest.approx((0.9, 0.9, 0.1, 0.1))
    assert FaceBox(200, 200, 10, 10).clip(100, 100).area == 0
    assert b.iou(b) == pytest.approx(1.0)
    assert b.iou(FaceBox(100, 100, 5, 5)) == 0.0
    assert FaceBox(0, 0, 10, 10).iou(FaceBox(5, 0, 10, 10)) == pytest.approx(50 / 150)
    with pytest.raises(ValueError):
        b.normalized(0, 10)


# ------------------------------------------------------------------------------------ input validation
@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (None, "None"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((48, 64, 3), np.float32), "uint8"),
        (np.zeros((2, 48, 64, 3), np.uint8), "shape"),
        (np.zeros((48, 64, 2), np.uint8), "shape"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
@pytest.mark.parametrize("name", ["blazeface", "blazeface-short", "haar"])
def test_bad_frames_raise_clear_value_error(detectors, name: str, frame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detectors[name].detect(frame)


def test_validate_frame_converts_gray_and_bgra() -> None:
    gray = np.full((10, 12), 7, np.uint8)
    assert validate_frame(gray).shape == (10, 12, 3)
    assert validate_frame(gray[..., None]).shape == (10, 12, 3)
    assert validate_frame(np.zeros((10, 12, 4), np.uint8)).shape == (10, 12, 3)
    bgr = np.zeros((10, 12, 3), np.uint8)
    assert validate_frame(bgr) is bgr  # no copy for the common case


def test_unknown_detector_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown face detector 'yolo'.*blazeface.*haar"):
        create_detector("yolo")


def test_registry_names_and_bad_options() -> None:
    names = available_detectors()
    assert DEFAULT_DETECTOR in names
    assert {"blazeface", "blazeface-short", "haar"} <= set(names)
    with pytest.raises(ValueError, match="bad option"):
        create_detector("haar", no_such_option=1)
    with pytest.raises(ValueError, match="min_score"):
        create_detector("blazeface", min_score=1.5)
    with pytest.raises(ValueError, match="unknown BlazeFace model"):
        create_detector("blazeface", model="huge")


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="model file not found"):
        create_detector("blazeface", model_path=tmp_path / "nope.tflite")
    with pytest.raises(RuntimeError, match="could not load Haar cascade"):
        create_detector("haar", cascade_file=tmp_path / "nope.xml")


def test_haar_without_opencv_cascades_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from areya.detectors import haar

    monkeypatch.setattr(cv2, "data", object(), raising=False)  # as in OpenCV 5, which ships no cascades
    with pytest.raises(RuntimeError, match="ships no Haar cascades"):
        haar.cascade_path()


# --------------------------------------------------------------------------------- BlazeFace internals
def test_anchor_counts_match_the_models() -> None:
    assert generate_anchors(MODELS["short"]).shape == (896, 2)
    assert generate_anchors(MODELS["full"]).shape == (2304, 2)
    anchors = generate_anchors(MODELS["short"])
    assert anchors[0] == pytest.approx((0.5 / 16, 0.5 / 16))  # first cell of the stride-8 map, twice
    assert anchors[1] == pytest.approx(anchors[0])
    assert anchors[512] == pytest.approx((0.5 / 8, 0.5 / 8))  # first cell of the stride-16 map
    assert anchors.min() > 0 and anchors.max() < 1


def test_weighted_nms_merges_overlaps_and_keeps_disjoint_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.3, 0.8], np.float32)
    out, out_scores = weighted_nms(boxes, scores, 0.3)
    assert len(out) == 2
    assert out_scores.tolist() == pytest.approx([0.9, 0.8])
    assert out[0] == pytest.approx([0.25, 0.25, 10.25, 10.25])  # score-weighted mean of the first two
    assert out[1] == pytest.approx([50, 50, 60, 60])
    empty, empty_scores = weighted_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.3)
    assert empty.shape == (0, 4) and empty_scores.shape == (0,)


def test_tile_windows_cover_the_frame() -> None:
    assert tile_windows(640, 480, 0) == []
    wins = tile_windows(640, 480, 2)
    assert len(wins) == 4
    covered = np.zeros((480, 640), bool)
    for x, y, side in wins:
        assert x >= 0 and y >= 0 and x + side <= 640 and y + side <= 480
        covered[y : y + side, x : x + side] = True
    assert covered.all()


# ------------------------------------------------------------------------------- detection on real faces
@pytest.mark.parametrize("name", ["blazeface", "blazeface-short", "haar"])
def test_finds_the_astronaut(detectors, astronaut_bgr, name: str) -> None:
    faces = detectors[name].detect(astronaut_bgr)
    assert len(faces) == 1
    assert faces[0].iou(ASTRONAUT_FACE) > 0.5
    assert 0.0 < faces[0].score <= 1.0


@pytest.mark.parametrize("scale", [0.5, 0.8, 1.2, 1.8])
@pytest.mark.parametrize(("fx", "fy"), POSITIONS)
@pytest.mark.parametrize("name", ["blazeface", "haar"])
def test_one_pasted_face_at_many_positions_and_scales(detectors, astronaut_bgr, name, scale, fx, fy) -> None:
    canvas, expected = paste_head(astronaut_bgr, scale, fx, fy)
    faces = detectors[name].detect(canvas)
    assert len(faces) == 1, faces
    assert faces[0].iou(expected) > 0.5, (faces[0], expected)


@pytest.mark.parametrize("scale", [1.2, 1.8])
@pytest.mark.parametrize(("fx", "fy"), POSITIONS)
def test_short_range_finds_large_faces(detectors, astronaut_bgr, scale, fx, fy) -> None:
    canvas, expected = paste_head(astronaut_bgr, scale, fx, fy)
    faces = detectors["blazeface-short"].detect(canvas)
    assert len(faces) == 1
    assert faces[0].iou(expected) > 0.5


def test_small_faces_in_a_wide_frame_need_tiles(astronaut_bgr) -> None:
    """A 70 px face in a 1280x720 frame is too small for one pass of either model; tiling finds it."""
    canvas, expected = paste_head(astronaut_bgr, 0.7, 0.8, 0.3, size=(1280, 720))
    assert create_detector("blazeface").detect(canvas) == []
    for name, tiles in (("blazeface", 2), ("blazeface-short", 3)):
        faces = create_detector(name, tiles=tiles).detect(canvas)
        assert len(faces) == 1, (name, faces)
        assert faces[0].iou(expected) > 0.5


@pytest.mark.parametrize("name", ["blazeface", "blazeface-short", "haar"])
def test_gray_frame_gives_the_same_faces(detectors, astronaut_bgr, name: str) -> None:
    canvas, expected = paste_head(astronaut_bgr, 1.2, 0.3, 0.6)
    gray = cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY)
    from_gray = detectors[name].detect(gray)
    from_bgr = detectors[name].detect(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    assert from_gray == from_bgr
    assert len(from_gray) == 1 and from_gray[0].iou(expected) > 0.5


@pytest.mark.parametrize("name", ["blazeface", "blazeface-short", "haar"])
def test_no_faces_in_blank_or_noise_frames(detectors, name: str) -> None:
    rng = np.random.default_rng(1)
    frames = [
        np.zeros((480, 640, 3), np.uint8),
        np.full((480, 640, 3), 255, np.uint8),
        rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
        cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (9, 9), 3),
        np.zeros((1, 1, 3), np.uint8),
    ]
    assert [detectors[name].detect(f) for f in frames] == [[]] * len(frames)


def test_detect_batch_matches_detect(detectors, astronaut_bgr) -> None:
    frames = [paste_head(astronaut_bgr, 1.0, fx, fy)[0] for fx, fy in POSITIONS] + [np.zeros((48, 64, 3), np.uint8)]
    det = detectors["blazeface"]
    assert det.detect_batch(frames) == [det.detect(f) for f in frames]
    assert det.detect_batch([]) == []


def test_boxes_lie_inside_the_frame(detectors, astronaut_bgr) -> None:
    """A face cut by the frame edge gives a box clipped to the frame."""
    canvas = np.zeros((300, 300, 3), np.uint8)
    canvas[:, :] = astronaut_bgr[40:340, 200:500]  # the face cut by the left edge
    for name in ("blazeface", "haar"):
        for b in detectors[name].detect(canvas):
            assert b.x >= 0 and b.y >= 0 and b.x + b.w <= 300 and b.y + b.h <= 300


def test_detectors_do_not_modify_the_frame(detectors, astronaut_bgr) -> None:
    frame = astronaut_bgr.copy()
    for det in detectors.values():
        det.detect(frame)
    assert np.array_equal(frame, astronaut_bgr)


# ---------------------------------------------------------------------------------------- crop, annotate
def test_crop_face_is_square_with_margin_and_padded_at_edges() -> None:
    frame = np.arange(100 * 120, dtype=np.uint32).reshape(100, 120).astype(np.uint8)
    crop = crop_face(frame, FaceBox(40, 30, 20, 30), margin=0.2)
    assert crop.shape == (36, 36)
    edge = crop_face(frame, FaceBox(0, 0, 20, 20), margin=0.5)  # reaches 5 px outside top and left
    assert edge.shape == (30, 30)
    assert np.array_equal(edge[5:, 5:], frame[:25, :25])
    assert np.array_equal(edge[0, 5:], frame[0, :25])  # replicated top row
    colour = crop_face(np.zeros((50, 50, 3), np.uint8), FaceBox(10, 10, 20, 20))
    assert colour.shape == (23, 23, 3)
    crop[:] = 0
    assert frame[30:60, 40:60].any()  # the crop is a copy
    with pytest.raises(ValueError, match="outside"):
        crop_face(frame, FaceBox(500, 500, 10, 10))
    with pytest.raises(ValueError, match="empty box"):
        crop_face(frame, FaceBox(5, 5, 0, 10))
    with pytest.raises(ValueError, match="margin"):
        crop_face(frame, FaceBox(5, 5, 10, 10), margin=-1)


def test_draw_faces_draws_boxes_and_labels_on_a_copy() -> None:
    frame = np.zeros((200, 300, 3), np.uint8)
    boxes = [FaceBox(50, 60, 40, 40, 0.9), FaceBox(200, 2, 50, 50, 0.8)]
    out = draw_faces(
        frame, boxes, labels=["happy 0.81", ["angry 0.5", "7: angry 0.4"]], colors=[(0, 255, 0), (0, 0, 255)]
    )
    assert not frame.any()
    assert out.shape == frame.shape
    assert (out[60, 50:90] == (0, 255, 0)).all()  # top edge of the first box
    assert out[40:60, 50:120].any()  # label block above the first box
    assert out[52:80, 200:300].any()  # no room above the second box: label below it
    with pytest.raises(ValueError, match="labels"):
        draw_faces(frame, boxes, labels=["one"])
    assert draw_faces(np.zeros((20, 30), np.uint8), []).shape == (20, 30, 3)


# ------------------------------------------------------------------------------ shared sample media
@pytest.mark.skipif(not TWO_PEOPLE.is_file(), reason=f"{TWO_PEOPLE} not present")
def test_two_people_photo_has_two_faces(detectors) -> None:
    frame = cv2.imread(str(TWO_PEOPLE))
    faces = detectors[DEFAULT_DETECTOR].detect(frame)
    assert len(faces) == 2
    left, right = sorted(faces, key=lambda b: b.x)
    assert left.x + left.w < right.x  # two distinct faces side by side
    assert all(60 < b.w < 120 for b in faces)


@pytest.mark.skipif(not EXPRESSIONS.is_file(), reason=f"{EXPRESSIONS} not present")
def test_faces_found_in_most_video_frames(detectors) -> None:
    cap = cv2.VideoCapture(str(EXPRESSIONS))
    assert cap.isOpened()
    found = frames = 0
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % 3 == 0:  # every third frame is enough, and cheaper
                frames += 1
                found += len(detectors[DEFAULT_DETECTOR].detect(frame)) == 1
            index += 1
    finally:
        cap.release()
    assert frames >= 30
    assert found / frames >= 0.9

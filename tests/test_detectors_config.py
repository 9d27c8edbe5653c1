"""Detector backend and options from configuration: validation (``areya config check`` exits 2 naming the valid
choices), the detector the worker and ``areya predict`` build from them, and the generic ``min_face_px`` filter."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine

from areya.cli import cli
from areya.cli.predict import detector_from_cli
from areya.config import ConfigError, Settings, load_settings
from areya.detectors import FaceBox, FaceDetector, MinFaceSize, create_detector, detector_from_settings
from areya.detectors.haar import HaarDetector
from areya.worker import build_worker, load_detector

BLAZEFACE_OPTIONS = "min_score, nms_iou, num_threads, tiles, model_path, box_scale, box_shift, min_face_px"


def load(tmp_path: Path, config_file: Path | None = None, **env: str) -> Settings:
    return load_settings(config_file, env={"AREYA_DATA_DIR": str(tmp_path / "var"), **env})


def check(tmp_path: Path, *args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, [*args, "config", "check"], env={"AREYA_DATA_DIR": str(tmp_path), **env})


class FixedBoxes(FaceDetector):
    """A fake backend: always the same boxes."""

    name = "fixed"

    def __init__(self, boxes: list[FaceBox]) -> None:
        self.boxes = boxes
        self.closed = False

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        return list(self.boxes)

    def close(self) -> None:
        self.closed = True


# ------------------------------------------------------------------------------------ settings -> detector
def test_default_is_blazeface_without_options(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert (s.detector, s.detector_options) == ("blazeface", ())
    assert s.public_dict()["detector_options"] == ""


def test_env_options_reach_the_detector_the_worker_builds(tmp_path: Path) -> None:
    s = load(tmp_path, AREYA_DETECTOR_OPTIONS="tiles=2, min_score=0.6,min_face_px=24")
    assert s.detector_options == (("tiles", 2), ("min_score", 0.6), ("min_face_px", 24))
    assert s.public_dict()["detector_options"] == "tiles=2,min_score=0.6,min_face_px=24"
    worker = build_worker(s, client=object(), engine=create_engine("sqlite://"), classifier=object())
    det = worker.detector
    assert isinstance(det, MinFaceSize) and det.min_face_px == 24
    assert (det.name, det.tiles, det.min_score) == ("blazeface", 2, 0.6)  # read through to the BlazeFace detector
    assert s.replace(web_port=8080).detector_options == s.detector_options  # typed values validate again


def test_toml_inline_table_and_string_forms(tmp_path: Path) -> None:
    table = tmp_path / "table.toml"
    table.write_text('[pipeline]\ndetector = "Haar"\ndetector_options = { scale_factor = 1.2, equalize = true }\n')
    s = load(tmp_path, table)
    assert (s.detector, s.detector_options) == ("haar", (("scale_factor", 1.2), ("equalize", True)))
    det = load_detector(s)
    assert isinstance(det, HaarDetector) and det.scale_factor == 1.2 and det.equalize is True
    string = tmp_path / "string.toml"
    string.write_text('[pipeline]\ndetector = "haar"\ndetector_options = "min_size=30,max_width=800"\n')
    det = load_detector(load(tmp_path, string))
    assert (det.min_size, det.max_width, det.equalize) == (30, 800, False)


def test_other_backend_keeps_only_the_options_it_takes(tmp_path: Path) -> None:
    s = load(tmp_path, AREYA_DETECTOR_OPTIONS="tiles=2,min_face_px=40")
    det = detector_from_settings(s, "haar", {"min_neighbors": "3"})
    assert isinstance(det, MinFaceSize) and isinstance(det.inner, HaarDetector)
    assert (det.min_face_px, det.min_neighbors) == (40, 3)
    with pytest.raises(ConfigError, match="unknown option 'tiles' for detector 'haar'"):
        s.replace(detector="haar")  # the settings themselves must stay consistent
    with pytest.raises(ValueError, match="option 'min_neighbors' of detector 'haar' must be an integer"):
        detector_from_settings(s, "haar", {"min_neighbors": "few"})


def test_predict_command_line_overrides(tmp_path: Path) -> None:
    s = load(tmp_path, AREYA_DETECTOR="haar", AREYA_DETECTOR_OPTIONS="min_size=30")
    det = detector_from_cli(s, None, ("min_face_px=50", "equalize=yes"))
    assert (det.min_face_px, det.min_size, det.equalize) == (50, 30, True)
    env = {"AREYA_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(cli, ["predict", "x.png", "--detector-option", "tile=2"], env=env)
    assert result.exit_code == 1 and "unknown option 'tile' for detector 'blazeface'" in result.stderr
    assert BLAZEFACE_OPTIONS in result.stderr
    result = CliRunner().invoke(cli, ["predict", "x.png", "--detector-option", "tiles"], env=env)
    assert result.exit_code == 2 and "name=value" in result.stderr


# ------------------------------------------------------------------------------- areya config check errors
def test_config_check_accepts_valid_options(tmp_path: Path) -> None:
    result = check(tmp_path, AREYA_DETECTOR="blazeface-short", AREYA_DETECTOR_OPTIONS="tiles=3,min_face_px=20")
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.output


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        (
            {"AREYA_DETECTOR": "yolo"},
            ["AREYA_DETECTOR: must be one of blazeface, blazeface-short, blazeface-full-sparse, haar, got 'yolo'"],
        ),
        (
            {"AREYA_DETECTOR_OPTIONS": "tiles=2,tile_count=3"},
            ["AREYA_DETECTOR_OPTIONS: unknown option 'tile_count' for detector 'blazeface'", BLAZEFACE_OPTIONS],
        ),
        (
            {"AREYA_DETECTOR": "haar", "AREYA_DETECTOR_OPTIONS": "tiles=2"},
            ["AREYA_DETECTOR_OPTIONS: unknown option 'tiles' for detector 'haar'", "scale_factor, min_neighbors"],
        ),
        (
            {"AREYA_DETECTOR_OPTIONS": "tiles=9"},
            ["AREYA_DETECTOR_OPTIONS: option 'tiles' of detector 'blazeface' must be an integer in [0, 6], got 9"],
        ),
        ({"AREYA_DETECTOR_OPTIONS": "min_score=high"}, ["AREYA_DETECTOR_OPTIONS: option 'min_score'", "number"]),
        ({"AREYA_DETECTOR_OPTIONS": "min_score=1"}, ["option 'min_score'", "must be a number in (0, 1), got 1.0"]),
        ({"AREYA_DETECTOR_OPTIONS": "min_face_px=-5"}, ["option 'min_face_px'", "[0, 4096], got -5"]),
        ({"AREYA_DETECTOR_OPTIONS": "tiles"}, ["AREYA_DETECTOR_OPTIONS: must be 'name=value' pairs"]),
        ({"AREYA_DETECTOR_OPTIONS": "tiles=2,tiles=3"}, ["AREYA_DETECTOR_OPTIONS: option 'tiles' given twice"]),
    ],
)
def test_config_check_rejects_bad_detector_settings(tmp_path: Path, env: dict[str, str], fragments: list[str]) -> None:
    result = check(tmp_path, **env)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("error: configuration: ")
    for fragment in fragments:
        assert fragment in result.stderr


def test_config_check_rejects_bad_options_in_the_toml_file(tmp_path: Path) -> None:
    cfg = tmp_path / "areya.toml"
    cfg.write_text('[pipeline]\ndetector_options = { tiles = "many" }\n')
    result = check(tmp_path, "--config", str(cfg))
    assert result.exit_code == 2
    assert "AREYA_DETECTOR_OPTIONS: option 'tiles' of detector 'blazeface' must be an integer" in result.stderr


# -------------------------------------------------------------------------------------------- min_face_px
def test_min_face_px_drops_small_boxes_of_any_backend() -> None:
    boxes = [FaceBox(0, 0, 40, 40, 0.9), FaceBox(50, 0, 20, 60, 0.8), FaceBox(0, 50, 32, 32, 0.7)]
    inner = FixedBoxes(boxes)
    det = MinFaceSize(inner, 32)
    frame = np.zeros((100, 100, 3), np.uint8)
    assert det.detect(frame) == [boxes[0], boxes[2]]  # 20 px wide: dropped; exactly 32 px: kept
    assert det.detect_batch([frame, frame]) == [[boxes[0], boxes[2]]] * 2
    assert det.name == "fixed" and det.boxes is boxes  # other attributes come from the wrapped detector
    det.close()
    assert inner.closed
    with pytest.raises(ValueError, match="min_face_px must be an integer >= 0"):
        create_detector("haar", min_face_px=-1)
    assert isinstance(create_detector("haar", min_face_px=0), HaarDetector)  # 0: no wrapper


def test_min_face_px_on_a_generated_frame() -> None:
    """Two pasted heads, faces about 50 and 120 px: min_face_px=80 keeps only the big one."""
    data = pytest.importorskip("skimage.data")
    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]
    canvas = np.full((480, 900, 3), (90, 110, 100), np.uint8)
    small = cv2.resize(head, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    big = cv2.resize(head, None, fx=1.2, fy=1.2, interpolation=cv2.INTER_AREA)
    canvas[100 : 100 + small.shape[0], 60 : 60 + small.shape[1]] = small
    canvas[80 : 80 + big.shape[0], 450 : 450 + big.shape[1]] = big
    everything = create_detector("haar").detect(canvas)
    assert sorted(min(f.w, f.h) < 80 for f in everything) == [False, True]
    (kept,) = create_detector("haar", min_face_px=80).detect(canvas)
    assert kept.x >= 450 and min(kept.w, kept.h) >= 80

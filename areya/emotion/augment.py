"""Training-time augmentation of 48x48 faces, outside the network, seeded per epoch and batch.

Geometry (mirror, rotation, zoom, shift) is one affine warp per face, so a face is resampled once: chaining
separate random rotate/zoom/translate layers resamples it three times and blurs it, and a model trained on
blurred faces fails on sharp ones (the lesson of the earlier blurred Training split).  Random erasing fills
a rectangle with uniform noise in the pixel range.  Served faces are never augmented.

Ward-robust augmentation (:func:`ward_conditions`, the ``ward_*`` settings, each a probability per face; all off by
default) imitates what a ward camera does to a face that FER-2013's web photos lack: a band over one edge
(blanket, pillow), low light, sensor noise, a small face, JPEG compression, and (in the one affine warp) the roll
the face aligner leaves.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from areya.emotion.train_config import WARD_AUGMENTATIONS, TrainConfig


def augment_faces(images: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """(N, 48, 48) uint8 -> augmented (N, 48, 48, 1) float32 in [0, 255]."""
    n, h, w = images.shape
    out = np.empty((n, h, w, 1), np.float32)
    centre = (w / 2 - 0.5, h / 2 - 0.5)
    for i in range(n):
        img = images[i]
        if cfg.flip and rng.random() < 0.5:
            img = img[:, ::-1]
        angle = rng.uniform(-cfg.rotate_degrees, cfg.rotate_degrees) if cfg.rotate_degrees > 0 else 0.0
        if cfg.ward_roll > 0 and rng.random() < cfg.ward_roll:
            angle += rng.uniform(-WARD_ROLL_DEGREES, WARD_ROLL_DEGREES)
        scale = 1.0 + (rng.uniform(-cfg.zoom, cfg.zoom) if cfg.zoom > 0 else 0.0)
        matrix = cv2.getRotationMatrix2D(centre, angle, scale)
        if cfg.translate > 0:
            matrix[0, 2] += rng.uniform(-cfg.translate, cfg.translate) * w
            matrix[1, 2] += rng.uniform(-cfg.translate, cfg.translate) * h
        face = np.ascontiguousarray(img, dtype=np.float32)
        if angle or scale != 1.0 or cfg.translate > 0:
            face = cv2.warpAffine(face, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        if cfg.contrast > 0 or cfg.brightness > 0:
            mean = float(face.mean())
            gain = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
            shift = rng.uniform(-cfg.brightness, cfg.brightness) * 255.0
            face = np.clip((face - mean) * gain + mean + shift, 0, 255)
        if cfg.erasing > 0 and rng.random() < cfg.erasing:
            area = rng.uniform(0.02, 0.25) * h * w
            aspect = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
            eh = min(h, max(1, int(round(math.sqrt(area * aspect)))))
            ew = min(w, max(1, int(round(math.sqrt(area / aspect)))))
            y0, x0 = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            face[y0 : y0 + eh, x0 : x0 + ew] = rng.uniform(0, 255, (eh, ew))
        out[i, :, :, 0] = face
    if any(getattr(cfg, name) > 0 for name in WARD_AUGMENTATIONS if name != "ward_roll"):
        ward_conditions(out[..., 0], cfg, rng)
    return out


WARD_ROLL_DEGREES = 15.0  # residual roll after the aligner, added to the rotation
LOW_LIGHT_GAIN = (0.3, 0.7)
LOW_LIGHT_GAMMA = (0.8, 1.5)  # > 1 darkens the shadows more than the highlights
NOISE_STD = (2.0, 10.0)  # grey levels (of 255), Gaussian, per pixel
SMALL_FACE_PX = (40, 64)  # the face's side in the camera image before it is resized to 48 px
JPEG_QUALITY = (60, 85)
OCCLUSION_FRACTION = (0.1, 0.35)  # the band's depth, as a fraction of the face's side
# which edge a band covers (bottom: a blanket; left / right: a pillow; top: a bandage or a cap)
OCCLUSION_EDGES = ("bottom", "left", "right", "top")
OCCLUSION_EDGE_P = (0.4, 0.25, 0.25, 0.1)


def ward_conditions(faces: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Apply the ward settings' conditions in place to (N, H, W) float32 faces in [0, 255] and return them.

    In the order a camera sees them: an occluding band at one edge (a flat grey with a little texture, part of the
    scene, so it is darkened and noised too), low light (``255 gain (x / 255)^gamma``), Gaussian sensor noise,
    8-bit output (faces given light or noise are rounded), a small face (``INTER_AREA`` down to 40-64 px, back to 48
    px as :func:`~areya.emotion.inference.prepare_crops` resizes a crop) and JPEG compression at that size.  Each
    face draws each condition with its probability; the draws are vectorised over the batch and come from ``rng``
    in a fixed order, so a batch is the same for a given seed.
    """
    n, h, w = faces.shape
    draws = {name: rng.random(n) < getattr(cfg, name) for name in WARD_AUGMENTATIONS if name != "ward_roll"}
    # the conditions' parameters, drawn for every face (so one condition's probability does not shift another's)
    depth = rng.uniform(*OCCLUSION_FRACTION, n)
    edge = rng.choice(len(OCCLUSION_EDGES), size=n, p=OCCLUSION_EDGE_P)
    grey = rng.uniform(0, 255, n)
    gain = rng.uniform(*LOW_LIGHT_GAIN, n)
    gamma = rng.uniform(*LOW_LIGHT_GAMMA, n)
    std = rng.uniform(*NOISE_STD, n)
    side = rng.integers(SMALL_FACE_PX[0], SMALL_FACE_PX[1] + 1, n)
    quality = rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, n)

    for i in np.flatnonzero(draws["ward_occlusion"]):
        band = np.clip(grey[i] + rng.normal(0, 6, (h, w)), 0, 255).astype(np.float32)
        d = max(1, int(round(depth[i] * (h if OCCLUSION_EDGES[edge[i]] in ("top", "bottom") else w))))
        where = {
            "bottom": np.s_[h - d :, :],
            "top": np.s_[:d, :],
            "left": np.s_[:, :d],
            "right": np.s_[:, w - d :],
        }[OCCLUSION_EDGES[edge[i]]]
        faces[i][where] = band[where]
    dark = draws["ward_low_light"]
    if dark.any():
        x = np.clip(faces[dark], 0, 255) / 255.0
        faces[dark] = 255.0 * gain[dark, None, None] * x ** gamma[dark, None, None]
    noisy = draws["ward_noise"]
    if noisy.any():
        faces[noisy] += rng.normal(0, 1, (int(noisy.sum()), h, w)).astype(np.float32) * std[noisy, None, None]
    sensed = dark | noisy
    if sensed.any():
        faces[sensed] = np.clip(np.round(faces[sensed]), 0, 255)
    for i in np.flatnonzero(draws["ward_small_face"] | draws["ward_jpeg"]):
        face = np.clip(np.round(faces[i]), 0, 255).astype(np.uint8)
        small = draws["ward_small_face"][i] and side[i] != h
        if small:
            interp = cv2.INTER_AREA if side[i] < h else cv2.INTER_LINEAR
            face = cv2.resize(face, (int(side[i]), int(side[i])), interpolation=interp)
        if draws["ward_jpeg"][i]:
            ok, buf = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, int(quality[i])])
            face = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else face
        if small:
            interp = cv2.INTER_AREA if face.shape[0] > h else cv2.INTER_LINEAR
            face = cv2.resize(face, (w, h), interpolation=interp)
        faces[i] = face
    return faces


def make_training_batches(
    images: np.ndarray,
    targets: dict[str, np.ndarray],
    cfg: TrainConfig,
    relabel: Callable[[np.ndarray, np.ndarray, dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
) -> tuple:
    """A Keras ``PyDataset`` of augmented training batches, shuffled per epoch and seeded by (seed, epoch, batch),
    so a resumed run sees the same faces in the same order; ``set_epoch`` (called by a callback at each epoch's
    start, batches are made synchronously) says which epoch it is.  ``relabel(faces, rows, targets)``, when given,
    returns each batch's targets from its augmented faces (a teacher labelling what the student sees)."""
    import keras

    class AugmentedFaces(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.set_epoch(0)

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch
            self._order = np.random.default_rng([cfg.seed, epoch]).permutation(len(images))

        def __len__(self) -> int:
            return math.ceil(len(images) / cfg.batch_size)

        def __getitem__(self, idx: int):
            rows = self._order[idx * cfg.batch_size : (idx + 1) * cfg.batch_size]
            rng = np.random.default_rng([cfg.seed, self.epoch, idx])
            faces = augment_faces(images[rows], cfg, rng)
            batch_targets = {k: v[rows] for k, v in targets.items()}
            return faces, (relabel(faces, rows, batch_targets) if relabel else batch_targets)

    batches = AugmentedFaces()

    class EpochSetter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            batches.set_epoch(epoch)

    return batches, EpochSetter()

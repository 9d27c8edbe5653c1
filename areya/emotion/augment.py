"""Training-time augmentation of 48x48 faces, outside the network, seeded per epoch and batch.

Geometry (mirror, rotation, zoom, shift) is one affine warp per face, so a face is resampled once: chaining
separate random rotate/zoom/translate layers resamples it three times and blurs it, and a model trained on
blurred faces fails on sharp ones (the lesson of the earlier blurred Training split).  Random erasing fills
a rectangle with uniform noise in the pixel range.  Served faces are never augmented.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from areya.emotion.train_config import TrainConfig


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
    return out


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

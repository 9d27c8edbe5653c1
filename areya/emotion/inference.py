"""The inference API the worker uses: load the shipped model once, classify
batches of face crops into both schemes in one forward pass.

TensorFlow places the model on a GPU by itself when it sees one; otherwise it
runs on the CPU.  Batch size is the lever for throughput.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from areya.emotion.calibration import CALIBRATION_FILE, Calibration
from areya.emotion.dataset import IMAGE_SIZE
from areya.emotion.ensemble import ENSEMBLE_FILE, MODEL_FILE, Ensemble, config_tta
from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES, NEGATIVE_4

DEFAULT_MODEL = "areya-fer"

log = logging.getLogger(__name__)


def models_dir() -> Path:
    """Where shipped models live: ``$AREYA_MODELS_DIR`` or the repository's ``models/``."""
    env = os.environ.get("AREYA_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def resolve_model_path(name_or_path: str | Path | None = None) -> Path:
    """A model name (folder under models/), a model folder, or a ``.keras`` file -> the ``.keras`` file."""
    target = Path(name_or_path) if name_or_path else models_dir() / DEFAULT_MODEL
    candidates = [target, target / MODEL_FILE, models_dir() / str(name_or_path or DEFAULT_MODEL) / MODEL_FILE]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"emotion model {str(name_or_path or DEFAULT_MODEL)!r} not found "
        f"(looked for {', '.join(str(c) for c in candidates)})"
    )


@dataclass(frozen=True)
class EmotionResult:
    probs4: np.ndarray  # (4,) AREYA4_CLASSES order
    probs7: np.ndarray  # (7,) FER7_CLASSES order

    @property
    def label4(self) -> str:
        return AREYA4_CLASSES[int(np.argmax(self.probs4))]

    @property
    def label7(self) -> str:
        return FER7_CLASSES[int(np.argmax(self.probs7))]

    @property
    def confidence4(self) -> float:
        return float(np.max(self.probs4))

    @property
    def confidence7(self) -> float:
        return float(np.max(self.probs7))

    @property
    def negative_share(self) -> float:
        """Probability mass on the negative classes (angry + sad)."""
        return float(sum(self.probs4[AREYA4_CLASSES.index(c)] for c in NEGATIVE_4))


def prepare_crops(crops: Sequence[np.ndarray]) -> np.ndarray:
    """Face crops of any size, gray (H, W) / (H, W, 1) or BGR(A) -> (N, 48, 48, 1) float32 in [0, 255]."""
    import cv2

    out = np.empty((len(crops), IMAGE_SIZE, IMAGE_SIZE, 1), np.float32)
    for i, crop in enumerate(crops):
        arr = np.asarray(crop)
        if arr.ndim not in (2, 3) or arr.shape[0] < 2 or arr.shape[1] < 2:
            raise ValueError(f"face crop {i}: expected an image (H, W) or (H, W, C), got shape {arr.shape}")
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        if arr.ndim == 3:
            channels = arr.shape[2]
            if channels == 1:
                arr = arr[..., 0]
            elif channels == 3:
                arr = cv2.cvtColor(arr, cv2.COLOR_BGR2GRAY)
            elif channels == 4:
                arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2GRAY)
            else:
                raise ValueError(f"face crop {i}: unsupported channel count {channels}")
        if arr.shape != (IMAGE_SIZE, IMAGE_SIZE):
            interp = cv2.INTER_AREA if min(arr.shape) > IMAGE_SIZE else cv2.INTER_LINEAR
            arr = cv2.resize(arr, (IMAGE_SIZE, IMAGE_SIZE), interpolation=interp)
        out[i, :, :, 0] = arr
    return out


class EmotionClassifier:
    """Both schemes' calibrated probabilities for a batch of face crops, from one forward pass per member.

    ``model`` is one Keras network or a list of them (an ensemble: their probabilities are averaged).
    ``calibration`` (the model's ``calibration.json``, see :mod:`areya.emotion.calibration`) scales each
    head by its fitted temperature and says whether the 4-class answer comes from the 4-class head, the
    7-class head or both.
    """

    def __init__(
        self,
        model,
        model_version: str,
        tta_flip: bool = True,
        max_batch: int = 256,
        calibration: Calibration | None = None,
    ) -> None:
        self._models = list(model) if isinstance(model, list | tuple) else [model]
        self.model_version = model_version
        self.tta_flip = tta_flip
        self.max_batch = max_batch
        self.calibration = calibration or Calibration.identity()

    @property
    def params(self) -> int:
        return sum(int(m.count_params()) for m in self._models)

    @property
    def members(self) -> int:
        return len(self._models)

    @classmethod
    def load(
        cls, name_or_path: str | Path | None = None, tta_flip: bool | None = None, num_threads: int | None = None
    ) -> EmotionClassifier:
        """Load a shipped model (with its ensemble members, if its folder has an ``ensemble.toml``; as int8
        TensorFlow Lite members if it says ``runtime = "int8"``).
        ``tta_flip`` None: as the model is served (its calibration was fitted that way).
        ``num_threads``: CPU threads of each int8 member (None or 0: one per CPU); the Keras runtime uses
        TensorFlow's own thread pools, which a running process cannot resize, and logs that it ignores it."""
        path = resolve_model_path(name_or_path)
        folder = path.parent
        ensemble = Ensemble.load(folder) if path.name == MODEL_FILE else None  # a member file alone: no ensemble
        files = [folder / m for m in ensemble.members] if ensemble else [path]
        if tta_flip is None:
            tta_flip = ensemble.tta_flip if ensemble else config_tta(Ensemble.member_config(folder, path.name))
        if ensemble is not None and ensemble.runtime == "int8":
            from areya.emotion.lite import LiteMember

            files = [Ensemble.member_int8(folder, m) for m in ensemble.members]
            models = [LiteMember(f, num_threads or None) for f in files]
        else:
            if num_threads:
                log.warning(
                    "%s is served by Keras: num_threads=%d is not applied (TensorFlow uses its own thread pools)",
                    folder.name,
                    num_threads,
                )
            import keras

            import areya.emotion.network  # noqa: F401  (registers the custom layers for deserialisation)

            models = [keras.models.load_model(f, compile=False) for f in files]
        calibration = Calibration.load(folder)
        digest = hashlib.sha256()
        for f in [*files, folder / CALIBRATION_FILE, *([folder / ENSEMBLE_FILE] if ensemble else [])]:
            if f.is_file():
                digest.update(f.read_bytes())
        version = f"{folder.name}@{digest.hexdigest()[:12]}"
        return cls(models, version, tta_flip=tta_flip, calibration=calibration)

    @classmethod
    def untrained(cls, seed: int = 0, widths: Sequence[int] = (8, 16)) -> EmotionClassifier:
        """A tiny randomly initialised network with the shipped interface: for tests only."""
        import keras

        from areya.emotion.network import build_network
        from areya.emotion.train_config import TrainConfig

        keras.utils.set_random_seed(seed)
        cfg = TrainConfig(name="untrained", widths=list(widths), convs_per_stage=[1] * len(widths))
        return cls(build_network(cfg), f"untrained-seed{seed}", tta_flip=False)

    def predict_raw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 48, 48, 1) float32 -> the network's own (4-class head (N, 4), 7-class head (N, 7)) probabilities,
        averaged over the ensemble's members and with a mirrored copy if tta_flip; no calibration."""
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0, 7), np.float32)
        p4, p7 = [], []
        step = max(1, self.max_batch // 2 if self.tta_flip else self.max_batch)
        for start in range(0, n, step):
            chunk = x[start : start + step]
            batch = np.concatenate([chunk, chunk[:, :, ::-1]]) if self.tta_flip else chunk
            o4 = o7 = 0.0
            for model in self._models:
                out = model.predict_on_batch(batch)
                o4 = o4 + np.asarray(out["emotion4"], np.float32)
                o7 = o7 + np.asarray(out["emotion7"], np.float32)
            o4, o7 = o4 / len(self._models), o7 / len(self._models)
            if self.tta_flip:
                m = chunk.shape[0]
                o4, o7 = (o4[:m] + o4[m:]) / 2, (o7[:m] + o7[m:]) / 2
            p4.append(o4)
            p7.append(o7)
        return np.concatenate(p4), np.concatenate(p7)

    def predict_arrays(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 48, 48, 1) float32 -> calibrated (probs4 (N, 4), probs7 (N, 7)): what Areya serves."""
        head4, probs7 = self.predict_raw(x)
        if head4.shape[0] == 0:
            return head4, probs7
        return self.calibration.serve(head4, probs7)

    def classify(self, crops: Sequence[np.ndarray]) -> list[EmotionResult]:
        if len(crops) == 0:
            return []
        probs4, probs7 = self.predict_arrays(prepare_crops(crops))
        return [EmotionResult(p4, p7) for p4, p7 in zip(probs4, probs7, strict=True)]

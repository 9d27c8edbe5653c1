"""Offline calibration jobs: fit a model's temperatures and 4-class source on validation outputs
(:func:`fit_calibration`) and fit and save a model folder's ``calibration.json`` (:func:`calibrate_model_dir`,
``areya models calibrate``).  What the served model applies is :class:`areya.emotion.calibration.Calibration`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from areya.emotion.calibration import (
    FOUR_CLASS_SOURCES,
    Calibration,
    apply_temperature,
    calibration_figures,
    combine_four,
    fit_temperature,
)
from areya.emotion.dataset import holdout_split, load_dataset
from areya.emotion.dataset import without_copies as drop_copies
from areya.emotion.ensemble import Ensemble, check_same_holdout, served_tta
from areya.emotion.inference import EmotionClassifier
from areya.emotion.schemes import SCHEME4, fer7_to_scheme_labels, four_of_seven
from areya.emotion.train_config import TrainConfig


def fit_calibration(
    head4: np.ndarray, probs7: np.ndarray, labels7: np.ndarray, fitted_on: str, source: str | None = None
) -> Calibration:
    """Fit both temperatures (and, unless ``source`` is given, choose the 4-class source) on validation outputs.

    ``head4``/``probs7``: the model's raw outputs (with the TTA it is served with) for faces labelled
    ``labels7`` (FER order).  The 4-class source is the one with the lowest NLL after calibration on the
    faces of the four classes (accuracy is reported beside it); every figure goes into ``validation``.
    """
    labels7 = np.asarray(labels7)
    labels4 = fer7_to_scheme_labels(labels7, SCHEME4)
    inside = labels4 >= 0
    y4 = labels4[inside]
    t7 = fit_temperature(probs7, labels7)
    val: dict[str, Any] = {
        "faces_7class": int(labels7.size),
        "faces_4class": int(y4.size),
        "7class": {
            "temperature": round(t7, 4),
            "accuracy": round(float((np.argmax(probs7, axis=1) == labels7).mean()), 6),
            "before": calibration_figures(probs7, labels7),
            "after": calibration_figures(apply_temperature(probs7, t7), labels7),
        },
        "4class_sources": {},
    }
    derived = four_of_seven(probs7[inside])
    best: tuple[float, str, float] | None = None
    for name in FOUR_CLASS_SOURCES:
        raw = combine_four(name, head4[inside], derived)
        t4 = fit_temperature(raw, y4)
        after = calibration_figures(apply_temperature(raw, t4), y4)
        val["4class_sources"][name] = {
            "temperature": round(t4, 4),
            "accuracy": round(float((np.argmax(raw, axis=1) == y4).mean()), 6),
            "before": calibration_figures(raw, y4),
            "after": after,
        }
        if (source is None or source == name) and (best is None or after["nll"] < best[0]):
            best = (after["nll"], name, t4)
    assert best is not None
    _, chosen, t4 = best
    val["4class_source_rule"] = "given" if source else "lowest NLL after calibration on the validation part"
    return Calibration(
        temperature7=round(t7, 4),
        temperature4=round(t4, 4),
        four_class_source=chosen,
        fitted_on=fitted_on,
        validation=val,
    )


def calibrate_model_dir(
    model_dir: str | Path, data_dir: str | Path, source: str | None = None, without_copies: bool = False
) -> Calibration:
    """Fit and save ``model_dir``'s calibration on the validation part of ``data_dir``'s Training split.

    The part is the one training held out (same config: split folder, ``val_fraction``, ``seed`` or
    ``split_seed``; every ensemble member must have held out the same part), and the model is run as it is
    served (its ensemble's members averaged, with mirror TTA if its ``ensemble.toml`` or config says so).
    ``without_copies``: less the faces pixel-identical to a face of the training part
    (:func:`~areya.emotion.dataset.without_copies`).
    """
    model_dir = Path(model_dir)
    cfg = TrainConfig.from_file(model_dir / "config.toml")
    ensemble = Ensemble.load(model_dir)
    if ensemble is not None:
        check_same_holdout([Ensemble.member_config(model_dir, m) for m in ensemble.members])
    tta = served_tta(model_dir)
    if cfg.val_fraction <= 0:
        raise ValueError(f"{model_dir}: its config holds out no validation part (val_fraction = 0)")
    rest, val = holdout_split(load_dataset(data_dir, cfg.train_split), cfg.val_fraction, cfg.holdout_seed)
    if without_copies:
        val = drop_copies(val, rest)
    clf = EmotionClassifier.load(model_dir, tta_flip=tta)
    head4, probs7 = clf.predict_raw(val.images.astype(np.float32)[..., None])
    fitted_on = f"{val.report.source} (seed {cfg.holdout_seed}), {len(val)} faces, mirror TTA {'on' if tta else 'off'}"
    if clf.members > 1:
        fitted_on += f", mean of {clf.members} ensemble members"
    cal = fit_calibration(head4, probs7, val.labels7, fitted_on, source=source)
    cal.save(model_dir)
    return cal

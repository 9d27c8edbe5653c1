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
    fit_temperature_offsets,
)
from areya.emotion.dataset import holdout_split, load_dataset
from areya.emotion.dataset import without_copies as drop_copies
from areya.emotion.ensemble import Ensemble, check_same_holdout, served_tta
from areya.emotion.ferplus import (
    FerPlusVotes,
    default_votes_path,
    majority7,
    restrict_to_four,
    usable,
    vote_distribution,
)
from areya.emotion.inference import EmotionClassifier
from areya.emotion.metrics import soft_nll
from areya.emotion.schemes import SCHEME4, fer7_to_scheme_labels, four_of_seven
from areya.emotion.train_config import TrainConfig


def fit_calibration(
    head4: np.ndarray,
    probs7: np.ndarray,
    labels7: np.ndarray,
    fitted_on: str,
    source: str | None = None,
    targets7: np.ndarray | None = None,
    fit_to_targets: bool = True,
    offsets: bool = False,
) -> Calibration:
    """Fit both temperatures (and, unless ``source`` is given, choose the 4-class source) on validation outputs.

    ``head4``/``probs7``: the model's raw outputs (with the TTA it is served with) for faces labelled
    ``labels7`` (FER order; -1: no label, e.g. annotators who tie).  ``targets7`` (N, 7): the faces' target
    distributions (FER+ votes): the temperatures then minimise the cross-entropy against them (the 4-class one
    on the faces whose largest share is one of the four classes, restricted to them), and ``vote_nll`` joins the
    figures; accuracy, ECE and Brier stay against ``labels7``.  The 4-class source is the one with the lowest
    NLL after calibration (against the targets when given); every figure goes into ``validation``.
    ``fit_to_targets`` False: the temperatures minimise the NLL of ``labels7`` (its labelled faces) even with
    ``targets7`` given, which then only add the vote NLL to the figures.  ``offsets``: fit one logit offset per
    class with each temperature (:func:`~areya.emotion.calibration.fit_temperature_offsets`); the figures then
    include the accuracy after calibration, which offsets can change.
    """
    labels7 = np.asarray(labels7)
    if targets7 is not None:
        targets7 = np.asarray(targets7, np.float64)
        if targets7.shape != (labels7.size, 7):
            raise ValueError(f"targets7 must be ({labels7.size}, 7), got {targets7.shape}")
    labelled = labels7 >= 0
    labels4 = np.where(labelled, fer7_to_scheme_labels(np.maximum(labels7, 0), SCHEME4), -1)

    def figures(probs: np.ndarray, labels: np.ndarray, targets: np.ndarray | None) -> dict[str, float]:
        known = labels >= 0
        out = calibration_figures(probs[known], labels[known])
        if targets is not None:
            out["vote_nll"] = round(soft_nll(probs, targets), 6)
        return out

    soft = targets7 is not None and fit_to_targets

    def fit(probs: np.ndarray, labels: np.ndarray, targets: np.ndarray | None) -> tuple[float, list[float]]:
        known = labels >= 0
        if offsets:
            return fit_temperature_offsets(*((probs, targets) if soft else (probs[known], labels[known])))
        return fit_temperature(*((probs, targets) if soft else (probs[known], labels[known]))), []

    def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
        known = labels >= 0
        return round(float((np.argmax(probs[known], axis=1) == labels[known]).mean()), 6)

    t7, b7 = fit(probs7, labels7, targets7)
    served7 = apply_temperature(probs7, t7, b7)
    val: dict[str, Any] = {
        "faces_7class": int(labelled.sum()),
        "7class": {
            "temperature": round(t7, 4),
            "accuracy": accuracy(probs7, labels7),
            "before": figures(probs7, labels7, targets7),
            "after": figures(served7, labels7, targets7),
        },
        "4class_sources": {},
    }
    if offsets:
        val["7class"]["offsets"] = b7
        val["7class"]["accuracy_after"] = accuracy(served7, labels7)
    if targets7 is None:
        inside, targets4 = labels4 >= 0, None
    else:
        dist4, inside = restrict_to_four(targets7)
        targets4 = dist4[inside]
        val["fitted_to"] = (
            "FER+ vote distributions (cross-entropy); figures against the FER+ majority"
            if soft
            else "FER+ majority (faces with a unique majority); vote NLL against the vote distributions"
        )
    y4 = labels4[inside]
    val["faces_4class"] = int((y4 >= 0).sum())
    derived = four_of_seven(probs7[inside])
    best: tuple[float, str, float, list[float]] | None = None
    for name in FOUR_CLASS_SOURCES:
        raw = combine_four(name, head4[inside], derived)
        t4, b4 = fit(raw, y4, targets4)
        served4 = apply_temperature(raw, t4, b4)
        after = figures(served4, y4, targets4)
        val["4class_sources"][name] = {
            "temperature": round(t4, 4),
            "accuracy": accuracy(raw, y4),
            "before": figures(raw, y4, targets4),
            "after": after,
        }
        if offsets:
            val["4class_sources"][name]["offsets"] = b4
            val["4class_sources"][name]["accuracy_after"] = accuracy(served4, y4)
        score = after["vote_nll"] if soft else after["nll"]
        if (source is None or source == name) and (best is None or score < best[0]):
            best = (score, name, t4, b4)
    assert best is not None
    _, chosen, t4, b4 = best
    val["4class_source_rule"] = "given" if source else "lowest NLL after calibration on the validation part"
    return Calibration(
        temperature7=round(t7, 4),
        temperature4=round(t4, 4),
        four_class_source=chosen,
        fitted_on=fitted_on,
        validation=val,
        offsets7=b7,
        offsets4=b4,
    )


# what temperatures are fitted to: the model's own training labels (auto), the FER-2013 folders' labels, the FER+
# majority (ferplus: what the ECE target is scored against) or the FER+ vote distributions (votes)
CALIBRATION_LABELS = ("auto", "fer2013", "ferplus", "votes")


def calibrate_model_dir(
    model_dir: str | Path,
    data_dir: str | Path,
    source: str | None = None,
    without_copies: bool = False,
    labels: str = "auto",
    offsets: bool = False,
) -> Calibration:
    """Fit and save ``model_dir``'s calibration on the validation part of ``data_dir``'s Training split.

    The part is the one training held out (same config: split folder, ``val_fraction``, ``seed`` or
    ``split_seed``; every ensemble member must have held out the same part), and the model is run as it is
    served (its ensemble's members averaged, with mirror TTA if its ``ensemble.toml`` or config says so).
    ``without_copies``: less the faces pixel-identical to a face of the training part
    (:func:`~areya.emotion.dataset.without_copies`).  ``labels``: what the temperatures are fitted to -
    "fer2013" (the folders' labels), "ferplus" (the FER+ majority of each face, faces without a row keeping their
    label, :func:`vote_targets`), "votes" (the FER+ vote distributions) or "auto" (fer2013 or ferplus: what the
    model's config trained on).  With FER+ the vote NLL joins the figures either way.  ``offsets``: fit one
    logit offset per class with each temperature (see :func:`fit_calibration`).
    """
    if labels not in CALIBRATION_LABELS:
        raise ValueError(f"labels must be one of {', '.join(CALIBRATION_LABELS)}, got {labels!r}")
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
    mode = cfg.labels if labels == "auto" else labels
    if mode in ("ferplus", "votes"):
        votes = FerPlusVotes.load(cfg.votes_csv or default_votes_path(data_dir))
        keep, labels7, targets7 = vote_targets(val, votes)
        to = "vote distributions" if mode == "votes" else "majority"
        fitted_on += f"; fitted to the FER+ {to} ({votes.source}) of {int(keep.sum())} faces"
        cal = fit_calibration(
            head4[keep],
            probs7[keep],
            labels7,
            fitted_on,
            source=source,
            targets7=targets7,
            fit_to_targets=mode == "votes",
            offsets=offsets,
        )
    else:
        cal = fit_calibration(head4, probs7, val.labels7, fitted_on, source=source, offsets=offsets)
    if offsets:
        cal.fitted_on += "; temperatures with per-class offsets"
    cal.save(model_dir)
    return cal


def vote_targets(data, votes: FerPlusVotes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept, labels7, targets7) of ``data``'s faces for a calibration against people: a face with a usable
    FER+ row targets its vote distribution and is labelled by its majority (-1 on a tie); a face without a row
    keeps its FER-2013 label (one-hot), as in training; a face whose votes are mostly not-a-face, unknown or
    contempt is left out (``kept`` False)."""
    counts, found = votes.lookup(data)
    ok = found & usable(counts)
    keep = ok | ~found
    dist = vote_distribution(counts).astype(np.float64)
    onehot = np.eye(7)[np.asarray(data.labels7)]
    targets = np.where(ok[:, None], dist, onehot)
    labels7 = np.where(ok, majority7(counts), np.asarray(data.labels7))
    return keep, labels7[keep], targets[keep]

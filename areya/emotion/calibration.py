"""Calibrated probabilities: temperature scaling per head, and the figures that show it worked.

The alert rule and the dashboard read class probabilities, so "0.8 sad" must be right about 80 % of the
time.  A network trained with label smoothing and augmentation is not: its softmax is mis-scaled.  One
temperature per served head (7-class; the 4-class answer) is fitted by minimising the negative log-likelihood
on the validation part held out from the Training split (never on the test split), stored beside the model in
``calibration.json`` and applied by :class:`~areya.emotion.inference.EmotionClassifier` at inference:
``p' = softmax(log(p) / T)``.  Temperature scaling never changes the arg-max, so accuracy is untouched.

Optionally each head also gets one offset per class, fitted with its temperature by the same likelihood
(``p' = softmax(log(p) / T + b)``, "bias-corrected temperature scaling"): it corrects a shift in class priors
between what the network was trained on and what it is read against - e.g. a network trained on annotators'
vote distributions, read against their majority.  Offsets do move the arg-max, so they change accuracy and
per-class recall; they are fitted only on the validation part, like the temperatures.

The same file says where the served 4-class answer comes from (``four_class_source``): the 4-class head
(``head``), the 7-class head restricted to angry/happy/neutral/sad (``seven``), or their mean (``mean``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from areya.emotion.schemes import four_of_seven

CALIBRATION_FILE = "calibration.json"
FOUR_CLASS_SOURCES = ("head", "seven", "mean")
ECE_BINS = 15
_EPS = 1e-7


def apply_temperature(probs: np.ndarray, temperature: float, offsets: Sequence[float] = ()) -> np.ndarray:
    """Softmax probabilities -> the same model's probabilities at ``temperature`` (1 = unchanged), plus one
    logit offset per class if ``offsets`` is given (empty: none)."""
    probs = np.asarray(probs, np.float64)
    if (temperature == 1.0 and not len(offsets)) or probs.size == 0:
        return probs.astype(np.float32)
    logits = np.log(np.clip(probs, _EPS, 1.0)) / temperature
    if len(offsets):
        logits = logits + np.asarray(offsets, np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    probs = np.asarray(probs, np.float64)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], _EPS, 1.0))))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: equal-width confidence bins, |accuracy - mean confidence| weighted by bin size."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels)
    if labels.size == 0:
        return float("nan")
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    # bin i holds confidences in (i/bins, (i+1)/bins]; confidence 0 would fall in bin 0
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = idx == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: mean over faces of sum_k (p_k - [k = label])^2 (0 best, 2 worst)."""
    probs = np.asarray(probs, np.float64)
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per confidence bin: its range, face count, mean confidence and accuracy (for the reliability diagram)."""
    probs = np.asarray(probs, np.float64)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        in_bin = idx == b
        n = int(in_bin.sum())
        out.append(
            {
                "lo": b / bins,
                "hi": (b + 1) / bins,
                "n": n,
                "confidence": float(conf[in_bin].mean()) if n else float("nan"),
                "accuracy": float(correct[in_bin].mean()) if n else float("nan"),
            }
        )
    return out


def calibration_figures(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {
        "ece": round(expected_calibration_error(probs, labels), 6),
        "brier": round(brier_score(probs, labels), 6),
        "nll": round(negative_log_likelihood(probs, labels), 6),
    }


def _log_probs_and_targets(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log-probabilities, one target distribution per face) for a fit: ``labels`` are (N,) class indices or
    (N, K) target distributions matching ``probs``."""
    labels = np.asarray(labels)
    if labels.shape[0] == 0:
        raise ValueError("cannot fit a temperature on no faces")
    logp = np.log(np.clip(np.asarray(probs, np.float64), _EPS, 1.0))
    if labels.ndim == 2:
        if labels.shape != logp.shape:
            raise ValueError(f"target distributions {labels.shape} do not match the probabilities {logp.shape}")
        return logp, labels.astype(np.float64)
    targets = np.zeros_like(logp)
    targets[np.arange(labels.size), labels] = 1.0
    return logp, targets


def fit_temperature(probs: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """The temperature in [lo, hi] minimising the NLL of ``probs`` (golden-section search on log T).

    ``labels``: (N,) class indices, or (N, K) target distributions (e.g. annotators' votes), whose
    cross-entropy is minimised instead.  Either NLL of temperature-scaled softmax is convex in 1/T, hence
    unimodal in log T: the search finds the optimum to well under 0.1 % of T.
    """
    logp, targets = _log_probs_and_targets(probs, labels)

    def nll(log_t: float) -> float:
        z = logp / math.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - (targets * z).sum(axis=1)))

    a, b = math.log(lo), math.log(hi)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(c), nll(d)
    while b - a > 1e-5:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(d)
    return float(math.exp((a + b) / 2))


def fit_temperature_offsets(probs: np.ndarray, labels: np.ndarray) -> tuple[float, list[float]]:
    """The temperature and per-class logit offsets minimising the NLL of ``softmax(log(p) / T + b)``.

    ``labels``: (N,) class indices or (N, K) target distributions, as for :func:`fit_temperature`.  The NLL is
    convex in (1/T, b), so Newton's method with a backtracking line search finds the optimum; the offsets are
    returned centred (softmax ignores a common shift).
    """
    logp, targets = _log_probs_and_targets(probs, labels)
    n, k = logp.shape

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * logp + theta[1:]
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        return float(np.mean(lse - (targets * z).sum(axis=1))), np.exp(z - lse[:, None])

    # parameters (a = 1/T, b_1..b_K); a ridge on b worth about one face fixes the common shift and keeps a
    # class that is rare or absent in a small validation part from drifting without end
    theta = np.concatenate([[1.0 / fit_temperature(probs, labels)], np.zeros(k)])
    ridge = 1.0 / n
    jac = np.concatenate([logp[:, :, None], np.broadcast_to(np.eye(k), (n, k, k))], axis=2)  # dz/dtheta, fixed
    value, p = nll(theta)
    for _ in range(100):
        r = p - targets
        grad = np.concatenate([[np.mean((r * logp).sum(axis=1))], r.mean(axis=0)]) + ridge * np.r_[0.0, theta[1:]]
        cov = np.einsum("nk,kl->nkl", p, np.eye(k)) - np.einsum("nk,nl->nkl", p, p)
        hess = np.einsum("nki,nkl,nlj->ij", jac, cov, jac) / n + ridge * np.diag(np.r_[0.0, np.ones(k)])
        step = np.linalg.solve(hess + 1e-9 * np.eye(k + 1), grad)
        t = 1.0
        while True:
            cand = theta - t * step
            if cand[0] > 0:
                cand_value, cand_p = nll(cand)
                if cand_value <= value - 1e-4 * t * float(grad @ step):
                    break
            t /= 2
            if t < 1e-8:
                cand, cand_value, cand_p = theta, value, p
                break
        converged = value - cand_value < 1e-10
        theta, value, p = cand, cand_value, cand_p
        if converged:
            break
    offsets = theta[1:] - theta[1:].mean()
    return float(1.0 / theta[0]), [round(float(b), 4) for b in offsets]


def combine_four(source: str, head4: np.ndarray, derived4: np.ndarray) -> np.ndarray:
    """The served 4-class probabilities (before temperature) from the 4-class head and the 7-class head."""
    if source == "head":
        return np.asarray(head4, np.float32)
    if source == "seven":
        return np.asarray(derived4, np.float32)
    if source == "mean":
        return ((np.asarray(head4, np.float64) + np.asarray(derived4, np.float64)) / 2).astype(np.float32)
    raise ValueError(f"four_class_source must be one of {', '.join(FOUR_CLASS_SOURCES)}, got {source!r}")


@dataclass
class Calibration:
    """What is applied to a model's raw outputs at inference, and the validation figures behind it."""

    temperature7: float = 1.0
    temperature4: float = 1.0
    four_class_source: str = "head"
    fitted_on: str = ""
    # one logit offset per class of the 7-class head / the served 4-class answer (empty: temperatures only)
    offsets7: list[float] = field(default_factory=list)
    offsets4: list[float] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.four_class_source not in FOUR_CLASS_SOURCES:
            raise ValueError(
                f"four_class_source must be one of {', '.join(FOUR_CLASS_SOURCES)}, got {self.four_class_source!r}"
            )
        for name in ("temperature7", "temperature4"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < 100):
                raise ValueError(f"{name} must be a number in (0, 100), got {value!r}")
        for name, size in (("offsets7", 7), ("offsets4", 4)):
            value = getattr(self, name)
            if not isinstance(value, list) or (
                value
                and (
                    len(value) != size
                    or not all(isinstance(v, int | float) and math.isfinite(v) and abs(v) < 20 for v in value)
                )
            ):
                raise ValueError(f"{name} must be empty or {size} numbers in (-20, 20), got {value!r}")

    @classmethod
    def identity(cls) -> Calibration:
        return cls()

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / CALIBRATION_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> Calibration:
        """``calibration.json`` of a model folder; identity (and no 4-class mixing) if the model has none."""
        path = Path(model_dir) / CALIBRATION_FILE
        if not path.is_file():
            return cls.identity()
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: invalid calibration file: {exc}") from None

    def serve(self, head4: np.ndarray, probs7: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (4-class head, 7-class head) probabilities -> the calibrated (4-class answer, 7-class)."""
        four = combine_four(self.four_class_source, head4, four_of_seven(probs7))
        return (
            apply_temperature(four, self.temperature4, self.offsets4),
            apply_temperature(probs7, self.temperature7, self.offsets7),
        )

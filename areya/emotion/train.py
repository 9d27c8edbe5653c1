"""Train the two-headed emotion network from a config and a FER-2013 directory.

Seeded, resumable (the run directory keeps a backup of weights, optimizer
state and epoch after every epoch; running the same command again continues
from there), and it reports progress per epoch.  The final weights (no
checkpoint selection on the test split) are written with the config to the
output directory, ready for :mod:`areya.emotion.model_card`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from areya.emotion.dataset import FaceDataset, holdout_split, load_dataset
from areya.emotion.precision import FLOAT32, MIXED, accelerator_present, choose_policy, cpu_has_bf16
from areya.emotion.schemes import SCHEME4, SCHEME7, fer7_to_scheme_labels
from areya.emotion.swa import AVERAGE_FILE, WeightAverage, averaging_callback, recompute_batchnorm, start_from
from areya.emotion.train_config import TrainConfig

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.toml"
HISTORY_FILE = "history.json"


def class_weights(labels7: np.ndarray, power: float) -> np.ndarray:
    """Per-class weights (FER order) ``(n_c / mean n)^-power`` over the classes present, scaled so the faces'
    weights average 1 (a class without faces gets 0); ``power`` 0: all ones."""
    counts = np.bincount(labels7, minlength=SCHEME7.size).astype(np.float64)
    if power == 0 or labels7.size == 0:
        return np.ones(SCHEME7.size, np.float32)
    present = counts > 0
    weights = np.zeros(SCHEME7.size)
    weights[present] = (counts[present] / counts[present].mean()) ** -power
    weights /= (weights * counts).sum() / counts.sum()
    return weights.astype(np.float32)


def training_targets(
    labels7: np.ndarray, smoothing: float, weights7: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """One-hot targets for both heads, label-smoothed.

    Images outside the 4-class scheme get an all-zero 4-class row, so they add
    nothing to that head's cross-entropy: the 4-class head learns from angry,
    happy, neutral (relaxed) and sad faces only.  ``weights7`` (per class, :func:`class_weights`) scales each
    face's 7-class row: cross-entropy is linear in the target, so that face's 7-class loss (and, with the row
    cross-entropy ``masked_categorical_crossentropy`` that weighted training uses, its gradient) is scaled alike.
    """
    from areya.emotion.network import OUTPUT4, OUTPUT7

    n = labels7.shape[0]
    y7 = np.full((n, SCHEME7.size), smoothing / SCHEME7.size, np.float32)
    y7[np.arange(n), labels7] += 1.0 - smoothing
    if weights7 is not None:
        y7 *= np.asarray(weights7, np.float32)[labels7][:, None]
    labels4 = fer7_to_scheme_labels(labels7, SCHEME4)
    inside = labels4 >= 0
    y4 = np.zeros((n, SCHEME4.size), np.float32)
    y4[inside] = smoothing / SCHEME4.size
    y4[np.flatnonzero(inside), labels4[inside]] += 1.0 - smoothing
    return {OUTPUT7: y7, OUTPUT4: y4}


def as_model_input(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 -> (N, 48, 48, 1) float32 in [0, 255]."""
    return images.astype(np.float32)[..., None]


EPOCH_SECONDS_FILE = "epoch_seconds.json"
PROGRESS_SECONDS = 120.0  # a progress line within an epoch this often (an epoch of FER-2013 takes minutes on a CPU)
EPOCH_LOGS_FILE = "epoch_logs.json"


def epoch_seconds(clock_file: Path) -> dict[str, float]:
    """The run directory's record of seconds per finished epoch ({} when there is none yet)."""
    return json.loads(clock_file.read_text()) if clock_file.is_file() else {}


def remember_epoch(record_file: Path, epoch: int, value: object) -> None:
    """Keep ``value`` for finished ``epoch`` (0-based) in a run directory's record, by epoch number, across resumed
    runs: an epoch trained again after a crash replaces its entry, and the first epoch (which only finishes in a
    fresh run) forgets an earlier training's epochs."""
    record = json.loads(record_file.read_text()) if epoch > 0 and record_file.is_file() else {}
    record[str(epoch + 1)] = value
    record_file.write_text(json.dumps(record, indent=0))


def full_history(logs_file: Path, epochs: int, this_run: dict[str, list[float]]) -> dict[str, list[float]]:
    """Every epoch's metrics of a training that may have been resumed: the run directory's per-epoch record when it
    holds epochs 1..``epochs`` with the same metrics as this run's ``model.fit`` history, else that history (which
    covers only the epochs this run trained)."""
    logged = json.loads(logs_file.read_text()) if logs_file.is_file() else {}
    rows = [logged.get(str(e)) for e in range(1, epochs + 1)]
    if all(isinstance(row, dict) and set(this_run) <= set(row) for row in rows):
        return {k: [float(row[k]) for row in rows] for k in this_run}
    return {k: [float(v) for v in vals] for k, vals in this_run.items()}


class _EpochReport:
    """Keras callback (built lazily so importing this module needs no keras)."""

    @staticmethod
    def make(
        total_epochs: int,
        report: Callable[[str], None],
        clock_file: Path | None = None,
        logs_file: Path | None = None,
        batch_size: int = 0,
        progress_seconds: float | None = None,
    ):
        """``clock_file`` / ``logs_file``: each finished epoch's seconds / metrics, kept across resumed runs
        (:func:`remember_epoch`), so a model's training time and curves survive resuming.  Within an epoch, a
        progress line (indented, so it never starts with "epoch") every ``progress_seconds`` of training
        [:data:`PROGRESS_SECONDS`]."""
        import keras

        every = PROGRESS_SECONDS if progress_seconds is None else progress_seconds

        class EpochReport(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self._t0 = self._last = time.monotonic()
                self._epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                now = time.monotonic()
                if every <= 0 or now - self._last < every:
                    return
                self._last = now
                steps = self.params.get("steps") if self.params else None
                loss = (logs or {}).get("loss")
                report(
                    f"  epoch {self._epoch + 1}/{total_epochs}: batch {batch + 1}"
                    + (f"/{steps}" if steps else "")
                    + (f", {(batch + 1) * batch_size / (now - self._t0):.0f} images/s" if batch_size else "")
                    + (f", loss {float(loss):.4f}" if loss is not None else "")
                )

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                took = time.monotonic() - self._t0
                if clock_file is not None:
                    remember_epoch(clock_file, epoch, round(took, 1))
                if logs_file is not None:
                    remember_epoch(logs_file, epoch, {k: float(v) for k, v in logs.items()})
                acc7 = logs.get("emotion7_accuracy")
                vacc7 = logs.get("val_emotion7_accuracy")
                vacc4 = logs.get("val_emotion4_accuracy")
                parts = [f"epoch {epoch + 1}/{total_epochs}", f"{took:.0f}s", f"loss {logs.get('loss', math.nan):.4f}"]
                if acc7 is not None:
                    parts.append(f"train acc7 {acc7:.4f}")
                if vacc7 is not None:
                    parts.append(f"val acc7 {vacc7:.4f}")
                if vacc4 is not None:
                    parts.append(f"val acc4(all rows) {vacc4:.4f}")
                report(" | ".join(parts))

        return EpochReport()


def train(
    cfg: TrainConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    run_dir: str | Path | None = None,
    report: Callable[[str], None] = print,
    train_data: FaceDataset | None = None,
    val_data: FaceDataset | None = None,
    extra_callbacks: list | None = None,
    precision: str = "auto",
) -> Path:
    """Train ``cfg`` on ``data_dir/<train_split>`` less its held-out validation part; returns the model path.

    ``val_data`` given (tests) replaces the held-out part.  ``precision``: "auto" trains in bfloat16 mixed
    precision when the config asks for it and the hardware computes bfloat16 (:mod:`areya.emotion.precision`),
    "mixed" / "float32" force one; the policy used is reported and kept in ``history.json``.
    """
    import keras

    # an unknown mode fails here, before the data is read
    choice = choose_policy(cfg.mixed_precision, precision, accelerator=accelerator_present(), cpu_bf16=cpu_has_bf16())
    out_dir = Path(out_dir)
    run_dir = Path(run_dir) if run_dir else out_dir / ".run"
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)

    if train_data is None:
        train_data = load_dataset(data_dir, cfg.train_split)
    report(train_data.report.summary())
    if len(train_data) == 0:
        raise ValueError(f"no training images found under {data_dir}")
    if val_data is None and cfg.val_fraction > 0:
        train_data, val_data = holdout_split(train_data, cfg.val_fraction, cfg.holdout_seed)
        report(f"{train_data.report.summary()}; {val_data.report.summary()}")
    soft = None
    if cfg.labels == "ferplus":  # after the split: the validation part is the same faces whichever labels train
        train_data, val_data, soft = _ferplus_targets(cfg, data_dir, train_data, val_data, report)

    report(f"dtype policy {choice.policy}: {choice.reason}")
    if choice.policy != (MIXED if cfg.mixed_precision else FLOAT32):
        log.warning("training %s in %s: %s", cfg.name, choice.policy, choice.reason)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(choice.policy)
    try:
        return _fit(cfg, train_data, val_data, out_dir, run_dir, report, extra_callbacks, soft)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _ferplus_targets(
    cfg: TrainConfig,
    data_dir: str | Path,
    train_data: FaceDataset,
    val_data: FaceDataset | None,
    report: Callable[[str], None],
) -> tuple[FaceDataset, FaceDataset | None, tuple[np.ndarray, np.ndarray | None]]:
    """The training (and validation) part less the faces the FER+ vote rule drops, and their 7-class targets
    (:mod:`areya.emotion.ferplus`)."""
    from areya.emotion.ferplus import FerPlusVotes, dataset_targets, default_votes_path

    votes = FerPlusVotes.load(cfg.votes_csv or default_votes_path(data_dir))
    report(f"FER+ votes from {votes.source} ({len(votes.votes)} rows), weight {cfg.ferplus_weight}")
    train_data, train_targets, line = dataset_targets(train_data, votes, cfg.ferplus_weight)
    report(line)
    val_targets = None
    if val_data is not None and len(val_data):
        # the validation figures during training are against the votes alone (the FER+ test labels' rule)
        val_data, val_targets, line = dataset_targets(val_data, votes, 1.0)
        report(line)
    return train_data, val_data, (train_targets, val_targets)


def _online_teacher(cfg: TrainConfig, labels7: np.ndarray, report: Callable[[str], None]):
    """``relabel`` for :func:`make_training_batches`: the teacher model (as served, without mirror TTA: the
    augmentation mirrors) labels each augmented batch, mixed with the hard targets as ``distilled_targets`` does."""
    from areya.emotion.distill import distilled_targets
    from areya.emotion.inference import EmotionClassifier

    teacher = EmotionClassifier.load(cfg.teacher_model, tta_flip=False)
    report(
        f"distilling from {teacher.model_version} ({cfg.teacher_model}, {teacher.members} member(s)) on every "
        f"augmented batch: weight {cfg.distill_weight}, temperature {cfg.distill_temperature}"
    )

    def relabel(faces: np.ndarray, rows: np.ndarray, targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        _, probs7 = teacher.predict_raw(faces)
        return distilled_targets(targets, labels7[rows], probs7, cfg.distill_weight, cfg.distill_temperature)

    return relabel


def compile_for_training(model, cfg: TrainConfig, steps_per_epoch: int) -> None:
    """Compile ``model`` with ``cfg``'s optimizer (its schedule over ``steps_per_epoch``), losses and loss weights."""
    import keras

    from areya.emotion.network import OUTPUT4, OUTPUT7, masked_categorical_crossentropy

    # weighted 7-class rows do not sum to 1: Keras's fused cross-entropy would then get the gradient wrong (see
    # masked_categorical_crossentropy; two weighted runs diverged with it), so they take the row cross-entropy
    loss7 = masked_categorical_crossentropy if cfg.class_weight_power else keras.losses.CategoricalCrossentropy()
    model.compile(
        optimizer=_optimizer(cfg, steps_per_epoch),
        loss={OUTPUT7: loss7, OUTPUT4: masked_categorical_crossentropy},
        loss_weights={OUTPUT7: cfg.loss_weight_7, OUTPUT4: cfg.loss_weight_4},
        metrics={OUTPUT7: ["accuracy"], OUTPUT4: ["accuracy"]},
    )


def learning_rate_schedule(cfg: TrainConfig, steps_per_epoch: int):
    """A linear warm-up from a tenth of ``cfg.learning_rate`` to it, then cosine decay to 0 or (``lr_schedule =
    "constant"``) no decay."""
    import keras

    total_steps = steps_per_epoch * cfg.epochs
    warmup = int(steps_per_epoch * cfg.warmup_epochs)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.learning_rate * 0.1,
        decay_steps=max(1, total_steps - warmup),
        alpha=1.0 if cfg.lr_schedule == "constant" else 0.0,  # alpha: the floor, as a fraction of the peak
        warmup_target=cfg.learning_rate,
        warmup_steps=warmup,
    )


def _optimizer(cfg: TrainConfig, steps_per_epoch: int):
    import keras

    schedule = learning_rate_schedule(cfg, steps_per_epoch)
    clip = {"global_clipnorm": cfg.global_clipnorm} if cfg.global_clipnorm > 0 else {}
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=schedule,
            momentum=cfg.momentum,
            nesterov=True,
            weight_decay=cfg.weight_decay,
            use_ema=cfg.use_ema,
            ema_momentum=0.999,
            **clip,
        )
    return keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=cfg.weight_decay, use_ema=cfg.use_ema, ema_momentum=0.999, **clip
    )


def _served_copy(model):
    """The trained network without its optimizer state (Adam moments and EMA copies would triple the file)."""
    import keras

    served = keras.models.clone_model(model)
    served.set_weights(model.get_weights())
    return served


def _swap_in_average(
    model,
    average: WeightAverage,
    train_data: FaceDataset,
    validation: tuple[np.ndarray, dict[str, np.ndarray]] | None,
    cfg: TrainConfig,
    report: Callable[[str], None],
) -> dict[str, object]:
    """Put the averaged weights in ``model``, recompute its BatchNorm statistics on the (unaugmented) training
    faces, and report the averaged network's validation accuracy (no TTA)."""
    if average.count != cfg.swa_epochs:
        raise RuntimeError(f"weight average holds {average.count} epochs, expected {cfg.swa_epochs}: {average.path}")
    model.set_weights(average.mean())
    recompute_batchnorm(model, train_data.images, 256, as_model_input)
    summary: dict[str, object] = {"epochs": list(average.epochs)}
    if validation is not None:
        from areya.emotion.network import OUTPUT4, OUTPUT7

        probs = model.predict(validation[0], batch_size=256, verbose=0)
        labels7 = validation[1][OUTPUT7].argmax(axis=1)
        labels4 = fer7_to_scheme_labels(labels7, SCHEME4)
        inside = labels4 >= 0
        summary["val_emotion7_accuracy"] = float((np.asarray(probs[OUTPUT7]).argmax(1) == labels7).mean())
        summary["val_emotion4_accuracy"] = float(
            (np.asarray(probs[OUTPUT4])[inside].argmax(1) == labels4[inside]).mean() if inside.any() else float("nan")
        )
    line = f"weight average of epochs {average.epochs[0]}-{average.epochs[-1]} ({average.count}), BatchNorm recomputed"
    if "val_emotion7_accuracy" in summary:
        line += f" | val acc7 {summary['val_emotion7_accuracy']:.4f}"
        line += f" | val acc4 (4-class faces) {summary['val_emotion4_accuracy']:.4f}"
    report(line)
    return summary


def _fit(
    cfg: TrainConfig,
    train_data: FaceDataset,
    val_data: FaceDataset | None,
    out_dir: Path,
    run_dir: Path,
    report: Callable[[str], None],
    extra_callbacks: list | None,
    soft: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> Path:
    """``soft``: the training and validation faces' 7-class target distributions (FER+ votes) instead of their
    labels."""
    import keras

    from areya.emotion.augment import make_training_batches
    from areya.emotion.network import build_network

    keras.utils.set_random_seed(cfg.seed)
    model = build_network(cfg)  # augmentation happens in the batches, so the trained model is the served one
    if cfg.init_model:
        start_from(model, cfg.init_model)
        report(f"fine-tuning from {cfg.init_model}")
    elif cfg.backbone == "faceres":
        from areya.emotion.backbones import load_faceres_weights

        if not cfg.backbone_weights:
            raise ValueError("backbone = 'faceres' needs backbone_weights (the faceres-deep.json file)")
        n = load_faceres_weights(model, cfg.backbone_weights)
        report(f"backbone: {n} layers from {cfg.backbone_weights}")
    compile_for_training(model, cfg, math.ceil(len(train_data) / cfg.batch_size))
    if soft is None:
        weights7 = class_weights(train_data.labels7, cfg.class_weight_power) if cfg.class_weight_power else None
    else:
        from areya.emotion.ferplus import soft_class_weights, soft_training_targets

        weights7 = soft_class_weights(soft[0], cfg.class_weight_power) if cfg.class_weight_power else None
    if weights7 is not None:
        report(
            "7-class loss weights: " + ", ".join(f"{c} {w:.2f}" for c, w in zip(SCHEME7.classes, weights7, strict=True))
        )
    if soft is None:
        targets = training_targets(train_data.labels7, cfg.label_smoothing, weights7)
    else:
        targets = soft_training_targets(soft[0], cfg.label_smoothing, weights7)
    relabel = None
    if cfg.distill_weight > 0 and cfg.teacher_model:
        relabel = _online_teacher(cfg, train_data.labels7, report)
    elif cfg.distill_weight > 0:
        from areya.emotion.distill import TeacherLabels, distilled_targets

        teacher = TeacherLabels.load(cfg.teacher_labels)
        _, teacher7 = teacher.lookup(train_data.images)
        targets = distilled_targets(targets, train_data.labels7, teacher7, cfg.distill_weight, cfg.distill_temperature)
        report(
            f"distilling from {teacher.teacher} ({cfg.teacher_labels}): weight {cfg.distill_weight}, "
            f"temperature {cfg.distill_temperature}"
        )
    batches, epoch_setter = make_training_batches(train_data.images, targets, cfg, relabel)
    validation = None
    if val_data is not None and len(val_data):
        val_targets = (
            training_targets(val_data.labels7, 0.0)
            if soft is None or soft[1] is None
            else soft_training_targets(soft[1], 0.0)
        )
        validation = (as_model_input(val_data.images), val_targets)

    (run_dir / CONFIG_FILE).write_text(cfg.to_toml())
    average = WeightAverage(run_dir / AVERAGE_FILE) if cfg.swa_epochs else None
    callbacks = [
        epoch_setter,
        # before BackupAndRestore: an epoch whose weights were averaged but not backed up is trained again and
        # replaces its entry in the average
        *([averaging_callback(average, cfg.epochs - cfg.swa_epochs)] if average is not None else []),
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=True),
        _EpochReport.make(
            cfg.epochs, report, run_dir / EPOCH_SECONDS_FILE, run_dir / EPOCH_LOGS_FILE, batch_size=cfg.batch_size
        ),
        *(extra_callbacks or []),
    ]
    t0 = time.monotonic()
    history = model.fit(
        batches,
        epochs=cfg.epochs,
        validation_data=validation,
        validation_batch_size=256,
        callbacks=callbacks,
        verbose=0,
    )
    took = time.monotonic() - t0
    # fit() swaps the EMA weights in at the end when use_ema is set.
    swa = _swap_in_average(model, average, train_data, validation, cfg, report) if average is not None else None
    model_path = out_dir / MODEL_FILE
    _served_copy(model).save(model_path)
    out_config = out_dir / CONFIG_FILE
    if not out_config.exists() or TrainConfig.from_file(out_config) != cfg:  # keep a commented identical config
        out_config.write_text(cfg.to_toml())
    (out_dir / HISTORY_FILE).write_text(
        json.dumps(
            {
                "epochs": cfg.epochs,
                "train_images": len(train_data),
                "val_images": len(val_data) if val_data is not None else 0,
                "dtype_policy": keras.mixed_precision.global_policy().name,
                "train_seconds_this_run": round(took, 1),
                # every epoch of every resumed run (the epochs' own time: no start-up, no calibration)
                "train_seconds_total": round(sum(epoch_seconds(run_dir / EPOCH_SECONDS_FILE).values()), 1),
                # every epoch of every resumed run, not only this run's
                "history": full_history(run_dir / EPOCH_LOGS_FILE, cfg.epochs, history.history),
                **({"swa": swa} if swa is not None else {}),
            },
            indent=2,
        )
    )
    report(f"wrote {model_path} ({model_path.stat().st_size / 1e6:.2f} MB) after {took / 60:.1f} min")
    return model_path

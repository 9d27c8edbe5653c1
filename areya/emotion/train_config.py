"""The training configuration of one emotion model (one TOML file per shipped model)."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class TrainConfig:
    name: str = "areya-fer"
    seed: int = 1337
    # input: served faces are blurred with this sigma (px) before the network, to match a blurred
    # training split (0 = no blur); the network averages NxN pixels first when input_downsample = N (48 -> 24 or 16).
    input_blur_sigma: float = 0.0
    input_downsample: int = 1
    standardize: bool = False  # per-image zero mean / unit variance instead of a fixed rescale
    # architecture
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    convs_per_stage: list[int] = field(default_factory=lambda: [1, 2, 2, 2])
    pooling: str = "gap"  # "gap" (global average) or "flatten" before the embedding
    embed_units: int = 256
    dropout: float = 0.4
    head_dropout: float = 0.5
    # optimisation
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05  # AdamW, decoupled (scaled by the learning rate)
    label_smoothing: float = 0.1
    use_ema: bool = True
    loss_weight_7: float = 1.0
    loss_weight_4: float = 1.0
    # augmentation
    flip: bool = True
    translate: float = 0.1
    rotate_degrees: float = 12.0
    zoom: float = 0.12
    contrast: float = 0.3
    brightness: float = 0.2
    # evaluation
    tta_flip: bool = True
    # data: folders under the data directory
    train_split: str = "train"
    val_split: str = "publictest"

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
        if self.pooling not in ("gap", "flatten"):
            raise ValueError("pooling must be 'gap' or 'flatten'")
        if self.input_downsample not in (1, 2, 3):
            raise ValueError("input_downsample must be 1, 2 or 3")
        if not 0 <= self.input_blur_sigma <= 10:
            raise ValueError("input_blur_sigma must be in [0, 10]")
        if not 0 < self.learning_rate < 1:
            raise ValueError("learning_rate must be in (0, 1)")
        for name in ("dropout", "head_dropout", "label_smoothing"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_toml(self) -> str:
        lines = []
        for key, value in self.to_dict().items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = f'"{value}"'
            else:
                text = repr(value)
            lines.append(f"{key} = {text}")
        return "\n".join(lines) + "\n"

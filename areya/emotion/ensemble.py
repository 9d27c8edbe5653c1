"""A model folder's ensemble: :class:`Ensemble` (its ``ensemble.toml``: the member networks, mirror TTA, the
runtime), the member files' names, and how the folder is served (:func:`served_tta`).  Plain file handling, below
both the serving path (:mod:`areya.emotion.inference`, :mod:`areya.emotion.lite`) and the offline jobs that change
a folder (:mod:`areya.emotion.members`, :mod:`areya.emotion.calibrate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MODEL_FILE = "model.keras"
ENSEMBLE_FILE = "ensemble.toml"
INT8_SUFFIX = ".int8.tflite"
RUNTIMES = ("keras", "int8")


@dataclass(frozen=True)
class Ensemble:
    """A model folder's ``ensemble.toml``: the member networks whose probabilities are averaged (before the
    folder's calibration, which is fitted on that average) and whether the faces are also mirrored.

    ``members`` are file names in the folder, ``model.keras`` first; each member ``X.keras`` has its training
    config beside it (``config.toml`` for ``model.keras``, ``X.toml`` for the others).  ``runtime``: "keras"
    serves the ``.keras`` files; "int8" serves each member's ``X.int8.tflite`` (written by ``areya models
    quantize``, see :mod:`areya.emotion.lite`) instead.
    """

    members: tuple[str, ...]
    tta_flip: bool
    runtime: str = "keras"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")

    @classmethod
    def load(cls, model_dir: Path, check_int8: bool = True) -> Ensemble | None:
        """``model_dir``'s ensemble (None without an ``ensemble.toml``); ValueError for a broken file, or, with
        ``check_int8``, for runtime "int8" with a member's ``.int8.tflite`` missing."""
        import tomllib

        path = model_dir / ENSEMBLE_FILE
        if not path.is_file():
            return None
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from None
        members, tta, runtime = data.get("members"), data.get("tta_flip", True), data.get("runtime", "keras")
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise ValueError(f"{path}: members must be a non-empty list of model file names")
        if not isinstance(tta, bool):
            raise ValueError(f"{path}: tta_flip must be true or false")
        for name in members:
            if Path(name).name != name or not name.endswith(".keras") or not (model_dir / name).is_file():
                raise ValueError(f"{path}: member {name!r} is not a .keras file in {model_dir}")
        if len(set(members)) != len(members):
            raise ValueError(f"{path}: a member is listed twice")
        if runtime not in RUNTIMES:
            raise ValueError(f"{path}: runtime must be {' or '.join(f'{r!r}' for r in RUNTIMES)}, got {runtime!r}")
        if runtime == "int8" and check_int8:
            missing = [f.name for f in (cls.member_int8(model_dir, m) for m in members) if not f.is_file()]
            if missing:
                raise ValueError(
                    f'{path}: runtime = "int8" but {", ".join(missing)} not found in {model_dir}; '
                    f"run: areya models quantize {model_dir}"
                )
        return cls(tuple(members), tta, runtime)

    def save(self, model_dir: Path) -> Path:
        path = model_dir / ENSEMBLE_FILE
        listed = ", ".join(f'"{m}"' for m in self.members)
        runtime = ""
        if self.runtime != "keras":  # the default is left out: a keras ensemble's file stays as it was
            runtime = f'# each member X.keras is served as X{INT8_SUFFIX}\nruntime = "{self.runtime}"\n'
        path.write_text(
            "# The served model: these networks' probabilities are averaged, then calibrated (calibration.json is\n"
            "# fitted on the average).  tta_flip: each face is also classified mirrored and averaged.\n"
            f"members = [{listed}]\ntta_flip = {'true' if self.tta_flip else 'false'}\n{runtime}"
        )
        return path

    @staticmethod
    def member_config(model_dir: Path, member: str) -> Path:
        return model_dir / ("config.toml" if member == MODEL_FILE else f"{Path(member).stem}.toml")

    @staticmethod
    def member_history(model_dir: Path, member: str) -> Path:
        return model_dir / ("history.json" if member == MODEL_FILE else f"{Path(member).stem}.history.json")

    @staticmethod
    def member_int8(model_dir: Path, member: str) -> Path:
        """The member's int8 TensorFlow Lite file: ``X.int8.tflite`` for ``X.keras``."""
        return model_dir / f"{Path(member).stem}{INT8_SUFFIX}"


def check_same_holdout(configs: Sequence[Path]) -> None:
    """Ensemble members must have held out the same validation part of the same split (the ensemble is calibrated
    and its TTA chosen on it, so no member may have trained on it): ValueError naming the first that differs."""
    from areya.emotion.train_config import TrainConfig

    def key(cfg: TrainConfig) -> tuple:
        return (cfg.train_split, cfg.val_fraction, cfg.holdout_seed)

    first = TrainConfig.from_file(configs[0])
    for path in configs[1:]:
        other = TrainConfig.from_file(path)
        if key(other) != key(first):
            raise ValueError(
                f"{path}: holds out (split, fraction, seed) = {key(other)}, but {configs[0]} holds out {key(first)}; "
                "set split_seed so that every member keeps the same validation part"
            )


def served_tta(model_dir: Path) -> bool:
    """Whether the model in ``model_dir`` is served with mirror TTA: its ``ensemble.toml`` says, else the
    training config's ``tta_flip`` (default true)."""
    ensemble = Ensemble.load(model_dir)
    return ensemble.tta_flip if ensemble is not None else config_tta(model_dir / "config.toml")


def config_tta(config: Path) -> bool:
    """A training config's ``tta_flip`` (true when there is no config)."""
    from areya.emotion.train_config import TrainConfig

    return TrainConfig.from_file(config).tta_flip if config.is_file() else True

"""Offline: add a network that ``areya train`` wrote to a model folder's ensemble (``areya models add-member``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from areya.emotion.ensemble import MODEL_FILE, Ensemble, check_same_holdout, served_tta


def add_member(model_dir: Path, trained_dir: Path, tta_flip: bool | None = None) -> str:
    """Copy the model ``areya train`` wrote to ``trained_dir`` (model.keras, config.toml, history.json) into
    ``model_dir`` as its next ensemble member and list it in ``ensemble.toml``; returns the member's file name.
    An ensemble served as int8 stays so: the new member's ``.int8.tflite`` is written too.
    The folder's calibration then no longer matches: re-fit it (``areya models calibrate``)."""
    import shutil

    src_model, src_config = trained_dir / MODEL_FILE, trained_dir / "config.toml"
    for needed in (model_dir / MODEL_FILE, model_dir / "config.toml", src_model, src_config):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed} not found")
    check_same_holdout([model_dir / "config.toml", src_config])
    current = Ensemble.load(model_dir) or Ensemble((MODEL_FILE,), served_tta(model_dir))
    digest = hashlib.sha256(src_model.read_bytes()).hexdigest()
    for member in current.members:
        if hashlib.sha256((model_dir / member).read_bytes()).hexdigest() == digest:
            raise ValueError(f"{src_model} is already a member of {model_dir} ({member})")
    n = len(current.members) + 1
    while (model_dir / f"member-{n}.keras").exists():
        n += 1
    name = f"member-{n}.keras"
    shutil.copyfile(src_model, model_dir / name)
    shutil.copyfile(src_config, Ensemble.member_config(model_dir, name))
    if (trained_dir / "history.json").is_file():
        shutil.copyfile(trained_dir / "history.json", Ensemble.member_history(model_dir, name))
    if current.runtime == "int8":
        from areya.emotion.lite import quantize_member

        quantize_member(model_dir, name)
    tta = current.tta_flip if tta_flip is None else tta_flip
    Ensemble((*current.members, name), tta, current.runtime).save(model_dir)
    return name

"""Ensembles of emotion networks: members averaged before calibration, added by `areya models add-member`,
all holding out the same validation part; on tiny networks trained on generated faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic_faces import synthetic_face, write_face_tree

from areya.emotion.calibration import Calibration
from areya.emotion.ensemble import ENSEMBLE_FILE, Ensemble, served_tta
from areya.emotion.inference import EmotionClassifier
from areya.emotion.members import add_member
from areya.emotion.train import train
from areya.emotion.train_config import TrainConfig

keras = pytest.importorskip("keras")

TINY = dict(
    name="tiny", widths=[8, 16], convs_per_stage=[1, 1], batch_size=16, epochs=1, val_fraction=0.3, tta_flip=False
)


@pytest.fixture(scope="module")
def fer(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fer")
    write_face_tree(root / "train", per_class=10, seed=1)
    return root


def _train(fer: Path, out: Path, **over) -> Path:
    train(TrainConfig(**{**TINY, **over}), fer, out, run_dir=out / "run", report=lambda s: None)
    return out


@pytest.fixture(scope="module")
def members(fer: Path, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("members")
    a = _train(fer, root / "a", seed=5)
    b = _train(fer, root / "b", seed=6, split_seed=5)  # another network, the same held-out part
    return a, b


def _faces(n: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([synthetic_face(i % 7, rng) for i in range(n)]).astype(np.float32)[..., None]


def test_split_seed_keeps_the_validation_part_and_is_left_out_of_toml_when_unset():
    assert TrainConfig(seed=6, split_seed=5).holdout_seed == 5
    assert TrainConfig(seed=6).holdout_seed == 6
    assert "split_seed" not in TrainConfig(seed=6).to_toml()
    again = TrainConfig.from_dict({"seed": 6, "split_seed": 5})
    assert again.holdout_seed == 5 and "split_seed = 5" in again.to_toml()


@pytest.mark.slow
def test_an_ensemble_serves_the_mean_of_its_members(members: tuple[Path, Path], tmp_path: Path):
    a, b = members
    x = _faces()
    alone_a = EmotionClassifier.load(a).predict_raw(x)
    alone_b = EmotionClassifier.load(b).predict_raw(x)
    assert not np.allclose(alone_a[1], alone_b[1], atol=1e-3)  # two different networks

    folder = tmp_path / "served"
    folder.mkdir()
    for name in ("model.keras", "config.toml", "history.json"):
        (folder / name).write_bytes((a / name).read_bytes())
    single_version = EmotionClassifier.load(folder).model_version
    assert add_member(folder, b) == "member-2.keras"
    ens = Ensemble.load(folder)
    assert ens is not None and ens.members == ("model.keras", "member-2.keras") and ens.tta_flip is False
    assert (folder / "member-2.toml").is_file() and (folder / "member-2.history.json").is_file()

    clf = EmotionClassifier.load(folder)
    assert clf.members == 2 and clf.tta_flip is False
    assert clf.params == EmotionClassifier.load(a).params * 2
    assert clf.model_version != single_version  # the version names every member
    head4, probs7 = clf.predict_raw(x)
    np.testing.assert_allclose(head4, (alone_a[0] + alone_b[0]) / 2, atol=1e-5)
    np.testing.assert_allclose(probs7, (alone_a[1] + alone_b[1]) / 2, atol=1e-5)

    with pytest.raises(ValueError, match="already a member"):
        add_member(folder, b)
    # serving with mirror TTA is the ensemble's own setting
    Ensemble(ens.members, True).save(folder)
    assert served_tta(folder) is True and EmotionClassifier.load(folder).tta_flip is True


@pytest.mark.slow
def test_a_member_that_trained_on_the_validation_part_is_refused(members, fer: Path, tmp_path: Path):
    a, _ = members
    other = _train(fer, tmp_path / "other", seed=9)  # its own seed: another held-out part
    with pytest.raises(ValueError, match="split_seed"):
        add_member(a, other)
    assert not (a / ENSEMBLE_FILE).exists()


@pytest.mark.slow
def test_broken_ensemble_files_are_clear_errors(members, tmp_path: Path):
    a, _ = members
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.keras").write_bytes((a / "model.keras").read_bytes())
    for text, message in (
        ('members = ["model.keras", "missing.keras"]\n', "not a .keras file"),
        ('members = ["../model.keras"]\n', "not a .keras file"),
        ("members = []\n", "non-empty list"),
        ('members = ["model.keras"]\ntta_flip = "yes"\n', "tta_flip"),
        ("members = [", "invalid TOML"),
    ):
        (folder / ENSEMBLE_FILE).write_text(text)
        with pytest.raises(ValueError, match=message):
            EmotionClassifier.load(folder)


@pytest.mark.slow
def test_calibrate_and_add_member_commands_on_an_ensemble(members, fer: Path, tmp_path: Path):
    from areya.cli.models import models_group

    a, b = members
    folder = tmp_path / "served"
    folder.mkdir()
    for name in ("model.keras", "config.toml", "history.json"):
        (folder / name).write_bytes((a / name).read_bytes())
    runner = CliRunner()
    added = runner.invoke(models_group, ["add-member", str(folder), str(b), "--tta"])
    assert added.exit_code == 0, added.output
    assert "member-2.keras" in added.output and served_tta(folder) is True
    result = runner.invoke(models_group, ["calibrate", str(folder), "--data", str(fer)])
    assert result.exit_code == 0, result.output
    cal = Calibration.load(folder)
    assert "mean of 2 ensemble members" in cal.fitted_on and "mirror TTA on" in cal.fitted_on
    assert cal.validation["faces_7class"] == 21
    # the calibration was fitted on the served ensemble's output: refitting by hand on it gives the same T
    from areya.emotion.calibration import fit_temperature
    from areya.emotion.dataset import holdout_split, load_dataset

    _, val = holdout_split(load_dataset(fer, "train"), 0.3, 5)
    _, probs7 = EmotionClassifier.load(folder).predict_raw(val.images.astype(np.float32)[..., None])
    assert fit_temperature(probs7, val.labels7) == pytest.approx(cal.temperature7, abs=2e-3)
    assert cal.offsets7 == [] and cal.offsets4 == []
    with_offsets = runner.invoke(models_group, ["calibrate", str(folder), "--data", str(fer), "--offsets"])
    assert with_offsets.exit_code == 0, with_offsets.output
    assert "offsets [" in with_offsets.output and "-> accuracy" in with_offsets.output
    cal = Calibration.load(folder)
    assert len(cal.offsets7) == 7 and len(cal.offsets4) == 4 and "per-class offsets" in cal.fitted_on

    missing = runner.invoke(models_group, ["add-member", str(folder), str(tmp_path)])
    assert missing.exit_code != 0 and "not found" in missing.output
    history = json.loads((folder / "member-2.history.json").read_text())
    assert history["epochs"] == 1

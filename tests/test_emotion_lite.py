"""Ensemble members served as int8 TensorFlow Lite (`runtime = "int8"`, `areya models quantize`), on tiny random
networks saved as training saves them (mixed bfloat16) and on generated faces."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic_faces import synthetic_face

from areya.emotion.ensemble import ENSEMBLE_FILE, Ensemble
from areya.emotion.inference import EmotionClassifier
from areya.emotion.members import add_member
from areya.emotion.train_config import TrainConfig

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from areya.emotion.lite import LiteMember, member_tflite, quantize_member  # noqa: E402  (needs TensorFlow)
from areya.emotion.network import build_network  # noqa: E402

# flatten pooling: the faces' answers depend on where their features are
TINY = dict(
    name="tiny", widths=[8, 16], convs_per_stage=[1, 1], pooling="flatten", embed_units=32, tta_flip=False, split_seed=5
)


def _faces() -> np.ndarray:
    rng = np.random.default_rng(0)
    faces = np.stack([synthetic_face(i % 7, rng) for i in range(48)]).astype(np.float32)[..., None]
    noise = rng.uniform(0, 255, (48, 48, 48, 1)).astype(np.float32)
    return np.concatenate([faces, noise])


def _write_member(folder: Path, member: str, seed: int) -> None:
    """A random network saved like `areya train` saves it (mixed bfloat16), with non-trivial batch norms and its
    heads' biases centred on the test faces, so that they get different answers."""
    cfg = TrainConfig(**TINY, seed=seed)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(seed)
        model = build_network(cfg)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.get_weights()[0].shape
            layer.set_weights(
                [rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n), rng.uniform(0.5, 2, n)]
            )
    embed = keras.Model(model.inputs, model.get_layer("embed_relu").output).predict_on_batch(_faces())
    for head in ("emotion4", "emotion7"):
        kernel = model.get_layer(head).get_weights()[0] * 3
        model.get_layer(head).set_weights([kernel, -(np.asarray(embed, np.float32) @ kernel).mean(axis=0)])
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / member)
    Ensemble.member_config(folder, member).write_text(cfg.to_toml())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """model.keras + member-2.keras, an ensemble served by Keras, both members quantized."""
    root = tmp_path_factory.mktemp("lite") / "served"
    _write_member(root, "model.keras", seed=1)
    _write_member(root, "member-2.keras", seed=2)
    Ensemble(("model.keras", "member-2.keras"), tta_flip=False).save(root)
    for member in ("model.keras", "member-2.keras"):
        quantize_member(root, member)
    return root


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def test_an_int8_member_answers_like_its_keras_member(folder: Path):
    x = _faces()
    assert (folder / "model.int8.tflite").is_file() and (folder / "member-2.int8.tflite").is_file()
    lites, served = {}, {}
    for member in ("model.keras", "member-2.keras"):
        served[member] = keras.models.load_model(folder / member, compile=False).predict_on_batch(x)
        lites[member] = LiteMember(Ensemble.member_int8(folder, member), num_threads=1).predict_on_batch(x)
    for member in served:
        for head, classes in (("emotion4", 4), ("emotion7", 7)):
            want = np.asarray(served[member][head], np.float32)
            got = lites[member][head]
            assert got.shape == (len(x), classes) and got.dtype == np.float32
            np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
            assert len(np.unique(want.argmax(1))) >= 2  # the faces get different answers: agreement is a test
            assert np.abs(got - want).mean() < 0.01 and np.abs(got - want).max() < 0.15
            assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.9
    # each file is its own member's network, not the other's
    other = lites["member-2.keras"]["emotion7"]
    assert np.abs(other - np.asarray(served["model.keras"]["emotion7"])).mean() > 0.05


def test_a_lite_member_takes_any_batch_and_counts_its_weights(folder: Path):
    x = _faces()
    lite = LiteMember(folder / "model.int8.tflite")
    whole = lite.predict_on_batch(x)
    for n in (1, 5, 5, 32):  # resized when the batch changes, reused when it does not
        part = lite.predict_on_batch(x[:n])
        np.testing.assert_allclose(part["emotion7"], whole["emotion7"][:n], atol=1e-6)
        np.testing.assert_allclose(part["emotion4"], whole["emotion4"][:n], atol=1e-6)
    empty = lite.predict_on_batch(x[:0])
    assert empty["emotion4"].shape == (0, 4) and empty["emotion7"].shape == (0, 7)
    with pytest.raises(ValueError, match="expected faces"):
        lite.predict_on_batch(x[:, :24])
    # the weights as stored: the batch norms are folded into the layers before them
    keras_params = keras.models.load_model(folder / "model.keras", compile=False).count_params()
    assert 0.9 * keras_params < lite.count_params() < keras_params


def test_quantizing_again_writes_the_same_bytes_and_keeps_the_dtype_policy(folder: Path, tmp_path: Path):
    copy = _copy(folder, tmp_path)
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert quantize_member(copy, "member-2.keras") == copy / "member-2.int8.tflite"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert (copy / "member-2.int8.tflite").read_bytes() == (folder / "member-2.int8.tflite").read_bytes()
    with pytest.raises(FileNotFoundError):
        quantize_member(copy, "member-9.keras")


def test_a_member_converts_with_float_weights_too_and_an_unknown_precision_is_refused(folder: Path):
    as_float16 = member_tflite(folder, "member-2.keras", "float16")
    as_float32 = member_tflite(folder, "member-2.keras", "float32")
    assert len(as_float16) < len(as_float32)
    assert as_float16 != (folder / "member-2.int8.tflite").read_bytes()
    with pytest.raises(ValueError, match="weights must be one of"):
        member_tflite(folder, "member-2.keras", "int4")


def test_the_int8_runtime_serves_lite_members_close_to_keras(folder: Path, tmp_path: Path):
    copy = _copy(folder, tmp_path)
    x = _faces()
    as_keras = EmotionClassifier.load(copy)
    Ensemble(("model.keras", "member-2.keras"), tta_flip=True, runtime="int8").save(copy)
    assert 'runtime = "int8"' in (copy / ENSEMBLE_FILE).read_text()
    loaded = Ensemble.load(copy)
    assert loaded is not None and loaded.runtime == "int8" and loaded.tta_flip is True
    as_int8 = EmotionClassifier.load(copy)
    assert as_int8.members == 2 and all(isinstance(m, LiteMember) for m in as_int8._models)
    assert as_int8.tta_flip is True and as_int8.params > 0
    assert as_int8.model_version != as_keras.model_version  # the version names the files served
    as_keras.tta_flip = True
    for want, got in zip(as_keras.predict_raw(x), as_int8.predict_raw(x), strict=True):
        assert np.abs(got - want).mean() < 0.01
        assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.9
    # back to Keras: the file is as it was, and so is the version
    Ensemble(("model.keras", "member-2.keras"), tta_flip=False).save(copy)
    assert "runtime" not in (copy / ENSEMBLE_FILE).read_text()
    assert EmotionClassifier.load(copy).model_version == as_keras.model_version
    # the int8 version covers the .tflite files
    Ensemble(("model.keras", "member-2.keras"), tta_flip=True, runtime="int8").save(copy)
    (copy / "member-2.int8.tflite").write_bytes((copy / "model.int8.tflite").read_bytes())
    assert EmotionClassifier.load(copy).model_version != as_int8.model_version


def test_a_missing_int8_file_or_an_unknown_runtime_is_a_clear_error(folder: Path, tmp_path: Path):
    copy = _copy(folder, tmp_path)
    Ensemble(("model.keras", "member-2.keras"), tta_flip=False, runtime="int8").save(copy)
    (copy / "member-2.int8.tflite").unlink()
    with pytest.raises(ValueError, match=r"member-2\.int8\.tflite not found.*areya models quantize"):
        EmotionClassifier.load(copy)
    assert Ensemble.load(copy, check_int8=False).runtime == "int8"
    (copy / ENSEMBLE_FILE).write_text('members = ["model.keras"]\nruntime = "fp16"\n')
    with pytest.raises(ValueError, match=rf"{ENSEMBLE_FILE}: runtime must be"):
        EmotionClassifier.load(copy)
    with pytest.raises(ValueError, match="runtime"):
        Ensemble(("model.keras",), True, "onnx")
    (copy / "bad.int8.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="bad.int8.tflite"):
        LiteMember(copy / "bad.int8.tflite")


def test_adding_a_member_to_an_int8_ensemble_quantizes_it(folder: Path, tmp_path: Path):
    served = tmp_path / "served"
    served.mkdir()
    for name in ("model.keras", "config.toml", "model.int8.tflite"):
        shutil.copyfile(folder / name, served / name)
    Ensemble(("model.keras",), tta_flip=False, runtime="int8").save(served)
    trained = tmp_path / "trained"
    trained.mkdir()
    shutil.copyfile(folder / "member-2.keras", trained / "model.keras")
    shutil.copyfile(folder / "member-2.toml", trained / "config.toml")
    assert add_member(served, trained) == "member-2.keras"
    ens = Ensemble.load(served)
    assert ens is not None and ens.runtime == "int8" and ens.members == ("model.keras", "member-2.keras")
    assert (served / "member-2.int8.tflite").read_bytes() == (folder / "member-2.int8.tflite").read_bytes()


def test_the_quantize_command_writes_the_files_and_serves_them(folder: Path, tmp_path: Path):
    from areya.cli.models import models_group

    runner = CliRunner()
    single = tmp_path / "single"
    single.mkdir()
    for name in ("model.keras", "config.toml"):
        shutil.copyfile(folder / name, single / name)
    keras_version = EmotionClassifier.load(single).model_version

    kept = runner.invoke(models_group, ["quantize", str(single), "--no-serve"])
    assert kept.exit_code == 0, kept.output
    assert (single / "model.int8.tflite").is_file() and not (single / ENSEMBLE_FILE).exists()
    assert EmotionClassifier.load(single).model_version == keras_version

    result = runner.invoke(models_group, ["quantize", str(single)])
    assert result.exit_code == 0, result.output
    assert str(single / "model.int8.tflite") in result.output
    assert f"areya models calibrate {single} --data" in result.output
    ens = Ensemble.load(single)
    assert ens is not None and ens.members == ("model.keras",) and ens.runtime == "int8"
    assert ens.tta_flip is False  # as the config serves it
    clf = EmotionClassifier.load(single)
    assert isinstance(clf._models[0], LiteMember) and clf.model_version != keras_version

    empty = tmp_path / "empty"
    empty.mkdir()
    failed = runner.invoke(models_group, ["quantize", str(empty)])
    assert failed.exit_code == 1 and "model.keras not found" in failed.output


def test_the_card_of_an_int8_model_names_the_runtime_and_the_files_it_serves(folder: Path, tmp_path: Path):
    import json

    from synthetic_faces import write_face_tree

    from areya.emotion.calibrate import calibrate_model_dir
    from areya.emotion.model_card import write_card

    served = _copy(folder, tmp_path)
    (served / "config.toml").write_text(TrainConfig(**TINY, seed=1).to_toml())
    Ensemble(("model.keras",), tta_flip=False, runtime="int8").save(served)
    write_face_tree(tmp_path / "fer" / "train", per_class=10, seed=4)
    write_face_tree(tmp_path / "fer" / "publictest", per_class=2, seed=3)
    calibrate_model_dir(served, tmp_path / "fer")
    write_card(served, tmp_path / "fer" / "publictest", train_command="areya train ...")
    card = json.loads((served / "card.json").read_text())
    assert card["runtime"] == "int8"
    assert card["served_files"] == ["model.int8.tflite"]
    assert card["model_version"] == EmotionClassifier.load(served).model_version
    text = (served / "card.md").read_text()
    assert "Served: `model.int8.tflite`" in text and "int8 weights" in text
    assert "An ensemble of" not in text  # one network is not an ensemble


def test_the_emotion_threads_setting_reaches_every_int8_member(folder: Path, tmp_path: Path, caplog):
    import os

    from areya.config import ConfigError, load_settings
    from areya.worker import load_classifier

    copy = _copy(folder, tmp_path)
    Ensemble(("model.keras", "member-2.keras"), tta_flip=False, runtime="int8").save(copy)
    env = {"AREYA_DATA_DIR": str(tmp_path / "data"), "AREYA_EMOTION_MODEL": str(copy)}
    clf = load_classifier(load_settings(env={**env, "AREYA_EMOTION_THREADS": "1"}))
    assert [m.num_threads for m in clf._models] == [1, 1]
    default = load_classifier(load_settings(env=env))
    assert [m.num_threads for m in default._models] == [os.cpu_count() or 1] * 2  # 0: one per CPU
    with pytest.raises(ConfigError, match="AREYA_EMOTION_THREADS"):
        load_settings(env={**env, "AREYA_EMOTION_THREADS": "-1"})
    # served by Keras: the setting cannot be applied, and the log says so
    Ensemble(("model.keras", "member-2.keras"), tta_flip=False).save(copy)
    with caplog.at_level("WARNING", logger="areya.emotion.inference"):
        EmotionClassifier.load(copy, num_threads=2)
    assert "num_threads=2 is not applied" in caplog.text

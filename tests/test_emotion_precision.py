"""The training dtype policy: bfloat16 mixed precision only where the hardware computes bfloat16."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from synthetic_faces import TINY_TRAINING, write_face_tree

from areya.emotion.precision import FLOAT32, MIXED, choose_policy, cpu_has_bf16
from areya.emotion.train_config import TrainConfig

# abridged /proc/cpuinfo texts of real machines
AVX2_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2
"""
SAPPHIRE_RAPIDS = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8
"""
SKYLAKE_AVX512 = """flags\t\t: fpu sse2 avx avx2 avx512f avx512dq avx512bw avx512vl
"""
ARM_NEOVERSE_V1 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid bf16 i8mm
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [(AVX2_EPYC, False), (SAPPHIRE_RAPIDS, True), (SKYLAKE_AVX512, False), (ARM_NEOVERSE_V1, True), ("", None)],
)
def test_cpu_bf16_units_are_read_from_cpuinfo_flags(text: str, expected: bool | None):
    assert cpu_has_bf16(text) is expected


def test_auto_trains_in_float32_on_a_cpu_without_bf16_units_and_says_why():
    choice = choose_policy(True, "auto", accelerator=False, cpu_bf16=False)
    assert choice.policy == FLOAT32
    assert "no bfloat16 units" in choice.reason and "--precision mixed" in choice.reason


@pytest.mark.parametrize(
    ("requested", "mode", "accelerator", "cpu_bf16", "policy"),
    [
        (True, "auto", False, True, MIXED),  # CPU with AMX / avx512_bf16
        (True, "auto", True, False, MIXED),  # a GPU: the CPU's flags do not matter
        (True, "auto", False, None, MIXED),  # unknown OS: the config decides
        (False, "auto", True, True, FLOAT32),  # the config asks for float32
        (True, "float32", True, True, FLOAT32),
        (False, "mixed", False, False, MIXED),
    ],
)
def test_policy_choice(requested: bool, mode: str, accelerator: bool, cpu_bf16: bool | None, policy: str):
    assert choose_policy(requested, mode, accelerator=accelerator, cpu_bf16=cpu_bf16).policy == policy


def test_an_unknown_precision_mode_is_an_error():
    with pytest.raises(ValueError, match="auto, mixed, float32"):
        choose_policy(True, "fp8", accelerator=False, cpu_bf16=True)


@pytest.fixture(scope="module")
def face_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fer")
    write_face_tree(root / "train", per_class=4, seed=1)
    return root


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "policy"), [("float32", FLOAT32), ("mixed", MIXED)])
def test_train_cli_uses_the_forced_policy_and_records_it(face_tree: Path, tmp_path: Path, mode: str, policy: str):
    pytest.importorskip("keras")
    import keras

    from areya.cli import cli

    config = tmp_path / "tiny.toml"
    config.write_text(TrainConfig(**{**TINY_TRAINING, "mixed_precision": True, "val_fraction": 0.0}).to_toml())
    before = keras.mixed_precision.global_policy().name
    result = CliRunner().invoke(
        cli,
        ["train", "--config", str(config), "--data", str(face_tree), "--out", str(tmp_path / "out"),
         "--run-dir", str(tmp_path / "run"), "--precision", mode, "--no-card"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"dtype policy {policy}: forced (--precision {mode})" in result.output
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert history["dtype_policy"] == policy
    assert keras.mixed_precision.global_policy().name == before  # the process's policy is left as it was
    model = keras.models.load_model(tmp_path / "out" / "model.keras", compile=False)
    assert all(w.dtype == "float32" for w in model.weights)  # the saved weights are float32 either way

"""Which Keras dtype policy a training run uses: bfloat16 mixed precision only where the hardware computes it.

``mixed_bfloat16`` (bfloat16 compute, float32 weights and output layers) roughly doubles training speed on a GPU or
on a CPU with bfloat16 matrix units (x86 ``avx512_bf16`` / ``amx_bf16``, Arm ``bf16``).  On a CPU without them
bfloat16 is emulated and training runs several times *slower* than in float32 (measured on a 2-core AVX2-only
EPYC: 8 against 50 images/s for the 4-stage VGG).  So a config's ``mixed_precision = true`` means "where it
helps": ``choose_policy`` falls back to float32 on such CPUs and says why; ``--precision mixed`` / ``float32``
forces either.  Both policies train the same float32 weights, so the saved model and its serving do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIXED = "mixed_bfloat16"
FLOAT32 = "float32"
MODES = ("auto", "mixed", "float32")

# /proc/cpuinfo flags (x86 "flags", Arm "Features") of units that compute bfloat16 natively
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class PrecisionChoice:
    policy: str  # a Keras dtype policy name: MIXED or FLOAT32
    reason: str


def cpu_has_bf16(cpuinfo: str | None = None) -> bool | None:
    """Whether the CPU lists a bfloat16 unit in ``/proc/cpuinfo`` (or in ``cpuinfo``, its text); None when there
    is no such file or it lists no flags (another OS: unknown)."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(errors="replace")
        except OSError:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    if not flags:
        return None
    return bool(flags & BF16_CPU_FLAGS)


def accelerator_present() -> bool:
    """Whether the Keras backend trains on a GPU/TPU (bfloat16 mixed precision pays off there)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return jax.default_backend() != "cpu"
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken accelerator stack trains on the CPU
        return False
    return False


def choose_policy(
    mixed_requested: bool, mode: str = "auto", *, accelerator: bool, cpu_bf16: bool | None
) -> PrecisionChoice:
    """The dtype policy for a run: ``mode`` "mixed" / "float32" force one; "auto" takes the config's
    ``mixed_precision`` except on a CPU known to lack bfloat16 units (with no accelerator), where it is float32."""
    if mode not in MODES:
        raise ValueError(f"precision must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "mixed":
        return PrecisionChoice(MIXED, "forced (--precision mixed)")
    if mode == "float32":
        return PrecisionChoice(FLOAT32, "forced (--precision float32)")
    if not mixed_requested:
        return PrecisionChoice(FLOAT32, "the config sets mixed_precision = false")
    if accelerator:
        return PrecisionChoice(MIXED, "the config sets mixed_precision = true; training on an accelerator")
    if cpu_bf16 is False:
        return PrecisionChoice(
            FLOAT32,
            "the config asks for mixed precision, but this CPU has no bfloat16 units (no avx512_bf16, amx_bf16 or "
            "bf16 flag in /proc/cpuinfo), where mixed_bfloat16 trains several times slower than float32; the "
            "weights are float32 either way (--precision mixed forces it)",
        )
    unknown = "" if cpu_bf16 else " (CPU bfloat16 support unknown)"
    return PrecisionChoice(MIXED, f"the config sets mixed_precision = true{unknown}")

"""Ensemble members served as int8 TensorFlow Lite: ``runtime = "int8"`` in a model folder's ``ensemble.toml``.

``areya models quantize MODEL_DIR`` writes each member ``X.keras`` as ``X.int8.tflite`` beside it
(:func:`quantize_member`): the member rebuilt in float32 (it is served as mixed bfloat16 under Keras), exported as a
SavedModel and converted with dynamic-range quantization (int8 weights, float32 activations).  :class:`LiteMember`
runs such a file with the interface :class:`~areya.emotion.inference.EmotionClassifier` expects of a member
(``predict_on_batch`` -> ``{"emotion4": (N, 4), "emotion7": (N, 7)}``, ``count_params``).  The interpreter is
LiteRT (``ai_edge_litert``) when it is installed, else TensorFlow's ``tf.lite``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from areya.emotion.dataset import IMAGE_SIZE
from areya.emotion.ensemble import Ensemble

# tf.lite.Interpreter warns on every construction that it is deprecated in favour of LiteRT
_DEPRECATION = r"(?s).*tf\.lite\.Interpreter is deprecated"


TFLITE_WEIGHTS = ("int8", "float16", "float32")


def member_tflite(folder: Path, member: str, weights: str = "int8") -> bytes:
    """Ensemble member ``folder/member`` (``X.keras``) as TensorFlow Lite bytes.  The member is rebuilt in float32
    from its training config (``Ensemble.member_config``) with its weights, exported and converted: ``int8`` with
    dynamic-range quantization (what the worker serves), ``float16`` with float16 weights, ``float32`` plainly; the
    same weights give the same bytes.  Keras's global dtype policy is left as it was.  FileNotFoundError /
    ValueError for a missing or unusable member or config, or an unknown ``weights``."""
    folder = Path(folder)
    source = folder / member
    if weights not in TFLITE_WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(TFLITE_WEIGHTS)}, got {weights!r}")
    if Path(member).name != member or not member.endswith(".keras"):
        raise ValueError(f"{member!r} is not a .keras file name")
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from areya.emotion.network import build_network
    from areya.emotion.train_config import TrainConfig

    cfg = TrainConfig.from_file(Ensemble.member_config(folder, member))
    served = keras.models.load_model(source, compile=False)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        plain = build_network(cfg)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    try:
        plain.set_weights(served.get_weights())
    except ValueError as exc:
        raise ValueError(f"{source}: its weights do not fit the network its config describes: {exc}") from None
    with tempfile.TemporaryDirectory() as tmp:
        plain.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if weights != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if weights == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def quantize_member(folder: Path, member: str) -> Path:
    """Write ensemble member ``folder/member`` (``X.keras``) as int8 TensorFlow Lite, ``folder/X.int8.tflite``
    (:func:`member_tflite`), and return its path.  FileNotFoundError / ValueError as there."""
    blob = member_tflite(folder, member, "int8")
    target = Ensemble.member_int8(Path(folder), member)
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(blob)
    os.replace(partial, target)
    return target


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]
    except ImportError:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    return Interpreter


class LiteMember:
    """One ensemble member from its ``.int8.tflite`` file, with the member interface ``EmotionClassifier`` uses.

    ``num_threads``: the interpreter's CPU threads; None -> ``os.cpu_count()`` (like TensorFlow under Keras, which
    uses every core by default; the worker runs one classifier per process).  One interpreter per instance: calls
    are serialised by a lock, so an instance is used by one thread at a time (share it between threads only if
    waiting for each other is acceptable; give each thread its own instance otherwise).
    """

    def __init__(self, path: str | Path, num_threads: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path} not found")
        self.num_threads = num_threads if num_threads is not None else (os.cpu_count() or 1)
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")
        Interpreter = _interpreter_class()  # noqa: N806
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_DEPRECATION)
            try:
                self._interp = Interpreter(model_path=str(self.path), num_threads=self.num_threads)
            except (RuntimeError, ValueError) as exc:
                raise ValueError(f"{self.path}: not a TensorFlow Lite model: {exc}") from None
        self._lock = threading.Lock()
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        by_columns = {int(o["shape"][-1]): o["index"] for o in outputs if len(o["shape"]) == 2}
        if (
            len(inputs) != 1
            or tuple(inputs[0]["shape"][1:]) != (IMAGE_SIZE, IMAGE_SIZE, 1)
            or len(outputs) != 2
            or set(by_columns) != {4, 7}
        ):
            raise ValueError(
                f"{self.path}: expected one (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1) input and (N, 4) + (N, 7) outputs"
            )
        self._input = inputs[0]["index"]
        self._out4, self._out7 = by_columns[4], by_columns[7]
        self._shape: tuple[int, ...] | None = None
        self._params = self._count_constants()

    def _count_constants(self) -> int:
        """Elements of the model's constant tensors (the weights as stored: batch norms folded into the layers
        before them, plus a few scalar / shape constants); 0 if the interpreter cannot list its operations."""
        try:
            ops = self._interp._get_ops_details()  # experimental API of both tf.lite and LiteRT
            details = {d["index"]: d for d in self._interp.get_tensor_details()}
        except (AttributeError, ValueError, RuntimeError):
            return 0
        produced = {t for op in ops for t in op["outputs"]}
        consumed = {t for op in ops for t in op["inputs"] if t >= 0}
        constants = consumed - produced - {self._input}
        return sum(int(np.prod(details[t]["shape"])) for t in constants if t in details)

    def count_params(self) -> int:
        return self._params

    def predict_on_batch(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 48, 48, 1) float faces in [0, 255] -> {"emotion4": (N, 4), "emotion7": (N, 7)} float32 probabilities."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
            raise ValueError(f"expected faces (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1), got shape {x.shape}")
        if x.shape[0] == 0:
            return {"emotion4": np.zeros((0, 4), np.float32), "emotion7": np.zeros((0, 7), np.float32)}
        with self._lock:
            if x.shape != self._shape:
                self._interp.resize_tensor_input(self._input, list(x.shape))
                self._interp.allocate_tensors()
                self._shape = x.shape
            self._interp.set_tensor(self._input, x)
            self._interp.invoke()
            return {
                "emotion4": np.asarray(self._interp.get_tensor(self._out4), np.float32),
                "emotion7": np.asarray(self._interp.get_tensor(self._out7), np.float32),
            }

    def __repr__(self) -> str:
        return f"LiteMember({str(self.path)!r}, num_threads={self.num_threads})"

"""The training code is backend-agnostic Keras 3: under ``KERAS_BACKEND=jax`` it trains (class weights, random
erasing, distillation, fine-tuning with weight averaging), checkpoints, resumes after a crash, and its saved model
gives TensorFlow's serving the same probabilities.

The backend is fixed when Keras is first imported, so the JAX side runs in a child process; this process (the
suite's TensorFlow backend) then loads what it wrote.  Skipped when ``jax`` is not installed (it is in the ``dev``
extra).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from synthetic_faces import TINY_TRAINING, synthetic_face, write_face_tree

pytest.importorskip("jax")

from areya.emotion.inference import EmotionClassifier  # noqa: E402

pytestmark = pytest.mark.slow

# the child: a crash at the start of epoch 2 (after epoch 1's checkpoint), a resumed run, then a distilled student
# from the first model's teacher labels, fine-tuned from its weights with weight averaging; it prints one JSON line
# with what the parent checks
CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import keras
    import numpy as np
    from areya.emotion.dataset import load_dataset
    from areya.emotion.distill import label_with_teacher
    from areya.emotion.inference import EmotionClassifier
    from areya.emotion.train import train
    from areya.emotion.train_config import TrainConfig

    data, work, cfg, faces = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]), np.load(sys.argv[4])

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("simulated crash")

    lines = []
    try:
        train(TrainConfig(**cfg), data, work / "out", run_dir=work / "run", report=lines.append,
              extra_callbacks=[Crash()])
    except KeyboardInterrupt:
        pass
    lines.append("--- resumed")
    train(TrainConfig(**cfg), data, work / "out", run_dir=work / "run", report=lines.append)
    teacher = EmotionClassifier.load(work / "out")
    raw4, raw7 = teacher.predict_raw(faces)

    label_with_teacher(teacher, load_dataset(data, "train").images, teacher.model_version).save(work / "teacher.npz")
    # the student starts from the teacher's weights and serves the average of its two epochs (fine-tuning, SWA)
    student = {**cfg, "class_weight_power": 0.0, "teacher_labels": str(work / "teacher.npz"),
               "distill_weight": 0.5, "distill_temperature": 2.0, "epochs": 2,
               "init_model": str(work / "out" / "model.keras"), "lr_schedule": "constant", "swa_epochs": 2}
    train(TrainConfig(**student), data, work / "student", run_dir=work / "student-run", report=lines.append)
    print(json.dumps({"backend": keras.backend.backend(), "lines": lines,
                      "raw4": raw4.tolist(), "raw7": raw7.tolist()}))
    """
)


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory) -> tuple[dict, Path, np.ndarray]:
    work = tmp_path_factory.mktemp("jax")
    data = work / "fer"
    write_face_tree(data / "train", per_class=6, seed=1)
    write_face_tree(data / "publictest", per_class=3, seed=2)
    rng = np.random.default_rng(5)
    faces = np.stack([synthetic_face(c, rng) for c in range(7)]).astype(np.float32)[..., None]
    np.save(work / "faces.npy", faces)
    cfg = {**TINY_TRAINING, "epochs": 2, "erasing": 0.25, "class_weight_power": 0.5}
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(work), json.dumps(cfg), str(work / "faces.npy")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), work, faces


def test_training_under_jax_resumes_after_a_crash(jax_run):
    result, work, _ = jax_run
    assert result["backend"] == "jax"
    lines = result["lines"]
    resumed = lines.index("--- resumed")
    before = [line.split(" |")[0] for line in lines[:resumed] if line.startswith("epoch ")]
    after = [line.split(" |")[0] for line in lines[resumed:] if line.startswith("epoch ")]
    assert before == ["epoch 1/2"]
    assert after[0] == "epoch 2/2"  # epoch 1 was not trained again: the checkpoint restored weights and optimizer
    history = json.loads((work / "out" / "history.json").read_text())
    assert len(history["history"]["loss"]) == 2 and np.isfinite(history["history"]["loss"]).all()  # both runs' epochs
    assert any(line.startswith("7-class loss weights: angry ") for line in lines)


def test_distillation_fine_tuning_and_weight_averaging_train_under_jax(jax_run):
    result, work, _ = jax_run
    assert any(line.startswith("distilling from ") for line in result["lines"])
    assert any(line.startswith("fine-tuning from ") for line in result["lines"])
    assert any(line.startswith("weight average of epochs 1-2 (2), BatchNorm recomputed") for line in result["lines"])
    assert (work / "student" / "model.keras").is_file()
    history = json.loads((work / "student" / "history.json").read_text())
    assert np.isfinite(history["history"]["loss"]).all() and history["swa"]["epochs"] == [1, 2]


def test_a_model_trained_under_jax_serves_the_same_probabilities_under_tensorflow(jax_run):
    result, work, faces = jax_run
    import keras

    assert keras.backend.backend() != "jax"  # this process is the serving side
    raw4, raw7 = EmotionClassifier.load(work / "out").predict_raw(faces)
    np.testing.assert_allclose(raw7, np.asarray(result["raw7"]), atol=1e-4)
    np.testing.assert_allclose(raw4, np.asarray(result["raw4"]), atol=1e-4)
    assert raw7.std(axis=0).max() > 1e-4  # the faces get different answers: the comparison is not vacuous

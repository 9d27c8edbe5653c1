"""Model cards: what a shipped model is, how it was trained, and what it measured.

Every figure in a card is measured by :func:`write_card` itself on the test
split (FER-2013 PublicTest), never typed in by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from pathlib import Path
from typing import Any

from areya.emotion.dataset import load_dataset
from areya.emotion.evaluate import Evaluation, evaluate
from areya.emotion.inference import EmotionClassifier
from areya.emotion.train import CONFIG_FILE, HISTORY_FILE, MODEL_FILE
from areya.emotion.train_config import TrainConfig

CARD_JSON = "card.json"
CARD_MD = "card.md"


def _speed(classifier: EmotionClassifier, n: int = 2048, batch: int = 256) -> float:
    import time

    import numpy as np

    x = np.random.default_rng(0).integers(0, 255, (n, 48, 48, 1)).astype(np.float32)
    old = classifier.max_batch
    classifier.max_batch = batch
    try:
        classifier.predict_arrays(x[:batch])
        t0 = time.perf_counter()
        classifier.predict_arrays(x)
        return n / (time.perf_counter() - t0)
    finally:
        classifier.max_batch = old


def measure(model_dir: Path, data_dir: Path) -> dict[str, Any]:
    """Evaluate both schemes with and without flip TTA, and time the model."""
    data = load_dataset(data_dir)
    results: dict[str, Any] = {"evaluations": {}, "plots": []}
    clf = EmotionClassifier.load(model_dir)
    results["model_version"] = clf.model_version
    results["params"] = int(clf._model.count_params())
    for tta in (True, False):
        clf.tta_flip = tta
        results.setdefault("faces_per_second_batch256", {})["tta" if tta else "single"] = round(_speed(clf), 1)
        for scheme in ("7", "4"):
            ev: Evaluation = evaluate(clf, data_dir, scheme, data=data)
            key = f"{scheme}class_{'tta' if tta else 'single'}"
            results["evaluations"][key] = ev.to_dict()
            if tta:
                from areya.emotion.plots import confusion_png, roc_png

                title = f"{model_dir.name} {scheme}-class on {Path(data_dir).name}"
                cm = confusion_png(ev.report, model_dir / f"confusion_{scheme}class.png", title)
                roc = roc_png(ev.report, ev.probs, ev.labels, model_dir / f"roc_{scheme}class.png", title)
                results["plots"] += [cm.name, roc.name]
    return results


def write_card(model_dir: str | Path, data_dir: str | Path, train_command: str, notes: str = "") -> Path:
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    cfg = TrainConfig.from_file(model_dir / CONFIG_FILE)
    history_path = model_dir / HISTORY_FILE
    history = json.loads(history_path.read_text()) if history_path.exists() else {}
    measured = measure(model_dir, data_dir)
    model_file = model_dir / MODEL_FILE
    card: dict[str, Any] = {
        "name": cfg.name,
        "date": dt.date.today().isoformat(),
        "file": MODEL_FILE,
        "file_size_mb": round(model_file.stat().st_size / 1e6, 2),
        "framework": "Keras 3 (backend-agnostic); served with TensorFlow",
        "inputs": "48x48 grayscale face crop, values 0-255",
        "outputs": {"emotion7": "FER-2013 order", "emotion4": "angry, happy, relaxed (=neutral), sad"},
        "training_data": "FER-2013 Training split, 28,709 images (class folders); "
        "disgust/fear/surprise images train the 7-class head only",
        "test_data": f"FER-2013 PublicTest ({data_dir}); final weights, no checkpoint selection on it",
        "train_command": train_command,
        "config": cfg.to_dict(),
        "train_epochs": history.get("epochs"),
        "train_seconds_last_run": history.get("train_seconds_this_run"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "notes": notes,
    }
    card.update(measured)
    (model_dir / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n")
    (model_dir / CARD_MD).write_text(render_markdown(card))
    return model_dir / CARD_MD


def render_markdown(card: dict[str, Any]) -> str:
    ev = card["evaluations"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"Date: {card['date']} · file `{card['file']}` ({card['file_size_mb']} MB, {card['params']:,} parameters) "
        f"· version `{card['model_version']}`",
        "",
        f"One convolutional backbone with two softmax heads — {card['outputs']['emotion7']} (7-class) and "
        f"{card['outputs']['emotion4']} (4-class) — so both schemes come from one forward pass. "
        f"{card['framework']}. Input: {card['inputs']}.",
        "",
        "## Data",
        f"- Training: {card['training_data']}.",
        f"- Test: {card['test_data']}.",
        "",
        "## Figures on FER-2013 PublicTest (measured by `areya models card`)",
        "",
        "| scheme | TTA (mirror) | n | accuracy | macro-F1 | macro ROC AUC |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e in ev.values():
        lines.append(
            f"| {e['scheme']}-class | {'yes' if e['tta_flip'] else 'no'} | {e['n']} | {e['accuracy']:.4f} "
            f"| {e['macro_f1']:.4f} | {e['macro_roc_auc']:.4f} |"
        )
        if "four_of_seven" in e:
            fos = e["four_of_seven"]
            lines.append(
                f"| 4-of-7 (7-class head restricted) | {'yes' if e['tta_flip'] else 'no'} | {e['n']} "
                f"| {fos['accuracy']:.4f} | {fos['macro_f1']:.4f} | |"
            )
    speed = card["faces_per_second_batch256"]
    lines += [
        "",
        f"Speed on this machine ({card['machine']}), batch 256: {speed['single']:.0f} faces/s single pass, "
        f"{speed['tta']:.0f} faces/s with mirror TTA (the served default).",
        "",
    ]
    for key in ("7class_tta", "4class_tta"):
        e = ev[key]
        lines += [
            f"### {e['scheme']}-class, per class (TTA)",
            "",
            "| class | precision | recall | F1 | ROC AUC | support |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name, f in e["per_class"].items():
            lines.append(
                f"| {name} | {f['precision']:.3f} | {f['recall']:.3f} | {f['f1']:.3f} "
                f"| {f['roc_auc']:.3f} | {f['support']} |"
            )
        classes = e["classes"]
        lines += [
            "",
            "Confusion matrix (rows true, columns predicted):",
            "",
            "| | " + " | ".join(classes) + " |",
            "|" + " --- |" * (len(classes) + 1),
        ]
        for name, row in zip(classes, e["confusion_matrix"], strict=True):
            lines.append(f"| **{name}** | " + " | ".join(str(v) for v in row) + " |")
        lines.append("")
    lines += [
        "Plots: " + ", ".join(f"`{p}`" for p in card.get("plots", [])),
        "",
        "## Training",
        "",
        f"Command: `{card['train_command']}`",
        "",
        f"Epochs: {card['train_epochs']}; wall time of the last run: "
        f"{(card['train_seconds_last_run'] or 0) / 60:.0f} min on {card['machine']}.",
        "",
        "Config (`config.toml`):",
        "",
        "```toml",
        TrainConfig.from_dict(card["config"]).to_toml().rstrip(),
        "```",
        "",
    ]
    if card.get("notes"):
        lines += ["## Notes", "", card["notes"], ""]
    return "\n".join(lines)

"""Model cards: what a shipped model is, how it was trained, and what it measured.

Every figure in a card is measured by :func:`write_card` itself on the test
split (FER-2013 PublicTest), never typed in by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

from areya.emotion.dataset import load_dataset
from areya.emotion.ensemble import Ensemble
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
    """Evaluate both schemes with and without flip TTA (served setting first: its plots), and time the model."""
    data = load_dataset(data_dir)
    votes = _votes_beside(data_dir)
    results: dict[str, Any] = {"evaluations": {}, "plots": []}
    clf = EmotionClassifier.load(model_dir)
    served_tta = clf.tta_flip
    results["model_version"] = clf.model_version
    results["params"] = clf.params
    results["served_tta"] = served_tta
    for tta in (served_tta, not served_tta):
        clf.tta_flip = tta
        results.setdefault("faces_per_second_batch256", {})["tta" if tta else "single"] = round(_speed(clf), 1)
        for scheme in ("7", "4"):
            both = votes is not None and tta == served_tta  # the served setting also against the FER+ majority
            ev: Evaluation = evaluate(
                clf, data_dir, scheme, data=data, labels="both" if both else "fer2013", votes=votes if both else None
            )
            key = f"{scheme}class_{'tta' if tta else 'single'}"
            results["evaluations"][key] = ev.to_dict()
            if tta == served_tta:
                from areya.emotion.plots import confusion_png, reliability_png, roc_png

                title = f"{model_dir.name} {scheme}-class on {Path(data_dir).name}"
                cm = confusion_png(ev.report, model_dir / f"confusion_{scheme}class.png", title)
                roc = roc_png(ev.report, ev.probs, ev.labels, model_dir / f"roc_{scheme}class.png", title)
                rel = reliability_png(
                    ev.raw_probs, ev.probs, ev.labels, model_dir / f"reliability_{scheme}class.png", title
                )
                results["plots"] += [cm.name, roc.name, rel.name]
    results["calibration"] = asdict(clf.calibration)
    return results


def _votes_beside(data_dir: Path):
    """The FER+ votes of a test folder (``ferplus_votes.csv`` in it or beside it), or None."""
    from areya.emotion.ferplus import FerPlusVotes, votes_beside

    path = votes_beside(data_dir)
    return FerPlusVotes.load(path) if path is not None else None


def _ferplus_lines(card: dict[str, Any], served: str) -> list[str]:
    """The served answers against the FER+ majority, when the card measured them."""
    rows = {k: card["evaluations"].get(f"{k}class_{served}", {}).get("ferplus") for k in ("7", "4")}
    if not any(rows.values()):
        return []
    lines = [
        "",
        "## Figures against the FER+ majority (PublicTest, as served)",
        "",
        "The same answers scored against the label most of FER+'s ten annotators gave each face (faces with a "
        "unique majority among the seven classes; in the 4-class scheme those whose majority is angry, happy, "
        "neutral or sad). Vote NLL: cross-entropy against the annotators' vote distribution.",
        "",
        "| scheme | n | accuracy | macro-F1 | recall angry | recall sad | ECE | Brier | vote NLL |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scheme, e in rows.items():
        if not e:
            continue
        pc, cal = e["per_class"], e["calibration"]["after"]
        lines.append(
            f"| {scheme}-class | {e['n']} "
            f"| {e['accuracy']:.4f} | {e['macro_f1']:.4f} | {pc['angry']['recall']:.3f} | {pc['sad']['recall']:.3f} "
            f"| {cal['ece']:.4f} | {cal['brier']:.4f} | {cal.get('vote_nll', float('nan')):.4f} |"
        )
    return lines


def write_card(model_dir: str | Path, data_dir: str | Path, train_command: str, notes: str = "") -> Path:
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    cfg = TrainConfig.from_file(model_dir / CONFIG_FILE)
    history_path = model_dir / HISTORY_FILE
    history = json.loads(history_path.read_text()) if history_path.exists() else {}
    measured = measure(model_dir, data_dir)
    ensemble = Ensemble.load(model_dir)
    files = list(ensemble.members) if ensemble else [MODEL_FILE]
    runtime = ensemble.runtime if ensemble else "keras"
    served_files = [Ensemble.member_int8(model_dir, f).name for f in files] if runtime == "int8" else files
    card: dict[str, Any] = {
        "name": cfg.name,
        "date": dt.date.today().isoformat(),
        "file": MODEL_FILE,
        "files": files,
        "file_size_mb": round(sum((model_dir / f).stat().st_size for f in files) / 1e6, 2),
        "runtime": runtime,
        "served_files": served_files,
        "served_size_mb": round(sum((model_dir / f).stat().st_size for f in served_files) / 1e6, 2),
        "framework": "Keras 3 (backend-agnostic); served with TensorFlow"
        if runtime == "keras"
        else "Trained in Keras 3 (backend-agnostic); served as TensorFlow Lite with int8 weights (dynamic-range "
        "quantization of the trained weights, float32 activations; `areya models quantize`)",
        "inputs": "48x48 grayscale face crop, values 0-255",
        "outputs": {"emotion7": "FER-2013 order", "emotion4": "angry, happy, relaxed (=neutral), sad"},
        "training_data": f"FER-2013 Training split (class folders) less a stratified {cfg.val_fraction:.0%} "
        f"validation part (seed {cfg.holdout_seed}): {history.get('train_images', '?')} training and "
        f"{history.get('val_images', '?')} validation faces; "
        + (
            "disgust/fear/surprise faces train the 7-class head only"
            if cfg.labels == "fer2013"
            else f"targets: FER+ vote distributions (weight {cfg.ferplus_weight}, the rest the FER-2013 label; "
            "areya.emotion.ferplus), the 4-class head learning from faces whose largest share is one of its classes"
        ),
        "test_data": f"FER-2013 PublicTest ({data_dir}); final weights, read once per shipped model: recipe, "
        "epochs and calibration were chosen on the validation part",
        "train_command": train_command,
        "config": cfg.to_dict(),
        "train_epochs": history.get("epochs"),
        "train_seconds_last_run": history.get("train_seconds_this_run"),
        "train_seconds_total": history.get("train_seconds_total"),
        "train_dtype_policy": history.get("dtype_policy"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "notes": notes,
    }
    if ensemble is not None:
        card["ensemble"] = [_member_entry(model_dir, m) for m in ensemble.members]
    card.update(measured)
    (model_dir / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n")
    (model_dir / CARD_MD).write_text(render_markdown(card))
    return model_dir / CARD_MD


def _member_entry(model_dir: Path, member: str) -> dict[str, Any]:
    history_path = Ensemble.member_history(model_dir, member)
    history = json.loads(history_path.read_text()) if history_path.exists() else {}
    config = Ensemble.member_config(model_dir, member)
    swa = history.get("swa") or {}
    return {
        "file": member,
        "file_size_mb": round((model_dir / member).stat().st_size / 1e6, 2),
        "config_file": config.name,
        "config": TrainConfig.from_file(config).to_dict(),
        "train_epochs": history.get("epochs"),
        "train_seconds_last_run": history.get("train_seconds_this_run"),
        "train_seconds_total": history.get("train_seconds_total"),
        # the served weights' figure: the weight average's when the member averages its last epochs
        "final_val_accuracy7": swa["val_emotion7_accuracy"]
        if "val_emotion7_accuracy" in swa
        else (history.get("history", {}).get("val_emotion7_accuracy") or [None])[-1],
    }


def _epochs_text(epochs: Any, cfg: dict[str, Any]) -> str:
    """A member's epochs, with where a fine-tuning started and how many epochs' weights it averages."""
    text = str(epochs)
    if cfg.get("init_model"):
        text += f", fine-tuned from `{Path(cfg['init_model']).name}`"
    if cfg.get("swa_epochs"):
        text += f", weights averaged over the last {cfg['swa_epochs']}"
    return text


def _train_minutes(entry: dict[str, Any]) -> str:
    """Minutes of training over all resumed runs when the history has them, else of the last run."""
    seconds = entry.get("train_seconds_total") or entry.get("train_seconds_last_run") or 0
    return f"{seconds / 60:.0f}"


def _ensemble_lines(card: dict[str, Any]) -> list[str]:
    members = card.get("ensemble")
    if not members or len(members) < 2:
        return []
    lines = [
        "",
        f"**An ensemble of {len(members)} networks** (`ensemble.toml`): each face goes through every member and "
        "their probabilities are averaged before the calibration (fitted on that average). Members share the "
        "architecture family and the held-out validation part; they differ in their training seeds and configs:",
        "",
        "| member | config | seed | widths | epochs | training time (all runs) | validation 7-class (served weights, "
        "no TTA) | size |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in members:
        cfg = m["config"]
        val = m.get("final_val_accuracy7")
        lines.append(
            f"| `{m['file']}` | `{m['config_file']}` | {cfg['seed']} | {'-'.join(str(w) for w in cfg['widths'])} "
            f"| {_epochs_text(m.get('train_epochs'), cfg)} | {_train_minutes(m)} min "
            f"| {'' if val is None else f'{val:.4f}'} | {m['file_size_mb']} MB |"
        )
    return lines


def render_markdown(card: dict[str, Any]) -> str:
    ev = card["evaluations"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"Date: {card['date']} · file{'s' if len(card.get('files', [1])) > 1 else ''} "
        f"{', '.join(f'`{f}`' for f in card.get('files', [card['file']]))} ({card['file_size_mb']} MB, "
        f"{card['params']:,} parameters) · version `{card['model_version']}`",
        *(
            [f"Served: {', '.join(f'`{f}`' for f in card['served_files'])} ({card['served_size_mb']} MB)"]
            if card.get("runtime", "keras") != "keras"
            else []
        ),
        "",
        f"One convolutional backbone with two softmax heads — {card['outputs']['emotion7']} (7-class) and "
        f"{card['outputs']['emotion4']} (4-class) — so both schemes come from one forward pass. "
        f"{card['framework']}. Input: {card['inputs']}.",
        *_ensemble_lines(card),
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
    served = "tta" if card.get("served_tta", True) else "single"
    cal = card.get("calibration") or {}
    if cal:
        e7, e4 = ev[f"7class_{served}"], ev[f"4class_{served}"]
        src = cal["four_class_source"]
        src_text = {
            "head": "the 4-class head",
            "seven": "the 7-class head restricted to angry/happy/neutral/sad",
            "mean": "the mean of the 4-class head and the 7-class head restricted to the four classes",
        }[src]
        lines += [
            "",
            f'**The served 4-class answer** comes from {src_text} (`four_class_source = "{src}"`), chosen on '
            "the validation part (lowest NLL after calibration). Side by side on PublicTest (as served):",
            "",
            "| 4-class source | accuracy | macro-F1 | recall angry | recall sad |",
            "| --- | --- | --- | --- | --- |",
        ]
        for label, key in (("4-class head", "four_class_head"), ("7-class head, 4 of 7", "four_of_seven")):
            f = e4[key]
            lines.append(
                f"| {label} | {f['accuracy']:.4f} | {f['macro_f1']:.4f} | {f['recall']['angry']:.3f} "
                f"| {f['recall']['sad']:.3f} |"
            )
        pc = e4["per_class"]
        lines.append(
            f"| **served ({src})** | {e4['accuracy']:.4f} | {e4['macro_f1']:.4f} | {pc['angry']['recall']:.3f} "
            f"| {pc['sad']['recall']:.3f} |"
        )
        lines += [
            "",
            f"**Calibration**: one temperature per served head, fitted on {cal['fitted_on']} "
            f"(7-class T = {cal['temperature7']:.3f}, 4-class T = {cal['temperature4']:.3f}); "
            "`calibration.json`, applied at inference. Expected calibration error (15 bins) and Brier score:",
            "",
            "| head | data | ECE before | ECE after | Brier before | Brier after |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        v = cal["validation"]
        v4 = v["4class_sources"][src]
        for name, val_fig, test in (("7-class", v["7class"], e7), (f"4-class ({src})", v4, e4)):
            lines.append(
                f"| {name} | validation | {val_fig['before']['ece']:.4f} | {val_fig['after']['ece']:.4f} "
                f"| {val_fig['before']['brier']:.4f} | {val_fig['after']['brier']:.4f} |"
            )
            tc = test["calibration"]
            lines.append(
                f"| {name} | PublicTest | {tc['before']['ece']:.4f} | {tc['after']['ece']:.4f} "
                f"| {tc['before']['brier']:.4f} | {tc['after']['brier']:.4f} |"
            )
        lines.append("")
        lines.append(
            f"Validation accuracy (as served): 7-class {v['7class']['accuracy']:.4f}; 4-class "
            + ", ".join(f"{k} {x['accuracy']:.4f}" for k, x in v["4class_sources"].items())
            + "."
        )
    lines += _ferplus_lines(card, served)
    speed = card["faces_per_second_batch256"]
    lines += [
        "",
        f"Speed on this machine ({card['machine']}), batch 256: {speed['single']:.0f} faces/s single pass, "
        f"{speed['tta']:.0f} faces/s with mirror TTA; served: {'with' if served == 'tta' else 'without'} mirror TTA.",
        "",
    ]
    for key in (f"7class_{served}", f"4class_{served}"):
        e = ev[key]
        lines += [
            f"### {e['scheme']}-class, per class (as served)",
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
        f"Epochs: {_epochs_text(card['train_epochs'], card['config'])}; training time: {_train_minutes(card)} min "
        f"on {card['machine']}"
        + ("" if card.get("train_seconds_total") else " (the last run; earlier resumed runs not recorded)")
        + ".",
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

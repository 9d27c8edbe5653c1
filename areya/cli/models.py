"""`areya train`, `areya evaluate` and `areya models ...`: the emotion-model commands."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from areya.emotion.precision import MODES as PRECISION_MODES


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


@click.command("train")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model config (TOML), e.g. models/areya-fer/config.toml.",
)
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="FER-2013 class-folder tree (with train/ and publictest/) or fer2013.csv.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the model and its card go [models/<name>].",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Checkpoints for resuming [runs/<name>]. Run the same command again to resume.",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Override the config's epoch count.")
@click.option(
    "--precision",
    type=click.Choice(PRECISION_MODES),
    default="auto",
    show_default=True,
    help="Compute dtype: auto = bfloat16 mixed precision if the config asks for it and the GPU or CPU computes "
    "bfloat16 (else float32, which is faster there); mixed / float32 force one. The weights are float32 either way.",
)
@click.option(
    "--card/--no-card",
    default=True,
    show_default=True,
    help="Measure the model on the validation split and write its model card.",
)
def train_cmd(
    config_path: Path,
    data_dir: Path,
    out_dir: Path | None,
    run_dir: Path | None,
    epochs: int | None,
    precision: str,
    card: bool,
) -> None:
    """Train an emotion model (seeded, checkpointed, resumable) and write its model card."""
    _quiet_tensorflow()
    from areya.emotion.train import train
    from areya.emotion.train_config import TrainConfig

    try:
        cfg = TrainConfig.from_file(config_path)
        if epochs:
            cfg.epochs = epochs
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if not data_dir.exists():
        raise click.ClickException(f"data not found: {data_dir}")
    out_dir = out_dir or Path("models") / cfg.name
    run_dir = run_dir or Path("runs") / cfg.name
    command = "areya " + shlex.join(sys.argv[1:]) if sys.argv[0].endswith("areya") else "areya train ..."
    click.echo(
        f"training {cfg.name}: {cfg.epochs} epochs, batch {cfg.batch_size}, seed {cfg.seed}; checkpoints in {run_dir}"
    )
    train(cfg, data_dir, out_dir, run_dir=run_dir, report=click.echo, precision=precision)
    if cfg.val_fraction > 0:
        from areya.emotion.calibrate import calibrate_model_dir

        click.echo("fitting the calibration on the held-out validation part ...")
        _echo_calibration(calibrate_model_dir(out_dir, data_dir))
    test_dir = data_dir / "publictest"
    if card and test_dir.is_dir():
        from areya.emotion.model_card import write_card

        click.echo(f"measuring on {test_dir} for the model card ...")
        click.echo(f"wrote {write_card(out_dir, test_dir, command)}")


def _echo_calibration(cal) -> None:
    val = cal.validation
    v7 = val["7class"]
    click.echo(
        f"7-class: T={cal.temperature7:.3f}  validation ECE {v7['before']['ece']:.4f} -> {v7['after']['ece']:.4f}"
        f"  Brier {v7['before']['brier']:.4f} -> {v7['after']['brier']:.4f}  accuracy {v7['accuracy']:.4f}"
        + (
            f"  vote NLL {v7['before']['vote_nll']:.4f} -> {v7['after']['vote_nll']:.4f}"
            if "vote_nll" in v7["after"]
            else ""
        )
        + _echo_offsets(v7)
    )
    if "fitted_to" in val:
        click.echo(f"fitted to: {val['fitted_to']}")
    for name, v in val["4class_sources"].items():
        mark = "  <- served" if name == cal.four_class_source else ""
        click.echo(
            f"4-class from {name:<5}: T={v['temperature']:.3f}  accuracy {v['accuracy']:.4f}  "
            f"ECE {v['before']['ece']:.4f} -> {v['after']['ece']:.4f}  NLL {v['after']['nll']:.4f}"
            + (f"  vote NLL {v['after']['vote_nll']:.4f}" if "vote_nll" in v["after"] else "")
            + _echo_offsets(v)
            + mark
        )


def _echo_offsets(fit: dict) -> str:
    """' offsets [...] -> accuracy A' for a fit with per-class offsets, else ''."""
    if "offsets" not in fit:
        return ""
    return f"  offsets [{', '.join(f'{b:+.2f}' for b in fit['offsets'])}] -> accuracy {fit['accuracy_after']:.4f}"


@click.command("evaluate")
@click.option(
    "--model",
    "model",
    default=None,
    help="Model name under models/, a model folder or a .keras file [the shipped model].",
)
@click.option("--scheme", type=click.Choice(["4", "7"]), required=True, help="4-class Areya or 7-class FER scheme.")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Tree of class folders named as in FER-2013.",
)
@click.option("--json", "json_out", default=None, help="Write figures as JSON to FILE, or '-' for stdout.")
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write confusion-matrix and ROC PNGs here.",
)
@click.option("--tta/--no-tta", default=None, help="Average with the mirrored face [as the model is served].")
@click.option(
    "--exclude-copies-of",
    "copies_of",
    type=click.Path(path_type=Path),
    default=None,
    help="Leave out faces pixel-identical to a face under this tree or CSV (e.g. the Training split: 280 of "
    "FER-2013 PublicTest's faces are copies of Training faces).",
)
@click.option(
    "--labels",
    "label_set",
    type=click.Choice(["fer2013", "ferplus", "both"]),
    default="fer2013",
    show_default=True,
    help="Score against the class folders' FER-2013 labels, the FER+ majority of the annotators' votes (faces "
    "with a unique majority among the 7 classes; adds the NLL against the vote distributions), or both.",
)
@click.option(
    "--votes",
    "votes_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="FER+ votes CSV [ferplus_votes.csv in --data or beside it].",
)
def evaluate_cmd(
    model: str | None,
    scheme: str,
    data_dir: Path,
    json_out: str | None,
    plots_dir: Path | None,
    tta: bool | None,
    copies_of: Path | None,
    label_set: str,
    votes_path: Path | None,
) -> None:
    """Accuracy, macro-F1, per-class figures, confusion matrix and ROC AUC on a class-folder tree."""
    _quiet_tensorflow()
    from areya.emotion.dataset import load_dataset, without_copies
    from areya.emotion.evaluate import evaluate
    from areya.emotion.ferplus import VOTES_FILE, FerPlusVotes, votes_beside
    from areya.emotion.inference import EmotionClassifier

    if not data_dir.is_dir():
        raise click.ClickException(f"data directory not found: {data_dir}")
    if copies_of is not None and not copies_of.exists():
        raise click.ClickException(f"--exclude-copies-of: {copies_of} not found")
    votes = None
    if label_set != "fer2013":
        if votes_path is None:
            votes_path = votes_beside(data_dir)
            if votes_path is None:
                raise click.ClickException(
                    f"--labels {label_set}: no {VOTES_FILE} in {data_dir} or beside it; name the file with --votes"
                )
        try:
            votes = FerPlusVotes.load(votes_path)
        except (FileNotFoundError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    try:
        clf = EmotionClassifier.load(model, tta_flip=tta)
        data = None
        if copies_of is not None:
            reference = load_dataset(copies_of)
            if len(reference) == 0:
                raise ValueError(f"--exclude-copies-of: no faces under {copies_of}")
            data = without_copies(load_dataset(data_dir), reference)
        ev = evaluate(clf, data_dir, scheme, data=data, labels=label_set, votes=votes)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    to_stdout = json_out == "-"
    say = _echo_err if to_stdout else click.echo
    for part in (ev, ev.ferplus):
        if part is not None:
            _say_evaluation(part, scheme, say)
    say(f"{ev.faces_per_second:.0f} faces/s")
    if plots_dir:
        from areya.emotion.plots import confusion_png, reliability_png, roc_png

        for part in (ev, ev.ferplus):
            if part is None:
                continue
            suffix = "" if part.label_set == "fer2013" else "_ferplus"
            title = f"{part.model_version} {scheme}-class" + (" (FER+ majority)" if suffix else "")
            for path in (
                confusion_png(part.report, plots_dir / f"confusion_{scheme}class{suffix}.png", title),
                roc_png(part.report, part.probs, part.labels, plots_dir / f"roc_{scheme}class{suffix}.png", title),
                reliability_png(
                    part.raw_probs,
                    part.probs,
                    part.labels,
                    plots_dir / f"reliability_{scheme}class{suffix}.png",
                    title,
                ),
            ):
                say(f"wrote {path}")
    if json_out:
        text = json.dumps(ev.to_dict(), indent=2)
        if to_stdout:
            click.echo(text)
        else:
            Path(json_out).write_text(text + "\n")
            say(f"wrote {json_out}")


def _say_evaluation(ev, scheme: str, say) -> None:
    """The text figures of one label set's evaluation."""
    if ev.label_set == "fer2013":
        say(f"model {ev.model_version}, {scheme}-class scheme, {ev.extra['import']}")
    else:
        why = ev.extra["ferplus_faces"]
        say(
            f"against the FER+ majority ({ev.extra['import']}): {why['scored']} of {why['faces']} faces scored; "
            f"left out: {why['without_votes']} without votes, {why['unusable_votes']} mostly unknown / contempt / "
            f"not a face, {why['tied_majority']} tied, {why['majority_outside_scheme']} with a majority outside "
            "the scheme"
        )
    say(ev.report.to_text())
    if "four_of_seven" in ev.extra:
        fos = ev.extra["four_of_seven"]
        say(
            f"for comparison, 7-class head restricted to the 4 classes: accuracy={fos['accuracy']:.4f} "
            f"macro-F1={fos['macro_f1']:.4f}"
        )
    if "four_class_head" in ev.extra:
        head = ev.extra["four_class_head"]
        say(
            f"4-class head alone: accuracy={head['accuracy']:.4f} macro-F1={head['macro_f1']:.4f} "
            f"(served: {ev.extra['four_class_source']})"
        )
    cal = ev.extra["calibration"]
    say(
        f"calibration (T={cal['temperature']:.3f}, {cal['bins']} bins): ECE {cal['before']['ece']:.4f} -> "
        f"{cal['after']['ece']:.4f}, Brier {cal['before']['brier']:.4f} -> {cal['after']['brier']:.4f}"
        + (
            f", NLL against the votes {cal['before']['vote_nll']:.4f} -> {cal['after']['vote_nll']:.4f}"
            if "vote_nll" in cal["after"]
            else ""
        )
    )


@click.group("models")
def models_group() -> None:
    """Shipped emotion models: list them, (re)write their cards."""


@models_group.command("list")
def models_list() -> None:
    """Shipped models and their headline figures."""
    from areya.emotion.inference import models_dir

    root = models_dir()
    found = False
    for card in sorted(root.glob("*/card.json")):
        found = True
        data = json.loads(card.read_text())
        ev = data.get("evaluations", {})
        e7, e4 = ev.get("7class_tta", {}), ev.get("4class_tta", {})
        click.echo(
            f"{data['name']:<16} 7-class acc {e7.get('accuracy', float('nan')):.4f}  "
            f"4-class acc {e4.get('accuracy', float('nan')):.4f}  {data.get('file_size_mb')} MB  {card.parent}"
        )
    if not found:
        click.echo(f"no model cards under {root}")


@models_group.command("card")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Test split as class folders (FER-2013 publictest).",
)
@click.option("--train-command", default="", help="The exact command that trained the model.")
@click.option("--notes", default="", help="Free text for the card's notes section.")
def models_card(model_dir: Path, data_dir: Path, train_command: str, notes: str) -> None:
    """Measure MODEL_DIR's model on the test split and write card.md + card.json + plots."""
    _quiet_tensorflow()
    from areya.emotion.model_card import write_card

    if not train_command:
        train_command = f"areya train --config {model_dir / 'config.toml'} --data <fer2013 dir> --out {model_dir}"
    click.echo(f"wrote {write_card(model_dir, data_dir, train_command, notes)}")


@models_group.command("calibrate")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="FER-2013 tree whose Training split the model was trained on (its held-out part is used).",
)
@click.option(
    "--four-class-source",
    type=click.Choice(["head", "seven", "mean"]),
    default=None,
    help="Serve this 4-class source [the one with the lowest validation NLL].",
)
@click.option(
    "--without-copies",
    is_flag=True,
    help="Fit on the validation faces that are not pixel-identical to a training-part face (FER-2013 repeats "
    "faces; the network trained on those copies, so it is more sure of them than of a new face).",
)
@click.option(
    "--labels",
    type=click.Choice(["auto", "fer2013", "ferplus", "votes"]),
    default="auto",
    show_default=True,
    help="Fit the temperatures to the FER-2013 labels, the FER+ majority or the FER+ annotators' vote "
    "distributions (auto: fer2013 or ferplus, what the model trained on).",
)
@click.option(
    "--offsets",
    is_flag=True,
    help="Also fit one logit offset per class with each temperature (corrects a shift in class priors, e.g. a "
    "model trained on vote distributions read against their majority; changes the arg-max, so accuracy too).",
)
def models_calibrate(
    model_dir: Path, data_dir: Path, four_class_source: str | None, without_copies: bool, labels: str, offsets: bool
) -> None:
    """Fit MODEL_DIR's temperatures on the validation part held out from the Training split."""
    _quiet_tensorflow()
    from areya.emotion.calibrate import calibrate_model_dir

    try:
        cal = calibrate_model_dir(
            model_dir,
            data_dir,
            source=four_class_source,
            without_copies=without_copies,
            labels=labels,
            offsets=offsets,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    _echo_calibration(cal)
    click.echo(f"wrote {model_dir / 'calibration.json'}")


@models_group.command("add-member")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("trained_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--tta/--no-tta", default=None, help="Serve the ensemble with mirror TTA [as now].")
def models_add_member(model_dir: Path, trained_dir: Path, tta: bool | None) -> None:
    """Add the model `areya train --out TRAINED_DIR` wrote to MODEL_DIR as an ensemble member (its probabilities
    are averaged with the others'); then re-fit the calibration with `areya models calibrate`."""
    from areya.emotion.members import add_member

    try:
        name = add_member(model_dir, trained_dir, tta_flip=tta)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {name} to {model_dir / 'ensemble.toml'}; now run: areya models calibrate {model_dir} --data ...")


@models_group.command("quantize")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help='Serve the int8 files: runtime = "int8" in ensemble.toml (written from model.keras if there is none).',
)
def models_quantize(model_dir: Path, serve: bool) -> None:
    """Write each ensemble member X.keras of MODEL_DIR as int8 TensorFlow Lite (X.int8.tflite: the member in
    float32 with int8 weights) and serve them; then re-fit the calibration with `areya models calibrate`."""
    _quiet_tensorflow()
    import time

    from areya.emotion.ensemble import ENSEMBLE_FILE, MODEL_FILE, Ensemble, served_tta
    from areya.emotion.lite import quantize_member

    try:
        ensemble = Ensemble.load(model_dir, check_int8=False)  # the files may be missing: they are written here
        if ensemble is None and not (model_dir / MODEL_FILE).is_file():
            raise FileNotFoundError(f"{model_dir / MODEL_FILE} not found")
        for member in ensemble.members if ensemble else (MODEL_FILE,):
            t0 = time.monotonic()
            path = quantize_member(model_dir, member)
            click.echo(
                f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) from {member} in {time.monotonic() - t0:.1f} s"
            )
        if serve:
            tta = ensemble.tta_flip if ensemble else served_tta(model_dir)
            Ensemble(ensemble.members if ensemble else (MODEL_FILE,), tta, "int8").save(model_dir)
            click.echo(f'wrote {model_dir / ENSEMBLE_FILE}: runtime = "int8" (mirror TTA {"on" if tta else "off"})')
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if serve or (ensemble is not None and ensemble.runtime == "int8"):
        click.echo(f"now re-fit the calibration on the int8 outputs: areya models calibrate {model_dir} --data ...")
    else:
        click.echo(
            f'not served ({ENSEMBLE_FILE} unchanged); to serve them set runtime = "int8" (or run without --no-serve), '
            f"then re-fit the calibration: areya models calibrate {model_dir} --data ..."
        )


@models_group.command("check-data")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="FER-2013 class-folder tree with train/ and publictest/ (or the CSV).",
)
@click.option("--train-split", default="train", show_default=True)
@click.option("--test-split", default="publictest", show_default=True)
def models_check_data(data_dir: Path, train_split: str, test_split: str) -> None:
    """Import both splits, report unreadable/resized files and whether their image detail matches."""
    from areya.emotion.dataset import load_dataset
    from areya.emotion.domain import domain_report

    train = load_dataset(data_dir, train_split)
    test = load_dataset(data_dir, test_split)
    for ds in (train, test):
        click.echo(ds.report.summary())
    report = domain_report(train.images, test.images)
    click.echo(report.summary())
    if report.mismatched:
        raise SystemExit(3)


@models_group.command("teacher-labels")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="FER-2013 tree whose Training split the student will train on.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The teacher-labels file (.npz) a student's config names as teacher_labels.",
)
@click.option("--split", default="train", show_default=True, help="The split to label.")
def models_teacher_labels(model_dir: Path, data_dir: Path, out_path: Path, split: str) -> None:
    """Label the Training split with MODEL_DIR as served (members, TTA; before calibration), for a student
    network to learn from (`distill_weight`, `distill_temperature` in its config)."""
    _quiet_tensorflow()
    from areya.emotion.dataset import load_dataset
    from areya.emotion.distill import label_with_teacher
    from areya.emotion.inference import EmotionClassifier

    try:
        data = load_dataset(data_dir, split)
        classifier = EmotionClassifier.load(model_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if len(data) == 0:
        raise click.ClickException(f"no images under {data_dir} ({split})")
    click.echo(
        f"{data.report.summary()}; teacher {classifier.model_version} ({classifier.members} member(s), "
        f"TTA {classifier.tta_flip})"
    )
    with click.progressbar(length=len(data), label="labelling") as bar:
        done = [0]

        def report(n: int, _total: int) -> None:
            bar.update(n - done[0])
            done[0] = n

        labels = label_with_teacher(classifier, data.images, classifier.model_version, report=report)
    agree = float((labels.probs7.argmax(1) == data.labels7).mean())
    click.echo(
        f"wrote {labels.save(out_path)}: {len(data)} faces; the teacher's 7-class answer matches the label "
        f"on {agree:.1%} of them (faces it may have trained on)"
    )

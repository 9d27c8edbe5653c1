"""Alert quality on patients as ward cameras see them (``bench/patient_streams.py``), through the real rule.

Each patient-day is one person (a fixed resting, happy, sad and angry face, rendered with pose, light and small
expression jitter; expressions held 30-300 s), with a night (22:00-07:00: dim, small, rolled, noisy faces), sleep
(no face, or the resting face with eyes closed), gaps that come more often during distress, visitors (whose faces
reach the rule in the share ``--visitors-taken`` of visits, those whose visitor the bedside roles take for the
patient), and episodes of 10-60 min of negative state that the scenario defines, at a given rate per patient-day
(``--episodes-per-day``, 0.5 and 2 by default).  A quarter of the patients have a resting face the model reads as
mildly negative (0.25-0.50 on its own).  The faces are PublicTest's, split into a tuning half and a scoring half by
a fixed seed (``patient_streams.SPLIT_SEED``): report on the scoring half (the default), choose settings on the
tuning half (``--faces tuning``).

The rule is the scheduler's (``areya.alerts.rules.evaluate_negative``, replayed by ``bench_alert_rules.replay``
on an injected clock every ``scheduler_tick_s``, with the per-patient baseline, a clinician resolving each alert
2-10 min after it opens), with the settings of ``areya.config`` (the defaults) and any others given with
``--rule-settings KEY=VALUE ...`` (settings names such as ``negative_window_s=600``, or the rule's own names such
as ``window_s=600``; each ``--rule-settings`` is one more row), ``--previous`` (the settings before December 2026:
one baseline for day and night, its mean over 6 h) or ``--grid`` (a small fixed grid of those, below).
Each rendering carries the face quality the worker would compute for it (``patient_streams.entry_quality``:
``areya.detectors.quality`` on the rendering, its size in the camera and the classifier's answer), so the rule's
``min_face_quality`` sets readings aside as in the engine.  ``--set-aside closed|night`` is a bench-only bound on
what a perfect filter could do besides: the rule reads no eyes-closed face, or no face seen at night.

Figures over **all** patients, per episode rate: sensitivity for the (>= 10-min) episodes starting by day and at
night, false alerts per patient-day (all; those opened by day and at night, which add up to it), the mean of the
worst decile of patient-days, PPV (the share of alerts that belong to an episode), alerts per bed-day, median and
p90 minutes to the first alert of a detected episode; each as the value over all seeds' patient-days pooled and a
95 % interval of the per-seed values (Student t over ``--seeds``).  Targets: sensitivity >= 90 % by day and at
night, <= 1 false alert per patient-day, <= 2 in the worst decile, PPV >= 50 % at 0.5 episodes a day, median
time to alert <= 5 min and p90 <= 10.

    nice -n 5 python -m bench.bench_alert_streams [--quick] [--episodes-per-day 0.5 2] [--seeds 1 2 3 4 5]
        [--patient-days 10] [--faces scoring|tuning] [--rule-settings KEY=VALUE ...] [--previous] [--grid]
        [--through-ward]

``--quick``: 2 seeds x 2 patient-days, 6 faces per class, 2 renderings per condition, 1 h of history.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from bench.bench_alert_rules import DEFAULT_DATA, replay
from bench.patient_streams import (
    CONDITIONS,
    DAY,
    DAY_CLOSED,
    LABEL_SOURCES,
    NIGHT,
    NIGHT_CLOSED,
    RESTING_BANDS,
    SPLIT_SEED,
    Figures,
    PatientResult,
    PatientStream,
    StreamConfig,
    VariantTable,
    bedside_finding,
    classify_table,
    entry_quality,
    is_night,
    make_stream,
    publictest_pool,
    score_patient,
    score_resting,
    seed_interval,
)

# the rule's settings before December 2026 (one baseline for day and night, its mean, 6 h): the grid below changes
# these; --previous adds a row of them as they were
PREVIOUS = (
    "negative_baseline_s=21600 negative_baseline_min_obs=3600 negative_baseline_margin=0.25 "
    "negative_baseline_ceiling=0.60 negative_baseline_quantile=0 negative_baseline_by_night=false "
    "negative_night_raise=0"
)
# the small grid of the previous rule's settings (docs/experiments/2026-12-alert-streams.md)
GRID: tuple[str, ...] = (
    "negative_baseline_s=0",
    "negative_window_s=600 negative_min_obs=120",
    "negative_window_s=900 negative_min_obs=180",
    "negative_open_share=0.60 negative_close_share=0.52",
    "negative_open_share=0.65 negative_close_share=0.57",
    "negative_min_obs=150",
    "negative_min_obs=240",
    "negative_baseline_margin=0.35 negative_baseline_ceiling=0.70",
    "negative_window_s=600 negative_min_obs=240",
    "negative_window_s=600 negative_min_obs=240 negative_open_share=0.60 negative_close_share=0.52",
    "negative_window_s=600 negative_min_obs=480 negative_open_share=0.60 negative_close_share=0.52",
    "negative_open_share=0.60 negative_close_share=0.52 negative_baseline_margin=0.35 negative_baseline_ceiling=0.70",
)
# --set-aside: the conditions (patient_streams.CONDITIONS) whose faces the rule does not read
SET_ASIDE = {"closed": (DAY_CLOSED, NIGHT_CLOSED), "night": (NIGHT, NIGHT_CLOSED)}
TARGETS = (
    "sensitivity >= 90 % by day and at night; <= 1 false alert / patient-day over all patients, <= 2 in the worst "
    "decile; PPV >= 50 % at 0.5 episodes / day; median time to alert <= 5 min, p90 <= 10 min"
)


def rule_from(items: list[str], settings):
    """(name, RuleParams) of the settings with ``KEY=VALUE`` items applied (settings or rule field names)."""
    from areya.alerts.rules import OVERRIDABLE, RuleParams
    from areya.config import ConfigError

    by_field = {f: key for key, f in OVERRIDABLE.items()}
    names = {f.name for f in fields(settings)}
    changes = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        key = by_field.get(key, key)
        if key == "measure":
            key = "negative_measure"
        if not sep or key not in names:
            raise SystemExit(f"--rule-settings: expected KEY=VALUE with a setting's name, got {item!r}")
        changes[key] = value.strip()
    try:
        changed = settings.replace(**changes)
    except (ConfigError, ValueError) as exc:
        raise SystemExit(f"--rule-settings {' '.join(items)}: {exc}") from exc
    return " ".join(items), RuleParams.from_settings(changed)


def loaded_classifier(model: str | None):
    from areya.emotion.inference import EmotionClassifier

    classifier = EmotionClassifier.load(model)

    def classify(crops):
        return np.stack([r.probs4 for r in classifier.classify(crops)]) if len(crops) else np.zeros((0, 4))

    return classifier.model_version, classify


def read_cache(path: Path | None, model_version: str) -> dict[str, np.ndarray]:
    if path is None or not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as packed:
        if str(packed["model_version"]) != model_version:
            print(f"  cache {path} is for {packed['model_version']}, not {model_version}: not used", flush=True)
            return {}
        return {str(n): p for n, p in zip(packed["names"], packed["probs"], strict=True)}


def write_cache(path: Path | None, model_version: str, known: dict[str, np.ndarray]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(known)
    np.savez_compressed(
        path,
        model_version=np.array(model_version),
        names=np.array(names),
        probs=np.stack([known[n] for n in names]) if names else np.zeros((0, 4)),
    )


def cell(values: list[float], pooled: float, fmt: str) -> str:
    """``pooled [lo-hi]``: the pooled value and the 95 % interval of the per-seed values."""
    text = format(pooled, fmt) if np.isfinite(pooled) else "-"
    ci = seed_interval(values)
    if ci is not None:
        lo, hi = ci
        if fmt.endswith("%"):
            lo, hi = max(lo, 0.0), min(hi, 1.0)
        else:
            lo = max(lo, 0.0)
        text += f" [{format(lo, fmt)}-{format(hi, fmt)}]"
    return text


COLUMNS = (
    ("sensitivity by day", "sensitivity_day", ".0%"),
    ("sensitivity at night", "sensitivity_night", ".0%"),
    ("false / patient-day", "false_per_day", ".2f"),
    ("of which by day", "false_day_hours", ".2f"),
    ("at night", "false_night_hours", ".2f"),
    ("worst decile false / day", "worst_decile", ".1f"),
    ("PPV", "ppv", ".0%"),
    ("alerts / bed-day", "alerts_per_bed_day", ".2f"),
    ("median min to alert", "median_min", ".1f"),
    ("p90 min", "p90_min", ".1f"),
)
DETAIL = (
    ("episodes day / night", None, ""),
    ("alerts / episode", "alerts_per_episode", ".2f"),
    ("false / day, ordinary resting face", "false_ordinary", ".2f"),
    ("false / day, mild-negative resting face", "false_mild_negative", ".2f"),
    ("false / day opened during visits", "false_visits", ".2f"),
    ("false / day opened on sleeping faces", "false_asleep", ".2f"),
)


def misses(fig: Figures, rate: float) -> list[str]:
    """The targets the pooled figures miss."""
    out = []
    if not fig.sensitivity_day >= 0.9:
        out.append("sensitivity by day")
    if fig.episodes_night and not fig.sensitivity_night >= 0.9:
        out.append("at night")
    if not fig.false_per_day <= 1.0:
        out.append("false / day")
    if not fig.worst_decile <= 2.0:
        out.append("worst decile")
    if rate == 0.5 and not fig.ppv >= 0.5:
        out.append("PPV")
    if not fig.median_min <= 5.0:
        out.append("median")
    if not fig.p90_min <= 10.0:
        out.append("p90")
    return out


def profile(streams: list[PatientStream], probs: np.ndarray) -> str:
    """The patients' own faces as the model reads them: mean Negative probability (P(angry) + P(sad)) of the
    day's observations outside episodes and visitors, awake by day, awake at night, asleep (eyes closed), by
    resting-face group; and of the episodes' observations by day and at night."""
    lines = []
    neg = probs[:, 0] + probs[:, 3]
    for group in RESTING_BANDS:
        mine = [s for s in streams if s.identity.group == group]
        if not mine:
            continue
        parts = []
        for name, cond in (("awake by day", DAY), ("awake at night", NIGHT), ("asleep at night", NIGHT_CLOSED)):
            per = []
            for s in mine:
                calm = (s.times >= 0) & (s.times < 86_400) & ~s.visitor & (s.condition == cond)
                for e in s.episodes:
                    calm &= ~((s.times >= e.start) & (s.times < e.end))
                v = neg[s.variant[calm]]
                v = v[np.isfinite(v)]
                if len(v):
                    per.append(float(v.mean()))
            if per:
                parts.append(f"{name} median {np.median(per):.2f} [{min(per):.2f}-{max(per):.2f}]")
        lines.append(f"{group} patients ({len(mine)}): usual Negative probability {'; '.join(parts)}")
    per_ep = {False: [], True: []}
    for s in streams:
        for e in s.counted_episodes:
            inside = (s.times >= e.start) & (s.times < e.end) & ~s.visitor
            v = neg[s.variant[inside]]
            v = v[np.isfinite(v)]
            if len(v):
                per_ep[bool(is_night(e.start))].append(float(v.mean()))
    for night, vals in per_ep.items():
        if vals:
            q = np.percentile(vals, [10, 50, 90])
            lines.append(
                f"episodes {'at night' if night else 'by day'} ({len(vals)}): mean Negative probability over the "
                f"episode p10 {q[0]:.2f}, median {q[1]:.2f}, p90 {q[2]:.2f}"
            )
    return "\n".join(lines)


def quality_profile(streams: list[PatientStream], quality: np.ndarray, thresholds: list[float]) -> str:
    """The face quality of the counted days' observations per condition: median and the share below each rule's
    ``min_face_quality``."""
    cuts = sorted({t for t in thresholds if t > 0})
    parts = []
    for c, name in enumerate(CONDITIONS):
        q = np.concatenate(
            [quality[s.variant[(s.condition == c) & (s.times >= 0) & (s.times < 86_400)]] for s in streams]
        )
        q = q[np.isfinite(q)]
        if len(q):
            below = ", ".join(f"{np.mean(q < t):.0%} below {t:g}" for t in cuts)
            parts.append(f"{name} median {np.median(q):.2f}" + (f" ({below})" if below else ""))
    return "face quality of the observations (as the worker computes it, on the renderings): " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes-per-day", type=float, nargs="+", default=[0.5, 2.0], help="episode rates to report")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="one draw of patients each")
    ap.add_argument("--patient-days", type=int, default=10, help="patient-days per seed and episode rate")
    ap.add_argument(
        "--faces",
        choices=("scoring", "tuning"),
        default="scoring",
        help="the half of PublicTest the patients' faces come from: scoring (report) or tuning (choose settings)",
    )
    ap.add_argument("--split-seed", type=int, default=SPLIT_SEED, help="the seed of the tuning / scoring split")
    ap.add_argument(
        "--labels",
        choices=LABEL_SOURCES,
        default="fer2013",
        help="what a face is: its FER-2013 label (fer2013) or the majority of ten FER+ annotators (ferplus: faces "
        "without one among the four classes left out); episodes show the patient's sad or angry face by it",
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER-2013 PublicTest class folders")
    ap.add_argument("--faces-per-class", type=int, default=0, help="at most this many faces of each class's half")
    ap.add_argument("--model", default=None, help="model name or path (default: the shipped areya-fer)")
    ap.add_argument(
        "--resting-model",
        default=None,
        help="the model whose day readings choose the patients' resting faces (default: --model); give the served "
        "model's name (areya-fer) to score another model on the same patients",
    )
    ap.add_argument(
        "--rule-settings",
        nargs="+",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one more row: the default settings with these changed (e.g. negative_window_s=600 "
        "negative_min_obs=120); repeat the option for more rows",
    )
    ap.add_argument(
        "--grid", action="store_true", help="also the fixed grid of the previous rule's settings (GRID in this file)"
    )
    ap.add_argument("--previous", action="store_true", help="also the rule's settings before December 2026")
    ap.add_argument("--no-defaults", action="store_true", help="leave out the row of the default settings")
    ap.add_argument("--mild-negative-share", type=float, default=StreamConfig.mild_negative_share)
    ap.add_argument(
        "--visitors-taken",
        type=float,
        default=StreamConfig.visitor_taken,
        help="share of visits whose visitor the bedside roles take for the patient (their faces read as the "
        "patient's); 1: every visitor read, as before bedside roles",
    )
    ap.add_argument("--variants", type=int, default=StreamConfig.variants, help="renderings per face and condition")
    ap.add_argument("--history-h", type=float, default=StreamConfig.history_h, help="hours before the day (baseline)")
    ap.add_argument("--aug-seed", type=int, default=0, help="the seed of the renderings")
    ap.add_argument(
        "--resolve-after-min", default="2,10", help="a clinician resolves each alert this many minutes after it opens"
    )
    ap.add_argument(
        "--through-ward",
        action="store_true",
        help="classify each rendering as the worker sees it (bench/ward_path.py: pasted into a ward scene, found by "
        "the configured detector, cropped); renderings it misses give no observations (slow: ~1 s each)",
    )
    ap.add_argument("--cache", type=Path, default=None, help="read / write the renderings' probabilities here (.npz)")
    ap.add_argument(
        "--set-aside",
        nargs="+",
        choices=tuple(SET_ASIDE),
        default=[],
        help="a bench-only bound on what a perfect filter could do (beyond min_face_quality): the rule reads none of "
        "these faces (closed: eyes closed, asleep; night: every face seen at night)",
    )
    ap.add_argument(
        "--prepare-only",
        action="store_true",
        help="classify the streams' renderings into --cache and stop: score no rule (a later run, e.g. the one "
        "scoring run on the scoring half, then only replays)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: seeds 1 2, 2 patient-days each, 6 faces per class, 2 renderings, 1 h of history",
    )
    args = ap.parse_args(argv)
    if args.prepare_only and args.cache is None:
        ap.error("--prepare-only needs --cache")
    if args.quick:
        args.seeds, args.patient_days, args.faces_per_class, args.variants, args.history_h = [1, 2], 2, 6, 2, 1.0
    if not args.data.is_dir():
        print(f"needs the FER-2013 PublicTest faces at {args.data} (--data)", file=sys.stderr)
        return 2
    lo_hi = [float(x) * 60 for x in args.resolve_after_min.split(",")]
    resolve_after = (lo_hi[0], lo_hi[-1])

    from areya.alerts.rules import RuleParams
    from areya.config import Settings

    started = time.perf_counter()
    settings = Settings()
    rules = [] if args.no_defaults else [("defaults", RuleParams.from_settings(settings))]
    rules += [rule_from(items, settings) for items in args.rule_settings]
    if args.previous or args.grid:
        rules.append(("previous defaults", rule_from(PREVIOUS.split(), settings)[1]))
    if args.grid:
        rules += [(g, rule_from([*PREVIOUS.split(), *g.split()], settings)[1]) for g in GRID]
    if not rules:
        raise SystemExit("no rule to score: drop --no-defaults or give --rule-settings / --grid")
    tick_s = float(settings.scheduler_tick_s)

    model_version, classify = loaded_classifier(args.model)
    pool = publictest_pool(args.data.resolve(), args.faces, args.faces_per_class, args.split_seed, args.labels)
    table = VariantTable(pool, aug_seed=args.aug_seed)
    known = read_cache(args.cache, model_version)
    before = len(known)
    if args.resting_model is not None:
        resting_version, resting_classify = loaded_classifier(args.resting_model)
        print(f"  resting faces chosen by {resting_version}", flush=True)
        score_resting(pool, table, resting_classify, args.variants, known if resting_version == model_version else {})
    else:
        score_resting(pool, table, classify, args.variants, known)
    streams: dict[tuple[float, int], list[PatientStream]] = {}
    for rate in args.episodes_per_day:
        cfg = StreamConfig(
            episodes_per_day=rate,
            mild_negative_share=args.mild_negative_share,
            visitor_taken=args.visitors_taken,
            variants=args.variants,
            history_h=args.history_h,
        )
        for seed in args.seeds:
            streams[rate, seed] = [make_stream(pool, table, cfg, seed, i) for i in range(args.patient_days)]
    through = None
    if args.through_ward:
        from bench.ward_path import detector_for_bench, ward_crops

        detector = detector_for_bench()

        def through(img, seed):
            return ward_crops([img], detector, np.random.default_rng(seed))[0]

    used = np.unique(np.concatenate([s.variant for v in streams.values() for s in v]))
    probs = classify_table(table, classify, known, through, ids=used, progress=lambda m: print(m, flush=True))
    classified = len(known) - before
    write_cache(args.cache, model_version, known)
    if args.prepare_only:
        print(f"prepared: {classified} renderings classified into {args.cache}; no rule scored", flush=True)
        return 0
    quality = entry_quality(table, probs, used)
    prepared = time.perf_counter() - started

    aside = {c for name in args.set_aside for c in SET_ASIDE[name]}
    shown = np.array([key[1] not in aside for key in table.keys], bool)
    figures: dict[tuple[str, float], tuple[Figures, list[Figures]]] = {}
    for name, params in rules:
        # set aside as the engine does: a face quality below the rule's min_face_quality
        read = shown & ~(quality < params.min_quality) if params.min_quality > 0 else shown
        for rate in args.episodes_per_day:
            per_seed, pooled = [], []
            for seed in args.seeds:
                results: list[PatientResult] = []
                for s in streams[rate, seed]:
                    out = replay(
                        s.timeline(probs, read),
                        params,
                        tick_s,
                        np.random.default_rng([seed, s.patient, 99]),
                        resolve_after,
                        day_s=s.end,
                        finding_of=bedside_finding(s, params.window_s),
                    )
                    results.append(score_patient(s, out.opens, params.window_s))
                per_seed.append(Figures.of(results))
                pooled += results
            figures[name, rate] = (Figures.of(pooled), per_seed)

    all_streams = [s for v in streams.values() for s in v]
    groups = {g: sum(s.identity.group == g for s in all_streams) for g in RESTING_BANDS}
    n_obs = sum(int(((s.times >= 0) & (s.times < 86_400)).sum()) for s in all_streams)
    n_cond = np.bincount(
        np.concatenate([s.condition[(s.times >= 0) & (s.times < 86_400)] for s in all_streams]),
        minlength=len(CONDITIONS),
    )
    missed = int(np.isnan(probs[used]).any(axis=1).sum())
    print(
        f"model {model_version}; faces: PublicTest {args.faces} half (split seed {args.split_seed}; "
        f"labels {args.labels}; "
        f"{', '.join(f'{k} {len(v)}' for k, v in pool.by_label.items())}); seeds {' '.join(map(str, args.seeds))}; "
        f"{args.patient_days} patient-days per seed and rate ({len(all_streams)} streams: "
        f"{', '.join(f'{g} resting face {n}' for g, n in groups.items())}); {n_obs} observations in the counted days "
        f"({', '.join(f'{c} {n / n_cond.sum():.0%}' for c, n in zip(CONDITIONS, n_cond, strict=True))}); "
        f"{len(used)} renderings in the streams ({classified} classified now"
        + (f", {missed} missed by the detector in their ward scene" if args.through_ward else "")
        + f"); {args.history_h:g} h history; visitors taken for the patient in "
        f"{args.visitors_taken:.0%} of visits; tick {tick_s:g} s; manual resolve after {args.resolve_after_min} min; "
        f"{prepared:.0f} s to prepare, {time.perf_counter() - started:.0f} s in all on {os.cpu_count()} CPUs"
    )
    bands = {g: len(pool.resting_band(g)) for g in RESTING_BANDS}
    print(
        f"resting faces by their day renderings' mean Negative probability: of {len(pool.resting_score)} neutral "
        f"faces {', '.join(f'{g} {RESTING_BANDS[g][0]:.2f}-{RESTING_BANDS[g][1]:.2f}: {n}' for g, n in bands.items())}"
        f", >= {max(b[1] for b in RESTING_BANDS.values()):.2f} (no one's resting face): "
        f"{len(pool.resting_score) - sum(bands.values())}"
    )
    print(profile(all_streams, probs))
    print(quality_profile(all_streams, quality, [p.min_quality for _, p in rules]))
    for name, params in rules:
        print(f"rule '{name}': {params}")
    if aside:
        print(
            "set aside (bench-only, as a face-quality filter would): every "
            + " and every ".join(f"{CONDITIONS[c]} face" for c in sorted(aside))
        )
    print(f"targets: {TARGETS}")
    for rate in args.episodes_per_day:
        print(f"\n### {rate:g} episodes per patient-day, all patients (pooled value [95 % interval over seeds])\n")
        head = ["setting", *(c[0] for c in COLUMNS), "meets targets"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for name, _ in rules:
            fig, per_seed = figures[name, rate]
            cells = [cell([getattr(f, attr) for f in per_seed], getattr(fig, attr), fmt) for _, attr, fmt in COLUMNS]
            miss = misses(fig, rate)
            print(f"| {name} | " + " | ".join(cells) + f" | {'yes' if not miss else 'no: ' + ', '.join(miss)} |")
        print()
        head = ["setting", *(c[0] for c in DETAIL)]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for name, _ in rules:
            fig, per_seed = figures[name, rate]
            cells = [f"{fig.episodes_day} / {fig.episodes_night}"]
            cells += [cell([getattr(f, a) for f in per_seed], getattr(fig, a), fmt) for _, a, fmt in DETAIL[1:]]
            print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

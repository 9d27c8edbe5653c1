"""bench/patient_streams.py and bench/bench_alert_streams.py: patient streams as a ward camera sees them.

The generator's behaviour on tiny inputs (generated faces from tests/synthetic_faces.py and a stand-in classifier,
no ../shared needed): one identity per patient, holds of 30-300 s, degraded night frames, sleep and gaps, episodes
from the scenario at the requested rate, classification once per distinct rendering, false alerts counted over
all patients; and the bench's --quick in a subprocess (slow).  Nothing here asserts a figure of the bench.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from areya.emotion.schemes import FER7_CLASSES  # noqa: E402
from bench import patient_streams as ps  # noqa: E402
from bench.bench_alert_rules import DAY_S, FACE_FOLDERS  # noqa: E402
from tests.synthetic_faces import synthetic_face, write_face_tree  # noqa: E402

SHARED_PUBLICTEST = ROOT.parent / "shared" / "data" / "fer2013" / "publictest"


def fake_classify(crops) -> np.ndarray:
    """A stand-in for the model: darker faces read more negative; rows sum to 1."""
    out = []
    for crop in crops:
        dark = 1.0 - float(np.asarray(crop, np.float64).mean()) / 255.0
        p = np.array([0.05 + 0.4 * dark, 0.3, 0.4, 0.05 + 0.4 * dark])
        out.append(p / p.sum())
    return np.array(out).reshape(-1, 4)


def tiny_pool(per_class: int = 6, seed: int = 0) -> ps.FacePool:
    rng = np.random.default_rng(seed)
    images = {
        label: [(f"{folder}/{i}.png", synthetic_face(FER7_CLASSES.index(folder), rng)) for i in range(per_class)]
        for label, folder in FACE_FOLDERS.items()
    }
    return ps.FacePool.of(images)


def prepared(cfg: ps.StreamConfig, per_class: int = 6) -> tuple[ps.FacePool, ps.VariantTable]:
    pool = tiny_pool(per_class)
    table = ps.VariantTable(pool)
    ps.score_resting(pool, table, fake_classify, cfg.variants)
    return pool, table


CFG = ps.StreamConfig(episodes_per_day=2.0, variants=3, history_h=2.0)


@pytest.fixture(scope="module")
def streams() -> tuple[ps.FacePool, ps.VariantTable, list[ps.PatientStream]]:
    pool, table = prepared(CFG)
    return pool, table, [ps.make_stream(pool, table, CFG, seed=3, patient=i) for i in range(4)]


def test_split_halves_are_disjoint_complete_and_fixed() -> None:
    names = [f"PublicTest_{i}.jpg" for i in range(101)]
    tuning = ps.split_half(names, "tuning", salt="sad")
    scoring = ps.split_half(list(reversed(names)), "scoring", salt="sad")
    assert not set(tuning) & set(scoring)
    assert sorted(tuning + scoring) == sorted(names)
    assert ps.split_half(names, "tuning", salt="sad") == tuning
    assert ps.split_half(names, "tuning", salt="happy") != tuning  # each class folder its own permutation
    with pytest.raises(ValueError):
        ps.split_half(names, "both")


def test_publictest_pool_reads_one_half_of_each_class(tmp_path: Path) -> None:
    write_face_tree(tmp_path, per_class=6)
    tuning = ps.publictest_pool(tmp_path, "tuning")
    scoring = ps.publictest_pool(tmp_path, "scoring")
    for label in FACE_FOLDERS:
        assert len(tuning.by_label[label]) == len(scoring.by_label[label]) == 3
    assert not {f.key for f in tuning.faces} & {f.key for f in scoring.faces}
    assert all(f.image.shape == (48, 48) for f in tuning.faces)


def test_publictest_pool_by_ferplus_majority_relabels_and_drops_faces(tmp_path: Path) -> None:
    """With labels=ferplus a face is what most of its ten annotators say, whatever its folder: a sad-folder face
    most read as neutral is a resting face, a fear-folder face most read as sad is a sad one, and faces without
    a majority among the four classes (a tie, surprise, too many not-a-face votes, no row) are left out."""
    import csv

    from areya.emotion.ferplus import VOTE_COLUMNS

    publictest = tmp_path / "publictest"
    write_face_tree(publictest, per_class=4)
    both = {f"{folder}/{p.name}" for folder in FER7_CLASSES for p in (publictest / folder).iterdir()}

    def row(**counts: int) -> list[int]:
        return [counts.get(c, 0) for c in VOTE_COLUMNS]

    votes = {
        "sad": row(neutral=7, sadness=3),  # the one label says sad, most annotators neutral
        "fear": row(sadness=6, fear=4),
        "angry": row(anger=5, disgust=5),  # a tie: no majority
        "surprise": row(surprise=9, happiness=1),  # not one of the four
        "happy": row(happiness=3, NF=7),  # mostly not a face: unusable
    }
    with (tmp_path / "ferplus_votes.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "file", "original_label", "ferplus_image", *VOTE_COLUMNS])
        for folder, counts in votes.items():  # every face of the folder gets that folder's votes
            for p in sorted((publictest / folder).iterdir()):
                w.writerow(["publictest", p.name, folder, "x.png", *counts])
    halves = [ps.publictest_pool(publictest, half, labels="ferplus") for half in ("tuning", "scoring")]
    for pool in halves:
        got = {f.key: f.label for f in pool.faces}
        assert got and set(got) <= both
        assert {k.split("/")[0] for k, v in got.items() if v == "relaxed"} == {"sad"}
        assert {k.split("/")[0] for k, v in got.items() if v == "sad"} == {"fear"}
        assert not pool.by_label["angry"] and not pool.by_label["happy"]
        assert len(pool.by_label["relaxed"]) == len(pool.by_label["sad"]) == 2  # half of each folder's 4
    assert not {f.key for f in halves[0].faces} & {f.key for f in halves[1].faces}
    # the same half by the FER-2013 label reads the folders as they are
    plain = ps.publictest_pool(publictest, "tuning")
    assert {f.key.split("/")[0] for f in plain.faces if f.label == "sad"} == {"sad"}
    with pytest.raises(ValueError):
        ps.publictest_pool(publictest, "tuning", labels="fer+")


def test_one_identity_per_patient_the_same_images_recur(streams) -> None:
    pool, table, all_streams = streams
    for s in all_streams:
        own = s.face[~s.visitor]
        assert set(own.tolist()) <= set(s.identity.faces())
        assert pool.faces[s.identity.resting].label == "relaxed"
        assert [pool.faces[i].label for i in s.identity.faces()[1:]] == ["happy", "sad", "angry"]
        # a handful of images, each seen thousands of times, in at most `variants` renderings per condition
        counts = np.bincount(own)
        assert counts[s.identity.resting] > 1000
        for face in set(own.tolist()):
            keys = {table.keys[v] for v in np.unique(s.variant[s.face == face])}
            assert {k[0] for k in keys} == {face}
            for cond in range(len(ps.CONDITIONS)):
                assert len({k[2] for k in keys if k[1] == cond}) <= CFG.variants
        # a visitor is someone else, seen only during a visit (or one window after none: visits only)
        if s.visitor.any():
            assert not set(s.face[s.visitor].tolist()) & set(s.identity.faces())
            assert ps.in_spans(s.times[s.visitor], s.visits).all()
    # patients differ from one another
    assert len({s.identity.faces() for s in all_streams}) == len(all_streams)


def test_a_visitor_reaches_the_rule_only_in_visits_the_bedside_roles_take_for_the_patient() -> None:
    cfg = replace(CFG, visits_per_day=3.0)
    pool, table = prepared(cfg)
    every = [ps.make_stream(pool, table, replace(cfg, visitor_taken=1.0), seed=5, patient=i) for i in range(3)]
    none = [ps.make_stream(pool, table, replace(cfg, visitor_taken=0.0), seed=5, patient=i) for i in range(3)]
    assert any(s.visitor.any() for s in every)  # every visitor read (the bench before bedside roles)
    for a, b in zip(every, none, strict=True):
        assert a.visits == b.visits and a.identity == b.identity and a.episodes == b.episodes
        assert all(a.visitor_taken) and not any(b.visitor_taken)
        assert not b.visitor.any()
        # the visitor's holds show the patient's own face instead; every other hold stays the same
        assert set(b.face.tolist()) <= set(b.identity.faces())
        assert np.array_equal(a.hold_start, b.hold_start) and np.array_equal(a.hold_end, b.hold_end)
        visitor_hold = ~np.isin(a.hold_face, a.identity.faces())
        assert np.array_equal(a.hold_face[~visitor_hold], b.hold_face[~visitor_hold])
        assert np.isin(b.hold_face[visitor_hold], b.identity.faces()).all()
    # at the default share some visits are taken, not all: drawn per visit from a stream of their own
    taken = [t for i in range(12) for t in ps.make_stream(pool, table, cfg, seed=5, patient=i).visitor_taken]
    assert 0 < sum(taken) < len(taken)


def test_holds_last_30_to_300_s_and_show_one_face(streams) -> None:
    _, _, all_streams = streams
    for s in all_streams:
        length = s.hold_end - s.hold_start
        assert (length <= 300 + 1e-6).all()
        assert (length[~s.hold_cut] >= 30 - 1e-6).all()
        assert (length[~s.hold_cut] > 0).all()
        boundaries = {x for e in s.episodes for x in (e.start, e.end)} | {x for v in s.visits for x in v} | {s.end}
        assert all(end in boundaries for end in s.hold_end[s.hold_cut])
        assert np.median(length) > 100  # mostly whole holds
        # awake and not during a visit, every observation of a hold shows the hold's face
        awake = (s.condition == ps.DAY) | (s.condition == ps.NIGHT)
        h = np.searchsorted(s.hold_start, s.times, side="right") - 1
        seen = awake & ~ps.in_spans(s.times, s.visits)
        assert (s.face[seen] == s.hold_face[h[seen]]).all()


def test_night_frames_are_degraded(streams) -> None:
    pool, table, all_streams = streams
    s = all_streams[0]
    night = ps.is_night(s.times)
    assert np.isin(s.condition[night], [ps.NIGHT, ps.NIGHT_CLOSED]).all()
    assert np.isin(s.condition[~night], [ps.DAY, ps.DAY_CLOSED]).all()
    assert ps.is_night(22.5 * 3600) and ps.is_night(6.9 * 3600) and not ps.is_night(7.1 * 3600)
    face = pool.faces[s.identity.resting].image.astype(np.float64)
    day = [table.image(i).astype(np.float64) for i in table.ids(*_triples(s.identity.resting, ps.DAY, 8))]
    dark = [table.image(i).astype(np.float64) for i in table.ids(*_triples(s.identity.resting, ps.NIGHT, 8))]
    assert all(img.shape == (48, 48) for img in day + dark)
    assert np.mean([d.mean() for d in dark]) < 0.65 * np.mean([d.mean() for d in day])

    def corr(a: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), face.ravel())[0, 1])

    assert np.mean([corr(d) for d in dark]) < np.mean([corr(d) for d in day]) - 0.05
    # renderings are jittered copies of the same face, reproducible
    assert min(corr(d) for d in day) > 0.5
    assert not np.array_equal(day[0], day[1])
    assert np.array_equal(table.image(table.ids(*_triples(s.identity.resting, ps.DAY, 1))[0]), day[0])


def _triples(face: int, condition: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.full(n, face), np.full(n, condition), np.arange(n)


def test_sleep_and_gaps_show_no_open_eyes(streams) -> None:
    _, _, all_streams = streams
    for s in all_streams:
        asleep = ps.in_spans(s.times, s.asleep)
        assert np.isin(s.condition[asleep], [ps.DAY_CLOSED, ps.NIGHT_CLOSED]).all()
        assert (s.face[asleep] == s.identity.resting).all()
        assert not ps.in_spans(s.times, s.gaps).any()
        # asleep most of the night, and then mostly unseen: far fewer observations per hour than by day
        day = (s.times >= 10 * 3600) & (s.times < 20 * 3600)
        night = (s.times >= 1 * 3600) & (s.times < 5 * 3600)
        assert night.sum() / 4 < 0.7 * day.sum() / 10
        for e in s.episodes:  # an episode wakes the patient
            assert not any(a < e.end and e.start < b for a, b in s.asleep)


def test_episodes_come_from_the_scenario_at_the_requested_rate() -> None:
    for rate in (0.5, 2.0):
        cfg = ps.StreamConfig(episodes_per_day=rate)
        rng = np.random.default_rng(11)
        counts, hist = [], 0
        for _ in range(3000):
            eps = ps.draw_episodes(rng, cfg, start=-12 * 3600.0)
            day = [e for e in eps if e.start >= 0]
            counts.append(len(day))
            hist += len(eps) - len(day)
            assert all(10 - 1e-9 <= e.minutes <= 60 + 1e-9 for e in eps)
            assert all(a.end + cfg.episode_gap_s <= b.start for a, b in zip(eps, eps[1:], strict=False))
            assert all(e.end <= -1800 for e in eps if e.start < 0)
            assert all(e.label in ("sad", "angry") for e in eps)
        assert abs(np.mean(counts) - rate) < 4 * math.sqrt(rate / len(counts))
        assert hist / len(counts) == pytest.approx(rate / 2, rel=0.2)  # 12 h of history


def test_episodes_show_the_negative_face_and_do_not_depend_on_the_classifier(streams) -> None:
    pool, table, all_streams = streams
    shown = 0
    for s in all_streams:
        negative = {s.identity.sad, s.identity.angry}
        h_mid = (s.hold_start + s.hold_end) / 2
        in_ep = np.zeros(len(h_mid), bool)
        for e in s.episodes:
            in_ep |= (h_mid >= e.start) & (h_mid < e.end)
        assert not np.isin(s.hold_face[~in_ep], list(negative)).any()
        shown += np.isin(s.hold_face[in_ep], list(negative)).sum()
    assert shown > 0
    # the same seed and patient at two rates: the same person, nights and visits; other episodes
    low = ps.make_stream(pool, table, replace(CFG, episodes_per_day=0.5), seed=3, patient=1)
    high = ps.make_stream(pool, table, replace(CFG, episodes_per_day=4.0), seed=3, patient=1)
    assert low.identity == high.identity and low.visits == high.visits
    assert len(high.counted_episodes) != len(low.counted_episodes) or high.episodes != low.episodes


def test_each_rendering_is_classified_once() -> None:
    pool, table = prepared(CFG)
    calls: list[int] = []

    def counting(crops):
        calls.append(len(crops))
        return fake_classify(crops)

    known: dict[str, np.ndarray] = {}
    s = ps.make_stream(pool, table, CFG, seed=5, patient=0)
    used = np.unique(s.variant)
    probs = ps.classify_table(table, counting, known, ids=used)
    assert sum(calls) == len(used) < len(s.times) / 100
    assert np.isfinite(probs[used]).all()
    again = ps.classify_table(table, counting, known, ids=used)
    assert sum(calls) == len(used)  # nothing classified twice
    np.testing.assert_array_equal(again[used], probs[used])
    tl = s.timeline(probs)
    assert len(tl.times) == len(s.times) and (tl.labels == probs[s.variant].argmax(axis=1)).all()
    # a rendering the ward path misses gives no observations; one set aside neither
    missed = ps.classify_table(table, fake_classify, {}, through_ward=lambda img, seed: None, ids=used[:1])
    assert np.isnan(missed[used[0]]).all()
    read = np.ones(len(table.keys), bool)
    read[used[0]] = False
    assert len(s.timeline(probs, read).times) == len(s.times) - int((s.variant == used[0]).sum())


def test_resting_faces_are_chosen_by_their_score() -> None:
    pool = tiny_pool(per_class=12)
    pool.resting_score = {i: 0.05 * n for n, i in enumerate(pool.by_label["relaxed"])}  # 0.00 .. 0.55
    rng = np.random.default_rng(0)
    for _ in range(50):
        ordinary = ps.draw_identity(pool, "ordinary", rng)
        mild = ps.draw_identity(pool, "mild-negative", rng)
        assert pool.resting_score[ordinary.resting] < 0.25
        assert 0.25 <= pool.resting_score[mild.resting] < 0.50
        visitor = ps.draw_identity(pool, "ordinary", rng, avoid=set(ordinary.faces()))
        assert not set(visitor.faces()) & set(ordinary.faces())


def test_false_alerts_are_counted_over_all_patients(streams) -> None:
    _, _, all_streams = streams
    s = next(x for x in all_streams if x.counted_episodes)
    ep = s.counted_episodes[0]
    night_t = 3 * 3600.0 if not any(e.start <= 3 * 3600 <= e.end + 300 for e in s.episodes) else 23.5 * 3600
    day_t = next(t for t in np.arange(8, 21, 0.25) * 3600 if not any(e.start <= t <= e.end + 300 for e in s.episodes))
    opens = [ep.start + 120, ep.start + 200, day_t, night_t, DAY_S + 1800]  # the last: the next day's
    r = replace(ps.score_patient(s, opens, window_s=300), group="ordinary")
    assert r.episodes[0][1] == pytest.approx(120) and r.episodes[0][2] == 2
    assert (r.false_day, r.false_night, r.false) == (1, 1, 2)
    assert r.alerts == 2 + 2 + sum(n for _, _, n in r.episodes[1:])
    asleep = s.times[np.isin(s.condition, [ps.NIGHT_CLOSED]) & (s.times > 600) & (s.times < DAY_S)]
    on_sleep = ps.score_patient(s, [float(asleep[len(asleep) // 2])], window_s=60)
    assert on_sleep.false_asleep == 1 and ps.score_patient(s, [day_t], window_s=300).false_asleep == 0
    quiet = ps.PatientResult("ordinary", [], 0, 0, 0, 0)
    noisy = ps.PatientResult("mild-negative", [], 9, 3, 0, 12, false_asleep=2)
    fig = ps.Figures.of([r, *[quiet] * 8, noisy])
    assert fig.patient_days == 10
    assert fig.false_per_day == pytest.approx((2 + 12) / 10)  # every patient counts, not only ordinary ones
    assert fig.false_day_hours + fig.false_night_hours == pytest.approx(fig.false_per_day)
    assert fig.worst_decile == 12  # the worst tenth: one patient of ten
    assert fig.false_mild_negative == 12 and fig.false_ordinary == pytest.approx(2 / 9)
    assert fig.ppv == pytest.approx((r.alerts - 2) / (r.alerts + 12))
    assert fig.alerts_per_bed_day == pytest.approx((r.alerts + 12) / 10)
    assert fig.false_asleep == pytest.approx((r.false_asleep + 2) / 10)


def test_each_rendering_carries_the_face_quality_the_worker_would_compute(streams) -> None:
    """The streams' observations carry a face quality (areya.detectors.quality on the rendering, its size in the
    camera and the classifier's answer): in [0, 1], lower for the dim, small, noisy night renderings of a face than
    for its day ones; the timeline leaves out what a rule's min_face_quality sets aside."""
    from areya.detectors.boxes import FaceBox
    from areya.detectors.quality import face_quality

    pool, table, all_streams = streams
    s = all_streams[0]
    used = np.unique(s.variant)
    probs = ps.classify_table(table, fake_classify, ids=used)
    quality = ps.entry_quality(table, probs, used)
    assert np.isfinite(quality[used]).all() and ((quality[used] >= 0) & (quality[used] <= 1)).all()
    assert np.isnan(np.delete(quality, used)).all()
    day = table.ids(*_triples(s.identity.resting, ps.DAY, 3))
    night = table.ids(*_triples(s.identity.resting, ps.NIGHT, 3))
    both = np.concatenate([day, night])
    q = ps.entry_quality(table, ps.classify_table(table, fake_classify, ids=both), both)
    assert q[night].mean() < q[day].mean()
    img, side = table.image_sized(int(night[0]))
    assert 40 <= side <= 64 and table.image_sized(int(day[0]))[1] == ps.DAY_SIDE_PX
    assert np.array_equal(img, table.image(int(night[0])))
    p = ps.classify_table(table, fake_classify, ids=night[:1])[night[0]]
    assert q[night[0]] == pytest.approx(face_quality(img, FaceBox(0, 0, side, side, score=0.792995), p))
    read = ~(quality < np.median(quality[used]))
    tl = s.timeline(probs, read)
    assert 0 < len(tl.times) < len(s.times) and len(tl.times) == read[s.variant].sum()


def test_seed_interval() -> None:
    assert ps.seed_interval([1.0]) is None
    lo, hi = ps.seed_interval([1.0, 2.0, 3.0])
    assert lo < 2.0 < hi and hi - 2.0 == pytest.approx(4.30 * 1.0 / math.sqrt(3), rel=1e-3)


def test_rule_settings_are_read_as_settings() -> None:
    from areya.config import Settings
    from bench.bench_alert_streams import rule_from

    name, params = rule_from(["negative_window_s=600", "min_obs=120", "negative_baseline_s=off"], Settings())
    assert (params.window_s, params.min_obs, params.baseline_s) == (600, 120, 0)
    assert "negative_window_s=600" in name
    with pytest.raises(SystemExit):
        rule_from(["no_such_setting=1"], Settings())
    with pytest.raises(SystemExit):
        rule_from(["negative_open_share=0.3"], Settings())  # below the close share


@pytest.mark.slow
def test_bench_quick_runs(tmp_path: Path) -> None:
    """``python -m bench.bench_alert_streams --quick`` with the shipped model, on PublicTest when ../shared has it,
    else on generated faces."""
    data = SHARED_PUBLICTEST
    if not data.is_dir():
        data = tmp_path / "faces"
        write_face_tree(data, per_class=12)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AREYA_") or k.startswith("AREYA_TEST_")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_alert_streams", "--quick", "--data", str(data)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for rate in ("0.5", "2"):
        assert f"### {rate} episodes per patient-day, all patients" in out
    assert out.count("| defaults |") == 4
    assert "resting faces by their day renderings" in out

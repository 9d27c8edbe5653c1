"""Every benchmark in bench/ still runs: ``python -m bench.<name> --quick`` from the repository root, in a
subprocess, must exit 0 and print its figures.  Nothing is asserted about speed.

A new ``bench/bench_*.py`` is run too (it must take ``--quick`` and print something), and
``test_every_bench_is_expected`` fails until it has a row in :data:`EXPECTED` saying what it prints.  Benches that
read ``../shared/data`` (FER-2013, the sample clip) are skipped without it; ``bench_scaleout`` without the
PostgreSQL server binaries.  Minutes in all: marked ``slow`` (``.ci/run --full``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TIMEOUT_S = 600  # a quick run takes seconds to a minute or two on a busy 2-core machine


@dataclass(frozen=True)
class Expect:
    printed: tuple[str, ...]  # regular expressions, each found in stdout (re.MULTILINE)
    shared: tuple[str, ...] = ()  # paths under ../shared/data it needs (skipped when one is missing)
    postgres_server: bool = False  # needs PostgreSQL's server binaries (initdb, pg_ctl)


FER_TRAIN, FER_TEST = "fer2013/train", "fer2013/publictest"
EXPECTED = {
    "bench_adt": Expect((r"^sqlite +60 ", r"ACK latency")),
    "bench_alert_rules": Expect((r"^\| shipped defaults \|", r"engine check .*: same"), (FER_TRAIN,)),
    "bench_alert_streams": Expect((r"^### 0\.5 episodes per patient-day", r"^\| defaults \| "), (FER_TEST,)),
    "bench_bedside_roles": Expect(
        (r"^\| visitor seated \| ", r"^\| every face \(before\) \| ", r"^\| all cues \| \d of 3 \| \d of 3 \|"),
        (FER_TEST,),
    ),
    "bench_cached_ward_crops": Expect((r"ward crops written to", r"4-class accuracy [\d.]+ on \d+ crops"), (FER_TEST,)),
    "bench_detection": Expect(
        (r"^\| blazeface both \(default\) \|", r"^Real data:", r"over every frame of the sequences"), (FER_TEST,)
    ),
    "bench_detectors": Expect((r"^blazeface \(full range, default\) +1280x720", r"^haar +640x480")),
    "bench_fhir": Expect((r"^\| sqlite: query \|", r"^\| rows: deep page \(cursor at 97 %\) \|", r"slowest page")),
    "bench_ingest": Expect((r"^published \d+ frames", r"such cameras per ingestor core")),
    "bench_int8": Expect((r"faces per CPU-second", r"ensemble 7-class accuracy on the validation part"), (FER_TRAIN,)),
    "bench_lite_precision": Expect((r"^\| float16 \|", r"^\| int8 \(served\) \|")),
    "bench_member_outputs": Expect((r"^\| model TTA \|", r"^\| greedy ", r"^\| cascade model -> model "), (FER_TRAIN,)),
    "bench_night_ward": Expect((r"^\| lit upright \| 6 \|", r"^\| night \| 6 \|"), (FER_TEST,)),
    "bench_night_ward_e2e": Expect(
        (r"^\| night \| night-1 \| 6 \| ", r"^\| lit \| 6 \(4 \+ 2\) \|", r"^\| night \| 6 \(4 \+ 2\) \|"), (FER_TEST,)
    ),
    "bench_pipeline": Expect((r"^throughput: 1 worker\(s\)", r"^latency: 1 worker", r"^blazeface track=0: ")),
    "bench_scaleout": Expect(
        (r"1 worker: ", r"scheduler failover: ", r"verdict: none lost: True; none duplicated: True"),
        postgres_server=True,
    ),
    "bench_scheduler_tick": Expect((r"^RESULT \[incremental\]", r"^RESULT \[full-window\]")),
    "bench_train_speed": Expect((r"train \d+ images/s, predict \d+ faces/s",)),
    "bench_tta_views": Expect((r"^\| model \| mirror \(served\) \|", r"^\| model \| all \|"), (FER_TRAIN,)),
    "bench_validation": Expect((r"^\| areya-fer \| [\d.]+ \|",), (FER_TRAIN,)),
    "bench_vs_fer": Expect(
        (r"^ours areya-fer\S* +7-class +FER-2013 ", r"^ours areya-fer\S* +4 served \S+ +FER\+ "), (FER_TEST,)
    ),
    "bench_ward_augment": Expect((r"^ward augmentation off: ", r"^ward augmentation  on: ")),
    "bench_ward_crops": Expect((r"^FER 48x48 \(direct\)", r"^box \+ 0\.15, eyes level"), (FER_TRAIN,)),
    "bench_web_concurrency": Expect((r"^logins: 12 ", r"every attempt audited")),
    "bench_web_tiles": Expect((r"^TileWatcher\.poll", r"^load_tiles")),
}
BENCHES = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))


def test_every_bench_is_expected() -> None:
    missing, gone = sorted(set(BENCHES) - set(EXPECTED)), sorted(set(EXPECTED) - set(BENCHES))
    assert not missing, f"no row in EXPECTED (what its --quick run prints) for bench/{missing}"
    assert not gone, f"rows in EXPECTED for benches that are gone: {gone}"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AREYA_") or k.startswith("AREYA_TEST_")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


@pytest.mark.parametrize("name", BENCHES)
def test_quick_run(name: str) -> None:
    expect = EXPECTED.get(name, Expect((r"\S",)))  # no row yet: exit status 0 and some output
    missing = [p for p in expect.shared if not (SHARED / p).exists()]
    if missing:
        pytest.skip(f"needs {', '.join(str(SHARED / p) for p in missing)}")
    if expect.postgres_server and not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("needs PostgreSQL's server binaries (apt-get install postgresql)")
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--quick"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    tail = f"\n--- stdout (end) ---\n{result.stdout[-3000:]}\n--- stderr (end) ---\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"exit status {result.returncode}{tail}"
    for pattern in expect.printed:
        assert re.search(pattern, result.stdout, re.MULTILINE), f"no line matching {pattern!r}{tail}"

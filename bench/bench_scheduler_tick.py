"""Alert scheduler benchmark: the cost of one tick for many patients with a realistic observation volume.

Builds a migrated database (SQLite file by default, or --database-url postgresql://...) with ``--patients``
admitted patients (20 beds per ward, one camera per ward), ``--rate`` observations per second per patient for
``--history-min`` minutes (the newest ``negative_window_s`` of it inside the rule's window), some patients
sustained sad, then times full ticks (negative-emotion rule for every patient, escalation, camera checks;
retention off) at the injected "now".  The first tick opens the alerts; the later ones are steady state.

    nice python -m bench.bench_scheduler_tick --patients 1000 --rate 1.0 --history-min 15 --ticks 5 [--quick]

Prints figures; not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PROBS = {
    "angry": (0.7, 0.05, 0.15, 0.1),
    "happy": (0.03, 0.85, 0.1, 0.02),
    "relaxed": (0.06, 0.1, 0.77, 0.07),
    "sad": (0.08, 0.04, 0.13, 0.75),
}


class Feed:
    """Writes observations for every patient: ``rate`` per second each, in time order, deterministic."""

    def __init__(self, engine: Any, patients: int, rate: float, sad_share: float, seed: int) -> None:
        self.engine = engine
        self.patients = patients
        self.step = 1.0 / rate
        self.rng = random.Random(seed)
        self.sad = set(self.rng.sample(range(1, patients + 1), max(1, int(patients * sad_share))))
        self.seq = 0
        self.total = 0

    def write(self, start: datetime, end: datetime) -> int:
        """Observations captured in [start, end) for every patient; returns how many."""
        from sqlalchemy import insert

        from areya.db.models import Observation

        rng, batch, written = self.rng, [], 0
        t = start
        while t < end:
            for pid in range(1, self.patients + 1):
                if pid in self.sad:
                    label = "sad" if rng.random() < 0.85 else "relaxed"
                else:
                    label = rng.choices(("happy", "relaxed", "sad", "angry"), (0.35, 0.5, 0.1, 0.05))[0]
                pa, ph, pr, ps = PROBS[label]
                at = t + timedelta(milliseconds=rng.randrange(0, max(1, int(self.step * 1000))))
                self.seq += 1
                batch.append(
                    {
                        "patient_id": pid,
                        "bed_id": pid,
                        "camera_id": (pid - 1) // 20 + 1,
                        "captured_at": at,
                        "frame_id": f"f{self.seq}",
                        "face_index": 0,
                        "box_x": 0.1,
                        "box_y": 0.1,
                        "box_w": 0.1,
                        "box_h": 0.1,
                        "p_angry": pa,
                        "p_happy": ph,
                        "p_relaxed": pr,
                        "p_sad": ps,
                        "probs7": [0.1, 0.05, 0.05, ph, ps, 0.05, pr],
                        "label4": label,
                        "label7": "neutral" if label == "relaxed" else label,
                        "confidence4": max(pa, ph, pr, ps),
                        "model_version": "bench",
                        "created_at": at,
                    }
                )
            if len(batch) >= 20_000:
                written += self._flush(batch, insert, Observation)
            t += timedelta(seconds=self.step)
        written += self._flush(batch, insert, Observation)
        self.total += written
        return written

    def _flush(self, batch: list[dict], insert: Any, observation: Any) -> int:
        if not batch:
            return 0
        with self.engine.begin() as conn:
            conn.execute(insert(observation), batch)
        n = len(batch)
        batch.clear()
        return n


def populate_ward_set(engine: Any, patients: int) -> None:
    from sqlalchemy import insert

    from areya.db.models import Bed, BedAssignment, Camera, Patient, Ward

    created = NOW - timedelta(days=1)
    wards = (patients + 19) // 20
    with engine.begin() as conn:
        conn.execute(
            insert(Ward), [{"id": w + 1, "name": f"Ward {w + 1}", "created_at": created} for w in range(wards)]
        )
        conn.execute(
            insert(Camera),
            [
                {
                    "id": w + 1,
                    "ward_id": w + 1,
                    "name": "cam",
                    "source_url": "file:///dev/null",
                    "sample_fps": 2.0,
                    "enabled": True,
                    "health_status": "online",
                    "last_frame_at": NOW + timedelta(days=1),
                    "created_at": created,
                }
                for w in range(wards)
            ],
        )
        conn.execute(
            insert(Bed), [{"id": p + 1, "ward_id": p // 20 + 1, "label": f"B{p % 20 + 1}"} for p in range(patients)]
        )
        conn.execute(
            insert(Patient),
            [
                {
                    "id": p + 1,
                    "mrn": f"M{p + 1}",
                    "display_name": f"P{p + 1}",
                    "admitted_at": created,
                    "status": "admitted",
                }
                for p in range(patients)
            ],
        )
        conn.execute(
            insert(BedAssignment),
            [{"patient_id": p + 1, "bed_id": p + 1, "start_at": created} for p in range(patients)],
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=1.0, help="observations per second per patient")
    ap.add_argument("--history-min", type=float, default=15.0, help="minutes of observations stored")
    ap.add_argument("--sad-share", type=float, default=0.02, help="share of patients sustained sad")
    ap.add_argument("--ticks", type=int, default=5)
    ap.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=("both", "incremental", "full-window"), default="both")
    ap.add_argument("--quick", action="store_true", help="smoke run: 40 patients (2 sad), 6 min of history, 2 ticks")
    args = ap.parse_args(argv)
    if args.quick:
        args.patients, args.sad_share, args.history_min, args.ticks = 40, 0.05, 6.0, 2

    from sqlalchemy import func, select

    from areya.alerts.engine import AlertEngine
    from areya.config import load_settings
    from areya.db.engine import create_db_engine, create_session_factory
    from areya.db.migrate import upgrade
    from areya.db.models import Alert, Observation

    with tempfile.TemporaryDirectory(prefix="areya-bench-tick-") as tmp:
        env = {"AREYA_DATA_DIR": tmp}
        if args.database_url:
            env["AREYA_DATABASE_URL"] = args.database_url
        settings = load_settings(env=env)
        engine = create_db_engine(settings)
        upgrade(settings, engine=engine)
        with engine.connect() as conn:
            if conn.scalar(select(func.count()).select_from(Observation)):
                sys.exit("the database is not empty: give a fresh one")
        populate_ward_set(engine, args.patients)
        feed = Feed(engine, args.patients, args.rate, args.sad_share, args.seed)
        t0 = time.perf_counter()
        feed.write(NOW - timedelta(minutes=args.history_min), NOW)
        insert_s = time.perf_counter() - t0
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        window = settings.negative_window_s
        print(
            f"database: {engine.dialect.name}; {args.patients} admitted patients, {feed.total:,} observations "
            f"({args.rate:g}/s/patient over {args.history_min:g} min: "
            f"~{args.patients * args.rate * min(window, args.history_min * 60):,.0f} in the {window}s window), "
            f"{len(feed.sad)} sustained sad (inserted in {insert_s:.0f}s)"
        )
        tick_s = settings.scheduler_tick_s
        results = {}
        now = NOW
        for mode, incremental in (("incremental", True), ("full-window", False)):
            if args.mode not in ("both", mode):
                continue
            alert_engine = AlertEngine(settings, create_session_factory(engine), incremental=incremental)
            times, cpu = [], []
            for k in range(args.ticks):
                if k or now > NOW:  # the pipeline keeps writing: tick_s seconds of new observations (not timed)
                    feed.write(now - timedelta(seconds=tick_s), now)
                c0 = time.process_time()
                report = alert_engine.tick(now, retention=False)
                cpu.append(time.process_time() - c0)  # this process's CPU: SQLite runs in it; wall time includes
                times.append(report.seconds)  # waiting for a core on a busy machine
                print(
                    f"[{mode}] tick {k + 1}: {report.seconds * 1000:8.1f} ms wall {cpu[-1] * 1000:8.1f} ms cpu  "
                    f"patients={report.patients} "
                    f"with_evidence={report.with_evidence} opened={report.opened}"
                )
                now += timedelta(seconds=tick_s)
            results[mode] = (times, cpu)
        with engine.connect() as conn:
            alerts = conn.scalar(select(func.count()).select_from(Alert).where(Alert.kind == "negative_emotion"))
        print(f"negative_emotion alerts open: {alerts} (sustained sad patients: {len(feed.sad)})")
        print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        for mode, (times, cpu) in results.items():
            steady, steady_cpu = times[1:] or times, cpu[1:] or cpu
            print(
                f"RESULT [{mode}] tick for {args.patients} patients: first (cold) {times[0] * 1000:.0f} ms wall / "
                f"{cpu[0] * 1000:.0f} ms cpu; steady median {statistics.median(steady) * 1000:.0f} ms wall / "
                f"{statistics.median(steady_cpu) * 1000:.0f} ms cpu, max {max(steady) * 1000:.0f} ms wall / "
                f"{max(steady_cpu) * 1000:.0f} ms cpu (goal < 1000 ms)"
            )
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cost of the ward view's live updates: one TileWatcher poll (every ~2 s per open ward view) and a full tile
render, for a ward of N beds whose patients have an hour of observations at F per second (not part of pytest).

    nice python -m bench.bench_web_tiles [--beds 30] [--fps 2] [--minutes 60] [--database-url URL] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from areya import admin
from areya.alerts.rules import RuleParams
from areya.config import load_settings
from areya.db.engine import create_db_engine, create_session_factory
from areya.db.migrate import upgrade
from areya.db.models import LABELS4, Observation
from areya.db.types import utcnow
from areya.webapp.tiles import TileWatcher, load_tiles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beds", type=int, default=30)
    parser.add_argument("--fps", type=float, default=2.0, help="observations per second per patient")
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 beds, 5 minutes of observations, 3 polls")
    args = parser.parse_args(argv)
    if args.quick:
        args.beds, args.minutes, args.repeat = 4, 5, 3

    tmp = Path(tempfile.mkdtemp(prefix="areya-bench-web-"))
    env = {"AREYA_DATA_DIR": str(tmp)}
    if args.database_url:
        env["AREYA_DATABASE_URL"] = args.database_url
    settings = load_settings(env=env)
    upgrade(settings)
    engine = create_db_engine(settings)
    factory = create_session_factory(engine)
    now = utcnow()
    with factory() as s:
        ward = admin.add_ward(s, "Bench")
        beds = [admin.add_bed(s, "Bench", str(i + 1)) for i in range(args.beds)]
        patients = [admin.admit_patient(s, f"B{i:04d}", f"Patient {i}", f"Bench/{i + 1}") for i in range(args.beds)]
        s.commit()
        ward_id = ward.id
        n = int(args.minutes * 60 * args.fps)
        started = time.perf_counter()
        for bed, patient in zip(beds, patients, strict=True):
            rows = []
            for k in range(n):
                label = LABELS4[(k // 7) % 4]
                rows.append(
                    dict(
                        patient_id=patient.id,
                        bed_id=bed.id,
                        camera_id=None,
                        captured_at=now - timedelta(seconds=(n - k) / args.fps),
                        frame_id=f"b{patient.id}-{k}",
                        face_index=0,
                        box_x=0.1,
                        box_y=0.1,
                        box_w=0.1,
                        box_h=0.1,
                        p_angry=0.25,
                        p_happy=0.25,
                        p_relaxed=0.25,
                        p_sad=0.25,
                        probs7=[1 / 7] * 7,
                        label4=label,
                        label7={"relaxed": "neutral"}.get(label, label),
                        confidence4=0.25,
                        model_version="bench",
                        created_at=now,
                    )
                )
            s.execute(insert(Observation), rows)
        s.commit()
        total = n * args.beds
        print(
            f"database: {engine.url.get_backend_name()}; {args.beds} beds x {n} observations = {total} rows "
            f"(inserted in {time.perf_counter() - started:.1f} s)"
        )

    params = RuleParams.from_settings(settings)  # the rule's window and thresholds, as the ward view passes them
    watcher = TileWatcher(ward_id)
    polls, renders = [], []
    with factory() as s:
        watcher.poll(s, None, utcnow())  # baseline
    for i in range(args.repeat):
        with factory() as s:
            s.execute(
                insert(Observation),
                [
                    dict(
                        patient_id=patients[i % args.beds].id,
                        bed_id=beds[i % args.beds].id,
                        camera_id=None,
                        captured_at=utcnow(),
                        frame_id=f"new-{i}",
                        face_index=0,
                        box_x=0.1,
                        box_y=0.1,
                        box_w=0.1,
                        box_h=0.1,
                        p_angry=0.7,
                        p_happy=0.1,
                        p_relaxed=0.1,
                        p_sad=0.1,
                        probs7=[1 / 7] * 7,
                        label4="angry",
                        label7="angry",
                        confidence4=0.7,
                        model_version="bench",
                        created_at=utcnow(),
                    )
                ],
            )
            s.commit()
        with factory() as s:
            t0 = time.perf_counter()
            changed = watcher.poll(s, None, utcnow())
            t1 = time.perf_counter()
            tiles = load_tiles(s, ward_id, None, utcnow(), changed, params=params)
        assert len(tiles) == 1, changed
        polls.append(t1 - t0)
        with factory() as s:
            t3 = time.perf_counter()
            load_tiles(s, ward_id, None, utcnow(), params=params)
            renders.append(time.perf_counter() - t3)
    print(
        f"TileWatcher.poll (one new observation): median {statistics.median(polls) * 1000:.1f} ms, "
        f"max {max(polls) * 1000:.1f} ms"
    )
    print(
        f"load_tiles, all {args.beds} tiles with last-hour trends: "
        f"median {statistics.median(renders) * 1000:.1f} ms, max {max(renders) * 1000:.1f} ms"
    )
    engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

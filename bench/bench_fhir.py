"""FHIR Observation search latency on a large table: one patient with 300,000 stored observations over 24 hours
(about 3.5 a second), searched by an ICU nurse with an API token through the Flask app (routing, auth, ward
scoping, the query, JSON, the audit row), on SQLite and PostgreSQL.

    python -m bench.bench_fhir [--observations 300000] [--repeat 5] [--seed 0]
                               [--postgres-url URL | env AREYA_TEST_POSTGRES_URL] [--backends sqlite postgresql]
    python -m bench.bench_fhir --quick      # 3,000 observations, 2 repeats

Timed, each ``--repeat`` times (median and worst, ms): the first page of per-minute summaries (the default search)
and of stored observations, ``_count=1`` of both, a date-bounded page (a 6-hour window in the middle of the day),
a deep page (a cursor 97 % of the way through the rows or minutes), the largest page (``_count=200``, clamped from
1000) and ``_count=0`` (the total only). Figures: docs/experiments/2026-12-fhir-search.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import insert, select

from areya import admin
from areya.config import load_settings
from areya.db.engine import create_db_engine, create_session_factory
from areya.db.migrate import upgrade
from areya.db.models import LABELS4, Observation
from areya.db.types import utcnow
from areya.webapp.tokens import create_token
from areya.webapp.views.fhir import cursor_text
from bench.bench_adt import fresh_postgres_database  # a fresh database on the server, and its drop

RAW = quote("urn:areya:observation|emotion-face")
PASSWORD = "bench-Fhir-0b5ervation5!"
BATCH = 10_000


@dataclass
class Timing:
    name: str
    ms: list[float]
    entries: int
    total: int | None

    def row(self) -> str:
        total = "-" if self.total is None else str(self.total)
        return f"| {self.name} | {statistics.median(self.ms):.0f} | {max(self.ms):.0f} | {self.entries} | {total} |"


def populate(settings: Any, n: int, seed: int) -> dict[str, Any]:
    """Ward ICU, bed 1, one admitted patient with ``n`` observations over the last 24 h; a nurse's token."""
    upgrade(settings)
    engine = create_db_engine(settings)
    rng = random.Random(seed)
    try:
        with create_session_factory(engine)() as s:
            admin.add_ward(s, "ICU")
            bed = admin.add_bed(s, "ICU", "1")
            now = utcnow().replace(microsecond=0)
            start = now - timedelta(hours=24)
            patient = admin.admit_patient(s, "B0001", "Bench Patient", "ICU/1", at=start - timedelta(minutes=1))
            admin.add_user(s, "nurse", "nurse", PASSWORD, ["ICU"])
            token = create_token(s, admin.get_user(s, "nurse"), "bench")[1]
            s.commit()
            ids = {"patient_id": patient.id, "bed_id": bed.id, "start": start, "token": token}
        step = timedelta(hours=24) / n
        table = Observation.__table__
        with engine.begin() as conn:
            for first in range(0, n, BATCH):
                rows = []
                for i in range(first, min(n, first + BATCH)):
                    p = [rng.random() for _ in LABELS4]
                    total = sum(p)
                    p = [x / total for x in p]
                    top = max(range(4), key=p.__getitem__)
                    rows.append(
                        {
                            "patient_id": ids["patient_id"],
                            "bed_id": ids["bed_id"],
                            "camera_id": None,
                            "captured_at": start + step * i,
                            "frame_id": f"bench-{i}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
                            "face_index": 0,
                            "box_x": 0.1,
                            "box_y": 0.1,
                            "box_w": 0.2,
                            "box_h": 0.2,
                            "p_angry": p[0],
                            "p_happy": p[1],
                            "p_relaxed": p[2],
                            "p_sad": p[3],
                            "probs7": [1 / 7] * 7,
                            "label4": LABELS4[top],
                            "label7": "neutral",
                            "confidence4": p[top],
                            "model_version": "bench",
                            "quality": 0.9,
                        }
                    )
                conn.execute(insert(table), rows)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE observations")
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        with create_session_factory(engine)() as s:  # where the deep pages start
            deep = int(n * 0.97)
            ids["deep_row"] = s.execute(
                select(Observation.captured_at, Observation.id)
                .where(Observation.patient_id == ids["patient_id"])
                .order_by(Observation.captured_at, Observation.id)
                .offset(deep)
                .limit(1)
            ).one()
        return ids
    finally:
        engine.dispose()


def measure(settings: Any, ids: dict[str, Any], repeat: int) -> list[Timing]:
    from areya.webapp import create_app

    app = create_app(settings, redis_client=None)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {ids['token']}"}
    pid, start = ids["patient_id"], ids["start"]
    window = f"date=ge{(start + timedelta(hours=9)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    window += f"&date=lt{(start + timedelta(hours=15)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    deep_at, deep_id = ids["deep_row"]
    deep_minute = deep_at.replace(second=0, microsecond=0)
    base = f"/fhir/Observation?patient={pid}"
    queries = [
        ("minutes: first page (_count=50)", base),
        ("minutes: _count=1", f"{base}&_count=1"),
        ("minutes: 6-hour date window", f"{base}&{window}"),
        ("minutes: deep page (cursor at 97 %)", f"{base}&_cursor={cursor_text(deep_minute)}"),
        ("minutes: _count=1000 (clamped to 200)", f"{base}&_count=1000"),
        ("minutes: _count=0 (total only)", f"{base}&_count=0"),
        ("rows: first page (_count=50)", f"{base}&code={RAW}"),
        ("rows: _count=1", f"{base}&code={RAW}&_count=1"),
        ("rows: 6-hour date window", f"{base}&code={RAW}&{window}"),
        ("rows: deep page (cursor at 97 %)", f"{base}&code={RAW}&_cursor={cursor_text(deep_at, deep_id)}"),
        ("rows: _count=1000 (clamped to 200)", f"{base}&code={RAW}&_count=1000"),
        ("rows: _count=0 (total only)", f"{base}&code={RAW}&_count=0"),
        ("rows: date=lt0001-01-01", f"{base}&code={RAW}&date=lt0001-01-01"),
        ("rows: date=le9999-12-31T23:59:59-14:00", f"{base}&code={RAW}&date=le9999-12-31T23:59:59-14:00"),
    ]
    client.get(base, headers=headers)  # warm up (imports, caches)
    out = []
    for name, url in queries:
        ms: list[float] = []
        body: dict[str, Any] = {}
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get(url, headers=headers)
            ms.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{name}: HTTP {response.status_code} {response.get_data(as_text=True)[:300]}")
            body = response.get_json(force=True)
        out.append(Timing(name, ms, len(body.get("entry", [])), body.get("total")))
    return out


def run_backend(backend: str, url: str, data_dir: Path, n: int, repeat: int, seed: int) -> None:
    settings = load_settings(env={"AREYA_DATA_DIR": str(data_dir), "AREYA_DATABASE_URL": url})
    t0 = time.perf_counter()
    ids = populate(settings, n, seed)
    print(f"{backend}: {n:,} observations of one patient over 24 h written in {time.perf_counter() - t0:.1f} s")
    print(f"\n| {backend}: query | median ms | worst ms | entries | Bundle.total |\n|---|---|---|---|---|")
    worst = 0.0
    for timing in measure(settings, ids, repeat):
        print(timing.row())
        worst = max(worst, max(timing.ms))
    print(f"\n{backend}: slowest page {worst:.0f} ms over all queries and repeats\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--observations", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="3,000 observations, 2 repeats")
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get("AREYA_TEST_POSTGRES_URL", ""),
        help="a PostgreSQL server (a fresh database is created on it and dropped); default AREYA_TEST_POSTGRES_URL",
    )
    ap.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    args = ap.parse_args(argv)
    n, repeat = (3_000, 2) if args.quick else (args.observations, args.repeat)
    for backend in args.backends:
        with tempfile.TemporaryDirectory(prefix="bench-fhir-") as tmp:
            if backend == "sqlite":
                run_backend(backend, f"sqlite:///{tmp}/areya.db", Path(tmp), n, repeat, args.seed)
            elif not args.postgres_url:
                print("postgresql  skipped: no --postgres-url and AREYA_TEST_POSTGRES_URL is not set")
            else:
                url, drop = fresh_postgres_database(args.postgres_url)
                try:
                    run_backend(backend, url, Path(tmp), n, repeat, args.seed)
                finally:
                    drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

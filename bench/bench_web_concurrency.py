"""Concurrent logins against a real dashboard while the pipeline writes observations at full rate (issue 11, item 4;
not part of pytest): answers by status, latency, observations written meanwhile, and whether every attempt is in the
audit log. Exit status 1 if any answer is a 5xx or an attempt is not audited.

    nice python -m bench.bench_web_concurrency [--logins 50] [--users 5] [--wrong-share 0.5] [--rounds 2]
                                               [--database-url URL] [--gunicorn --threads 32] [--quick]

Each round starts every login at once (a barrier); half of them (``--wrong-share``) use a wrong password, so one
user's failures run into the login rate limit (429). The server is werkzeug's threaded one in this process, or with
``--gunicorn`` the production command ``areya web --gunicorn`` (1 worker) as a separate process.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

from areya import admin
from areya.config import load_settings
from areya.db.engine import create_db_engine, create_session_factory
from areya.db.migrate import upgrade
from areya.db.models import AuditEvent
from areya.db.types import utcnow
from areya.worker.store import write_observations

PASSWORD = "bench-password-long-enough"
CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')
AUDIT = {302: "auth.login", 401: "auth.login_failed", 429: "auth.login_rate_limited"}


def setup(settings: Any, users: int) -> dict[str, int]:
    upgrade(settings)
    engine = create_db_engine(settings)
    with create_session_factory(engine)() as s:
        ward = admin.add_ward(s, "Bench")
        bed = admin.add_bed(s, "Bench", "1")
        patient = admin.admit_patient(s, "B0001", "Bench Patient", "Bench/1")
        for i in range(users):
            admin.add_user(s, f"user{i}", "nurse", PASSWORD, ["Bench"])
        admin.add_user(s, "target", "nurse", PASSWORD, ["Bench"])
        s.commit()
        ids = {"ward_id": ward.id, "bed_id": bed.id, "patient_id": patient.id}
    engine.dispose()
    return ids


def rows(ids: dict[str, int], n: int) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "patient_id": ids["patient_id"],
            "bed_id": ids["bed_id"],
            "camera_id": None,
            "captured_at": now,
            "frame_id": f"bench-{uuid.uuid4().hex}",
            "face_index": 0,
            "box_x": 0.1,
            "box_y": 0.1,
            "box_w": 0.2,
            "box_h": 0.2,
            "p_angry": 0.1,
            "p_happy": 0.1,
            "p_relaxed": 0.7,
            "p_sad": 0.1,
            "probs7": [1 / 7] * 7,
            "label4": "relaxed",
            "label7": "neutral",
            "confidence4": 0.7,
            "model_version": "bench",
        }
        for _ in range(n)
    ]


def login(base: str, username: str, password: str, barrier: threading.Barrier) -> tuple[int, float]:
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=300)
    token = CSRF_RE.search(page.text)
    if token is None:
        return page.status_code, 0.0
    barrier.wait(timeout=300)
    started = time.perf_counter()
    answer = browser.post(
        f"{base}/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=300,
    )
    return answer.status_code, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(settings: Any, env: dict[str, str], args: argparse.Namespace) -> tuple[str, Any]:
    """The dashboard on loopback; returns its URL and a stop function."""
    if args.gunicorn:
        port = free_port()
        bin_dir = Path(sys.executable).parent  # areya and gunicorn of this environment
        path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        proc = subprocess.Popen(
            [
                str(bin_dir / "areya"),
                "web",
                "--gunicorn",
                "--host",
                "127.0.0.1",  # noqa: S603
                "--port",
                str(port),
                "--workers",
                "1",
                "--threads",
                str(args.threads),
            ],
            env={**os.environ, **env, "PATH": path},
            stdout=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"{base}/login", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        if proc.poll() is not None:
            raise SystemExit(f"areya web --gunicorn exited with status {proc.returncode}")

        def stop() -> None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            from areya.comms.redis_server import EmbeddedRedis

            EmbeddedRedis(settings.redis_dir).stop()  # the embedded Redis its worker used (if still running)

        return base, stop
    import logging

    from werkzeug.serving import make_server

    from areya.webapp import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    server = make_server("127.0.0.1", 0, create_app(settings, redis_client=None), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_port}", server.shutdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=50, help="simultaneous logins per round")
    parser.add_argument("--users", type=int, default=5, help="users logging in with the right password")
    parser.add_argument("--wrong-share", type=float, default=0.5, help="share of attempts with a wrong password")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16, help="observations per pipeline transaction")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--gunicorn", action="store_true", help="serve with `areya web --gunicorn` (1 worker)")
    parser.add_argument("--threads", type=int, default=32, help="gunicorn threads")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: one round of 12 logins, 2 users (6 wrong: one over the limit)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.logins, args.users, args.rounds = 12, 2, 1

    tmp = Path(tempfile.mkdtemp(prefix="areya-bench-concurrency-"))
    env = {"AREYA_DATA_DIR": str(tmp), "AREYA_SECRET_KEY": "bench-secret-key-0123456789abcdef"}
    if args.database_url:
        env["AREYA_DATABASE_URL"] = args.database_url
    settings = load_settings(env=env)
    ids = setup(settings, args.users)
    engine = create_db_engine(settings)
    stop, written, writer_errors = threading.Event(), [], []

    def pipeline() -> None:
        while not stop.is_set():
            try:
                written.append(write_observations(engine, rows(ids, args.batch)))
            except Exception as exc:  # noqa: BLE001 - counted and printed
                writer_errors.append(f"{type(exc).__name__}: {exc}")

    base, stop_server = serve(settings, env, args)
    writer = threading.Thread(target=pipeline, daemon=True)
    writer.start()
    started = time.perf_counter()
    results: list[tuple[int, float]] = []
    wrong = int(args.logins * args.wrong_share)
    try:
        for _ in range(args.rounds):
            plans = [
                ("target", "wrong-password") if i < wrong else (f"user{i % args.users}", PASSWORD)
                for i in range(args.logins)
            ]
            barrier = threading.Barrier(args.logins)
            out: list[tuple[int, float]] = [(0, 0.0)] * args.logins

            def run(
                i: int, plan: tuple[str, str], barrier: threading.Barrier = barrier, out: list[tuple[int, float]] = out
            ) -> None:
                try:
                    out[i] = login(base, *plan, barrier)
                except Exception:  # noqa: BLE001 - a refused connection counts as an error
                    out[i] = (-1, 0.0)

            threads = [threading.Thread(target=run, args=(i, plan)) for i, plan in enumerate(plans)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            results.extend(out)
    finally:
        elapsed = time.perf_counter() - started
        stop.set()
        writer.join(timeout=60)
        stop_server()

    with create_session_factory(engine)() as s:
        audited = Counter(
            dict(
                s.execute(
                    select(AuditEvent.action, func.count())
                    .where(AuditEvent.action.in_(AUDIT.values()))
                    .group_by(AuditEvent.action)
                ).all()
            )
        )
    engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    statuses = Counter(code for code, _ in results)
    expected = Counter({AUDIT[c]: n for c, n in statuses.items() if c in AUDIT})
    latencies = sorted(t for code, t in results if code > 0)
    server_errors = sum(n for code, n in statuses.items() if code >= 500 or code < 0)
    server = f"gunicorn, 1 worker x {args.threads} threads" if args.gunicorn else "werkzeug threaded"
    print(f"server: {server}; database: {settings.database_url.split(':', 1)[0]}")
    print(f"logins: {len(results)} in {args.rounds} round(s) of {args.logins} at once, {elapsed:.1f} s")
    print("answers: " + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())))
    if latencies:
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        print(f"login latency: p50 {statistics.median(latencies):.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s")
    print(
        f"pipeline meanwhile: {sum(written)} observations in {len(written)} transactions "
        f"({sum(written) / elapsed:.0f}/s), {len(writer_errors)} failed writes"
    )
    print(
        "audit rows: "
        + ", ".join(f"{action}: {audited[action]}" for action in AUDIT.values())
        + ("  (every attempt audited)" if audited == expected else f"  MISMATCH, expected {dict(expected)}")
    )
    for error in writer_errors[:3]:
        print(f"  pipeline error: {error}")
    return 0 if server_errors == 0 and audited == expected and not writer_errors else 1


if __name__ == "__main__":
    raise SystemExit(main())

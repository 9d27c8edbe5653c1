"""Pipeline benchmark: worker frames/s (1 vs N worker processes) and capture->commit latency at a stated load.

Real parts: an embedded redis-server, a migrated SQLite database, the synthetic ward camera at 1280x720 with
1-3 faces per frame, the configured face detector and the shipped emotion model (an untrained network of the
same interface if no model is shipped yet: said in the output).  Frames are JPEG-encoded once up front and
stamped with their capture time when published, so the figures are the stream's and the worker's; a real
ingestor stamps the capture time before encoding, adding its JPEG encoding time (a few ms at 720p) to latency.

    nice python -m bench.bench_pipeline --frames 300 --workers 1 2 --latency-seconds 30 [--detector-options track=0]
    nice python -m bench.bench_pipeline --frames 200 --beds 4 --detect-only track=0 track=4   # detection alone
    nice python -m bench.bench_pipeline --quick   # smoke run of both, in seconds

Prints figures; not part of the test suite.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

RESULT_KEY = "bench:latencies"
MODEL_KEY = "bench:model"


def _settings(data_dir: str, detector: str, batch: int, batch_ms: int, detector_options: str = "") -> Any:
    from areya.config import load_settings

    return load_settings(
        env={
            "AREYA_DATA_DIR": data_dir,
            "AREYA_DETECTOR": detector,
            "AREYA_DETECTOR_OPTIONS": detector_options,
            "AREYA_WORKER_BATCH_SIZE": str(batch),
            "AREYA_WORKER_BATCH_MS": str(batch_ms),
        }
    )


def _classifier(model: str) -> tuple[Any, str]:
    from areya.emotion.inference import EmotionClassifier

    if model != "untrained":
        try:
            clf = EmotionClassifier.load(model)
            return clf, clf.model_version
        except FileNotFoundError:
            pass
    clf = EmotionClassifier.untrained()
    return clf, f"{clf.model_version} (NO SHIPPED MODEL: untrained stand-in of the same interface)"


def worker_main(
    data_dir: str,
    socket: str,
    detector: str,
    batch: int,
    batch_ms: int,
    model: str,
    ready: Any,
    go: Any,
    record: bool,
    idle_exit_s: float,
    detector_options: str = "",
) -> None:
    """One worker process: warm up, say ready, wait for go, run until idle."""
    import redis

    from areya.db.engine import create_db_engine
    from areya.detectors import detector_from_settings
    from areya.worker import Worker, WorkerConfig

    settings = _settings(data_dir, detector, batch, batch_ms, detector_options)
    client = redis.Redis(unix_socket_path=socket)
    clf, version = _classifier(model)
    client.set(MODEL_KEY, version)
    det = detector_from_settings(settings)  # the detector option defaults, or --detector-options
    worker = Worker(client, create_db_engine(settings), det, clf, WorkerConfig.from_settings(settings))
    worker.warm_up()
    worker.latencies = [] if record else None
    ready.release()
    go.wait()
    worker.run(idle_exit_s=idle_exit_s)
    if record and worker.latencies:
        client.rpush(RESULT_KEY, *[repr(x) for x in worker.latencies])


def _frames(beds: int, count: int, quality: int) -> tuple[list[tuple[bytes, int, int]], float]:
    from areya.camera.scenario import Scenario, Segment
    from areya.camera.synthetic import SyntheticWard
    from areya.comms.frames import encode_jpeg

    # bed 1 always occupied, bed k (k > 1) empty every k-th segment: 1..beds faces per frame
    segments = [
        Segment(b, i * 2.0, (i + 1) * 2.0, None if b and i % (b + 1) == b else "happy")
        for b in range(beds)
        for i in range(count)
    ]
    scenario = Scenario(beds=beds, segments=segments, duration=count * 2.0)
    ward = SyntheticWard(beds=beds, scenario=scenario, seed=1)
    out, faces = [], 0
    t = 0.0
    while len(out) < count:
        n = len(ward.face_boxes_at(t))
        if n:
            out.append((encode_jpeg(ward.render(t), quality), 1280, 720))
            faces += n
        t += 0.7
    return out, faces / len(out)


def _publish(
    client: Any, stream: str, camera_id: int, frames: list[tuple[bytes, int, int]], n: int, rate: float | None = None
) -> None:
    from areya.comms.frames import FrameMessage, FramePublisher

    pub = FramePublisher(client, stream, maxlen=100_000)
    start = time.monotonic()
    for i in range(n):
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        jpeg, w, h = frames[i % len(frames)]
        pub.publish(FrameMessage(camera_id, i, time.time(), jpeg, w, h))


def _processed(client: Any) -> float:
    return _counter(client, "areya_frames_processed_total")


def _counter(client: Any, name: str) -> float:
    """A counter summed over its labels (as the workers flushed it)."""
    from areya.metrics import COUNTERS_KEY

    return sum(
        float(v)
        for k, v in client.hgetall(COUNTERS_KEY).items()
        if k.startswith(name.encode()) and k[len(name) : len(name) + 1] in (b"", b"{")
    )


def _stage_ms_per_frame(client: Any) -> str:
    """Worker time per frame by stage, from the histograms the workers flushed (summed over workers)."""
    from areya.metrics import HISTOGRAMS_KEY

    sums: dict[str, float] = {}
    for key, value in client.hgetall(HISTOGRAMS_KEY).items():
        text = key.decode()
        if text.startswith("areya_stage_seconds_sum{"):
            sums[text.split('"')[1]] = float(value)
    frames = _processed(client) or 1.0
    order = ("decode", "detect", "classify", "db", "batch")
    return ", ".join(f"{stage} {sums[stage] * 1000 / frames:.1f}" for stage in order if stage in sums)


def _run_workers(
    args: argparse.Namespace, data_dir: str, socket: str, n_workers: int, *, record: bool, idle_exit_s: float
) -> tuple[list[mp.Process], Any]:
    ctx = mp.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    worker_args = (
        data_dir,
        socket,
        args.detector,
        args.batch,
        args.batch_ms,
        args.model,
        ready,
        go,
        record,
        idle_exit_s,
        args.detector_options,
    )
    procs = [ctx.Process(target=worker_main, args=worker_args) for _ in range(n_workers)]
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=600):
            raise RuntimeError("a worker did not start in 10 minutes")
    return procs, go


def detect_only(args: argparse.Namespace) -> None:
    """Detection alone on the bench's frames, each option set in turn on every frame (so all share the same load),
    through the worker's path: the camera's zones, one camera (its tracking state, if any)."""
    import cv2
    import numpy as np

    from areya.camera.synthetic import SyntheticWard
    from areya.detectors import create_detector, detect_for_camera
    from areya.detectors.options import check_options, parse_options_text

    frames, faces_per_frame = _frames(args.beds, args.unique_frames, 85)
    images = [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) for jpeg, _, _ in frames]
    zones = [z for _, z in SyntheticWard(beds=args.beds).zones()]
    dets = {
        text: create_detector(args.detector, **check_options(args.detector, parse_options_text(text)))
        for text in args.detect_only
    }
    for det in dets.values():
        detect_for_camera(det, images[0], zones, None)  # warm-up
    seconds, found = dict.fromkeys(dets, 0.0), dict.fromkeys(dets, 0)
    print(
        f"machine: {os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.1f} at start; detection only, "
        f"{args.frames} frames 1280x720, {faces_per_frame:.2f} faces/frame (1-{args.beds}), {args.beds} bed zones"
    )
    for i in range(args.frames):
        for text, det in dets.items():
            t0 = time.perf_counter()
            found[text] += len(detect_for_camera(det, images[i % len(images)], zones, "bench"))
            seconds[text] += time.perf_counter() - t0
    for text in dets:
        print(
            f"{args.detector} {text or '(default options)'}: {1000 * seconds[text] / args.frames:.1f} ms/frame, "
            f"{found[text] / args.frames:.2f} faces/frame"
        )
    print(f"load average {os.getloadavg()[0]:.1f} at end")


def _reset(client: Any, stream: str) -> None:
    from areya.metrics import COUNTERS_KEY, GAUGES_KEY, HISTOGRAMS_KEY

    client.delete(stream, COUNTERS_KEY, HISTOGRAMS_KEY, GAUGES_KEY, RESULT_KEY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="backlog frames per throughput run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker process counts to compare")
    parser.add_argument("--beds", type=int, default=3)
    parser.add_argument("--detector", default="blazeface")
    parser.add_argument(
        "--detector-options",
        default="",
        metavar="NAME=VALUE,...",
        help="as AREYA_DETECTOR_OPTIONS, e.g. track=0 (default: none, the options' defaults)",
    )
    parser.add_argument("--model", default="areya-fer", help="model name/path, or 'untrained'")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batch-ms", type=int, default=200)
    parser.add_argument("--rate", type=float, help="latency run load in frames/s (default: half of 1-worker fps)")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument(
        "--detect-only",
        nargs="+",
        metavar="OPTIONS",
        help="only time detection, for each option set (e.g. track=0 track=4) on every frame in turn",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 16 frames, 1 worker, 3 s of latency, then --detect-only '' track=0 on 4 frames",
    )
    args = parser.parse_args(argv)
    args.unique_frames = 8 if args.quick else 40  # distinct frames rendered (published round-robin)
    if args.quick:
        args.frames, args.workers, args.latency_seconds = 16, [1], 3.0
    if args.detect_only:
        detect_only(args)
        return 0

    from areya.comms.redis_server import EmbeddedRedis
    from areya.db.engine import create_db_engine, create_session_factory, session_scope
    from areya.db.migrate import upgrade
    from areya.demo import create_demo_ward

    tmp = tempfile.mkdtemp(prefix="areya-bench-")
    settings = _settings(tmp, args.detector, args.batch, args.batch_ms, args.detector_options)
    server = EmbeddedRedis(settings.redis_dir).start()
    client = server.client()
    try:
        engine = create_db_engine(settings)
        upgrade(settings, engine=engine)
        from areya.camera.synthetic import SyntheticWard

        zones = SyntheticWard(beds=args.beds).zones()
        with session_scope(create_session_factory(engine)) as session:
            demo = create_demo_ward(
                session, source_url=f"synthetic:beds={args.beds}", beds=args.beds, zones=zones, users=False
            )
        frames, faces_per_frame = _frames(args.beds, args.unique_frames, settings.jpeg_quality)
        print(f"machine: {os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.1f} at start")
        print(
            f"frames: 1280x720 JPEG q{settings.jpeg_quality}, {faces_per_frame:.2f} faces/frame (1-{args.beds}); "
            f"detector {args.detector} {args.detector_options or '(default options)'}; batch {args.batch} frames / "
            f"{args.batch_ms} ms"
        )

        fps1 = None
        for n in args.workers:
            _reset(client, settings.frame_stream)
            _publish(client, settings.frame_stream, demo.camera_id, frames, args.frames)
            procs, go = _run_workers(args, tmp, server.socket_path, n, record=False, idle_exit_s=2.0)
            t0 = time.monotonic()
            go.set()
            while _processed(client) < args.frames:
                time.sleep(0.05)
                if not any(p.is_alive() for p in procs):
                    break
            elapsed = time.monotonic() - t0
            for p in procs:
                p.join()
            fps = _processed(client) / elapsed
            fps1 = fps1 or fps
            print(
                f"throughput: {n} worker(s): {args.frames} frames in {elapsed:.1f}s = {fps:.1f} frames/s "
                f"({fps / n:.1f} per worker, {fps * faces_per_frame:.1f} faces/s); "
                f"worker ms/frame: {_stage_ms_per_frame(client)}; faces found per frame "
                f"{_counter(client, 'areya_faces_detected_total') / max(_processed(client), 1.0):.2f} "
                f"(shown {faces_per_frame:.2f}); load average {os.getloadavg()[0]:.1f}"
            )

        rate = args.rate or max(0.5, round((fps1 or 2.0) / 2, 1))
        _reset(client, settings.frame_stream)
        procs, go = _run_workers(args, tmp, server.socket_path, 1, record=True, idle_exit_s=3.0)
        go.set()
        n = int(rate * args.latency_seconds)
        _publish(client, settings.frame_stream, demo.camera_id, frames, n, rate=rate)
        for p in procs:
            p.join()
        lat = sorted(float(x) for x in client.lrange(RESULT_KEY, 0, -1))
        if lat:
            p50 = statistics.median(lat)
            p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
            print(
                f"latency: 1 worker at {rate:g} frames/s for {args.latency_seconds:g}s ({len(lat)} frames): "
                f"capture->commit p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
            )
        version = (client.get(MODEL_KEY) or b"?").decode()
        print(f"model: {version}; load average {os.getloadavg()[0]:.1f} at end")
        engine.dispose()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.quick:
        args.frames, args.detect_only = 4, ["", "track=0"]
        print()
        detect_only(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

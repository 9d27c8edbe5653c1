"""Ingest benchmark: CPU an `areya ingest` process spends per camera (how many cameras one ingestor core reads).

Real parts: `areya ingest` as its own process, an embedded redis-server, a migrated SQLite database, N cameras
registered with `areya sync-cameras`.  The default source is the sample clip ../shared/data/video/
expressions-720x576.mp4 played in real time and looped (H.264 at 24 frames/s: every frame is decoded, as for an
RTSP camera, and `--fps` of them are sampled, JPEG-encoded and published); without it, the synthetic ward camera.
CPU is read from /proc for the ingest process (all its threads) between a warm-up (and its first published frame)
and the end, so start-up imports are not counted; the Redis server's own CPU is not included.

    nice python -m bench.bench_ingest --cameras 8 --seconds 40 --fps 2 [--quick]

Prints figures; not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "video" / "expressions-720x576.mp4"
AREYA = str(Path(sys.executable).parent / "areya")
FIRST_FRAME_S = 60.0  # after the warm-up, wait at most this long for the first published frame


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--fps", type=float, default=2.0, help="frames sampled per camera per second")
    ap.add_argument("--seconds", type=float, default=40.0, help="measured seconds (after the warm-up)")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--source", help="camera URL for every camera (default: the sample clip, looped)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 cameras, 6 s warm-up, 4 s measured")
    args = ap.parse_args(argv)
    if args.quick:
        args.cameras, args.warmup, args.seconds = 2, 6.0, 4.0

    from areya.comms.frames import read_counters
    from areya.comms.redis_server import EmbeddedRedis

    source = args.source or (f"file://{CLIP}?loop=1" if CLIP.exists() else "synthetic:beds=3")
    with tempfile.TemporaryDirectory(prefix="areya-bench-ingest-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis").start()
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("AREYA_")}
            env.update(
                {
                    "AREYA_DATA_DIR": str(Path(tmp) / "var"),
                    "AREYA_REDIS_URL": f"unix://{server.socket_path}",
                    "AREYA_STREAM_MAXLEN": "1000",
                    "AREYA_SNAPSHOT_TTL_S": "60",
                }
            )
            subprocess.run([AREYA, "db", "upgrade"], env=env, check=True, capture_output=True)
            cams = Path(tmp) / "cameras.toml"
            cams.write_text(
                "".join(
                    f'[[camera]]\nward = "Bench"\nname = "cam-{i + 1}"\nurl = "{source}"\nfps = {args.fps}\n\n'
                    for i in range(args.cameras)
                )
            )
            subprocess.run([AREYA, "sync-cameras", str(cams)], env=env, check=True, capture_output=True)
            proc = subprocess.Popen(
                [AREYA, "ingest", "--duration", str(args.warmup + FIRST_FRAME_S + args.seconds + 5)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            client = server.client()
            time.sleep(args.warmup)
            deadline = time.monotonic() + FIRST_FRAME_S  # a busy machine may take longer to start publishing
            while not sum(read_counters(client, "areya:frames")[0].values()) and time.monotonic() < deadline:
                time.sleep(0.5)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            pub0 = sum(read_counters(client, "areya:frames")[0].values())
            time.sleep(args.seconds)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            published, dropped = read_counters(client, "areya:frames")
            pub1 = sum(published.values())
            proc.terminate()  # stops cleanly (SIGTERM), or on its own at --duration
            proc.wait(timeout=60)
        finally:
            server.stop()
    share = (cpu1 - cpu0) / (t1 - t0)
    frames = pub1 - pub0
    print(f"source: {source.replace(str(ROOT.parent), '..')}  cameras: {args.cameras}  sampled at {args.fps:g} fps")
    print(
        f"published {frames} frames in {t1 - t0:.0f} s = {frames / (t1 - t0):.1f} frames/s "
        f"(expected {args.cameras * args.fps:g}); dropped {sum(dropped.values())}"
    )
    print(
        f"ingest CPU: {share:.2f} core for {args.cameras} cameras = {100 * share / args.cameras:.1f} % of a core "
        f"per camera; {1000 * (cpu1 - cpu0) / max(frames, 1):.1f} ms per published frame"
    )
    print(f"=> about {int(args.cameras / share) if share > 0 else 'inf'} such cameras per ingestor core")
    return 0


if __name__ == "__main__":
    sys.exit(main())

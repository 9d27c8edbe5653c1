"""A worker process for the crash tests: ``python pipeline_worker_proc.py SOCKET DATABASE_URL DELAY_S``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests/: polling.py

from pipeline_helpers import fast_config  # noqa: E402
from pipeline_standins import FixedClassifier  # noqa: E402

from areya.db.engine import create_db_engine  # noqa: E402
from areya.detectors import create_detector  # noqa: E402
from areya.worker import Worker  # noqa: E402


def main() -> None:
    socket_path, database_url, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    logging.basicConfig(level=logging.INFO)
    client = redis.Redis(unix_socket_path=socket_path)
    worker = Worker(
        client,
        create_db_engine(database_url),
        create_detector("haar"),
        FixedClassifier(delay_s=delay),
        fast_config(batch_size=4, claim_idle_ms=500),
    )
    print("worker ready", worker.name, flush=True)
    worker.run()


if __name__ == "__main__":
    main()

"""A `connbot worker` process in queue execution, for test_queue_workers.py.

    python queue_worker.py DATABASE_URL WAREHOUSE DATA_DIR SECRET_KEY GRACE BATCH_ROWS [scheduler]

The demo source yields batches of BATCH_ROWS rows (so that a small run has many batches to be
killed, deleted or stopped between). Test-speed heartbeats (a stopped worker is found within a few seconds, not a minute). With
`scheduler` it is `connbot worker` itself (connbot.server.run_worker: a scheduler candidate
beside the queue's workers); without, only the queue's workers, so that the wall clock
schedules nothing in the tests that kill workers.
"""

from __future__ import annotations

import logging
import sys

from connbot.runtime import build_context, start_executor
from connbot.server import run_worker
from core.settings import load_settings
from engine.queue import WorkerOptions, run_workers
from sources.demo import DemoSource


def main(
    database_url: str, warehouse: str, data_dir: str, key: str, grace: str, batch_rows: str, mode: str = ""
) -> int:
    DemoSource.batch_rows = int(batch_rows)
    logging.basicConfig(level=logging.INFO, format="worker %(process)d %(levelname)s %(name)s: %(message)s")
    settings = load_settings(
        {
            "CONNBOT_DATABASE_URL": database_url,
            "CONNBOT_WAREHOUSE": warehouse,
            "CONNBOT_DATA_DIR": data_dir,
            "CONNBOT_SECRET_KEYS": key,
            "CONNBOT_EXECUTION": "queue",
        },
        dotenv=False,
    )
    options = WorkerOptions(
        concurrency=2, grace=float(grace), heartbeat=0.5, stalled_after=2.0, stalled_check=0.5, polling=0.2
    )
    if mode == "scheduler":
        return run_worker(settings, options)
    ctx = build_context(settings)
    start_executor(ctx)
    print("ready", flush=True)
    run_workers(ctx, options)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

"""A scheduler worker process for the multi-process test of test_scheduler.py.

    python scheduler_worker.py DATABASE_URL DATA_DIR NODE_ID RUNS_FILE

Runs the real leader election and claims on one job firing every second; each run appends its
occurrence to RUNS_FILE; the second run outlasts the
next occurrence. Stops cleanly on SIGTERM, as `connbot worker` does.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.interval import IntervalTrigger

from connbot.runtime import build_context
from core.settings import load_settings
from engine.scheduler import JobSpec, Scheduler, wait_for_termination

# Both workers must compute the same occurrences: an interval needs a fixed start.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def main(database_url: str, data_dir: str, node_id: str, runs_file: str) -> int:
    logging.basicConfig(level=logging.INFO, format=f"{node_id} %(levelname)s %(name)s: %(message)s")
    settings = load_settings({"CONNBOT_DATABASE_URL": database_url, "CONNBOT_DATA_DIR": data_dir}, dotenv=False)
    ctx = build_context(settings)

    runs = 0

    def record(team_id: str, target_id: int, scheduled_for: datetime) -> None:
        nonlocal runs
        with open(runs_file, "a") as out:
            out.write(scheduled_for.isoformat() + "\n")
        runs += 1
        if runs == 2:  # still running at the next occurrence, which must be skipped and reported
            time.sleep(1.5)

    tick = JobSpec("tick:1", "tick", "T1", 1, IntervalTrigger(seconds=1, start_date=EPOCH, timezone=UTC), since=EPOCH)
    scheduler = Scheduler(
        ctx,
        node_id=node_id,
        runners={"tick": record},
        jobs=lambda _ctx: [tick],
        # A grace of a few dozen occurrences (see latest_occurrence); quick take-over.
        grace=timedelta(seconds=30),
        retry_seconds=0.2,
    )
    scheduler.start()
    wait_for_termination()
    scheduler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

"""Slack retries events it thinks were lost; each event is answered once, whatever the replica."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from engine.context import Context
from storage.models import JobClaim

log = logging.getLogger(__name__)


def first_delivery(ctx: Context, event_id: str | None, event_time: int | None) -> bool:
    if not event_id:
        return True
    try:
        with ctx.db.begin() as session:
            session.add(
                JobClaim(
                    job_key=f"event:{event_id}"[:128],
                    scheduled_for=datetime.fromtimestamp(event_time or 0, UTC),
                    claimed_by="events",
                    claimed_at=ctx.clock.now(),
                )
            )
        return True
    except IntegrityError:
        log.info("event %s already handled; retry ignored", event_id)
        return False

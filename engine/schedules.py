"""Schedules of extraction orders and of the daily account sync, as APScheduler triggers.

The same trigger computes "next run" on a card and fires the job in the scheduler, so the two
can never disagree.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from core.errors import InvalidInput

HOURLY_EVERY = (4, 6, 8, 12)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Daily account syncs are spread over this window after CONNBOT_SYNC_AT.
SYNC_SPREAD = timedelta(hours=1)


def _at(schedule: dict[str, Any]) -> time:
    text = str(schedule.get("at") or "00:00")
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", text)
    if not match:
        raise InvalidInput("The time of day is not valid.", {"schedule_at": "Pick a time of day."})
    return time(int(match[1]), int(match[2]))


def validate(schedule: dict[str, Any], timezone: str) -> dict[str, Any]:
    """A normalised schedule, or InvalidInput saying which field to fix."""
    try:
        ZoneInfo(timezone)
    except Exception:
        raise InvalidInput("Unknown time zone.", {"schedule_timezone": "Pick a time zone from the list."}) from None
    kind = schedule.get("kind")
    if kind == "hourly":
        every = int(schedule.get("every_hours") or 0)
        if every not in HOURLY_EVERY:
            raise InvalidInput("Choose how often.", {"schedule_every": "Every 4, 6, 8 or 12 hours."})
        return {"kind": "hourly", "every_hours": every}
    at = _at(schedule).strftime("%H:%M")
    if kind == "daily":
        return {"kind": "daily", "at": at}
    if kind == "weekly":
        weekday = schedule.get("weekday")
        if weekday not in range(7):
            raise InvalidInput("Choose a day of the week.", {"schedule_weekday": "Pick a day of the week."})
        return {"kind": "weekly", "weekday": weekday, "at": at}
    if kind == "monthly":
        day = schedule.get("day")
        if day not in range(1, 29):
            raise InvalidInput("Choose a day of the month.", {"schedule_day": "Pick a day from 1 to 28."})
        return {"kind": "monthly", "day": day, "at": at}
    raise InvalidInput("Choose a schedule.", {"schedule_kind": "Pick hourly, daily, weekly or monthly."})


def order_trigger(schedule: dict[str, Any], timezone: str) -> CronTrigger:
    return _order_trigger(tuple(sorted(schedule.items())), timezone)


@lru_cache(maxsize=4096)
def _order_trigger(key: tuple[tuple[str, Any], ...], timezone: str) -> CronTrigger:
    """Built once per distinct schedule (a card shows a page of orders, mostly alike); triggers
    are not changed by computing fire times."""
    schedule = dict(key)
    tz = ZoneInfo(timezone)
    kind = schedule["kind"]
    if kind == "hourly":
        return CronTrigger(hour=f"*/{schedule['every_hours']}", minute=0, timezone=tz)
    at = _at(schedule)
    if kind == "daily":
        return CronTrigger(hour=at.hour, minute=at.minute, timezone=tz)
    if kind == "weekly":
        return CronTrigger(day_of_week=schedule["weekday"], hour=at.hour, minute=at.minute, timezone=tz)
    return CronTrigger(day=schedule["day"], hour=at.hour, minute=at.minute, timezone=tz)


def next_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The first fire time at or after `now`. A card asks this for every order it shows, so an
    answer is kept: found at `since`, it stands for any `now` from `since` until that fire
    time, as long as the trigger's time zone keeps one UTC offset over the whole stretch (the
    trigger works in wall-clock time: across a DST change the answer can differ) and for a
    week at most (two changes a year cannot both fall within it)."""
    known = _next_fires.get(id(trigger))
    if known is not None:
        kept, since, until = known
        if (
            kept is trigger
            and since <= now < until
            and now - since <= _KEPT_FOR
            and _offset(trigger, now) == _offset(trigger, since)
        ):
            return until
    fire: datetime | None = trigger.get_next_fire_time(None, now)  # apscheduler is untyped
    if fire is not None and _offset(trigger, now) == _offset(trigger, fire):
        if len(_next_fires) >= _NEXT_FIRES_KEPT:
            _next_fires.clear()
        _next_fires[id(trigger)] = (trigger, now, fire)
    return fire


def _offset(trigger: CronTrigger, moment: datetime) -> timedelta | None:
    return moment.astimezone(trigger.timezone).utcoffset()


_KEPT_FOR = timedelta(days=7)
_NEXT_FIRES_KEPT = 8192
_next_fires: dict[int, tuple[CronTrigger, datetime, datetime]] = {}


def describe(schedule: dict[str, Any], timezone: str) -> str:
    kind = schedule.get("kind")
    if kind == "hourly":
        return f"Every {schedule['every_hours']} hours"
    at = schedule.get("at", "00:00")
    if kind == "daily":
        return f"Daily at {at} {timezone}"
    if kind == "weekly":
        return f"Weekly on {WEEKDAYS[schedule['weekday']]} at {at} {timezone}"
    if kind == "monthly":
        return f"Monthly on day {schedule['day']} at {at} {timezone}"
    return "Not scheduled"


def sync_offset(connection_id: int) -> timedelta:
    """A stable spread of each connection's daily sync over SYNC_SPREAD (Knuth's multiplicative hash)."""
    return timedelta(seconds=(connection_id * 2654435761) % int(SYNC_SPREAD.total_seconds()))


@lru_cache(maxsize=4096)
def account_sync_trigger(connection_id: int, sync_at: time, timezone: ZoneInfo) -> CronTrigger:
    offset = sync_offset(connection_id)
    start = datetime.combine(datetime(2000, 1, 1).date(), sync_at) + offset
    return CronTrigger(hour=start.hour, minute=start.minute, second=start.second, timezone=timezone)

"""Next fire times as a card shows them: kept between calls, never stale."""

from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.schedules import next_fire, order_trigger

START = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # a DST change in Europe/Paris follows

schedules = st.sampled_from(
    [
        {"kind": "hourly", "every_hours": 6},
        {"kind": "daily", "at": "02:30"},
        {"kind": "weekly", "weekday": 6, "at": "23:59"},
        {"kind": "monthly", "day": 28, "at": "00:00"},
    ]
)


@given(
    schedule=schedules,
    timezone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
    steps=st.lists(st.integers(min_value=0, max_value=3 * 24 * 3600), min_size=1, max_size=30),
)
@settings(max_examples=300)
# 02:30 does not exist in Paris on 2026-03-29: asked before the change, the trigger answers it;
# asked after, the next day.
@example(schedule={"kind": "daily", "at": "02:30"}, timezone="Europe/Paris", steps=[0, 3 * 3600])
def test_next_fire_is_always_what_the_trigger_computes_for_that_moment(schedule, timezone, steps):
    trigger = order_trigger(schedule, timezone)
    now = START
    for step in steps:
        now += timedelta(seconds=step)
        assert next_fire(trigger, now) == trigger.get_next_fire_time(None, now)


def test_at_the_fire_time_itself_and_just_after():
    trigger = order_trigger({"kind": "daily", "at": "03:00"}, "UTC")
    before = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    fire = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    assert next_fire(trigger, before) == fire
    assert next_fire(trigger, fire) == fire
    assert next_fire(trigger, fire + timedelta(microseconds=1)) == fire + timedelta(days=1)

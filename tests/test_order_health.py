"""The rules of the order alerts (operations/order_health.py), which the card's strips share."""

from datetime import timedelta

from engine.extraction import INTERNAL_ERROR, INTERRUPTED, WAREHOUSE_FAILED
from operations.order_health import error_origin, schedule_interval, too_few_rows, usual_rows


def test_what_an_order_usually_loads_needs_three_runs_and_takes_the_median_of_seven():
    assert usual_rows([1200, 1300]) is None
    assert usual_rows([1200, 0, 1300]) == 1200
    assert usual_rows([5, 5, 5, 5, 5, 5, 5, 9000, 9000]) == 5  # only the newest seven count


def test_too_few_rows_is_under_a_tenth_of_the_usual_above_a_floor():
    assert too_few_rows(0, 12_400) and too_few_rows(1_239, 12_400)
    assert not too_few_rows(1_240, 12_400)
    assert not too_few_rows(0, 100) and not too_few_rows(0, None)  # too small, or nothing usual yet


def test_two_schedule_intervals_make_an_order_stale():
    assert schedule_interval({"kind": "daily", "at": "06:00"}) == timedelta(days=1)
    assert schedule_interval({"kind": "hourly", "every_hours": 6}) == timedelta(hours=6)
    assert schedule_interval({"kind": "weekly", "weekday": 0, "at": "06:00"}) == timedelta(days=7)
    assert schedule_interval({"kind": "monthly", "day": 1, "at": "06:00"}) == timedelta(days=31)
    assert schedule_interval({}) is None  # run by hand only: never stale


def test_where_a_failed_runs_error_came_from_is_read_from_what_the_run_recorded():
    assert error_origin(f"{WAREHOUSE_FAILED}disk full") == "warehouse"
    assert error_origin(INTERNAL_ERROR) == "connbot" and error_origin(INTERRUPTED) == "connbot"
    assert (
        error_origin("The stored credentials cannot be decrypted with the configured keys (CONNBOT_SECRET_KEYS)")
        == "connbot"
    )
    assert error_origin("The report no longer has the field(s) spend_v2; delete this order…") == "platform"
    assert error_origin("(#17) User request limit reached") == "platform"

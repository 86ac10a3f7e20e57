"""Risk limits: market and per-user stake limits, stake factors, daily and weekly staked totals,
market exposure, order velocity, and the trader commands that set them.

Every rule is checked on both sides of its boundary: a stake exactly at a limit is allowed, one
minor unit over is denied. A denied order changes no state at all (`expect_place_denied` compares
the exchange state and the risk state - limits, running totals, velocity stamps - before and
after), so an order exactly at the limit still passes after it.
"""

import pytest

from engine import commands as c
from engine import events as e
from engine.codec import decode_events, encode_events
from engine.config import EngineConfig
from engine.engine import Engine
from engine.rejections import PRECEDENCE, Code
from tests.engine_helpers import (
    Driver,
    accepted,
    market_limits,
    expect_denied,
    expect_place_denied,
    one,
    rejection,
    risk_fingerprint,
)

RICH = 10_000_000
DAY_MS = 86_400_000
MONDAY = 1_704_067_200_000  # 2024-01-01 00:00:00.000 UTC, a Monday
SUNDAY = MONDAY - DAY_MS  # 2023-12-31 00:00 UTC, the last day of the previous ISO week
TUESDAY = MONDAY + DAY_MS
WEDNESDAY = MONDAY + 2 * DAY_MS
SATURDAY = MONDAY + 5 * DAY_MS
NEXT_SUNDAY = MONDAY + 6 * DAY_MS


def make_driver(start_ts: int = MONDAY + 12 * 3_600_000, **config) -> Driver:
    d = Driver(start_ts=start_ts, config=EngineConfig(**config)) if config else Driver(start_ts)
    d.create_market("m1", ("s1", "s2", "s3"))
    d.create_market("m2", ("s1", "s2"))
    d.deposit("u1", RICH)
    d.deposit("u2", RICH)
    return d


@pytest.fixture
def d() -> Driver:
    return make_driver()


def user_limits(d: Driver, user: str = "u1", **fields) -> list[e.Event]:
    events = d(c.SetUserLimits, user=user, **fields)
    assert rejection(events) is None, events
    return events


def at(d: Driver, ts: int) -> None:
    d.advance(ts - d.ts)


# -- market stake limits ----------------------------------------------------------------------


def test_stake_exactly_at_the_market_minimum_is_accepted(d):
    market_limits(d, min_stake_minor=200)
    accepted(d.back("u1", 300, 200))


def test_stake_one_cent_under_the_market_minimum_is_stake_too_low_and_changes_nothing(d):
    market_limits(d, min_stake_minor=200)
    expect_place_denied(d, Code.STAKE_TOO_LOW, "u1", c.BACK, 300, 199)


def test_stake_exactly_at_the_market_maximum_is_accepted(d):
    market_limits(d, max_stake_minor=1000)
    accepted(d.back("u1", 300, 1000))


def test_stake_one_cent_over_the_market_maximum_is_stake_too_high_and_changes_nothing(d):
    market_limits(d, max_stake_minor=1000)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 1001)


def test_lay_stake_is_its_size_so_a_big_liability_at_the_maximum_size_is_accepted(d):
    market_limits(d, max_stake_minor=1000)
    accepted(d.lay("u1", 1000, 1000))  # risks 90.00, stakes 10.00
    assert d.hold("u1") == 9000


def test_lay_one_cent_over_the_maximum_size_is_stake_too_high_whatever_its_liability(d):
    market_limits(d, max_stake_minor=1000)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.LAY, 101, 1001)  # risks 0.10


def test_lay_under_the_minimum_size_is_stake_too_low_whatever_its_liability(d):
    market_limits(d, min_stake_minor=500)
    expect_place_denied(d, Code.STAKE_TOO_LOW, "u1", c.LAY, 1000, 499)  # risks 44.91


def test_minimum_equal_to_maximum_allows_exactly_that_stake(d):
    market_limits(d, min_stake_minor=500, max_stake_minor=500)
    accepted(d.back("u1", 300, 500))
    expect_place_denied(d, Code.STAKE_TOO_LOW, "u1", c.BACK, 300, 499)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 501)


def test_market_stake_limits_apply_to_their_market_only(d):
    market_limits(d, "m1", max_stake_minor=1000)
    accepted(d.back("u1", 300, 5000, market="m2"))


# -- per-user maximum stake -------------------------------------------------------------------


def test_stake_exactly_at_the_user_maximum_is_accepted(d):
    user_limits(d, max_stake_minor=1000)
    accepted(d.back("u1", 300, 1000))


def test_stake_one_cent_over_the_user_maximum_is_stake_too_high_and_changes_nothing(d):
    user_limits(d, max_stake_minor=1000)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 1001)
    accepted(d.back("u1", 300, 1000))


def test_user_maximum_applies_to_the_size_of_a_lay(d):
    user_limits(d, max_stake_minor=1000)
    accepted(d.lay("u1", 150, 1000))
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.LAY, 150, 1001)


def test_user_maximum_applies_in_every_market(d):
    user_limits(d, max_stake_minor=1000)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 1001, market="m2")


def test_user_maximum_binds_only_that_user(d):
    user_limits(d, "u1", max_stake_minor=1000)
    accepted(d.back("u2", 300, 5000))


def test_user_maximum_of_zero_denies_any_stake(d):
    user_limits(d, max_stake_minor=0)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 1)


# -- stake factor (effective maximum = min(user max, market max) * factor, floored) -----------


def test_stake_factor_scales_the_user_maximum(d):
    user_limits(d, max_stake_minor=1000, stake_factor=(1, 2))
    accepted(d.back("u1", 300, 500))
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 501)


def test_stake_factor_scales_the_market_maximum_when_the_user_has_none(d):
    market_limits(d, max_stake_minor=800)
    user_limits(d, stake_factor=(3, 4))
    accepted(d.back("u1", 300, 600))
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 601)


def test_stake_factor_scales_the_lower_of_the_user_and_market_maximums(d):
    market_limits(d, max_stake_minor=1000)
    user_limits(d, max_stake_minor=2000, stake_factor=(1, 2))
    accepted(d.back("u1", 300, 500))
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 501)


def test_stake_factor_scales_the_user_maximum_when_it_is_below_the_markets(d):
    market_limits(d, max_stake_minor=2000)
    user_limits(d, max_stake_minor=1000, stake_factor=(1, 2))
    accepted(d.back("u1", 300, 500))
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 501)


def test_scaled_maximum_is_floored_to_the_cent(d):
    user_limits(d, max_stake_minor=1001, stake_factor=(1, 2))  # 5.005 -> 5.00
    accepted(d.back("u1", 300, 500))
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 501)


def test_stake_factor_without_any_maximum_imposes_no_cap(d):
    user_limits(d, stake_factor=(1, 10))
    accepted(d.back("u1", 300, 1_000_000))


def test_stake_factor_above_one_raises_the_user_maximum(d):
    user_limits(d, max_stake_minor=1000, stake_factor=(2, 1))
    accepted(d.back("u1", 300, 2000))
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 2001)


def test_stake_factor_above_one_never_lifts_the_market_maximum(d):
    market_limits(d, max_stake_minor=1000)
    user_limits(d, max_stake_minor=5000, stake_factor=(3, 1))
    accepted(d.back("u1", 300, 1000))
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 1001)


def test_stake_factor_of_zero_denies_any_stake(d):
    user_limits(d, max_stake_minor=1000, stake_factor=(0, 1))
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 1)


def test_stake_factor_binds_only_that_user(d):
    market_limits(d, max_stake_minor=1000)
    user_limits(d, "u1", stake_factor=(1, 2))
    accepted(d.back("u2", 300, 1000))


# -- daily staked total (per UTC day, by command timestamp) -----------------------------------


def test_orders_adding_up_exactly_to_the_daily_limit_are_accepted(d):
    user_limits(d, daily_stake_minor=1000)
    accepted(d.back("u1", 300, 600))
    accepted(d.back("u1", 300, 400))


def test_order_taking_the_day_one_cent_over_the_daily_limit_is_limit_exceeded(d):
    user_limits(d, daily_stake_minor=1000)
    accepted(d.back("u1", 300, 600))
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 401)


def test_denied_order_does_not_count_toward_the_daily_total(d):
    user_limits(d, daily_stake_minor=1000)
    accepted(d.back("u1", 300, 600))
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 401)
    accepted(d.back("u1", 300, 400))
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1)


def test_order_rejected_for_funds_does_not_count_toward_the_daily_total(d):
    user_limits(d, "poor", daily_stake_minor=1000)
    d.deposit("poor", 500)
    expect_place_denied(d, Code.INSUFFICIENT_FUNDS, "poor", c.BACK, 300, 600)
    d.deposit("poor", 500)
    accepted(d.back("poor", 300, 1000))


def test_daily_total_counts_lay_sizes_and_every_market(d):
    user_limits(d, daily_stake_minor=1000)
    accepted(d.lay("u1", 500, 300))  # stake 3.00, risking 12.00
    accepted(d.back("u1", 300, 300, market="m2"))
    accepted(d.back("u1", 300, 400, selection="s2"))
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1, market="m2")


def test_cancelling_an_order_does_not_give_back_daily_allowance(d):
    user_limits(d, daily_stake_minor=1000)
    oid = accepted(d.back("u1", 300, 1000))
    d.cancel("u1", oid)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1)


def test_daily_total_still_counts_at_the_last_millisecond_of_the_utc_day():
    d = make_driver(start_ts=TUESDAY + 9 * 3_600_000)
    user_limits(d, daily_stake_minor=1000)
    accepted(d.back("u1", 300, 1000))
    at(d, WEDNESDAY - 1)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1)


def test_new_utc_day_resets_the_daily_total():
    d = make_driver(start_ts=TUESDAY + 9 * 3_600_000)
    user_limits(d, daily_stake_minor=1000)
    accepted(d.back("u1", 300, 1000))
    at(d, WEDNESDAY)
    accepted(d.back("u1", 300, 1000))
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1)


# -- weekly staked total (per ISO week, Monday 00:00 UTC) -------------------------------------


def test_order_taking_the_week_one_cent_over_the_weekly_limit_is_limit_exceeded(d):
    user_limits(d, weekly_stake_minor=1000)
    accepted(d.back("u1", 300, 600))
    accepted(d.back("u1", 300, 400))
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1)


def test_weekly_total_carries_across_days_of_the_same_week():
    d = make_driver(start_ts=MONDAY + 3_600_000)
    user_limits(d, weekly_stake_minor=1000)
    accepted(d.back("u1", 300, 600))
    at(d, WEDNESDAY)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 401)
    accepted(d.back("u1", 300, 400))


def test_saturday_to_sunday_is_the_same_iso_week():
    d = make_driver(start_ts=SATURDAY + 3_600_000)
    user_limits(d, weekly_stake_minor=1000)
    accepted(d.back("u1", 300, 1000))
    at(d, NEXT_SUNDAY + 3_600_000)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1)


def test_weekly_total_still_counts_at_the_last_millisecond_of_sunday():
    d = make_driver(start_ts=SUNDAY + 12 * 3_600_000)
    user_limits(d, weekly_stake_minor=1000)
    accepted(d.back("u1", 300, 1000))
    at(d, MONDAY - 1)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1)


def test_monday_midnight_utc_resets_the_weekly_total():
    d = make_driver(start_ts=SUNDAY + 12 * 3_600_000)
    user_limits(d, weekly_stake_minor=1000)
    accepted(d.back("u1", 300, 1000))
    at(d, MONDAY)
    accepted(d.back("u1", 300, 1000))
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1)


def test_a_new_day_resets_the_daily_total_but_not_the_weekly_one():
    d = make_driver(start_ts=MONDAY + 3_600_000)
    user_limits(d, daily_stake_minor=1000, weekly_stake_minor=1500)
    accepted(d.back("u1", 300, 1000))
    at(d, TUESDAY)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 501)
    accepted(d.back("u1", 300, 500))


def test_limit_set_mid_day_counts_what_was_already_staked_that_day(d):
    accepted(d.back("u1", 300, 700))
    user_limits(d, daily_stake_minor=1000)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 301)
    accepted(d.back("u1", 300, 300))


# -- maximum market exposure (the market hold after the order) --------------------------------


def test_back_whose_hold_is_exactly_the_maximum_exposure_is_accepted(d):
    user_limits(d, max_exposure_minor=1000)
    accepted(d.back("u1", 300, 1000))
    assert d.hold("u1") == 1000


def test_back_one_cent_over_the_maximum_exposure_is_limit_exceeded_and_changes_nothing(d):
    user_limits(d, max_exposure_minor=1000)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1001)


def test_lay_whose_liability_is_exactly_the_maximum_exposure_is_accepted(d):
    user_limits(d, max_exposure_minor=1000)
    accepted(d.lay("u1", 200, 1000))  # liability 10.00
    assert d.hold("u1") == 1000


def test_lay_one_cent_of_liability_over_the_maximum_exposure_is_limit_exceeded(d):
    user_limits(d, max_exposure_minor=1000)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.LAY, 200, 1001)


def test_exposure_adds_up_over_orders_in_the_market(d):
    user_limits(d, max_exposure_minor=1000)
    accepted(d.back("u1", 300, 600, selection="s1"))
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 401, selection="s2")
    accepted(d.back("u1", 300, 400, selection="s2"))
    assert d.hold("u1") == 1000


def test_order_that_does_not_raise_the_hold_passes_even_when_larger_than_the_limit(d):
    user_limits(d, max_exposure_minor=1000)
    accepted(d.back("u1", 300, 1000))
    accepted(d.lay("u1", 250, 666))  # liability 9.99 on s1, offset by the back on s1
    assert d.hold("u1") == 1000


def test_exposure_is_counted_per_market(d):
    user_limits(d, max_exposure_minor=1000)
    accepted(d.back("u1", 300, 1000, market="m1"))
    accepted(d.back("u1", 300, 1000, market="m2"))


def test_matched_bets_count_toward_exposure(d):
    user_limits(d, max_exposure_minor=1000)
    accepted(d.lay("u2", 300, 1000))
    accepted(d.back("u1", 300, 1000))  # matched: loses 10.00 unless s1 wins
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1, selection="s2")


# -- velocity ---------------------------------------------------------------------------------


@pytest.fixture
def fast() -> Driver:
    return make_driver(velocity_orders_max=3)


def test_orders_up_to_the_velocity_limit_within_a_second_are_accepted(fast):
    for _ in range(3):
        accepted(fast.back("u1", 300, 100))
        fast.advance(100)


def test_order_one_over_the_velocity_limit_within_a_second_is_rate_limited(fast):
    t0 = fast.ts
    for _ in range(3):
        accepted(fast.back("u1", 300, 100))
    at(fast, t0 + 999)
    expect_place_denied(fast, Code.RATE_LIMITED, "u1", c.BACK, 300, 100)


def test_order_is_allowed_again_once_the_window_has_passed(fast):
    t0 = fast.ts
    for _ in range(3):
        accepted(fast.back("u1", 300, 100))
    at(fast, t0 + 1000)
    accepted(fast.back("u1", 300, 100))


def test_velocity_window_is_rolling(fast):
    t0 = fast.ts
    accepted(fast.back("u1", 300, 100))
    at(fast, t0 + 500)
    accepted(fast.back("u1", 300, 100))
    accepted(fast.back("u1", 300, 100))
    at(fast, t0 + 1000)
    accepted(fast.back("u1", 300, 100))  # the first order has left the window
    at(fast, t0 + 1499)
    expect_place_denied(fast, Code.RATE_LIMITED, "u1", c.BACK, 300, 100)
    at(fast, t0 + 1500)
    accepted(fast.back("u1", 300, 100))


def test_rejected_orders_do_not_count_toward_velocity(fast):
    for _ in range(2):
        accepted(fast.back("u1", 300, 100))
    for _ in range(3):
        expect_place_denied(fast, Code.INSUFFICIENT_FUNDS, "u1", c.BACK, 300, RICH)
        expect_place_denied(fast, Code.INVALID_ODDS, "u1", c.BACK, 301, 100)
    accepted(fast.back("u1", 300, 100))


def test_rate_limited_orders_do_not_extend_the_window(fast):
    t0 = fast.ts
    for _ in range(3):
        accepted(fast.back("u1", 300, 100))
    at(fast, t0 + 900)
    for _ in range(5):
        expect_place_denied(fast, Code.RATE_LIMITED, "u1", c.BACK, 300, 100)
    at(fast, t0 + 1000)
    accepted(fast.back("u1", 300, 100))


def test_velocity_is_counted_per_user(fast):
    for _ in range(3):
        accepted(fast.back("u1", 300, 100))
    accepted(fast.back("u2", 300, 100))


def test_velocity_counts_orders_in_every_market(fast):
    accepted(fast.back("u1", 300, 100, market="m1"))
    accepted(fast.back("u1", 300, 100, market="m2"))
    accepted(fast.back("u1", 300, 100, market="m1"))
    expect_place_denied(fast, Code.RATE_LIMITED, "u1", c.BACK, 300, 100, market="m2")


def test_velocity_window_length_comes_from_the_config():
    d = make_driver(velocity_orders_max=2, velocity_window_ms=5000)
    t0 = d.ts
    accepted(d.back("u1", 300, 100))
    accepted(d.back("u1", 300, 100))
    at(d, t0 + 4999)
    expect_place_denied(d, Code.RATE_LIMITED, "u1", c.BACK, 300, 100)
    at(d, t0 + 5000)
    accepted(d.back("u1", 300, 100))


def test_default_config_allows_twenty_orders_per_second():
    assert Engine().config.velocity_orders_max == 20
    d = make_driver(velocity_orders_max=EngineConfig().velocity_orders_max)
    for _ in range(20):
        accepted(d.back("u1", 300, 100))
    expect_place_denied(d, Code.RATE_LIMITED, "u1", c.BACK, 300, 100)


def test_velocity_limit_of_zero_turns_velocity_off():
    d = make_driver(velocity_orders_max=0)
    for _ in range(50):
        accepted(d.back("u1", 300, 100))


# -- setting limits ---------------------------------------------------------------------------


def test_set_market_limits_is_journaled_as_market_limits_set(d):
    events = market_limits(d, max_liability_minor=50_000, selection_max_liability_minor=20_000,
                           min_stake_minor=100, max_stake_minor=9_000)
    ev = one(events, e.MarketLimitsSet)
    assert (ev.market, ev.max_liability_minor, ev.selection_max_liability_minor,
            ev.min_stake_minor, ev.max_stake_minor) == ("m1", 50_000, 20_000, 100, 9_000)
    assert decode_events(encode_events(events)) == events


def test_set_user_limits_is_journaled_as_user_limits_set(d):
    events = user_limits(d, max_stake_minor=1000, daily_stake_minor=5000,
                         weekly_stake_minor=20_000, stake_factor=(1, 2), max_exposure_minor=7000)
    ev = one(events, e.UserLimitsSet)
    assert (ev.user, ev.max_stake_minor, ev.daily_stake_minor, ev.weekly_stake_minor,
            ev.stake_factor, ev.max_exposure_minor) == ("u1", 1000, 5000, 20_000, (1, 2), 7000)
    assert decode_events(encode_events(events)) == events


def test_absent_market_limit_field_keeps_its_previous_value(d):
    market_limits(d, min_stake_minor=100)
    ev = one(market_limits(d, max_stake_minor=5000), e.MarketLimitsSet)
    assert (ev.min_stake_minor, ev.max_stake_minor, ev.max_liability_minor) == (100, 5000, None)
    expect_place_denied(d, Code.STAKE_TOO_LOW, "u1", c.BACK, 300, 99)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 5001)


def test_absent_user_limit_field_keeps_its_previous_value(d):
    user_limits(d, max_stake_minor=1000, stake_factor=(1, 2))
    ev = one(user_limits(d, daily_stake_minor=3000), e.UserLimitsSet)
    assert (ev.max_stake_minor, ev.stake_factor, ev.daily_stake_minor) == (1000, (1, 2), 3000)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 501)


def test_changing_a_limit_replaces_the_previous_value(d):
    user_limits(d, max_stake_minor=1000)
    user_limits(d, max_stake_minor=2000)
    accepted(d.back("u1", 300, 2000))
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 2001)


def test_limit_of_zero_is_accepted(d):
    user_limits(d, daily_stake_minor=0)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "u1", c.BACK, 300, 1)


@pytest.mark.parametrize("field", ["max_liability_minor", "selection_max_liability_minor",
                                   "min_stake_minor", "max_stake_minor"])
def test_negative_market_limit_is_bad_request_and_changes_nothing(d, field):
    market_limits(d, max_stake_minor=1000)
    expect_denied(d, Code.BAD_REQUEST, c.SetMarketLimits, market="m1", **{field: -1})


@pytest.mark.parametrize("field", ["max_stake_minor", "daily_stake_minor", "weekly_stake_minor",
                                   "max_exposure_minor"])
def test_negative_user_limit_is_bad_request_and_changes_nothing(d, field):
    user_limits(d, max_stake_minor=1000)
    expect_denied(d, Code.BAD_REQUEST, c.SetUserLimits, user="u1", **{field: -1})


@pytest.mark.parametrize("factor", [(-1, 2), (1, 0), (1, -2)])
def test_negative_or_undefined_stake_factor_is_bad_request(d, factor):
    expect_denied(d, Code.BAD_REQUEST, c.SetUserLimits, user="u1", stake_factor=factor)


def test_rejected_limit_change_keeps_every_field_as_it_was(d):
    market_limits(d, min_stake_minor=100, max_stake_minor=1000)
    expect_denied(d, Code.BAD_REQUEST, c.SetMarketLimits, market="m1", max_stake_minor=2000,
                  min_stake_minor=-5)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 1001)


def test_market_minimum_above_the_maximum_is_bad_request_and_changes_nothing(d):
    market_limits(d, max_stake_minor=1000)
    expect_denied(d, Code.BAD_REQUEST, c.SetMarketLimits, market="m1", min_stake_minor=2000)
    accepted(d.back("u1", 300, 500))


def test_rejected_minimum_above_the_maximum_leaves_the_old_minimum_in_force(d):
    market_limits(d, min_stake_minor=100, max_stake_minor=1000)
    assert rejection(d(c.SetMarketLimits, market="m1", min_stake_minor=2000)).code \
        == Code.BAD_REQUEST
    accepted(d.back("u1", 300, 500))


def test_market_limits_on_an_unknown_market_are_unknown_market(d):
    expect_denied(d, Code.UNKNOWN_MARKET, c.SetMarketLimits, market="nope", max_stake_minor=1)


def test_limits_are_rebuilt_by_replaying_the_command_log(d):
    market_limits(d, max_stake_minor=1000)
    user_limits(d, daily_stake_minor=1500, stake_factor=(1, 2))
    accepted(d.back("u1", 300, 500))
    replayed = Engine(d.eng.config)
    for cmd in d.log:
        replayed.apply(cmd)
    assert risk_fingerprint(replayed) == risk_fingerprint(d.eng)


# -- precedence (engine/rejections.py: the code listed first wins) ----------------------------


def test_stake_codes_outrank_insufficient_funds():
    assert PRECEDENCE[Code.STAKE_TOO_LOW] < PRECEDENCE[Code.INSUFFICIENT_FUNDS]
    assert PRECEDENCE[Code.STAKE_TOO_HIGH] < PRECEDENCE[Code.INSUFFICIENT_FUNDS]
    assert PRECEDENCE[Code.LIMIT_EXCEEDED] < PRECEDENCE[Code.INSUFFICIENT_FUNDS]


def test_market_maximum_and_missing_funds_gives_stake_too_high(d):
    market_limits(d, max_stake_minor=1000)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "broke", c.BACK, 300, 1001)


def test_market_minimum_and_missing_funds_gives_stake_too_low(d):
    market_limits(d, min_stake_minor=1000)
    expect_place_denied(d, Code.STAKE_TOO_LOW, "broke", c.BACK, 300, 999)


def test_user_maximum_and_missing_funds_gives_stake_too_high(d):
    user_limits(d, "broke", max_stake_minor=1000)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "broke", c.LAY, 500, 1001)


def test_daily_limit_and_missing_funds_gives_limit_exceeded(d):
    user_limits(d, "broke", daily_stake_minor=1000)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "broke", c.BACK, 300, 1001)


def test_exposure_limit_and_missing_funds_gives_limit_exceeded(d):
    user_limits(d, "broke", max_exposure_minor=1000)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "broke", c.BACK, 300, 1001)


def test_stake_limit_outranks_the_daily_limit(d):
    user_limits(d, max_stake_minor=1000, daily_stake_minor=500)
    expect_place_denied(d, Code.STAKE_TOO_HIGH, "u1", c.BACK, 300, 1001)


def test_market_minimum_outranks_the_user_maximum(d):
    market_limits(d, min_stake_minor=500)
    user_limits(d, max_stake_minor=100)
    expect_place_denied(d, Code.STAKE_TOO_LOW, "u1", c.BACK, 300, 200)


def test_invalid_odds_outrank_stake_limits(d):
    market_limits(d, max_stake_minor=1000)
    expect_place_denied(d, Code.INVALID_ODDS, "u1", c.BACK, 301, 1001)


def test_bad_request_outranks_rate_limited(fast):
    for _ in range(3):
        accepted(fast.back("u1", 300, 100))
    expect_place_denied(fast, Code.BAD_REQUEST, "u1", "sideways", 300, 100)


# -- the running totals are real state (guards the "changes nothing" checks above) ------------


def test_accepted_order_moves_the_running_totals(d):
    before = risk_fingerprint(d.eng)
    accepted(d.back("u1", 300, 100))
    assert risk_fingerprint(d.eng) != before


def test_setting_limits_changes_risk_state(d):
    before = risk_fingerprint(d.eng)
    user_limits(d, max_stake_minor=1000)
    middle = risk_fingerprint(d.eng)
    market_limits(d, max_stake_minor=1000)
    assert before != middle != risk_fingerprint(d.eng)

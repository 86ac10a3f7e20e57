"""Risk rules: allow exactly at each limit, deny one minor unit over, never mutate on a denial."""

import copy
import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.rejections import Code
from risk.rules import (
    MS_PER_DAY,
    Denial,
    MarketLimits,
    StakeWindows,
    UserLimits,
    Velocity,
    check_house_liability,
    check_market_stake,
    check_max_exposure,
    check_user_stake,
    day_index,
    effective_max_stake,
    record,
    week_index,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MONDAY_MS = (date(2024, 1, 1) - date(1970, 1, 1)).days * MS_PER_DAY  # 2024-01-01 00:00 UTC
THURSDAY_MS = MONDAY_MS + 3 * MS_PER_DAY
SUNDAY_LAST_MS = MONDAY_MS + 7 * MS_PER_DAY - 1  # 2024-01-07 23:59:59.999 UTC
NEXT_MONDAY_MS = MONDAY_MS + 7 * MS_PER_DAY


def _windows_with(stake_minor: int, ts_ms: int) -> StakeWindows:
    windows = StakeWindows()
    record(windows, stake_minor, ts_ms)
    return windows


# -- market stake ------------------------------------------------------------------------------

MARKET = MarketLimits(min_stake_minor=200, max_stake_minor=100_000)


def test_stake_at_the_market_minimum_is_allowed():
    assert check_market_stake(MARKET, 200) is None


def test_stake_one_cent_below_the_market_minimum_is_too_low():
    assert check_market_stake(MARKET, 199) == Denial(
        Code.STAKE_TOO_LOW, "stake 1.99 below the market minimum 2.00"
    )


def test_stake_at_the_market_maximum_is_allowed():
    assert check_market_stake(MARKET, 100_000) is None


def test_stake_one_cent_above_the_market_maximum_is_too_high():
    assert check_market_stake(MARKET, 100_001) == Denial(
        Code.STAKE_TOO_HIGH, "stake 1000.01 above the market maximum 1000.00"
    )


def test_market_without_stake_limits_allows_any_stake():
    assert check_market_stake(MarketLimits(), 1) is None
    assert check_market_stake(MarketLimits(), 10**12) is None


def test_a_denial_is_an_immutable_value():
    denial = check_market_stake(MARKET, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        denial.code = Code.INTERNAL  # type: ignore[misc, union-attr]


# -- per-bet user maximum and stake factor -----------------------------------------------------


def test_stake_at_the_user_maximum_is_allowed():
    user = UserLimits(max_stake_minor=50_000)
    assert check_user_stake(user, StakeWindows(), 50_000, MONDAY_MS, 100_000) is None


def test_stake_one_cent_above_the_user_maximum_is_too_high():
    user = UserLimits(max_stake_minor=50_000)
    denial = check_user_stake(user, StakeWindows(), 50_001, MONDAY_MS, 100_000)
    assert denial == Denial(Code.STAKE_TOO_HIGH, "stake 500.01 above your maximum 500.00")


def test_stake_factor_scales_the_user_maximum_floored_to_the_cent():
    user = UserLimits(max_stake_minor=1_001, stake_factor=(1, 2))
    assert effective_max_stake(user, None) == 500
    assert check_user_stake(user, StakeWindows(), 500, MONDAY_MS, None) is None
    assert check_user_stake(user, StakeWindows(), 501, MONDAY_MS, None).code == Code.STAKE_TOO_HIGH


def test_stake_factor_without_a_user_maximum_scales_the_market_maximum():
    user = UserLimits(stake_factor=(1, 4))
    assert effective_max_stake(user, 100_000) == 25_000
    assert check_user_stake(user, StakeWindows(), 25_000, MONDAY_MS, 100_000) is None
    assert check_user_stake(user, StakeWindows(), 25_001, MONDAY_MS, 100_000).code == (
        Code.STAKE_TOO_HIGH
    )


def test_stake_factor_scales_the_lower_of_the_user_and_market_maximum():
    high_user = UserLimits(max_stake_minor=200_000, stake_factor=(1, 2))
    low_user = UserLimits(max_stake_minor=40_000, stake_factor=(1, 2))
    assert effective_max_stake(high_user, 100_000) == 50_000
    assert effective_max_stake(low_user, 100_000) == 20_000


def test_stake_factor_with_no_maximum_anywhere_sets_no_cap():
    assert effective_max_stake(UserLimits(stake_factor=(1, 2)), None) is None


def test_without_a_factor_only_the_user_maximum_is_the_users_cap():
    assert effective_max_stake(UserLimits(), 100_000) is None
    assert effective_max_stake(UserLimits(max_stake_minor=200_000), 100_000) == 200_000


# -- daily and weekly totals -------------------------------------------------------------------


def test_daily_total_reaching_the_limit_exactly_is_allowed():
    user = UserLimits(daily_stake_minor=200_000)
    windows = _windows_with(150_000, MONDAY_MS)
    assert check_user_stake(user, windows, 50_000, MONDAY_MS + 1, None) is None


def test_daily_total_one_cent_over_the_limit_is_denied():
    user = UserLimits(daily_stake_minor=200_000)
    windows = _windows_with(150_000, MONDAY_MS)
    assert check_user_stake(user, windows, 50_001, MONDAY_MS + 1, None) == Denial(
        Code.LIMIT_EXCEEDED,
        "stake 500.01 would take today's total 1500.00 above your daily limit 2000.00",
    )


def test_daily_total_starts_afresh_at_midnight_utc():
    user = UserLimits(daily_stake_minor=200_000)
    windows = _windows_with(200_000, MONDAY_MS)
    tuesday_ms = MONDAY_MS + MS_PER_DAY
    assert check_user_stake(user, windows, 1, tuesday_ms - 1, None).code == Code.LIMIT_EXCEEDED
    assert check_user_stake(user, windows, 200_000, tuesday_ms, None) is None


def test_weekly_total_reaching_the_limit_exactly_is_allowed():
    user = UserLimits(weekly_stake_minor=500_000)
    windows = _windows_with(400_000, MONDAY_MS)
    assert check_user_stake(user, windows, 100_000, SUNDAY_LAST_MS, None) is None


def test_weekly_total_one_cent_over_the_limit_is_denied():
    user = UserLimits(weekly_stake_minor=500_000)
    windows = _windows_with(400_000, MONDAY_MS)
    assert check_user_stake(user, windows, 100_001, SUNDAY_LAST_MS, None) == Denial(
        Code.LIMIT_EXCEEDED,
        "stake 1000.01 would take this week's total 4000.00 above your weekly limit 5000.00",
    )


def test_weekly_total_starts_afresh_on_monday_utc():
    user = UserLimits(weekly_stake_minor=500_000)
    windows = _windows_with(500_000, MONDAY_MS)
    assert check_user_stake(user, windows, 1, SUNDAY_LAST_MS, None).code == Code.LIMIT_EXCEEDED
    assert check_user_stake(user, windows, 500_000, NEXT_MONDAY_MS, None) is None


def test_weekly_total_carries_over_thursday_when_the_epoch_week_would_turn():
    # Day 0 (1970-01-01) was a Thursday: a naive day // 7 would wrongly reset here.
    user = UserLimits(weekly_stake_minor=500_000)
    windows = _windows_with(500_000, THURSDAY_MS - 1)
    assert check_user_stake(user, windows, 1, THURSDAY_MS, None).code == Code.LIMIT_EXCEEDED


def test_record_on_a_new_day_resets_the_day_but_keeps_the_week():
    windows = _windows_with(30_000, MONDAY_MS)
    record(windows, 20_000, MONDAY_MS + MS_PER_DAY)
    assert windows.totals_at(MONDAY_MS + MS_PER_DAY) == (20_000, 50_000)


def test_record_in_a_new_week_resets_both_totals():
    windows = _windows_with(30_000, SUNDAY_LAST_MS)
    record(windows, 20_000, NEXT_MONDAY_MS)
    assert windows.totals_at(NEXT_MONDAY_MS) == (20_000, 20_000)


def test_an_out_of_order_timestamp_counts_toward_the_current_window():
    windows = _windows_with(30_000, NEXT_MONDAY_MS)
    record(windows, 20_000, SUNDAY_LAST_MS)
    assert windows.totals_at(NEXT_MONDAY_MS) == (50_000, 50_000)
    assert windows.totals_at(SUNDAY_LAST_MS) == (50_000, 50_000)


def test_a_denied_stake_leaves_the_windows_unchanged():
    user = UserLimits(max_stake_minor=10_000, daily_stake_minor=20_000, weekly_stake_minor=30_000)
    windows = _windows_with(20_000, MONDAY_MS)
    before = copy.copy(windows)
    for stake_minor in (10_001, 1):
        assert check_user_stake(user, windows, stake_minor, MONDAY_MS + 5, None) is not None
    assert check_user_stake(user, windows, 10_000, NEXT_MONDAY_MS, None) is None
    assert windows == before


@given(st.integers(min_value=0, max_value=4_102_444_800_000))  # up to 2100-01-01
def test_day_and_week_indices_follow_the_utc_calendar_with_weeks_from_monday(ts_ms):
    moment = EPOCH + timedelta(milliseconds=ts_ms)
    assert day_index(ts_ms) == (moment.date() - EPOCH.date()).days
    monday = moment.date() - timedelta(days=moment.weekday())
    monday_ms = (monday - EPOCH.date()).days * MS_PER_DAY
    assert week_index(ts_ms) == week_index(monday_ms) == week_index(monday_ms - 1) + 1


# -- exposure ----------------------------------------------------------------------------------


def test_exposure_at_the_user_maximum_is_allowed():
    assert check_max_exposure(UserLimits(max_exposure_minor=100_000), 100_000) is None


def test_exposure_one_cent_above_the_user_maximum_is_denied():
    assert check_max_exposure(UserLimits(max_exposure_minor=100_000), 100_001) == Denial(
        Code.LIMIT_EXCEEDED, "exposure 1000.01 above your maximum 1000.00"
    )


def test_exposure_without_a_user_maximum_is_allowed():
    assert check_max_exposure(UserLimits(), 10**12) is None


# -- velocity ----------------------------------------------------------------------------------


def _velocity_with(orders: int, start_ms: int, orders_max: int = 5) -> Velocity:
    velocity = Velocity(orders_max=orders_max)
    for i in range(orders):
        velocity.record(start_ms + i)
    return velocity


def test_velocity_allows_the_nth_order_within_a_second():
    velocity = _velocity_with(4, MONDAY_MS)
    assert velocity.check(MONDAY_MS + 999) is None


def test_velocity_denies_the_order_after_n_within_a_second():
    velocity = _velocity_with(5, MONDAY_MS)
    assert velocity.check(MONDAY_MS + 999) == Denial(
        Code.RATE_LIMITED, "more than 5 orders within 1000 ms"
    )


def test_velocity_allows_again_once_the_oldest_order_leaves_the_window():
    velocity = _velocity_with(5, MONDAY_MS)
    assert velocity.check(MONDAY_MS + 999) is not None
    assert velocity.check(MONDAY_MS + 1_000) is None


def test_velocity_window_rolls_rather_than_resetting_on_the_second():
    velocity = Velocity(orders_max=2)
    velocity.record(MONDAY_MS + 900)
    velocity.record(MONDAY_MS + 1_100)
    assert velocity.check(MONDAY_MS + 1_200) is not None


def test_a_denied_order_does_not_count_toward_velocity():
    velocity = _velocity_with(5, MONDAY_MS)
    before = velocity.stamps_ms
    for _ in range(3):
        assert velocity.check(MONDAY_MS + 10) is not None
    assert velocity.stamps_ms == before
    assert velocity.check(MONDAY_MS + 1_000) is None


def test_velocity_remembers_at_most_n_timestamps():
    velocity = _velocity_with(50, MONDAY_MS)
    assert len(velocity.stamps_ms) == 5


def test_velocity_restored_from_its_timestamps_decides_the_same():
    velocity = _velocity_with(5, MONDAY_MS)
    restored = Velocity(velocity.orders_max, velocity.window_ms, velocity.stamps_ms)
    for ts_ms in (MONDAY_MS + 999, MONDAY_MS + 1_000):
        assert restored.check(ts_ms) == velocity.check(ts_ms)


def test_velocity_needs_a_positive_limit_and_window():
    with pytest.raises(ValueError):
        Velocity(orders_max=0)
    with pytest.raises(ValueError):
        Velocity(window_ms=0)


# -- house liability ---------------------------------------------------------------------------

HOUSE = MarketLimits(max_liability_minor=5_000_000, selection_max_liability_minor=2_000_000)


def test_house_liability_exactly_at_both_caps_is_allowed():
    assert check_house_liability(HOUSE, 5_000_000, 2_000_000) is None


def test_house_market_liability_one_cent_over_its_cap_is_denied():
    assert check_house_liability(HOUSE, 5_000_001, 0) == Denial(
        Code.LIABILITY_LIMIT, "house liability 50000.01 above the market limit 50000.00"
    )


def test_house_selection_liability_one_cent_over_its_cap_is_denied():
    assert check_house_liability(HOUSE, 0, 2_000_001) == Denial(
        Code.LIABILITY_LIMIT,
        "house liability 20000.01 on the selection above its limit 20000.00",
    )


def test_house_liability_without_caps_is_allowed():
    assert check_house_liability(MarketLimits(), 10**12, 10**12) is None

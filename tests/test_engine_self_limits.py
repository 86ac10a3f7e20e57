"""A bettor's own limits (risk/self_limits.py): deposit, stake and loss limits per UTC day and
ISO week, the cooling-off period before a raise, and self-exclusion.

Every limit is checked on both sides of its boundary (exactly at the limit passes, one minor
unit over is refused) and a refusal changes nothing (`expect_denied` compares exchange state,
limits and usage before and after); windows are checked at their last millisecond and their
first.
"""

import pickle
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import commands as c
from engine import events as e
from engine.codec import decode_command, encode_command, encode_events
from engine.engine import Engine
from engine.rejections import PRECEDENCE, Code
from risk.self_limits import format_utc
from tests.test_engine_risk import MONDAY, RICH, TUESDAY, at, make_driver
from tests.engine_helpers import (
    CUR,
    NO_VELOCITY,
    Driver,
    accepted,
    expect_denied,
    expect_place_denied,
    one,
    rejection,
    risk_fingerprint,
    state_fingerprint,
)

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
COOLING_OFF_MS = 86_400_000
NOON = MONDAY + 12 * HOUR_MS  # make_driver's start: markets m1 and m2 open, u1 and u2 RICH
NEXT_MONDAY = MONDAY + 7 * DAY_MS


@pytest.fixture
def d() -> Driver:
    return make_driver()


def own(d: Driver, user: str = "u1", currency: str = CUR, **limits) -> e.SelfLimitsSet:
    """Set some of the user's own limits (money in minor units; remove=(...) names)."""
    fields = {f"{k}_minor" if k != "remove" else k: v for k, v in limits.items()}
    events = d(c.SetSelfLimits, user=user, currency=currency, **fields)
    return one(events, e.SelfLimitsSet)


def acct(d: Driver, user: str = "u1", currency: str = CUR):
    return d.eng.self_limits[user].accounts[currency]


def back(d: Driver, size: int, user: str = "u1", **fields) -> str:
    """An unmatched back at 5.00 (nobody lays there): stake `size`, at risk `size`."""
    return accepted(d.back(user, 500, size, **fields))


def denied(d: Driver, code: str, size: int, user: str = "u1", side: str = c.BACK,
           price: int = 500, **fields) -> str:
    return expect_place_denied(d, code, user, side, price, size, **fields).reason


# -- the time in a reason --------------------------------------------------------------------


@given(st.integers(0, 253_402_300_799_999))  # up to 9999-12-31T23:59:59.999Z
def test_utc_times_are_written_as_iso_8601_without_a_clock(ts_ms):
    expected = datetime.fromtimestamp(ts_ms // 1000, tz=timezone.utc)
    assert format_utc(ts_ms) == expected.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- stake limits ----------------------------------------------------------------------------


def test_a_stake_limit_set_where_there_was_none_applies_at_once(d):
    own(d, daily_stake=5_000)
    back(d, 3_000)
    back(d, 2_000, selection="s2", market="m2")  # exactly at the limit, any market
    reason = denied(d, Code.SELF_STAKE_LIMIT, 1)
    assert reason == ("stake 0.01 would pass your daily stake limit 50.00: 0.00 left today, "
                      "until 2024-01-02T00:00:00Z")


def test_a_lay_uses_its_size_as_stake_whatever_its_liability(d):
    own(d, daily_stake=5_000)
    accepted(d.lay("u1", 1000, 5_000))  # liability 450.00, stake 50.00
    denied(d, Code.SELF_STAKE_LIMIT, 1, side=c.LAY, price=110)


def test_lowering_a_stake_limit_applies_at_once(d):
    own(d, daily_stake=10_000)
    back(d, 3_000)
    event = own(d, daily_stake=4_000)
    assert event.daily_stake_minor == 4_000 and event.pending == ()
    back(d, 1_000)
    assert "10.00" not in denied(d, Code.SELF_STAKE_LIMIT, 1)


def test_stake_placed_before_the_limit_was_set_counts_in_its_window(d):
    back(d, 3_000)
    own(d, daily_stake=4_000)
    back(d, 1_000)
    assert "0.00 left today" in denied(d, Code.SELF_STAKE_LIMIT, 1)


def test_a_refused_order_uses_nothing(d):
    own(d, daily_stake=5_000)
    denied(d, Code.SELF_STAKE_LIMIT, 5_001)
    back(d, 5_000)


def test_cancelled_unmatched_stake_comes_back_in_the_window_it_was_placed(d):
    own(d, daily_stake=5_000)
    oid = back(d, 5_000)
    denied(d, Code.SELF_STAKE_LIMIT, 1)
    d.cancel("u1", oid, 2_000)
    back(d, 2_000)
    denied(d, Code.SELF_STAKE_LIMIT, 1)


def test_a_fill_or_kill_that_dies_uses_no_stake(d):
    own(d, daily_stake=5_000)
    accepted(d.lay("u2", 200, 1_000))
    accepted(d.back("u1", 200, 5_000, tif=c.FOK, min_fill_minor=1_000))  # 10.00 of 50.00 fill
    back(d, 4_000)  # 40.00 came back with the killed rest
    denied(d, Code.SELF_STAKE_LIMIT, 1)


def test_matched_stake_stays_used_when_the_market_is_voided(d):
    own(d, daily_stake=5_000)
    accepted(d.lay("u2", 200, 5_000))
    accepted(d.back("u1", 200, 5_000))
    d(c.VoidMarket, market="m1")
    denied(d, Code.SELF_STAKE_LIMIT, 1, market="m2")


def test_unmatched_stake_lapsed_at_the_in_play_turn_comes_back(d):
    own(d, daily_stake=5_000)
    back(d, 5_000)
    d.status("m1", in_play=True)
    back(d, 5_000, market="m2")


def test_a_cancel_on_a_later_day_gives_back_to_the_week_not_to_the_new_day(d):
    own(d, daily_stake=5_000, weekly_stake=8_000)
    oid = back(d, 5_000)
    at(d, TUESDAY)
    back(d, 3_000)  # the week: 80.00 used
    denied(d, Code.SELF_STAKE_LIMIT, 1)
    d.cancel("u1", oid)  # Monday's stake: back to the week, not to Tuesday
    back(d, 2_000)
    reason = denied(d, Code.SELF_STAKE_LIMIT, 1)
    assert "daily stake limit 50.00" in reason and "until 2024-01-03T00:00:00Z" in reason


def test_a_replace_moves_the_stake_within_its_window(d):
    own(d, daily_stake=5_000)
    oid = back(d, 5_000)
    new = d.next_order_id
    d(c.ReplaceOrder, user="u1", order=oid, price=510)
    assert d.order(new).remaining == 5_000
    denied(d, Code.SELF_STAKE_LIMIT, 1)


def test_a_replace_on_a_later_day_is_new_stake_for_that_day(d):
    own(d, daily_stake=5_000)
    old = back(d, 3_000)
    at(d, TUESDAY)
    back(d, 3_000)
    rejected = expect_denied(d, Code.SELF_STAKE_LIMIT, c.ReplaceOrder, user="u1", order=old,
                             price=510)
    assert "stake 30.00" in rejected.reason and "20.00 left today" in rejected.reason


def test_the_daily_window_still_counts_at_its_last_millisecond_and_resets_at_midnight_utc(d):
    own(d, daily_stake=5_000)
    back(d, 5_000)
    at(d, TUESDAY - 1)
    denied(d, Code.SELF_STAKE_LIMIT, 1)
    at(d, TUESDAY)
    back(d, 5_000)


def test_the_weekly_window_runs_monday_to_sunday_utc(d):
    own(d, weekly_stake=5_000)
    back(d, 5_000)
    at(d, NEXT_MONDAY - 1)  # Sunday 23:59:59.999
    reason = denied(d, Code.SELF_STAKE_LIMIT, 1)
    assert "weekly stake limit 50.00: 0.00 left this week, until 2024-01-08T00:00:00Z" in reason
    at(d, NEXT_MONDAY)
    back(d, 5_000)


# -- raises wait the cooling-off period ------------------------------------------------------


def test_a_raise_waits_the_cooling_off_period_then_applies_by_itself(d):
    own(d, daily_stake=5_000)
    event = own(d, daily_stake=8_000)
    assert event.daily_stake_minor == 5_000
    assert event.pending == (("daily_stake", 8_000, NOON + COOLING_OFF_MS),)
    back(d, 5_000)
    reason = denied(d, Code.SELF_STAKE_LIMIT, 1)
    assert reason.endswith("; your raise to 80.00 takes effect at 2024-01-02T12:00:00Z")
    at(d, NOON + COOLING_OFF_MS - 1)
    back(d, 5_000)  # a new day, the old limit
    denied(d, Code.SELF_STAKE_LIMIT, 1)
    at(d, NOON + COOLING_OFF_MS)
    back(d, 3_000)
    denied(d, Code.SELF_STAKE_LIMIT, 1)


def test_removing_a_limit_waits_the_cooling_off_period(d):
    own(d, daily_stake=5_000)
    event = own(d, remove=("daily_stake",))
    assert event.daily_stake_minor == 5_000
    assert event.pending == (("daily_stake", None, NOON + COOLING_OFF_MS),)
    back(d, 5_000)
    assert "your removal takes effect" in denied(d, Code.SELF_STAKE_LIMIT, 1)
    at(d, NOON + COOLING_OFF_MS)
    back(d, 1_000_000)
    assert own(d, weekly_loss=RICH).daily_stake_minor is None  # the removal is in force


def test_asking_for_less_than_a_pending_raise_keeps_its_time(d):
    own(d, daily_stake=5_000)
    own(d, daily_stake=9_000)
    at(d, NOON + HOUR_MS)
    assert own(d, daily_stake=7_000).pending == (("daily_stake", 7_000, NOON + COOLING_OFF_MS),)


def test_asking_for_more_than_a_pending_raise_starts_a_new_cooling_off(d):
    own(d, daily_stake=5_000)
    own(d, daily_stake=7_000)
    at(d, NOON + HOUR_MS)
    event = own(d, daily_stake=9_000)
    assert event.pending == (("daily_stake", 9_000, NOON + HOUR_MS + COOLING_OFF_MS),)
    assert own(d, remove=("daily_stake",)).pending == (
        ("daily_stake", None, NOON + HOUR_MS + COOLING_OFF_MS),)


def test_lowering_again_cancels_a_pending_raise(d):
    own(d, daily_stake=5_000)
    own(d, daily_stake=9_000)
    event = own(d, daily_stake=5_000)
    assert (event.daily_stake_minor, event.pending) == (5_000, ())
    at(d, NOON + COOLING_OFF_MS)
    back(d, 5_000)
    denied(d, Code.SELF_STAKE_LIMIT, 1)


def test_the_operator_configures_the_cooling_off_period_for_later_requests(d):
    own(d, daily_stake=5_000)
    own(d, weekly_stake=10_000)
    own(d, weekly_stake=20_000)  # asked under the 24 h rule: keeps its time
    configured = one(d(c.ConfigureSelfLimits, cooling_off_ms=7 * DAY_MS), e.SelfLimitsConfigured)
    assert configured.cooling_off_ms == 7 * DAY_MS
    event = own(d, daily_stake=6_000)
    assert event.pending == (("daily_stake", 6_000, NOON + 7 * DAY_MS),
                             ("weekly_stake", 20_000, NOON + COOLING_OFF_MS))


def test_asking_again_for_a_pending_removal_keeps_its_time_after_the_period_is_shortened(d):
    """Found by the property test: a removal asked again, after the operator shortened the
    period, is no more than what is pending, so it keeps the pending time (docs/protocol.md)."""
    own(d, daily_stake=5_000)
    own(d, remove=("daily_stake",))
    one(d(c.ConfigureSelfLimits, cooling_off_ms=0), e.SelfLimitsConfigured)
    event = own(d, remove=("daily_stake",))
    assert (event.daily_stake_minor, event.pending) == (
        5_000, (("daily_stake", None, NOON + COOLING_OFF_MS),))
    at(d, NOON + COOLING_OFF_MS)
    assert own(d, weekly_loss=RICH).daily_stake_minor is None


def test_a_cooling_off_period_out_of_range_is_refused_and_changes_nothing(d):
    for bad in (-1, 90 * DAY_MS + 1):
        expect_denied(d, Code.BAD_REQUEST, c.ConfigureSelfLimits, cooling_off_ms=bad)
    assert d.eng.config.self_limit_cooling_off_ms == COOLING_OFF_MS


# -- loss limits -----------------------------------------------------------------------------


def settle_loss(d: Driver, stake: int, market: str = "m2") -> None:
    """u1 backs s1 of `market` against u2 for `stake` at 2.00, and s2 wins: u1 loses `stake`."""
    accepted(d.lay("u2", 200, stake, market=market))
    accepted(d.back("u1", 200, stake, market=market))
    d.settle(market, ("s2",))


def test_the_loss_limit_counts_settled_net_loss_and_the_worst_case_of_open_bets(d):
    own(d, daily_loss=10_000)
    settle_loss(d, 5_000)  # lost 50.00 today
    back(d, 3_000)  # 30.00 at risk
    accepted(d.lay("u1", 300, 1_000, selection="s2"))  # if s2 wins: 20.00 more, 100.00 in all
    reason = denied(d, Code.SELF_LOSS_LIMIT, 1, side=c.LAY, price=200, selection="s2")
    assert reason == ("risking 0.01 more would pass your daily loss limit 100.00: 0.00 left "
                      "today (50.00 net loss settled, 50.00 at risk), until "
                      "2024-01-02T00:00:00Z")


def test_an_order_that_puts_no_more_at_risk_passes_a_loss_limit_already_reached(d):
    own(d, daily_loss=3_000)
    back(d, 3_000)  # on s1 at 5.00: 30.00 at risk if s2 or s3 wins
    denied(d, Code.SELF_LOSS_LIMIT, 1)
    accepted(d.lay("u1", 400, 500))  # 15.00 at risk if s1 wins: the worst case stays 30.00


def test_winnings_settled_in_the_window_leave_more_to_risk(d):
    own(d, daily_loss=2_000)
    accepted(d.lay("u2", 200, 5_000, market="m2"))
    accepted(d.back("u1", 200, 2_000, market="m2"))
    d.settle("m2", ("s1",))  # won 20.00, 1.00 commission: 19.00 net
    back(d, 3_900)
    reason = denied(d, Code.SELF_LOSS_LIMIT, 1)
    assert "(-19.00 net loss settled, 39.00 at risk)" in reason


def test_settled_loss_resets_with_its_window_and_open_risk_carries_over(d):
    own(d, daily_loss=5_000, weekly_loss=8_000)
    settle_loss(d, 4_000)
    back(d, 1_000)
    denied(d, Code.SELF_LOSS_LIMIT, 1, selection="s2")
    at(d, TUESDAY)
    back(d, 3_000, selection="s2")  # the week: 40.00 lost + 40.00 at risk if s3 wins
    reason = denied(d, Code.SELF_LOSS_LIMIT, 1)
    assert "weekly loss limit 80.00: 0.00 left this week (40.00 net loss settled" in reason


def test_a_loss_limit_set_after_losing_today_counts_that_loss(d):
    settle_loss(d, 5_000)
    own(d, daily_loss=5_000)
    denied(d, Code.SELF_LOSS_LIMIT, 1)


def test_a_pending_withdrawal_is_held_but_not_at_risk(d):
    own(d, daily_loss=3_000)
    d(c.RequestWithdrawal, user="u1", currency=CUR, amount_minor=500_000)
    back(d, 3_000)
    denied(d, Code.SELF_LOSS_LIMIT, 1)


def test_a_replace_to_a_riskier_price_is_held_to_the_loss_limit(d):
    own(d, daily_loss=3_000)
    oid = accepted(d.lay("u1", 200, 2_000))  # liability 20.00
    expect_denied(d, Code.SELF_LOSS_LIMIT, c.ReplaceOrder, user="u1", order=oid, price=300)
    d(c.ReplaceOrder, user="u1", order=oid, price=250)  # liability 30.00: exactly the limit


# -- deposit limits --------------------------------------------------------------------------


def test_a_deposit_at_the_limit_is_credited_and_one_over_is_refused_for_good():
    d = make_driver()
    own(d, "u3", daily_deposit=10_000)
    d.deposit("u3", 6_000, ref="p1")
    d.deposit("u3", 4_000, ref="p2")
    before = state_fingerprint(d.eng)
    refused = one(d.deposit("u3", 1, ref="p3"), e.DepositRefused)
    assert (refused.code, refused.amount_minor) == (Code.SELF_DEPOSIT_LIMIT, 1)
    assert refused.reason == ("deposit 0.01 would pass your daily deposit limit 100.00: 0.00 "
                              "left today, until 2024-01-02T00:00:00Z")
    assert state_fingerprint(d.eng) == before and d.balance("u3") == 10_000
    at(d, TUESDAY)
    again = one(d.deposit("u3", 1, ref="p3"), e.CommandRejected)  # a retry after the reset
    assert (again.code, again.reason) == (refused.code, refused.reason)
    assert one(d.deposit("u3", 2, ref="p3"), e.CommandRejected).code == Code.DUPLICATE_REF
    d.deposit("u3", 1, ref="p4")
    assert d.balance("u3") == 10_001


def test_deposits_made_before_the_limit_count_and_withdrawals_give_nothing_back():
    d = make_driver()
    d.deposit("u3", 6_000)
    d(c.RequestWithdrawal, user="u3", currency=CUR, amount_minor=6_000)
    d(c.ApproveWithdrawal, withdrawal=f"w{d.seq}")
    own(d, "u3", weekly_deposit=10_000)
    assert one(d.deposit("u3", 4_001), e.DepositRefused).code == Code.SELF_DEPOSIT_LIMIT
    d.deposit("u3", 4_000)


# -- self-exclusion --------------------------------------------------------------------------


def test_self_exclusion_cancels_open_orders_at_once_and_blocks_orders_and_deposits(d):
    resting = back(d, 1_000)
    d.status("m2", in_play=True, bet_delay_ms=5_000)
    waiting = back(d, 1_000, market="m2")
    events = d(c.ExcludeSelf, user="u1", days=30)
    until = NOON + 30 * DAY_MS
    assert one(events, e.SelfExcluded).until_ts == until
    cancelled = {ev.order: ev.reason for ev in events if isinstance(ev, e.OrderCancelled)}
    assert cancelled == {resting: "self_excluded", waiting: "self_excluded"}
    assert d.held("u1") == 0
    reason = denied(d, Code.SELF_EXCLUDED, 100)
    assert reason == ("you are self-excluded until 2024-01-31T12:00:00Z: no orders or "
                      "deposits until then")
    refused = one(d.deposit("u1", 100), e.DepositRefused)
    assert refused.code == Code.SELF_EXCLUDED and d.balance("u1") == RICH


def test_an_excluded_bettor_may_still_withdraw_and_cancel(d):
    oid = back(d, 1_000, persistence=c.PERSIST)
    d(c.ExcludeSelf, user="u1", days=1)
    assert d.order(oid).cancelled == 1_000
    assert rejection(d(c.RequestWithdrawal, user="u1", currency=CUR, amount_minor=5_000)) is None
    assert d.held("u1") == 5_000
    assert rejection(d.cancel("u1", oid)) is None  # nothing left: the end state holds
    assert rejection(d(c.CancelAll, user="u1")) is None
    # nothing is left to replace either: the exclusion took every order off
    expect_denied(d, Code.INVALID_SIZE, c.ReplaceOrder, user="u1", order=oid, price=510)


def test_the_exclusion_ends_at_its_time(d):
    d(c.ExcludeSelf, user="u1", until_ts=NOON + DAY_MS)
    at(d, NOON + DAY_MS - 1)
    denied(d, Code.SELF_EXCLUDED, 100)
    at(d, NOON + DAY_MS)
    back(d, 100)
    d.deposit("u1", 100)


def test_an_exclusion_can_be_extended_but_never_shortened(d):
    d(c.ExcludeSelf, user="u1", days=10)
    rejected = expect_denied(d, Code.BAD_REQUEST, c.ExcludeSelf, user="u1", days=9)
    assert "cannot be shortened: it runs until 2024-01-11T12:00:00Z" in rejected.reason
    at(d, NOON + HOUR_MS)
    expect_denied(d, Code.BAD_REQUEST, c.ExcludeSelf, user="u1", until_ts=NOON + 10 * DAY_MS - 1)
    assert one(d(c.ExcludeSelf, user="u1", days=10), e.SelfExcluded).until_ts == (
        NOON + HOUR_MS + 10 * DAY_MS)


@pytest.mark.parametrize("fields", [{}, {"days": 1, "until_ts": NOON + 2 * DAY_MS},
                                    {"days": -1}, {"days": 3651},
                                    {"until_ts": NOON + DAY_MS - 1},
                                    {"until_ts": NOON + 3651 * DAY_MS}])
def test_a_malformed_exclusion_is_refused_and_changes_nothing(d, fields):
    expect_denied(d, Code.BAD_REQUEST, c.ExcludeSelf, user="u1", **fields)


# -- both the operator's and the bettor's own limits apply ------------------------------------


def test_the_stricter_of_the_operators_and_the_bettors_own_limit_wins(d):
    d(c.SetUserLimits, user="u1", daily_stake_minor=10_000)
    own(d, daily_stake=5_000)
    back(d, 5_000)
    denied(d, Code.SELF_STAKE_LIMIT, 1)
    d(c.SetUserLimits, user="u2", daily_stake_minor=3_000)
    own(d, "u2", daily_stake=5_000)
    back(d, 3_000, user="u2")
    assert "your daily limit 30.00" in denied(d, Code.LIMIT_EXCEEDED, 1, user="u2")


def test_the_new_codes_follow_the_operators_limits_in_precedence():
    order = [Code.LIMIT_EXCEEDED, Code.SELF_EXCLUDED, Code.SELF_STAKE_LIMIT,
             Code.SELF_LOSS_LIMIT, Code.SELF_DEPOSIT_LIMIT, Code.LIABILITY_LIMIT,
             Code.INSUFFICIENT_FUNDS]
    assert sorted(order, key=PRECEDENCE.get) == order


def test_an_excluded_bettor_out_of_funds_is_told_about_the_exclusion(d):
    d(c.ExcludeSelf, user="u3", days=1)
    denied(d, Code.SELF_EXCLUDED, 100, user="u3")


def test_limits_are_per_currency(d):
    d.create_market("usd", ("s1", "s2"), currency="USD")
    d.deposit("u1", 10_000, currency="USD")
    own(d, daily_stake=1_000)
    accepted(d.back("u1", 500, 5_000, market="usd"))
    own(d, currency="USD", daily_stake=5_000)
    denied(d, Code.SELF_STAKE_LIMIT, 1, market="usd")
    back(d, 1_000)


def test_a_preview_reports_what_the_bettors_own_limit_would_say(d):
    own(d, daily_stake=5_000)
    back(d, 5_000)
    result = d.eng.preview(c.PlaceOrder(user="u1", market="m1", selection="s1", side=c.BACK,
                                        price=500, size_minor=1))
    assert result.code == Code.SELF_STAKE_LIMIT and "daily stake limit" in result.reason


# -- bad requests ----------------------------------------------------------------------------


@pytest.mark.parametrize("fields, code", [
    ({}, Code.BAD_REQUEST),
    ({"daily_stake_minor": -1}, Code.INVALID_SIZE),
    ({"weekly_loss_minor": 10**15}, Code.INVALID_SIZE),
    ({"remove": ("monthly_stake",)}, Code.BAD_REQUEST),
    ({"daily_stake_minor": 100, "remove": ("daily_stake",)}, Code.BAD_REQUEST),
])
def test_a_malformed_limit_request_is_refused_and_changes_nothing(d, fields, code):
    own(d, daily_stake=5_000)
    expect_denied(d, code, c.SetSelfLimits, user="u1", currency=CUR, **fields)


def test_system_accounts_have_no_limits_of_their_own(d):
    expect_denied(d, Code.FORBIDDEN, c.SetSelfLimits, user="house", currency=CUR,
                  daily_stake_minor=1)
    expect_denied(d, Code.FORBIDDEN, c.ExcludeSelf, user="external", days=1)


def test_a_limit_of_zero_allows_nothing(d):
    own(d, daily_deposit=0, daily_stake=0)
    denied(d, Code.SELF_STAKE_LIMIT, 1)
    assert one(d.deposit("u1", 1), e.DepositRefused).code == Code.SELF_DEPOSIT_LIMIT


# -- replay ----------------------------------------------------------------------------------


def scripted(d: Driver) -> None:
    own(d, daily_stake=5_000, weekly_loss=20_000, daily_deposit=100_000)
    back(d, 2_000)
    own(d, daily_stake=9_000)
    oid = back(d, 3_000, selection="s2")
    d.cancel("u1", oid)
    d.deposit("u1", 200_000, ref="big")  # refused
    at(d, NOON + COOLING_OFF_MS)
    back(d, 6_000, selection="s3")
    settle_loss(d, 3_000)
    d(c.ConfigureSelfLimits, cooling_off_ms=HOUR_MS)
    own(d, remove=("daily_stake",))
    d(c.ExcludeSelf, user="u1", days=2)
    d.deposit("u1", 200_000, ref="big")  # refused again, by the same limit


def test_replay_from_empty_and_from_a_snapshot_gives_the_same_events_and_state():
    d = make_driver()
    scripted(d)
    fresh = Engine(NO_VELOCITY)
    for cmd, recorded in zip(d.log, d.event_log):
        assert encode_events(fresh.apply(decode_command(encode_command(cmd)))) == \
            encode_events(recorded)
    half = len(d.log) // 2
    partial = Engine(NO_VELOCITY)
    for cmd in d.log[:half]:
        partial.apply(cmd)
    restored = pickle.loads(pickle.dumps(partial))
    for cmd, recorded in zip(d.log[half:], d.event_log[half:]):
        assert restored.apply(cmd) == recorded
    for eng in (fresh, restored):
        assert state_fingerprint(eng) == state_fingerprint(d.eng)
        assert risk_fingerprint(eng) == risk_fingerprint(d.eng)
        assert eng.refused_deposits == d.eng.refused_deposits


def test_the_scripted_session_refuses_what_it_should():
    d = make_driver()
    scripted(d)
    kinds = [type(ev).__name__ for events in d.event_log for ev in events]
    assert kinds.count("DepositRefused") == 1
    assert rejection(d.event_log[-1]).code == Code.SELF_DEPOSIT_LIMIT
    assert d.eng.self_limits["u1"].excluded_until_ms == d.ts + 2 * DAY_MS
    assert acct(d).pending[2] == (None, d.ts + HOUR_MS)

# C-level declarations of every event and its fields: engine.pxd cimports them, so `e.BetMatched`
# in compiled code is the type itself instead of a module attribute lookup on every event, and
# the order path's events are built and recorded field by field in C (the functions at the end).
# tests/test_engine_records.py checks this file and those functions against the classes.

cimport cython


cdef class Event:
    cdef readonly object seq, ts

cdef class CommandRejected(Event):
    cdef readonly object code, reason

cdef class MarketCreated(Event):
    cdef readonly object market, event, name, type, currency, selections, commission_bp, take_bp
    cdef readonly object start_ts

cdef class MarketStatusChanged(Event):
    cdef readonly object market, status, in_play, bet_delay_ms

cdef class MarketSettled(Event):
    cdef readonly object market, winners, dead_heat

cdef class MarketVoided(Event):
    cdef readonly object market

cdef class SelectionRemoved(Event):
    cdef readonly object market, selection, reduction_bp

cdef class BetRepriced(Event):
    cdef readonly object market, selection, fill_seq, fill_idx, size_minor, was_price, price
    cdef readonly object win_minor, taker_order, taker_user, maker_order, maker_user

cdef class OrderPlaced(Event):
    cdef readonly object order, user, market, selection, side, price, size_minor, persistence
    cdef readonly object tif, ref, release_ts

cdef class OrderReleased(Event):
    cdef readonly object order, user

cdef class PlaceRepeated(Event):
    cdef readonly object order, user

cdef class BetMatched(Event):
    cdef readonly object market, selection, price, size_minor, win_minor, taker_order, taker_user
    cdef readonly object taker_side, maker_order, maker_user

cdef class PoolStaked(Event):
    cdef readonly object order, user, market, selection, size_minor

cdef class OrderCancelled(Event):
    cdef readonly object order, user, size_minor, reason

cdef class OrderLapsed(Event):
    cdef readonly object order, user, size_minor, reason

cdef class OrderReplaced(Event):
    cdef readonly object order, user, new_order

cdef class WalletChanged(Event):
    cdef readonly object user, currency, balance_minor, held_minor

cdef class MoneyMoved(Event):
    cdef readonly object kind, ref, currency, entries

cdef class DepositRepeated(Event):
    cdef readonly object ref, user

cdef class WithdrawalRequested(Event):
    cdef readonly object withdrawal, user, currency, amount_minor

cdef class WithdrawalApproved(Event):
    cdef readonly object withdrawal, user, currency, amount_minor

cdef class WithdrawalRejected(Event):
    cdef readonly object withdrawal, user, currency, amount_minor

cdef class MarketLimitsSet(Event):
    cdef readonly object market, max_liability_minor, selection_max_liability_minor
    cdef readonly object min_stake_minor, max_stake_minor

cdef class UserLimitsSet(Event):
    cdef readonly object user, max_stake_minor, daily_stake_minor, weekly_stake_minor
    cdef readonly object stake_factor, max_exposure_minor

cdef class PricesSet(Event):
    cdef readonly object market, fair, offered, margin_bp

cdef class SelectionSuspended(Event):
    cdef readonly object market, selection, house_liability_minor

cdef class FundsTransferredOut(Event):
    cdef readonly object transfer, user, currency, amount_minor, to_shard

cdef class FundsTransferredIn(Event):
    cdef readonly object transfer, user, currency, amount_minor, from_shard

cdef class TransferRepeated(Event):
    cdef readonly object transfer

cdef class TransferConfirmed(Event):
    cdef readonly object transfer

cdef class Configured(Event):
    cdef readonly object velocity_orders_max, velocity_window_ms, house_default_liability_minor
    cdef readonly object house_back_ticks

cdef class SelfLimitsSet(Event):
    cdef readonly object user, currency, daily_deposit_minor, weekly_deposit_minor
    cdef readonly object daily_stake_minor, weekly_stake_minor, daily_loss_minor
    cdef readonly object weekly_loss_minor, pending

cdef class SelfExcluded(Event):
    cdef readonly object user, until_ts

cdef class SelfLimitsConfigured(Event):
    cdef readonly object cooling_off_ms

cdef class DepositRefused(Event):
    cdef readonly object ref, user, currency, amount_minor, code, reason


# the order path's events, built and recorded in C (see events.py)
@cython.locals(ev=OrderPlaced)
cpdef OrderPlaced order_placed(seq, ts, order, user, market, selection, side, price, size_minor,
                               persistence, tif, ref, release_ts)
@cython.locals(ev=BetMatched)
cpdef BetMatched bet_matched(seq, ts, market, selection, price, size_minor, win_minor,
                             taker_order, taker_user, taker_side, maker_order, maker_user)
@cython.locals(ev=WalletChanged)
cpdef WalletChanged wallet_changed(seq, ts, user, currency, balance_minor, held_minor)
cpdef tuple order_placed_record(OrderPlaced ev)
cpdef tuple bet_matched_record(BetMatched ev)
cpdef tuple wallet_changed_record(WalletChanged ev)

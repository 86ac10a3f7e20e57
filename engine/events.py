"""Events: what happened, in the past tense. The engine's only output.

Every event carries the `seq` and `ts` of the command that caused it. Events are what the journal
stores next to each command, what the persister folds into Postgres, and what the gateway turns
into replies and pushes, so they carry everything those need without reading engine state.
Money fields are int minor units, odds int hundredths.

Frozen keyword-only dataclasses, compiled by Cython (setup.py) into extension types: instances
have no __dict__ and refuse assignment, `dataclasses.fields`, equality, hashing and repr are the
dataclass ones. Why compiled: the engine builds 2.2 events per command, and interpreted code
builds a frozen dataclass through one slot-descriptor call per field (about 1.2 µs for an
OrderPlaced, a fifth of the engine's time); the compiled constructor takes about 0.16 µs. Run
from source without the build, the same file gives ordinary frozen dataclasses.

`@cython.no_gc`: the cyclic collector does not track them. An event holds only strings,
numbers and tuples of them, so it can never be part of a reference cycle, and events (with
commands and futures) are most of what a sequencer's young generation holds: tracking them
made every collection walk them for nothing.
"""

import cython


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class Event:
    seq: int
    ts: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class CommandRejected(Event):
    code: str
    reason: str


# -- markets ----------------------------------------------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class MarketCreated(Event):
    market: str
    event: str
    name: str
    type: str
    currency: str
    selections: tuple[tuple[str, str], ...]
    commission_bp: int
    take_bp: int
    start_ts: int | None = None  # added later: last, with a default (engine/codec.py)


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class MarketStatusChanged(Event):
    market: str
    status: str  # INACTIVE | OPEN | SUSPENDED | CLOSED | SETTLED | VOIDED
    in_play: bool
    bet_delay_ms: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class MarketSettled(Event):
    market: str
    winners: tuple[str, ...]
    dead_heat: tuple[tuple[str, int, int], ...]


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class MarketVoided(Event):
    market: str


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SelectionRemoved(Event):
    """A non-runner: the selection's unmatched orders lapsed (OrderLapsed events before this
    one), its matched bets are void, and no order may be placed on it any more. The bets on the
    other selections repriced by `reduction_bp` follow as BetRepriced events."""

    market: str
    selection: str
    reduction_bp: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class BetRepriced(Event):
    """One earlier fill (the BetMatched at `fill_seq`, `fill_idx`) on a selection that still
    runs, its odds reduced for a non-runner: `price` (from `was_price`) and its win amount
    recomputed as matching computes it. Either order's P&L and average price move with it."""

    market: str
    selection: str
    fill_seq: int
    fill_idx: int
    size_minor: int
    was_price: int
    price: int  # the reduced odds, hundredths: off the ladder as often as not
    win_minor: int  # backer's profit = layer's liability at `price`
    taker_order: str
    taker_user: str
    maker_order: str
    maker_user: str


# -- orders -----------------------------------------------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class OrderPlaced(Event):
    order: str
    user: str
    market: str
    selection: str
    side: str
    price: int
    size_minor: int
    persistence: str
    tif: str
    ref: str
    release_ts: int  # > 0: waiting out the in-play bet delay until this time


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class OrderReleased(Event):
    """A delayed in-play order reached the book."""

    order: str
    user: str


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class PlaceRepeated(Event):
    """A place with a known ref and the same fields: the original order stands, nothing changed."""

    order: str
    user: str


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class BetMatched(Event):
    market: str
    selection: str
    price: int  # always the maker's price: the taker gets any improvement
    size_minor: int
    win_minor: int  # backer's profit = layer's liability, computed once
    taker_order: str
    taker_user: str
    taker_side: str
    maker_order: str
    maker_user: str


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class PoolStaked(Event):
    """A pool bet's stake went into the pool: the order is fully matched at once."""

    order: str
    user: str
    market: str
    selection: str
    size_minor: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class OrderCancelled(Event):
    order: str
    user: str
    size_minor: int
    reason: str  # "requested" | "fok" | "suspended" | "replaced" | "self_excluded"


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class OrderLapsed(Event):
    order: str
    user: str
    size_minor: int
    reason: str  # "in_play" | "closed" | "voided"


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class OrderReplaced(Event):
    order: str
    user: str
    new_order: str


# -- money ------------------------------------------------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class WalletChanged(Event):
    user: str
    currency: str
    balance_minor: int
    held_minor: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class MoneyMoved(Event):
    """One double-entry ledger movement: entries (account, amount_minor) sum to zero."""

    kind: str  # deposit | withdrawal | settlement | commission | pool_take | breakage
    ref: str
    currency: str
    entries: tuple[tuple[str, int], ...]


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class DepositRepeated(Event):
    ref: str
    user: str


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class WithdrawalRequested(Event):
    withdrawal: str
    user: str
    currency: str
    amount_minor: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class WithdrawalApproved(Event):
    withdrawal: str
    user: str
    currency: str
    amount_minor: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class WithdrawalRejected(Event):
    withdrawal: str
    user: str
    currency: str
    amount_minor: int


# -- money between shards --------------------------------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class FundsTransferredOut(Event):
    transfer: str
    user: str
    currency: str
    amount_minor: int
    to_shard: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class FundsTransferredIn(Event):
    transfer: str
    user: str
    currency: str
    amount_minor: int
    from_shard: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class TransferRepeated(Event):
    """A transfer credited before, delivered again: nothing changed."""

    transfer: str


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class TransferConfirmed(Event):
    transfer: str


# -- limits and prices ------------------------------------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class MarketLimitsSet(Event):
    market: str
    max_liability_minor: int | None
    selection_max_liability_minor: int | None
    min_stake_minor: int | None
    max_stake_minor: int | None


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class UserLimitsSet(Event):
    user: str
    max_stake_minor: int | None
    daily_stake_minor: int | None
    weekly_stake_minor: int | None
    stake_factor: tuple[int, int] | None
    max_exposure_minor: int | None


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class PricesSet(Event):
    market: str
    fair: tuple[tuple[str, int], ...]
    offered: tuple[tuple[str, int], ...]  # after margin and shading, on the ladder
    margin_bp: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SelectionSuspended(Event):
    """Risk stopped the house quoting a selection: its liability reached the limit."""

    market: str
    selection: str
    house_liability_minor: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class Configured(Event):
    velocity_orders_max: int
    velocity_window_ms: int
    house_default_liability_minor: int
    house_back_ticks: int


# -- the bettor's own limits --------------------------------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SelfLimitsSet(Event):
    """A bettor's own limits in one currency as a request left them: the limits in force (None:
    no limit) and the raises waiting out the cooling-off period."""

    user: str
    currency: str
    daily_deposit_minor: int | None
    weekly_deposit_minor: int | None
    daily_stake_minor: int | None
    weekly_stake_minor: int | None
    daily_loss_minor: int | None
    weekly_loss_minor: int | None
    pending: tuple[tuple[str, int | None, int], ...]  # (limit, value or None: removal, from ts)


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SelfExcluded(Event):
    """No orders or deposits from the user before `until_ts` (their open orders were cancelled:
    OrderCancelled events with reason "self_excluded" follow)."""

    user: str
    until_ts: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SelfLimitsConfigured(Event):
    cooling_off_ms: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class DepositRefused(Event):
    """A deposit the bettor's own limits or self-exclusion refused: nothing was credited, and
    the provider's ref stays refused (a retry gets the same answer; the provider returns the
    money)."""

    ref: str
    user: str
    currency: str
    amount_minor: int
    code: str
    reason: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        CommandRejected, MarketCreated, MarketStatusChanged, MarketSettled, MarketVoided,
        SelectionRemoved, BetRepriced, OrderPlaced, OrderReleased, PlaceRepeated, BetMatched, PoolStaked, OrderCancelled,
        OrderLapsed,
        OrderReplaced, WalletChanged, MoneyMoved, DepositRepeated, WithdrawalRequested,
        WithdrawalApproved, WithdrawalRejected, MarketLimitsSet, UserLimitsSet, PricesSet,
        SelectionSuspended, Configured, SelfLimitsSet, SelfExcluded, SelfLimitsConfigured,
        DepositRefused,
        FundsTransferredOut, FundsTransferredIn, TransferRepeated, TransferConfirmed,
    )
}


# -- the order path's events, built field by field ---------------------------------------------
# The engine builds these for every order, fill and wallet change. Compiled, a keyword call
# spends most of its time matching keywords to fields; these functions fill the fields directly
# and the engine calls them in C (events.pxd). Run uncompiled they are the keyword call.
# tests/test_engine_records.py checks each against the keyword-built event.


def order_placed(seq, ts, order, user, market, selection, side, price, size_minor, persistence,
                 tif, ref, release_ts) -> OrderPlaced:
    if not cython.compiled:
        return OrderPlaced(seq=seq, ts=ts, order=order, user=user, market=market,
                           selection=selection, side=side, price=price, size_minor=size_minor,
                           persistence=persistence, tif=tif, ref=ref, release_ts=release_ts)
    ev = OrderPlaced.__new__(OrderPlaced)
    ev.seq = seq
    ev.ts = ts
    ev.order = order
    ev.user = user
    ev.market = market
    ev.selection = selection
    ev.side = side
    ev.price = price
    ev.size_minor = size_minor
    ev.persistence = persistence
    ev.tif = tif
    ev.ref = ref
    ev.release_ts = release_ts
    return ev


def bet_matched(seq, ts, market, selection, price, size_minor, win_minor, taker_order,
                taker_user, taker_side, maker_order, maker_user) -> BetMatched:
    if not cython.compiled:
        return BetMatched(seq=seq, ts=ts, market=market, selection=selection, price=price,
                          size_minor=size_minor, win_minor=win_minor, taker_order=taker_order,
                          taker_user=taker_user, taker_side=taker_side,
                          maker_order=maker_order, maker_user=maker_user)
    ev = BetMatched.__new__(BetMatched)
    ev.seq = seq
    ev.ts = ts
    ev.market = market
    ev.selection = selection
    ev.price = price
    ev.size_minor = size_minor
    ev.win_minor = win_minor
    ev.taker_order = taker_order
    ev.taker_user = taker_user
    ev.taker_side = taker_side
    ev.maker_order = maker_order
    ev.maker_user = maker_user
    return ev


def wallet_changed(seq, ts, user, currency, balance_minor, held_minor) -> WalletChanged:
    if not cython.compiled:
        return WalletChanged(seq=seq, ts=ts, user=user, currency=currency,
                             balance_minor=balance_minor, held_minor=held_minor)
    ev = WalletChanged.__new__(WalletChanged)
    ev.seq = seq
    ev.ts = ts
    ev.user = user
    ev.currency = currency
    ev.balance_minor = balance_minor
    ev.held_minor = held_minor
    return ev


# -- the same events as journal records ---------------------------------------------------------
# engine/codec.py writes every event as a record (its name, then its fields in order). For these
# three, the order path's, the record is built here in C; the codec builds the others.
# tests/test_engine_records.py checks each against the codec's generic builder.


def order_placed_record(ev: OrderPlaced) -> tuple:
    return ("OrderPlaced", ev.seq, ev.ts, ev.order, ev.user, ev.market, ev.selection, ev.side,
            ev.price, ev.size_minor, ev.persistence, ev.tif, ev.ref, ev.release_ts)


def bet_matched_record(ev: BetMatched) -> tuple:
    return ("BetMatched", ev.seq, ev.ts, ev.market, ev.selection, ev.price, ev.size_minor,
            ev.win_minor, ev.taker_order, ev.taker_user, ev.taker_side, ev.maker_order,
            ev.maker_user)


def wallet_changed_record(ev: WalletChanged) -> tuple:
    return ("WalletChanged", ev.seq, ev.ts, ev.user, ev.currency, ev.balance_minor,
            ev.held_minor)


RECORD_BUILDERS = {OrderPlaced: order_placed_record, BetMatched: bet_matched_record,
                   WalletChanged: wallet_changed_record}

"""Events: what happened, in the past tense. The engine's only output.

Every event carries the `seq` and `ts` of the command that caused it. Events are what the journal
stores next to each command, what the persister folds into Postgres, and what the gateway turns
into replies and pushes, so they carry everything those need without reading engine state.
Money fields are int minor units, odds int hundredths.
"""

from dataclasses import dataclass

from .frozen import fast_init


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    seq: int
    ts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandRejected(Event):
    code: str
    reason: str


# -- markets ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketCreated(Event):
    market: str
    event: str
    name: str
    type: str
    currency: str
    selections: tuple[tuple[str, str], ...]
    commission_bp: int
    take_bp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketStatusChanged(Event):
    market: str
    status: str  # INACTIVE | OPEN | SUSPENDED | CLOSED | SETTLED | VOIDED
    in_play: bool
    bet_delay_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketSettled(Event):
    market: str
    winners: tuple[str, ...]
    dead_heat: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketVoided(Event):
    market: str


# -- orders -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReleased(Event):
    """A delayed in-play order reached the book."""

    order: str
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceRepeated(Event):
    """A place with a known ref and the same fields: the original order stands, nothing changed."""

    order: str
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolStaked(Event):
    """A pool bet's stake went into the pool: the order is fully matched at once."""

    order: str
    user: str
    market: str
    selection: str
    size_minor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(Event):
    order: str
    user: str
    size_minor: int
    reason: str  # "requested" | "fok" | "suspended" | "replaced"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLapsed(Event):
    order: str
    user: str
    size_minor: int
    reason: str  # "in_play" | "closed" | "voided"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReplaced(Event):
    order: str
    user: str
    new_order: str


# -- money ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WalletChanged(Event):
    user: str
    currency: str
    balance_minor: int
    held_minor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MoneyMoved(Event):
    """One double-entry ledger movement: entries (account, amount_minor) sum to zero."""

    kind: str  # deposit | withdrawal | settlement | commission | pool_take | breakage
    ref: str
    currency: str
    entries: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DepositRepeated(Event):
    ref: str
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawalRequested(Event):
    withdrawal: str
    user: str
    currency: str
    amount_minor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawalApproved(Event):
    withdrawal: str
    user: str
    currency: str
    amount_minor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawalRejected(Event):
    withdrawal: str
    user: str
    currency: str
    amount_minor: int


# -- limits and prices ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketLimitsSet(Event):
    market: str
    max_liability_minor: int | None
    selection_max_liability_minor: int | None
    min_stake_minor: int | None
    max_stake_minor: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserLimitsSet(Event):
    user: str
    max_stake_minor: int | None
    daily_stake_minor: int | None
    weekly_stake_minor: int | None
    stake_factor: tuple[int, int] | None
    max_exposure_minor: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PricesSet(Event):
    market: str
    fair: tuple[tuple[str, int], ...]
    offered: tuple[tuple[str, int], ...]  # after margin and shading, on the ladder
    margin_bp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SelectionSuspended(Event):
    """Risk stopped the house quoting a selection: its liability reached the limit."""

    market: str
    selection: str
    house_liability_minor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Configured(Event):
    velocity_orders_max: int
    velocity_window_ms: int
    house_default_liability_minor: int
    house_back_ticks: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: fast_init(cls)
    for cls in (
        CommandRejected, MarketCreated, MarketStatusChanged, MarketSettled, MarketVoided,
        OrderPlaced, OrderReleased, PlaceRepeated, BetMatched, PoolStaked, OrderCancelled,
        OrderLapsed,
        OrderReplaced, WalletChanged, MoneyMoved, DepositRepeated, WithdrawalRequested,
        WithdrawalApproved, WithdrawalRejected, MarketLimitsSet, UserLimitsSet, PricesSet,
        SelectionSuspended, Configured,
    )
}

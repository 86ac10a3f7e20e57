"""Commands: what someone asks the exchange to do, in the imperative.

Frozen keyword-only dataclasses, compiled by Cython like the events, and like them untracked by
the cyclic collector (see events.py). The
sequencer stamps `seq` (monotonic, gap-free) and `ts` (milliseconds since the epoch) before
`Engine.apply` sees them; ids of new orders and withdrawals are derived from `seq`, so the engine
needs no clock and no id generator.
Money fields are int minor units (`*_minor`), odds are int hundredths on the ladder.
`user` on a command is the authenticated caller, set by the gateway, never by a client.
"""

from dataclasses import fields

import cython

BACK = "back"
LAY = "lay"
LAPSE = "lapse"
PERSIST = "persist"
GTC = "gtc"
FOK = "fok"
EXCHANGE = "exchange"
POOL = "pool"


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class Command:
    seq: int = 0
    ts: int = 0


# -- markets (trader) -------------------------------------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class CreateMarket(Command):
    market: str
    event: str
    name: str
    selections: tuple[tuple[str, str], ...]  # (selection id, name)
    type: str = EXCHANGE
    currency: str = "BDT"
    commission_bp: int = 500  # on exchange markets: basis points of a user's net market winnings
    take_bp: int = 1000  # on pool markets: basis points of the pool kept by the house
    # the scheduled start, ms since the epoch (None: not given). Added after journals were
    # written: a field added to a command or event comes last with a default (engine/codec.py)
    start_ts: int | None = None


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SetMarketStatus(Command):
    market: str
    status: str | None = None  # "open" | "suspended" | "closed"; None leaves it
    in_play: bool | None = None  # True turns the market in-play (one way)
    bet_delay_ms: int | None = None


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SettleMarket(Command):
    market: str
    winners: tuple[str, ...]
    # (selection, numerator, denominator): factor = places paid / runners tied
    dead_heat: tuple[tuple[str, int, int], ...] = ()


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class VoidMarket(Command):
    market: str


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class RemoveSelection(Command):
    """A selection of an exchange market will not run (a non-runner): its orders lapse, its
    matched bets are void, and the odds of the bets matched so far on the others are reduced
    by the reduction factor (engine/money.py `reduced_price`)."""

    market: str
    selection: str
    reduction_bp: int = 0  # the reduction factor in basis points: 2500 = 25%


# -- orders (bettor) --------------------------------------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class PlaceOrder(Command):
    user: str
    market: str
    selection: str
    side: str  # BACK | LAY
    price: int
    size_minor: int
    persistence: str = LAPSE
    tif: str = GTC
    min_fill_minor: int = 0  # only with FOK; 0 means the whole size
    ref: str = ""  # idempotency key: same user + ref + fields = the same order


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class CancelOrder(Command):
    user: str
    order: str
    size_reduction_minor: int = 0  # 0 cancels all that remains


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class ReplaceOrder(Command):
    user: str
    order: str
    price: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class CancelAll(Command):
    user: str
    market: str = ""  # "" = every market


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class Tick(Command):
    """Advances engine time: releases in-play orders whose bet delay has passed."""


# -- money ------------------------------------------------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class Deposit(Command):
    user: str
    currency: str
    amount_minor: int
    ref: str  # the payment provider's reference: credited once, ever


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class RequestWithdrawal(Command):
    user: str
    currency: str
    amount_minor: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class ApproveWithdrawal(Command):
    withdrawal: str


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class RejectWithdrawal(Command):
    withdrawal: str


# -- money between shards (the split shape: engine/transfers.py, gateway/split/funding.py) ----


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class TransferOut(Command):
    """Move a bettor's available money from this shard's wallet to their wallet on another
    shard; the transfer's id is derived from this command's seq ("t<seq>")."""

    user: str
    currency: str
    amount_minor: int
    to_shard: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class TransferIn(Command):
    """Credit a transfer another shard journaled out; once per transfer id, ever."""

    transfer: str
    user: str
    currency: str
    amount_minor: int
    from_shard: int


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class ConfirmTransfer(Command):
    """The destination credited this shard's transfer: it is no longer in flight."""

    transfer: str


# -- limits and prices (trader) ----------------------------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SetMarketLimits(Command):
    market: str
    max_liability_minor: int | None = None  # house liability cap, whole market
    selection_max_liability_minor: int | None = None  # house liability cap, per selection
    min_stake_minor: int | None = None
    max_stake_minor: int | None = None


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SetUserLimits(Command):
    user: str
    max_stake_minor: int | None = None
    daily_stake_minor: int | None = None
    weekly_stake_minor: int | None = None
    stake_factor: tuple[int, int] | None = None  # (numerator, denominator)
    max_exposure_minor: int | None = None


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SetPrices(Command):
    market: str
    prices: tuple[tuple[str, int], ...]  # (selection, fair odds in hundredths)
    margin_bp: int = 0


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class Configure(Command):
    """Change the engine settings that decide outcomes (engine/config.py). Journaled like any
    command, so a replay takes the same decisions as the original run."""

    velocity_orders_max: int
    velocity_window_ms: int
    house_default_liability_minor: int
    house_back_ticks: int


# -- the bettor's own limits (risk/self_limits.py) ----------------------------------------------


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class SetSelfLimits(Command):
    """A bettor's own limits in one currency: a value lowers a limit (or sets one where there was
    none) at once and asks for a raise after the cooling-off period; a name in `remove` asks
    for that limit to go, after the cooling-off period too. None leaves a limit as it is."""

    user: str
    currency: str
    daily_deposit_minor: int | None = None
    weekly_deposit_minor: int | None = None
    daily_stake_minor: int | None = None
    weekly_stake_minor: int | None = None
    daily_loss_minor: int | None = None
    weekly_loss_minor: int | None = None
    remove: tuple[str, ...] = ()  # names of risk/self_limits.NAMES


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class ExcludeSelf(Command):
    """A bettor excludes themselves from orders and deposits for `days` from now or until
    `until_ts` (exactly one of the two); their open orders are cancelled at once."""

    user: str
    days: int = 0
    until_ts: int = 0


@cython.no_gc
@cython.dataclasses.dataclass(frozen=True, kw_only=True)
@cython.cclass
class ConfigureSelfLimits(Command):
    """The operator's setting for bettors' own limits (EngineConfig), journaled like Configure."""

    cooling_off_ms: int


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        CreateMarket, SetMarketStatus, SettleMarket, VoidMarket, RemoveSelection,
        PlaceOrder, CancelOrder, ReplaceOrder, CancelAll, Tick,
        Deposit, RequestWithdrawal, ApproveWithdrawal, RejectWithdrawal,
        SetMarketLimits, SetUserLimits, SetPrices, Configure,
        TransferOut, TransferIn, ConfirmTransfer,
        SetSelfLimits, ExcludeSelf, ConfigureSelfLimits,
    )
}


def _stamper(cls):
    """A function copying a `cls` command with another seq and ts, its fields written out by
    keyword: dataclasses.replace costs several times as much (two loops over the fields), and
    this runs once per command on the sequencer's hot path."""
    kept = "".join(f", {f.name}=cmd.{f.name}" for f in fields(cls) if f.name not in ("seq", "ts"))
    namespace: dict = {"cls": cls}
    exec(f"def stamp(cmd, seq, ts):\n    return cls(seq=seq, ts=ts{kept})\n", namespace)
    return namespace["stamp"]


class _Stampers(dict):
    def __missing__(self, cls):
        stamper = self[cls] = _stamper(cls)
        return stamper


_STAMPERS = _Stampers()


def stamped(cmd: Command, seq: int, ts: int) -> Command:
    """A copy of `cmd` carrying `seq` and `ts` (what the sequencer does to every command)."""
    return _STAMPERS[type(cmd)](cmd, seq, ts)


# -- the order path's commands, built, stamped and recorded in C --------------------------------
# Nearly every command is a place or a cancel. Compiled, these fill one field by field (a keyword
# call spends most of its time matching keywords): the stampers copy one with another seq and
# ts, and the codec makes one from its journal record (engine/codec.py), which the record
# builders write with direct field reads; run uncompiled they are the generic paths.
# tests/test_engine_records.py checks each against the generic one.


def place_order(seq, ts, user, market, selection, side, price, size_minor, persistence, tif,
                min_fill_minor, ref) -> PlaceOrder:
    if not cython.compiled:
        return PlaceOrder(seq=seq, ts=ts, user=user, market=market, selection=selection,
                          side=side, price=price, size_minor=size_minor,
                          persistence=persistence, tif=tif, min_fill_minor=min_fill_minor,
                          ref=ref)
    cmd = PlaceOrder.__new__(PlaceOrder)
    cmd.seq = seq
    cmd.ts = ts
    cmd.user = user
    cmd.market = market
    cmd.selection = selection
    cmd.side = side
    cmd.price = price
    cmd.size_minor = size_minor
    cmd.persistence = persistence
    cmd.tif = tif
    cmd.min_fill_minor = min_fill_minor
    cmd.ref = ref
    return cmd


def cancel_order(seq, ts, user, order, size_reduction_minor) -> CancelOrder:
    if not cython.compiled:
        return CancelOrder(seq=seq, ts=ts, user=user, order=order,
                           size_reduction_minor=size_reduction_minor)
    cmd = CancelOrder.__new__(CancelOrder)
    cmd.seq = seq
    cmd.ts = ts
    cmd.user = user
    cmd.order = order
    cmd.size_reduction_minor = size_reduction_minor
    return cmd


def stamp_place_order(cmd: PlaceOrder, seq: int, ts: int) -> PlaceOrder:
    return place_order(seq, ts, cmd.user, cmd.market, cmd.selection, cmd.side, cmd.price,
                       cmd.size_minor, cmd.persistence, cmd.tif, cmd.min_fill_minor, cmd.ref)


def stamp_cancel_order(cmd: CancelOrder, seq: int, ts: int) -> CancelOrder:
    return cancel_order(seq, ts, cmd.user, cmd.order, cmd.size_reduction_minor)


_STAMPERS[PlaceOrder] = stamp_place_order
_STAMPERS[CancelOrder] = stamp_cancel_order


def place_order_record(cmd: PlaceOrder) -> tuple:
    return ("PlaceOrder", cmd.seq, cmd.ts, cmd.user, cmd.market, cmd.selection, cmd.side,
            cmd.price, cmd.size_minor, cmd.persistence, cmd.tif, cmd.min_fill_minor, cmd.ref)


def cancel_order_record(cmd: CancelOrder) -> tuple:
    return ("CancelOrder", cmd.seq, cmd.ts, cmd.user, cmd.order, cmd.size_reduction_minor)


RECORD_BUILDERS = {PlaceOrder: place_order_record, CancelOrder: cancel_order_record}

"""Commands: what someone asks the exchange to do, in the imperative.

Frozen, slotted, keyword-only dataclasses. The sequencer stamps `seq` (monotonic, gap-free) and
`ts` (milliseconds since the epoch) before `Engine.apply` sees them; ids of new orders and
withdrawals are derived from `seq`, so the engine needs no clock and no id generator.
Money fields are int minor units (`*_minor`), odds are int hundredths on the ladder.
`user` on a command is the authenticated caller, set by the gateway, never by a client.
"""

from dataclasses import dataclass, fields

from .frozen import fast_init

BACK = "back"
LAY = "lay"
LAPSE = "lapse"
PERSIST = "persist"
GTC = "gtc"
FOK = "fok"
EXCHANGE = "exchange"
POOL = "pool"


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    seq: int = 0
    ts: int = 0


# -- markets (trader) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateMarket(Command):
    market: str
    event: str
    name: str
    selections: tuple[tuple[str, str], ...]  # (selection id, name)
    type: str = EXCHANGE
    currency: str = "BDT"
    commission_bp: int = 500  # on exchange markets: basis points of a user's net market winnings
    take_bp: int = 1000  # on pool markets: basis points of the pool kept by the house


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMarketStatus(Command):
    market: str
    status: str | None = None  # "open" | "suspended" | "closed"; None leaves it
    in_play: bool | None = None  # True turns the market in-play (one way)
    bet_delay_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SettleMarket(Command):
    market: str
    winners: tuple[str, ...]
    # (selection, numerator, denominator): factor = places paid / runners tied
    dead_heat: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class VoidMarket(Command):
    market: str


# -- orders (bettor) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(Command):
    user: str
    order: str
    size_reduction_minor: int = 0  # 0 cancels all that remains


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceOrder(Command):
    user: str
    order: str
    price: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAll(Command):
    user: str
    market: str = ""  # "" = every market


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick(Command):
    """Advances engine time: releases in-play orders whose bet delay has passed."""


# -- money ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Deposit(Command):
    user: str
    currency: str
    amount_minor: int
    ref: str  # the payment provider's reference: credited once, ever


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestWithdrawal(Command):
    user: str
    currency: str
    amount_minor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproveWithdrawal(Command):
    withdrawal: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectWithdrawal(Command):
    withdrawal: str


# -- limits and prices (trader) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMarketLimits(Command):
    market: str
    max_liability_minor: int | None = None  # house liability cap, whole market
    selection_max_liability_minor: int | None = None  # house liability cap, per selection
    min_stake_minor: int | None = None
    max_stake_minor: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetUserLimits(Command):
    user: str
    max_stake_minor: int | None = None
    daily_stake_minor: int | None = None
    weekly_stake_minor: int | None = None
    stake_factor: tuple[int, int] | None = None  # (numerator, denominator)
    max_exposure_minor: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPrices(Command):
    market: str
    prices: tuple[tuple[str, int], ...]  # (selection, fair odds in hundredths)
    margin_bp: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Configure(Command):
    """Change the engine settings that decide outcomes (engine/config.py). Journaled like any
    command, so a replay takes the same decisions as the original run."""

    velocity_orders_max: int
    velocity_window_ms: int
    house_default_liability_minor: int
    house_back_ticks: int


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.__name__: fast_init(cls)
    for cls in (
        CreateMarket, SetMarketStatus, SettleMarket, VoidMarket,
        PlaceOrder, CancelOrder, ReplaceOrder, CancelAll, Tick,
        Deposit, RequestWithdrawal, ApproveWithdrawal, RejectWithdrawal,
        SetMarketLimits, SetUserLimits, SetPrices, Configure,
    )
}


def _stamper(cls):
    """A function copying a `cls` command with another seq and ts, written out field by field
    through the slot descriptors: dataclasses.replace costs about five times as much, a loop
    over the fields twice, and this runs once per command on the sequencer's hot path."""
    namespace: dict = {"new": object.__new__, "cls": cls}
    body = []
    for f in fields(cls):
        namespace[f"set_{f.name}"] = getattr(cls, f.name).__set__
        value = f.name if f.name in ("seq", "ts") else f"cmd.{f.name}"
        body.append(f"    set_{f.name}(copy, {value})\n")
    exec("def stamp(cmd, seq, ts):\n    copy = new(cls)\n" + "".join(body) + "    return copy\n",
         namespace)
    return namespace["stamp"]


class _Stampers(dict):
    def __missing__(self, cls):
        stamper = self[cls] = _stamper(cls)
        return stamper


_STAMPERS = _Stampers()


def stamped(cmd: Command, seq: int, ts: int) -> Command:
    """A copy of `cmd` carrying `seq` and `ts` (what the sequencer does to every command)."""
    return _STAMPERS[type(cmd)](cmd, seq, ts)

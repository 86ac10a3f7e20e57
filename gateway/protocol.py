"""The wire protocol's requests as pydantic models (PROTOCOL.md): validation at the edge.

Every request model forbids unknown fields, so a client can never name another user or smuggle
a field the engine would trust. Money and odds arrive as strings and leave this module as int
minor units / int hundredths; a malformed amount is INVALID_SIZE, malformed odds INVALID_ODDS,
anything else that does not fit BAD_REQUEST. `parse()` turns one text frame into a model or a
`ProtocolError` with a stable code.
"""

from typing import Annotated, Any, Literal, Union

import orjson
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter,
                      ValidationError, WithJsonSchema)
from pydantic_core import PydanticCustomError

from engine.market import START_TS_MAX
from engine.money import parse_fraction, parse_money, parse_odds
from engine.rejections import Code

from .statements import CLEARED_CURSOR, PAGE_MAX, STATEMENT_CURSOR, TS_MAX_MS

MONEY_PATTERN = r"^(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?$"


def _money(value: Any) -> int:
    if not isinstance(value, str):
        raise PydanticCustomError("invalid_size", "money must be a decimal string like \"10.50\"")
    try:
        return parse_money(value)
    except ValueError:
        raise PydanticCustomError("invalid_size",
                                  "money must have at most two decimals: {value}",
                                  {"value": value}) from None


def _odds(value: Any) -> int:
    if not isinstance(value, str):
        raise PydanticCustomError("invalid_odds", "odds must be a decimal string like \"2.50\"")
    try:
        return parse_odds(value)
    except ValueError:
        raise PydanticCustomError("invalid_odds", "odds must have at most two decimals: {value}",
                                  {"value": value}) from None


def _fraction(value: Any) -> tuple[int, int]:
    if not isinstance(value, str):
        raise PydanticCustomError("bad_request", "a factor is a string like \"0.5\" or \"1/3\"")
    try:
        f = parse_fraction(value)
    except (ValueError, ZeroDivisionError):
        raise PydanticCustomError("bad_request", "not a factor: {value}", {"value": value}) from None
    return f.numerator, f.denominator


def _rate_bp(value: Any) -> int:
    num, den = _fraction(value)
    bp, rest = divmod(num * 10_000, den)
    if rest:
        raise PydanticCustomError("bad_request", "a rate has at most four decimals")
    return bp


Money = Annotated[int, BeforeValidator(_money),
                  WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN,
                                  "examples": ["10.50"]})]
Odds = Annotated[int, BeforeValidator(_odds),
                 WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN,
                                 "examples": ["2.50"]})]
Factor = Annotated[tuple[int, int], BeforeValidator(_fraction),
                   WithJsonSchema({"type": "string", "examples": ["0.5", "1/3"]})]
Rate = Annotated[int, BeforeValidator(_rate_bp),
                 WithJsonSchema({"type": "string", "examples": ["0.05"]})]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
TimestampMs = Annotated[int, Field(ge=0, le=START_TS_MAX)]  # ms since the epoch
RequestId = str | int | None


class Request(BaseModel):
    # strict: a wrong type is an error, never coerced ("3" is not a depth, "yes" not true)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    id: RequestId = None


# -- connection -------------------------------------------------------------------------------


class Auth(Request):
    op: Literal["auth"]
    token: str = Field(max_length=4096)
    cancel_on_disconnect: bool = False


# -- bettor -----------------------------------------------------------------------------------


class Subscribe(Request):
    op: Literal["subscribe"]
    markets: list[Id] | None = Field(default=None, max_length=10_000)
    depth: int = Field(default=3, ge=1, le=10)
    channel: Literal["exposure", "catalogue"] | None = None


class Unsubscribe(Request):
    op: Literal["unsubscribe"]
    markets: list[Id] | None = Field(default=None, max_length=10_000)
    channel: Literal["exposure", "catalogue"] | None = None


MarketStatusName = Literal["inactive", "open", "suspended", "closed", "settled", "voided"]


class Catalogue(Request):
    op: Literal["catalogue"]
    event: Id | None = None
    status: list[MarketStatusName] | None = Field(default=None, min_length=1, max_length=6)
    in_play: bool | None = None
    start_from: TimestampMs | None = None
    start_to: TimestampMs | None = None
    sort: Literal["created", "start"] = "created"
    after: Id | None = None
    limit: int = Field(default=50, ge=1, le=200)


class Place(Request):
    op: Literal["place"]
    market: Id
    selection: Id
    side: Literal["back", "lay"]
    price: Odds
    size: Money
    persistence: Literal["lapse", "persist"] = "lapse"
    tif: Literal["gtc", "fok"] = "gtc"
    min_fill: Money | None = None
    ref: Annotated[str, Field(max_length=64)] | None = None


class Preview(Place):
    op: Literal["preview"]  # type: ignore[assignment]


class Cancel(Request):
    op: Literal["cancel"]
    order: Id
    size_reduction: Money | None = None


class Replace(Request):
    op: Literal["replace"]
    order: Id
    price: Odds


class CancelAll(Request):
    op: Literal["cancel_all"]
    market: Id | None = None


class Orders(Request):
    op: Literal["orders"]


class Wallet(Request):
    op: Literal["wallet"]
    currency: Currency | None = None


class _History(Request):
    """A page of the caller's history from the read model (gateway/statements.py)."""

    currency: Currency | None = None
    market: Id | None = None
    from_ts: int | None = Field(default=None, ge=0, le=TS_MAX_MS)
    to_ts: int | None = Field(default=None, ge=0, le=TS_MAX_MS)
    sort: Literal["newest", "oldest"] = "newest"
    limit: int = Field(default=50, ge=1, le=PAGE_MAX)


class Statement(_History):
    op: Literal["statement"]
    cursor: Annotated[str, Field(pattern=STATEMENT_CURSOR)] | None = None


class Cleared(_History):
    op: Literal["cleared"]
    cursor: Annotated[str, Field(pattern=CLEARED_CURSOR)] | None = None


class Pnl(Request):
    op: Literal["pnl"]
    market: Id
    watch: bool = True


class CashoutQuote(Request):
    op: Literal["cashout.quote"]
    market: Id
    fraction: Factor | None = None


class Cashout(Request):
    op: Literal["cashout"]
    market: Id
    fraction: Factor | None = None
    prices: dict[Id, Odds] | None = Field(default=None, max_length=100)
    tolerance: int = Field(default=0, ge=0, le=100)


class SelfLimits(Request):
    op: Literal["selflimits"]
    currency: Currency | None = None


class SelfLimitsSet(Request):
    """A value sets that limit (lowered at once, raised after the cooling-off period); an
    explicit null removes it (after the cooling-off period); a field left out stays."""

    op: Literal["selflimits.set"]
    currency: Currency | None = None
    daily_deposit: Money | None = None
    weekly_deposit: Money | None = None
    daily_stake: Money | None = None
    weekly_stake: Money | None = None
    daily_loss: Money | None = None
    weekly_loss: Money | None = None


class SelfExclude(Request):
    op: Literal["selfexclude"]
    days: int | None = Field(default=None, ge=1, le=3650)
    until: int | None = None  # ms since the epoch; the engine checks it is 1 to 3650 days ahead


class SlipLeg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    market: Id
    selection: Id
    side: Literal["back", "lay"]
    stake: Money


class SlipSet(Request):
    op: Literal["slip.set"]
    legs: list[SlipLeg] = Field(max_length=20)


class SlipPlace(Request):
    op: Literal["slip.place"]
    accept: Literal["exact", "better", "any"] = "exact"


# -- trader -----------------------------------------------------------------------------------


class SelectionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    id: Id
    name: Annotated[str, Field(max_length=200)]


class MarketCreate(Request):
    op: Literal["market.create"]
    market: Id
    event: Id
    name: Annotated[str, Field(max_length=200)]
    type: Literal["exchange", "pool"] = "exchange"
    currency: Currency | None = None  # the exchange's default currency when absent
    selections: list[SelectionSpec] = Field(min_length=1, max_length=100)
    commission: Rate | None = None
    take: Rate | None = None
    start_ts: TimestampMs | None = None


class MarketStatus(Request):
    op: Literal["market.status"]
    market: Id
    status: Literal["open", "suspended", "closed"] | None = None
    in_play: bool | None = None
    bet_delay_ms: int | None = Field(default=None, ge=0, le=60_000)


class PricesSet(Request):
    op: Literal["prices.set"]
    market: Id
    prices: dict[Id, Odds] = Field(min_length=1, max_length=100)
    margin: Rate = 0


class LimitsSet(Request):
    op: Literal["limits.set"]
    market: Id | None = None
    user: Id | None = None
    max_liability: Money | None = None
    selection_max_liability: Money | None = None
    min_stake: Money | None = None
    max_stake: Money | None = None
    daily_stake: Money | None = None
    weekly_stake: Money | None = None
    stake_factor: Factor | None = None
    max_exposure: Money | None = None


class MarketSettle(Request):
    op: Literal["market.settle"]
    market: Id
    winners: list[Id] = Field(min_length=1, max_length=100)
    dead_heat: dict[Id, Factor] | None = None


class MarketVoid(Request):
    op: Literal["market.void"]
    market: Id


class SelectionRemove(Request):
    op: Literal["selection.remove"]
    market: Id
    selection: Id
    reduction_factor: Rate


REQUESTS = (Auth, Subscribe, Unsubscribe, Catalogue, Place, Preview, Cancel, Replace, CancelAll,
            Orders, Wallet, Statement, Cleared, Pnl, CashoutQuote, Cashout, SlipSet, SlipPlace,
            MarketCreate, MarketStatus, PricesSet, LimitsSet, MarketSettle, MarketVoid,
            SelectionRemove, SelfLimits, SelfLimitsSet, SelfExclude)
BY_OP: dict[str, type[Request]] = {m.model_fields["op"].annotation.__args__[0]: m
                                   for m in REQUESTS}
TRADER_OPS = frozenset({"market.create", "market.status", "prices.set", "limits.set",
                        "market.settle", "market.void", "selection.remove"})
_ANY_REQUEST = TypeAdapter(Annotated[Union[REQUESTS], Field(discriminator="op")])

_ERROR_CODES = {"invalid_size": Code.INVALID_SIZE, "invalid_odds": Code.INVALID_ODDS}


class ProtocolError(Exception):
    def __init__(self, code: Code, message: str, request_id: RequestId = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def load_object(raw: str | bytes, what: str = "frame") -> dict:
    """JSON text -> a dict, or ProtocolError(BAD_REQUEST). Shared by the WebSocket and HTTP."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProtocolError(Code.BAD_REQUEST, f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(Code.BAD_REQUEST, f"{what} must be a JSON object")
    return data


def validated(model: type[BaseModel], data: dict, request_id: RequestId = None):
    """`model` from `data`, or ProtocolError whose code says what was wrong: malformed money
    INVALID_SIZE, malformed odds INVALID_ODDS, anything else BAD_REQUEST."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        code = _ERROR_CODES.get(first["type"], Code.BAD_REQUEST)
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ProtocolError(code, f"{where}: {first['msg']}", request_id) from None


def parse(frame: str | bytes) -> Request:
    """One text frame -> a validated request, or ProtocolError (with the id when readable)."""
    return parse_object(load_object(frame))


def parse_object(data: dict) -> Request:
    """`parse` of a frame already loaded as a JSON object."""
    request_id = data.get("id")
    if not isinstance(request_id, (str, int, type(None))) or isinstance(request_id, bool):
        request_id = None
    op = data.get("op")
    model = BY_OP.get(op) if isinstance(op, str) else None
    if model is None:
        raise ProtocolError(Code.BAD_REQUEST, f"unknown op {op!r}", request_id)
    return validated(model, data, request_id)


def json_schema() -> dict:
    """The JSON schema of every request (docs/protocol.md is checked against it)."""
    return _ANY_REQUEST.json_schema()

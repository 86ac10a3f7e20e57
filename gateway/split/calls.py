"""The engine reads and commands a gateway may ask a shard for, by name.

A gateway holds no engine, so what the one-process edges pass to `Exchange.read` and `submit` as
functions (gateway/http.py's views, the market states a subscription starts from) travel here
as a name and keyword arguments: `functools.partial(market_detail, market_id="m1")` is the call
"market_detail" with {"market_id": "m1"}. Only functions listed here can be called: a shard runs
nothing a message names unless it is on this list.

Each read also says where it goes: one shard (the market's, the user's home) or every shard,
and then how the shards' answers make one (`merge`). Commands go to the shard that owns what
they touch (`command_shard`). Values travel as JSON; an exception as its class name, code,
message and (HTTP) status, raised again on the gateway as the same class.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from engine import commands as c
from engine.codec import decode_command, encode_command
from engine.rejections import Code, Rejected

from .. import catalogue, http, protocol, selflimits, statements
from ..exchange import Unavailable
from ..exposure import exposure_view
from ..ops import OpError
from ..views import market_state
from . import history, reports
from .scatter import merge_excluded, merge_selflimits, sum_wallets
from .shards import ShardMap


log = logging.getLogger(__name__)


class CallError(Exception):
    """A call a gateway may not make (not on the list), or a malformed one."""


def catalogue_page(engine, event, statuses, in_play, after, limit, start_from=None,
                   start_to=None, sort="created", after_start=None) -> dict:
    """A page of this shard's markets (gateway/catalogue.py page); the gateway strings the
    shards' pages together, or merges them by start time. `after_start` [no start time, start,
    ties before] is a place in the start order of every shard's markets, a cursor on another
    shard (its markets of the same start come before this shard's if `ties before`): the page
    starts after it. With `after`, the page also says where that market is in the start order
    (`after_start`)."""
    where = None
    if after is not None:
        m = engine.markets.get(after)
        if m is None:
            raise OpError(Code.UNKNOWN_MARKET, f"after: no market {after!r}")
        where = [m.start_ts is None, m.start_ts or 0]
    elif after_start is not None:  # this shard's last market before that place
        no_start, start, ties_before = after_start
        place = (no_start, start)
        for mid in catalogue.by_start(engine.markets):
            m = engine.markets[mid]
            key = (m.start_ts is None, m.start_ts or 0)
            if key > place or (key == place and not ties_before):
                break
            after = mid
    page = catalogue.page(engine, event, None if statuses is None else set(statuses), in_play,
                          after, limit, start_from, start_to, sort)
    return page if where is None else {**page, "after_start": where}


def funds(engine, user: str, currency: str | None = None, market: str | None = None) -> dict:
    """What the user can spend on this shard (funding.py): the wallet of `currency`, or of
    `market`'s currency."""
    if market is not None:
        m = engine.markets.get(market)
        if m is None:
            return {"currency": None, "available": 0}
        currency = m.currency
    w = engine.wallets.get((user, currency))
    return {"currency": currency, "available": w.available if w is not None else 0}


def market_states(engine, markets: list[str]) -> list:
    """[the shard's last seq, {market: its published state, or None if unknown}]: the seq
    versions the states, so a gateway's mirror keeps whichever is newer."""
    return [engine.last_seq, {m: market_state(engine, m) for m in markets}]


@dataclass(frozen=True)
class Read:
    fn: Callable
    # which shard answers, from the ShardMap and the call's arguments; None: every shard
    route: Callable[[ShardMap, dict], int | None]
    # the answers of every shard (in shard order) and the call's arguments -> one answer; only
    # for reads routed to every shard
    merge: Callable[[list, dict], Any] | None = None


def _everywhere(shards: ShardMap, kwargs: dict) -> None:
    return None


def _concat_markets(answers: list, kwargs: dict) -> dict:
    return {"markets": [m for answer in answers for m in answer["markets"]]}


def _any(answers: list, kwargs: dict) -> bool:
    return any(answers)


def _highest(answers: list, kwargs: dict) -> int:
    return max(answers)


def _user_detail(answers: list, kwargs: dict) -> dict | None:
    """A bettor's wallets summed over the shards, their positions and orders on each, their own
    limits as their home shard holds them with what was used on every shard."""
    home = answers[_home(answers, kwargs)]
    found = [a for a in answers if a is not None]
    if not found:
        return None
    by_currency: dict[str, list[dict]] = {}
    for answer in found:
        for w in answer["wallets"]:
            by_currency.setdefault(w["currency"], []).append(w)
    own: dict[str, list[dict]] = {}
    for answer in found:
        for view in answer["self_limits"]:
            own.setdefault(view["currency"], []).append(view)
    home_own = {view["currency"]: view for view in (home or found[0])["self_limits"]}
    return {**(home or found[0]), "wallets": [sum_wallets(ws) for ws in by_currency.values()],
            "positions": [p for a in found for p in a["positions"]],
            "open_orders": [o for a in found for o in a["open_orders"]],
            "self_limits": [merge_selflimits(home_own.get(currency, views[0]), views)
                            for currency, views in own.items()]}


def _home(answers: list, kwargs: dict) -> int:
    """Which of every shard's answers is the user's home shard's."""
    return ShardMap(len(answers)).of_user(kwargs["user"])


def _selflimits(answers: list, kwargs: dict) -> dict:
    return merge_selflimits(answers[_home(answers, kwargs)], answers)


def _withdrawals(answers: list, kwargs: dict) -> dict:
    return {"count": sum(a["count"] for a in answers),
            "withdrawals": [w for a in answers for w in a["withdrawals"]][:kwargs["limit"]]}


def _home_or_everywhere(shards: ShardMap, kwargs: dict) -> int | None:
    return None if kwargs.get("user") is None else shards.of_user(kwargs["user"])


def _home_or_market(shards: ShardMap, kwargs: dict) -> int:
    market = kwargs.get("market")
    return shards.of_market(market) if market else shards.of_user(kwargs["user"])


READS: dict[str, Read] = {
    "market_states": Read(market_states, lambda shards, kw: shards.of_market(kw["markets"][0])),
    "exposure": Read(exposure_view, _everywhere, _concat_markets),
    "market_detail": Read(http.market_detail, lambda shards, kw: shards.of_market(kw["market_id"])),
    "known_user": Read(http.known_user, _everywhere, _any),
    "user_detail": Read(http.user_detail, _everywhere, _user_detail),
    "withdrawal_list": Read(http.withdrawal_list, _home_or_everywhere, _withdrawals),
    "journaled_seq": Read(statements._journaled_seq, _everywhere, _highest),
    "funds": Read(funds, _home_or_market),
    "selflimits_view": Read(selflimits.view, _everywhere, _selflimits),
    "catalogue_page": Read(catalogue_page, lambda shards, kw: 0),  # the gateway picks the shard
}
# views of commands the HTTP edge submits
VIEWS: dict[str, Callable] = {"deposit_view": http.deposit_view,
                              "requested_view": http.requested_view,
                              "decided_view": http.decided_view,
                              "selflimits_set_view": http.selflimits_set_view,
                              "excluded_view": http.excluded_view}
_NAMES = {read.fn: name for name, read in READS.items()} | {fn: name for name, fn in VIEWS.items()}

# A bettor's own limits and self-exclusion hold on every shard (each enforces them on what it
# holds: docs/scale-out.md): their commands go to every shard, and the views of every shard make
# one answer, by these merges (every shard's answer in shard order, the command).
EVERYWHERE: dict[type, Callable[[list, c.Command], Any]] = {
    c.SetSelfLimits: lambda answers, cmd: _selflimits(answers, {"user": cmd.user}),
    c.ExcludeSelf: lambda answers, cmd: merge_excluded(
        answers[_home(answers, {"user": cmd.user})], answers),
}


def named(fn) -> tuple[str, dict]:
    """(name, keyword arguments) of a function listed here, bare or as a keyword partial."""
    kwargs = {}
    if isinstance(fn, partial):
        if fn.args:
            raise CallError(f"{fn.func.__name__}: give a call's arguments by keyword")
        fn, kwargs = fn.func, dict(fn.keywords)
    name = _NAMES.get(fn)
    if name is None:
        raise CallError(f"{getattr(fn, '__name__', fn)!r} cannot be called from a gateway: list "
                        "it in gateway/split/calls.py")
    return name, kwargs


def command_shard(shards: ShardMap, cmd: c.Command) -> int:
    """The shard a command belongs to: the market's, the order's or withdrawal's (by the seq
    in its id), a bettor's money at home. (Commands in EVERYWHERE go to every shard.)"""
    market = getattr(cmd, "market", None)
    if market is not None:
        return shards.of_market(market)
    if isinstance(cmd, (c.CancelOrder, c.ReplaceOrder)):
        return shards.of_id(cmd.order)
    if isinstance(cmd, (c.ApproveWithdrawal, c.RejectWithdrawal)):
        return shards.of_id(cmd.withdrawal)
    user = getattr(cmd, "user", None)
    return shards.of_user(user) if user is not None else 0


# -- on the wire --------------------------------------------------------------------------------


def encode_read(name: str, kwargs: dict) -> bytes:
    return orjson.dumps(["read", name, kwargs])


def encode_submit(cmd: c.Command, view) -> bytes:
    """A command and the view its reply is rendered with (a gateway needs a value JSON can
    carry, never the events themselves)."""
    view_name, view_kwargs = named(view)
    return orjson.dumps(["submit", orjson.Fragment(encode_command(cmd)), view_name, view_kwargs])


async def run(exchange, payload: bytes, deliver) -> None:
    """Engine side: run the call; deliver(ok, value) gets its outcome the moment it is final
    (between batches for a read, once journaled for a command). Raises what stops it early."""
    call = orjson.loads(payload)
    if call[0] == "read":
        read = READS.get(call[1])
        if read is None:
            raise CallError(f"no read {call[1]!r}")
        await exchange.read(partial(read.fn, **call[2]), deliver=deliver)
    elif call[0] in _READ_MODEL:
        try:
            deliver(True, await _READ_MODEL[call[0]](exchange, *call[1:]))
        except Exception as exc:
            deliver(False, exc)
    elif call[0] == "submit":
        cmd = decode_command(orjson.dumps(call[1]))
        fn = VIEWS.get(call[2])
        if fn is None:
            raise CallError(f"no view {call[2]!r}")
        await exchange.submit(cmd, view=partial(fn, **call[3]), deliver=deliver)
    else:
        raise CallError(f"no call {call[0]!r}")


_HISTORY_MODELS = {"statement": protocol.Statement, "cleared": protocol.Cleared}


async def _history(exchange, kind: str, user: str, *args):
    """A page (of this shard's part, with several: history.py), where a cursor's row was, or
    the wallet at some moments."""
    if kind == "page":
        model, fields, from_place, merged = args
        req = _HISTORY_MODELS[model].model_validate(fields)
        return await statements.history(exchange, user, req, from_place, merged)
    if kind == "place":
        return await history.place(exchange, user, *args)
    if kind == "balances":
        return await history.balances(exchange, user, *args)
    raise CallError(f"no history call {kind!r}")


def encode_history(kind: str, *args) -> bytes:
    return orjson.dumps(["history", kind, *args])


def encode_report(day_from: str, day_to: str, include_seeded: bool,
                  seeded: list[str] | None) -> bytes:
    return orjson.dumps(["report", day_from, day_to, include_seeded, seeded])


# calls answered from this shard's read model: a bettor's statement or cleared orders, the
# operator's GGR report (or this shard's part of one)
_READ_MODEL = {"history": _history, "report": reports.part}


def encode_outcome(ok: bool, value) -> bytes:
    if ok:
        return orjson.dumps([True, value])
    if type(value).__name__ not in _ERRORS:  # a bug: the caller gets INTERNAL, the log the trace
        log.error("call failed", exc_info=value)
    error = {"type": type(value).__name__, "code": str(getattr(value, "code", Code.INTERNAL)),
             "message": getattr(value, "message", None) or getattr(value, "reason", None)
             or "internal error"}
    status = getattr(value, "status", None)
    if status is not None:
        error["status"] = status
    return orjson.dumps([False, error])


_ERRORS: dict[str, Callable[[dict], Exception]] = {
    "HttpError": lambda e: http.HttpError(e["code"], e["message"], e.get("status")),
    "OpError": lambda e: OpError(e["code"], e["message"]),
    "Unavailable": lambda e: Unavailable(e["code"], e["message"]),
    "HistoryError": lambda e: statements.HistoryError(e["code"], e["message"]),
    "Rejected": lambda e: Rejected(e["code"], e["message"]),
}


def decode_outcome(payload: bytes):
    """Gateway side: the value, or the error raised again."""
    ok, value = orjson.loads(payload)
    if ok:
        return value
    make = _ERRORS.get(value["type"])
    if make is None:
        raise Unavailable(Code.INTERNAL, "internal error")
    raise make(value)

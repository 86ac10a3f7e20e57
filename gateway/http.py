"""The HTTP edge (aiohttp): health, readiness and metrics; the admin/trader/operator views;
payment webhooks and withdrawals (PROTOCOL.md "Operator ops", "Money in and out").

Like the WebSocket edge it never touches engine state except through the `Exchange`: reads run
as sequencer queries (between batches, so they only ever show journaled state) and money moves
as commands whose replies are computed right after their journal write. Every error is JSON
`{"code": .., "message": ..}` with a stable code from engine/rejections.py, plus the HTTP-only
codes below; the OpenAPI description of all of it is served at /openapi.json (gateway/openapi.py).
"""

import asyncio
import logging
import re
import time
from functools import partial
from typing import Annotated

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from engine import commands as c
from engine import events as ev
from engine.engine import SYSTEM_ACCOUNTS
from engine.house import HOUSE
from engine.market import FINAL
from engine.money import format_money, format_odds
from engine.positions import cashout_quote
from engine.rejections import Code

from . import protocol as p
from . import selflimits
from .auth import AuthError, Identity, verify
from .exchange import Exchange, Unavailable
from .exposure import exposure_view
from .openapi import build_openapi
from .pnl import selections_view
from .protocol import (Cleared, Currency, Id, Money, ProtocolError, Statement, load_object,
                       validated)
from .ops_page import add_ops_routes
from .reports import add_report_routes
from .statements import HistoryError
from .views import (format_factor, format_rate, order_views, removed_view, shown_wallet,
                    wallet_view)
from .webhooks import SIGNATURE_HEADER, fresh, signature_valid

log = logging.getLogger(__name__)

BODY_BYTES_MAX = 64 * 1024
BOOK_DEPTH = 3
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LAG_TIMEOUT_S = 1.0  # /metrics renders without the lag gauges rather than hang on Redis
PROVIDER = re.compile(r"^[a-z0-9_-]{1,32}$")
WITHDRAWAL_ID = re.compile(r"^w[1-9][0-9]{0,18}$")
USER_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
WITHDRAWAL_STATUSES = ("pending", "approved", "rejected")
WITHDRAWALS_LIMIT_MAX = 1000
HISTORY_NUMBERS = ("from_ts", "to_ts", "limit")  # statement and cleared query parameters
HISTORY_TEXTS = ("currency", "market", "sort", "cursor")

# HTTP-only codes, for things the engine has no name for (documented in gateway/openapi.py)
UNKNOWN_USER = "UNKNOWN_USER"
UNKNOWN_WITHDRAWAL = "UNKNOWN_WITHDRAWAL"
WITHDRAWAL_DECIDED = "WITHDRAWAL_DECIDED"
NOT_FOUND = "NOT_FOUND"

STATUS_BY_CODE: dict[str, int] = {
    Code.UNAUTHENTICATED: 401,
    Code.FORBIDDEN: 403,
    Code.BAD_REQUEST: 400,
    Code.RATE_LIMITED: 429,
    Code.UNKNOWN_MARKET: 404,
    Code.UNKNOWN_SELECTION: 404,
    Code.UNKNOWN_ORDER: 404,
    Code.DUPLICATE_REF: 409,
    Code.MARKET_NOT_OPEN: 409,
    Code.MARKET_SUSPENDED: 409,
    Code.INVALID_ODDS: 400,
    Code.INVALID_SIZE: 400,
    Code.STAKE_TOO_LOW: 409,
    Code.STAKE_TOO_HIGH: 409,
    Code.LIMIT_EXCEEDED: 409,
    Code.SELF_EXCLUDED: 409,
    Code.SELF_STAKE_LIMIT: 409,
    Code.SELF_LOSS_LIMIT: 409,
    Code.SELF_DEPOSIT_LIMIT: 409,
    Code.LIABILITY_LIMIT: 409,
    Code.INSUFFICIENT_FUNDS: 409,
    Code.FOK_NOT_FILLED: 409,
    Code.READ_MODEL_BEHIND: 503,
    Code.INTERNAL: 500,
    UNKNOWN_USER: 404,
    UNKNOWN_WITHDRAWAL: 404,
    WITHDRAWAL_DECIDED: 409,
    NOT_FOUND: 404,
}


class HttpError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.status = status or STATUS_BY_CODE.get(self.code, 400)
        self.headers = headers


# -- request bodies ---------------------------------------------------------------------------

ProviderRef = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class DepositNotice(BaseModel):
    """A provider's deposit notice. Unknown fields are ignored: providers add fields freely."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    ref: ProviderRef
    user: Id
    amount: Money
    currency: Currency
    ts: StrictInt  # unix seconds


class WithdrawalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    amount: Money
    currency: Currency | None = None  # the exchange's currency when absent


def _parse(model: type[BaseModel], body: bytes) -> BaseModel:
    """The body as `model`, with the same error codes as the WebSocket protocol."""
    try:
        return validated(model, load_object(body, "the body"))
    except ProtocolError as err:
        raise HttpError(err.code, err.message) from None


def _parse_op(model: type[p.Request], body: bytes) -> p.Request:
    """The body of an HTTP mirror of a WebSocket op: that op's request without `op` and `id`."""
    try:
        data = load_object(body, "the body")
        for key in ("op", "id"):
            if key in data:
                raise ProtocolError(Code.BAD_REQUEST, f"{key}: not a field of this body")
        return validated(model, {**data, "op": model.model_fields["op"].annotation.__args__[0]})
    except ProtocolError as err:
        raise HttpError(err.code, err.message) from None


# -- responses --------------------------------------------------------------------------------


def _json(data, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json")


def _error(status: int, code: str, message: str, headers=None) -> web.Response:
    return _json({"code": code, "message": message}, status, headers)


def _rejection(events: list) -> ev.CommandRejected | None:
    for event in events:
        if isinstance(event, ev.CommandRejected):
            return event
    return None


def _raise_rejected(events: list) -> None:
    rejected = _rejection(events)
    if rejected is not None:
        raise HttpError(rejected.code, rejected.reason)


def _money_or_none(minor: int | None) -> str | None:
    return None if minor is None else format_money(minor)


# -- engine views (run inside sequencer queries or submit views) -------------------------------
#
# Module functions, given their arguments by keyword with functools.partial: a gateway of the
# split shape names them to an engine shard (gateway/split/calls.py), which a closure could not.


def market_detail(engine, market_id: str) -> dict | None:
    m = engine.markets.get(market_id)
    if m is None:
        return None
    q = m.quotes
    selections = []
    for i, sid in enumerate(m.selection_ids):
        book = m.books[i]
        fair = q.fair.get(sid) if q is not None and i not in m.removed else None
        selection = {
            "id": sid, "name": m.selection_names[i],
            # to_back: resting lays, what a backer can take; to_lay: resting backs
            "to_back": [[format_odds(p), format_money(s)] for p, s in book.lays.depth(BOOK_DEPTH)],
            "to_lay": [[format_odds(p), format_money(s)] for p, s in book.backs.depth(BOOK_DEPTH)],
            "traded": format_money(m.traded[i]),
            "ltp": format_odds(m.ltp[i]) if m.ltp[i] else None,
            "house_fair": format_odds(fair) if fair else None,
            "house_offered": format_odds(q.offered[i]) if q is not None and q.offered[i] else None,
            "house_suspended": bool(q is not None and q.suspended[i]),
            "removed": removed_view(m, i),
        }
        if m.type == c.POOL:
            selection["pool_stake"] = format_money(m.pool_stakes[i])
        selections.append(selection)
    limits = m.limits
    house = m.positions.get(HOUSE)
    return {
        "market": m.id, "event": m.event, "name": m.name, "type": m.type,
        "currency": m.currency, "status": m.status, "in_play": m.in_play,
        "bet_delay_ms": m.bet_delay_ms, "start_ts": m.start_ts,
        "commission": format_rate(m.commission_bp),
        "take": format_rate(m.take_bp),
        "matched": format_money(sum(m.traded)),
        "limits": {
            "min_stake": _money_or_none(limits.min_stake_minor if limits else None),
            "max_stake": _money_or_none(limits.max_stake_minor if limits else None),
            "max_liability": _money_or_none(limits.max_liability_minor if limits else None),
            "selection_max_liability": _money_or_none(
                limits.selection_max_liability_minor if limits else None),
        },
        "house": {
            "priced": q is not None,
            "margin": format_rate(q.margin_bp) if q is not None else None,
            "liability": format_money(house.needed_hold() if house is not None else 0),
        },
        "selections": selections,
    }


def _wallet_currencies(engine, user: str, configured: list[str]) -> tuple[list[str], bool]:
    """The currencies to list for a user: every configured one (default first), then any other
    the user has a wallet in (a market's, or one no longer configured); and whether the user has
    any wallet at all."""
    others = sorted({m.currency for m in engine.markets.values()} - set(configured))
    held = [cur for cur in configured + others if (user, cur) in engine.wallets]
    return configured + [cur for cur in others if cur in held], bool(held)


def known_user(engine, user: str, currencies: list[str]) -> bool:
    """A customer the exchange knows: one with a wallet or limits."""
    return _wallet_currencies(engine, user, currencies)[1] or user in engine.risk


def user_detail(engine, user: str, currencies: list[str], ts: int = 0) -> dict | None:
    listed, has_wallet = _wallet_currencies(engine, user, currencies)
    wallets = [wallet_view(engine, user, cur) for cur in listed]
    risk = engine.risk.get(user)
    limits = risk.limits if risk is not None else None
    positions = []
    orders = []
    for m in engine.markets.values():
        pos = m.positions.get(user)
        if pos is None or m.status in FINAL:
            continue
        exchange = m.type == c.EXCHANGE
        positions.append({"market": m.id, "exposure": format_money(pos.hold),
                          "selections": selections_view(engine, m.id, user) if exchange else None,
                          "cash_out": (format_money(min(cashout_quote(engine, m.id, user).pnl_after))
                                       if exchange else None)})
        orders.extend(order_views(engine, [o.id for o in m.open_orders.values()
                                           if o.user == user]))
    own = engine.self_limits.get(user)
    if not has_wallet and risk is None and not positions and own is None:
        return None
    # the bettor's own limits, as at ts, in every currency listed, and any other they used
    own_currencies = listed + sorted(set(own.accounts if own else ()) - set(listed))
    excluded = own.excluded_until_ms if own is not None else 0
    return {
        "user": user,
        "wallets": wallets,
        "limits": {
            "max_stake": _money_or_none(limits.max_stake_minor if limits else None),
            "daily_stake": _money_or_none(limits.daily_stake_minor if limits else None),
            "weekly_stake": _money_or_none(limits.weekly_stake_minor if limits else None),
            "stake_factor": format_factor(limits.stake_factor if limits else None),
            "max_exposure": _money_or_none(limits.max_exposure_minor if limits else None),
        },
        "positions": positions,
        "open_orders": orders,
        "self_excluded_until": excluded if excluded > ts else None,
        "self_limits": [selflimits.view(engine, user, cur, ts) for cur in own_currencies],
    }


def deposit_view(engine, events, provider_ref: str, ref: str) -> dict:
    _raise_rejected(events)
    for event in events:  # refused by the bettor's own limit: final, the provider refunds
        if isinstance(event, ev.DepositRefused):
            raise HttpError(event.code, event.reason)
    user, currency, amount = engine.deposits[provider_ref]  # kept forever: a repeat sees it
    return {"ref": ref, "user": user, "amount": format_money(amount), "currency": currency,
            "status": "credited"}


def _wallet_from(engine, events: list, user: str, currency: str) -> dict | None:
    """The wallet exactly as this command left it (later commands of the batch may have moved
    it since, so the wallet is not read here), as wallet_view shows it."""
    for event in events:
        if (isinstance(event, ev.WalletChanged) and event.user == user
                and event.currency == currency):
            return shown_wallet(engine, user, currency, event.balance_minor, event.held_minor)
    return None


def requested_view(engine, events):
    _raise_rejected(events)
    req = next(e for e in events if isinstance(e, ev.WithdrawalRequested))
    return {"withdrawal": req.withdrawal, "amount": format_money(req.amount_minor),
            "currency": req.currency, "status": "pending",
            "wallet": _wallet_from(engine, events, req.user, req.currency)}


_DECISIONS = {"approved": ev.WithdrawalApproved, "rejected": ev.WithdrawalRejected}


def decided_view(engine, events, wid: str, status: str) -> dict:
    rejected = _rejection(events)
    if rejected is not None:
        wd = engine.withdrawals.get(wid)
        # a withdrawal requested later in the same batch did not exist when this ran
        if wd is None or int(wid[1:]) > rejected.seq:
            raise HttpError(UNKNOWN_WITHDRAWAL, f"no withdrawal {wid!r}")
        raise HttpError(WITHDRAWAL_DECIDED, f"withdrawal {wid} is already {wd[3]}")
    done = next(e for e in events if isinstance(e, _DECISIONS[status]))
    return {"withdrawal": wid, "user": done.user, "amount": format_money(done.amount_minor),
            "currency": done.currency, "status": status,
            "wallet": _wallet_from(engine, events, done.user, done.currency)}


def selflimits_set_view(engine, events, user: str, currency: str) -> dict:
    _raise_rejected(events)
    return selflimits.view(engine, user, currency, engine.last_ts)


def excluded_view(engine, events) -> dict:
    _raise_rejected(events)
    return selflimits.excluded_view(engine, events)


def withdrawal_list(engine, user: str | None, status: str | None, limit: int) -> dict:
    """Withdrawals of one user or everyone, of one status or any, oldest first (the engine
    keeps them in request order); at most `limit`, with the count of all that match."""
    matching = [(wid, wd) for wid, wd in engine.withdrawals.items()
                if (user is None or wd[0] == user) and (status is None or wd[3] == status)]
    return {"count": len(matching),
            "withdrawals": [{"withdrawal": wid, "user": wd[0], "amount": format_money(wd[2]),
                             "currency": wd[1], "status": wd[3]}
                            for wid, wd in matching[:limit]]}


def _list_query(request: web.Request, default_status: str | None) -> tuple[str | None, int]:
    """?status=pending|approved|rejected|all and ?limit=1..1000 (default 100)."""
    status = request.query.get("status", default_status or "all")
    if status != "all" and status not in WITHDRAWAL_STATUSES:
        raise HttpError(Code.BAD_REQUEST, "status is pending, approved, rejected or all")
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= WITHDRAWALS_LIMIT_MAX:
        raise HttpError(Code.BAD_REQUEST, f"limit is 1..{WITHDRAWALS_LIMIT_MAX}")
    return (None if status == "all" else status), int(raw)


# -- the application --------------------------------------------------------------------------


class HttpApi:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.settings = exchange.settings
        self.openapi = orjson.dumps(build_openapi())

    # -- cross-cutting ------------------------------------------------------------------------

    @web.middleware
    async def errors(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except HttpError as exc:
            return self._refuse(exc.status, exc.code, exc.message, exc.headers)
        except Unavailable as exc:
            return self._refuse(503, exc.code, exc.message, {"Retry-After": "1"})
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = NOT_FOUND if exc.status == 404 else Code.BAD_REQUEST
            return self._refuse(exc.status, code, exc.reason, dict(exc.headers))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("HTTP %s %s failed", request.method, request.path)
            return self._refuse(500, Code.INTERNAL, "internal error")

    def _refuse(self, status: int, code: str, message: str, headers=None) -> web.Response:
        self.exchange.metrics.rejections.labels(str(code)).inc()
        if headers:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        return _error(status, str(code), message, headers)

    def _identity(self, request: web.Request, role: str, *more_roles: str) -> Identity:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="backlay"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(Code.UNAUTHENTICATED, "an Authorization: Bearer <JWT> header is "
                            "required", headers=challenge)
        try:
            identity = verify(token.strip(), self.settings.jwt_secret,
                              self.settings.jwt_public_key)
        except AuthError as exc:
            raise HttpError(Code.UNAUTHENTICATED, str(exc), headers=challenge) from None
        roles = (role, *more_roles)
        if not any(identity.can(r) for r in roles):
            raise HttpError(Code.FORBIDDEN, f"needs role {' or '.join(roles)}")
        return identity

    def _currency(self, currency: str | None) -> str:
        if currency is None:
            return self.settings.currency
        why = self.settings.unsupported(currency)
        if why is not None:
            raise HttpError(Code.BAD_REQUEST, why)
        return currency

    # -- process ------------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return _json({"status": "up"})

    async def ready(self, request: web.Request) -> web.Response:
        ok, checks = await self.exchange.ready()
        return _json({"status": "ready" if ok else "not_ready", "checks": checks},
                     200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        m = self.exchange.metrics
        m.sequencer_healthy.set(1 if self.exchange.sequencer.healthy else 0)
        persister = self.exchange.persister
        if persister is not None:
            try:
                async with asyncio.timeout(LAG_TIMEOUT_S):
                    lag = await persister.lag()
            except Exception as exc:  # stale gauges beat no metrics while Redis is away
                log.warning("persister lag unavailable: %r", exc)
            else:
                m.persister_lag_entries.set(lag.seqs)
                m.persister_lag_seconds.set(lag.seconds)
        return web.Response(body=m.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def openapi_json(self, request: web.Request) -> web.Response:
        return web.Response(body=self.openapi, content_type="application/json")

    # -- admin views --------------------------------------------------------------------------

    async def exposure(self, request: web.Request) -> web.Response:
        self._identity(request, "operator")
        return _json(await self.exchange.read(exposure_view))

    async def admin_market(self, request: web.Request) -> web.Response:
        self._identity(request, "operator", "trader")
        market_id = request.match_info["id"]
        detail = await self.exchange.read(partial(market_detail, market_id=market_id))
        if detail is None:
            raise HttpError(Code.UNKNOWN_MARKET, f"no market {market_id!r}")
        return _json(detail)

    async def admin_user(self, request: web.Request) -> web.Response:
        self._identity(request, "operator")
        user = request.match_info["id"]
        currencies = self.settings.currencies
        detail = await self.exchange.read(partial(user_detail, user=user, currencies=currencies,
                                                  ts=selflimits.now_ms(self.exchange)))
        if detail is None:
            raise HttpError(UNKNOWN_USER, f"no user {user!r}")
        return _json(detail)

    # -- history: statement and cleared orders from Postgres (gateway/statements.py) ----------

    async def my_statement(self, request: web.Request) -> web.Response:
        return await self._history(request, Statement, self._identity(request, "bettor").user)

    async def my_cleared(self, request: web.Request) -> web.Response:
        return await self._history(request, Cleared, self._identity(request, "bettor").user)

    async def user_statement(self, request: web.Request) -> web.Response:
        return await self._history(request, Statement, await self._known_user(request))

    async def user_cleared(self, request: web.Request) -> web.Response:
        return await self._history(request, Cleared, await self._known_user(request))

    async def _known_user(self, request: web.Request) -> str:
        """The operator's {id}: a customer the exchange knows."""
        self._identity(request, "operator")
        user = request.match_info["id"]
        if user in SYSTEM_ACCOUNTS:
            raise HttpError(Code.BAD_REQUEST, f"{user!r} is a system account: its money is in "
                            "the ledger (GET /admin/reports/ggr), not in a statement")
        currencies = self.settings.currencies
        if not await self.exchange.read(partial(known_user, user=user, currencies=currencies)):
            raise HttpError(UNKNOWN_USER, f"no user {user!r}")
        return user

    async def _history(self, request: web.Request, model, user: str) -> web.Response:
        """?currency, market, from_ts, to_ts, sort, cursor, limit: the WebSocket request's
        fields, checked by its model."""
        data: dict = {"op": model.model_fields["op"].annotation.__args__[0]}
        for name, text in request.query.items():
            if name in HISTORY_NUMBERS:
                if not text.isdigit() or len(text) > 18:
                    raise HttpError(Code.BAD_REQUEST, f"{name} must be a whole number")
                data[name] = int(text)
            elif name in HISTORY_TEXTS:
                data[name] = text
            else:
                raise HttpError(Code.BAD_REQUEST, f"unknown parameter {name!r}")
        try:
            req = validated(model, data)
            body = await self.exchange.history(user, req)
        except ProtocolError as err:
            raise HttpError(err.code, err.message) from None
        except HistoryError as err:
            headers = {"Retry-After": "1"} if err.code == Code.READ_MODEL_BEHIND else None
            raise HttpError(err.code, err.message, headers=headers) from None
        return _json({"user": user, **body}, headers={
            "X-Backlay-Persisted-Seq": str(body["as_of_seq"]), "Cache-Control": "no-store"})

    # -- money in and out ---------------------------------------------------------------------

    async def deposit_webhook(self, request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        if not PROVIDER.match(provider):
            raise HttpError(NOT_FOUND, f"no provider {provider!r}")
        body = await request.read()
        if not signature_valid(self.settings.webhook_secret, body,
                               request.headers.get(SIGNATURE_HEADER)):
            raise HttpError(Code.UNAUTHENTICATED, f"missing or bad {SIGNATURE_HEADER}")
        notice = _parse(DepositNotice, body)
        if not fresh(notice.ts, time.time(), self.settings.webhook_tolerance_s):
            raise HttpError(Code.BAD_REQUEST, f"stale notice: ts {notice.ts} is more than "
                            f"{self.settings.webhook_tolerance_s} s from now")
        if notice.user in SYSTEM_ACCOUNTS:
            raise HttpError(Code.BAD_REQUEST, f"{notice.user!r} is a system account")
        currency = self._currency(notice.currency)
        provider_ref = f"{provider}:{notice.ref}"
        cmd = c.Deposit(user=notice.user, currency=currency, amount_minor=notice.amount,
                        ref=provider_ref)
        return _json(await self.exchange.submit(cmd, view=partial(
            deposit_view, provider_ref=provider_ref, ref=notice.ref)))

    async def request_withdrawal(self, request: web.Request) -> web.Response:
        identity = self._identity(request, "bettor")
        body = _parse(WithdrawalRequest, await request.read())
        cmd = c.RequestWithdrawal(user=identity.user, currency=self._currency(body.currency),
                                  amount_minor=body.amount)
        return _json(await self.exchange.submit(cmd, view=requested_view), 201)

    async def my_withdrawals(self, request: web.Request) -> web.Response:
        identity = self._identity(request, "bettor")
        status, limit = _list_query(request, None)
        return _json(await self.exchange.read(
            partial(withdrawal_list, user=identity.user, status=status, limit=limit)))

    async def list_withdrawals(self, request: web.Request) -> web.Response:
        """The operator's work queue: pending withdrawals, oldest first, unless ?status=."""
        self._identity(request, "operator")
        status, limit = _list_query(request, "pending")
        return _json(await self.exchange.read(
            partial(withdrawal_list, user=None, status=status, limit=limit)))

    async def approve_withdrawal(self, request: web.Request) -> web.Response:
        return await self._decide(request, c.ApproveWithdrawal, "approved")

    async def reject_withdrawal(self, request: web.Request) -> web.Response:
        return await self._decide(request, c.RejectWithdrawal, "rejected")

    # -- the bettor's own limits (the WebSocket's selflimits ops, mirrored) ---------------------

    async def my_selflimits(self, request: web.Request) -> web.Response:
        identity = self._identity(request, "bettor")
        user, currency = identity.user, self._currency(request.query.get("currency"))
        return _json(await self.exchange.read(partial(
            selflimits.view, user=user, currency=currency, ts=selflimits.now_ms(self.exchange))))

    async def set_my_selflimits(self, request: web.Request) -> web.Response:
        return await self._set_selflimits(self._identity(request, "bettor").user, request)

    async def exclude_me(self, request: web.Request) -> web.Response:
        return await self._exclude(self._identity(request, "bettor").user, request)

    async def set_user_selflimits(self, request: web.Request) -> web.Response:
        """An operator sets a bettor's own limits at the bettor's request (on the phone, say):
        the same rules as the bettor's own, a raise waits all the same."""
        self._identity(request, "operator")
        return await self._set_selflimits(self._user_id(request), request)

    async def exclude_user(self, request: web.Request) -> web.Response:
        self._identity(request, "operator")
        return await self._exclude(self._user_id(request), request)

    @staticmethod
    def _user_id(request: web.Request) -> str:
        user = request.match_info["id"]
        if not USER_ID.match(user):
            raise HttpError(UNKNOWN_USER, f"no user {user!r}")
        return user

    async def _set_selflimits(self, user: str, request: web.Request) -> web.Response:
        req = _parse_op(p.SelfLimitsSet, await request.read())
        currency = self._currency(req.currency)
        return _json(await self.exchange.submit(selflimits.set_command(user, currency, req),
                                                view=partial(selflimits_set_view, user=user,
                                                             currency=currency)))

    async def _exclude(self, user: str, request: web.Request) -> web.Response:
        req = _parse_op(p.SelfExclude, await request.read())
        return _json(await self.exchange.submit(selflimits.exclude_command(user, req),
                                                view=excluded_view))

    async def _decide(self, request, command: type, status: str) -> web.Response:
        self._identity(request, "operator")
        wid = request.match_info["id"]
        if not WITHDRAWAL_ID.match(wid):
            raise HttpError(UNKNOWN_WITHDRAWAL, f"no withdrawal {wid!r}")
        return _json(await self.exchange.submit(command(withdrawal=wid),
                                                view=partial(decided_view, wid=wid, status=status)))


def build_http_app(exchange: Exchange) -> web.Application:
    api = HttpApi(exchange)
    app = web.Application(client_max_size=BODY_BYTES_MAX, middlewares=[api.errors])
    app.add_routes([
        web.get("/health", api.health),
        web.get("/ready", api.ready),
        web.get("/metrics", api.metrics),
        web.get("/openapi.json", api.openapi_json),
        web.get("/admin/exposure", api.exposure),
        web.get("/admin/markets/{id}", api.admin_market),
        web.get("/admin/users/{id}", api.admin_user),
        web.get("/admin/users/{id}/statement", api.user_statement),
        web.get("/admin/users/{id}/cleared", api.user_cleared),
        web.get("/wallet/statement", api.my_statement),
        web.get("/orders/cleared", api.my_cleared),
        web.post("/webhooks/deposits/{provider}", api.deposit_webhook),
        web.post("/wallet/withdrawals", api.request_withdrawal),
        web.get("/wallet/withdrawals", api.my_withdrawals),
        web.get("/admin/withdrawals", api.list_withdrawals),
        web.post("/admin/withdrawals/{id}/approve", api.approve_withdrawal),
        web.post("/admin/withdrawals/{id}/reject", api.reject_withdrawal),
        web.get("/account/selflimits", api.my_selflimits),
        web.post("/account/selflimits", api.set_my_selflimits),
        web.post("/account/selfexclusion", api.exclude_me),
        web.post("/admin/users/{id}/selflimits", api.set_user_selflimits),
        web.post("/admin/users/{id}/selfexclusion", api.exclude_user),
    ])
    add_ops_routes(app, exchange)
    add_report_routes(app, exchange)
    return app

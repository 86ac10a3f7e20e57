"""The OpenAPI 3.1 description of the HTTP edge (gateway/http.py), served at /openapi.json.

Written out by hand so it reads as the contract; tests/test_http_openapi.py checks that every
route of the application is described here and nothing else is, and that the request bodies
require what the handlers' models require.
"""

import copy

from risk.self_limits import NAMES as SELF_LIMIT_NAMES

from .statements import CLEARED_CURSOR, PAGE_MAX, STATEMENT_CURSOR, TS_MAX_MS

MONEY = {"type": "string", "pattern": r"^-?(0|[1-9][0-9]{0,12})\.[0-9]{2}$",
         "examples": ["10.50"], "description": "money: a decimal string with two decimals"}
MONEY_IN = {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?$",
            "examples": ["10.50"], "description": "money: at most two decimals, not negative"}
ODDS = {"type": "string", "examples": ["2.50"], "description": "decimal odds"}
NULLABLE_MONEY = {"oneOf": [MONEY, {"type": "null"}]}
NULLABLE_ODDS = {"oneOf": [ODDS, {"type": "null"}]}
RATE = {"type": "string", "examples": ["0.05"], "description": "a rate: 0.05 is 5%"}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$", "examples": ["BDT"]}
ID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9_.:\-]+$"}
TS = {"type": "integer", "description": "ms since the epoch, UTC"}

ERROR_CODES = [
    "UNAUTHENTICATED", "FORBIDDEN", "BAD_REQUEST", "RATE_LIMITED", "UNKNOWN_MARKET",
    "UNKNOWN_SELECTION", "UNKNOWN_ORDER", "DUPLICATE_REF", "MARKET_NOT_OPEN",
    "MARKET_SUSPENDED", "INVALID_ODDS", "INVALID_SIZE", "STAKE_TOO_LOW", "STAKE_TOO_HIGH",
    "LIMIT_EXCEEDED", "SELF_EXCLUDED", "SELF_STAKE_LIMIT", "SELF_LOSS_LIMIT",
    "SELF_DEPOSIT_LIMIT", "LIABILITY_LIMIT", "INSUFFICIENT_FUNDS", "FOK_NOT_FILLED",
    "READ_MODEL_BEHIND", "INTERNAL",
    # HTTP only
    "UNKNOWN_USER", "UNKNOWN_WITHDRAWAL", "WITHDRAWAL_DECIDED", "NOT_FOUND",
]


def _obj(properties: dict, required: list[str] | None = None, **extra) -> dict:
    schema = {"type": "object", "properties": properties,
              "required": list(properties) if required is None else required}
    schema.update(extra)
    return schema


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _error(description: str) -> dict:
    return {"description": description, "content": _json_content(_ref("Error"))}


def _ok(description: str, schema: dict, status: str = "200") -> dict:
    return {status: {"description": description, "content": _json_content(schema)}}


AUTH_ERRORS = {
    "401": _error("UNAUTHENTICATED: no, malformed, expired or wrongly signed bearer token"),
    "403": _error("FORBIDDEN: the token lacks the role"),
}
UNAVAILABLE = {"503": _error("the exchange cannot take work now (busy or stopped); retry")}

REMOVED = {"oneOf": [_obj({"reduction_factor": {**RATE, "description":
                                               "applied to the bets matched before on the others"},
                          "ts": {"type": "integer", "description": "ms since the epoch"}}),
                     {"type": "null"}],
           "description": "a non-runner's removal; null while the selection runs"}

LEVELS = {"type": "array", "items": {"type": "array", "prefixItems": [ODDS, MONEY],
                                     "minItems": 2, "maxItems": 2},
          "description": "[price, size] best first"}

SCHEMAS = {
    "Error": _obj({"code": {"type": "string", "enum": ERROR_CODES},
                   "message": {"type": "string"}}),
    "Wallet": _obj({"currency": CURRENCY, "balance": MONEY, "held": MONEY, "available": MONEY}),
    "Order": _obj({
        "order": {"type": "string"}, "market": {"type": "string"},
        "selection": {"type": "string"}, "side": {"enum": ["back", "lay"]}, "price": ODDS,
        "size": MONEY, "matched": MONEY, "remaining": MONEY, "cancelled": MONEY,
        "lapsed": MONEY, "avg_price_matched": ODDS,
        "status": {"enum": ["EXECUTABLE", "EXECUTION_COMPLETE"]},
        "persistence": {"enum": ["lapse", "persist"]},
        "ref": {"type": ["string", "null"]}, "placed_seq": {"type": "integer"},
        "queue_ahead": MONEY,
    }),
    "Ready": _obj({
        "status": {"enum": ["ready", "not_ready"]},
        "checks": {"type": "object", "additionalProperties": {"type": "boolean"},
                   "description": "replay_finished, sequencer_healthy, redis, postgres, "
                                  "persister_running (when the process runs one)"},
    }),
    "MarketExposure": _obj({
        "market": {"type": "string"}, "name": {"type": "string"},
        "status": {"enum": ["INACTIVE", "OPEN", "SUSPENDED", "CLOSED"]},
        "matched": {**MONEY, "description": "total matched (traded) on the market"},
        "house_liability": {**MONEY, "description":
                            "the house's worst case: most it can lose whatever wins"},
        "selections": {"type": "array", "items": _obj({
            "id": {"type": "string"},
            "house_pnl": {**MONEY, "description": "house P&L if it wins, matched bets only"}})},
        "top_users": {"type": "array", "maxItems": 5, "items": _obj({
            "user": {"type": "string"},
            "exposure": {**MONEY, "description": "the user's hold on the market"}})},
    }),
    "Exposure": _obj({"markets": {"type": "array", "items": _ref("MarketExposure")}},
                     description="every exchange market not settled or voided"),
    "MarketDetail": _obj({
        "market": {"type": "string"}, "event": {"type": "string"}, "name": {"type": "string"},
        "type": {"enum": ["exchange", "pool"]}, "currency": CURRENCY,
        "status": {"enum": ["INACTIVE", "OPEN", "SUSPENDED", "CLOSED", "SETTLED", "VOIDED"]},
        "in_play": {"type": "boolean"}, "bet_delay_ms": {"type": "integer"},
        "start_ts": {"type": ["integer", "null"],
                     "description": "scheduled start, ms since the epoch"},
        "commission": RATE, "take": RATE, "matched": MONEY,
        "limits": _obj({"min_stake": NULLABLE_MONEY, "max_stake": NULLABLE_MONEY,
                        "max_liability": NULLABLE_MONEY,
                        "selection_max_liability": NULLABLE_MONEY}),
        "house": _obj({"priced": {"type": "boolean"},
                       "margin": {"oneOf": [RATE, {"type": "null"}]},
                       "liability": MONEY}),
        "selections": {"type": "array", "items": _obj({
            "id": {"type": "string"}, "name": {"type": "string"},
            "to_back": {**LEVELS, "description": "resting lays a backer can take, top 3"},
            "to_lay": {**LEVELS, "description": "resting backs a layer can take, top 3"},
            "traded": MONEY, "ltp": NULLABLE_ODDS, "house_fair": NULLABLE_ODDS,
            "house_offered": NULLABLE_ODDS, "house_suspended": {"type": "boolean"},
            "removed": REMOVED,
            "pool_stake": {**MONEY, "description": "pool markets only"},
        }, required=["id", "name", "to_back", "to_lay", "traded", "ltp", "house_fair",
                     "house_offered", "house_suspended", "removed"])},
    }),
    "UserDetail": _obj({
        "user": {"type": "string"},
        "wallets": {"type": "array", "items": _ref("Wallet")},
        "limits": _obj({"max_stake": NULLABLE_MONEY, "daily_stake": NULLABLE_MONEY,
                        "weekly_stake": NULLABLE_MONEY,
                        "stake_factor": {"type": ["string", "null"], "examples": ["0.5"]},
                        "max_exposure": NULLABLE_MONEY}),
        "positions": {"type": "array", "items": _obj({
            "market": {"type": "string"}, "exposure": MONEY,
            "selections": {"oneOf": [{"type": "array", "items": _obj({
                "id": {"type": "string"}, "if_win": MONEY, "if_win_with_unmatched": MONEY})},
                {"type": "null"}],
                "description": "the user's P&L if each selection wins (as the pnl op): "
                               "matched, and with unmatched orders; null on pool markets"},
            "cash_out": {**NULLABLE_MONEY,
                         "description": "what a full cash out would lock in now (the locked "
                                        "of cashout.quote); null on pool markets"}}),
                      "description": "markets not settled or voided where the user bet"},
        "open_orders": {"type": "array", "items": _ref("Order")},
        "self_excluded_until": {"oneOf": [TS, {"type": "null"}],
                                "description": "the bettor's self-exclusion, while it runs"},
        "self_limits": {"type": "array", "items": _ref("SelfLimits"),
                        "description": "the bettor's own limits, per currency of `wallets` "
                                       "and any other they have usage in"},
    }),
    "OwnLimit": _obj({
        "limit": {**NULLABLE_MONEY, "description": "in force now; null: none"},
        "used": {**MONEY, "description": "in the current window (loss: settled_loss + "
                                         "at_risk)"},
        "left": {**NULLABLE_MONEY, "description": "limit - used, not below 0; null without a "
                                                  "limit"},
        "resets_ts": {**TS, "description": "the end of the current window: 00:00 UTC, or "
                                           "Monday 00:00 UTC for a weekly limit"},
        "pending": {"oneOf": [_obj({"limit": {**NULLABLE_MONEY,
                                              "description": "null: a removal"},
                                    "effective_ts": TS}),
                              {"type": "null"}],
                    "description": "a raise or removal waiting out the cooling-off period"},
        "settled_loss": {**MONEY, "description": "loss limits: net loss of the markets "
                                                 "settled in the window (negative: a win)"},
        "at_risk": {**MONEY, "description": "loss limits: worst case of every open bet"},
    }, required=["limit", "used", "left", "resets_ts", "pending"]),
    "SelfLimits": _obj({
        "currency": CURRENCY,
        "excluded_until": {"oneOf": [TS, {"type": "null"}]},
        "cooling_off_ms": {"type": "integer", "description": "how long a raise waits"},
        "limits": _obj({name: _ref("OwnLimit") for name in SELF_LIMIT_NAMES}),
    }),
    "SelfLimitsRequest": _obj({
        "currency": {**CURRENCY, "description": "default: the exchange's currency"},
        **{name: {"oneOf": [MONEY_IN, {"type": "null"}],
                  "description": "a value sets the limit; null removes it; absent: unchanged"}
           for name in SELF_LIMIT_NAMES},
    }, required=[], additionalProperties=False),
    "SelfExclusionRequest": _obj({
        "days": {"type": "integer", "minimum": 1, "maximum": 3650},
        "until": TS,
    }, required=[], additionalProperties=False,
        description="exactly one of days and until; 1 to 3650 days from now"),
    "SelfExcluded": _obj({
        "excluded_until": TS,
        "cancelled": {"type": "array", "items": _ref("Order"),
                      "description": "the open orders the exclusion cancelled"},
    }),
    "DepositNotice": _obj({
        "ref": {"type": "string", "minLength": 1, "maxLength": 100,
                "pattern": r"^[A-Za-z0-9_.:\-]+$",
                "description": "the provider's reference: credited once, ever"},
        "user": ID, "amount": MONEY_IN, "currency": CURRENCY,
        "ts": {"type": "integer", "description": "unix seconds; must be within the tolerance"},
    }, additionalProperties=True),
    "DepositResult": _obj({"ref": {"type": "string"}, "user": {"type": "string"},
                           "amount": MONEY, "currency": CURRENCY,
                           "status": {"const": "credited"}}),
    "WithdrawalRequest": _obj({"amount": MONEY_IN,
                               "currency": {**CURRENCY,
                                            "description": "a configured currency; default: "
                                                           "the exchange's default"}},
                              required=["amount"], additionalProperties=False),
    "Withdrawal": _obj({
        "withdrawal": {"type": "string", "examples": ["w123"]},
        "user": {"type": "string"}, "amount": MONEY, "currency": CURRENCY,
        "status": {"enum": ["pending", "approved", "rejected"]},
        "wallet": {**_ref("Wallet"), "description": "the wallet as this command left it"},
    }, required=["withdrawal", "amount", "currency", "status", "wallet"]),
    "WithdrawalList": _obj({
        "count": {"type": "integer", "minimum": 0,
                  "description": "how many match, however many are listed"},
        "withdrawals": {"type": "array", "items": _obj({
            "withdrawal": {"type": "string", "examples": ["w123"]},
            "user": {"type": "string"}, "amount": MONEY, "currency": CURRENCY,
            "status": {"enum": ["pending", "approved", "rejected"]},
        }, required=["withdrawal", "user", "amount", "currency", "status"])},
    }, required=["count", "withdrawals"]),
}

SCHEMAS |= {
    "Movement": _obj({
        "seq": {"type": "integer", "description": "the journal seq of the command"},
        "ts": {"type": "integer", "description": "ms since the epoch"},
        "currency": CURRENCY,
        "kind": {"enum": ["deposit", "withdrawal_requested", "withdrawal_approved",
                          "withdrawal_rejected", "hold", "release", "settlement", "void",
                          "non_runner", "opening"]},
        "amount": {**MONEY, "description": "the balance change (net of commission)"},
        "commission": {**MONEY, "description": "commission charged within amount"},
        "held_change": MONEY,
        "balance": {**MONEY, "description": "after this movement"},
        "held": {**MONEY, "description": "after this movement"},
        "available": {**MONEY, "description": "after this movement"},
        "market": {"type": ["string", "null"]},
        "order": {"type": ["string", "null"], "description": "hold and release: the order"},
        "ref": {"type": ["string", "null"],
                "description": "deposits: the provider's ref; withdrawals: the withdrawal id"},
    }),
    "Statement": _obj({
        "user": {"type": "string"},
        "as_of_seq": {"type": "integer",
                      "description": "the journal seq the read model covers (at least the "
                                     "exchange's when the request arrived)"},
        "movements": {"type": "array", "items": _ref("Movement")},
        "next": {"type": ["string", "null"], "pattern": STATEMENT_CURSOR,
                 "description": "the cursor of the next page; null on the last"},
    }),
    "ClearedOrder": _obj({
        "order": {"type": "string"}, "market": {"type": "string"},
        "selection": {"type": "string"}, "side": {"enum": ["back", "lay"]}, "price": ODDS,
        "size": MONEY, "matched": MONEY, "avg_price_matched": ODDS, "cancelled": MONEY,
        "lapsed": MONEY, "persistence": {"enum": ["lapse", "persist"]},
        "ref": {"type": ["string", "null"]}, "placed_seq": {"type": "integer"},
        "placed_ts": {"type": "integer"}, "currency": CURRENCY,
        "result": {"enum": ["won", "lost", "dead_heat", "void"]},
        "profit": {**MONEY, "description": "the bet's profit, before commission"},
        "settled_seq": {"type": "integer"}, "settled_ts": {"type": "integer"},
    }),
    "ClearedMarket": _obj({
        "market": {"type": "string"}, "event": {"type": "string"}, "name": {"type": "string"},
        "type": {"enum": ["exchange", "pool"]}, "currency": CURRENCY,
        "outcome": {"enum": ["settled", "voided"]},
        "winners": {"type": "array", "items": {"type": "string"}},
        "settled_seq": {"type": "integer"}, "settled_ts": {"type": "integer"},
        "profit": {**MONEY, "description": "what settlement paid (or took) on the market"},
        "commission": {**MONEY, "description": "charged on the market's net winnings"},
        "net": {**MONEY, "description": "profit - commission"},
    }),
    "Cleared": _obj({
        "user": {"type": "string"}, "as_of_seq": {"type": "integer"},
        "orders": {"type": "array", "items": _ref("ClearedOrder")},
        "markets": {"type": "array", "items": _ref("ClearedMarket"),
                    "description": "one line per market of the page's bets"},
        "next": {"type": ["string", "null"], "pattern": CLEARED_CURSOR},
    }),
}

ID_PARAM = {"in": "path", "required": True, "schema": {"type": "string"}}


def _history(summary: str, operation: str, roles: list[str], schema: str, cursor: str,
             user_param: bool) -> dict:
    """GET of a statement or cleared orders: the query is the WebSocket request's fields."""
    def query(name: str, schema: dict, description: str) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": description}

    return {"get": {
        "summary": summary, "operationId": operation, "tags": ["money"],
        "security": [{"bearer": []}], "x-roles": roles,
        "parameters": ([_path_param("id", "user id")] if user_param else []) + [
            query("currency", CURRENCY, "one configured currency (default: all)"),
            query("market", ID, "one market"),
            query("from_ts", {"type": "integer", "minimum": 0, "maximum": TS_MAX_MS},
                  "ms since the epoch, from"),
            query("to_ts", {"type": "integer", "minimum": 0, "maximum": TS_MAX_MS},
                  "ms since the epoch, before"),
            query("sort", {"enum": ["newest", "oldest"], "default": "newest"}, "order"),
            query("cursor", {"type": "string", "pattern": cursor}, "`next` of the last page"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": PAGE_MAX,
                            "default": 50}, "page size"),
        ],
        "responses": {
            **_ok("one page; header X-Backlay-Persisted-Seq: as_of_seq", _ref(schema)),
            "400": _error("BAD_REQUEST: an unknown parameter, a bad value or cursor, a "
                          "currency not configured, from_ts after to_ts, a system account"),
            **AUTH_ERRORS,
            "404": _error("UNKNOWN_MARKET: the market filter; UNKNOWN_USER: no such user"),
            "503": _error("READ_MODEL_BEHIND: the read model did not reach the exchange's seq "
                          "within statement_wait_ms_max (Retry-After: 1)"),
        },
    }}


def _withdrawal_listing(summary: str, operation: str, roles: list[str],
                        default_status: str) -> dict:
    return {
        "summary": summary, "operationId": operation, "tags": ["money"],
        "security": [{"bearer": []}], "x-roles": roles,
        "parameters": [
            {"name": "status", "in": "query", "required": False,
             "schema": {"enum": ["pending", "approved", "rejected", "all"],
                        "default": default_status}},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        ],
        "responses": {
            **_ok("oldest first, at most `limit`", _ref("WithdrawalList")),
            "400": _error("BAD_REQUEST: unknown status or limit out of range"),
            **AUTH_ERRORS,
            **UNAVAILABLE,
        },
    }


def _path_param(name: str, description: str) -> dict:
    return {"name": name, "description": description, **ID_PARAM}


def _decide(verb: str, status: str) -> dict:
    return {"post": {
        "summary": f"{verb} a pending withdrawal",
        "operationId": f"{verb.lower()}Withdrawal",
        "tags": ["money"], "security": [{"bearer": []}], "x-roles": ["operator", "admin"],
        "parameters": [_path_param("id", "withdrawal id, e.g. w123")],
        "responses": {
            **_ok(f"{status}; the hold is released"
                  + (" and the money paid out" if status == "approved" else ""),
                  _ref("Withdrawal")),
            **AUTH_ERRORS,
            "404": _error("UNKNOWN_WITHDRAWAL"),
            "409": _error("WITHDRAWAL_DECIDED: already approved or rejected"),
            **UNAVAILABLE,
        },
    }}


def _own_request(summary: str, operation: str, roles: list[str], description: str,
                 body: str, answer: tuple[str, str], bad: str) -> dict:
    """A request about a bettor's own limits or self-exclusion (theirs, or an operator's on
    their behalf)."""
    return {
        "summary": summary, "operationId": operation, "tags": ["responsible gambling"],
        "description": description, "security": [{"bearer": []}], "x-roles": roles,
        "requestBody": {"required": True, "content": _json_content(_ref(body))},
        "responses": {
            **_ok(answer[0], _ref(answer[1])),
            "400": _error(bad),
            **AUTH_ERRORS,
            "403": _error("FORBIDDEN: the token lacks the role, or a system account"),
            "413": _error("body larger than 64 KiB"),
            **UNAVAILABLE,
        },
    }


def _set_self_limits(summary: str, operation: str, roles: list[str]) -> dict:
    return _own_request(
        summary, operation, roles,
        "A limit is lowered (or set where there was none) at once; a raise or removal applies "
        "after the cooling-off period (see docs/protocol.md `selflimits.set`).",
        "SelfLimitsRequest", ("the limits after the request", "SelfLimits"),
        "BAD_REQUEST: no limit named, unsupported currency, unknown field; INVALID_SIZE: "
        "malformed money")


def _self_exclusion(summary: str, operation: str, roles: list[str]) -> dict:
    return _own_request(
        summary, operation, roles,
        "No orders or deposits until then; open orders are cancelled at once; withdrawals and "
        "cancels stay open. It can be extended, never shortened.",
        "SelfExclusionRequest", ("excluded", "SelfExcluded"),
        "BAD_REQUEST: neither or both of days and until, out of range, or shorter than the "
        "exclusion running")


def _for_user(operation: dict) -> dict:
    """`operation` on /admin/users/{id}/...: the bettor named in the path."""
    return {**operation, "parameters": [_path_param("id", "user id")],
            "responses": {**operation["responses"],
                          "404": _error("UNKNOWN_USER: a malformed user id")}}


PATHS = {
    "/health": {"get": {
        "summary": "liveness: the process is up", "operationId": "health", "tags": ["ops"],
        "responses": _ok("up", _obj({"status": {"const": "up"}})),
    }},
    "/ready": {"get": {
        "summary": "readiness: journal and Postgres reachable, replay done, sequencer healthy",
        "operationId": "ready", "tags": ["ops"],
        "responses": {**_ok("ready", _ref("Ready")),
                      "503": {"description": "not ready", "content": _json_content(
                          _ref("Ready"))}},
    }},
    "/metrics": {"get": {
        "summary": "Prometheus metrics (text exposition format 0.0.4)",
        "operationId": "metrics", "tags": ["ops"],
        "responses": {"200": {"description": "metrics", "content": {
            "text/plain": {"schema": {"type": "string"}}}}},
    }},
    "/openapi.json": {"get": {
        "summary": "this document", "operationId": "openapi", "tags": ["ops"],
        "responses": _ok("OpenAPI 3.1", {"type": "object"}),
    }},
    "/admin/exposure": {"get": {
        "summary": "house liability and top user exposures per live exchange market",
        "operationId": "exposure", "tags": ["admin"], "security": [{"bearer": []}],
        "x-roles": ["operator", "admin"],
        "responses": {**_ok("exposure", _ref("Exposure")), **AUTH_ERRORS, **UNAVAILABLE},
    }},
    "/admin/markets/{id}": {"get": {
        "summary": "a market: status, top 3 of each book, traded, limits, house prices",
        "operationId": "adminMarket", "tags": ["admin"], "security": [{"bearer": []}],
        "x-roles": ["trader", "operator", "admin"],
        "parameters": [_path_param("id", "market id")],
        "responses": {**_ok("the market", _ref("MarketDetail")), **AUTH_ERRORS,
                      "404": _error("UNKNOWN_MARKET"), **UNAVAILABLE},
    }},
    "/admin/users/{id}": {"get": {
        "summary": "a user: wallets (every configured currency, the default first), limits, "
                   "positions and open orders",
        "operationId": "adminUser", "tags": ["admin"], "security": [{"bearer": []}],
        "x-roles": ["operator", "admin"],
        "parameters": [_path_param("id", "user id")],
        "responses": {**_ok("the user", _ref("UserDetail")), **AUTH_ERRORS,
                      "404": _error("UNKNOWN_USER: no wallet, limits or position"),
                      **UNAVAILABLE},
    }},
    "/webhooks/deposits/{provider}": {"post": {
        "summary": "a payment provider's deposit notice: credited once per provider ref",
        "description": "The body is signed: `X-Signature: sha256=<hex HMAC-SHA256 of the raw "
                       "body under the webhook secret>`. A repeat of a credited ref with the "
                       "same user, amount and currency returns the first result and credits "
                       "nothing; the same ref with anything different is DUPLICATE_REF.",
        "operationId": "depositWebhook", "tags": ["money"],
        "security": [{"webhookSignature": []}],
        "parameters": [{"name": "provider", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,32}$"}}],
        "requestBody": {"required": True, "content": _json_content(_ref("DepositNotice"))},
        "responses": {
            **_ok("credited (now or by the first notice with this ref)", _ref("DepositResult")),
            "400": _error("BAD_REQUEST: malformed body, stale ts, a currency not configured; "
                          "INVALID_SIZE: amount not positive"),
            "401": _error("UNAUTHENTICATED: missing or bad signature"),
            "404": _error("NOT_FOUND: provider name malformed"),
            "409": _error("DUPLICATE_REF: the ref was credited (or refused) with different "
                          "fields; SELF_EXCLUDED or SELF_DEPOSIT_LIMIT: the bettor's own "
                          "limit refuses the deposit, for good: nothing was credited, return "
                          "the money (a retry of the ref gets the same answer)"),
            "413": _error("body larger than 64 KiB"),
            **UNAVAILABLE,
        },
    }},
    "/admin/withdrawals": {"get": _withdrawal_listing(
        "withdrawals to decide: pending ones, oldest first (or ?status=)", "listWithdrawals",
        ["operator", "admin"], "pending")},
    "/wallet/withdrawals": {"get": _withdrawal_listing(
        "the token's own withdrawals, oldest first", "myWithdrawals", ["bettor", "admin"],
        "all"), "post": {
        "summary": "request a withdrawal: the amount is held until an operator decides",
        "operationId": "requestWithdrawal", "tags": ["money"], "security": [{"bearer": []}],
        "x-roles": ["bettor", "admin"],
        "requestBody": {"required": True, "content": _json_content(_ref("WithdrawalRequest"))},
        "responses": {
            **_ok("pending", _ref("Withdrawal"), "201"),
            "400": _error("BAD_REQUEST or INVALID_SIZE"),
            **AUTH_ERRORS,
            "409": _error("INSUFFICIENT_FUNDS: above the available balance"),
            "413": _error("body larger than 64 KiB"),
            **UNAVAILABLE,
        },
    }},
    "/wallet/statement": _history(
        "the token's own account statement: every wallet movement with the balance after it",
        "myStatement", ["bettor", "admin"], "Statement", STATEMENT_CURSOR, False),
    "/orders/cleared": _history(
        "the token's own settled and voided bets, with profit, and commission per market",
        "myClearedOrders", ["bettor", "admin"], "Cleared", CLEARED_CURSOR, False),
    "/admin/users/{id}/statement": _history(
        "a customer's account statement", "userStatement", ["operator", "admin"], "Statement",
        STATEMENT_CURSOR, True),
    "/admin/users/{id}/cleared": _history(
        "a customer's settled and voided bets", "userClearedOrders", ["operator", "admin"],
        "Cleared", CLEARED_CURSOR, True),
    "/account/selflimits": {
        "get": {
            "summary": "the token's own limits: in force, pending raises, used and left",
            "operationId": "mySelfLimits", "tags": ["responsible gambling"],
            "security": [{"bearer": []}], "x-roles": ["bettor", "admin"],
            "parameters": [{"name": "currency", "in": "query", "required": False,
                            "schema": CURRENCY}],
            "responses": {**_ok("the limits now", _ref("SelfLimits")),
                          "400": _error("BAD_REQUEST: unsupported currency"),
                          **AUTH_ERRORS, **UNAVAILABLE},
        },
        "post": _set_self_limits("set the token's own limits", "setMySelfLimits",
                                 ["bettor", "admin"]),
    },
    "/account/selfexclusion": {"post": _self_exclusion(
        "exclude the token's user from orders and deposits", "excludeMe", ["bettor", "admin"])},
    "/admin/users/{id}/selflimits": {"post": _for_user(_set_self_limits(
        "set a bettor's own limits at their request", "setUserSelfLimits",
        ["operator", "admin"]))},
    "/admin/users/{id}/selfexclusion": {"post": _for_user(_self_exclusion(
        "exclude a bettor at their request", "excludeUser", ["operator", "admin"]))},
    "/admin/withdrawals/{id}/approve": _decide("Approve", "approved"),
    "/admin/withdrawals/{id}/reject": _decide("Reject", "rejected"),
}


def _pages_and_reports() -> dict:
    # described next to their code, so the description moves with the handler
    from .ops_page import OPENAPI_PATHS as ops_paths
    from .reports import OPENAPI_PATHS as report_paths

    return {**ops_paths, **report_paths}


def build_openapi() -> dict:
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "Backlay HTTP API", "version": "1",
                 "description": "Health, metrics, admin views, deposits and withdrawals. "
                                "Money is a decimal string with at most two decimals. Errors "
                                "are {code, message}; the trading API is the WebSocket "
                                "protocol (PROTOCOL.md)."},
        "paths": {**PATHS, **_pages_and_reports()},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "sub = user id, roles ⊆ bettor, trader, operator, "
                                          "admin; admin implies every role"},
                "webhookSignature": {"type": "apiKey", "in": "header", "name": "X-Signature",
                                     "description": "sha256=<hex HMAC-SHA256 of the raw body>"},
            },
        },
    })

"""Every rejection code the exchange can answer with, in order of precedence.

Shared by engine, risk and gateway. When several checks would fail, the one listed first wins:
structural problems (auth, shape, unknown ids) before market state, before order validity,
before limits, before money.
"""

from enum import StrEnum


class Code(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    BAD_REQUEST = "BAD_REQUEST"
    RATE_LIMITED = "RATE_LIMITED"
    UNKNOWN_MARKET = "UNKNOWN_MARKET"
    UNKNOWN_SELECTION = "UNKNOWN_SELECTION"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    DUPLICATE_REF = "DUPLICATE_REF"
    MARKET_NOT_OPEN = "MARKET_NOT_OPEN"
    MARKET_SUSPENDED = "MARKET_SUSPENDED"
    SELECTION_REMOVED = "SELECTION_REMOVED"  # a non-runner: no orders, no prices, never a winner
    INVALID_ODDS = "INVALID_ODDS"
    INVALID_SIZE = "INVALID_SIZE"
    STAKE_TOO_LOW = "STAKE_TOO_LOW"
    STAKE_TOO_HIGH = "STAKE_TOO_HIGH"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    # the bettor's own limits (risk/self_limits.py), after the operator's: both apply
    SELF_EXCLUDED = "SELF_EXCLUDED"
    SELF_STAKE_LIMIT = "SELF_STAKE_LIMIT"
    SELF_LOSS_LIMIT = "SELF_LOSS_LIMIT"
    SELF_DEPOSIT_LIMIT = "SELF_DEPOSIT_LIMIT"
    LIABILITY_LIMIT = "LIABILITY_LIMIT"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    FOK_NOT_FILLED = "FOK_NOT_FILLED"
    PRICE_CHANGED = "PRICE_CHANGED"  # a bet slip's exact price is no longer on offer
    CASHOUT_MOVED = "CASHOUT_MOVED"  # a cash out's prices moved beyond the bettor's tolerance
    READ_MODEL_BEHIND = "READ_MODEL_BEHIND"  # history not yet persisted up to the request: retry
    INTERNAL = "INTERNAL"


PRECEDENCE: dict[Code, int] = {code: rank for rank, code in enumerate(Code)}


class Rejected(Exception):
    """Raised inside the engine before any state is touched; `apply` turns it into an event."""

    __slots__ = ("code", "reason")

    def __init__(self, code: Code, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class InvariantBroken(AssertionError):
    """A bug: engine state disagrees with itself. Fail loudly; recover by replay."""

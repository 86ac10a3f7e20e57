"""A market: its selections, books, status and the positions of everyone who bet on it."""

from .book import SelectionBook
from .exposure import IMPOSSIBLE, Position
from .pickling import restore_slots, slot_state

INACTIVE = "INACTIVE"
OPEN = "OPEN"
SUSPENDED = "SUSPENDED"
CLOSED = "CLOSED"
SETTLED = "SETTLED"
VOIDED = "VOIDED"
FINAL = (SETTLED, VOIDED)
START_TS_MAX = 253_402_300_799_999  # the latest start a market may carry: 9999-12-31, in ms


class Market:
    __slots__ = (
        "id", "event", "name", "type", "currency", "commission_bp", "take_bp",
        "status", "in_play", "bet_delay_ms",
        "selection_ids", "selection_names", "index", "books", "traded", "ltp",
        "positions",  # user -> Position, in first-bet order
        "open_orders",  # order id -> Order with remaining > 0 (resting or delayed)
        "pool_stakes",  # pool markets: total staked per selection
        "quotes",  # house.Quotes once a trader has priced the market
        "limits",  # risk.rules.MarketLimits once a trader has set any
        "order_ids",  # every order of the market, so settlement can retire them
        "start_ts",  # the scheduled start, ms since the epoch, or None
        "removed",  # selection index -> (reduction_bp, ts) of each non-runner
        # every fill of an exchange market, (taker, maker, price, size, seq, idx): the BetMatched
        # at (seq, idx), its price reduced by any non-runner since. Repricing needs each fill's
        # own win amount; None for a market restored from a snapshot that kept no fills
        "fills",
    )
    __reduce__ = slot_state  # the plain-class layout: see pickling.py

    def __init__(self, mid, event, name, mtype, currency, selections, commission_bp, take_bp,
                 start_ts=None):
        self.id = mid
        self.event = event
        self.name = name
        self.type = mtype
        self.currency = currency
        self.commission_bp = commission_bp
        self.take_bp = take_bp
        self.status = INACTIVE
        self.in_play = False
        self.bet_delay_ms = 0
        self.selection_ids = [sid for sid, _ in selections]
        self.selection_names = [name for _, name in selections]
        self.index = {sid: i for i, sid in enumerate(self.selection_ids)}
        n = len(selections)
        self.books = [SelectionBook() for _ in range(n)]
        self.traded = [0] * n
        self.ltp = [0] * n
        self.positions: dict[str, Position] = {}
        self.open_orders: dict = {}
        self.pool_stakes = [0] * n
        self.quotes = None
        self.limits = None
        self.order_ids: list[str] = []
        self.start_ts = start_ts
        self.removed: dict[int, tuple[int, int]] = {}
        self.fills: list | None = []

    def __setstate__(self, state: tuple) -> None:
        # a snapshot from before non-runners and start times has neither, and kept no fills
        # (Engine.__setstate__ tells a market that had none from one whose fills are unknown)
        self.start_ts = None
        self.removed = {}
        self.fills = None
        restore_slots(self, state)

    def new_position(self) -> Position:
        """An empty position on this market: the outcomes of its non-runners impossible."""
        pos = Position(len(self.selection_ids))
        for sel in self.removed:
            pos.edge[sel] = IMPOSSIBLE
        return pos

    def position(self, user: str, wallet) -> Position:
        pos = self.positions.get(user)
        if pos is None:
            pos = self.positions[user] = self.new_position()
            pos.wallet = wallet
        return pos

    def running(self) -> list[int]:
        """The indexes of the selections that still run, in market order."""
        return [i for i in range(len(self.selection_ids)) if i not in self.removed]

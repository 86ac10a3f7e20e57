"""A market: its selections, books, status and the positions of everyone who bet on it."""

from .book import SelectionBook
from .exposure import Position
from .pickling import restore_slots, slot_state

INACTIVE = "INACTIVE"
OPEN = "OPEN"
SUSPENDED = "SUSPENDED"
CLOSED = "CLOSED"
SETTLED = "SETTLED"
VOIDED = "VOIDED"
FINAL = (SETTLED, VOIDED)


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
    )
    __reduce__ = slot_state  # the plain-class layout: see pickling.py
    __setstate__ = restore_slots

    def __init__(self, mid, event, name, mtype, currency, selections, commission_bp, take_bp):
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

    def position(self, user: str, wallet) -> Position:
        pos = self.positions.get(user)
        if pos is None:
            pos = self.positions[user] = Position(len(self.selection_ids))
            pos.wallet = wallet
        return pos

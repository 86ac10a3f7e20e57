"""A bettor's own P&L per selection on a market: the `pnl` reply, and `pnl` pushes as it changes.

`selections_view` renders engine/positions.py's figures, for the running selections only (a
non-runner is no outcome). `PnlFeed` is a sequencer renderer: for each watched (user, market)
that a batch touched (a fill, an order placed, cancelled, lapsed or released, a fill repriced or
a selection removed), it renders the P&L right after the batch was applied and pushes it, once journaled,
if it differs from the last one that user was sent. A settled or voided market ends its
watches (the settlement itself is reported by the wallet push).
"""

from engine import events as e
from engine.money import format_money
from engine.positions import pnl

from .session import Session
from .views import running_ids

_ORDER_EVENTS = (e.OrderCancelled, e.OrderLapsed, e.OrderReleased)


def selections_view(engine, market_id: str, user: str) -> list[dict]:
    """[{"id", "if_win", "if_win_with_unmatched"}] per running selection; raises Rejected for a
    market that has no fixed P&L (unknown, pool, settled or voided)."""
    matched, with_unmatched = pnl(engine, market_id, user)
    ids = running_ids(engine.markets[market_id])
    return [{"id": sid, "if_win": format_money(matched[i]),
             "if_win_with_unmatched": format_money(with_unmatched[i])}
            for i, sid in enumerate(ids)]


class PnlFeed:
    def __init__(self, exchange) -> None:
        self.exchange = exchange
        self.watchers: dict[tuple[str, str], set[Session]] = {}  # (user, market) -> sessions
        self.sent: dict[tuple[str, str], list[dict]] = {}  # the last view each key was sent
        self.users: dict[str, int] = {}  # user -> watched keys, for a quick test per event

    def watching(self, session: Session) -> int:
        return sum(1 for sessions in self.watchers.values() if session in sessions)

    def watch(self, session: Session, market: str, view: list[dict]) -> None:
        """Called between batches with the view just read: later pushes start from it."""
        key = (session.user, market)
        sessions = self.watchers.get(key)
        if sessions is None:
            sessions = self.watchers[key] = set()
            self.users[session.user] = self.users.get(session.user, 0) + 1
        sessions.add(session)
        self.sent[key] = view

    def unwatch(self, session: Session, market: str) -> None:
        key = (session.user, market)
        sessions = self.watchers.get(key)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                self._drop(key)

    def _drop(self, key: tuple[str, str]) -> None:
        self.watchers.pop(key, None)
        self.sent.pop(key, None)
        user = key[0]
        left = self.users.get(user, 0) - 1
        if left > 0:
            self.users[user] = left
        else:
            self.users.pop(user, None)

    def on_batch(self, records):
        if not self.watchers:
            return None
        engine = self.exchange.sequencer.engine
        users = self.users
        touched: dict[tuple[str, str], None] = {}
        ended: list[str] = []
        for _, _, events in records:
            for ev in events:
                kind = type(ev)
                if kind is e.BetMatched:
                    if ev.taker_user in users:
                        touched[(ev.taker_user, ev.market)] = None
                    if ev.maker_user in users:
                        touched[(ev.maker_user, ev.market)] = None
                elif kind is e.OrderPlaced:
                    if ev.user in users:
                        touched[(ev.user, ev.market)] = None
                elif kind is e.BetRepriced:
                    for user in (ev.taker_user, ev.maker_user):
                        if user in users:
                            touched[(user, ev.market)] = None
                elif kind is e.SelectionRemoved:  # the outcome leaves every watcher's list
                    for key in self.watchers:
                        if key[1] == ev.market:
                            touched[key] = None
                elif kind in _ORDER_EVENTS:
                    if ev.user in users:
                        o = engine.orders.get(ev.order)
                        if o is not None:
                            touched[(ev.user, o.market)] = None
                elif kind is e.MarketSettled or kind is e.MarketVoided:
                    ended.append(ev.market)
        out: list[tuple[tuple[str, str], dict]] = []
        for key in touched:
            if key not in self.watchers or key[1] in ended:
                continue
            view = selections_view(engine, key[1], key[0])
            if view != self.sent.get(key):
                self.sent[key] = view
                out.append((key, {"op": "pnl", "market": key[1], "selections": view}))
        if not out and not ended:
            return None

        def release() -> None:
            for key, message in out:
                for session in list(self.watchers.get(key, ())):
                    if session.closed:
                        self.unwatch(session, key[1])
                    else:
                        session.push(message)
            for market in ended:
                for key in [k for k in self.watchers if k[1] == market]:
                    self._drop(key)

        return release

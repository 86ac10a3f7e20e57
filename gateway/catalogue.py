"""The catalogue: every event's markets with names, status, in-play, start time and matched
volume, filtered and paged (the `catalogue` op), and pushed to the `catalogue` channel when a
market is created or changes status.

Markets are listed in the order they were created (the engine's own order, the same after a
restart), so a page cursor is simply the last market id of the previous page. The views run
where the engine holds exactly journaled state: in a sequencer read, or in `on_batch`, a
sequencer renderer whose pushes are released once the batch is journaled.
"""

from engine import events as e
from engine.money import format_money

from .session import Session

PAGE_MAX = 200  # markets in one `catalogue` reply (the request's `limit` is capped here)


def entry(m) -> dict:
    """One market as the catalogue lists it. `start_ts` is null: markets carry no start time."""
    return {"market": m.id, "event": m.event, "name": m.name, "type": m.type,
            "currency": m.currency, "status": m.status, "in_play": m.in_play,
            "bet_delay_ms": m.bet_delay_ms, "start_ts": None,
            "traded": format_money(sum(m.traded)),
            "selections": [{"id": sid, "name": m.selection_names[i],
                            "traded": format_money(m.traded[i])}
                           for i, sid in enumerate(m.selection_ids)]}


def page(engine, event: str | None, statuses: set[str] | None, in_play: bool | None,
         after: str | None, limit: int) -> dict:
    """The markets that pass the filters, in creation order, after the market `after`; `next`
    is the cursor for the following page (null on the last one). Raises KeyError(after) for a
    cursor that names no market."""
    markets = engine.markets
    ids = iter(markets)
    if after is not None:
        if after not in markets:
            raise KeyError(after)
        for mid in ids:
            if mid == after:
                break
    listed: list[dict] = []
    more = False
    for mid in ids:
        m = markets[mid]
        if ((event is not None and m.event != event)
                or (statuses is not None and m.status not in statuses)
                or (in_play is not None and m.in_play != in_play)):
            continue
        if len(listed) == limit:
            more = True
            break
        listed.append(entry(m))
    return {"op": "catalogue", "markets": listed,
            "next": listed[-1]["market"] if more else None}


class CatalogueFeed:
    """Sessions subscribed to the `catalogue` channel, and the pushes they get."""

    def __init__(self, exchange) -> None:
        self.exchange = exchange
        self.watchers: set[Session] = set()

    def on_batch(self, records):
        """Sequencer renderer: one `catalogue` push per batch listing each market created or
        changed in status (or in-play) by it, as the batch left it; sent once journaled."""
        if not self.watchers:
            return None
        changed: dict[str, None] = {}
        for _, _, events in records:
            for ev in events:
                kind = type(ev)
                if kind is e.MarketCreated or kind is e.MarketStatusChanged:
                    changed[ev.market] = None
        if not changed:
            return None
        markets = self.exchange.sequencer.engine.markets
        push = {"op": "catalogue", "markets": [entry(markets[mid]) for mid in changed]}

        def release() -> None:
            for session in list(self.watchers):
                if session.closed:
                    self.watchers.discard(session)
                else:
                    session.push(push)

        return release

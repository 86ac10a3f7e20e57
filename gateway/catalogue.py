"""The catalogue: every event's markets with names, status, in-play, start time and matched
volume, filtered and paged (the `catalogue` op), and pushed to the `catalogue` channel when a
market is created, changes status or loses a selection (a non-runner).

Markets are listed in the order they were created (the engine's own order, the same after a
restart), or by start time (markets without one last, ties in creation order); either way the
order is fixed by the engine's state, so a page cursor is simply the last market id of the
previous page. The views run
where the engine holds exactly journaled state: in a sequencer read, or in `on_batch`, a
sequencer renderer whose pushes are released once the batch is journaled.
"""

from engine import events as e
from engine.money import format_money

from .session import Session
from .views import removed_view

PAGE_MAX = 200  # markets in one `catalogue` reply (the request's `limit` is capped here)


def entry(m) -> dict:
    """One market as the catalogue lists it; `start_ts` is null for a market created without
    one, `removed` null for a selection that runs."""
    return {"market": m.id, "event": m.event, "name": m.name, "type": m.type,
            "currency": m.currency, "status": m.status, "in_play": m.in_play,
            "bet_delay_ms": m.bet_delay_ms, "start_ts": m.start_ts,
            "traded": format_money(sum(m.traded)),
            "selections": [{"id": sid, "name": m.selection_names[i],
                            "traded": format_money(m.traded[i]), "removed": removed_view(m, i)}
                           for i, sid in enumerate(m.selection_ids)]}


def by_start(markets: dict) -> list[str]:
    """Market ids by start time, markets without one last; ties keep creation order (sorted is
    stable), so the order, and a cursor into it, is the same for every page."""
    return sorted(markets, key=lambda mid: (markets[mid].start_ts is None,
                                            markets[mid].start_ts or 0))


def page(engine, event: str | None, statuses: set[str] | None, in_play: bool | None,
         after: str | None, limit: int, start_from: int | None = None,
         start_to: int | None = None, sort: str = "created") -> dict:
    """The markets that pass the filters, in creation order (or by start time, with `sort`
    "start"), after the market `after`; `next` is the cursor for the following page (null on the
    last one). A start-time filter (`start_from` <= start < `start_to`) leaves out markets with
    no start time. Raises KeyError(after) for a cursor that names no market."""
    markets = engine.markets
    ids = iter(by_start(markets) if sort == "start" else markets)
    if after is not None:
        if after not in markets:
            raise KeyError(after)
        for mid in ids:
            if mid == after:
                break
    timed = start_from is not None or start_to is not None
    listed: list[dict] = []
    more = False
    for mid in ids:
        m = markets[mid]
        if ((event is not None and m.event != event)
                or (statuses is not None and m.status not in statuses)
                or (in_play is not None and m.in_play != in_play)):
            continue
        if timed and (m.start_ts is None
                      or (start_from is not None and m.start_ts < start_from)
                      or (start_to is not None and m.start_ts >= start_to)):
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
        """Sequencer renderer: one `catalogue` push per batch listing each market created,
        changed in status (or in-play) or with a selection removed by it, as the batch left it;
        sent once journaled."""
        if not self.watchers:
            return None
        changed: dict[str, None] = {}
        for _, _, events in records:
            for ev in events:
                kind = type(ev)
                if (kind is e.MarketCreated or kind is e.MarketStatusChanged
                        or kind is e.SelectionRemoved):
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

"""The operator's exposure picture (PROTOCOL.md "Operator ops"), as one pure function of the
engine, shared by `GET /admin/exposure` and the WebSocket `exposure` channel.

Call it only where the engine holds exactly the journaled state (a sequencer query). Money
leaves as strings. Per exchange market that is not yet settled or voided:

- `house_liability`: the house's worst case on the market, matched bets and resting quotes
  together (`Position.needed_hold()`), i.e. the most it can lose whatever wins;
- per running selection `house_pnl`: the house's profit/loss if that selection wins, from
  matched bets only (`engine.house.matched_outcomes`); a non-runner is no outcome;
- `top_users`: the TOP_USERS_MAX users holding most on the market, largest first.
"""

import heapq

from engine.commands import EXCHANGE
from engine.house import HOUSE, matched_outcomes
from engine.market import FINAL
from engine.money import format_money

TOP_USERS_MAX = 5


def exposure_view(engine) -> dict:
    return {"markets": [market_exposure(m) for m in engine.markets.values()
                        if m.type == EXCHANGE and m.status not in FINAL]}


def market_exposure(m) -> dict:
    house = m.positions.get(HOUSE)
    outcomes = matched_outcomes(house, len(m.selection_ids))
    # ties broken by user id so the list is stable from one push to the next
    top = heapq.nsmallest(TOP_USERS_MAX, ((-pos.hold, user) for user, pos in m.positions.items()
                                          if user != HOUSE and pos.hold > 0))
    return {
        "market": m.id,
        "name": m.name,
        "status": m.status,
        "matched": format_money(sum(m.traded)),
        "house_liability": format_money(house.needed_hold() if house is not None else 0),
        "selections": [{"id": m.selection_ids[i], "house_pnl": format_money(outcomes[i])}
                       for i in m.running()],
        "top_users": [{"user": user, "exposure": format_money(-neg_hold)}
                      for neg_hold, user in top],
    }

"""Property tests for the house as a market maker (risk/ and pricing/ inside the engine).

Whatever bettors do, the house's worst-case loss on a market (its hold: matched bets plus the
worst case of its resting quotes) never exceeds the liability cap, and the prices it offers
always carry at least the margin the trader asked for.
"""

from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import commands as c
from engine import events as e
from engine.config import EngineConfig
from engine.engine import HOUSE, Engine
from pricing.ladder import TICKS

BETTORS = ("ann", "ben", "cat")
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def house_hold(engine: Engine, market: str) -> int:
    pos = engine.markets[market].positions.get(HOUSE)
    return pos.needed_hold() if pos is not None else 0


@SETTINGS
@given(st.data())
def test_the_house_never_risks_more_than_its_cap_whatever_bettors_do(data):
    backs = data.draw(st.sampled_from([0, 0, 2]), label="house back ticks")
    engine = Engine(EngineConfig(velocity_orders_max=0, house_back_ticks=backs))
    seq = iter(range(1, 10**6))
    ts = 1_700_000_000_000
    n = data.draw(st.integers(2, 4), label="selections")
    sels = tuple(f"s{i}" for i in range(n))

    def apply(cls, **fields):
        events = engine.apply(cls(seq=next(seq), ts=ts, **fields))
        engine.validate()
        for ev in events:
            if isinstance(ev, e.PricesSet) and len(ev.offered) == n:
                margin = Fraction(ev.margin_bp, 10_000)
                assert sum(Fraction(100, p) for _, p in ev.offered) >= 1 + margin
        return events

    apply(c.CreateMarket, market="m", event="e", name="m",
          selections=tuple((s, s) for s in sels))
    apply(c.SetMarketStatus, market="m", status="open")
    for b in BETTORS:
        apply(c.Deposit, user=b, currency="BDT", amount_minor=10**9, ref=b)
    cap = data.draw(st.integers(1, 500_000), label="cap")
    apply(c.SetMarketLimits, market="m", max_liability_minor=cap)
    fair_index = st.integers(30, 250)

    def price_it():
        apply(c.SetPrices, market="m",
              prices=tuple((s, TICKS[data.draw(fair_index, label="fair")]) for s in sels),
              margin_bp=data.draw(st.integers(0, 2_000), label="margin"))

    price_it()
    for _ in range(data.draw(st.integers(1, 60), label="steps")):
        kind = data.draw(st.sampled_from(["bet"] * 8 + ["reprice", "raise cap", "cancel"]),
                         label="kind")
        if kind == "bet":
            apply(c.PlaceOrder, user=data.draw(st.sampled_from(BETTORS), label="bettor"),
                  market="m", selection=data.draw(st.sampled_from(sels), label="sel"),
                  side=data.draw(st.sampled_from([c.BACK, c.BACK, c.LAY]), label="side"),
                  price=TICKS[data.draw(st.integers(0, 200), label="price")],
                  size_minor=data.draw(st.integers(1, 200_000), label="size"))
        elif kind == "reprice":
            price_it()
        elif kind == "raise cap":
            cap += data.draw(st.integers(0, 100_000), label="more")
            apply(c.SetMarketLimits, market="m", max_liability_minor=cap)
        else:
            live = [o for o in engine.markets["m"].open_orders.values() if o.user != HOUSE]
            if live:
                o = data.draw(st.sampled_from(live), label="order")
                apply(c.CancelOrder, user=o.user, order=o.id)
        assert house_hold(engine, "m") <= cap

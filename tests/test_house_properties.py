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


def exact_house_outcomes(engine: Engine, market: str, matched: list[e.BetMatched]) -> list[int]:
    """The house's P&L if each selection wins, in hundredths of a minor unit, from `matched`
    (every fill on the market) and its resting orders at their worst. A house LAY counts at its
    unrounded liability stake x (odds - 1); a house BACK wins what the engine pays it."""
    m = engine.markets[market]
    outcomes = [0] * len(m.selection_ids)

    def add(sel: int, is_back: bool, win_hundredths: int, stake_minor: int) -> None:
        for k in range(len(outcomes)):
            if k == sel:
                outcomes[k] += win_hundredths if is_back else -win_hundredths
            else:
                outcomes[k] += -100 * stake_minor if is_back else 100 * stake_minor

    for ev in matched:
        if HOUSE not in (ev.maker_user, ev.taker_user):
            continue
        house_backs = (ev.taker_side == c.BACK) == (ev.taker_user == HOUSE)
        win = 100 * ev.win_minor if house_backs else ev.size_minor * (ev.price - 100)
        add(m.index[ev.selection], house_backs, win, ev.size_minor)
    for o in engine.orders.values():
        if o.user == HOUSE and o.market == market and o.remaining:
            # unmatched, a back risks its stake and wins nothing yet; a lay risks its liability
            add(o.sel, o.is_back, 0 if o.is_back else o.remaining * (o.price - 100), o.remaining)
    return outcomes


@SETTINGS
@given(st.data())
def test_house_liability_never_passes_a_limit_by_any_fraction_of_a_cent(data):
    """Random fair prices on the ladder, margins, market and selection limits (or only the
    configured default), and bettors backing into the house (and laying into its backs) in many
    small fills, with re-quotes after shading and repricing: on every selection the house's
    liability, counted unrounded fill by fill, stays within every limit."""
    backs = data.draw(st.sampled_from([0, 0, 2]), label="house back ticks")
    default = data.draw(st.integers(1, 200_000), label="default limit")
    engine = Engine(EngineConfig(velocity_orders_max=0, house_back_ticks=backs,
                                 house_default_liability_minor=default))
    seq = iter(range(1, 10**6))
    ts = 1_700_000_000_000
    n = data.draw(st.integers(2, 4), label="selections")
    sels = tuple(f"s{i}" for i in range(n))
    matched: list[e.BetMatched] = []

    def apply(cls, **fields):
        events = engine.apply(cls(seq=next(seq), ts=ts, **fields))
        engine.validate()
        matched.extend(ev for ev in events if isinstance(ev, e.BetMatched))
        return events

    apply(c.CreateMarket, market="m", event="e", name="m",
          selections=tuple((s, s) for s in sels))
    apply(c.SetMarketStatus, market="m", status="open")
    for b in BETTORS:
        apply(c.Deposit, user=b, currency="BDT", amount_minor=10**10, ref=b)
    limit_values = st.one_of(st.none(), st.integers(1, 200_000))
    market_limit = data.draw(limit_values, label="market limit")
    selection_limit = data.draw(limit_values, label="selection limit")
    if (market_limit, selection_limit) != (None, None):
        apply(c.SetMarketLimits, market="m", max_liability_minor=market_limit,
              selection_max_liability_minor=selection_limit)

    def price_it():
        apply(c.SetPrices, market="m",
              prices=tuple((s, TICKS[data.draw(st.integers(10, 250), label="fair")])
                           for s in sels),
              margin_bp=data.draw(st.integers(0, 2_000), label="margin"))

    def lowest_limit() -> int:
        return min(v for v in (market_limit or default, selection_limit) if v is not None)

    price_it()
    for _ in range(data.draw(st.integers(1, 60), label="steps")):
        kind = data.draw(st.sampled_from(["bet"] * 12 + ["reprice", "raise limit"]),
                         label="kind")
        if kind == "bet":
            apply(c.PlaceOrder, user=data.draw(st.sampled_from(BETTORS), label="bettor"),
                  market="m", selection=data.draw(st.sampled_from(sels), label="sel"),
                  side=data.draw(st.sampled_from([c.BACK] * 4 + [c.LAY]), label="side"),
                  price=TICKS[data.draw(st.integers(0, 300), label="price")],
                  size_minor=data.draw(st.integers(1, max(1, lowest_limit() // 4)),
                                       label="size"))
        elif kind == "reprice":
            price_it()
        else:
            more = data.draw(st.integers(0, 50_000), label="more")
            if selection_limit is not None and data.draw(st.booleans(), label="selection"):
                selection_limit += more
            else:
                market_limit = (market_limit or default) + more
            apply(c.SetMarketLimits, market="m", max_liability_minor=market_limit,
                  selection_max_liability_minor=selection_limit)
        outcomes = exact_house_outcomes(engine, "m", matched)
        for k, outcome in enumerate(outcomes):
            if selection_limit is not None:
                assert -outcome <= 100 * selection_limit, (sels[k], outcome, selection_limit)
        assert -min(outcomes) <= 100 * (market_limit or default), (outcomes, market_limit)
        assert house_hold(engine, "m") <= lowest_limit()

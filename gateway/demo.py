"""An in-process trading session that prints what the engine does, event by event."""

import itertools

from engine import commands as c
from engine import events as e
from engine.engine import Engine
from engine.money import format_money, format_odds

SCRIPT = [
    c.CreateMarket(market="m1", event="e1", name="Match Odds: Tigers v Lions",
                   selections=(("s1", "Tigers"), ("s2", "Draw"), ("s3", "Lions"))),
    c.SetMarketStatus(market="m1", status="open"),
    c.Deposit(user="alice", currency="BDT", amount_minor=100_000, ref="pay-1"),
    c.Deposit(user="bob", currency="BDT", amount_minor=100_000, ref="pay-2"),
    c.PlaceOrder(user="bob", market="m1", selection="s1", side=c.LAY, price=250,
                 size_minor=5_000, persistence=c.PERSIST),
    c.PlaceOrder(user="bob", market="m1", selection="s1", side=c.LAY, price=240,
                 size_minor=5_000),
    c.PlaceOrder(user="alice", market="m1", selection="s1", side=c.BACK, price=230,
                 size_minor=8_000),
    c.PlaceOrder(user="alice", market="m1", selection="s1", side=c.LAY, price=200,
                 size_minor=3_000),
    c.SetMarketStatus(market="m1", in_play=True, bet_delay_ms=5_000),
    c.SettleMarket(market="m1", winners=("s1",)),
]


def describe(ev: e.Event) -> str:
    if isinstance(ev, e.BetMatched):
        return (f"matched {format_money(ev.size_minor)} at {format_odds(ev.price)}: "
                f"{ev.taker_user} ({ev.taker_side}) with {ev.maker_user}, "
                f"win {format_money(ev.win_minor)}")
    if isinstance(ev, e.WalletChanged):
        return (f"wallet {ev.user}: balance {format_money(ev.balance_minor)}, "
                f"held {format_money(ev.held_minor)}")
    if isinstance(ev, e.OrderPlaced):
        return (f"order {ev.order} by {ev.user}: {ev.side} {format_money(ev.size_minor)} "
                f"@ {format_odds(ev.price)} on {ev.selection}")
    if isinstance(ev, e.MoneyMoved):
        moves = ", ".join(f"{a} {format_money(x)}" for a, x in ev.entries)
        return f"ledger {ev.kind} {ev.ref}: {moves}"
    return repr(ev)


def run_demo(out) -> None:
    engine = Engine()
    ts = itertools.count(1_700_000_000_000, 1_000)
    for seq, template in enumerate(SCRIPT, start=1):
        fields = {f: getattr(template, f) for f in template.__dataclass_fields__}
        fields.update(seq=seq, ts=next(ts))
        cmd = type(template)(**fields)
        out.write(f"\n#{seq} {type(cmd).__name__}\n")
        for ev in engine.apply(cmd):
            out.write(f"   {describe(ev)}\n")
        engine.validate()
    out.write("\nAll invariants hold. The WebSocket gateway replaces this demo in `make run`.\n")

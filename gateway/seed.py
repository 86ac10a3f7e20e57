"""The demo world `make run` starts with: one event, two open markets priced by a demo trader,
funded demo users. Idempotent: every command is skipped or refused as a repeat on a restart."""

from engine import commands as c

DEMO_USERS = ("u1", "u2", "u3")
DEMO_FUNDS_MINOR = 1_000_000  # 10,000.00 each

MARKETS = (
    ("demo-m1", "Match Odds", (("home", "Tigers"), ("draw", "Draw"), ("away", "Lions")),
     (("home", 210), ("draw", 340), ("away", 380))),
    ("demo-m2", "Total Goals Over/Under 2.5", (("over", "Over 2.5"), ("under", "Under 2.5")),
     (("over", 190), ("under", 200))),
)


async def seed_demo(exchange, currency: str, owns=lambda cmd: True) -> None:
    """`owns`: which commands are this exchange's to seed (a shard of the split shape seeds
    only the markets and home wallets it owns)."""
    known = await exchange.read(lambda engine: set(engine.markets))
    for market, name, selections, fair in MARKETS:
        create = c.CreateMarket(market=market, event="demo-e1", name=name,
                                selections=selections, currency=currency)
        if market in known or not owns(create):
            continue
        await exchange.submit(create)
        await exchange.submit(c.SetMarketLimits(market=market, max_liability_minor=5_000_000,
                                                min_stake_minor=100, max_stake_minor=100_000))
        await exchange.submit(c.SetMarketStatus(market=market, status="open"))
        await exchange.submit(c.SetPrices(market=market, prices=fair, margin_bp=500))
    for user in DEMO_USERS:
        deposit = c.Deposit(user=user, currency=currency, amount_minor=DEMO_FUNDS_MINOR,
                            ref=f"demo-seed-{user}")
        if owns(deposit):
            await exchange.submit(deposit)

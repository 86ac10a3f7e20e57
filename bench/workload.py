"""A seeded, deterministic order stream for the engine benchmarks (and the replay bench).

About 70% resting limit orders, 20% crossing orders and 10% cancels, over `markets` markets of
three selections each and `users` funded users. The same seed always gives the same commands,
already stamped with seq and ts (order ids are "o<seq>", so cancels can name earlier orders).
"""

import random

from engine import commands as c
from pricing.ladder import TICKS

CURRENCY = "BDT"
TS0 = 1_700_000_000_000


def setup_commands(markets: int, users: int, deposit_minor: int = 10_000_000_00) -> list:
    cmds = []
    for i in range(markets):
        mid = f"m{i}"
        cmds.append(dict(cls=c.CreateMarket, market=mid, event=f"e{i}", name=f"Market {i}",
                         selections=(("s1", "Home"), ("s2", "Draw"), ("s3", "Away"))))
        cmds.append(dict(cls=c.SetMarketStatus, market=mid, status="open"))
    for u in range(users):
        cmds.append(dict(cls=c.Deposit, user=f"u{u}", currency=CURRENCY,
                         amount_minor=deposit_minor, ref=f"seed-{u}"))
    return cmds


def limit_commands(markets: int, users: int) -> list:
    """Generous limits on every market and user: the risk checks run, nothing is denied."""
    cmds = [dict(cls=c.SetMarketLimits, market=f"m{i}", min_stake_minor=100,
                 max_stake_minor=1_000_000, max_liability_minor=10**10) for i in range(markets)]
    cmds += [dict(cls=c.SetUserLimits, user=f"u{u}", max_stake_minor=2_000_000,
                  daily_stake_minor=10**10, weekly_stake_minor=10**11, stake_factor=(9, 10),
                  max_exposure_minor=10**10) for u in range(users)]
    return cmds


def order_stream(count: int, markets: int = 20, users: int = 1000, seed: int = 7,
                 limits: bool = False) -> list:
    """Setup commands followed by `count` trading commands."""
    rng = random.Random(seed)
    specs = setup_commands(markets, users)
    if limits:
        specs += limit_commands(markets, users)
    mids = {(m, s): 120 + rng.randrange(60) for m in range(markets) for s in range(3)}
    placed: list[tuple[str, str]] = []  # (user, order id)
    for _ in range(count):
        seq = len(specs) + 1
        r = rng.random()
        if r < 0.10 and placed:
            owner, oid = placed[rng.randrange(len(placed))]
            specs.append(dict(cls=c.CancelOrder, user=owner, order=oid))
            continue
        m, s = rng.randrange(markets), rng.randrange(3)
        user = f"u{rng.randrange(users)}"
        mid = mids[(m, s)]
        back = rng.random() < 0.5
        if r < 0.80:  # rests: backs above the mid, lays below it
            tick = mid + rng.randrange(1, 6) if back else mid - rng.randrange(1, 6)
        else:  # crosses up to three levels into the other side
            tick = mid - 3 if back else mid + 3
        specs.append(dict(cls=c.PlaceOrder, user=user, market=f"m{m}", selection=f"s{s + 1}",
                          side=c.BACK if back else c.LAY, price=TICKS[tick],
                          size_minor=rng.randrange(200, 5000)))
        placed.append((user, f"o{seq}"))
    return [spec.pop("cls")(seq=i, ts=TS0 + i, **spec) for i, spec in enumerate(specs, start=1)]

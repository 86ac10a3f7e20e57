"""Listing benchmark: how long one listing of a user's orders (the `orders` op, the HTTP
positions view) holds the engine when the user's orders are spread through a deep price level.

One back level of --level orders at one price; every (level / mine)-th is the listing user's,
the rest another user's. Renders the user's --mine orders both ways and checks they agree:
  one by one   views.order_view per order (each walks the level up to its order)
  listing      views.order_views (each level walked once for all the listed orders in it)

    python bench/listing.py [--level 50000] [--mine 1000] [--repeat 3]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import commands as c  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from engine.engine import Engine  # noqa: E402
from gateway.views import order_view, order_views  # noqa: E402


def deep_level(level: int, mine: int) -> tuple[Engine, list[str]]:
    engine = Engine(EngineConfig(velocity_orders_max=0))
    seq = iter(range(1, level + 100))

    def apply(cls, **fields):
        return engine.apply(cls(seq=next(seq), ts=1_700_000_000_000, **fields))

    apply(c.CreateMarket, market="m", event="e", name="n", selections=(("a", "A"), ("b", "B")))
    apply(c.SetMarketStatus, market="m", status="open")
    for user in ("maker", "others"):
        apply(c.Deposit, user=user, currency="BDT", amount_minor=10**12, ref=f"d-{user}")
    every = max(1, level // mine)
    ids = []
    for i in range(level):
        user = "maker" if i % every == 0 and len(ids) < mine else "others"
        placed = apply(c.PlaceOrder, user=user, market="m", selection="a", side="back",
                       price=300, size_minor=200)[0]
        if user == "maker":
            ids.append(placed.order)
    return engine, ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--level", type=int, default=50_000, help="orders resting at the price")
    ap.add_argument("--mine", type=int, default=1_000, help="of them the listing user's")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    engine, ids = deep_level(args.level, args.mine)
    print(f"listing bench: {len(ids):,} orders of one user spread through a level of "
          f"{args.level:,}; best of {args.repeat}")
    timings = {"one by one": [], "listing": []}
    for _ in range(args.repeat):
        started = time.perf_counter()
        alone = [order_view(engine, oid) for oid in ids]
        timings["one by one"].append(time.perf_counter() - started)
        started = time.perf_counter()
        listed = order_views(engine, ids)
        timings["listing"].append(time.perf_counter() - started)
        assert listed == alone
    for name, spent in timings.items():
        print(f"  {name:<12} {min(spent) * 1e3:9.2f} ms (the engine holds no other request "
              f"meanwhile)")


if __name__ == "__main__":
    main()

"""Retired refs: what a ref costs the engine once its order's market is settled.

A ref is for ever (docs/protocol.md), so a settled or voided market's ref'd orders each leave a
record behind (engine/retired.py). This builds the same exchange twice, with and without a ref
on every back order, settles every market and compares what stays: the memory tracemalloc
still counts after the settlements, and the snapshot's pickled size. Half the backs are fully
matched, half lapse unmatched at settlement (so the records hold non-trivial ints).

    python bench/retired_refs.py [--refs 100000] [--markets 100] [--users 1000]
"""

import argparse
import gc
import os
import pickle
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import commands as c  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from engine.engine import Engine  # noqa: E402

T0 = 1_700_000_000_000


def commands(refs: int, markets: int, users: int, with_refs: bool):
    seq = 0

    def stamp(cls, **fields):
        nonlocal seq
        seq += 1
        return cls(seq=seq, ts=T0 + seq, **fields)

    for u in range(users):
        yield stamp(c.Deposit, user=f"user-{u}", currency="BDT", amount_minor=10**11,
                    ref=f"dep-{u}")
    per_market = refs // markets
    for mi in range(markets):
        market = f"market-{mi}"
        yield stamp(c.CreateMarket, market=market, event=f"event-{mi}", name="Match Odds",
                    selections=(("home", "Home"), ("draw", "Draw"), ("away", "Away")))
        yield stamp(c.SetMarketStatus, market=market, status="open")
        for i in range(per_market):
            n = mi * per_market + i
            user = f"user-{n % users}"
            size = 1_000 + n % 5_000
            yield stamp(c.PlaceOrder, user=user, market=market, selection="home", side=c.BACK,
                        price=200 + 2 * (n % 50), size_minor=size,
                        ref=f"slip-{n:08d}" if with_refs else "")
            if n % 2:  # the other half of the users lays it all: the back is fully matched
                yield stamp(c.PlaceOrder, user=f"user-{(n + 1) % users}", market=market,
                            selection="home", side=c.LAY, price=200 + 2 * (n % 50),
                            size_minor=size)
        yield stamp(c.SettleMarket, market=market, winners=("home",))


def build(args, with_refs: bool) -> tuple[int, int, Engine]:
    gc.collect()
    start = tracemalloc.get_traced_memory()[0]
    eng = Engine(EngineConfig(velocity_orders_max=0))
    for cmd in commands(args.refs, args.markets, args.users, with_refs):
        eng.apply(cmd)
    eng._events = []  # the last apply's scratch
    eng._touched = {}
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - start
    return kept, len(pickle.dumps(eng, protocol=pickle.HIGHEST_PROTOCOL)), eng


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=100_000)
    parser.add_argument("--markets", type=int, default=100)
    parser.add_argument("--users", type=int, default=1_000)
    args = parser.parse_args()
    tracemalloc.start()
    bare_bytes, bare_pickle, bare = build(args, with_refs=False)
    assert not bare.orders and not bare.retired_refs
    del bare
    ref_bytes, ref_pickle, eng = build(args, with_refs=True)
    assert not eng.orders and len(eng.retired_refs) == len(eng.retired_orders) == args.refs
    n = args.refs
    print(f"{n:,} retired refs on {args.markets} settled markets, {args.users:,} users")
    print(f"engine memory after settlement: {bare_bytes:,} B without refs, "
          f"{ref_bytes:,} B with: {(ref_bytes - bare_bytes) / n:.0f} B per retired ref")
    print(f"snapshot (pickle): {bare_pickle:,} B without refs, {ref_pickle:,} B with: "
          f"{(ref_pickle - bare_pickle) / n:.1f} B per retired ref")


if __name__ == "__main__":
    main()

"""Engine core benchmark: a seeded stream of commands applied in one process.

Prints commands/s and per-command latency percentiles for the full engine (wallets, exposure,
holds on) and, in the same run, for a variant with exposure and funds checks switched off
inside this benchmark only, to show what they cost.

    python bench/engine.py [--count 200000] [--seed 7]
"""

import argparse
import gc
import os
import sys
import time
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.workload import order_stream  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.exposure import Position  # noqa: E402


def percentile(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1000


def run(cmds: list, warm: int) -> dict:
    engine = Engine()
    for cmd in cmds[:warm]:
        engine.apply(cmd)
    trading = cmds[warm:]
    gc.collect()
    gc.disable()
    try:
        apply = engine.apply
        start = time.perf_counter()
        for cmd in trading:
            apply(cmd)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    # latency pass on a fresh engine: per-command timing adds its own overhead to each sample
    engine = Engine()
    for cmd in cmds[:warm]:
        engine.apply(cmd)
    samples = []
    clock = time.perf_counter_ns
    apply = engine.apply
    gc.collect()
    for cmd in trading:
        t0 = clock()
        apply(cmd)
        samples.append(clock() - t0)
    samples.sort()
    return {
        "commands": len(trading),
        "per_s": len(trading) / elapsed,
        "p50": percentile(samples, 0.50),
        "p99": percentile(samples, 0.99),
        "p999": percentile(samples, 0.999),
        "engine": engine,
    }


@contextmanager
def exposure_off():
    """Bench-only: no exposure bookkeeping, no holds, no funds check."""
    saved = (Engine._rehold, Engine._check_funds, Position.add_unmatched,
             Position.add_matched, Position.hold_if)
    Engine._rehold = lambda self, pos, wallet: None
    Engine._check_funds = lambda self, user, wallet, extra: None
    Position.add_unmatched = lambda self, *a: None
    Position.add_matched = lambda self, *a: None
    Position.hold_if = lambda self, changes: 0
    try:
        yield
    finally:
        (Engine._rehold, Engine._check_funds, Position.add_unmatched,
         Position.add_matched, Position.hold_if) = saved


def line(name: str, r: dict) -> str:
    return (f"{name:<28} {r['per_s']:>12,.0f} cmd/s   p50 {r['p50']:6.1f} µs   "
            f"p99 {r['p99']:6.1f} µs   p99.9 {r['p999']:7.1f} µs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--markets", type=int, default=20)
    ap.add_argument("--users", type=int, default=1000)
    args = ap.parse_args()
    cmds = order_stream(args.count, args.markets, args.users, args.seed)
    warm = len(cmds) - args.count
    full = run(cmds, warm)
    with exposure_off():
        bare = run(cmds, warm)
    eng = full["engine"]
    fills = sum(1 for o in eng.orders.values() if o.matched)
    resting = sum(len(m.open_orders) for m in eng.markets.values())
    print(f"engine bench: {args.count:,} commands (seed {args.seed}), {args.markets} markets x 3 "
          f"selections, {args.users} users; {len(eng.orders):,} orders, {fills:,} with fills, "
          f"{resting:,} resting at the end")
    print(line("full (wallets+exposure)", full))
    print(line("exposure+funds off", bare))
    print(f"exposure+funds cost: {(1 / full['per_s'] - 1 / bare['per_s']) * 1e6:.2f} µs/command "
          f"({bare['per_s'] / full['per_s']:.2f}x)")


if __name__ == "__main__":
    main()

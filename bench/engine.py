"""Engine core benchmark: a seeded stream of commands applied in one process.

Prints commands/s and per-command latency percentiles, all in one run, for:
  full          wallets, exposure, holds, risk checks (limits set on every user and market)
  risk off      no limits set, no velocity limit
  hooked        risk off, the exposure/hold/funds hooks overridden in Python, calling the real ones
  bare          risk off, the same hooks overridden to do nothing (inside this benchmark only)
then the per-order cost of risk checks and of exposure, what building the run's frozen event
dataclasses alone costs, the same trading commands through a plain SortedDict+deque book (no
wallets, exposure, validation or events: bench/plain_book.py) for scale, and the cost of a
`prices.set` on a 20-selection market (re-quoting the house orders).

    python bench/engine.py [--count 200000] [--seed 7]
"""

import argparse
import dataclasses
import gc
import os
import sys
import time
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import plain_book  # noqa: E402
from bench.workload import order_stream  # noqa: E402
from engine import commands as c  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.exposure import Position  # noqa: E402
from pricing.ladder import TICKS  # noqa: E402

RISK_OFF = EngineConfig(velocity_orders_max=0)


def percentile(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1000


@contextmanager
def collector_off():
    """A timed pass without the collector's pauses (they show up in the latency pass instead)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _warmed(cmds: list, warm: int, config: EngineConfig, engine_cls: type = Engine) -> Engine:
    engine = engine_cls(config)
    for cmd in cmds[:warm]:
        engine.apply(cmd)
    return engine


def run(cmds: list, warm: int, config: EngineConfig, engine_cls: type = Engine) -> dict:
    trading = cmds[warm:]
    engine = _warmed(cmds, warm, config, engine_cls)
    with collector_off():
        apply = engine.apply
        cpu_start = time.process_time()
        start = time.perf_counter()
        for cmd in trading:
            apply(cmd)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    rejected = 0
    engine = _warmed(cmds, warm, config, engine_cls)
    samples = []
    clock = time.perf_counter_ns
    apply = engine.apply
    gc.collect()
    for cmd in trading:
        t0 = clock()
        events = apply(cmd)
        samples.append(clock() - t0)
        rejected += bool(events) and type(events[0]).__name__ == "CommandRejected"
    samples.sort()
    return {"commands": len(trading), "per_s": len(trading) / elapsed,
            "cpu_us": cpu / len(trading) * 1e6,
            "us": elapsed / len(trading) * 1e6, "p50": percentile(samples, 0.50),
            "p99": percentile(samples, 0.99), "p999": percentile(samples, 0.999),
            "rejected": rejected, "engine": engine}


def emitted_events(cmds: list, warm: int, config: EngineConfig) -> list:
    """Every event of the trading commands (a pass of its own: keeping them alive would slow the
    timed passes' collector)."""
    engine = _warmed(cmds, warm, config)
    events = []
    for cmd in cmds[warm:]:
        events += engine.apply(cmd)
    return events


def event_build_s(events: list) -> float:
    """Seconds to build `events` again from their field values, the way the engine calls the
    constructors (keyword arguments): the floor that frozen event dataclasses set."""
    builders = {}
    work = []
    for ev in events:
        cls = type(ev)
        if cls not in builders:
            names = [f.name for f in dataclasses.fields(cls)]
            args = ", ".join(f"{name}=v[{i}]" for i, name in enumerate(names))
            namespace = {"cls": cls}
            exec(f"def build(v):\n    return cls({args})\n", namespace)
            builders[cls] = (namespace["build"], names)
        build, names = builders[cls]
        work.append((build, tuple([getattr(ev, name) for name in names])))
    with collector_off():
        start = time.perf_counter()
        for build, values in work:
            build(values)
        return time.perf_counter() - start


def plain_book_rate(trading: list) -> tuple[float, int]:
    """(commands/s, fills) for the trading commands through bench/plain_book.py."""
    with collector_off():
        start = time.perf_counter()
        fills = plain_book.apply_all(trading)
        return len(trading) / (time.perf_counter() - start), fills


class PassThroughPosition(Position):
    """Bench-only: a position whose exposure methods are Python overrides calling the real ones."""

    def fill(self, *args):
        Position.fill(self, *args)

    def add_unmatched(self, *args):
        Position.add_unmatched(self, *args)

    def hold_with(self, *args):
        return Position.hold_with(self, *args)


class BarePosition(Position):
    """Bench-only: a position that keeps no exposure."""

    def fill(self, *args):
        pass

    def add_unmatched(self, *args):
        pass

    def hold_with(self, *args):
        return 0


class PassThroughEngine(Engine):
    """Bench-only: the engine's exposure, hold and funds hooks as Python overrides that call the
    real ones. The engine is compiled, so a subclass is the only way to switch its hooks off, and
    an override costs a Python call; exposure's cost is therefore this engine minus BareEngine,
    whose overrides are the same calls doing nothing."""

    def _new_position(self, m):
        return PassThroughPosition(len(m.selection_ids))

    def _rehold(self, pos, wallet):
        Engine._rehold(self, pos, wallet)

    def _check_funds(self, wallet, extra_hold):
        Engine._check_funds(self, wallet, extra_hold)


class BareEngine(Engine):
    """Bench-only: no exposure bookkeeping, no holds, no funds check."""

    def _new_position(self, m):
        return BarePosition(len(m.selection_ids))

    def _rehold(self, pos, wallet):
        pass

    def _check_funds(self, wallet, extra_hold):
        pass


def prices_set_cost(selections: int = 20, calls: int = 200) -> float:
    """µs per SetPrices on a market of `selections` selections with the house quoting it."""
    engine = Engine(RISK_OFF)
    sels = tuple((f"s{i}", f"Runner {i}") for i in range(selections))
    seq = 0

    def apply(cmd_cls, **fields):
        nonlocal seq
        seq += 1
        return engine.apply(cmd_cls(seq=seq, ts=1_700_000_000_000 + seq, **fields))

    apply(c.CreateMarket, market="race", event="e", name="race", selections=sels)
    apply(c.SetMarketStatus, market="race", status="open")
    apply(c.SetMarketLimits, market="race", max_liability_minor=50_000_00)
    commands = []
    for k in range(calls):
        prices = tuple((sid, TICKS[200 + (i * 7 + k) % 90]) for i, (sid, _) in enumerate(sels))
        commands.append(prices)
    start = time.perf_counter()
    for prices in commands:
        apply(c.SetPrices, market="race", prices=prices, margin_bp=1_000)
    return (time.perf_counter() - start) / calls * 1e6


def line(name: str, r: dict) -> str:
    return (f"{name:<10} {r['per_s']:>10,.0f} cmd/s  {r['us']:5.2f} µs/cmd (cpu "
            f"{r['cpu_us']:5.2f})  p50 {r['p50']:6.1f} µs"
            f"   p99 {r['p99']:6.1f} µs   p99.9 {r['p999']:7.1f} µs   rejected {r['rejected']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--markets", type=int, default=20)
    ap.add_argument("--users", type=int, default=1000)
    args = ap.parse_args()
    with_limits = order_stream(args.count, args.markets, args.users, args.seed, limits=True)
    plain = order_stream(args.count, args.markets, args.users, args.seed)
    full = run(with_limits, len(with_limits) - args.count, EngineConfig())
    no_risk = run(plain, len(plain) - args.count, RISK_OFF)
    hooked = run(plain, len(plain) - args.count, RISK_OFF, PassThroughEngine)
    bare = run(plain, len(plain) - args.count, RISK_OFF, BareEngine)
    eng = full["engine"]
    fills = sum(1 for o in eng.orders.values() if o.matched)
    resting = sum(len(m.open_orders) for m in eng.markets.values())
    print(f"engine bench: {args.count:,} commands (seed {args.seed}), {args.markets} markets x 3 "
          f"selections, {args.users} users; {len(eng.orders):,} orders, {fills:,} with fills, "
          f"{resting:,} resting at the end")
    print(line("full", full))
    print(line("risk off", no_risk))
    print(line("hooked", hooked))
    print(line("bare", bare))
    risk_us = full["us"] - no_risk["us"]
    print(f"risk checks: {risk_us:+.2f} µs/cmd ({risk_us / no_risk['us'] * 100:+.1f}% of the "
          f"per-command cost without them)")
    print(f"exposure+holds+funds: {hooked['us'] - bare['us']:+.2f} µs/cmd (hooked - bare; the "
          f"overrides themselves cost {hooked['us'] - no_risk['us']:+.2f} µs/cmd)")
    events = emitted_events(with_limits, len(with_limits) - args.count, EngineConfig())
    build_us = event_build_s(events) / args.count * 1e6
    print(f"building the full run's {len(events):,} frozen events alone: {build_us:.2f} µs/cmd "
          f"({build_us / full['us'] * 100:.0f}% of full)")
    plain_rate, plain_fills = plain_book_rate(with_limits[len(with_limits) - args.count:])
    matched = sum(1 for ev in events if type(ev).__name__ == "BetMatched")
    del events
    print(f"plain book {plain_rate:>10,.0f} cmd/s  (SortedDict+deque, no wallets/exposure/"
          f"validation/events; {plain_fills:,} fills, the engine {matched:,}); "
          f"full = {full['per_s'] / plain_rate:.2f} of it")
    print(f"prices.set, 20 selections, re-quoting the house: {prices_set_cost():,.0f} µs/call")


if __name__ == "__main__":
    main()

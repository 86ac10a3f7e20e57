"""The engine bench runs end to end on a small stream, and its scale reference matches orders
exactly as the engine does: bench/plain_book.py (no wallets, exposure or events) must make the
same fills on the same commands, or "full = x of a plain book" compares different work.
No timing is asserted; the figures are the bench's business (docs/benchmarks.md)."""

import re
import subprocess
import sys
from pathlib import Path

from bench import plain_book
from bench.workload import order_stream
from engine import commands as c
from engine import events as e
from engine.config import EngineConfig
from engine.engine import Engine

ROOT = Path(__file__).resolve().parent.parent


def test_the_plain_book_makes_the_engines_fills_on_the_bench_stream():
    cmds = order_stream(4_000, markets=3, users=40, seed=11)
    trading = cmds[-4_000:]
    engine = Engine(EngineConfig(velocity_orders_max=0))  # 40 users place faster than its limit
    matched = []
    for cmd in cmds:
        events = engine.apply(cmd)
        assert not any(isinstance(ev, e.CommandRejected) for ev in events)
        matched += [ev for ev in events if isinstance(ev, e.BetMatched)]
    assert sum(isinstance(cmd, c.CancelOrder) for cmd in trading) > 100
    assert len(matched) > 500
    assert plain_book.apply_all(trading) == len(matched)


def test_engine_bench_prints_every_variant_with_nothing_rejected():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "engine.py"), "--count", "3000", "--markets", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for variant in ("full", "risk off", "bare"):
        line = re.search(rf"^{variant} +[\d,]+ cmd/s .* p99 .* rejected (\d+)$", out.stdout, re.M)
        assert line is not None and line.group(1) == "0", out.stdout
    fills = re.search(r"^plain book .*; ([\d,]+) fills, the engine ([\d,]+)\); full = [\d.]+ of it",
                      out.stdout, re.M)
    assert fills is not None, out.stdout
    assert fills.group(1) == fills.group(2) and fills.group(1) != "0"
    assert re.search(r"frozen events alone: [\d.]+ µs/cmd", out.stdout), out.stdout

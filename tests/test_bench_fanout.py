"""The fan-out bench runs end to end on a small scale: its lean Sans-I/O subscribers
(bench.harness.Subscriber) authenticate, subscribe and see every conflated delta in order.
No timing is asserted; the figures are the bench's business (docs/benchmarks.md)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_fanout_bench_delivers_every_delta_to_every_subscriber():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fanout.py"), "--subscribers", "5", "--rate", "50",
         "--seconds", "1"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = re.search(r"fan-out: ([\d,]+) orders .*?(\d+) rejected\) -> ([\d,]+) deltas to 5 "
                        r"subscribers .*seq gaps: (\d+)", out.stdout)
    assert summary is not None, out.stdout
    orders, rejected, deltas, gaps = (int(g.replace(",", "")) for g in summary.groups())
    assert orders >= 40 and rejected == 0 and gaps == 0
    assert deltas >= 5  # every subscriber saw at least one delta after its image
    for label in ("newest match in a delta -> delivery: p50",
                  "every match -> delivery (incl. the wait for the next flush): p50"):
        assert label in out.stdout, out.stdout

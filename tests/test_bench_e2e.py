"""The end-to-end bench runs on a small scale: its lean clients authenticate, place and cancel
at a fixed rate and at saturation, and every request gets its reply (none rejected). No timing
is asserted; the figures are the bench's business (docs/benchmarks.md)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_e2e_bench_answers_every_request_in_both_phases():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "e2e.py"), "--clients", "3", "--rate", "100",
         "--seconds", "1", "--windows", "4,8"], cwd=ROOT, capture_output=True, text=True,
        timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    phases = re.findall(r"(fixed rate|saturation) .*?: sustained ([\d,]+) orders/s, ack p50 .*?"
                        r"\(([\d,]+) requests, (\d+) rejected\).*CPU per order: server "
                        r"[\d.]+ us", out.stdout)
    assert [p[0] for p in phases][:2] == ["fixed rate", "saturation"], out.stdout
    (fixed, *steps) = ((int(n.replace(",", "")), int(r)) for _, _, n, r in phases)
    assert fixed[0] >= 90 and fixed[1] == 0  # 100/s for 1 s, every one answered
    assert steps and all(n > 0 and rejected == 0 for n, rejected in steps)
    assert re.search(r"saturation: peak [\d,]+ orders/s \(window \d+/client\)", out.stdout)

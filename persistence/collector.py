"""The cyclic garbage collector's policy for the processes that hold the exchange's data.

Both the sequencer's process and the persister's allocate tens of thousands of objects per batch
that hold no reference cycles and die together (commands, events, rows), beside a heap of
long-lived ones (the engine's state; the persister's modules and connections). With the default
thresholds the collector rescans those young objects again and again while they are alive:
- the sequencer: it doubled the per-command cost (bench/journal.py: 14k -> 24-27k commands/s
  with this policy);
- the persister, whose fold holds a whole read of entries (up to thousands of commands' records
  and rows) for its transaction: collections took 18% of its CPU at saturation (bench/e2e.py,
  0.86 of 4.83 s), 3% with this policy.
So: move everything alive now out of its sight (gc.freeze; refcounting still frees it), and
collect young objects less often. Call again after big changes (recovery, snapshots). Cycles
are still collected.
"""

import gc


def tune_collector() -> None:
    gc.freeze()
    gc.set_threshold(10_000, 50, 1_000)

"""Which journal entry shape commits a batch faster with `appendfsync always`?

  per-command: one XADD per command (id <seq>-0, fields c, e), pipelined, one round trip;
  per-batch:   one XADD per batch (id <last seq>-0, fields c0, e0, c1, e1, ...).

Runs the embedded redis-server in a temporary directory, writes batches back to back the way the
sequencer does (one write in flight), and prints commands/s and per-batch latency. Also times
reading the journal back for replay. Usage: python bench/journal_shapes.py [total_commands]
"""

import asyncio
import os
import statistics
import sys
import tempfile
import time

# Run as a script, bench/ is sys.path[0] and bench/engine.py would shadow the engine package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis.asyncio as aioredis  # noqa: E402

from engine.codec import encode_command, encode_events  # noqa: E402
from engine.commands import PlaceOrder  # noqa: E402
from engine.events import BetMatched, OrderPlaced, WalletChanged  # noqa: E402
from persistence.embedded import EmbeddedRedis  # noqa: E402

BATCH_SIZES = (1, 10, 100, 500)


def sample(seq: int) -> tuple[bytes, bytes]:
    """A typical place that matches once: ~300 B command, ~900 B events."""
    ts = 1_760_000_000_000 + seq
    cmd = PlaceOrder(seq=seq, ts=ts, user=f"u{seq % 1000}", market="m1", selection="s1",
                     side="back", price=250, size_minor=1000, ref=f"r{seq}")
    events = [
        OrderPlaced(seq=seq, ts=ts, order=f"o{seq}", user=cmd.user, market="m1", selection="s1",
                    side="back", price=250, size_minor=1000, persistence="lapse", tif="gtc",
                    ref=cmd.ref, release_ts=0),
        BetMatched(seq=seq, ts=ts, market="m1", selection="s1", price=252, size_minor=1000,
                   win_minor=1520, taker_order=f"o{seq}", taker_user=cmd.user, taker_side="back",
                   maker_order="o1", maker_user="house"),
        WalletChanged(seq=seq, ts=ts, user=cmd.user, currency="BDT", balance_minor=100_000,
                      held_minor=1000),
        WalletChanged(seq=seq, ts=ts, user="house", currency="BDT", balance_minor=10**9,
                      held_minor=1520),
    ]
    return encode_command(cmd), encode_events(events)


async def write_per_command(r, stream, batch):
    pipe = r.pipeline(transaction=False)
    for seq, c, e in batch:
        pipe.xadd(stream, {"c": c, "e": e}, id=f"{seq}-0")
    await pipe.execute()


async def write_per_batch(r, stream, batch):
    fields = {}
    for i, (_, c, e) in enumerate(batch):
        fields[f"c{i}"] = c
        fields[f"e{i}"] = e
    await r.xadd(stream, fields, id=f"{batch[-1][0]}-0")


async def run_shape(r, write, stream, batch_size, total):
    await r.delete(stream)
    # Encoded up front: the figures are the journal's cost alone, not the codec's.
    encoded = [(seq, *sample(seq)) for seq in range(1, total + 1)]
    batches = [encoded[i:i + batch_size] for i in range(0, total, batch_size)]
    latencies_us = []
    started = time.perf_counter()
    for batch in batches:
        t = time.perf_counter()
        await write(r, stream, batch)
        latencies_us.append((time.perf_counter() - t) * 1e6)
    elapsed = time.perf_counter() - started
    seq = total
    read_started = time.perf_counter()
    after = "-"
    while True:
        entries = await r.xrange(stream, min=after, count=1000)
        if not entries:
            break
        after = "(" + entries[-1][0].decode()
    read_s = time.perf_counter() - read_started
    latencies_us.sort()
    return {
        "cmds_per_s": seq / elapsed,
        "batch_p50_us": statistics.median(latencies_us),
        "batch_p99_us": latencies_us[int(len(latencies_us) * 0.99) - 1] if len(latencies_us) > 1
        else latencies_us[0],
        "read_cmds_per_s": seq / read_s,
    }


async def main(total: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(f"{tmp}/redis", appendfsync="always")
        server.start()
        r = aioredis.from_url(server.url)
        try:
            print(f"redis {server.url} appendfsync={await r.config_get('appendfsync')}")
            print(f"{'shape':<12} {'batch':>5} {'cmds/s':>9} {'p50 us':>8} {'p99 us':>8} "
                  f"{'replay cmds/s':>13}")
            for batch_size in BATCH_SIZES:
                n = min(total, batch_size * 400)
                for name, write in (("per-command", write_per_command),
                                    ("per-batch", write_per_batch)):
                    f = await run_shape(r, write, f"bench:{name}", batch_size, n)
                    print(f"{name:<12} {batch_size:>5} {f['cmds_per_s']:>9.0f} "
                          f"{f['batch_p50_us']:>8.0f} {f['batch_p99_us']:>8.0f} "
                          f"{f['read_cmds_per_s']:>13.0f}")
        finally:
            await r.aclose()
            server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40_000))

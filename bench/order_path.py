"""Order path benchmark: the server's per-order code in one process, without sockets or Redis.

50 bettors' connections (gateway/connection.Connection over a null link) take place frames
through their reader (rate limit, validation, submit), the sequencer applies them in batches
and renders the replies, the journal's XADD is encoded but not sent (a stub answers at once),
the hub renders its pushes and the replies are framed into a null transport. What is left out
is the event loop's I/O: sockets, Redis, the persister.

Prints orders/s and CPU µs per order. Its real use is under callgrind, whose instruction count
is the same whatever else the machine is doing (this machine's speed moved by a third within
an hour in session 11):

    python bench/order_path.py [--orders 30000] [--root DIR]
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/order_path.py --orders N      # for N = 10000 and 30000:
    # instructions per order = (refs(30000) - refs(10000)) / 20000

`--root DIR` runs the code of another checkout (built in place, e.g. a git worktree).
"""

import argparse
import asyncio
import os
import random
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--orders", type=int, default=30_000)
ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ap.add_argument("--seed", type=int, default=1)
ARGS = ap.parse_args()
sys.path.insert(0, os.path.abspath(ARGS.root))

import orjson  # noqa: E402
import uvloop  # noqa: E402

from engine import commands as c  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from engine.engine import Engine  # noqa: E402
from gateway.connection import Connection, _Reader  # noqa: E402
from gateway.exchange import Exchange  # noqa: E402
from gateway.hub import Hub  # noqa: E402
from gateway.metrics import Metrics  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.ws import TradingSocket  # noqa: E402
from persistence import journal  # noqa: E402
from persistence.collector import tune_collector  # noqa: E402
from persistence.sequencer import Sequencer  # noqa: E402

PRICES_BACK = ["2.52", "2.54", "2.56", "2.58", "2.60"]  # as bench/e2e.py's traders
PRICES_LAY = ["2.40", "2.42", "2.44", "2.46", "2.48"]
USERS = 50
FRAMES_PER_TURN = 800  # frames read before the loop runs the sequencer: ~e2e's batch sizes


class EncodingJournal:
    """Encodes each batch's XADD as Journal.append does, and confirms it at once."""

    def __init__(self) -> None:
        self.bytes = 0

    async def last_seq(self) -> int:
        return 0

    async def append(self, batch) -> None:
        self.bytes += sum(map(len, journal.xadd_command(b"backlay:journal", batch)))
        await asyncio.sleep(0)


class NullTransport:
    def __init__(self) -> None:
        self.written = 0

    def write(self, data) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name, default=None):
        return default


class NullLink:
    def __init__(self) -> None:
        self.transport = NullTransport()

    def is_open(self) -> bool:
        return True

    async def drain(self) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass


def frames(count: int, seed: int) -> list[tuple[int, bytes]]:
    """(user index, frame) of resting and crossing places, as e2e's traders send them."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        back = rng.random() < 0.6
        crosses = rng.random() < 0.1
        prices = PRICES_LAY if back == crosses else PRICES_BACK
        out.append((i % USERS, orjson.dumps({
            "op": "place", "market": "bench", "selection": rng.choice("abc"),
            "side": "back" if back else "lay", "price": rng.choice(prices), "size": "2.00",
            "id": i})))
    return out


async def main() -> None:
    settings = Settings(_env_file=None, messages_per_s_max=1e9, message_burst_max=10**9)
    sequencer = Sequencer(Engine(EngineConfig(velocity_orders_max=0)), EncodingJournal())
    metrics = Metrics()
    exchange = Exchange(settings, sequencer, metrics)
    hub = exchange.hub = Hub(exchange)
    sequencer.add_renderer(hub.on_batch)
    sequencer.add_listener(metrics.commands_journaled)
    await sequencer.start()
    await exchange.submit(c.CreateMarket(market="bench", event="bench", name="bench",
                                         selections=(("a", "a"), ("b", "b"), ("c", "c"))))
    await exchange.submit(c.SetMarketStatus(market="bench", status="open"))
    socket = TradingSocket(exchange, hub)
    conns = []
    for i in range(USERS):
        user = f"b{i}"
        await exchange.submit(c.Deposit(user=user, currency="BDT", amount_minor=10**9,
                                        ref=f"seed-{user}"))
        conn = Connection(socket, NullLink())
        conn.session.user, conn.session.roles = user, ("bettor",)
        conn._reader = _Reader(conn)  # authenticated, as Connection does after `auth`
        conn.on_message = conn._reader.on_message
        hub.add(conn.session)
        conns.append(conn)
    work = frames(ARGS.orders, ARGS.seed)
    tune_collector()
    answered = metrics._sent_by_op
    started, cpu_started = time.perf_counter(), time.process_time()
    for k in range(0, len(work), FRAMES_PER_TURN):
        turn = work[k:k + FRAMES_PER_TURN]
        for user, frame in turn:
            conns[user].on_message(frame)
        while answered.get("placed", 0) + answered.get("error", 0) < k + len(turn):
            await asyncio.sleep(0)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    out = sum(conn.link.transport.written for conn in conns)
    print(f"order path bench ({ARGS.root}): {len(work):,} places from {USERS} connections: "
          f"{len(work) / elapsed:,.0f} orders/s, CPU {cpu / len(work) * 1e6:.2f} µs per order; "
          f"{sequencer.batches_written} batches, {answered.get('error', 0)} errors, "
          f"{out / len(work):.0f} reply bytes per order")
    await sequencer.stop()


if __name__ == "__main__":
    uvloop.run(main())

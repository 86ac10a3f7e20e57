"""A shard's fan-out: owner pushes and channels to remote sessions, market data to every gateway.

`EngineHub` is the one-process Hub (gateway/hub.py) with its market data turned outwards: the
owner pushes (`ord`, `fill`, `wallet`), the exposure channel and the feeds go to the remote
sessions of the connections that asked for them, exactly as the Hub sends them in one process;
but no connection subscribes to market data here. Instead, at most once per `conflation_ms`,
the markets changed since the last time are read between batches and each one's state goes out
on the shard's market-data stream, versioned by the shard's seq, and into the images hash a
starting gateway reads. Gateways mirror those states and conflate and fan them out to their
own subscribers (mirror.py). Heartbeats are the gateways' too.

Market data is written through the same writer as the replies, after them (`late`), so a
gateway never sees a market state before the reply to the command that made it.
"""

import asyncio
from functools import partial

import orjson

from ..hub import Hub
from . import calls, wire


class EngineHub(Hub):
    def __init__(self, exchange, writer: wire.Writer, names, shard: int) -> None:
        super().__init__(exchange)
        self.writer = writer
        self.md_stream = names.md(shard)
        self.images = names.md_images(shard)
        self.published_count = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._flush_loop(), name="md-publish"),
                       asyncio.create_task(self._exposure_loop(), name="hub-exposure")]

    async def flush(self) -> None:
        markets = list(self._dirty)
        self._dirty.clear()
        if markets:
            self.publish(*await self.exchange.read(partial(calls.market_states, markets=markets)))

    async def publish_all(self) -> None:
        """Every market's state: a (re)started shard brings every gateway's mirror up to date."""
        self.publish(*await self.exchange.read(
            lambda engine: calls.market_states(engine, list(engine.markets))))

    def publish(self, seq: int, states: dict) -> None:
        for market, state in states.items():
            if state is None:
                continue
            payload = orjson.dumps([market, seq, state])
            self.writer.add(self.md_stream, 0, wire.FRAME, payload)
            self.writer.set_field(self.images, market.encode(), payload)
            self.published_count += 1

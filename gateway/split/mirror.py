"""Gateway side: every market's latest published state, mirrored from the shards.

Each state comes versioned by its shard's seq (the engine's last seq when it was read), from
the shard's market-data stream, its images hash (a starting gateway's first picture), or the
reply to a subscription's read: whichever is newer wins, so the order they arrive in does not
matter. A changed market is marked dirty on the gateway's hub, which conflates and fans it out
to its subscribers (gateway_node.GatewayHub).
"""

import logging

import orjson

from .wire import Entry

log = logging.getLogger(__name__)


class Mirror:
    def __init__(self) -> None:
        self.states: dict[str, tuple[int, dict]] = {}  # market -> (shard seq, state)
        self.on_change = None  # market -> None: the hub marks it dirty
        self.applied = 0

    def state(self, market: str) -> dict | None:
        known = self.states.get(market)
        return None if known is None else known[1]

    def update(self, market: str, seq: int, state: dict) -> bool:
        """Keep `state` if it is newer than what is known; True if it was."""
        known = self.states.get(market)
        if known is not None and known[0] >= seq:
            return False
        self.states[market] = (seq, state)
        self.applied += 1
        if self.on_change is not None:
            self.on_change(market)
        return True

    def apply(self, shard: int, entry: Entry) -> None:
        for _, _, payload in entry.records():
            market, seq, state = orjson.loads(payload)
            self.update(market, seq, state)

    async def load(self, redis, image_keys: list[bytes]) -> None:
        for key in image_keys:
            for payload in (await redis.hgetall(key)).values():
                market, seq, state = orjson.loads(payload)
                self.update(market, seq, state)

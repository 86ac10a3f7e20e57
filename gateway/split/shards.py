"""Which shard owns what: a fixed function of ids, the same in every process.

A market lives on the shard its id hashes to (crc32, stable across processes and versions).
Each shard numbers its commands from its own base (shard k: k * SEQ_SPAN + 1, ...), so journal
seqs, and the order and withdrawal ids the engine derives from them ("o<seq>", "w<seq>"), never
collide between shards, and an id names its shard. A bettor's deposits and withdrawals go to a
home shard (the user id hashed); money reaches other shards by transfers (funding.py).

Shard 0 keeps the one-process names (journal stream, Postgres schema `public`, seqs from 1), so
one shard in the split shape is the very same data as `backlay serve`. The shard count is fixed
for the life of the data: markets do not move between shards (the supervisor refuses to start
with a different count than the data was made with).
"""

import zlib

SEQ_SPAN = 10**12  # commands per shard; 50 shards stay below 2**53 (exact in JavaScript)


class ShardMap:
    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        if not 1 <= count <= 1000:
            raise ValueError(f"shards must be 1..1000, not {count}")
        self.count = count

    def of_market(self, market: str) -> int:
        return zlib.crc32(market.encode()) % self.count if self.count > 1 else 0

    def of_user(self, user: str) -> int:
        """The user's home shard: deposits land and withdrawals leave there."""
        return zlib.crc32(user.encode()) % self.count if self.count > 1 else 0

    def of_seq(self, seq: int) -> int:
        shard = seq // SEQ_SPAN
        return shard if shard < self.count else 0

    def of_id(self, derived_id: str) -> int:
        """The shard of an id the engine derived from a seq ("o123", "w456"); shard 0 for
        anything else, which then answers that it does not know it."""
        digits = derived_id[1:]
        if not digits.isdigit() or len(digits) > 18:
            return 0
        return self.of_seq(int(digits))

    @property
    def all(self) -> range:
        return range(self.count)


def base_seq(shard: int) -> int:
    """The seq the shard's journal starts after."""
    return shard * SEQ_SPAN


def journal_stream(stream: str, shard: int) -> str:
    return stream if shard == 0 else f"{stream}:{shard}"


def schema(shard: int) -> str:
    """The shard's Postgres schema: its read model, snapshots and persisted seq, so two shards
    never write the same row (and could live in different databases)."""
    return "public" if shard == 0 else f"shard_{shard}"

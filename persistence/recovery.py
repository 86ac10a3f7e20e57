"""Restart: newest snapshot + the journal after it, verified; and safe journal trimming.

Replay runs every journaled command through the engine again and compares the events it yields,
encoded, byte for byte with the events journaled the first time (DESIGN.md §3.5). Any difference
means the engine is not deterministic (or the code changed meaning under a live journal), and
continuing would fork history, so recovery stops with DeterminismError.
"""

import asyncio
import gc
import pickle
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson

from engine.codec import encode_event_lists, encode_events

from .journal import Journal, JournaledBatch
from .snapshots import SnapshotStore


class DeterminismError(Exception):
    """Replaying a journaled command produced different events than the journal holds."""


class JournalGap(Exception):
    """The journal lacks seqs that recovery needs (trimmed past the snapshot, or lost)."""


@dataclass
class Recovered:
    engine: object
    last_seq: int  # the engine holds every journaled command up to here
    snapshot_seq: int  # 0: started from an empty engine
    replayed: int  # commands replayed from the journal
    load_s: float = 0.0  # fetching and unpickling the snapshot
    fetch_s: float = 0.0  # ... of which fetching it
    replay_s: float = 0.0  # reading, replaying and verifying the journal after it


def _new_engine():
    from engine.engine import Engine

    return Engine()


# Journal entries read while the snapshot is being fetched: up to 200,000 commands, decoded.
PREFETCH_ENTRIES = 400


async def recover(journal: Journal, snapshot_store: SnapshotStore | None,
                  engine_factory: Callable[[], object] = _new_engine,
                  base_seq: int = 0) -> Recovered:
    """The engine as of the journal's last seq. `base_seq`: the seq the journal starts after
    (a shard of the split shape numbers its commands from its own base, gateway/split/shards.py;
    an empty journal then recovers to base_seq)."""
    # Recovery builds millions of long-lived objects; the cyclic collector would rescan them
    # over and over while they are created (most of a large unpickle's time), so it pauses here.
    collecting = gc.isenabled()
    gc.disable()
    started = time.perf_counter()
    prefetch = None
    try:
        snapshot_seq = await snapshot_store.latest_seq() if snapshot_store is not None else 0
        seq = max(snapshot_seq, base_seq)
        # The snapshot (Postgres) and the start of the journal after it (Redis) are fetched
        # at the same time: both are mostly a wait on another process, and reading and
        # decoding 100,000 commands took 0.25 s, about as long as fetching a 100 MB snapshot.
        batches = journal.read_batches(after_seq=seq)
        prefetch = asyncio.create_task(_take(batches, PREFETCH_ENTRIES))
        blob = await snapshot_store.at(snapshot_seq) if snapshot_seq else None
        fetched = time.perf_counter()
        if snapshot_seq and blob is None:
            raise RuntimeError(f"snapshot {snapshot_seq} vanished while recovery was reading it")
        engine = pickle.loads(blob) if snapshot_seq else engine_factory()
        del blob
        replayed = 0
        loaded = time.perf_counter()
        apply = engine.apply
        prefetched = await prefetch
        async for batch in _chain(prefetched, batches):
            commands = batch.commands
            for i, cmd in enumerate(commands, start=seq + 1):
                if cmd.seq != i:
                    raise JournalGap(f"journal jumps from seq {i - 1} to {cmd.seq} "
                                     f"(snapshot at {snapshot_seq})")
            replayed_events = [apply(cmd) for cmd in commands]
            # one comparison per entry; the failing command is looked for only on a mismatch
            if encode_event_lists(replayed_events, batch.keyed) != batch.events:
                _raise_divergence(commands, replayed_events, batch)
            seq, replayed = commands[-1].seq, replayed + len(commands)
    finally:
        if prefetch is not None and not prefetch.done():
            prefetch.cancel()
            await asyncio.gather(prefetch, return_exceptions=True)
        if collecting:
            # Everything recovery built is still in the youngest generation, so the collector's
            # first pass would scan all of it (about a second for a million-order snapshot).
            # Move it out of the collector's sight first, as collector.tune_collector does
            # for the sequencer; refcounting still frees it.
            gc.freeze()
            gc.enable()
    journal_seq = await journal.last_seq()
    if journal_seq > seq:  # entries after `seq` were trimmed away
        raise JournalGap(f"replay reached seq {seq} but the journal went up to {journal_seq}")
    return Recovered(engine, seq, snapshot_seq, replayed, load_s=loaded - started,
                     fetch_s=fetched - started, replay_s=time.perf_counter() - loaded)


async def _take(batches: AsyncIterator[JournaledBatch], count: int) -> list[JournaledBatch]:
    taken = []
    async for batch in batches:
        taken.append(batch)
        if len(taken) >= count:
            break
    return taken


async def _chain(first: list[JournaledBatch],
                 rest: AsyncIterator[JournaledBatch]) -> AsyncIterator[JournaledBatch]:
    for batch in first:
        yield batch
    async for batch in rest:  # nothing more if the journal ended within the prefetch
        yield batch


def _raise_divergence(commands: list, replayed_events: list, batch: JournaledBatch) -> None:
    journaled_lists = orjson.loads(batch.events)
    for cmd, events, stored in zip(commands, replayed_events, journaled_lists):
        mine, theirs = encode_events(events, batch.keyed), orjson.dumps(stored)
        if mine != theirs:
            raise DeterminismError(
                f"seq {cmd.seq} {type(cmd).__name__}: replay gave {mine[:500]!r}, "
                f"the journal holds {theirs[:500]!r}")
    raise DeterminismError(f"seqs {commands[0].seq}..{commands[-1].seq}: the journal holds "
                           f"{len(journaled_lists)} event lists for {len(commands)} commands")


async def trim_journal(journal: Journal, snapshot_store: SnapshotStore, persisted_seq: int) -> int:
    """Trim only what both a restart (snapshot) and the persister (persisted seq) are done with."""
    safe_seq = min(await snapshot_store.latest_seq(), persisted_seq)
    if safe_seq <= 0:
        return 0
    return await journal.trim_below(safe_seq)

"""The sequencer: stamps, applies, journals a batch in one write, and only then acknowledges and
fans out; a failed journal write stops it cold."""

import asyncio
import dataclasses
import time

import pytest
import redis.asyncio as aioredis

from engine import commands as c
from engine import events as ev
from engine.engine import Engine
from persistence.embedded import EmbeddedRedis
from persistence.journal import Journal
from persistence.sequencer import Sequencer, SequencerBusy, SequencerStopped


class OrderedJournal(Journal):
    """A real journal that notes, in one timeline, when Redis confirmed each batch."""

    def __init__(self, redis, stream, timeline):
        super().__init__(redis, stream)
        self.timeline = timeline

    async def append(self, batch):
        await super().append(batch)
        self.timeline.append(("journaled", [seq for seq, _, _ in batch]))


def test_submitters_get_their_events_only_after_redis_confirmed_the_batch(
        redis_url, stream, run, trading_commands):
    timeline = []

    async def scenario():
        journal = OrderedJournal(aioredis.from_url(redis_url), stream, timeline)
        sequencer = Sequencer(Engine(), journal)
        sequencer.add_listener(lambda batch: timeline.append(("fanout", [s for s, _, _ in batch])))
        await sequencer.start()
        futures = [sequencer.submit(cmd) for cmd in trading_commands[:8]]
        for i, future in enumerate(futures):
            future.add_done_callback(lambda f, seq=i + 1: timeline.append(("ack", seq)))
        results = await asyncio.gather(*futures)
        await sequencer.stop()
        read = [r async for r in journal.read()]
        await journal.redis.aclose()
        return results, read

    results, read = run(scenario())
    assert [events for _, _, events in read] == results
    journaled_at = {seq: i for i, (what, seqs) in enumerate(timeline) if what == "journaled"
                    for seq in seqs}
    for i, entry in enumerate(timeline):
        if entry[0] == "ack":
            assert journaled_at[entry[1]] < i
        if entry[0] == "fanout":
            assert all(journaled_at[seq] < i for seq in entry[1])


def small_deposits(count: int) -> list[c.Deposit]:
    """`count` unstamped 1.00 deposits to users u0.., each with its own ref."""
    return [c.Deposit(user=f"u{i}", currency="BDT", amount_minor=100, ref=f"d{i}")
            for i in range(count)]


def test_a_batch_write_leaves_for_redis_before_the_next_batch_is_applied(
        redis_url, stream, run):
    """Group commit overlaps the engine with Redis's fsync only if a batch's XADD is on the
    wire while the next batch is applied. The engine below, on the first command of the
    second batch, blocks (as a long apply does: no event loop turn) until a second client
    sees the first entry in Redis. If the XADD only left at the sequencer's next wait, Redis
    would never see it in time."""
    import redis as sync_redis

    seen_while_applying = []

    class WatchingEngine(Engine):
        def apply(self, cmd):
            if cmd.seq == 5:  # first command of the second batch (batch_max=4)
                watcher = sync_redis.Redis.from_url(redis_url)
                try:
                    for _ in range(500):  # up to 5 s: never reached when the XADD is out
                        if watcher.xlen(stream):
                            break
                        time.sleep(0.01)
                    seen_while_applying.append(watcher.xlen(stream))
                finally:
                    watcher.close()
            return super().apply(cmd)

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        sequencer = Sequencer(WatchingEngine(), journal, batch_max=4)
        await sequencer.start()
        deposits = small_deposits(8)
        await asyncio.gather(*(sequencer.submit(d) for d in deposits))
        await sequencer.stop()
        await journal.redis.aclose()

    run(scenario())
    assert seen_while_applying == [1]


def test_concurrent_submits_share_one_journal_write_per_batch(redis_url, stream, run):
    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        sequencer = Sequencer(Engine(), journal, batch_max=64)
        await sequencer.start()
        deposits = small_deposits(200)
        results = await asyncio.gather(*(sequencer.submit(d) for d in deposits))
        await sequencer.stop()
        entries = await journal.redis.xlen(stream)
        seqs = [seq async for seq, _, _ in journal.read()]
        await journal.redis.aclose()
        return results, sequencer, entries, seqs

    results, sequencer, entries, seqs = run(scenario())
    assert seqs == list(range(1, 201))  # gap-free, in submission order
    assert [r[0].seq for r in results] == seqs
    assert entries == sequencer.batches_written
    assert sequencer.batches_written <= 200 // 64 + 2


def test_commands_are_stamped_with_the_next_seq_and_a_time_that_never_runs_backwards(
        redis_url, stream, run):
    clock = iter([5_000, 4_000, 6_000])

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        sequencer = Sequencer(Engine(), journal, clock_ms=lambda: next(clock), batch_max=1)
        await sequencer.start()
        for i in range(3):
            await sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=1,
                                             ref=f"d{i}", seq=99, ts=99))
        await sequencer.stop()
        stamped = [(cmd.seq, cmd.ts) async for _, cmd, _ in journal.read()]
        await journal.redis.aclose()
        return stamped

    assert run(scenario()) == [(1, 5_000), (2, 5_000), (3, 6_000)]


def test_a_journal_write_refused_by_redis_fails_every_submitter_and_fans_out_nothing(
        redis_url, stream, run):
    fanned_out = []

    async def scenario():
        redis = aioredis.from_url(redis_url)
        sequencer = Sequencer(Engine(), Journal(redis, stream))
        sequencer.add_listener(fanned_out.append)
        await sequencer.start()
        await sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=1, ref="a"))
        # A second writer appears (split brain): the stream is now ahead of this sequencer.
        await redis.xadd(stream, {"c0": b"{}"}, id="1000-0")
        doomed = [sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=1,
                                             ref=f"b{i}")) for i in range(3)]
        outcomes = await asyncio.gather(*doomed, return_exceptions=True)
        with pytest.raises(SequencerStopped):
            sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=1, ref="late"))
        await sequencer.stop()
        await redis.aclose()
        return sequencer, outcomes

    sequencer, outcomes = run(scenario())
    assert all(isinstance(o, SequencerStopped) for o in outcomes)
    assert not sequencer.healthy and sequencer.failure is not None
    assert [[seq for seq, _, _ in batch] for batch in fanned_out] == [[1]]


def test_a_journal_write_to_a_stopped_redis_fails_the_submitter_and_stops_the_sequencer(
        tmp_path, stream, run):
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    fanned_out = []

    async def scenario():
        redis = aioredis.from_url(server.url)
        sequencer = Sequencer(Engine(), Journal(redis, stream), journal_write_timeout_s=2)
        sequencer.add_listener(fanned_out.append)
        await sequencer.start()
        server.stop()
        with pytest.raises(SequencerStopped):
            await sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=1, ref="a"))
        await sequencer.stop()
        await redis.aclose()
        return sequencer

    try:
        sequencer = run(scenario())
    finally:
        server.stop()
    assert not sequencer.healthy
    assert fanned_out == []


def test_an_engine_exception_acknowledges_the_commands_before_it_and_stops(
        redis_url, stream, run):
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Unknown(c.Command):
        pass

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        sequencer = Sequencer(Engine(), journal)
        await sequencer.start()
        good = sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=1, ref="a"))
        bad = sequencer.submit(Unknown())
        after = sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=1, ref="b"))
        outcomes = await asyncio.gather(good, bad, after, return_exceptions=True)
        await sequencer.stop()
        seqs = [seq async for seq, _, _ in journal.read()]
        await journal.redis.aclose()
        return sequencer, outcomes, seqs

    sequencer, outcomes, seqs = run(scenario())
    assert isinstance(outcomes[0], list)
    assert all(isinstance(o, SequencerStopped) for o in outcomes[1:])
    assert seqs == [1]
    assert not sequencer.healthy


def test_a_full_inbox_refuses_work_at_once(redis_url, stream, run):
    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        sequencer = Sequencer(Engine(), journal, inbox_max=2)
        await sequencer.start()
        accepted = [sequencer.submit(c.Tick()) for _ in range(2)]
        with pytest.raises(SequencerBusy):
            sequencer.submit(c.Tick())
        await asyncio.gather(*accepted)
        await sequencer.stop()
        await journal.redis.aclose()

    run(scenario())


def test_queries_see_acknowledged_state_and_are_not_journaled(redis_url, stream, run):
    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        sequencer = Sequencer(Engine(), journal)
        await sequencer.start()
        deposit = sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=700,
                                             ref="a"))
        balance = await sequencer.query(lambda engine: engine.wallet("u1", "BDT").balance)
        await deposit
        seq, blob = await sequencer.snapshot()
        await sequencer.stop()
        last = await journal.last_seq()
        await journal.redis.aclose()
        return balance, seq, blob, last

    balance, seq, blob, last = run(scenario())
    assert balance == 700
    assert seq == last == 1 and blob


def test_a_sequencer_refuses_to_start_behind_its_journal(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:3])

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        await journal.append(records)
        try:
            with pytest.raises(RuntimeError):
                await Sequencer(Engine(), journal).start()
        finally:
            await journal.redis.aclose()

    run(scenario())


def test_a_tick_releases_a_delayed_in_play_order_when_its_bet_delay_is_over(
        redis_url, stream, run):
    fanned_out = []

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        sequencer = Sequencer(Engine(), journal)
        sequencer.add_listener(lambda batch: fanned_out.extend(
            e for _, _, events in batch for e in events))
        await sequencer.start()
        for cmd in (c.CreateMarket(market="m1", event="e", name="n",
                                   selections=(("s1", "A"), ("s2", "B"))),
                    c.SetMarketStatus(market="m1", status="open", in_play=True,
                                      bet_delay_ms=50),
                    c.Deposit(user="u1", currency="BDT", amount_minor=10_000, ref="d")):
            await sequencer.submit(cmd)
        placed = await sequencer.submit(c.PlaceOrder(
            user="u1", market="m1", selection="s1", side="back", price=200, size_minor=100,
            persistence="persist"))
        while not any(isinstance(e, ev.OrderReleased) for e in fanned_out):
            await asyncio.sleep(0.01)
        await sequencer.stop()
        ticks = [cmd async for _, cmd, _ in journal.read() if isinstance(cmd, c.Tick)]
        await journal.redis.aclose()
        return placed, ticks

    placed, ticks = run(scenario(), timeout_s=5)
    order = next(e for e in placed if isinstance(e, ev.OrderPlaced))
    assert order.release_ts > 0
    assert len(ticks) == 1 and ticks[0].ts >= order.release_ts


def test_a_rendered_batch_is_released_only_after_its_journal_write(redis_url, stream, run):
    """Renderers see the state right after their batch is applied; what they return runs only
    once Redis confirmed the write, and never for a batch whose write failed."""
    rendered, released = [], []

    async def scenario():
        redis = aioredis.from_url(redis_url)
        sequencer = Sequencer(Engine(), Journal(redis, stream))

        def renderer(batch):
            seqs = [seq for seq, _, _ in batch]
            balance = sequencer.engine.wallets[("u1", "BDT")].balance
            rendered.append((seqs, balance))
            return lambda: released.append(seqs)

        sequencer.add_renderer(renderer)
        await sequencer.start()
        await sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=7, ref="a"))
        await redis.xadd(stream, {"c0": b"{}"}, id="1000-0")  # the stream moves ahead of us
        doomed = sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=5, ref="b"))
        outcome = await asyncio.gather(doomed, return_exceptions=True)
        await sequencer.stop()
        await redis.aclose()
        return outcome

    outcome = run(scenario())
    assert isinstance(outcome[0], SequencerStopped)
    assert rendered == [([1], 7), ([2], 12)]  # rendered from applied state, batch by batch
    assert released == [[1]]  # the failed batch's pushes never left


def test_a_view_renders_the_state_right_after_its_own_command(redis_url, stream, run):
    async def scenario():
        redis = aioredis.from_url(redis_url)
        sequencer = Sequencer(Engine(), Journal(redis, stream))
        await sequencer.start()
        balance = lambda engine, events: engine.wallets[("u1", "BDT")].balance  # noqa: E731
        futures = [sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=10,
                                              ref=f"r{i}"), view=balance) for i in range(5)]
        results = await asyncio.gather(*futures)
        await sequencer.stop()
        await redis.aclose()
        return results

    assert run(scenario()) == [10, 20, 30, 40, 50]


def test_deliver_gets_every_outcome_of_a_batch_before_its_fan_out(redis_url, stream, run):
    """Frame order: replies handed to `deliver` go out before the pushes of their batch, even
    for a command whose state a later command of the same batch changes again."""
    timeline = []

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        sequencer = Sequencer(Engine(), journal)
        sequencer.add_renderer(lambda records: lambda: timeline.append(
            ("pushed", [seq for seq, _, _ in records])))
        await sequencer.start()
        futures = [sequencer.submit(
            c.Deposit(user="u1", currency="BDT", amount_minor=1, ref=f"d{i}"),
            view=lambda engine, events: engine.wallet("u1", "BDT").balance,
            deliver=lambda ok, value, i=i: timeline.append(("reply", i, ok, value)))
            for i in range(5)]
        await asyncio.gather(*futures)
        await sequencer.stop()
        await journal.redis.aclose()

    run(scenario())
    replies = [entry for entry in timeline if entry[0] == "reply"]
    # each reply shows the state its own command left, not the batch's end
    assert replies == [("reply", i, True, i + 1) for i in range(5)]
    for entry in timeline:
        if entry[0] == "pushed":
            replied = {timeline.index(r) for r in replies if r[1] + 1 in entry[1]}
            assert all(i < timeline.index(entry) for i in replied)


def test_a_query_is_never_delivered_after_a_push_of_a_later_state(redis_url, stream, run):
    timeline = []

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        engine = Engine()
        sequencer = Sequencer(engine, journal)

        def render(records):
            balance = engine.wallet("u1", "BDT").balance  # the state the push will show
            return lambda: timeline.append(("pushed", balance))

        sequencer.add_renderer(render)
        await sequencer.start()
        for i in range(5):
            query = sequencer.query(lambda engine: engine.wallet("u1", "BDT").balance,
                                    deliver=lambda ok, value: timeline.append(("read", value)))
            later = sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=5,
                                               ref=f"a{i}"))
            await asyncio.gather(query, later)
        await sequencer.stop()
        await journal.redis.aclose()

    run(scenario())
    assert len(timeline) == 10
    for i, (what, value) in enumerate(timeline):
        if what == "read":
            assert all(v <= value for w, v in timeline[:i] if w == "pushed"), timeline


def test_a_group_prepares_each_step_against_the_state_it_meets(redis_url, stream, run):
    """submit_group: steps applied back to back; a step that prepare refuses is never stamped or
    journaled, and its exception is its outcome."""

    def deposit_if_below(limit_minor: int, ref: str):
        def prepare(engine):
            if engine.wallet("u1", "BDT").balance >= limit_minor:
                return ValueError(f"{ref}: balance already {limit_minor}")
            return c.Deposit(user="u1", currency="BDT", amount_minor=10, ref=ref)
        return prepare

    def balance(engine, events):
        return engine.wallet("u1", "BDT").balance

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        sequencer = Sequencer(Engine(), journal)
        await sequencer.start()
        delivered = []
        outcomes = await sequencer.submit_group(
            [(deposit_if_below(10, "a"), balance), (deposit_if_below(10, "b"), balance),
             (deposit_if_below(30, "c"), balance)],
            deliver=lambda ok, value: delivered.append((ok, value)))
        refused_all = await sequencer.submit_group([(deposit_if_below(0, "d"), balance)])
        after = await sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=1,
                                                 ref="e"))
        await sequencer.stop()
        read = [r async for r in journal.read()]
        await journal.redis.aclose()
        return outcomes, delivered, refused_all, after, read

    outcomes, delivered, refused_all, after, read = run(scenario())
    assert [ok for ok, _ in outcomes] == [True, False, True]
    assert outcomes[0][1] == 10 and outcomes[2][1] == 20
    assert isinstance(outcomes[1][1], ValueError)
    assert delivered == [(True, outcomes)]
    assert len(refused_all) == 1 and not refused_all[0][0]
    assert [(seq, cmd.ref) for seq, cmd, _ in read] == [(1, "a"), (2, "c"), (3, "e")]
    assert after[0].seq == 3


def test_submit_now_answers_only_through_deliver_after_the_write(redis_url, stream, run):
    """The WebSocket order path: no future, the outcome arrives at deliver once journaled."""
    timeline = []

    class Noting(Journal):
        async def append(self, batch):
            await super().append(batch)
            timeline.append(("journaled", [seq for seq, _, _ in batch]))

    async def scenario():
        journal = Noting(aioredis.from_url(redis_url), stream)
        sequencer = Sequencer(Engine(), journal)
        await sequencer.start()
        done = asyncio.get_running_loop().create_future()

        def deliver(ok, value):
            timeline.append(("delivered", ok, value))
            if sum(e[0] == "delivered" for e in timeline) == 2:
                done.set_result(None)

        for ref in ("a", "b"):
            assert sequencer.submit_now(
                c.Deposit(user="u1", currency="BDT", amount_minor=3, ref=ref),
                lambda engine, events: engine.wallet("u1", "BDT").balance, deliver) is None
        await asyncio.wait_for(done, 5)
        await sequencer.stop()
        await journal.redis.aclose()

    run(scenario())
    delivered = [entry for entry in timeline if entry[0] == "delivered"]
    assert delivered == [("delivered", True, 3), ("delivered", True, 6)]
    journaled = [seq for entry in timeline if entry[0] == "journaled" for seq in entry[1]]
    for entry in delivered:
        assert timeline.index(entry) > min(i for i, e in enumerate(timeline)
                                           if e[0] == "journaled")
    assert journaled == [1, 2]


def test_submit_now_is_told_when_its_write_fails(redis_url, stream, run):
    async def scenario():
        redis = aioredis.from_url(redis_url)
        sequencer = Sequencer(Engine(), Journal(redis, stream))
        await sequencer.start()
        await sequencer.submit(c.Deposit(user="u1", currency="BDT", amount_minor=1, ref="a"))
        await redis.xadd(stream, {"c0": b"{}"}, id="1000-0")  # a second writer got ahead
        outcomes = []
        done = asyncio.get_running_loop().create_future()

        def deliver(ok, value):
            outcomes.append((ok, value))
            if len(outcomes) == 3:
                done.set_result(None)

        for i in range(3):
            sequencer.submit_now(c.Deposit(user="u1", currency="BDT", amount_minor=1,
                                           ref=f"b{i}"), None, deliver)
        await asyncio.wait_for(done, 5)
        await sequencer.stop()
        await redis.aclose()
        return outcomes

    outcomes = run(scenario())
    assert [ok for ok, _ in outcomes] == [False] * 3
    assert all(isinstance(value, SequencerStopped) for _, value in outcomes)

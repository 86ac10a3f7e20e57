"""The wire between gateways and shards (gateway/split/wire.py, calls.py, shards.py): records
framed and read back as they were, entries in order with market data after replies, lost and
repeated entries told apart, and only listed calls ever named."""

import asyncio
from functools import partial

import orjson
import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection

from engine import commands as c
from gateway import http
from gateway.split import calls, scatter, wire
from gateway.split.shards import SEQ_SPAN, ShardMap, base_seq


def test_records_come_back_as_they_were_packed():
    records = [(1, wire.FRAME, b'{"op":"ord"}'), (2**40, wire.REPLY, b""),
               (7, wire.RESULT, bytes(range(256)) * 300)]
    assert list(wire.unpack(wire.pack(records))) == records


def _entry(sender: str, epoch: int, n: int) -> wire.Entry:
    return wire.Entry({b"s": sender.encode(), b"e": b"%d" % epoch, b"n": b"%d" % n, b"b": b""})


def test_a_sequence_tells_the_next_entry_from_a_repeat_a_gap_and_a_restart():
    seq = wire.Sequence()
    assert seq.check(_entry("s0", 3, 5)) == wire.NEW  # first seen: wherever it is
    assert seq.check(_entry("s0", 3, 6)) == wire.OK
    assert seq.check(_entry("s0", 3, 6)) == wire.REPEAT  # a retried write stored twice
    assert seq.check(_entry("s0", 3, 8)) == wire.GAP
    assert seq.check(_entry("s0", 4, 1)) == wire.NEW  # restarted
    assert seq.check(_entry("s0", 3, 9)) == wire.REPEAT  # the old epoch is over
    assert seq.check(_entry("g1", 1, 1)) == wire.NEW  # senders are counted apart


def test_a_writer_keeps_the_order_records_were_added_in_and_writes_market_data_last(
        redis_url, stream, run):
    async def scenario():
        redis = aioredis.from_url(redis_url)
        out, md = f"{stream}:out".encode(), f"{stream}:md".encode()
        failures = []
        writer = wire.Writer(redis, "s0", 1, failures.append, late=frozenset({md}))
        writer.start()
        writer.add(md, 0, wire.FRAME, b"state-1")  # added first, written last
        for i in range(5):
            writer.add(out, i, wire.FRAME, b"%d" % i)
        writer.records(out)[-1] = (4, wire.REPLY, b"4")  # a frame that turned out a reply
        writer.set_field(f"{stream}:img".encode(), b"m1", b"state-1")
        await writer.stop()
        assert not failures
        (_, out_fields), = await redis.xrange(out)
        (_, md_fields), = await redis.xrange(md)
        assert list(wire.Entry(md_fields).records()) == [(0, wire.FRAME, b"state-1")]
        entry = wire.Entry(out_fields)
        assert (entry.sender, entry.epoch, entry.n) == ("s0", 1, 1)
        assert list(entry.records()) == [(i, wire.FRAME, b"%d" % i) for i in range(4)] + [
            (4, wire.REPLY, b"4")]
        assert await redis.hget(f"{stream}:img", "m1") == b"state-1"
        # one round trip writes the market data last, whatever was added first
        ordered = writer.entries({md: [(0, wire.FRAME, b"s")], out: [(1, wire.FRAME, b"r")]})
        assert [stream for stream, _ in ordered] == [out, md]
        writer2 = wire.Writer(redis, "s0", 1, failures.append)
        writer2.start()
        writer2.add(out, 9, wire.FRAME, b"x")
        await asyncio.sleep(0.05)
        writer2.add(out, 9, wire.FRAME, b"y")
        await writer2.stop()
        ns = [wire.Entry(f).n for _, f in await redis.xrange(out)]
        assert ns == [1, 1, 2]  # a second writer counts its own entries
        await redis.aclose()
    run(scenario())


def test_a_writers_hand_encoded_xadd_is_what_redis_py_sent_and_stores_and_trims_the_same(
        redis_url, stream, run):
    mine, theirs = f"{stream}:mine".encode(), f"{stream}:theirs".encode()
    maxlen = 150  # with MAXLEN ~ Redis trims whole nodes (100 entries or 4 KB each)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        failures = []
        writer = wire.Writer(redis, "g7", 12, failures.append, maxlen=maxlen)
        # byte for byte the command redis-py's xadd packed
        fields = {b"s": b"g7", b"e": b"12", b"n": b"3", b"b": wire.pack([(5, wire.REPLY, b"x")])}
        packed = b"".join(Connection().pack_command(
            "XADD", mine, "MAXLEN", "~", str(maxlen), "*", *[v for kv in fields.items()
                                                           for v in kv]))
        assert b"".join(writer.xadd_command(mine, fields)) == packed
        writer.start()
        for i in range(350):  # one entry each: written before the next is added
            writer.add(mine, i, wire.FRAME, b"%d" % i * (i % 7))
            while writer.entries_written <= i and not failures:
                await asyncio.sleep(0)
            await redis.xadd(theirs, {b"s": b"g7", b"e": b"12", b"n": b"%d" % (i + 1),
                                      b"b": wire.pack([(i, wire.FRAME, b"%d" % i * (i % 7))])},
                             maxlen=maxlen, approximate=True)
        await writer.stop()
        stored = [[fields for _, fields in await redis.xrange(key)] for key in (mine, theirs)]
        await redis.aclose()
        return failures, stored

    failures, stored = run(scenario())
    assert not failures
    every = [{b"s": b"g7", b"e": b"12", b"n": b"%d" % (i + 1),
              b"b": wire.pack([(i, wire.FRAME, b"%d" % i * (i % 7))])} for i in range(350)]
    for entries in stored:  # the newest entries, at least maxlen of them (where nodes end
        # depends on the ids' bytes too, so the two streams may keep a node more or less)
        assert maxlen <= len(entries) < 350
        assert entries == every[-len(entries):]


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_readers_hand_encoded_xread_gives_what_redis_py_gave(redis_url, stream, run, protocol):
    async def scenario():
        redis = aioredis.from_url(redis_url, protocol=protocol)
        a, b, empty = (f"{stream}:{name}".encode() for name in ("a", "b", "empty"))
        for i in range(7):
            await redis.xadd(a, {b"s": b"s0", b"n": b"%d" % i, b"b": bytes(range(i * 40))})
        await redis.xadd(b, {b"s": b"g1", b"b": b""})
        cursors = {a: b"0-0", b: b"0-0", empty: b"0-0"}
        reader = wire.Reader(redis)
        mine = [await reader.read(cursors, count, 1) for count in (1, 5, 100)]
        theirs = [await redis.xread(cursors, count=count, block=1) for count in (1, 5, 100)]
        after = {a: mine[2][0][1][-1][0], empty: b"0-0"}
        nothing = await reader.read(after, 10, 1)  # nothing new: no streams
        await redis.aclose()
        return mine, theirs, nothing

    mine, theirs, nothing = run(scenario())
    if protocol == 3:  # redis-py's RESP3 shape, {stream: [entries]}: the readers take RESP2's
        theirs = [[(s, entries) for s, (entries,) in reply.items()] for reply in theirs]
    theirs = [[(s, entries) for s, entries in reply] for reply in theirs]
    assert mine == theirs
    assert [len(entries) for _, entries in mine[1]] == [5, 1]
    assert nothing == []


def test_an_error_reply_to_a_write_fails_the_writer_and_nothing_is_left_unread(
        redis_url, stream, run):
    async def scenario():
        redis = aioredis.from_url(redis_url)
        not_a_stream, out = f"{stream}:str".encode(), f"{stream}:out".encode()
        await redis.set(not_a_stream, b"x")
        failures = []
        writer = wire.Writer(redis, "s1", 1, failures.append)
        writer.start()
        writer.add(not_a_stream, 1, wire.FRAME, b"a")  # WRONGTYPE
        writer.add(out, 2, wire.FRAME, b"b")  # its reply is read after the error's
        await writer.stop()
        # the kept connection is in step: the next command's reply is its own
        answers = await writer._connection.execute([b"*1\r\n$4\r\nPING\r\n"])
        stored = await redis.xlen(out)
        await redis.aclose()
        return failures, answers, stored

    failures, answers, stored = run(scenario())
    assert len(failures) == 1 and isinstance(failures[0], aioredis.ResponseError)
    assert "WRONGTYPE" in str(failures[0])
    assert answers in ([b"PONG"], ["PONG"], [True])
    assert stored == 1


def test_shards_own_markets_by_hash_and_ids_by_the_seq_in_them():
    shards = ShardMap(3)
    owners = {shards.of_market(f"m{i}") for i in range(100)}
    assert owners == {0, 1, 2}  # spread over every shard
    assert all(ShardMap(3).of_market(f"m{i}") == shards.of_market(f"m{i}") for i in range(100))
    assert shards.of_id(f"o{base_seq(2) + 17}") == 2
    assert shards.of_id(f"w{base_seq(1) + 1}") == 1
    assert shards.of_id("o17") == 0
    assert shards.of_id(f"o{5 * SEQ_SPAN}") == 0  # no such shard: shard 0 says it is unknown
    assert shards.of_id("not-an-id") == 0
    assert ShardMap(1).of_market("anything") == 0


def test_commands_go_to_the_shard_that_owns_what_they_touch():
    shards = ShardMap(4)
    market = "m-route"
    assert calls.command_shard(shards, c.PlaceOrder(
        user="u", market=market, selection="s", side="back", price=200,
        size_minor=100)) == shards.of_market(market)
    order = f"o{base_seq(3) + 5}"
    assert calls.command_shard(shards, c.CancelOrder(user="u", order=order)) == 3
    assert calls.command_shard(shards, c.Deposit(user="bob", currency="BDT", amount_minor=1,
                                                 ref="r")) == shards.of_user("bob")
    assert calls.command_shard(shards, c.ApproveWithdrawal(
        withdrawal=f"w{base_seq(2) + 9}")) == 2


def test_only_listed_functions_can_be_called_from_a_gateway():
    assert calls.named(partial(http.market_detail, market_id="m1")) == (
        "market_detail", {"market_id": "m1"})
    with pytest.raises(calls.CallError):
        calls.named(lambda engine: engine.markets)
    with pytest.raises(calls.CallError):
        calls.named(partial(http.market_detail, "m1"))  # positional: not how a call is named


def test_an_error_comes_back_as_the_same_class_code_and_status():
    outcome = calls.encode_outcome(False, http.HttpError("UNKNOWN_USER", "no user 'x'", 404))
    with pytest.raises(http.HttpError) as raised:
        calls.decode_outcome(outcome)
    assert (raised.value.code, raised.value.message, raised.value.status) == (
        "UNKNOWN_USER", "no user 'x'", 404)
    assert calls.decode_outcome(calls.encode_outcome(True, {"a": [1, "2"]})) == {"a": [1, "2"]}


def test_a_scattered_reply_goes_out_before_what_each_shard_said_after_its_part_only():
    """A push a shard sent after its part of a scattered request waits for the merged reply;
    one a shard sent before its part (an earlier state) goes at once, whatever waits on the
    other shard."""
    sent = []
    gathering = scatter.Gathering()
    markers = [scatter.new_marker(), scatter.new_marker()]
    gathering.scatters.append(scatter.Scatter("w1", list(zip(markers, [0, 1])),
                                              scatter.merge_wallet))

    def part(marker: str, held: str) -> bytes:
        return orjson.dumps({"id": marker, "op": "wallet", "wallets": [
            {"currency": "BDT", "balance": "5.00", "held": held, "available": "0.00"}]})

    def deliver(shard, kind, payload) -> None:
        sent.append((shard, orjson.loads(payload)))

    def frame(shard: int, kind: int, payload: bytes) -> None:
        if not gathering.on_frame(shard, kind, payload, deliver):
            deliver(shard, kind, payload)

    frame(0, wire.REPLY, part(markers[0], "1.00"))
    frame(0, wire.FRAME, b'{"op":"ord","n":1}')  # after shard 0's part: waits
    frame(1, wire.FRAME, b'{"op":"ord","n":2}')  # before shard 1's part: goes now
    frame(1, wire.REPLY, part(markers[1], "2.00"))
    frame(1, wire.FRAME, b'{"op":"ord","n":3}')  # nothing waits any more
    assert [(shard, f.get("n", f.get("id"))) for shard, f in sent] == [
        (1, 2), (None, "w1"), (0, 1), (1, 3)]
    assert sent[1][1]["held"] == "3.00" and sent[1][1]["balance"] == "10.00"
    assert gathering.idle

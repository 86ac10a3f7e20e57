"""Replay determinism: the same command log yields the same events, byte for byte, and the same
state; an engine pickled mid-session continues exactly like the original."""

import dataclasses
import pickle
from pathlib import Path

import orjson
import pytest

from engine import commands as c
from engine import events as e
from engine.codec import decode_command, decode_events, encode_command, encode_events
from engine.engine import HOUSE, Engine
from engine.market import Market
from engine.rejections import InvariantBroken
from engine.wallet import Wallet

from tests.engine_helpers import NO_VELOCITY, Driver, risk_fingerprint, state_fingerprint


def scripted_session() -> Driver:
    """A session touching every kind of command: matching, cancels, replaces, refs, in-play
    delays, FOK, withdrawals, rejections, dead-heat settlement, a pool and a void."""
    d = Driver()
    for i, u in enumerate(("a", "b", "c", "d")):
        d.deposit(u, 40_000 + 777 * i, ref=f"pay-{u}")
    d.deposit("a", 40_000, ref="pay-a")  # repeated
    d.create_market("m1", ("s1", "s2", "s3"))
    d.create_market("m2", ("x", "y"))
    d.create_market("p1", ("s1", "s2"), type=c.POOL)
    d.lay("a", 250, 1000)
    d.lay("b", 250, 700, ref="r1")
    d.lay("b", 250, 700, ref="r1")  # PlaceRepeated
    d.lay("b", 260, 700, ref="r1")  # DUPLICATE_REF
    d.back("c", 240, 1200)  # sweeps a, part of b
    d.back("d", 202, 333, selection="s2")
    d.lay("a", 202, 500, selection="s2")
    d.cancel("a", "o999")  # UNKNOWN_ORDER
    oid = d.next_order_id
    d.back("c", 300, 500, selection="s3", persistence=c.PERSIST)
    d(c.ReplaceOrder, user="c", order=oid, price=305)
    d.lay(HOUSE, 320, 5000, selection="s3", persistence=c.PERSIST)
    d.back("d", 300, 5000, selection="s3", tif=c.FOK, min_fill_minor=100)
    d.back("a", 200, 1_000_000)  # INSUFFICIENT_FUNDS
    d(c.RequestWithdrawal, user="d", currency="BDT", amount_minor=1000)
    wid = f"w{d.seq}"
    d.back("a", 180, 400, market="m2", selection="x")
    d.advance(1000)
    d.status("m2", in_play=True, bet_delay_ms=5000)
    d.lay("b", 180, 400, market="m2", selection="x", persistence=c.PERSIST)
    d.back("c", 190, 300, market="m2", selection="y", persistence=c.PERSIST)
    d.advance(3000)
    d.tick()
    d.advance(2500)
    d.tick()  # releases both
    d.lay("d", 190, 100, market="m2", selection="y")
    d.status("m2", "suspended")  # cancels the delayed lay
    d(c.ApproveWithdrawal, withdrawal=wid)
    d.back("a", 200, 1000, market="p1", selection="s1")
    d.back("b", 200, 1500, market="p1", selection="s1")
    d.back("c", 200, 999, market="p1", selection="s2")
    d(c.CancelAll, user="c")
    d.settle("m1", ("s1", "s2"), dead_heat=(("s1", 1, 3), ("s2", 2, 3)))
    d.settle("p1", ("s1",))
    d(c.VoidMarket, market="m2")
    d.settle("m1", ("s1",))  # rejected: already settled
    return d


def replay(log: list[c.Command]) -> tuple[Engine, list]:
    eng = Engine(NO_VELOCITY)
    events = []
    for cmd in log:
        events.append(eng.apply(cmd))
        eng.validate()
    return eng, events


@pytest.fixture(scope="module")
def session() -> Driver:
    return scripted_session()


def test_the_scripted_session_exercises_rejections_and_money(session):
    kinds = {type(ev) for events in session.event_log for ev in events}
    assert {e.CommandRejected, e.PlaceRepeated, e.DepositRepeated, e.BetMatched,
            e.OrderReplaced, e.OrderReleased, e.OrderLapsed, e.OrderCancelled, e.MoneyMoved,
            e.WithdrawalApproved, e.MarketSettled, e.MarketVoided} <= kinds


def test_replaying_the_log_yields_equal_events(session):
    _, events = replay(session.log)
    assert events == session.event_log


def test_replaying_the_log_yields_identical_event_bytes(session):
    _, events = replay(session.log)
    for original, replayed in zip(session.event_log, events, strict=True):
        assert encode_events(replayed) == encode_events(original)


def test_replaying_the_log_yields_the_same_state(session):
    eng, _ = replay(session.log)
    assert state_fingerprint(eng) == state_fingerprint(session.eng)
    assert (eng.last_seq, eng.last_ts) == (session.eng.last_seq, session.eng.last_ts)


def test_commands_and_events_survive_the_codec(session):
    decoded = [decode_command(encode_command(cmd)) for cmd in session.log]
    assert decoded == session.log
    for events in session.event_log:
        assert decode_events(encode_events(events)) == events
    eng, events = replay(decoded)
    assert events == session.event_log
    assert state_fingerprint(eng) == state_fingerprint(session.eng)


def test_records_are_positional_arrays_in_field_order_and_keyed_ones_still_decode(session):
    cmd = session.log[-1]
    record = orjson.loads(encode_command(cmd))
    assert record == [type(cmd).__name__, *orjson.loads(orjson.dumps(
        [getattr(cmd, f.name) for f in dataclasses.fields(cmd)]))]
    for events in session.event_log:
        keyed = encode_events(events, keyed=True)
        assert decode_events(keyed) == events
        assert all(r["t"] == type(e).__name__ for r, e in zip(orjson.loads(keyed), events))
    positional = sum(len(encode_events(events)) for events in session.event_log)
    keyed = sum(len(encode_events(events, keyed=True)) for events in session.event_log)
    assert positional < keyed * 0.7  # field names are most of a keyed record


def test_records_journaled_before_a_field_was_added_decode_and_re_encode_byte_for_byte():
    """CreateMarket and MarketCreated gained `start_ts` (codec.ADDED_FIELDS): an entry written
    before has no such field, decodes with the default and encodes to the very same bytes, in
    both record forms, so its replay still verifies; a value other than the default is kept."""
    old_command = (b'["CreateMarket",5,1700000000000,"m1","e1","Match Odds",[["s1","S1"]],'
                   b'"exchange","BDT",500,1000]')
    cmd = decode_command(old_command)
    assert cmd.start_ts is None and encode_command(cmd) == old_command
    old_events = (b'[["MarketCreated",5,1700000000000,"m1","e1","Match Odds","exchange","BDT",'
                  b'[["s1","S1"]],500,1000]]')
    events = decode_events(old_events)
    assert events[0].start_ts is None and encode_events(events) == old_events
    keyed = encode_events(events, keyed=True)
    assert b"start_ts" not in keyed and decode_events(keyed) == events
    started = dataclasses.replace(events[0], start_ts=1_767_225_600_000)
    assert decode_events(encode_events([started])) == [started]
    assert decode_events(encode_events([started], keyed=True)) == [started]


@pytest.mark.parametrize("data, problem", [
    (b'["Deposit", 1, 2, "u1"]', "Deposit record has 3 fields"),
    (b'["NoSuchCommand", 1, 2]', "not a record of a known type"),
    (b'[]', "not a record of a known type"),
])
def test_a_malformed_record_is_refused(data, problem):
    with pytest.raises(ValueError, match=problem):
        decode_command(data)


def test_an_engine_restored_from_pickle_continues_identically():
    d = scripted_session()
    half = len(d.log) // 2
    original, _ = replay(d.log[:half])
    restored = pickle.loads(pickle.dumps(original))
    assert state_fingerprint(restored) == state_fingerprint(original)
    for cmd, expected in zip(d.log[half:], d.event_log[half:], strict=True):
        a = original.apply(cmd)
        b = restored.apply(cmd)
        assert a == b == expected
        assert encode_events(a) == encode_events(b)
        restored.validate()
    assert state_fingerprint(restored) == state_fingerprint(original) == state_fingerprint(d.eng)


def test_every_field_of_every_order_survives_a_snapshot_and_keeps_its_links():
    log = scripted_session().log
    original, _ = replay(log[:len(log) // 2])  # before settlement retires the orders
    restored = pickle.loads(pickle.dumps(original))
    assert original.orders and restored.orders.keys() == original.orders.keys()
    slots = type(next(iter(original.orders.values()))).__slots__
    for oid, o in original.orders.items():
        r = restored.orders[oid]
        for name in slots:
            if name in ("pos", "wallet"):
                continue
            assert getattr(r, name) == getattr(o, name), (oid, name)
        # shared objects stay shared: the order's position and wallet are the market's and
        # the engine's own, not copies
        assert r.pos is restored.markets[r.market].positions[r.user]
        assert r.wallet is restored.wallets[(r.user, restored.markets[r.market].currency)]


def test_an_engine_pickled_with_delayed_orders_releases_them_identically():
    d = Driver()
    d.deposit("a", 10_000)
    d.deposit("b", 10_000)
    d.create_market("m1")
    d.status("m1", in_play=True, bet_delay_ms=5000)
    d.lay("a", 250, 1000)
    d.advance(100)
    d.back("b", 250, 600)
    restored = pickle.loads(pickle.dumps(d.eng))
    tick = c.Tick(seq=d.seq + 1, ts=d.ts + 5000)
    assert restored.apply(tick) == d.eng.apply(tick)
    assert state_fingerprint(restored) == state_fingerprint(d.eng)


def test_a_snapshot_holds_the_engine_state_and_no_events():
    """One apply's events and touched wallets are scratch: a snapshot leaves them out, so it
    never depends on how the compiled events pickle."""
    original, _ = replay(scripted_session().log[:40])
    assert original._events and original._touched  # the last apply's, still held
    data = pickle.dumps(original, protocol=pickle.HIGHEST_PROTOCOL)
    assert b"engine.events" not in data
    restored = pickle.loads(data)
    assert restored._events == [] and restored._touched == {}
    assert state_fingerprint(restored) == state_fingerprint(original)


def test_a_snapshot_that_still_holds_scratch_restores_without_it():
    """Snapshots taken before the events were compiled pickled the scratch too, in the old
    event layout: restoring drops it, and the engine goes on exactly like the original."""
    d = scripted_session()
    half = len(d.log) // 2
    original, _ = replay(d.log[:half])
    # the state an old snapshot held (a deep copy, as unpickling gives), scratch included
    state = pickle.loads(pickle.dumps(dict(
        original.__getstate__(), _events=["from an old snapshot"], _touched={("u", "X"): 0})))
    restored = Engine.__new__(Engine)
    restored.__setstate__(state)
    assert restored._events == [] and restored._touched == {}
    assert state_fingerprint(restored) == state_fingerprint(original)
    for cmd in d.log[half:]:
        assert restored.apply(cmd) == original.apply(cmd)


def test_a_snapshot_from_before_the_state_classes_were_compiled_restores():
    """tests/data/snapshot-7e67ae8.pickle is the first half of scripted_session() as commit
    7e67ae8 pickled it, when the engine, markets, books, positions and wallets were plain
    slotted classes. It restores into the compiled classes equal to a fresh replay, and goes on
    exactly like it (the journal is trimmed below the newest snapshot, so a restart after an
    upgrade depends on this)."""
    d = scripted_session()
    half = len(d.log) // 2
    original, _ = replay(d.log[:half])
    blob = (Path(__file__).parent / "data" / "snapshot-7e67ae8.pickle").read_bytes()
    restored = pickle.loads(blob)
    assert {type(m) for m in restored.markets.values()} == {Market}
    assert {type(w) for w in restored.wallets.values()} == {Wallet}
    assert state_fingerprint(restored) == state_fingerprint(original)
    # The bettors' own limits came later: their usage counts from the upgrade on, so the old
    # snapshot has none of it, but for the pending withdrawals (held, not at risk) it rebuilds.
    assert _without_own_usage(restored) == _without_own_usage(original)
    assert _withdrawing(restored) == _withdrawing(original)
    restored.validate()
    for cmd in d.log[half:]:
        assert restored.apply(cmd) == original.apply(cmd)


def test_a_snapshot_from_before_own_limits_rebuilds_pending_withdrawals_and_goes_on():
    """A pending withdrawal is held but not at risk: a loss limit must not count it, so a
    snapshot without the bettors' own state learns it from the withdrawals it holds."""
    d = Driver()
    d.deposit("u", 10_000)
    d.create_market("m1", ("s1", "s2"))
    d(c.RequestWithdrawal, user="u", currency="BDT", amount_minor=4_000)
    state = d.eng.__getstate__()
    del state["self_limits"], state["refused_deposits"]
    restored = Engine.__new__(Engine)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    assert _withdrawing(restored) == _withdrawing(d.eng) == {("u", "BDT"): 4_000}
    assert restored.refused_deposits == {}
    # a daily loss limit of 30.00 with 40.00 held for the withdrawal: 30.00 may still be risked
    tail = [c.SetSelfLimits(seq=d.seq + 1, ts=d.ts, user="u", currency="BDT",
                            daily_loss_minor=3_000),
            c.PlaceOrder(seq=d.seq + 2, ts=d.ts, user="u", market="m1", selection="s1",
                         side=c.BACK, price=200, size_minor=3_000),
            c.PlaceOrder(seq=d.seq + 3, ts=d.ts, user="u", market="m1", selection="s1",
                         side=c.BACK, price=200, size_minor=1)]
    for cmd in tail:
        assert restored.apply(cmd) == d.eng.apply(cmd)
    assert d.eng.orders[f"o{d.seq + 2}"].remaining == 3_000
    assert f"o{d.seq + 3}" not in d.eng.orders


def _without_own_usage(engine: Engine) -> tuple:
    engine_side, market_side = risk_fingerprint(engine)
    return tuple(item for item in engine_side if item[0] != "self_limits"), market_side


def _withdrawing(engine: Engine) -> dict:
    return {(user, currency): acct.withdrawing_minor
            for user, own in engine.self_limits.items()
            for currency, acct in own.accounts.items() if acct.withdrawing_minor}


def test_a_seq_that_does_not_increase_is_refused():
    eng = Engine()
    eng.apply(c.Tick(seq=5, ts=1))
    with pytest.raises(InvariantBroken):
        eng.apply(c.Tick(seq=5, ts=2))
    with pytest.raises(InvariantBroken):
        eng.apply(c.Tick(seq=4, ts=2))

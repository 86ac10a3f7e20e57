"""Statements and cleared orders: wallet movements folded from the journal into Postgres by the
real persister, and read back by gateway/statements.py, against the engine's own figures."""

import asyncio
import dataclasses
import shutil

import asyncpg
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import commands as c
from engine import events as ev
from engine.engine import SYSTEM_ACCOUNTS, Engine
from engine.rejections import Code
from gateway import statements
from gateway.statements import HistoryError, Page
from persistence.fold import fold
from persistence.migrate import MIGRATIONS_DIR, migrate
from persistence.persister import Persister
from persistence.readmodel import POOL_BET, write_changes, write_persisted
from tests.test_engine_properties import MARKETS, PRICES, USERS, Session, _step
from tests.test_persistence_persister import drain, journal_batches

WAIT_S = 2.0


async def persisted(redis_url, stream, database_url, records, batch_size=5) -> None:
    """Journal `records` in batches and fold them all into Postgres with a real persister."""
    redis = aioredis.from_url(redis_url)
    await journal_batches(redis, stream, records, batch_size)
    persister = Persister(redis, database_url, stream=stream, read_count_max=3)
    await persister.prepare()
    await drain(persister)
    await persister.stop()
    await redis.aclose()


async def read_all(pool, read, page: Page, target_seq: int) -> tuple[list, list]:
    """Every page of a statement or cleared listing, following `next`: (items, replies)."""
    items, replies = [], []
    cursor = None
    while True:
        reply = await read(pool, dataclasses.replace(page, cursor=cursor), target_seq, WAIT_S)
        replies.append(reply)
        items += reply["movements" if read is statements.statement else "orders"]
        cursor = reply["next"]
        if cursor is None:
            return items, replies


def minor(text: str) -> int:
    whole, _, cents = text.lstrip("-").partition(".")
    return (-1 if text.startswith("-") else 1) * (int(whole) * 100 + int(cents))


@pytest.fixture
def trading_day(redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    """The trading day of conftest.py persisted; run(fn(pool)) reads it through a pool."""
    engine, records = engine_records(trading_commands)
    run(persisted(redis_url, stream, migrated_database_url, records))

    def read(fn):
        async def scenario():
            pool = await asyncpg.create_pool(migrated_database_url, min_size=1, max_size=2)
            try:
                return await fn(pool, records[-1][0])
            finally:
                await pool.close()
        return run(scenario())
    return engine, records, read


def test_each_wallet_change_of_a_customer_is_a_movement_with_its_cause(trading_day):
    engine, records, read = trading_day

    async def movements(pool, last_seq):
        return {user: (await statements.statement(pool, Page(user, newest_first=False,
                                                             limit=100), last_seq, WAIT_S))
                for user in ("u1", "u2", "u3", "u4", "house")}

    got = read(movements)
    u4 = [(m["seq"], m["kind"], m["amount"], m["held_change"], m["market"], m["order"], m["ref"])
          for m in got["u4"]["movements"]]
    assert u4 == [
        (8, "deposit", "1000.00", "0.00", None, None, "dep-u4"),
        (12, "hold", "0.00", "5.00", "m1", "o12", None),  # back s2 at 3.00 for 5.00
        (13, "release", "0.00", "-5.00", "m1", "o12", None),  # cancelled: market from the order
        (19, "hold", "0.00", "2.00", "m2", "o19", None),  # lay y at 2.00, matched
        (20, "withdrawal_requested", "0.00", "10.00", None, None, "w20"),
        (21, "withdrawal_approved", "-10.00", "-10.00", None, None, "w20"),
        (26, "void", "0.00", "-2.00", "m2", None, None),
        (39, "hold", "0.00", "5.00", "m4", "o39", None),  # back r3, matched
        (40, "hold", "0.00", "3.00", "m4", "o40", None),  # back r2, resting
        (41, "non_runner", "0.00", "-5.00", "m4", None, None),  # r3 removed: its bet void
        (43, "hold", "0.00", "7.00", "m4", "o43", None),
        (44, "non_runner", "0.00", "-3.00", "m4", None, None),  # r4 removed: it cannot win
    ]
    u3 = [(m["seq"], m["kind"], m["ref"]) for m in got["u3"]["movements"]]
    assert (22, "withdrawal_requested", "w22") in u3 and (23, "withdrawal_rejected", "w22") in u3
    # settlement: one line per market, the commission charged on the winnings within it
    settled = [m for m in got["u1"]["movements"] if m["kind"] == "settlement"]
    assert [(m["seq"], m["market"], m["amount"], m["commission"]) for m in settled] == [
        (25, "m1", "21.38", "1.12")]  # won 22.50, 5% commission 1.12 (rounded down)
    assert [m["amount"] for m in got["u2"]["movements"] if m["kind"] == "settlement"] == [
        "-22.50"]
    assert got["house"]["movements"] == []  # system accounts are in the ledger, not here
    # the last movement of every wallet is the wallet the engine holds
    for user in ("u1", "u2", "u3", "u4"):
        last = got[user]["movements"][-1]
        w = engine.wallets[(user, "BDT")]
        assert (minor(last["balance"]), minor(last["held"])) == (w.balance, w.held)


def test_the_running_balance_and_held_follow_every_movement_and_add_up(trading_day):
    engine, records, read = trading_day

    async def everything(pool, last_seq):
        return {user: await read_all(pool, statements.statement,
                                     Page(user, newest_first=False, limit=2), last_seq)
                for user in ("u1", "u2", "u3", "u4")}

    for user, (movements, replies) in read(everything).items():
        assert len(replies) > 1 and all(len(r["movements"]) == 2 for r in replies[:-1])
        balance = held = 0
        for m in movements:
            balance += minor(m["amount"])
            held += minor(m["held_change"])
            assert (minor(m["balance"]), minor(m["held"])) == (balance, held), m
            assert minor(m["available"]) == balance - held >= 0
        w = engine.wallets[(user, "BDT")]
        assert (balance, held) == (w.balance, w.held)
        assert [m["seq"] for m in movements] == sorted({m["seq"] for m in movements})


def test_newest_first_pages_are_the_oldest_first_ones_reversed(trading_day):
    engine, records, read = trading_day

    async def both(pool, last_seq):
        oldest, _ = await read_all(pool, statements.statement,
                                   Page("u1", newest_first=False, limit=3), last_seq)
        newest, _ = await read_all(pool, statements.statement, Page("u1", limit=3), last_seq)
        return oldest, newest

    oldest, newest = read(both)
    assert newest == oldest[::-1] and len(oldest) > 3


def test_filters_keep_to_one_market_currency_and_time_window(trading_day):
    engine, records, read = trading_day
    ts = {seq: cmd.ts for seq, cmd, _ in records}

    async def filtered(pool, last_seq):
        def page(**kw):
            return statements.statement(pool, Page("u4", newest_first=False, **kw), last_seq,
                                        WAIT_S)
        return (await page(market="m1"), await page(currency="USD"),
                await page(from_ts=ts[13], to_ts=ts[21]))

    m1, usd, window = read(filtered)
    assert [m["seq"] for m in m1["movements"]] == [12, 13]
    assert usd["movements"] == [] and usd["next"] is None
    assert [m["seq"] for m in window["movements"]] == [13, 19, 20]


def test_an_unknown_market_filter_is_refused(trading_day):
    engine, records, read = trading_day

    async def unknown(pool, last_seq):
        with pytest.raises(HistoryError) as refused:
            await statements.statement(pool, Page("u1", market="nope"), last_seq, WAIT_S)
        return refused.value.code

    assert read(unknown) == Code.UNKNOWN_MARKET


def test_cleared_orders_carry_each_bets_profit_and_each_markets_commission(trading_day):
    engine, records, read = trading_day

    async def cleared(pool, last_seq):
        return {user: await statements.cleared(pool, Page(user, newest_first=False), last_seq,
                                               WAIT_S)
                for user in ("u1", "u2", "u3", "u4")}

    got = read(cleared)
    u1 = got["u1"]
    assert [(o["order"], o["market"], o["matched"], o["avg_price_matched"], o["result"],
             o["profit"], o["settled_seq"]) for o in u1["orders"]] == [
        ("o9", "m1", "15.00", "2.50", "won", "22.50", 25)]
    assert [(m["market"], m["outcome"], m["profit"], m["commission"], m["net"])
            for m in u1["markets"]] == [("m1", "settled", "22.50", "1.12", "21.38")]
    u2 = got["u2"]
    assert [(o["order"], o["side"], o["result"], o["profit"]) for o in u2["orders"]] == [
        ("o10", "lay", "lost", "-22.50")]  # o15 (s2) and the replaced o14 never matched
    assert [(m["profit"], m["commission"], m["net"]) for m in u2["markets"]] == [
        ("-22.50", "0.00", "-22.50")]
    # m2 was voided: its matched bets are void, nothing moved
    assert [(o["order"], o["result"], o["profit"]) for o in got["u4"]["orders"]] == [
        ("o19", "void", "0.00")]
    assert [(m["market"], m["outcome"], m["net"]) for m in got["u4"]["markets"]] == [
        ("m2", "voided", "0.00")]
    assert [o["order"] for o in got["u3"]["orders"]] == ["o18"]  # its m1 lay lapsed unmatched


def test_a_statement_waits_for_the_persister_and_says_what_it_is_as_of(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands)
    first, rest = records[:10], records[10:]

    async def scenario():
        redis = aioredis.from_url(redis_url)
        pool = await asyncpg.create_pool(migrated_database_url, min_size=1, max_size=2)
        await journal_batches(redis, stream, first)
        persister = Persister(redis, migrated_database_url, stream=stream)
        await persister.prepare()
        await drain(persister)
        await journal_batches(redis, stream, rest)
        target = records[-1][0]
        # nobody folds the rest: a bounded wait, then READ_MODEL_BEHIND
        with pytest.raises(HistoryError) as behind:
            await statements.statement(pool, Page("u1"), target, 0.05)
        # a persister that catches up while the statement waits: the statement sees it all
        waiting = statements.statement(pool, Page("u1"), target, 5.0)
        catch_up = drain(persister)
        reply, _ = await asyncio.gather(waiting, catch_up)
        await persister.stop()
        await pool.close()
        await redis.aclose()
        return behind.value, reply

    behind, reply = run(scenario())
    assert behind.code == Code.READ_MODEL_BEHIND and "seq 10" in behind.message
    assert reply["as_of_seq"] == records[-1][0]
    assert [m["seq"] for m in reply["movements"] if m["kind"] == "settlement"] == [25]


def test_a_read_model_from_before_statements_starts_each_wallet_with_its_balance(
        postgres_server, database_url, run, engine_records, trading_commands, tmp_path):
    """Migrating a read model that already holds a trading day: each wallet gets an opening
    movement (its balance brought forward) and each order its win amount from its fills."""
    engine, records = engine_records(trading_commands)
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("000[123]_*.sql")):
        shutil.copy(path, before)

    async def scenario():
        conn = await asyncpg.connect(database_url)
        await migrate(conn, before)
        ch = fold(records)
        async with conn.transaction():  # the old read model: no movements, no win amounts
            await conn.executemany(
                "INSERT INTO wallets VALUES ($1, $2, $3, $4, $5)",
                [(user, cur, balance, held, seq)
                 for (user, cur), (balance, held, seq) in ch.wallets.items()])
            await conn.executemany(
                "INSERT INTO fills VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                "$13)", [row[:13] for row in ch.fills.values()])  # the columns fills had then
            await conn.executemany(
                "INSERT INTO orders (order_id, user_id, market, selection, side, price, "
                "size_minor, matched_minor, remaining_minor, status, persistence, tif, ref, "
                "placed_seq, placed_ts_ms, updated_seq) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $7, 'EXECUTABLE', $8, $9, $10, $11, "
                "$12, $11)",
                [(o.order_id, o.user_id, o.market, o.selection, o.side, o.price, o.size_minor,
                  o.persistence, o.tif, o.ref, o.placed_seq, o.placed_ts_ms)
                 for o in ch.orders.values()])
            await write_persisted(conn, ch.last_seq, ch.last_ts_ms)
        await migrate(conn)
        movements = await conn.fetch("SELECT * FROM wallet_movements ORDER BY user_id")
        wins = dict(await conn.fetch("SELECT order_id, matched_win_minor FROM orders"))
        await conn.close()
        return movements, wins

    movements, wins = run(scenario())
    customers = {k: w for k, w in engine.wallets.items() if k[0].startswith("u")}
    assert {(r["user_id"], r["currency"]): (r["cause"], r["amount_minor"], r["balance_minor"],
                                            r["held_minor"]) for r in movements} == {
        k: ("opening", w.balance, w.balance, w.held) for k, w in customers.items()}
    assert wins["o9"] == 2_250 and wins["o10"] == 2_250 and wins["o19"] == 200
    assert wins["o12"] == 0


def test_a_deposit_in_a_second_currency_has_a_statement_of_its_own(
        redis_url, stream, migrated_database_url, run, engine_records):
    _, records = engine_records([
        c.Deposit(user="u1", currency="BDT", amount_minor=5_000, ref="b1"),
        c.Deposit(user="u1", currency="USD", amount_minor=700, ref="d1"),
        c.RequestWithdrawal(user="u1", currency="USD", amount_minor=200)])
    run(persisted(redis_url, stream, migrated_database_url, records))

    async def both(pool):
        usd = await statements.statement(pool, Page("u1", currency="USD", newest_first=False),
                                         3, WAIT_S)
        every = await statements.statement(pool, Page("u1", newest_first=False), 3, WAIT_S)
        return usd, every

    async def scenario():
        pool = await asyncpg.create_pool(migrated_database_url, min_size=1, max_size=2)
        try:
            return await both(pool)
        finally:
            await pool.close()

    usd, every = run(scenario())
    assert [(m["currency"], m["kind"], m["balance"], m["available"]) for m in usd["movements"]] == [
        ("USD", "deposit", "7.00", "7.00"), ("USD", "withdrawal_requested", "7.00", "5.00")]
    assert [m["currency"] for m in every["movements"]] == ["BDT", "USD", "USD"]


def test_a_non_runners_bets_clear_void_and_the_others_at_their_reduced_odds(
        redis_url, stream, migrated_database_url, run, engine_records):
    """s3 is removed with a 25% factor: the bets on it clear as void, the earlier bet on s1 is
    paid at 8.00 reduced to 6.00, and the statement says why the holds moved (`non_runner`)."""
    place = c.PlaceOrder
    _, records = engine_records([
        *[c.Deposit(user=u, currency="BDT", amount_minor=100_000, ref=f"d-{u}")
          for u in ("u1", "u2")],
        c.CreateMarket(market="race", event="e", name="Race",
                       selections=(("s1", "One"), ("s2", "Two"), ("s3", "Three"))),
        c.SetMarketStatus(market="race", status="open"),
        place(user="u2", market="race", selection="s1", side="lay", price=800, size_minor=1_000),
        place(user="u1", market="race", selection="s1", side="back", price=800,
              size_minor=1_000),                                                     # seq 6
        place(user="u2", market="race", selection="s3", side="lay", price=300, size_minor=500),
        place(user="u1", market="race", selection="s3", side="back", price=300,
              size_minor=500),                                                       # seq 8
        c.RemoveSelection(market="race", selection="s3", reduction_bp=2_500),        # seq 9
        c.SettleMarket(market="race", winners=("s1",)),
    ])
    run(persisted(redis_url, stream, migrated_database_url, records))

    async def read(pool):
        return (await statements.cleared(pool, Page("u1", newest_first=False), 10, WAIT_S),
                await statements.statement(pool, Page("u2", newest_first=False), 10, WAIT_S))

    async def scenario():
        pool = await asyncpg.create_pool(migrated_database_url, min_size=1, max_size=2)
        try:
            return await read(pool)
        finally:
            await pool.close()

    cleared, statement = run(scenario())
    assert [(o["order"], o["selection"], o["avg_price_matched"], o["result"], o["profit"])
            for o in cleared["orders"]] == [("o6", "s1", "6.00", "won", "50.00"),
                                            ("o8", "s3", "3.00", "void", "0.00")]
    assert [(m["profit"], m["commission"], m["net"]) for m in cleared["markets"]] == [
        ("50.00", "2.50", "47.50")]  # what the bets say is what settlement paid
    assert [(m["seq"], m["kind"], m["held_change"], m["market"])
            for m in statement["movements"] if m["seq"] == 9] == [
        (9, "non_runner", "-15.00", "race")]  # u2 held 65.00 (s1 wins: -70.00 + 5.00), now 50.00


# -- properties over generated trading sessions ----------------------------------------------------

HISTORY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
READ_MODEL_TABLES = ("markets", "selections", "orders", "fills", "ledger_entries", "settlements",
                     "wallets", "user_limits", "market_limits", "withdrawals",
                     "wallet_movements")


def _session_records(data) -> tuple[Engine, list]:
    """A generated trading session as the journal's records: funded users trading the markets
    of tests/test_engine_properties.py (its steps, and many more crossing orders), a second
    currency, and every market settled (dead heats too) or voided at the end."""
    s = Session()
    for mid, (mtype, sels) in MARKETS.items():
        s.apply(c.CreateMarket, market=mid, event="e1", name=mid, type=mtype,
                selections=tuple((x, x.upper()) for x in sels))
        s.apply(c.SetMarketStatus, market=mid, status="open")
    for i, user in enumerate(USERS):
        s.apply(c.Deposit, user=user, currency="BDT", amount_minor=100_000, ref=f"d{i}")
    s.apply(c.Deposit, user=USERS[0], currency="USD", amount_minor=5_000, ref="usd")
    for _ in range(data.draw(st.integers(1, 60), label="steps")):
        if data.draw(st.integers(0, 9), label="cross") < 6:
            mid = data.draw(st.sampled_from(sorted(MARKETS)), label="market")
            mtype, sels = MARKETS[mid]
            s.apply(c.PlaceOrder, user=data.draw(st.sampled_from(USERS), label="user"),
                    market=mid, selection=data.draw(st.sampled_from(sels), label="sel"),
                    side=c.BACK if mtype == c.POOL else data.draw(
                        st.sampled_from([c.BACK, c.LAY]), label="side"),
                    price=data.draw(st.sampled_from(PRICES), label="price"),
                    size_minor=data.draw(st.integers(1, 4_000), label="size"))
        else:
            _step(s, data)
    for mid, (_, sels) in MARKETS.items():
        removed = s.engine.markets[mid].removed  # a non-runner cannot win
        running = tuple(x for i, x in enumerate(sels) if i not in removed)
        winners = data.draw(st.lists(st.sampled_from(running), min_size=1, max_size=2,
                                     unique=True), label="winners")
        dead_heat = ()
        if len(winners) == 2 and data.draw(st.booleans(), label="explicit dh"):
            dead_heat = ((winners[0], 1, 3), (winners[1], 2, 3))
        if data.draw(st.integers(0, 4), label="void") == 0:
            s.apply(c.VoidMarket, market=mid)
        else:
            s.apply(c.SettleMarket, market=mid, winners=tuple(winners), dead_heat=dead_heat)
    engine = Engine()
    return engine, [(cmd.seq, cmd, engine.apply(cmd)) for cmd in s.log]


async def _fold_in_batches(conn, records: list, cuts: list[int]) -> None:
    """Fold as the persister does, batch by batch, one batch twice (a redelivery)."""
    await conn.execute(f"TRUNCATE {', '.join(READ_MODEL_TABLES)}")
    bounds = [0, *sorted(set(cuts)), len(records)]
    batches = [records[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    for batch in batches:
        ch = fold(batch)
        async with conn.transaction():
            await write_changes(conn, ch)
            await write_persisted(conn, ch.last_seq, ch.last_ts_ms)
    async with conn.transaction():
        await write_changes(conn, fold(batches[0]))


def _money_by_seq(records: list) -> tuple[dict, dict, set]:
    """What the journal says moved: (user, seq, currency) -> amount and -> commission, and
    the (user, seq, currency) of every customer wallet change."""
    amounts: dict = {}
    fees: dict = {}
    changed = set()
    for seq, _, events in records:
        for e in events:
            if isinstance(e, ev.MoneyMoved):
                for account, amount in e.entries:
                    key = (account, seq, e.currency)
                    amounts[key] = amounts.get(key, 0) + amount
                    if e.kind == "commission":
                        fees[key] = fees.get(key, 0) - amount
            elif isinstance(e, ev.WalletChanged) and e.user not in SYSTEM_ACCOUNTS:
                changed.add((e.user, seq, e.currency))
    return amounts, fees, changed


@HISTORY_SETTINGS
@given(st.data())
def test_statements_add_up_and_cleared_bets_explain_each_market_over_generated_sessions(
        migrated_database_url, run, data):
    engine, records = _session_records(data)
    cuts = data.draw(st.lists(st.integers(1, max(1, len(records) - 1)), max_size=6), label="cuts")
    limit = data.draw(st.integers(1, 7), label="page size")
    newest_first = data.draw(st.booleans(), label="newest first")
    last_seq = records[-1][0]

    async def scenario():
        conn = await asyncpg.connect(migrated_database_url)
        pool = await asyncpg.create_pool(migrated_database_url, min_size=1, max_size=2)
        try:
            await _fold_in_batches(conn, records, cuts)
            # the pool-bet predicate the orders_market_pool index and its queries share
            # (migration 0010) picks out exactly the matched bets of pool markets
            predicate = {r[0] for r in await conn.fetch(
                f"SELECT o.order_id FROM orders o WHERE {POOL_BET}")}
            pool_bets = {r[0] for r in await conn.fetch(
                "SELECT o.order_id FROM orders o JOIN markets m USING (market) "
                "WHERE m.type = 'pool' AND o.matched_minor > 0")}
            assert predicate == pool_bets
            got = {}
            for user in USERS:
                page = Page(user, newest_first=newest_first, limit=limit)
                got[user] = (await read_all(pool, statements.statement, page, last_seq),
                             await read_all(pool, statements.cleared, page, last_seq))
            return got
        finally:
            await pool.close()
            await conn.close()

    amounts, fees, changed = _money_by_seq(records)
    for user, ((movements, _), (bets, replies)) in run(scenario()).items():
        if newest_first:
            movements, bets = movements[::-1], bets[::-1]
        # every wallet change exactly once, in seq order, each with the money the journal moved
        assert [(user, m["seq"], m["currency"]) for m in movements] == sorted(
            k for k in changed if k[0] == user)
        totals: dict = {}
        for m in movements:
            key = (user, m["seq"], m["currency"])
            assert minor(m["amount"]) == amounts.get(key, 0)
            assert minor(m["commission"]) == fees.get(key, 0)
            balance, held = totals.get(m["currency"], (0, 0))
            balance, held = balance + minor(m["amount"]), held + minor(m["held_change"])
            assert (minor(m["balance"]), minor(m["held"])) == (balance, held)
            totals[m["currency"]] = (balance, held)
        touched = {cur for who, _, cur in changed if who == user}
        assert totals == {cur: (engine.wallets[(user, cur)].balance,
                                engine.wallets[(user, cur)].held) for cur in touched}
        # each market's bets explain what settlement paid: exactly, or within the rounding of
        # one cent per bet where dead heats and pools share a win
        lines = {line["market"]: line for r in replies for line in r["markets"]}
        assert set(lines) == {b["market"] for b in bets}
        for market, line in lines.items():
            mine = [minor(b["profit"]) for b in bets if b["market"] == market]
            paid = minor(line["profit"])
            shared = line["type"] == "pool" or any(b["result"] == "dead_heat" for b in bets
                                                  if b["market"] == market)
            if shared:
                assert 0 <= paid - sum(mine) < len(mine)
            else:
                assert paid == sum(mine), (market, line, mine)
            assert minor(line["net"]) == paid - minor(line["commission"])

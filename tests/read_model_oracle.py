"""What Postgres must hold for a journal: the read model a persister has to converge to.

Two views, for the crash tests (tests/test_crash_recovery.py, tests/test_persister_crash.py):

- `expected_dump`: the whole journal folded in ONE batch (persistence/fold.py) into a fresh
  database of its own. A persister folds the same journal in many batches, some of them twice
  after a crash; its tables must equal this dump row for row, column for column: a batch
  skipped, or an order's size delta applied twice, shows up as a difference.
- `JournalFacts`: keys and amounts read straight off the journaled events, without fold.py:
  which seqs must have left which ledger entries, fills, orders, settlements, withdrawals and
  customers' wallet movements (each exactly once: no gap, no duplicate), the last wallet
  balances, and the money that came in (deposits) and went out (approved withdrawals) through
  the external account.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg

from engine import events as ev
from engine.engine import EXTERNAL, SYSTEM_ACCOUNTS
from persistence.fold import fold
from persistence.migrate import migrate
from persistence.readmodel import write_changes, write_persisted

# every read-model table, with a key that orders its rows
TABLES = {
    "markets": "market", "selections": "market, selection", "orders": "order_id",
    "fills": "seq, idx", "ledger_entries": "seq, movement, entry",
    "settlements": "market, seq", "wallets": "user_id, currency", "user_limits": "user_id",
    "market_limits": "market", "withdrawals": "withdrawal",
    "wallet_movements": "user_id, seq, currency",
    "self_limits": "user_id, currency, limit_name", "self_exclusions": "user_id",
    "refused_deposits": "ref", "persisted": "seq",
}


async def dump(conn: asyncpg.Connection) -> dict[str, list[tuple]]:
    return {table: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")]
            for table, key in TABLES.items()}


async def expected_dump(admin_url: str, url_for, records: list) -> dict[str, list[tuple]]:
    """The read model of `records` (seq, command, events) folded from empty in one batch, in
    a scratch database created through `admin_url` and dropped afterwards."""
    name = f"oracle_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(url_for(name))
        try:
            await migrate(conn)
            changes = fold(records)
            async with conn.transaction():
                await write_changes(conn, changes)
                await write_persisted(conn, changes.last_seq, changes.last_ts_ms)
            return await dump(conn)
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@dataclass
class JournalFacts:
    last_seq: int = 0
    last_ts: int = 0
    # (seq, movement, entry) -> (kind, ref, account, currency, amount_minor)
    ledger: dict = field(default_factory=dict)
    fills: dict = field(default_factory=dict)  # (seq, idx) -> (taker order, maker order, size)
    orders: dict = field(default_factory=dict)  # order id -> placed seq
    settlements: dict = field(default_factory=dict)  # (market, seq) -> settled | voided
    withdrawals: dict = field(default_factory=dict)  # id -> REQUESTED | APPROVED | REJECTED
    wallets: dict = field(default_factory=dict)  # (user, currency) -> (balance, held)
    # a customer's wallet changes: (user, seq, currency) -> (money moved, balance, held)
    movements: dict = field(default_factory=dict)
    money_in: dict = field(default_factory=lambda: defaultdict(int))  # currency -> deposited
    money_out: dict = field(default_factory=lambda: defaultdict(int))  # currency -> withdrawn
    kinds: dict = field(default_factory=lambda: defaultdict(int))  # what happened, counted


def journal_facts(records: list) -> JournalFacts:
    facts = JournalFacts()
    for seq, cmd, events in records:
        facts.last_seq, facts.last_ts = seq, cmd.ts
        moved: dict = defaultdict(int)
        for idx, e in enumerate(events):
            kind = type(e).__name__
            if isinstance(e, ev.MoneyMoved):
                kind = f"MoneyMoved:{e.kind}"
                for entry, (account, amount) in enumerate(e.entries):
                    facts.ledger[(seq, idx, entry)] = (e.kind, e.ref, account, e.currency, amount)
                    moved[(account, e.currency)] += amount
                    if account == EXTERNAL and e.kind == "deposit":
                        facts.money_in[e.currency] -= amount
                    elif account == EXTERNAL and e.kind == "withdrawal":
                        facts.money_out[e.currency] += amount
            elif isinstance(e, ev.BetMatched):
                facts.fills[(seq, idx)] = (e.taker_order, e.maker_order, e.size_minor)
            elif isinstance(e, ev.OrderPlaced):
                assert e.order not in facts.orders, f"order {e.order} placed twice"
                facts.orders[e.order] = seq
            elif isinstance(e, ev.MarketSettled):
                facts.settlements[(e.market, seq)] = "settled"
            elif isinstance(e, ev.MarketVoided):
                facts.settlements[(e.market, seq)] = "voided"
            elif isinstance(e, ev.WithdrawalRequested):
                facts.withdrawals[e.withdrawal] = "REQUESTED"
            elif isinstance(e, ev.WithdrawalApproved):
                facts.withdrawals[e.withdrawal] = "APPROVED"
            elif isinstance(e, ev.WithdrawalRejected):
                facts.withdrawals[e.withdrawal] = "REJECTED"
            elif isinstance(e, ev.WalletChanged):
                facts.wallets[(e.user, e.currency)] = (e.balance_minor, e.held_minor)
                if e.user not in SYSTEM_ACCOUNTS:
                    facts.movements[(e.user, seq, e.currency)] = (
                        moved[(e.user, e.currency)], e.balance_minor, e.held_minor)
            facts.kinds[kind] += 1
    return facts


def read_model_differences(actual: dict, expected: dict) -> dict[str, tuple]:
    """Per table whose rows differ: (row count actual, expected, first rows only actual has,
    first rows only expected has): a readable assertion message instead of two huge dumps."""
    differences = {}
    for table in TABLES:
        mine, theirs = actual[table], expected[table]
        if mine != theirs:
            extra = [r for r in mine if r not in set(theirs)][:3]
            missing = [r for r in theirs if r not in set(mine)][:3]
            differences[table] = (len(mine), len(theirs), extra, missing)
    return differences


def facts_differences(pg: dict, facts: JournalFacts) -> dict[str, str]:
    """Postgres rows against the journal's events, table by table, without fold.py: each
    journaled ledger entry, fill, order, settlement and withdrawal exactly once, no row the
    journal does not explain, the last wallet balances, the persisted seq at the journal's end.
    `pg` is a `dump`."""
    found = {
        "ledger": {(r[0], r[1], r[2]): (r[4], r[5], r[6], r[7], r[8])
                   for r in pg["ledger_entries"]},
        "fills": {(r[0], r[1]): (r[8], r[11], r[6]) for r in pg["fills"]},
        "orders": {r[0]: r[18] for r in pg["orders"]},
        "settlements": {(r[0], r[1]): r[2] for r in pg["settlements"]},
        "withdrawals": {r[0]: r[4] for r in pg["withdrawals"]},
        "wallets": {(r[0], r[1]): (r[2], r[3]) for r in pg["wallets"]},
        "movements": {(r[0], r[1], r[2]): (r[8], r[10], r[11]) for r in pg["wallet_movements"]},
    }
    counts = {"ledger": len(pg["ledger_entries"]), "fills": len(pg["fills"]),
              "orders": len(pg["orders"]), "settlements": len(pg["settlements"]),
              "withdrawals": len(pg["withdrawals"]), "wallets": len(pg["wallets"]),
              "movements": len(pg["wallet_movements"])}
    differences = {}
    for name, rows in found.items():
        wanted = getattr(facts, name)
        if rows != wanted or counts[name] != len(wanted):
            only_pg = sorted(set(rows.items()) - set(wanted.items()), key=repr)[:3]
            only_journal = sorted(set(wanted.items()) - set(rows.items()), key=repr)[:3]
            differences[name] = (f"{counts[name]} rows, journal says {len(wanted)}; "
                                 f"only in postgres {only_pg}, only in the journal {only_journal}")
    persisted = pg["persisted"]
    if persisted != [(True, facts.last_seq, facts.last_ts)]:
        differences["persisted"] = f"{persisted}, journal ends at seq {facts.last_seq}"
    return differences

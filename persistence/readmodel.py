"""Write a folded batch (`fold.Changes`) into the Postgres read model, inside the caller's
transaction.

Hot tables (orders and their changes, fills, ledger entries, wallets, wallet movements): one
set-based statement each, the batch's rows passed as one array of records of a row type
(migrations/0005_row_types.sql) and expanded by unnest(). Passing them as one array per column
instead cost the persister about 0.2 us per value (asyncpg checks every array element for being
a nested array); binary COPY into temporary tables cost Postgres about 4 ms per transaction
(emptying them at commit). Measured by folding 20,000 commands in transactions of 100 and
2,000 (persister + Postgres CPU per command): columns 20 + 41 and 17 + 18 us, COPY 18 + 75 and
11 + 19 us, records 13 + 37 and 11 + 16 us. Rare tables (markets, limits,
settlements, withdrawals) use executemany, which asyncpg pipelines. Inserts are ON CONFLICT DO
NOTHING and updates only touch rows whose updated_seq is older than the change, so a batch
written twice changes nothing, even before the persisted-seq check that normally prevents it.

Except that a big batch's new orders, fills and wallet movements (at least COPY_ROWS_MIN rows
of a table: a persister catching up, or keeping up at saturation) are COPYed straight into
their table, in a savepoint: no staging table, no unnest, no conflict check, Postgres's
batched heap inserts. bench/persister_fold.py --postgres (60,000 commands in transactions of
2,000; client and server time per command, the three tables): 18.8 us as records, 13.2 us by
COPY. A COPY meeting a row already there (the batch written twice) is rolled back to its
savepoint and the rows go in by the ON CONFLICT insert instead, so the rule above still holds.

An update that finds fewer rows than it should (an order, market or withdrawal the read model
never saw) raises ReadModelMismatch: persisting half of what happened would be a silent loss.
"""

import asyncpg
import orjson

from .fold import Changes


# An orders row (as `o`) that is a pool bet, staked (migration 0010). Queries of orders by
# market are about pool markets; with this in their WHERE they use orders_market_pool.
POOL_BET = "o.pool"

# From this many new rows of a hot table, COPY them (see above): below it, COPY's own round
# trips (the savepoint and its release) cost more than its rows save.
COPY_ROWS_MIN = 256


class ReadModelMismatch(Exception):
    pass


def _columns(rows, width: int) -> list[list]:
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


def _affected(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def read_persisted(conn: asyncpg.Connection, lock: bool = False) -> tuple[int, int]:
    """(persisted seq, its command's ts). With lock=True, held until the transaction ends, so
    concurrent persisters serialise and neither folds a seq the other already did."""
    row = await conn.fetchrow("SELECT seq, ts_ms FROM persisted"
                              + (" FOR UPDATE" if lock else ""))
    return row["seq"], row["ts_ms"]


async def write_persisted(conn: asyncpg.Connection, seq: int, ts_ms: int) -> None:
    await conn.execute("UPDATE persisted SET seq = $1, ts_ms = $2", seq, ts_ms)


async def write_changes(conn: asyncpg.Connection, ch: Changes) -> None:
    if ch.markets:
        await conn.executemany(_INSERT_MARKET, list(ch.markets.values()))
    if ch.selections:
        await conn.executemany(_INSERT_SELECTION, ch.selections)
    if ch.market_updates:
        await _update_markets(conn, ch.market_updates)
    if ch.selection_updates:
        await _update_selections(conn, ch.selection_updates)
    if ch.orders:
        await _insert(conn, [o.astuple() for o in ch.orders.values()], "orders",
                      _ORDER_COLUMNS, _INSERT_ORDERS)
    if ch.order_deltas:
        await _update_orders(conn, ch.order_deltas)
    if ch.fills:
        await _insert(conn, list(ch.fills.values()), "fills", _FILL_COLUMNS, _INSERT_FILLS)
    if ch.fill_updates:
        await _reprice_fills(conn, ch.fill_updates)
    if ch.voided_selections:
        await conn.executemany(_VOID_FILLS, ch.voided_selections)
    if ch.ledger:
        await conn.execute(_INSERT_LEDGER, ch.ledger)
    if ch.wallets:
        await conn.execute(_UPSERT_WALLETS, [
            (user, currency, balance, held, seq)
            for (user, currency), (balance, held, seq) in ch.wallets.items()])
    if ch.movements:
        await _insert(conn, ch.movements, "wallet_movements", _MOVEMENT_COLUMNS,
                      _INSERT_MOVEMENTS)
    if ch.settlements:
        await conn.executemany(_INSERT_SETTLEMENT, [
            (market, seq, outcome, winners, orjson.dumps(dead_heat).decode(), ts)
            for market, seq, outcome, winners, dead_heat, ts in ch.settlements])
    if ch.user_limits:
        await conn.executemany(_UPSERT_USER_LIMITS, list(ch.user_limits.values()))
    if ch.market_limits:
        await conn.executemany(_UPSERT_MARKET_LIMITS, list(ch.market_limits.values()))
    if ch.withdrawals:
        await conn.executemany(_INSERT_WITHDRAWAL, list(ch.withdrawals.values()))
    if ch.withdrawal_decisions:
        await _decide_withdrawals(conn, ch.withdrawal_decisions)
    if ch.self_limits:
        await conn.executemany(_UPSERT_SELF_LIMITS, list(ch.self_limits.values()))
    if ch.self_exclusions:
        await conn.executemany(_UPSERT_SELF_EXCLUSIONS, list(ch.self_exclusions.values()))
    if ch.refused_deposits:
        await conn.executemany(_INSERT_REFUSED_DEPOSIT, ch.refused_deposits)


async def _insert(conn, rows: list, table: str, columns: tuple, insert_sql: str) -> None:
    """New rows of a hot table: COPYed when there are many, unless one is already there."""
    if len(rows) >= COPY_ROWS_MIN:
        try:
            async with conn.transaction():  # a savepoint: a refused COPY leaves ours usable
                await conn.copy_records_to_table(table, records=rows, columns=columns)
            return
        except asyncpg.UniqueViolationError:
            pass  # the batch was written before: the insert below skips what is there
    await conn.execute(insert_sql, rows)


async def _expect_rows(conn, status: str, keys: list, what: str, exists_sql: str,
                       key_columns: list[list]) -> None:
    """An update skipping a row is fine if the row already has the change (updated_seq guard);
    it is a mismatch only if the row does not exist at all."""
    if _affected(status) == len(keys):
        return
    found = {tuple(r) for r in await conn.fetch(exists_sql, *key_columns)}
    missing = [k for k in keys if k not in found]
    if missing:
        raise ReadModelMismatch(f"{what} update for rows the read model never saw: "
                                f"{missing[:10]}")


async def _update_markets(conn, updates: dict) -> None:
    rows = [(market, u.get("status"), u.get("in_play"), u.get("bet_delay_ms"), u["updated_seq"])
            for market, u in updates.items()]
    status = await conn.execute(_UPDATE_MARKETS, *_columns(rows, 5))
    await _expect_rows(conn, status, [(m,) for m in updates], "market",
                       "SELECT market FROM markets WHERE market = any($1::text[])",
                       [list(updates)])


async def _update_selections(conn, updates: dict) -> None:
    rows = [(market, selection, u.get("fair_price"), u.get("offered_price"),
             u.get("house_suspended"), u.get("removed_seq"), u.get("removed_ts_ms"),
             u.get("reduction_bp"), u["updated_seq"])
            for (market, selection), u in updates.items()]
    status = await conn.execute(_UPDATE_SELECTIONS, *_columns(rows, 9))
    await _expect_rows(conn, status, list(updates), "selection",
                       "SELECT s.market, s.selection FROM selections s "
                       "JOIN unnest($1::text[], $2::text[]) AS k(market, selection) "
                       "USING (market, selection)",
                       _columns(list(updates), 2))


async def _update_orders(conn, deltas: dict) -> None:
    status = await conn.execute(_UPDATE_ORDERS, [d.astuple() for d in deltas.values()])
    await _expect_rows(conn, status, [(o,) for o in deltas], "order",
                       "SELECT order_id FROM orders WHERE order_id = any($1::text[])",
                       [list(deltas)])


async def _reprice_fills(conn, updates: dict) -> None:
    rows = [(seq, idx, price, win, was, repriced_seq)
            for (seq, idx), (price, win, was, repriced_seq) in updates.items()]
    status = await conn.execute(_REPRICE_FILLS, *_columns(rows, 6))
    await _expect_rows(conn, status, list(updates), "fill",
                       "SELECT f.seq, f.idx FROM fills f "
                       "JOIN unnest($1::bigint[], $2::int[]) AS k(seq, idx) USING (seq, idx)",
                       _columns(list(updates), 2))


async def _decide_withdrawals(conn, decisions: dict) -> None:
    rows = [(wid, status, seq, ts) for wid, (status, seq, ts) in decisions.items()]
    status = await conn.execute(_DECIDE_WITHDRAWALS, *_columns(rows, 4))
    await _expect_rows(conn, status, [(w,) for w in decisions], "withdrawal",
                       "SELECT withdrawal FROM withdrawals WHERE withdrawal = any($1::text[])",
                       [list(decisions)])


_INSERT_MARKET = """
INSERT INTO markets (market, event, name, type, currency, commission_bp, take_bp, status, in_play,
                     bet_delay_ms, created_seq, created_ts_ms, start_ts_ms, updated_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (market) DO NOTHING"""

_INSERT_SELECTION = """
INSERT INTO selections (market, selection, name, position, updated_seq)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (market, selection) DO NOTHING"""

_UPDATE_MARKETS = """
UPDATE markets m SET status = coalesce(d.status, m.status),
                     in_play = coalesce(d.in_play, m.in_play),
                     bet_delay_ms = coalesce(d.bet_delay_ms, m.bet_delay_ms),
                     updated_seq = d.seq
FROM unnest($1::text[], $2::text[], $3::bool[], $4::int[], $5::bigint[])
     AS d(market, status, in_play, bet_delay_ms, seq)
WHERE m.market = d.market AND m.updated_seq < d.seq"""

_UPDATE_SELECTIONS = """
UPDATE selections s SET fair_price = coalesce(d.fair_price, s.fair_price),
                        offered_price = coalesce(d.offered_price, s.offered_price),
                        house_suspended = coalesce(d.house_suspended, s.house_suspended),
                        removed_seq = coalesce(d.removed_seq, s.removed_seq),
                        removed_ts_ms = coalesce(d.removed_ts_ms, s.removed_ts_ms),
                        reduction_bp = coalesce(d.reduction_bp, s.reduction_bp),
                        updated_seq = d.seq
FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::bool[], $6::bigint[],
            $7::bigint[], $8::int[], $9::bigint[])
     AS d(market, selection, fair_price, offered_price, house_suspended, removed_seq,
          removed_ts_ms, reduction_bp, seq)
WHERE s.market = d.market AND s.selection = d.selection AND s.updated_seq < d.seq"""

_ORDER_COLUMNS = ("order_id", "user_id", "market", "selection", "side", "price", "size_minor",
                  "matched_minor", "remaining_minor", "cancelled_minor", "lapsed_minor",
                  "matched_value", "matched_win_minor", "status", "persistence", "tif", "ref",
                  "release_ts_ms", "replaced_by", "placed_seq", "placed_ts_ms", "updated_seq",
                  "pool")
_FILL_COLUMNS = ("seq", "idx", "ts_ms", "market", "selection", "price", "size_minor", "win_minor",
                 "taker_order", "taker_user", "taker_side", "maker_order", "maker_user",
                 "voided", "original_price", "repriced_seq")
_LEDGER_COLUMNS = ("seq", "movement", "entry", "ts_ms", "kind", "ref", "account", "currency",
                   "amount_minor")
_WALLET_COLUMNS = ("user_id", "currency", "balance_minor", "held_minor", "updated_seq")
_MOVEMENT_COLUMNS = ("user_id", "seq", "currency", "ts_ms", "cause", "market", "order_id", "ref",
                     "amount_minor", "commission_minor", "balance_minor", "held_minor")

_INSERT_ORDERS = f"""
INSERT INTO orders ({", ".join(_ORDER_COLUMNS)})
SELECT * FROM unnest($1::order_row[])
ON CONFLICT (order_id) DO NOTHING"""

_UPDATE_ORDERS = """
UPDATE orders o SET matched_minor = o.matched_minor + d.matched,
                    remaining_minor = o.remaining_minor + d.remaining,
                    cancelled_minor = o.cancelled_minor + d.cancelled,
                    lapsed_minor = o.lapsed_minor + d.lapsed,
                    matched_value = o.matched_value + d.value,
                    matched_win_minor = o.matched_win_minor + d.win,
                    release_ts_ms = CASE WHEN d.released THEN 0 ELSE o.release_ts_ms END,
                    replaced_by = coalesce(d.replaced_by, o.replaced_by),
                    pool = o.pool OR d.pool,
                    status = CASE WHEN o.remaining_minor + d.remaining = 0
                                  THEN 'EXECUTION_COMPLETE' ELSE 'EXECUTABLE' END,
                    updated_seq = d.seq
FROM unnest($1::order_change[]) d
WHERE o.order_id = d.order_id AND o.updated_seq < d.seq"""

_INSERT_FILLS = f"""
INSERT INTO fills ({", ".join(_FILL_COLUMNS)})
SELECT * FROM unnest($1::fill_row[])
ON CONFLICT (seq, idx) DO NOTHING"""

_REPRICE_FILLS = """
UPDATE fills f SET price = d.price, win_minor = d.win,
                   original_price = coalesce(f.original_price, d.was),
                   repriced_seq = d.repriced_seq
FROM unnest($1::bigint[], $2::int[], $3::int[], $4::bigint[], $5::int[], $6::bigint[])
     AS d(seq, idx, price, win, was, repriced_seq)
WHERE f.seq = d.seq AND f.idx = d.idx AND coalesce(f.repriced_seq, 0) < d.repriced_seq"""

_VOID_FILLS = """
UPDATE fills SET voided = TRUE WHERE market = $1 AND selection = $2 AND NOT voided"""

_INSERT_LEDGER = f"""
INSERT INTO ledger_entries ({", ".join(_LEDGER_COLUMNS)})
SELECT * FROM unnest($1::ledger_row[])
ON CONFLICT (seq, movement, entry) DO NOTHING"""

_UPSERT_WALLETS = f"""
INSERT INTO wallets ({", ".join(_WALLET_COLUMNS)})
SELECT * FROM unnest($1::wallet_row[])
ON CONFLICT (user_id, currency) DO UPDATE
    SET balance_minor = EXCLUDED.balance_minor, held_minor = EXCLUDED.held_minor,
        updated_seq = EXCLUDED.updated_seq
    WHERE wallets.updated_seq < EXCLUDED.updated_seq"""

_INSERT_MOVEMENTS = f"""
INSERT INTO wallet_movements ({", ".join(_MOVEMENT_COLUMNS)})
SELECT * FROM unnest($1::movement_row[])
ON CONFLICT (user_id, seq, currency) DO NOTHING"""

_INSERT_SETTLEMENT = """
INSERT INTO settlements (market, seq, outcome, winners, dead_heat, ts_ms)
VALUES ($1, $2, $3, $4, $5::jsonb, $6)
ON CONFLICT (market, seq) DO NOTHING"""

_UPSERT_USER_LIMITS = """
INSERT INTO user_limits (user_id, max_stake_minor, daily_stake_minor, weekly_stake_minor,
                         stake_factor_num, stake_factor_den, max_exposure_minor, updated_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (user_id) DO UPDATE
    SET max_stake_minor = EXCLUDED.max_stake_minor,
        daily_stake_minor = EXCLUDED.daily_stake_minor,
        weekly_stake_minor = EXCLUDED.weekly_stake_minor,
        stake_factor_num = EXCLUDED.stake_factor_num,
        stake_factor_den = EXCLUDED.stake_factor_den,
        max_exposure_minor = EXCLUDED.max_exposure_minor,
        updated_seq = EXCLUDED.updated_seq
    WHERE user_limits.updated_seq < EXCLUDED.updated_seq"""

_UPSERT_MARKET_LIMITS = """
INSERT INTO market_limits (market, max_liability_minor, selection_max_liability_minor,
                           min_stake_minor, max_stake_minor, updated_seq)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (market) DO UPDATE
    SET max_liability_minor = EXCLUDED.max_liability_minor,
        selection_max_liability_minor = EXCLUDED.selection_max_liability_minor,
        min_stake_minor = EXCLUDED.min_stake_minor,
        max_stake_minor = EXCLUDED.max_stake_minor,
        updated_seq = EXCLUDED.updated_seq
    WHERE market_limits.updated_seq < EXCLUDED.updated_seq"""

_INSERT_WITHDRAWAL = """
INSERT INTO withdrawals (withdrawal, user_id, currency, amount_minor, status, requested_seq,
                         requested_ts_ms, decided_seq, decided_ts_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (withdrawal) DO NOTHING"""

_DECIDE_WITHDRAWALS = """
UPDATE withdrawals w SET status = d.status, decided_seq = d.seq, decided_ts_ms = d.ts
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS d(withdrawal, status, seq, ts)
WHERE w.withdrawal = d.withdrawal AND w.decided_seq IS NULL"""

_UPSERT_SELF_LIMITS = """
INSERT INTO self_limits (user_id, currency, limit_name, value_minor, pending_value_minor,
                         pending_ts_ms, updated_seq, updated_ts_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (user_id, currency, limit_name) DO UPDATE
    SET value_minor = EXCLUDED.value_minor,
        pending_value_minor = EXCLUDED.pending_value_minor,
        pending_ts_ms = EXCLUDED.pending_ts_ms,
        updated_seq = EXCLUDED.updated_seq,
        updated_ts_ms = EXCLUDED.updated_ts_ms
    WHERE self_limits.updated_seq < EXCLUDED.updated_seq"""

_UPSERT_SELF_EXCLUSIONS = """
INSERT INTO self_exclusions (user_id, until_ts_ms, updated_seq, updated_ts_ms)
VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id) DO UPDATE
    SET until_ts_ms = EXCLUDED.until_ts_ms, updated_seq = EXCLUDED.updated_seq,
        updated_ts_ms = EXCLUDED.updated_ts_ms
    WHERE self_exclusions.updated_seq < EXCLUDED.updated_seq"""

_INSERT_REFUSED_DEPOSIT = """
INSERT INTO refused_deposits (ref, user_id, currency, amount_minor, code, reason, seq, ts_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (ref) DO NOTHING"""

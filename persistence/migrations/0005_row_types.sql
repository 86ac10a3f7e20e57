-- Row types the persister sends a batch's rows in, one array parameter per table
-- (persistence/readmodel.py): asyncpg encodes an array of records checking each row, where
-- parallel arrays of columns made it check every value. Their fields are what the fold
-- produces, in its order; a column added to a table later keeps its default unless the fold
-- learns it (then its type gets the attribute too).
CREATE TYPE order_row AS (
    order_id TEXT, user_id TEXT, market TEXT, selection TEXT, side TEXT, price INTEGER,
    size_minor BIGINT, matched_minor BIGINT, remaining_minor BIGINT, cancelled_minor BIGINT,
    lapsed_minor BIGINT, matched_value BIGINT, matched_win_minor BIGINT, status TEXT,
    persistence TEXT, tif TEXT, ref TEXT, release_ts_ms BIGINT, replaced_by TEXT,
    placed_seq BIGINT, placed_ts_ms BIGINT, updated_seq BIGINT);
CREATE TYPE order_change AS (
    order_id TEXT, matched BIGINT, remaining BIGINT, cancelled BIGINT, lapsed BIGINT,
    value BIGINT, win BIGINT, released BOOLEAN, replaced_by TEXT, seq BIGINT);
CREATE TYPE fill_row AS (
    seq BIGINT, idx INTEGER, ts_ms BIGINT, market TEXT, selection TEXT, price INTEGER,
    size_minor BIGINT, win_minor BIGINT, taker_order TEXT, taker_user TEXT, taker_side TEXT,
    maker_order TEXT, maker_user TEXT);
CREATE TYPE ledger_row AS (
    seq BIGINT, movement INTEGER, entry INTEGER, ts_ms BIGINT, kind TEXT, ref TEXT,
    account TEXT, currency TEXT, amount_minor BIGINT);
CREATE TYPE wallet_row AS (
    user_id TEXT, currency TEXT, balance_minor BIGINT, held_minor BIGINT, updated_seq BIGINT);
CREATE TYPE movement_row AS (
    user_id TEXT, seq BIGINT, currency TEXT, ts_ms BIGINT, cause TEXT, market TEXT,
    order_id TEXT, ref TEXT, amount_minor BIGINT, commission_minor BIGINT, balance_minor BIGINT,
    held_minor BIGINT);

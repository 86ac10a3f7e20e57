-- Read model of the exchange, folded from journaled events by the persister.
-- Money is BIGINT minor units, odds INTEGER hundredths, times BIGINT ms since the epoch.
-- Every row remembers the seq that last changed it, so a replayed fold can be detected.

CREATE TABLE persisted (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    seq BIGINT NOT NULL,        -- every journal seq <= this is folded into the tables below
    ts_ms BIGINT NOT NULL       -- ts of the command at `seq`, for lag in seconds
);
INSERT INTO persisted (seq, ts_ms) VALUES (0, 0);

CREATE TABLE markets (
    market TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    currency TEXT NOT NULL,
    commission_bp INTEGER NOT NULL,
    take_bp INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'INACTIVE',
    in_play BOOLEAN NOT NULL DEFAULT FALSE,
    bet_delay_ms INTEGER NOT NULL DEFAULT 0,
    created_seq BIGINT NOT NULL,
    created_ts_ms BIGINT NOT NULL,
    updated_seq BIGINT NOT NULL
);

CREATE TABLE selections (
    market TEXT NOT NULL REFERENCES markets,
    selection TEXT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    fair_price INTEGER,            -- the trader's odds, hundredths
    offered_price INTEGER,         -- the house's quote after margin and shading
    house_suspended BOOLEAN NOT NULL DEFAULT FALSE,
    updated_seq BIGINT NOT NULL,
    PRIMARY KEY (market, selection)
);

CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    market TEXT NOT NULL,
    selection TEXT NOT NULL,
    side TEXT NOT NULL,
    price INTEGER NOT NULL,
    size_minor BIGINT NOT NULL,
    matched_minor BIGINT NOT NULL DEFAULT 0,
    remaining_minor BIGINT NOT NULL,
    cancelled_minor BIGINT NOT NULL DEFAULT 0,
    lapsed_minor BIGINT NOT NULL DEFAULT 0,
    matched_value BIGINT NOT NULL DEFAULT 0,  -- sum(price * size) of fills: average price
    status TEXT NOT NULL,                     -- EXECUTABLE | EXECUTION_COMPLETE
    persistence TEXT NOT NULL,
    tif TEXT NOT NULL,
    ref TEXT NOT NULL,
    release_ts_ms BIGINT NOT NULL DEFAULT 0,  -- > 0 while waiting out an in-play bet delay
    replaced_by TEXT,
    placed_seq BIGINT NOT NULL,
    placed_ts_ms BIGINT NOT NULL,
    updated_seq BIGINT NOT NULL,
    CHECK (matched_minor + remaining_minor + cancelled_minor + lapsed_minor = size_minor)
);
CREATE INDEX orders_user ON orders (user_id, placed_seq);
CREATE INDEX orders_market ON orders (market, selection);
CREATE INDEX orders_ref ON orders (user_id, ref) WHERE ref <> '';

CREATE TABLE fills (
    seq BIGINT NOT NULL,
    idx INTEGER NOT NULL,          -- position of the BetMatched among its command's events
    ts_ms BIGINT NOT NULL,
    market TEXT NOT NULL,
    selection TEXT NOT NULL,
    price INTEGER NOT NULL,
    size_minor BIGINT NOT NULL,
    win_minor BIGINT NOT NULL,
    taker_order TEXT NOT NULL,
    taker_user TEXT NOT NULL,
    taker_side TEXT NOT NULL,
    maker_order TEXT NOT NULL,
    maker_user TEXT NOT NULL,
    PRIMARY KEY (seq, idx)
);
CREATE INDEX fills_market ON fills (market, selection, seq);

CREATE TABLE ledger_entries (
    seq BIGINT NOT NULL,
    movement INTEGER NOT NULL,     -- position of the MoneyMoved among its command's events
    entry INTEGER NOT NULL,        -- position of the entry in the movement
    ts_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    account TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    PRIMARY KEY (seq, movement, entry)
);
CREATE INDEX ledger_account ON ledger_entries (account, currency, seq);

CREATE TABLE settlements (
    market TEXT NOT NULL,
    seq BIGINT NOT NULL,           -- a void after a settlement is a second row, not an overwrite
    outcome TEXT NOT NULL,         -- settled | voided
    winners TEXT[] NOT NULL,
    dead_heat JSONB NOT NULL,      -- [[selection, numerator, denominator], ...]
    ts_ms BIGINT NOT NULL,
    PRIMARY KEY (market, seq)
);

CREATE TABLE wallets (
    user_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance_minor BIGINT NOT NULL,
    held_minor BIGINT NOT NULL,
    updated_seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, currency)
);

CREATE TABLE user_limits (
    user_id TEXT PRIMARY KEY,
    max_stake_minor BIGINT,
    daily_stake_minor BIGINT,
    weekly_stake_minor BIGINT,
    stake_factor_num BIGINT,
    stake_factor_den BIGINT,
    max_exposure_minor BIGINT,
    updated_seq BIGINT NOT NULL
);

CREATE TABLE market_limits (
    market TEXT PRIMARY KEY,
    max_liability_minor BIGINT,
    selection_max_liability_minor BIGINT,
    min_stake_minor BIGINT,
    max_stake_minor BIGINT,
    updated_seq BIGINT NOT NULL
);

CREATE TABLE withdrawals (
    withdrawal TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    status TEXT NOT NULL,          -- REQUESTED | APPROVED | REJECTED
    requested_seq BIGINT NOT NULL,
    requested_ts_ms BIGINT NOT NULL,
    decided_seq BIGINT,
    decided_ts_ms BIGINT
);
CREATE INDEX withdrawals_user ON withdrawals (user_id, requested_seq);

-- Engine state pickled at a journal seq: restart = newest snapshot + replay of the journal after it.
CREATE TABLE snapshots (
    seq BIGINT PRIMARY KEY,
    taken_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    engine BYTEA NOT NULL
);

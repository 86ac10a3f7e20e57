-- Bettors' own responsible-gambling limits (risk/self_limits.py), folded from SelfLimitsSet:
-- one row per user, currency and limit, as the bettor's last request left it. A pending raise
-- (or removal) applies by itself: the limit in force at time T is pending_value_minor when
-- pending_ts_ms <= T, else value_minor (NULL: no limit).
CREATE TABLE self_limits (
    user_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    limit_name TEXT NOT NULL,      -- daily_deposit | weekly_deposit | daily_stake | weekly_stake
                                   -- | daily_loss | weekly_loss
    value_minor BIGINT,
    pending_value_minor BIGINT,    -- NULL with a pending_ts_ms: the limit is to be removed
    pending_ts_ms BIGINT,          -- NULL: nothing pending
    updated_seq BIGINT NOT NULL,
    updated_ts_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, currency, limit_name)
);

-- Self-exclusions (SelfExcluded): no orders or deposits before until_ts_ms.
CREATE TABLE self_exclusions (
    user_id TEXT PRIMARY KEY,
    until_ts_ms BIGINT NOT NULL,
    updated_seq BIGINT NOT NULL,
    updated_ts_ms BIGINT NOT NULL
);

-- Deposits a bettor's own limit or self-exclusion refused (DepositRefused): nothing was
-- credited and the provider was told to return the money. Worth an operator's look: deposits
-- attempted while excluded or past a limit are a sign of harm.
CREATE TABLE refused_deposits (
    ref TEXT PRIMARY KEY,          -- provider:ref, as deposits' ledger refs
    user_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    code TEXT NOT NULL,            -- SELF_EXCLUDED | SELF_DEPOSIT_LIMIT
    reason TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts_ms BIGINT NOT NULL
);
CREATE INDEX refused_deposits_user ON refused_deposits (user_id, seq);

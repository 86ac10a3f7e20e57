-- What a bettor's statement and cleared orders are read from (gateway/statements.py).

-- Every change of a customer's wallet, one row per command that changed it (its WalletChanged
-- event), with what caused it and the wallet right after: the running balance is exact, never
-- recomputed. System accounts (house, commission, external) have no rows: their money is in
-- ledger_entries. `held_change` is left to readers (this row's held minus the previous row's),
-- because the persister only sees a batch at a time.
CREATE TABLE wallet_movements (
    user_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    currency TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    -- deposit | withdrawal_requested | withdrawal_approved | withdrawal_rejected | settlement |
    -- void | trade (an order placed, matched, cancelled or lapsed: the hold moved) | opening
    cause TEXT NOT NULL,
    market TEXT,                    -- settlement, void, and trades where the events name it
    order_id TEXT,                  -- trade: the user's order the command concerned (the first)
    ref TEXT,                       -- deposit: the provider's ref; withdrawals: the withdrawal id
    amount_minor BIGINT NOT NULL,   -- the balance change (net of commission)
    commission_minor BIGINT NOT NULL DEFAULT 0,  -- commission charged within amount (>= 0)
    balance_minor BIGINT NOT NULL,  -- after
    held_minor BIGINT NOT NULL,     -- after
    PRIMARY KEY (user_id, seq, currency)
);

-- A read model that existed before this table starts each wallet's statement with its balance
-- brought forward ('opening', at the seq that last changed it), so the amounts of a wallet's
-- rows still add up to its balance and every later held change is exact.
INSERT INTO wallet_movements (user_id, seq, currency, ts_ms, cause, amount_minor, balance_minor,
                              held_minor)
SELECT w.user_id, w.updated_seq, w.currency, (SELECT ts_ms FROM persisted), 'opening',
       w.balance_minor, w.balance_minor, w.held_minor
FROM wallets w
WHERE w.user_id NOT IN ('house', 'commission', 'external');

-- An order's win amount over its fills (what a back wins, a lay pays, if the selection wins):
-- with matched_minor it gives the bet's settled profit. Earlier orders get it from their fills.
ALTER TABLE orders ADD COLUMN matched_win_minor BIGINT NOT NULL DEFAULT 0;
UPDATE orders o SET matched_win_minor = f.win_minor
FROM (SELECT order_id, sum(win_minor)::bigint AS win_minor
      FROM (SELECT taker_order AS order_id, win_minor FROM fills
            UNION ALL
            SELECT maker_order, win_minor FROM fills) AS sides
      GROUP BY order_id) AS f
WHERE o.order_id = f.order_id;

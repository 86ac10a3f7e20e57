-- Orders are read by market only for pool markets: the stakes a pool bet's share is worked out
-- from (gateway/statements.py) and the operator reports' pool volume and bettors
-- (gateway/reports.py). Exchange markets are read by their fills. So the market index now
-- keeps pool bets only: every order's insertion into a full (market, selection) index was
-- Postgres's work for nothing on exchange markets. bench/persister_fold.py --postgres, the
-- Postgres backend's CPU per command, the full index and this one alternately: one busy
-- market (--markets 1 --users 50, a long run of equal keys) 13.99 / 12.32, 14.15 / 8.49,
-- 12.49 / 10.16, 12.99 / 11.32 us; twenty markets 19.17 / 17.69, 21.13 / 18.18 us.
--
-- `pool` marks a pool bet once it is staked (the fold sets it on PoolStaked); it never changes
-- after that, so the index's predicate is on a column the persister's order updates (fills,
-- cancels, lapses) leave alone, and those updates stay HOT (migration 0008). Queries repeat
-- the predicate (persistence/readmodel.POOL_BET).
ALTER TABLE orders ADD COLUMN pool BOOLEAN NOT NULL DEFAULT false;
-- Rows written before: a pool bet is the one order matched at no price (a pool stake has none;
-- every exchange fill adds size x price, at least 1.01, to matched_value).
UPDATE orders SET pool = true WHERE matched_value = 0 AND matched_minor > 0;
ALTER TYPE order_row ADD ATTRIBUTE pool BOOLEAN;
ALTER TYPE order_change ADD ATTRIBUTE pool BOOLEAN;
DROP INDEX orders_market;
CREATE INDEX orders_market_pool ON orders (market, selection) WHERE pool;

-- Orders are read by market only for pool markets: the stakes a pool bet's share is worked out
-- from (gateway/statements.py) and the operator reports' pool volume and bettors
-- (gateway/reports.py). Exchange markets are read by their fills. So the index keeps only pool
-- bets: every order's insertion into a full (market, selection) index was Postgres's work for
-- nothing on exchange markets, and on one busy market (a long run of equal keys) about a
-- fifth of the persister's orders COPY (bench/persister_fold.py --postgres --markets 1
-- --users 50, Postgres backend CPU per command: 9.2-10.7 us with the full index, 8.3-8.8
-- with this one).
--
-- A pool bet is the one order with a matched stake and no matched value: a pool stake is
-- matched at no price (PoolStaked), while every exchange fill adds size x price (at least
-- 1.01) to matched_value, and repricing by a non-runner's reduction keeps it a price on the
-- ladder. Queries that use the index repeat the predicate (persistence/readmodel.POOL_BET), and
-- tests/test_persistence_statements.py checks over generated sessions that it picks out
-- exactly the matched bets of pool markets.
DROP INDEX orders_market;
CREATE INDEX orders_market_pool ON orders (market, selection)
    WHERE matched_value = 0 AND matched_minor > 0;

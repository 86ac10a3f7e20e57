-- Non-runners and scheduled start times (issue 18).
-- A market's scheduled start, ms since the epoch (NULL: none given).
ALTER TABLE markets ADD COLUMN start_ts_ms BIGINT;

-- A selection removed as a non-runner: when, and the reduction factor (basis points) applied
-- to the bets matched before on the other selections. NULL while it runs.
ALTER TABLE selections ADD COLUMN removed_seq BIGINT,
                       ADD COLUMN removed_ts_ms BIGINT,
                       ADD COLUMN reduction_bp INTEGER;

-- A fill on a non-runner is void (stakes returned, nothing paid). A fill on a runner repriced
-- by non-runners after it keeps its current terms in price and win_minor, the price it was
-- matched at in original_price, and the seq of the last repricing in repriced_seq (which keeps
-- a batch written twice from undoing a later one).
ALTER TABLE fills ADD COLUMN voided BOOLEAN NOT NULL DEFAULT FALSE,
                  ADD COLUMN original_price INTEGER,
                  ADD COLUMN repriced_seq BIGINT;
-- the fold writes them with every new fill (0005_row_types.sql: its type learns them too)
ALTER TYPE fill_row ADD ATTRIBUTE voided BOOLEAN,
                    ADD ATTRIBUTE original_price INTEGER,
                    ADD ATTRIBUTE repriced_seq BIGINT;
-- wallet_movements.cause (0004_statements.sql) also takes 'non_runner': the holds a removal
-- took again (fold.py).

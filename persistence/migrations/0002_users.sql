-- Users known to the read model beyond their activity. `seeded` marks accounts the operator
-- created itself (load-test bots, market-making bots): reports leave their activity out of
-- customer figures unless asked to include it (see docs/reports.md). The load-test tool
-- inserts its bots here with seeded = true; a user with no row here is a customer.
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    seeded BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

"""Load tests: Locust users that speak the real WebSocket protocol, and the tool that runs them.

- `world`: the deterministic load-test world (markets, bot identities, profiles, funding) that
  the seeder creates and the Locust users find, in the same process or on another machine.
- `book`: a client-side market-data view built from `mkt` images and deltas (gap = resubscribe).
- `client`: one WebSocket connection as Locust sees it: requests timed from send to the reply
  with the same id, pushes counted, business rejections reported as successes with their code.
- `locustfile`: the weighted user classes (bettor profiles, traders, operators, watchers).
- `seed`: markets via a trader connection, funds via the signed deposit webhook, bot rows in
  Postgres flagged `seeded`.
- `checks`: the books after a run: money conserved, nobody below zero available, the persister
  caught up with the journal, the read model equal to the engine, no crossed book.
- `run`: `backlay simulate`: server + seed + headless Locust + checks + summary.

Locust itself (gevent) only ever runs in its own process; everything else here is asyncio.
"""

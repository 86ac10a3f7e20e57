"""The bettors' own limits in the Postgres read model: the limits in force and the raises
waiting out their cooling-off, self-exclusions and refused deposits, each folded once however
often its journal entry is delivered."""

import asyncpg
import redis.asyncio as aioredis

from persistence.fold import fold
from persistence.journal import Journal
from persistence.persister import Persister
from persistence.readmodel import write_changes
from tests.read_model_oracle import dump

COOLING_OFF_MS = 86_400_000


def test_own_limits_exclusions_and_refused_deposits_fold_into_their_tables(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands)
    set_ts = records[-4][1].ts  # SetSelfLimits: daily deposit 50.00, weekly stake 200.00
    raise_ts = records[-3][1].ts  # weekly stake to 400.00, remove the deposit limit
    deposit_seq, exclude = records[-2][0], records[-1][1]

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await Journal(redis, stream).append(records[:-3])
        await Journal(redis, stream).append(records[-3:])
        persister = Persister(redis, migrated_database_url, stream=stream)
        await persister.prepare()
        while await persister.step(block_ms=1):
            pass
        await persister.make_durable()
        conn = await asyncpg.connect(migrated_database_url)
        try:
            limits = await conn.fetch("SELECT limit_name, value_minor, pending_value_minor, "
                                      "pending_ts_ms FROM self_limits WHERE user_id = 'u2' "
                                      "ORDER BY limit_name")
            exclusions = await conn.fetch("SELECT * FROM self_exclusions")
            refused = await conn.fetch("SELECT * FROM refused_deposits")
            before = await dump(conn)
            async with conn.transaction():  # the whole journal again: nothing changes
                await write_changes(conn, fold(records))
            return limits, exclusions, refused, before, await dump(conn)
        finally:
            await conn.close()
            await persister.stop()
            await redis.aclose()

    limits, exclusions, refused, before, after = run(scenario())
    assert {r["limit_name"]: tuple(r)[1:] for r in limits} == {
        "daily_deposit": (5_000, None, raise_ts + COOLING_OFF_MS),  # a removal, pending
        "weekly_deposit": (None, None, None),
        "daily_stake": (None, None, None),
        "weekly_stake": (20_000, 40_000, raise_ts + COOLING_OFF_MS),
        "daily_loss": (None, None, None),
        "weekly_loss": (None, None, None),
    }
    assert set_ts < raise_ts
    assert [tuple(r) for r in exclusions] == [
        ("u3", exclude.ts + 7 * 86_400_000, exclude.seq, exclude.ts)]
    assert [(r["ref"], r["user_id"], r["amount_minor"], r["code"], r["seq"]) for r in refused] \
        == [("dep-u2-big", "u2", 5_001, "SELF_DEPOSIT_LIMIT", deposit_seq)]
    assert "daily deposit limit 50.00" in refused[0]["reason"]
    assert after == before

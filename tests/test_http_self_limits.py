"""The bettors' own limits over HTTP: the bettor's mirrors of `selflimits`, `selflimits.set`
and `selfexclude`, the operator's (acting at a bettor's request, by the same rules), the user
view an operator looks at, deposit notices the bettor's limits refuse, and the rows Postgres
keeps. Real Redis, Postgres and engine behind the real HTTP app."""

import asyncio
import time

import orjson
import pytest

from engine import commands as c
from gateway import protocol as p
from gateway.openapi import build_openapi
from tests.http_fixtures import http_exchange  # noqa: F401  (pytest fixture)

COOLING_OFF_MS = 86_400_000


def notice(user: str, amount: str, ref: str) -> dict:
    return {"ref": ref, "user": user, "amount": amount, "currency": "BDT",
            "ts": int(time.time())}


async def call(x, method: str, path: str, body=None, user: str = "u1", *roles: str):
    headers = x.auth(user, *(roles or ("bettor",)))
    data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
    response = await x.client.request(method, path, data=data, headers=headers)
    return response.status, await response.json()


def test_a_bettor_sets_reads_and_is_held_to_their_own_limits(http_exchange):
    async def scenario(x):
        await x.deposit("u1", 100_000)
        await x.open_market("m1", "s1", "s2")
        set_ = await call(x, "POST", "/account/selflimits",
                          {"daily_stake": "20.00", "weekly_deposit": "2000.00"})
        raised = await call(x, "POST", "/account/selflimits", {"daily_stake": "50.00"})
        events = await x.exchange.submit(c.PlaceOrder(
            user="u1", market="m1", selection="s1", side="back", price=500, size_minor=2_001))
        read = await call(x, "GET", "/account/selflimits")
        return set_, raised, events, read

    (status, body), (raised_status, raised), events, (read_status, read) = \
        http_exchange(scenario)
    assert status == raised_status == read_status == 200
    assert body["limits"]["daily_stake"] == {
        "limit": "20.00", "used": "0.00", "left": "20.00",
        "resets_ts": body["limits"]["daily_stake"]["resets_ts"], "pending": None}
    assert body["limits"]["weekly_deposit"]["used"] == "1000.00"
    pending = raised["limits"]["daily_stake"]["pending"]
    assert raised["limits"]["daily_stake"]["limit"] == "20.00" and pending["limit"] == "50.00"
    assert events[0].code == "SELF_STAKE_LIMIT"
    assert read["limits"]["daily_stake"]["pending"] == pending
    assert read["limits"]["daily_stake"]["used"] == "0.00"
    assert read == {**raised, "limits": read["limits"]}


def test_a_raise_applies_once_its_cooling_off_period_has_passed(http_exchange):
    async def scenario(x):
        await x.submit(c.ConfigureSelfLimits(cooling_off_ms=50))
        await call(x, "POST", "/account/selflimits", {"daily_loss": "10.00"})
        _, raised = await call(x, "POST", "/account/selflimits", {"daily_loss": "30.00"})
        await asyncio.sleep(0.2)
        return raised, await call(x, "GET", "/account/selflimits")

    raised, (status, read) = http_exchange(scenario)
    assert raised["cooling_off_ms"] == 50
    assert raised["limits"]["daily_loss"]["limit"] == "10.00"
    assert raised["limits"]["daily_loss"]["pending"]["limit"] == "30.00"
    assert (read["limits"]["daily_loss"]["limit"], read["limits"]["daily_loss"]["pending"]) == (
        "30.00", None)


def test_an_operator_sets_limits_and_excludes_at_a_bettors_request(http_exchange):
    async def scenario(x):
        await x.deposit("u2", 50_000)
        await x.open_market("m1", "s1", "s2")
        await x.submit(c.PlaceOrder(user="u2", market="m1", selection="s1", side="back",
                                    price=500, size_minor=1_000))
        limits = await call(x, "POST", "/admin/users/u2/selflimits", {"weekly_loss": "80.00"},
                            "ops", "operator")
        excluded = await call(x, "POST", "/admin/users/u2/selfexclusion", {"days": 180},
                              "ops", "operator")
        detail = await call(x, "GET", "/admin/users/u2", None, "ops", "operator")
        refused = await x.webhook(notice("u2", "5.00", "after-exclusion"))
        return limits, excluded, detail, refused.status, await refused.json()

    (status, limits), (ex_status, excluded), (detail_status, detail), refused_status, refused = \
        http_exchange(scenario)
    assert status == ex_status == detail_status == 200
    assert limits["limits"]["weekly_loss"]["limit"] == "80.00"
    assert limits["limits"]["weekly_loss"]["at_risk"] == "10.00"
    [order] = excluded["cancelled"]
    assert (order["cancelled"], order["status"]) == ("10.00", "EXECUTION_COMPLETE")
    until = excluded["excluded_until"]
    assert detail["self_excluded_until"] == until
    [own] = detail["self_limits"]
    assert own["excluded_until"] == until and own["limits"]["weekly_loss"]["limit"] == "80.00"
    assert detail["open_orders"] == [] and detail["wallets"][0]["held"] == "0.00"
    assert (refused_status, refused["code"]) == (409, "SELF_EXCLUDED")


def test_a_deposit_past_the_bettors_limit_is_409_for_good_and_credits_nothing(http_exchange):
    async def scenario(x):
        await call(x, "POST", "/account/selflimits", {"daily_deposit": "100.00"})
        first = await x.webhook(notice("u1", "100.01", "big"))
        retry = await x.webhook(notice("u1", "100.01", "big"))
        other = await x.webhook(notice("u1", "100.02", "big"))
        fits = await x.webhook(notice("u1", "100.00", "fits"))
        return ([(r.status, await r.json()) for r in (first, retry, other, fits)],
                await x.wallet("u1"))

    (first, retry, other, fits), wallet = http_exchange(scenario)
    assert first[0] == 409 and first[1]["code"] == "SELF_DEPOSIT_LIMIT"
    assert "daily deposit limit 100.00: 100.00 left today" in first[1]["message"]
    assert retry == first
    assert (other[0], other[1]["code"]) == (409, "DUPLICATE_REF")
    assert fits[0] == 200 and wallet == (10_000, 0)


@pytest.mark.parametrize("method, path, roles", [
    ("GET", "/account/selflimits", ("trader",)),
    ("POST", "/account/selflimits", ("operator",)),
    ("POST", "/account/selfexclusion", ("trader",)),
    ("POST", "/admin/users/u1/selflimits", ("bettor",)),
    ("POST", "/admin/users/u1/selfexclusion", ("bettor", "trader")),
])
def test_each_endpoint_answers_only_its_roles(http_exchange, method, path, roles):
    async def scenario(x):
        wrong = await call(x, method, path, {"days": 1}, "u1", *roles)
        response = await x.client.request(method, path, data=b"{}")
        return wrong, response.status

    (status, body), anonymous = http_exchange(scenario)
    assert (status, body["code"], anonymous) == (403, "FORBIDDEN", 401)


@pytest.mark.parametrize("path, body, code", [
    ("/account/selflimits", {}, "BAD_REQUEST"),
    ("/account/selflimits", {"daily_stake": "1.001"}, "INVALID_SIZE"),
    ("/account/selflimits", {"op": "selflimits.set", "daily_stake": "1.00"}, "BAD_REQUEST"),
    ("/account/selflimits", {"id": 1, "daily_stake": "1.00"}, "BAD_REQUEST"),
    ("/account/selflimits", {"daily_stake": "1.00", "currency": "USD"}, "BAD_REQUEST"),
    ("/account/selflimits", {"user": "u2", "daily_stake": "1.00"}, "BAD_REQUEST"),
    ("/account/selflimits", b"[1]", "BAD_REQUEST"),
    ("/account/selfexclusion", {}, "BAD_REQUEST"),
    ("/account/selfexclusion", {"days": 0}, "BAD_REQUEST"),
    ("/account/selfexclusion", {"until": 1}, "BAD_REQUEST"),
])
def test_a_bad_body_is_refused_with_its_code_and_changes_nothing(http_exchange, path, body,
                                                                 code):
    async def scenario(x):
        before = await call(x, "GET", "/account/selflimits")
        refused = await call(x, "POST", path, body)
        after = await call(x, "GET", "/account/selflimits")
        return before, refused, after

    (_, before), (status, refused), (_, after) = http_exchange(scenario)
    assert (status, refused["code"]) == (400, code)
    assert after == {**before, "limits": after["limits"]}
    assert [e["limit"] for e in after["limits"].values()] == [None] * 6


def test_an_operator_gets_unknown_user_for_a_malformed_id_and_forbidden_for_the_house(
        http_exchange):
    async def scenario(x):
        return (await call(x, "POST", "/admin/users/bad%20id/selflimits", {"daily_stake": "1"},
                           "ops", "operator"),
                await call(x, "POST", "/admin/users/house/selfexclusion", {"days": 1},
                           "ops", "operator"))

    (bad_status, bad), (house_status, house) = http_exchange(scenario)
    assert (bad_status, bad["code"]) == (404, "UNKNOWN_USER")
    assert (house_status, house["code"]) == (403, "FORBIDDEN")


def test_own_limits_reach_the_postgres_read_model(http_exchange):
    async def scenario(x):
        await call(x, "POST", "/account/selflimits", {"daily_stake": "20.00"})
        _, raised = await call(x, "POST", "/account/selflimits", {"daily_stake": None})
        _, excluded = await call(x, "POST", "/account/selfexclusion", {"days": 2})
        last = await x.exchange.sequencer.journal.last_seq()
        while x.persister.persisted_seq < last:
            await asyncio.sleep(0.02)
        pool = x.exchange.pg_pool
        return (raised, excluded,
                await pool.fetchrow("SELECT value_minor, pending_value_minor, pending_ts_ms "
                                    "FROM self_limits WHERE user_id = 'u1' "
                                    "AND limit_name = 'daily_stake'"),
                await pool.fetchval("SELECT until_ts_ms FROM self_exclusions "
                                    "WHERE user_id = 'u1'"))

    raised, excluded, row, until = http_exchange(scenario, persister="running")
    pending = raised["limits"]["daily_stake"]["pending"]
    assert tuple(row) == (2_000, None, pending["effective_ts"])
    assert until == excluded["excluded_until"]


@pytest.mark.parametrize("model, schema", [(p.SelfLimitsSet, "SelfLimitsRequest"),
                                           (p.SelfExclude, "SelfExclusionRequest")])
def test_the_http_bodies_are_the_ops_without_op_and_id(model, schema):
    described = build_openapi()["components"]["schemas"][schema]
    assert set(described["properties"]) == set(model.model_fields) - {"op", "id"}
    assert described["required"] == [] and described["additionalProperties"] is False

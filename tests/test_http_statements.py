"""Statements, cleared orders and currencies over HTTP: GET /wallet/statement and
/orders/cleared for the bettor's own token, /admin/users/{id}/statement and /cleared for an
operator, deposits, withdrawals and /admin/users/{id} in every configured currency."""

import time

import pytest

from engine import commands as c
from tests.http_fixtures import http_exchange  # noqa: F401  (pytest fixture)

TWO = {"currencies": ["BDT", "USD"]}


async def get(x, path: str, who: str = "u1", roles=("bettor",), **params):
    response = await x.client.get(path, params=params, headers=x.auth(who, *roles))
    return response.status, await response.json(), response.headers


async def traded_and_settled(x) -> None:
    """u1 backs s1 at 3.00 for 10.00 against u2's lay; s1 wins."""
    await x.deposit("u1", 10_000)
    await x.deposit("u2", 10_000)
    await x.open_market("m1", "s1", "s2")
    await x.submit(c.PlaceOrder(user="u2", market="m1", selection="s1", side="lay", price=300,
                                size_minor=1_000))
    await x.submit(c.PlaceOrder(user="u1", market="m1", selection="s1", side="back", price=300,
                                size_minor=1_000))
    await x.submit(c.SettleMarket(market="m1", winners=("s1",)))


def test_a_bettor_reads_their_own_statement_and_cleared_bets(http_exchange):
    async def scenario(x):
        await traded_and_settled(x)
        return (await get(x, "/wallet/statement", sort="oldest"),
                await get(x, "/orders/cleared"), await get(x, "/wallet/statement", who="u2"))

    (status, body, headers), (c_status, cleared, _), (_, theirs, _) = http_exchange(
        scenario, persister="running")
    assert status == c_status == 200
    assert body["user"] == "u1" and headers["X-Backlay-Persisted-Seq"] == str(body["as_of_seq"])
    assert [(m["kind"], m["amount"], m["commission"], m["balance"])
            for m in body["movements"]] == [
        ("deposit", "100.00", "0.00", "100.00"), ("hold", "0.00", "0.00", "100.00"),
        ("settlement", "19.00", "1.00", "119.00")]
    assert [(b["result"], b["profit"]) for b in cleared["orders"]] == [("won", "20.00")]
    assert [(m["profit"], m["commission"], m["net"]) for m in cleared["markets"]] == [
        ("20.00", "1.00", "19.00")]
    assert theirs["user"] == "u2" and theirs["movements"][0]["amount"] == "-20.00"


def test_an_operator_reads_any_customers_statement_and_cleared_bets(http_exchange):
    async def scenario(x):
        await traded_and_settled(x)
        return (await get(x, "/admin/users/u1/statement", "op", ("operator",), limit="1"),
                await get(x, "/admin/users/u2/cleared", "op", ("operator",)),
                await get(x, "/admin/users/u1/statement", "u2", ("bettor",)),
                await get(x, "/admin/users/nobody/statement", "op", ("operator",)),
                await get(x, "/admin/users/house/cleared", "op", ("operator",)))

    statement, cleared, bettor, nobody, house = http_exchange(scenario, persister="running")
    assert statement[0] == 200 and statement[1]["user"] == "u1"
    assert [m["kind"] for m in statement[1]["movements"]] == ["settlement"]
    assert statement[1]["next"].startswith("s")
    assert [b["result"] for b in cleared[1]["orders"]] == ["lost"]
    assert (bettor[0], bettor[1]["code"]) == (403, "FORBIDDEN")
    assert (nobody[0], nobody[1]["code"]) == (404, "UNKNOWN_USER")
    assert (house[0], house[1]["code"]) == (400, "BAD_REQUEST")


@pytest.mark.parametrize("params, code", [
    ({"limit": "0"}, "BAD_REQUEST"),
    ({"limit": "501"}, "BAD_REQUEST"),
    ({"limit": "ten"}, "BAD_REQUEST"),
    ({"cursor": "s1"}, "BAD_REQUEST"),
    ({"sort": "random"}, "BAD_REQUEST"),
    ({"currency": "EUR"}, "BAD_REQUEST"),
    ({"user": "u2"}, "BAD_REQUEST"),  # there is no asking for someone else's
    ({"from_ts": "9", "to_ts": "3"}, "BAD_REQUEST"),
    ({"to_ts": "99999999999999999"}, "BAD_REQUEST"),
    ({"market": "nope"}, "UNKNOWN_MARKET"),
])
def test_bad_parameters_are_refused_with_a_code(http_exchange, params, code):
    async def scenario(x):
        await x.deposit("u1", 100)
        return await get(x, "/wallet/statement", **params)

    status, body, _ = http_exchange(scenario, persister="running")
    assert (status, body["code"]) == ({"BAD_REQUEST": 400, "UNKNOWN_MARKET": 404}[code], code)


def test_a_persister_that_does_not_catch_up_is_503_read_model_behind(http_exchange):
    async def scenario(x):
        await x.deposit("u1", 100)
        return await get(x, "/wallet/statement")

    status, body, headers = http_exchange(scenario, persister="idle", statement_wait_ms_max=50)
    assert (status, body["code"]) == (503, "READ_MODEL_BEHIND")
    assert headers["Retry-After"] == "1"


def test_a_history_needs_a_token(http_exchange):
    async def scenario(x):
        response = await x.client.get("/orders/cleared")
        return response.status, await response.json()

    status, body = http_exchange(scenario)
    assert (status, body["code"]) == (401, "UNAUTHENTICATED")


# -- currencies -----------------------------------------------------------------------------------


def _notice(currency: str, ref: str = "ext-1") -> dict:
    return {"ref": ref, "user": "u1", "amount": "12.00", "currency": currency,
            "ts": int(time.time())}


def test_deposits_and_withdrawals_work_in_every_configured_currency(http_exchange):
    async def scenario(x):
        deposited = await x.webhook(_notice("USD"))
        refused = await x.webhook(_notice("EUR", "ext-2"))
        withdrawal = await x.client.post("/wallet/withdrawals", headers=x.auth("u1", "bettor"),
                                         json={"amount": "2.00", "currency": "USD"})
        detail = await x.client.get("/admin/users/u1", headers=x.auth("op", "operator"))
        return ((deposited.status, await deposited.json()),
                (refused.status, await refused.json()),
                (withdrawal.status, await withdrawal.json()), await detail.json())

    deposited, refused, withdrawal, detail = http_exchange(scenario, **TWO)
    assert deposited == (200, {"ref": "ext-1", "user": "u1", "amount": "12.00",
                               "currency": "USD", "status": "credited"})
    assert (refused[0], refused[1]["code"]) == (400, "BAD_REQUEST")
    assert "BDT, USD" in refused[1]["message"]
    assert withdrawal[0] == 201 and withdrawal[1]["wallet"] == {
        "currency": "USD", "balance": "12.00", "held": "2.00", "available": "10.00"}
    # every configured currency, the default first, a wallet or not
    assert detail["wallets"] == [
        {"currency": "BDT", "balance": "0.00", "held": "0.00", "available": "0.00"},
        {"currency": "USD", "balance": "12.00", "held": "2.00", "available": "10.00"}]


def test_only_the_default_currency_is_configured_unless_more_are(http_exchange):
    async def scenario(x):
        response = await x.webhook(_notice("USD"))
        return response.status, await response.json()

    status, body = http_exchange(scenario)
    assert (status, body["code"]) == (400, "BAD_REQUEST")

"""Withdrawals: a bettor asks (the amount is held), an operator approves (paid out) or rejects
(released); each is decided once."""

import pytest

from engine import commands as c
from tests.http_fixtures import http_exchange  # noqa: F401  (pytest fixture)


async def request(x, amount: str, user: str = "u1", roles=("bettor",), **extra):
    response = await x.client.post("/wallet/withdrawals", json={"amount": amount, **extra},
                                   headers=x.auth(user, *roles))
    return response.status, await response.json()


async def decide(x, wid: str, verb: str, roles=("operator",)):
    response = await x.client.post(f"/admin/withdrawals/{wid}/{verb}",
                                   headers=x.auth("op", *roles))
    return response.status, await response.json()


def test_a_request_holds_the_amount_and_is_201_pending(http_exchange):
    async def scenario(x):
        await x.deposit("u1", 10_000)
        return await request(x, "30.00", currency="BDT"), await x.wallet("u1")

    (status, body), wallet = http_exchange(scenario)
    assert status == 201
    assert body["withdrawal"].startswith("w")
    assert {k: body[k] for k in ("amount", "currency", "status", "wallet")} == {
        "amount": "30.00", "currency": "BDT", "status": "pending",
        "wallet": {"currency": "BDT", "balance": "100.00", "held": "30.00",
                   "available": "70.00"}}
    assert wallet == (10_000, 3_000)


def test_a_request_above_the_available_balance_is_409_insufficient_funds(http_exchange):
    async def scenario(x):
        await x.deposit("u1", 10_000)
        await x.open_market("m1", "s1", "s2")
        await x.submit(c.PlaceOrder(user="u1", market="m1", selection="s1", side="back",
                                    price=300, size_minor=8_000))  # holds 80.00
        return await request(x, "20.01"), await x.wallet("u1")

    (status, body), wallet = http_exchange(scenario)
    assert (status, body["code"]) == (409, "INSUFFICIENT_FUNDS")
    assert wallet == (10_000, 8_000)


def test_a_user_without_a_wallet_cannot_withdraw(http_exchange):
    async def scenario(x):
        return await request(x, "1.00", user="newcomer")

    status, body = http_exchange(scenario)
    assert (status, body["code"]) == (409, "INSUFFICIENT_FUNDS")


def test_approval_pays_out_and_releases_the_hold(http_exchange):
    async def scenario(x):
        await x.deposit("u1", 10_000)
        _, pending = await request(x, "30.00")
        decided = await decide(x, pending["withdrawal"], "approve")
        return pending["withdrawal"], decided, await x.wallet("u1"), await x.wallet("external")

    wid, (status, body), wallet, external = http_exchange(scenario)
    assert status == 200
    assert body == {"withdrawal": wid, "user": "u1", "amount": "30.00", "currency": "BDT",
                    "status": "approved",
                    "wallet": {"currency": "BDT", "balance": "70.00", "held": "0.00",
                               "available": "70.00"}}
    assert wallet == (7_000, 0)
    assert external[0] == -10_000 + 3_000  # money left the exchange, double entry


def test_rejection_releases_the_hold_and_keeps_the_money(http_exchange):
    async def scenario(x):
        await x.deposit("u1", 10_000)
        _, pending = await request(x, "30.00")
        decided = await decide(x, pending["withdrawal"], "reject", roles=("admin",))
        return decided, await x.wallet("u1")

    (status, body), wallet = http_exchange(scenario)
    assert (status, body["status"], body["amount"]) == (200, "rejected", "30.00")
    assert wallet == (10_000, 0)


@pytest.mark.parametrize("first, second", [("approve", "approve"), ("approve", "reject"),
                                           ("reject", "approve"), ("reject", "reject")])
def test_a_decided_withdrawal_cannot_be_decided_again(http_exchange, first, second):
    async def scenario(x):
        await x.deposit("u1", 10_000)
        _, pending = await request(x, "30.00")
        await decide(x, pending["withdrawal"], first)
        return await decide(x, pending["withdrawal"], second), await x.wallet("u1")

    (status, body), wallet = http_exchange(scenario)
    assert (status, body["code"]) == (409, "WITHDRAWAL_DECIDED")
    assert wallet == ((7_000, 0) if first == "approve" else (10_000, 0))


@pytest.mark.parametrize("wid", ["w999", "w1", "x1", "w0"])
def test_an_unknown_withdrawal_is_404(http_exchange, wid):
    async def scenario(x):
        await x.deposit("u1", 10_000)  # seq 1: "w1" is a deposit's seq, not a withdrawal
        return await decide(x, wid, "approve")

    status, body = http_exchange(scenario)
    assert (status, body["code"]) == (404, "UNKNOWN_WITHDRAWAL")


@pytest.mark.parametrize("roles", [("bettor",), ("trader",)])
def test_only_operators_and_admins_decide(http_exchange, roles):
    async def scenario(x):
        await x.deposit("u1", 10_000)
        _, pending = await request(x, "30.00")
        return await decide(x, pending["withdrawal"], "approve", roles=roles), \
            await x.wallet("u1")

    (status, body), wallet = http_exchange(scenario)
    assert (status, body["code"]) == (403, "FORBIDDEN")
    assert wallet == (10_000, 3_000)


def test_requesting_needs_a_bettor_token(http_exchange):
    async def scenario(x):
        await x.deposit("u1", 10_000)
        anonymous = await x.client.post("/wallet/withdrawals", json={"amount": "1.00"})
        trader = await request(x, "1.00", roles=("trader",))
        return anonymous.status, trader[0], await x.wallet("u1")

    assert http_exchange(scenario) == (401, 403, (10_000, 0))


def test_deciding_needs_a_token(http_exchange):
    async def scenario(x):
        response = await x.client.post("/admin/withdrawals/w1/approve")
        return response.status, (await response.json())["code"]

    assert http_exchange(scenario) == (401, "UNAUTHENTICATED")


@pytest.mark.parametrize("body, code", [
    ({"amount": "1.005"}, "INVALID_SIZE"),  # malformed money, as on the WebSocket
    ({"amount": 5}, "INVALID_SIZE"),
    ({}, "BAD_REQUEST"),
    ({"amount": "1.00", "currency": "USD"}, "BAD_REQUEST"),
    ({"amount": "1.00", "user": "u2"}, "BAD_REQUEST"),  # the user comes from the token only
    ({"amount": "0"}, "INVALID_SIZE"),
])
def test_a_malformed_request_is_400_and_holds_nothing(http_exchange, body, code):
    async def scenario(x):
        await x.deposit("u1", 10_000)
        response = await x.client.post("/wallet/withdrawals", json=body,
                                       headers=x.auth("u1", "bettor"))
        return response.status, (await response.json())["code"], await x.wallet("u1")

    assert http_exchange(scenario) == (400, code, (10_000, 0))


async def listing(x, path: str, user: str, *roles: str, **query):
    response = await x.client.get(path, params=query, headers=x.auth(user, *roles))
    return response.status, await response.json()


def test_operators_list_the_pending_queue_oldest_first_and_bettors_their_own(http_exchange):
    async def scenario(x):
        for user in ("u1", "u2"):
            await x.deposit(user, 10_000)
        _, first = await request(x, "10.00", user="u1")
        _, second = await request(x, "20.00", user="u2")
        _, third = await request(x, "30.00", user="u1")
        await decide(x, first["withdrawal"], "approve")
        return ([first["withdrawal"], second["withdrawal"], third["withdrawal"]],
                await listing(x, "/admin/withdrawals", "op", "operator"),
                await listing(x, "/admin/withdrawals", "op", "admin", status="all", limit="2"),
                await listing(x, "/wallet/withdrawals", "u1", "bettor"),
                await listing(x, "/wallet/withdrawals", "u1", "bettor", status="approved"))

    (w1, w2, w3), queue, everything, mine, approved = http_exchange(scenario)
    assert queue == (200, {"count": 2, "withdrawals": [
        {"withdrawal": w2, "user": "u2", "amount": "20.00", "currency": "BDT",
         "status": "pending"},
        {"withdrawal": w3, "user": "u1", "amount": "30.00", "currency": "BDT",
         "status": "pending"}]})
    assert everything[0] == 200 and everything[1]["count"] == 3
    assert [w["withdrawal"] for w in everything[1]["withdrawals"]] == [w1, w2]  # limit 2
    assert mine[0] == 200 and [(w["withdrawal"], w["status"]) for w in mine[1]["withdrawals"]] \
        == [(w1, "approved"), (w3, "pending")]  # never another user's
    assert approved == (200, {"count": 1, "withdrawals": [
        {"withdrawal": w1, "user": "u1", "amount": "10.00", "currency": "BDT",
         "status": "approved"}]})


@pytest.mark.parametrize("path, roles, query, expected", [
    ("/admin/withdrawals", ("bettor",), {}, (403, "FORBIDDEN")),
    ("/admin/withdrawals", ("trader",), {}, (403, "FORBIDDEN")),
    ("/wallet/withdrawals", ("operator",), {}, (403, "FORBIDDEN")),
    ("/admin/withdrawals", ("operator",), {"status": "done"}, (400, "BAD_REQUEST")),
    ("/admin/withdrawals", ("operator",), {"limit": "0"}, (400, "BAD_REQUEST")),
    ("/wallet/withdrawals", ("bettor",), {"limit": "1001"}, (400, "BAD_REQUEST")),
    ("/wallet/withdrawals", ("bettor",), {"limit": "-1"}, (400, "BAD_REQUEST")),
])
def test_withdrawal_lists_check_role_and_query(http_exchange, path, roles, query, expected):
    async def scenario(x):
        status, body = await listing(x, path, "u1", *roles, **query)
        anonymous = await x.client.get(path)
        return (status, body["code"]), anonymous.status

    assert http_exchange(scenario) == (expected, 401)

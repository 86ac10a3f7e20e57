"""Deposit webhooks: a signed, fresh notice credits the wallet exactly once per provider ref;
anything unsigned, stale or malformed credits nothing."""

import asyncio
import time

import orjson
import pytest

from engine import events as ev
from tests.http_fixtures import http_exchange  # noqa: F401  (pytest fixture)


def notice(**fields) -> dict:
    return {"ref": "ext-123", "user": "u1", "amount": "100.00", "currency": "BDT",
            "ts": int(time.time()), **fields}


async def journaled(x, event_type) -> int:
    """How many events of `event_type` the journal holds."""
    return sum([isinstance(e, event_type)
                async for _, _, events in x.exchange.sequencer.journal.read() for e in events])


def test_a_signed_notice_credits_the_wallet(http_exchange):
    async def scenario(x):
        response = await x.webhook(notice())
        return response.status, await response.json(), await x.wallet("u1")

    status, body, wallet = http_exchange(scenario)
    assert status == 200
    assert body == {"ref": "ext-123", "user": "u1", "amount": "100.00", "currency": "BDT",
                    "status": "credited"}
    assert wallet == (10_000, 0)


def test_a_replayed_notice_returns_the_first_result_and_credits_once(http_exchange):
    async def scenario(x):
        first = await x.webhook(notice())
        # the provider retries later: a new ts, so a new signature, the same ref
        again = await x.webhook(notice(ts=int(time.time()) - 5))
        replay = await x.webhook(notice())
        return ([(r.status, await r.read()) for r in (first, again, replay)],
                await x.wallet("u1"), await journaled(x, ev.DepositRepeated))

    responses, wallet, repeats = http_exchange(scenario)
    assert [status for status, _ in responses] == [200, 200, 200]
    assert responses[0][1] == responses[1][1] == responses[2][1]
    assert wallet == (10_000, 0)
    assert repeats == 2


def test_the_same_ref_with_another_amount_is_a_409_and_credits_nothing(http_exchange):
    async def scenario(x):
        await x.webhook(notice())
        response = await x.webhook(notice(amount="999.00"))
        return response.status, await response.json(), await x.wallet("u1")

    status, body, wallet = http_exchange(scenario)
    assert (status, body["code"]) == (409, "DUPLICATE_REF")
    assert wallet == (10_000, 0)


def test_refs_are_per_provider(http_exchange):
    async def scenario(x):
        a = await x.webhook(notice(), provider="bkash")
        b = await x.webhook(notice(), provider="nagad")
        return a.status, b.status, await x.wallet("u1")

    assert http_exchange(scenario) == (200, 200, (20_000, 0))


@pytest.mark.parametrize("signature", [
    "",
    "sha256=",
    "sha256=" + "0" * 64,
    "md5=abc",
    "wrong-secret",
    "other-body",
])
def test_a_missing_or_bad_signature_is_401_and_credits_nothing(http_exchange, signature):
    async def scenario(x):
        from gateway.webhooks import sign

        body = orjson.dumps(notice())
        header = {"wrong-secret": sign("not-the-secret", body),
                  "other-body": sign(x.settings.webhook_secret, body + b" ")}.get(signature,
                                                                                   signature)
        response = await x.webhook(body, signature=header)
        return response.status, (await response.json())["code"], await x.wallet("u1")

    assert http_exchange(scenario) == (401, "UNAUTHENTICATED", (0, 0))


def test_a_notice_without_the_signature_header_is_401(http_exchange):
    async def scenario(x):
        response = await x.client.post("/webhooks/deposits/bkash", data=orjson.dumps(notice()))
        return response.status, (await response.json())["code"]

    assert http_exchange(scenario) == (401, "UNAUTHENTICATED")


def test_the_signature_hex_may_be_upper_case(http_exchange):
    async def scenario(x):
        from gateway.webhooks import sign

        body = orjson.dumps(notice())
        header = "sha256=" + sign(x.settings.webhook_secret, body).removeprefix("sha256=").upper()
        response = await x.webhook(body, signature=header)
        return response.status

    assert http_exchange(scenario) == 200


@pytest.mark.parametrize("age_s", [301, -301, 86_400])
def test_a_stale_or_future_notice_is_400_even_when_signed(http_exchange, age_s):
    async def scenario(x):
        response = await x.webhook(notice(ts=int(time.time()) - age_s))
        return response.status, await response.json(), await x.wallet("u1")

    status, body, wallet = http_exchange(scenario)
    assert (status, body["code"]) == (400, "BAD_REQUEST")
    assert "stale" in body["message"]
    assert wallet == (0, 0)


@pytest.mark.parametrize("body, code", [
    (b"not json", "BAD_REQUEST"),
    (b"[1, 2]", "BAD_REQUEST"),
    (orjson.dumps({"ref": "x", "user": "u1", "amount": "1.00", "currency": "BDT"}),
     "BAD_REQUEST"),  # no ts
    ({"amount": "1.005"}, "INVALID_SIZE"),
    # malformed money is INVALID_SIZE, as on the WebSocket
    ({"amount": 100}, "INVALID_SIZE"),
    ({"amount": "-5.00"}, "INVALID_SIZE"),
    ({"ts": "now"}, "BAD_REQUEST"),
    ({"user": ""}, "BAD_REQUEST"),
    ({"user": "house"}, "BAD_REQUEST"),
    ({"currency": "USD"}, "BAD_REQUEST"),
    ({"ref": "has space"}, "BAD_REQUEST"),
    ({"amount": "0.00"}, "INVALID_SIZE"),
])
def test_a_signed_but_malformed_notice_is_400_and_credits_nothing(http_exchange, body, code):
    # a notice (fields over the good one) is dated when the test runs: a ts taken when tests are
    # collected is stale past webhook_tolerance_s into a long run
    raw = body if isinstance(body, bytes) else orjson.dumps(notice(**body))

    async def scenario(x):
        response = await x.webhook(raw)
        return response.status, (await response.json())["code"], await x.wallet("u1"), \
            await x.wallet("house")

    assert http_exchange(scenario) == (400, code, (0, 0), (0, 0))


def test_unknown_fields_from_the_provider_are_ignored(http_exchange):
    async def scenario(x):
        response = await x.webhook(notice(method="card", fee="1.00"))
        return response.status, await x.wallet("u1")

    assert http_exchange(scenario) == (200, (10_000, 0))


def test_a_body_over_64_kib_is_413(http_exchange):
    async def scenario(x):
        body = orjson.dumps(notice(padding="x" * 70_000))
        response = await x.webhook(body)
        return response.status, await x.wallet("u1")

    assert http_exchange(scenario) == (413, (0, 0))


def test_a_malformed_provider_name_is_404(http_exchange):
    async def scenario(x):
        response = await x.webhook(notice(), provider="Bad.Provider")
        return response.status, (await response.json())["code"]

    assert http_exchange(scenario) == (404, "NOT_FOUND")


def test_a_credited_notice_reaches_the_postgres_ledger_once(http_exchange):
    async def scenario(x):
        await x.webhook(notice())
        await x.webhook(notice())  # a repeat: no second movement
        last = await x.exchange.sequencer.journal.last_seq()
        while x.persister.persisted_seq < last:
            await asyncio.sleep(0.02)
        return await x.exchange.pg_pool.fetch(
            "SELECT account, amount_minor FROM ledger_entries WHERE ref = $1 ORDER BY entry",
            "bkash:ext-123")

    rows = http_exchange(scenario, persister="running")
    assert [tuple(r) for r in rows] == [("external", -10_000), ("u1", 10_000)]

"""The operator's GGR report (GET /admin/reports/ggr, docs/reports.md) in the split shape: two
real shards behind two gateways (gateway/split/reports.py). Markets live on both shards and
bettors trade on both; the report has every shard's markets, day and currency totals exact
(money summed, a bettor who traded on both shards counted once), GGR equal to what each shard's
house and commission accounts booked, seeded users left out on every shard, each shard's
persisted seq, and the same rows as CSV.
"""

import asyncio
import csv
import io
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

pytest.register_assert_rewrite("tests.ws_fixtures", "tests.split_fixtures")

from engine.money import format_money  # noqa: E402
from gateway.reports import ggr_report  # noqa: E402
from gateway.split.engine_node import with_schema  # noqa: E402
from gateway.split.shards import SEQ_SPAN, base_seq, schema  # noqa: E402
from tests.split_fixtures import split_exchange  # noqa: E402
from tests.ws_fixtures import Harness, minor, placed  # noqa: E402

SETTLE_TIMEOUT_S = 20.0
FIGURES = ("markets", "bettors", "matched", "commission", "house_pnl", "ggr", "deductions", "ngr")


async def _persisted_everything(x) -> list[int]:
    """Each shard's last journaled seq, once no transfer is pending and its read model holds
    everything up to it."""
    deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT_S
    while True:
        engines = await x.engines()
        persisted = [(await x.read_model(k, "SELECT seq FROM persisted"))[0]["seq"]
                     for k in x.shards.all]
        last = [e.last_seq for e in engines]
        if (not any(e.transfers.pending for e in engines)
                and all(p >= s for p, s in zip(persisted, last))):
            return last
        assert asyncio.get_running_loop().time() < deadline, f"never persisted: {persisted}"
        await asyncio.sleep(0.2)


async def _per_shard(x, day_from, day_to) -> list[dict]:
    """The one-process report of each shard's read model alone, with seeded users."""
    reports = []
    for k in x.shards.all:
        pool = await asyncpg.create_pool(with_schema(x.database_url, schema(k)), min_size=1,
                                         max_size=1)
        try:
            reports.append(await ggr_report(pool, day_from, day_to, True))
        finally:
            await pool.close()
    return reports


async def _booked(x) -> dict[str, int]:
    """What the house and commission accounts booked per market, over every shard's ledger."""
    booked: dict[str, int] = {}
    for k in x.shards.all:
        for r in await x.read_model(
                k, "SELECT ref, sum(amount_minor)::bigint AS total FROM ledger_entries "
                   "WHERE account IN ('house', 'commission') "
                   "AND kind IN ('settlement', 'commission') GROUP BY ref"):
            assert r["ref"] not in booked, "a market booked on two shards"
            booked[r["ref"]] = r["total"]
    return booked


def test_the_ggr_report_covers_every_shard_with_exact_totals(
        redis_url, migrated_database_url, run):
    with split_exchange(redis_url, migrated_database_url) as x:
        async def scenario():
            h = Harness(x.server)
            try:
                trader = await h.trader()
                m0 = await h.market(trader, market=h.market_id(0))
                m1 = await h.market(trader, market=h.market_id(1))
                m1b = await h.market(trader, market=h.market_id(1))
                alice, bob = await h.bettor("alice"), await h.bettor("bob")
                carol, dave = await h.bettor("carol"), await h.bettor("dave")
                # alice and bob trade on both shards, dave on shard 0 only, carol on shard 1
                await placed(alice, m0, "s1", "back", "2.00", "10.00")
                await placed(bob, m0, "s1", "lay", "2.00", "10.00")
                await placed(dave, m0, "s2", "back", "3.00", "5.00")
                await placed(bob, m0, "s2", "lay", "3.00", "5.00")
                await placed(alice, m1, "s1", "back", "2.00", "10.00")
                await placed(bob, m1, "s1", "lay", "2.00", "10.00")
                await placed(carol, m1b, "s1", "back", "2.50", "4.00")
                await placed(alice, m1b, "s1", "lay", "2.50", "4.00")
                for market in (m0, m1, m1b):
                    await trader.ok({"op": "market.settle", "market": market,
                                     "winners": ["s1"]}, "market")
                last = await _persisted_everything(x)
                # the shards settled today by their clocks: a range around it holds them all
                today = datetime.now(timezone.utc).date()
                day_from, day_to = today - timedelta(days=1), today + timedelta(days=1)
                query = f"from={day_from}&to={day_to}&include_seeded=true"
                auth = {"Authorization": "Bearer " + h.token("ops1", "operator")}
                http = await h.http()
                async with http.get(f"/admin/reports/ggr?{query}", headers=auth) as resp:
                    assert resp.status == 200, await resp.text()
                    report = await resp.json()
                    headers = resp.headers
                async with http.get(f"{x.server.http_urls[1]}/admin/reports/ggr?{query}"
                                    "&format=csv", headers=auth) as resp:
                    assert resp.status == 200, await resp.text()
                    assert resp.headers["Content-Type"].startswith("text/csv")
                    table = list(csv.DictReader(io.StringIO(await resp.text())))
                    csv_headers = resp.headers
                per_shard = await _per_shard(x, day_from, day_to)
                booked = await _booked(x)
                # carol, who traded on shard 1 only, is a seeded bot: marked where the
                # operator's tools mark them, shard 0's `users`
                await x.read_model(0, "INSERT INTO users (user_id, seeded) VALUES ($1, true)",
                                   carol.user)
                async with http.get(f"/admin/reports/ggr?from={day_from}&to={day_to}",
                                    headers=auth) as resp:
                    assert resp.status == 200, await resp.text()
                    customers = await resp.json()
            finally:
                await h.close()

            # market rows: each shard's own, all of them
            ours = {m0, m1, m1b}
            markets = {r["market"]: r for r in report["markets"]}
            assert set(markets) == ours
            for k, alone in enumerate(per_shard):
                for row in alone["markets"]:
                    assert markets[row["market"]] == row
                assert {r["market"] for r in alone["markets"]} == {
                    m for m in ours if x.shards.of_market(m) == k}
            assert {m: r["bettors"] for m, r in markets.items()} == {m0: 3, m1: 2, m1b: 2}
            assert {m: r["matched"] for m, r in markets.items()} == {
                m0: "15.00", m1: "10.00", m1b: "4.00"}
            # GGR: what the house and commission accounts booked, market by market
            assert {m: r["ggr"] for m, r in markets.items()} == {
                m: format_money(booked.get(m, 0)) for m in ours}

            # totals: money adds up; a bettor on both shards counts once
            who = {m0: {alice.user, bob.user, dave.user}, m1: {alice.user, bob.user},
                   m1b: {carol.user, alice.user}}
            days = {r["day"]: [m for m in sorted(ours) if markets[m]["day"] == r["day"]]
                    for r in report["days"]}
            assert sorted(days) == [r["day"] for r in report["days"]]
            assert sum(map(len, days.values())) == 3
            [currency_row] = report["currencies"]
            totals = [(r, days[r["day"]]) for r in report["days"]] + [(currency_row, ours)]
            for total, of in totals:
                assert (total["currency"], total["markets"]) == ("BDT", len(of))
                assert total["bettors"] == len(set().union(*(who[m] for m in of)))
                for money in FIGURES[2:]:
                    assert minor(total[money]) == sum(minor(markets[m][money]) for m in of)
            assert currency_row["bettors"] == 4  # alice, bob, carol, dave
            assert minor(currency_row["ggr"]) == sum(booked.get(m, 0) for m in ours)
            # what adding the shards' own counts would have said
            assert sum(alone["currencies"][0]["bettors"] for alone in per_shard) == 6

            # every shard's persisted seq; the compatible one is shard 0's
            for k in x.shards.all:
                assert base_seq(k) < report["persisted_seqs"][str(k)] < base_seq(k) + SEQ_SPAN
                assert report["persisted_seqs"][str(k)] >= last[k]
            assert report["persisted_seq"] == report["persisted_seqs"]["0"]
            for hd in (headers, csv_headers):
                assert hd["X-Backlay-Persisted-Seq"] == str(report["persisted_seq"])
                assert hd["X-Backlay-Persisted-Seqs"] == ",".join(
                    f"{k}={report['persisted_seqs'][str(k)]}" for k in x.shards.all)

            # without seeded users, carol is left out on shard 1 too
            assert {r["market"]: r["bettors"] for r in customers["markets"]} == {
                m0: 3, m1: 2, m1b: 1}
            assert customers["currencies"][0]["bettors"] == 3  # alice, bob, dave

            # the CSV: the same rows, nested (each day's markets, the day; the currency)
            nested = [row for r in report["days"]
                      for row in [markets[m] for m in days[r["day"]]] + [r]] + [currency_row]
            assert len(table) == len(nested)
            for row, expected in zip(table, nested):
                assert {k: v for k, v in row.items() if v != ""} == {
                    k: str(v) for k, v in expected.items() if v is not None}

        run(scenario(), timeout_s=180)

"""Process endpoints: liveness, readiness, Prometheus metrics, and how the HTTP edge reports an
exchange that cannot take work."""

from tests.http_fixtures import http_exchange  # noqa: F401  (pytest fixture)


def test_health_answers_up_while_the_process_runs(http_exchange):
    async def scenario(x):
        response = await x.client.get("/health")
        return response.status, await response.json()

    assert http_exchange(scenario) == (200, {"status": "up"})


def test_ready_is_200_with_every_check_when_journal_postgres_and_sequencer_are_fine(
        http_exchange):
    async def scenario(x):
        response = await x.client.get("/ready")
        return response.status, await response.json()

    status, body = http_exchange(scenario)
    assert status == 200
    assert body == {"status": "ready", "checks": {"replay_finished": True,
                                                  "sequencer_healthy": True,
                                                  "redis": True, "postgres": True}}


def test_ready_is_503_naming_the_failed_check_until_replay_has_finished(http_exchange):
    async def scenario(x):
        x.exchange.replay_finished = False
        response = await x.client.get("/ready")
        return response.status, await response.json()

    status, body = http_exchange(scenario)
    assert status == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["replay_finished"] is False
    assert body["checks"]["redis"] is True


def test_metrics_are_prometheus_text_with_latency_histogram_and_health_gauge(http_exchange):
    async def scenario(x):
        await x.deposit("u1", 1_000)
        response = await x.client.get("/metrics")
        return response.status, response.headers["Content-Type"], await response.text()

    status, content_type, text = http_exchange(scenario)
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE backlay_ack_latency_seconds histogram" in text
    assert "backlay_ack_latency_seconds_count 1.0" in text
    assert "backlay_sequencer_healthy 1.0" in text
    assert "backlay_persister_lag_entries" in text
    assert "backlay_rejections_total" in text


def test_metrics_refresh_persister_lag_from_the_journal_before_rendering(http_exchange):
    async def scenario(x):
        for i in range(3):
            await x.deposit(f"u{i}", 1_000)
        behind = await (await x.client.get("/metrics")).text()
        while await x.persister.step(block_ms=10):
            pass
        await x.persister.make_durable()  # lag counts what is not yet on disk
        caught_up = await (await x.client.get("/metrics")).text()
        return behind, caught_up

    behind, caught_up = http_exchange(scenario, persister="idle")
    assert "backlay_persister_lag_entries 3.0" in behind
    assert "backlay_persister_lag_entries 0.0" in caught_up
    assert "backlay_persister_lag_seconds 0.0" in caught_up


def test_a_fail_stopped_sequencer_makes_commands_503_and_readiness_fail(http_exchange):
    async def scenario(x):
        await x.deposit("u1", 1_000)
        # another writer got into the journal: Redis refuses our next id, the sequencer stops
        journal = x.exchange.sequencer.journal
        await journal.redis.xadd(journal.stream, {"intruder": "1"}, id="1000-0")
        withdraw = await x.client.post("/wallet/withdrawals", json={"amount": "1.00"},
                                       headers=x.auth("u1", "bettor"))
        metrics = await (await x.client.get("/metrics")).text()
        ready = await x.client.get("/ready")
        return withdraw.status, withdraw.headers.get("Retry-After"), await withdraw.json(), \
            metrics, ready.status

    status, retry_after, body, metrics, ready_status = http_exchange(scenario)
    assert status == 503
    assert retry_after == "1"
    assert body["code"] == "INTERNAL"
    assert "backlay_sequencer_healthy 0.0" in metrics
    assert ready_status == 503


def test_an_unknown_path_is_a_json_404(http_exchange):
    async def scenario(x):
        response = await x.client.get("/nope")
        return response.status, await response.json()

    status, body = http_exchange(scenario)
    assert status == 404
    assert body["code"] == "NOT_FOUND"


def test_rejected_requests_are_counted_by_code(http_exchange):
    async def scenario(x):
        await x.client.get("/admin/exposure")
        await x.client.get("/admin/exposure", headers=x.auth("u1", "bettor"))
        return await (await x.client.get("/metrics")).text()

    text = http_exchange(scenario)
    assert 'backlay_rejections_total{code="UNAUTHENTICATED"} 1.0' in text
    assert 'backlay_rejections_total{code="FORBIDDEN"} 1.0' in text

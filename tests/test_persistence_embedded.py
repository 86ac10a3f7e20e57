"""Embedded servers: real redis-server and Postgres from pip packages, restartable in place."""

import asyncio
import os
import signal
import time

import asyncpg
import psutil
import redis

from persistence.embedded import EmbeddedPostgres, EmbeddedRedis, start_servers


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.01)
    raise TimeoutError(pid)


def test_redis_runs_with_an_fsync_on_every_write_by_default(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    config = client.config_get("append*")
    client.close()
    assert config["appendonly"] == "yes" and config["appendfsync"] == "always"


def test_everysec_is_an_explicit_opt_in(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="everysec")
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        client.close()
    finally:
        server.stop()


def test_redis_restarted_in_its_data_dir_after_kill_9_has_every_confirmed_write(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    client = redis.Redis.from_url(server.url)
    for seq in range(1, 101):
        client.xadd("journal", {"c": b"x"}, id=f"{seq}-0")
    client.close()
    os.kill(server.pid, signal.SIGKILL)
    wait_gone(server.pid)

    again = EmbeddedRedis(tmp_path / "redis")
    again.start()
    try:
        client = redis.Redis.from_url(again.url)
        assert client.xlen("journal") == 100
        client.close()
        assert not again.adopted
    finally:
        again.stop()
        server.stop()


def test_a_redis_left_running_by_a_crashed_process_is_adopted_not_duplicated(tmp_path):
    first = EmbeddedRedis(tmp_path / "redis")
    first.start()
    try:
        second = EmbeddedRedis(tmp_path / "redis", appendfsync="always")
        second.start()
        assert second.adopted and second.pid == first.pid and second.url == first.url
    finally:
        first.stop()


def test_postgres_restarts_in_its_data_dir_after_kill_9(tmp_path):
    server = EmbeddedPostgres(tmp_path / "pg")
    url = server.start()

    async def write():
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
        await conn.close()

    asyncio.run(write())
    pid = int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)

    again = EmbeddedPostgres(tmp_path / "pg")
    url = again.start()
    try:
        async def read():
            conn = await asyncpg.connect(url)
            value = await conn.fetchval("SELECT x FROM t")
            await conn.close()
            return value

        assert asyncio.run(read()) == 42
    finally:
        again.stop()


def test_configured_urls_are_used_and_nothing_is_started(tmp_path):
    servers = start_servers(tmp_path, environ={"REDIS_URL": "redis://elsewhere:6379/0",
                                               "DATABASE_URL": "postgresql://elsewhere/db"})
    assert (servers.redis, servers.postgres) == (None, None)
    assert servers.redis_url == "redis://elsewhere:6379/0"
    assert not (tmp_path / "redis").exists() and not (tmp_path / "pg").exists()

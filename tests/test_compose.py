"""compose.yaml and the Dockerfile, checked without Docker: the services, images, health checks
and environment are the ones docs/loadtest.md documents and `backlay serve` reads.
"""

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.settings import Settings
from loadtests.world import LOCUST_ENV, World

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCS = (ROOT / "docs" / "loadtest.md").read_text()
_VAR = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value) -> str:
    """Compose's ${VAR:-default} as it resolves with nothing set in the environment."""
    return _VAR.sub(lambda m: m.group(2) or "", str(value))


def env(service: str) -> dict[str, str]:
    return {k: interpolate(v) for k, v in SERVICES[service].get("environment", {}).items()}


def healthcheck(service: str) -> str:
    test = SERVICES[service]["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def docs_table(heading: str) -> list[list[str]]:
    """The rows of the first table after `heading` in docs/loadtest.md, cells stripped."""
    section = DOCS.split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


SPLIT = ("wire-redis", "shard-0", "shard-1", "gateway-1", "gateway-2")  # profile `split`


def test_compose_runs_storage_the_exchange_and_locust():
    assert set(SERVICES) == {"redis", "postgres", "backlay", "locust-master",
                             "locust-worker", *SPLIT}


def test_storage_uses_the_official_images():
    assert re.fullmatch(r"redis:[\w.]+", SERVICES["redis"]["image"])
    assert re.fullmatch(r"postgres:[\w.]+", SERVICES["postgres"]["image"])


def test_redis_keeps_an_append_only_file_fsynced_on_every_write():
    command = " ".join(SERVICES["redis"]["command"])
    assert "--appendonly yes" in command and "--appendfsync always" in command


def test_every_service_that_others_wait_for_has_a_health_check():
    assert "redis-cli ping" in healthcheck("redis")
    assert "pg_isready" in healthcheck("postgres")
    http_port = env("backlay")["BACKLAY_HTTP_PORT"]
    assert f"http://127.0.0.1:{http_port}/health" in healthcheck("backlay")
    waits = {"backlay": {"redis", "postgres"}, "locust-master": {"backlay"}}
    for service, needs in waits.items():
        depends = SERVICES[service]["depends_on"]
        for need in needs:
            assert depends[need]["condition"] == "service_healthy"
            assert "healthcheck" in SERVICES[need]


def test_the_exchange_reads_storage_urls_that_point_at_the_storage_services():
    e = env("backlay")
    redis_url, pg_url = urlsplit(e["REDIS_URL"]), urlsplit(e["DATABASE_URL"])
    assert (redis_url.scheme, redis_url.hostname) == ("redis", "redis")
    pg = env("postgres")
    assert pg_url.hostname == "postgres"
    assert (pg_url.username, pg_url.password, pg_url.path.lstrip("/")) == \
        (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
    assert e["BACKLAY_HOST"] == "0.0.0.0"


def test_every_backlay_variable_is_a_setting_backlay_serve_reads(monkeypatch):
    names = {f"BACKLAY_{field.upper()}" for field in Settings.model_fields}
    names |= {"REDIS_URL", "DATABASE_URL"}
    unknown = set(env("backlay")) - names
    assert not unknown, f"backlay serve ignores {unknown}"
    for name, value in env("backlay").items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # parses them exactly as `backlay serve` will
    assert (settings.host, settings.ws_port, settings.http_port) == ("0.0.0.0", 8765, 8080)
    assert settings.redis_url == env("backlay")["REDIS_URL"]
    assert settings.allowed_origins == ["http://localhost:8080", "http://127.0.0.1:8080"]


def test_the_exchange_is_built_from_the_dockerfile_and_published_on_loopback_only():
    assert SERVICES["backlay"]["build"] == {"context": ".", "target": "server"}
    for service in SERVICES.values():
        for port in service.get("ports", ()):
            assert str(port).startswith("127.0.0.1:")


def test_the_dockerfile_installs_the_project_on_python_311_slim_and_serves():
    assert re.search(r"^FROM python:3\.11-slim AS base$", DOCKERFILE, re.M)
    # compiled in place (setup.py needs gcc), where PYTHONPATH=/app finds the engine first
    assert re.search(r"apt-get install .*\bgcc\b", DOCKERFILE)
    assert re.search(r"^COPY .*\bsetup\.py\b.* \./$", DOCKERFILE, re.M)
    assert "RUN pip install -e .\n" in DOCKERFILE and "ENV PYTHONPATH=/app" in DOCKERFILE
    for target in ("server", "loadtest"):
        assert re.search(rf"^FROM base AS {target}$", DOCKERFILE, re.M)
    assert 'CMD ["backlay", "serve"]' in DOCKERFILE
    assert "/health" in DOCKERFILE


def test_the_loadtest_image_installs_what_the_locust_users_import():
    """The `loadtest` target installs `.[load]`: it must bring Locust and the WebSocket client
    loadtests/client.py uses (the rest is the project's own dependencies)."""
    assert 'pip install -e ".[load]"' in DOCKERFILE
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["load"]
    names = {re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0].lower() for req in extras}
    assert {"locust", "websocket-client"} <= names


def test_locust_master_and_workers_run_the_locustfile_against_the_exchange():
    ws_port = env("backlay")["BACKLAY_WS_PORT"]
    for service in ("locust-master", "locust-worker"):
        assert SERVICES[service]["build"]["target"] == "loadtest"
        assert env(service)["LOCUST_HOST"] == f"ws://backlay:{ws_port}/ws"
        command = " ".join(SERVICES[service]["command"])
        assert "locust -f /app/loadtests/locustfile.py" in command
    assert (ROOT / "loadtests" / "locustfile.py").exists()
    assert "--master" in " ".join(SERVICES["locust-master"]["command"])
    assert "--worker" in SERVICES["locust-worker"]["command"]
    assert env("locust-worker")["LOCUST_MASTER_NODE_HOST"] == "locust-master"


def test_the_master_seeds_before_and_audits_after_the_run():
    script = SERVICES["locust-master"]["command"][-1]
    seed, run, audit = (script.index(s) for s in ("loadtests.seed", "locust -f",
                                                  "loadtests.checks"))
    assert seed < run < audit


def test_workers_and_master_agree_on_the_world_and_the_worker_count():
    master, worker = env("locust-master"), env("locust-worker")
    replicas = SERVICES["locust-worker"]["deploy"]["replicas"]
    assert int(master["LOCUST_EXPECT_WORKERS"]) == replicas == int(master["BACKLAY_LT_WORKERS"])
    assert World.from_env(master) == World.from_env(worker)


def test_bots_hold_the_secrets_the_exchange_checks():
    exchange = env("backlay")
    for service in ("locust-master", "locust-worker"):
        assert env(service)["BACKLAY_JWT_SECRET"] == exchange["BACKLAY_JWT_SECRET"]
        assert env(service)["BACKLAY_WEBHOOK_SECRET"] == exchange["BACKLAY_WEBHOOK_SECRET"]
    assert env("locust-master")["DATABASE_URL"] == exchange["DATABASE_URL"]
    assert env("locust-master")["REDIS_URL"] == exchange["REDIS_URL"]


def test_every_load_test_variable_is_one_the_load_tests_read():
    known = set(World().env()) | set(LOCUST_ENV)
    for service in ("locust-master", "locust-worker"):
        lt = {k for k in env(service) if k.startswith("BACKLAY_LT_")}
        assert lt <= known, lt - known


# -- docs/loadtest.md says the same ----------------------------------------------------------


def test_the_docs_list_every_service_with_its_image_and_health_check():
    rows = {ticked(r[0])[0]: r for r in docs_table("## Running it with compose")}
    assert set(rows) == set(SERVICES)
    for name, (_, image, health, *_rest) in rows.items():
        service = SERVICES[name]
        if "image" in service and "build" not in service:
            assert ticked(image)[0] == service["image"]
        else:
            assert f"`{service['build']['target']}`" in image
        if "healthcheck" in service:
            assert ticked(health) and all(t in healthcheck(name) for t in ticked(health)), name
        else:
            assert health == "none"


@pytest.mark.parametrize("service", ["backlay", "locust-master"])
def test_the_docs_list_the_environment_of(service):
    rows = docs_table(f"Environment of `{service}`")
    documented = {ticked(r[0])[0]: ticked(r[1])[0] if ticked(r[1]) else r[1] for r in rows}
    assert set(documented) == set(env(service))
    for name, value in documented.items():
        assert value == env(service)[name], name


# -- the split shape (docs/scale-out.md): profile `split` ---------------------------------------


def _command(service: str) -> list[str]:
    return [str(part) for part in SERVICES[service]["command"]]


def test_the_split_shape_is_a_profile_of_its_own():
    for service in SPLIT:
        assert SERVICES[service]["profiles"] == ["split"]
    for service in ("redis", "postgres", "backlay", "locust-master", "locust-worker"):
        assert "profiles" not in SERVICES[service]


def test_the_shards_are_the_shard_count_engines_each_its_own_shard():
    shards = [s for s in SPLIT if s.startswith("shard-")]
    assert [_command(s)[:4] for s in shards] == [["backlay", "engine", "--shard", str(k)]
                                                  for k in range(len(shards))]
    for service in shards + [s for s in SPLIT if s.startswith("gateway-")]:
        assert int(env(service)["BACKLAY_SHARDS"]) == len(shards)


def test_the_gateways_have_ids_of_their_own_and_wait_for_every_shard():
    gateways = [s for s in SPLIT if s.startswith("gateway-")]
    assert [_command(s) for s in gateways] == [["backlay", "gateway", "--id", f"g{i}"]
                                               for i in range(1, len(gateways) + 1)]
    for gateway in gateways:
        depends = SERVICES[gateway]["depends_on"]
        assert {s for s in depends} == {s for s in SPLIT if s.startswith("shard-")}
        assert all(d["condition"] == "service_healthy" for d in depends.values())
        assert f"http://127.0.0.1:{env(gateway)['BACKLAY_HTTP_PORT']}/health" in healthcheck(
            gateway)


def test_every_split_process_shares_the_storage_and_the_wire():
    wire = urlsplit(env("shard-0")["BACKLAY_WIRE_REDIS_URL"])
    assert (wire.scheme, wire.hostname) == ("redis", "wire-redis")
    for service in SPLIT[1:]:
        e = env(service)
        assert (e["REDIS_URL"], e["DATABASE_URL"]) == (env("backlay")["REDIS_URL"],
                                                       env("backlay")["DATABASE_URL"])
        assert e["BACKLAY_WIRE_REDIS_URL"] == env("shard-0")["BACKLAY_WIRE_REDIS_URL"]
        for need in ("redis", "postgres", "wire-redis"):
            if service.startswith("shard-"):
                assert SERVICES[service]["depends_on"][need]["condition"] == "service_healthy"


def test_the_wire_redis_keeps_nothing_on_disk():
    command = SERVICES["wire-redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "no"
    assert command[command.index("--save") + 1] == ""


def test_every_split_variable_is_a_setting_the_processes_read(monkeypatch):
    names = {f"BACKLAY_{field.upper()}" for field in Settings.model_fields}
    names |= {"REDIS_URL", "DATABASE_URL"}
    for service in SPLIT[1:]:
        assert set(env(service)) <= names, set(env(service)) - names
        with monkeypatch.context() as m:
            for name, value in env(service).items():
                m.setenv(name, value)
            settings = Settings()
        assert settings.shards == 2 and settings.wire_redis_url.startswith("redis://wire-redis")

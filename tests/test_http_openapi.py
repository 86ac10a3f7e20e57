"""The OpenAPI description is the contract: it names exactly the application's routes, its
request schemas require what the handlers require, and every reference in it resolves."""

import pytest

from gateway.http import STATUS_BY_CODE, DepositNotice, WithdrawalRequest, build_http_app
from gateway.openapi import ERROR_CODES, build_openapi
from tests.http_fixtures import http_exchange  # noqa: F401  (pytest fixture)

METHODS = {"get", "post", "put", "patch", "delete"}


class _NoExchange:
    settings = None


def app_routes() -> set[tuple[str, str]]:
    app = build_http_app(_NoExchange())
    return {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
            if route.method != "HEAD"}


def spec_routes(spec: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in spec["paths"].items() for method in item
            if method in METHODS}


def test_every_route_is_described_and_every_description_is_a_route():
    assert app_routes() == spec_routes(build_openapi())


def test_the_served_document_is_the_built_one(http_exchange):
    async def scenario(x):
        response = await x.client.get("/openapi.json")
        return response.status, await response.json()

    status, served = http_exchange(scenario)
    assert status == 200
    assert served == build_openapi()
    assert served["openapi"].startswith("3.1")


@pytest.mark.parametrize("model, schema", [(DepositNotice, "DepositNotice"),
                                           (WithdrawalRequest, "WithdrawalRequest")])
def test_request_schemas_require_and_allow_what_the_handlers_do(model, schema):
    described = build_openapi()["components"]["schemas"][schema]
    assert set(described["required"]) == {n for n, f in model.model_fields.items()
                                          if f.is_required()}
    assert set(described["properties"]) == set(model.model_fields)
    forbids = model.model_config.get("extra") == "forbid"
    assert described.get("additionalProperties", True) is not forbids


def test_every_reference_resolves():
    spec = build_openapi()
    schemas = spec["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = set(refs(spec))
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas


def test_path_parameters_are_declared():
    for path, item in build_openapi()["paths"].items():
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for operation in item.values():
            assert {p["name"] for p in operation.get("parameters", [])
                    if p["in"] == "path"} == names, path


def test_every_error_code_the_app_can_send_is_listed():
    assert {str(code) for code in STATUS_BY_CODE} <= set(ERROR_CODES)

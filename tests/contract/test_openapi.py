"""The OpenAPI document is generated, valid, current, and says what the contracts say."""
from __future__ import annotations

import json
from pathlib import Path

from mangaassist_dev import openapi
from openapi_spec_validator import validate

from mangaassist import contracts

ROOT = Path(__file__).resolve().parents[2]
WIRING = json.loads((ROOT / "terraform" / "wiring.json").read_text())


def test_the_committed_document_is_what_make_openapi_writes():
    assert openapi.DOCUMENT.read_text() == openapi.render(WIRING), "run make openapi"


def test_the_document_is_valid_openapi_3():
    validate(json.loads(openapi.DOCUMENT.read_text()))


def test_every_route_is_an_operation_with_its_contracts():
    doc = openapi.document(WIRING)
    for key, route in WIRING["routes"].items():
        method, path = key.split(" ", 1)
        op = doc["paths"][path][method.lower()]
        if route.get("request"):
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{openapi.component_name(route['request'])}"
        assert set(route.get("responses", {})) <= set(op["responses"])
        assert ("403" in op["responses"]) is route.get("api_key_required", True)
        assert all(r["content"]["application/json"]["schema"]["$ref"].endswith("ErrorResponse")
                   for status, r in op["responses"].items() if int(status) >= 400)


def test_draft4_null_types_become_nullable():
    schema = openapi.document(WIRING)["components"]["schemas"]["RecommendResponse"]
    assert schema["properties"]["model_id"] == {**contracts.api_schema("recommend.response")["properties"]["model_id"],
                                                "type": "string", "nullable": True}

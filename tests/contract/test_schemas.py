"""Every contract in schemas/ is draft-04, and its samples behave as declared."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from mangaassist import contracts

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_FILES = sorted(SCHEMAS.rglob("*.schema.json"))
EVENT_SAMPLES = sorted((SCHEMAS / "events").glob("*/*.samples.json"))
PAYLOAD_SAMPLES = sorted((SCHEMAS / "webhooks").glob("*.samples.json"))

# Keywords the EventBridge registry's JSONSchemaDraft4 type understands.
DRAFT4_KEYWORDS = {
    "$schema", "id", "title", "description", "default", "type", "enum", "format", "$ref", "definitions",
    "properties", "patternProperties", "additionalProperties", "required", "dependencies",
    "items", "additionalItems", "minItems", "maxItems", "uniqueItems",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minProperties", "maxProperties", "allOf", "anyOf", "oneOf", "not",
}
SCHEMA_MAPS = {"properties", "patternProperties", "definitions", "dependencies"}

REQUIRED_DETAIL_TYPES = {
    ("mangaassist.payments", "PaymentCompleted"), ("mangaassist.payments", "RefundProcessed"),
    ("mangaassist.reviews", "ReviewSubmitted"), ("mangaassist.catalog", "CatalogUpdate.new_release"),
    ("mangaassist.catalog", "CatalogUpdate.price_change"), ("mangaassist.catalog", "CatalogUpdate.discontinued"),
    ("mangaassist.ai", "InferenceCompleted"), ("mangaassist.ai", "ModerationFlagged"),
    ("mangaassist.ai", "RecommendationGenerated"), ("mangaassist.chat", "MessageReceived"),
}


def keywords_outside_draft4(schema, where="$"):
    if not isinstance(schema, dict):
        return []
    bad = [f"{where}.{k}" for k in schema if k not in DRAFT4_KEYWORDS]
    for key, value in schema.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                bad += keywords_outside_draft4(sub, f"{where}.{key}.{name}")
        elif key in ("items", "additionalItems", "additionalProperties", "not") and isinstance(value, dict):
            bad += keywords_outside_draft4(value, f"{where}.{key}")
        elif key in ("allOf", "anyOf", "oneOf") or (key == "items" and isinstance(value, list)):
            for i, sub in enumerate(value):
                bad += keywords_outside_draft4(sub, f"{where}.{key}[{i}]")
    return bad


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: str(p.relative_to(SCHEMAS)))
def test_schema_is_draft4_only(path):
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    Draft4Validator.check_schema(schema)
    assert keywords_outside_draft4(schema) == []
    assert schema.get("title") and schema.get("description")
    assert len(path.read_text()) <= 100_000, "the schema registry takes at most 100,000 characters"


def test_every_required_detail_type_has_a_contract_with_a_version():
    assert REQUIRED_DETAIL_TYPES <= set(contracts.detail_types())
    for source, detail_type in contracts.detail_types():
        schema = json.loads((SCHEMAS / "events" / source / f"{detail_type}.schema.json").read_text())
        assert "version" in schema["required"] and "version" in schema["properties"]
        assert (SCHEMAS / "events" / source / f"{detail_type}.samples.json").exists()


@pytest.mark.parametrize("path", EVENT_SAMPLES, ids=lambda p: p.name)
def test_event_samples_behave_as_declared(path):
    samples = json.loads(path.read_text())
    assert len(samples["valid"]) >= 2 and len(samples["invalid"]) >= 2
    for event in samples["valid"]:
        contracts.validate_envelope(event)
        contracts.validate_detail(event["source"], event["detail-type"], event["detail"])
    for case in samples["invalid"]:
        event = case["event"]
        contracts.validate_envelope(event)
        with pytest.raises(contracts.ContractError) as caught:
            contracts.validate_detail(event["source"], event["detail-type"], event["detail"])
        assert caught.value.path == case["path"], case["why"]


@pytest.mark.parametrize("path", PAYLOAD_SAMPLES, ids=lambda p: p.name)
def test_webhook_payload_samples_behave_as_declared(path):
    partner = path.name.removesuffix(".samples.json")
    samples = json.loads(path.read_text())
    for payload in samples["valid"]:
        contracts.validate_payload(partner, payload)
    for case in samples["invalid"]:
        with pytest.raises(contracts.ContractError) as caught:
            contracts.validate_payload(partner, case["payload"])
        assert caught.value.path == case["path"], case["why"]


@pytest.mark.parametrize("event, path", [
    ({}, ""),
    ({"version": "0"}, ""),
    ("not an object", ""),
])
def test_envelope_errors_are_contract_errors(event, path):
    with pytest.raises(contracts.ContractError):
        contracts.validate_envelope(event)


def test_unknown_detail_type_and_partner_are_contract_errors():
    with pytest.raises(contracts.ContractError, match="no contract"):
        contracts.validate_detail("mangaassist.nope", "Nothing", {})
    with pytest.raises(contracts.ContractError, match="no payload contract"):
        contracts.validate_payload("paypal", {})


def test_contract_error_serialises_with_its_path():
    with pytest.raises(contracts.ContractError) as caught:
        contracts.validate_detail("mangaassist.reviews", "ReviewSubmitted", {"version": "1", "rating": "5"})
    assert caught.value.to_dict()["error"] == "contract_violation"
    assert caught.value.to_dict()["path"].startswith("detail")

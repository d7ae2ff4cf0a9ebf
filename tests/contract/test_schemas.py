"""Every contract in schemas/ is draft-04, and its samples behave as declared."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from mangaassist import contracts, settings

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_FILES = sorted(SCHEMAS.rglob("*.schema.json"))
EVENT_SAMPLE_FILES = sorted((SCHEMAS / "events").glob("*/*.samples.json"))
PAYLOAD_SAMPLE_FILES = sorted((SCHEMAS / "webhooks").glob("*.samples.json"))
API_SAMPLE_FILES = sorted((SCHEMAS / "api").rglob("*.samples.json"))
FIXTURES = Path(__file__).resolve().parents[1] / "events"  # canonical events the handler tests send

# Keywords the EventBridge registry's JSONSchemaDraft4 type understands.
DRAFT4_KEYWORDS = {
    "$schema", "id", "title", "description", "default", "type", "enum", "format", "$ref", "definitions",
    "properties", "patternProperties", "additionalProperties", "required", "dependencies",
    "items", "additionalItems", "minItems", "maxItems", "uniqueItems",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minProperties", "maxProperties", "allOf", "anyOf", "oneOf", "not",
}
# Formats contracts.py enforces itself; any other would be silently ignored.
CHECKED_FORMATS = {"date-time", "date"}

DETAIL_TYPES = {
    "mangaassist.payments": ["PaymentCompleted", "RefundProcessed"],
    "mangaassist.reviews": ["ReviewSubmitted"],
    "mangaassist.catalog": ["CatalogUpdate.new_release", "CatalogUpdate.price_change", "CatalogUpdate.discontinued"],
    "mangaassist.ai": ["InferenceCompleted", "ModerationFlagged", "RecommendationGenerated", "ShadowCompared",
                       "OrderConfirmationGenerated", "ReviewModerated"],
    "mangaassist.chat": ["MessageReceived"],
    "mangaassist.jobs": ["JobCompleted"],
    "mangaassist.notifications": ["SubscriptionDisabled"],
}
PARTNERS = {"stripe", "github", "reviews", "catalog"}


def subschemas(schema: dict, where: str = "$"):
    """(where, node) for the schema and every schema nested in it."""
    yield where, schema
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "definitions", "dependencies"):
            for name, sub in value.items():
                if isinstance(sub, dict):
                    yield from subschemas(sub, f"{where}.{key}.{name}")
        elif key in ("items", "additionalItems", "additionalProperties", "not") and isinstance(value, dict):
            yield from subschemas(value, f"{where}.{key}")
        elif key in ("allOf", "anyOf", "oneOf") or (key == "items" and isinstance(value, list)):
            for i, sub in enumerate(value):
                yield from subschemas(sub, f"{where}.{key}[{i}]")


def describes_objects(node: dict) -> bool:
    types = node.get("type")
    return "object" in (types if isinstance(types, list) else [types])


def samples(path: Path, kind: str) -> list:
    return json.loads(path.read_text(encoding="utf-8"))[kind]


def cases(files: list[Path], kind: str) -> list:
    return [pytest.param(path, case, id=f"{path.name.removesuffix('.samples.json')}-{kind}{i}")
            for path in files for i, case in enumerate(samples(path, kind))]


# --- the schemas themselves ------------------------------------------------------------------
@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: str(p.relative_to(SCHEMAS)))
def test_schema_is_draft4_only_titled_and_explicit(path):
    text = path.read_text(encoding="utf-8")
    schema = json.loads(text)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    Draft4Validator.check_schema(schema)
    assert schema.get("title") and schema.get("description")
    assert len(text) <= 100_000, "the schema registry takes at most 100,000 characters"
    nodes = list(subschemas(schema))
    assert [f"{where}.{k}" for where, node in nodes for k in node if k not in DRAFT4_KEYWORDS] == []
    assert {node["format"] for _, node in nodes if "format" in node} <= CHECKED_FORMATS
    assert [where for where, node in nodes if describes_objects(node) and "additionalProperties" not in node] == []


def test_every_listed_detail_type_and_partner_has_a_contract():
    expected = {(source, detail_type) for source, names in DETAIL_TYPES.items() for detail_type in names}
    assert expected <= set(contracts.detail_types())
    assert PARTNERS <= set(contracts.partners())


@pytest.mark.parametrize("source, detail_type", contracts.detail_types(), ids="/".join)
def test_every_detail_contract_is_versioned_and_open(source, detail_type):
    path = contracts.schema_path(source, detail_type)
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert "version" in schema["required"] and schema["properties"]["version"]["type"] == "string"
    assert schema["additionalProperties"] is True, "producers add optional fields without breaking consumers"


@pytest.mark.parametrize("path", [p for p in SCHEMA_FILES if p.parent != SCHEMAS], ids=lambda p: p.name)
def test_every_contract_has_two_valid_and_two_invalid_samples(path):
    sample_file = path.with_name(path.name.replace(".schema.json", ".samples.json"))
    assert len(samples(sample_file, "valid")) >= 2 and len(samples(sample_file, "invalid")) >= 2


# --- the samples -----------------------------------------------------------------------------
@pytest.mark.parametrize("path, event", cases(EVENT_SAMPLE_FILES, "valid"))
def test_valid_event_sample_passes_envelope_and_detail(path, event):
    assert (event["source"], event["detail-type"]) == (path.parent.name, path.name.removesuffix(".samples.json"))
    contracts.validate_envelope(event)
    contracts.validate_detail(event["source"], event["detail-type"], event["detail"])


@pytest.mark.parametrize("path, case", cases(EVENT_SAMPLE_FILES, "invalid"))
def test_invalid_event_sample_fails_at_its_declared_path(path, case):
    event = case["event"]
    contracts.validate_envelope(event)  # only the detail is wrong
    with pytest.raises(contracts.ContractError) as caught:
        contracts.validate_detail(event["source"], event["detail-type"], event["detail"])
    assert caught.value.path == case["path"], case["why"]


@pytest.mark.parametrize("path, payload", cases(PAYLOAD_SAMPLE_FILES, "valid"))
def test_valid_payload_sample_passes(path, payload):
    contracts.validate_payload(path.name.removesuffix(".samples.json"), payload)


@pytest.mark.parametrize("path, case", cases(PAYLOAD_SAMPLE_FILES, "invalid"))
def test_invalid_payload_sample_fails_at_its_declared_path(path, case):
    with pytest.raises(contracts.ContractError) as caught:
        contracts.validate_payload(path.name.removesuffix(".samples.json"), case["payload"])
    assert caught.value.path == case["path"], case["why"]


def api_name(path: Path) -> str:
    return str(path.relative_to(SCHEMAS / "api")).removesuffix(".samples.json")


@pytest.mark.parametrize("path, document", cases(API_SAMPLE_FILES, "valid"))
def test_valid_api_sample_passes(path, document):
    contracts.validate_api(api_name(path), document)


@pytest.mark.parametrize("path, case", cases(API_SAMPLE_FILES, "invalid"))
def test_invalid_api_sample_fails_at_its_declared_path(path, case):
    with pytest.raises(contracts.ContractError) as caught:
        contracts.validate_api(api_name(path), case["document"])
    assert caught.value.path == case["path"], case["why"]


def test_every_api_contract_is_listed_and_requests_are_closed():
    assert set(contracts.api_names()) == {api_name(p) for p in API_SAMPLE_FILES}
    for name in contracts.api_names():
        schema = contracts.api_schema(name)
        assert "$ref" not in json.dumps(schema), f"{name}: file references are inlined"
        # A request with a typo'd field is refused; a response may gain fields without breaking clients.
        closed = name.endswith(".request") or name.startswith("tasks/")
        assert schema["additionalProperties"] is (not closed), name


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.*.json")), ids=lambda p: p.name)
def test_canonical_partner_payloads_in_tests_events_pass(path):
    contracts.validate_payload(path.name.split(".")[0], json.loads(path.read_text(encoding="utf-8")))


def test_canonical_eventbridge_event_in_tests_events_passes():
    event = json.loads((FIXTURES / "eventBridgeEvent.json").read_text(encoding="utf-8"))
    contracts.validate_envelope(event)
    contracts.validate_detail(event["source"], event["detail-type"], event["detail"])


# --- the envelope ----------------------------------------------------------------------------
ENVELOPE = samples(SCHEMAS / "events" / "mangaassist.payments" / "PaymentCompleted.samples.json", "valid")[0]
MISSING = object()


@pytest.mark.parametrize("field, value", [
    ("replay-name", "fix-orders-2026-11-25"),
    ("resources", ["arn:aws:events:ap-northeast-1:123456789012:rule/x"]),
    ("detail", {}),
    ("added-by-aws-later", True),
], ids=["replayed", "resources", "empty-detail", "new-aws-field"])
def test_envelope_accepts(field, value):
    contracts.validate_envelope({**ENVELOPE, field: value})


ENVELOPE_BREAKS = [  # (field, value, the path the error names, why)
    ("version", "1", "version", "the envelope version is always 0"),
    ("account", "12345", "account", "accounts are 12 digits"),
    ("time", "2026-11-25T03:04:05", "time", "RFC 3339 times carry an offset"),
    ("detail-type", "x" * 129, "detail-type", "detail-types are at most 128 characters"),
    ("source", "aws.events", "source", "custom events cannot use aws. sources"),
    ("resources", [42], "resources[0]", "resources are ARN strings"),
    ("detail", "{}", "detail", "detail is an object, not its JSON text"),
    ("id", MISSING, "id", "every event has an id"),
]


@pytest.mark.parametrize("field, value, path, why", ENVELOPE_BREAKS, ids=[b[0] for b in ENVELOPE_BREAKS])
def test_envelope_refuses_and_names_the_field(field, value, path, why):
    event = {**ENVELOPE, field: value}
    if value is MISSING:
        del event[field]
    with pytest.raises(contracts.ContractError) as caught:
        contracts.validate_envelope(event)
    assert caught.value.path == path, why


# --- errors ----------------------------------------------------------------------------------
def test_unknown_detail_type_and_partner_are_contract_errors():
    with pytest.raises(contracts.ContractError, match="no contract") as caught:
        contracts.validate_detail("mangaassist.nope", "Nothing", {})
    assert caught.value.path == "detail-type"
    with pytest.raises(contracts.ContractError, match="no payload contract"):
        contracts.validate_payload("paypal", {})


def test_contract_error_serialises_and_never_quotes_megabytes():
    detail = {**ENVELOPE["detail"], "order_id": ["x" * 1_000_000]}
    with pytest.raises(contracts.ContractError) as caught:
        contracts.validate_detail(ENVELOPE["source"], ENVELOPE["detail-type"], detail)
    body = caught.value.to_dict()
    assert body["error"] == "contract_violation" and body["path"] == "detail.order_id"
    assert len(body["message"]) <= 300


def test_dates_are_checked_without_optional_packages():
    """The layer's lock has no rfc3339-validator, without which jsonschema skips date-time."""
    detail = {**ENVELOPE["detail"], "occurred_at": "yesterday"}
    probe = (
        "import sys; sys.modules['rfc3339_validator'] = None\n"
        "from mangaassist import contracts\n"
        "try:\n"
        f"    contracts.validate_detail({ENVELOPE['source']!r}, {ENVELOPE['detail-type']!r}, {detail!r})\n"
        "except contracts.ContractError as e:\n"
        "    print(e.path)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "detail.occurred_at"


def test_schemas_dir_setting_that_points_nowhere_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("MANGAASSIST_SCHEMAS_DIR", str(tmp_path))
    assert contracts.schemas_dir() == tmp_path
    monkeypatch.setenv("MANGAASSIST_SCHEMAS_DIR", str(tmp_path / "missing"))
    settings.reload()
    with pytest.raises(RuntimeError, match="MANGAASSIST_SCHEMAS_DIR"):
        contracts.schemas_dir()


@pytest.mark.parametrize("setting, outcome", [("schemas", "loaded"), (None, "no schemas directory")])
def test_contracts_import_from_the_lambda_layer_path(monkeypatch, setting, outcome):
    """In Lambda the module is /opt/python/mangaassist/contracts.py: three parents, not five."""
    source = Path(contracts.__file__).read_text(encoding="utf-8")
    if setting:
        monkeypatch.setenv("MANGAASSIST_SCHEMAS_DIR", str(SCHEMAS))
    else:
        monkeypatch.delenv("MANGAASSIST_SCHEMAS_DIR", raising=False)
    layer_file = "/opt/python/mangaassist/contracts.py"
    namespace = {"__file__": layer_file, "__name__": "layer_contracts"}
    try:
        exec(compile(source, layer_file, "exec"), namespace)
    except RuntimeError as exc:
        assert outcome in str(exc)
    else:
        assert outcome == "loaded" and namespace["detail_types"]() == contracts.detail_types()


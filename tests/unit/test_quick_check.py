"""mangaassist.quick_check answers as jsonschema's Draft4Validator does: on every contract's samples,
on every sample changed at each of its fields, and on the corners of draft-04's keywords."""
from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft4Validator, FormatChecker

from mangaassist import contracts, quick_check
from mangaassist.workers.moderation import MODERATION_SCHEMA

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
# Values put in place of each field of a valid sample: every JSON type, and the edges our keywords test.
REPLACEMENTS = [None, True, False, 0, 1, -1, 1.0, 1.5, -0.5, 10**12, "", "x", "x" * 5000, "2026-02-30",
                "2026-11-25T03:04:05Z", "2026-11-25T03:04:05", "free", "premium", [], [1], ["x"], {}, {"x": 1}]


def formats() -> FormatChecker:
    checker = FormatChecker(formats=())
    for name, check in contracts.FORMATS.items():
        checker.checks(name, raises=ValueError)(check)
    return checker


def every_contract() -> list[tuple[str, dict, list]]:
    """(name, schema, its samples' documents): events (details and envelope), payloads, API bodies."""
    out = []
    envelope = json.loads((SCHEMAS / "envelope.schema.json").read_text(encoding="utf-8"))
    events = []
    for path in sorted((SCHEMAS / "events").glob("*/*.samples.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        schema = json.loads(path.with_name(path.name.replace(".samples.json", ".schema.json")).read_text())
        valid = [e["detail"] for e in doc["valid"]] + [c["event"]["detail"] for c in doc["invalid"]]
        out.append((path.name, schema, valid))
        events += doc["valid"]
    out.append(("envelope", envelope, events))
    for path in sorted((SCHEMAS / "webhooks").glob("*.samples.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        schema = json.loads(path.with_name(path.name.replace(".samples.json", ".schema.json")).read_text())
        out.append((path.name, schema, doc["valid"] + [c["payload"] for c in doc["invalid"]]))
    for name in contracts.api_names():
        doc = json.loads((SCHEMAS / "api" / f"{name}.samples.json").read_text(encoding="utf-8"))
        out.append((name, contracts.api_schema(name), doc["valid"] + [c["document"] for c in doc["invalid"]]))
    out.append(("moderation answer", MODERATION_SCHEMA, [{"categories": [{"name": "spam", "severity": "low"}],
                                                          "sentiment": {"label": "neutral", "score": 0.5}}]))
    return out


CONTRACTS = every_contract()


def variants(document):
    """The document, then each field (at any depth) replaced by each REPLACEMENTS value, or removed."""
    yield document
    stack = [()]
    while stack:
        path = stack.pop()
        node = document
        for part in path:
            node = node[part]
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
        for key in keys:
            stack.append((*path, key))
            for value in REPLACEMENTS:
                changed = copy.deepcopy(document)
                parent = changed
                for part in path:
                    parent = parent[part]
                parent[key] = value
                yield changed
            if isinstance(node, dict):
                changed = copy.deepcopy(document)
                parent = changed
                for part in path:
                    parent = parent[part]
                del parent[key]
                yield changed


@pytest.mark.parametrize("name, schema, documents", CONTRACTS, ids=[c[0] for c in CONTRACTS])
def test_every_contract_compiles_and_agrees_with_jsonschema_on_its_samples_changed_everywhere(name, schema, documents):
    check = quick_check.compile(schema, contracts.FORMATS if name != "moderation answer" else {})
    validator = Draft4Validator(schema, format_checker=formats() if name != "moderation answer" else None)
    seen = 0
    for document in documents:
        for variant in variants(document):
            assert check(variant) is validator.is_valid(variant), json.dumps(variant, ensure_ascii=False)[:500]
            seen += 1
    assert seen > len(documents)


CORNERS = [  # (schema, instance): draft-04 as jsonschema reads it
    ({"type": "integer"}, True), ({"type": "integer"}, 1.0), ({"type": "integer"}, 2), ({"type": "number"}, False),
    ({"type": "number"}, 3), ({"type": ["string", "null"]}, None), ({"type": ["string", "null"]}, 0),
    ({"enum": [1]}, True), ({"enum": [True]}, 1), ({"enum": [1]}, 1.0), ({"enum": [None]}, None),
    ({"enum": ["a"]}, ["a"]), ({"enum": [0]}, False),
    ({"minimum": 1, "exclusiveMinimum": True}, 1), ({"minimum": 1}, 1), ({"minimum": 1}, "0"),
    ({"maximum": 1, "exclusiveMaximum": True}, 1), ({"maximum": 1}, True),
    ({"format": "email"}, "not an email"), ({"format": "date"}, "2026-02-29"), ({"format": "date"}, "2028-02-29"),
    ({"format": "date"}, 7), ({"format": "date-time"}, "2026-11-25T24:00:00Z"),
    ({"pattern": "^a"}, "ba"), ({"pattern": "b"}, "ab"), ({"pattern": "^a$"}, 1),
    ({"maxLength": 2}, "日本"), ({"maxLength": 1}, "日本"), ({"minLength": 1}, 5),
    ({"required": ["a"]}, []), ({"required": ["a"]}, {"b": 1}),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": False}, {"a": "x", "b": 1}),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}}, {"a": "x", "b": 1}),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}}, {"b": "y"}),
    ({"additionalProperties": False}, {}), ({"additionalProperties": False}, "x"),
    ({"items": {"type": "integer"}, "maxItems": 2}, [1, 2, 3]), ({"items": {"type": "integer"}}, [1, "2"]),
    ({"minItems": 1}, {}), ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1),
    ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1.5), ({"anyOf": [{"type": "integer"}]}, "x"),
    ({"allOf": [{"minimum": 1}, {"maximum": 3}]}, 4), ({"not": {"type": "string"}}, "x"), ({"not": {}}, 1),
    ({"title": "annotations only", "description": "x", "unknownKeyword": 1}, {"anything": True}),
]


@pytest.mark.parametrize("schema, instance", CORNERS, ids=[json.dumps(c) for c in CORNERS])
def test_corners_agree_with_jsonschema(schema, instance):
    expected = Draft4Validator(schema, format_checker=formats()).is_valid(instance)
    assert quick_check.compile(schema, contracts.FORMATS)(instance) is expected


@pytest.mark.parametrize("schema", [
    {"$ref": "#/definitions/x"}, {"patternProperties": {"^a": {}}}, {"uniqueItems": True}, {"multipleOf": 2},
    {"dependencies": {"a": ["b"]}}, {"items": [{"type": "string"}]}, {"enum": [{"a": 1}]}, {"type": "any"},
    {"properties": {"a": {"minProperties": 1}}}, True,
], ids=json.dumps)
def test_keywords_it_does_not_implement_are_refused_not_ignored(schema):
    with pytest.raises(quick_check.Unsupported):
        quick_check.compile(schema, {})


def test_values_json_does_not_produce_are_left_to_jsonschema():
    check = quick_check.compile({"type": "object", "properties": {"n": {"type": "number"}}}, {})
    with pytest.raises(quick_check.Unfamiliar):
        check({"n": Decimal("1.5")})
    # contracts then asks jsonschema, which knows a Decimal is a number
    contract = contracts.Contract({"type": "object", "properties": {"n": {"type": "number"}}})
    assert not contract.accepts({"n": Decimal("1.5")}) and contract.validator.is_valid({"n": Decimal("1.5")})


def test_contracts_import_without_jsonschema_and_load_it_only_for_a_refused_document():
    import subprocess
    import sys

    probe = ("import sys\n"
             "from mangaassist import contracts\n"
             "event = " + repr(json.loads((SCHEMAS / "events" / "mangaassist.payments" /
                                           "PaymentCompleted.samples.json").read_text())["valid"][0]) + "\n"
             "contracts.validate_envelope(event)\n"
             "contracts.validate_detail(event['source'], event['detail-type'], event['detail'])\n"
             "print('jsonschema' in sys.modules)\n"
             "try:\n"
             "    contracts.validate_detail(event['source'], event['detail-type'], {})\n"
             "except contracts.ContractError as e:\n"
             "    print('jsonschema' in sys.modules, e.path)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "detail.version"]

"""Backward compatibility: consumers written against a contract keep working as it evolves."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"
EVENT_SCHEMAS = sorted(SCHEMAS.glob("*/*.schema.json"))


def is_backward_compatible(old: dict, new: dict) -> list[str]:
    """Why ``new`` would break producers or consumers of ``old`` (empty: compatible).

    Breaking: a newly required field, a removed property, a narrowed type or enum, closing
    additionalProperties. Adding an optional property is compatible.
    """
    problems = []
    for field in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{field} became required")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{name} was removed")
            continue
        new_prop = new_props[name]
        old_types = set(old_prop.get("type", []) if isinstance(old_prop.get("type"), list) else [old_prop.get("type")])
        new_types = set(new_prop.get("type", []) if isinstance(new_prop.get("type"), list) else [new_prop.get("type")])
        if old_types - new_types:
            problems.append(f"{name} type narrowed from {sorted(map(str, old_types))} to {sorted(map(str, new_types))}")
        if "enum" in new_prop and set(map(json.dumps, old_prop.get("enum", []))) - set(map(json.dumps, new_prop["enum"])):
            problems.append(f"{name} enum narrowed")
        if "enum" in new_prop and "enum" not in old_prop:
            problems.append(f"{name} gained an enum")
    if old.get("additionalProperties", True) is not False and new.get("additionalProperties", True) is False:
        problems.append("additionalProperties closed")
    return problems


def samples(schema_path: Path) -> dict:
    return json.loads(schema_path.with_name(schema_path.name.replace(".schema.json", ".samples.json")).read_text())


@pytest.mark.parametrize("path", EVENT_SCHEMAS, ids=lambda p: p.name)
def test_an_added_optional_field_is_accepted_by_the_current_contract(path):
    validator = Draft4Validator(json.loads(path.read_text()))
    for event in samples(path)["valid"]:
        detail = {**event["detail"], "added_in_a_later_version": {"anything": [1, "two"]}}
        assert list(validator.iter_errors(detail)) == []


@pytest.mark.parametrize("path", EVENT_SCHEMAS, ids=lambda p: p.name)
def test_removing_any_required_field_is_rejected(path):
    schema = json.loads(path.read_text())
    validator = Draft4Validator(schema)
    detail = samples(path)["valid"][0]["detail"]
    for field in schema["required"]:
        broken = {k: v for k, v in detail.items() if k != field}
        assert list(validator.iter_errors(broken)), f"{path.name} accepts a detail without {field}"


@pytest.mark.parametrize("path", EVENT_SCHEMAS, ids=lambda p: p.name)
def test_compatibility_check_on_evolutions_of_the_real_schemas(path):
    old = json.loads(path.read_text())
    assert is_backward_compatible(old, old) == []

    added_optional = copy.deepcopy(old)
    added_optional["properties"]["gift_message"] = {"type": "string"}
    assert is_backward_compatible(old, added_optional) == []

    newly_required = copy.deepcopy(added_optional)
    newly_required["required"].append("gift_message")
    assert any("became required" in p for p in is_backward_compatible(old, newly_required))

    optional = next((n for n in old["properties"] if n not in old["required"]), None)
    if optional:
        removed = copy.deepcopy(old)
        del removed["properties"][optional]
        assert any("removed" in p for p in is_backward_compatible(old, removed))

    narrowed = copy.deepcopy(old)
    narrowed["properties"]["version"]["type"] = "integer"
    assert any("narrowed" in p for p in is_backward_compatible(old, narrowed))

    closed = copy.deepcopy(old)
    closed["additionalProperties"] = False
    assert "additionalProperties closed" in is_backward_compatible(old, closed)

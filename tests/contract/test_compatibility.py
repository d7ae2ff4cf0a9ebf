"""Backward compatibility: events valid under a contract stay valid as it evolves, and consumers
keep the fields they read.

``breaking_changes(old, new)`` is the check a contract change must pass: a newly required field, a
removed property, a narrowed type, enum or bound, or closing additionalProperties breaks; an
added optional property does not. It is tested on evolutions of the real schemas.
"""
from __future__ import annotations

import copy
import json

import pytest
from jsonschema import Draft4Validator

from mangaassist import contracts

LOWER_BOUNDS = ("minimum", "minLength", "minItems")
UPPER_BOUNDS = ("maximum", "maxLength", "maxItems")


def _types(schema: dict) -> set | None:
    declared = schema.get("type")
    return None if declared is None else set(declared if isinstance(declared, list) else [declared])


def breaking_changes(old: dict, new: dict, where: str = "$") -> list[str]:
    """Why ``new`` would break producers or consumers written against ``old`` (empty: it would not)."""
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    problems = [f"{where}.{name} became required" for name in sorted(newly_required)]
    old_types, new_types = _types(old), _types(new)
    if new_types is not None and (old_types is None or any(
            t not in new_types and not (t == "integer" and "number" in new_types) for t in old_types)):
        problems.append(f"{where} type narrowed to {sorted(new_types)}")
    if "enum" in new and ("enum" not in old or any(value not in new["enum"] for value in old["enum"])):
        problems.append(f"{where} enum narrowed")
    for key in LOWER_BOUNDS + UPPER_BOUNDS:
        if key in new and (key not in old or (new[key] > old[key] if key in LOWER_BOUNDS else new[key] < old[key])):
            problems.append(f"{where} {key} tightened")
    for key in ("pattern", "format"):
        if key in new and new[key] != old.get(key):
            problems.append(f"{where} {key} changed")
    if old.get("additionalProperties", True) is not False and new.get("additionalProperties", True) is False:
        problems.append(f"{where} additionalProperties closed")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{where}.{name} was removed")
        else:
            problems += breaking_changes(old_prop, new_props[name], f"{where}.{name}")
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        problems += breaking_changes(old["items"], new["items"], f"{where}[]")
    return problems


def is_backward_compatible(old: dict, new: dict) -> bool:
    return not breaking_changes(old, new)


DETAIL_TYPES = contracts.detail_types()
IDS = ["/".join(dt) for dt in DETAIL_TYPES]


def load(source: str, detail_type: str) -> tuple[dict, dict]:
    path = contracts.schema_path(source, detail_type)
    samples = json.loads(path.with_name(f"{detail_type}.samples.json").read_text(encoding="utf-8"))
    return json.loads(path.read_text(encoding="utf-8")), samples


def with_an_extra_field_in_every_object(document):
    if isinstance(document, dict):
        return {**{k: with_an_extra_field_in_every_object(v) for k, v in document.items()},
                "added_in_a_later_version": {"anything": [1, "two"]}}
    if isinstance(document, list):
        return [with_an_extra_field_in_every_object(v) for v in document]
    return document


# --- the current contracts are open for additions and closed for removals ---------------------
@pytest.mark.parametrize("source, detail_type", DETAIL_TYPES, ids=IDS)
def test_fields_added_anywhere_are_accepted(source, detail_type):
    _, samples = load(source, detail_type)
    for event in samples["valid"]:
        contracts.validate_detail(source, detail_type, with_an_extra_field_in_every_object(event["detail"]))


@pytest.mark.parametrize("source, detail_type", DETAIL_TYPES, ids=IDS)
def test_removing_any_required_field_is_refused_by_name(source, detail_type):
    schema, samples = load(source, detail_type)
    detail = samples["valid"][0]["detail"]
    for field in schema["required"]:
        with pytest.raises(contracts.ContractError) as caught:
            contracts.validate_detail(source, detail_type, {k: v for k, v in detail.items() if k != field})
        assert caught.value.path == f"detail.{field}"


# --- the check, on evolutions of every real contract -----------------------------------------
def add_optional(schema):
    schema["properties"]["gift_message"] = {"type": "string", "maxLength": 200}


def widen_version(schema):
    schema["properties"]["version"]["enum"].append("1.1")


def relax_every_bound(schema):
    for prop in schema["properties"].values():
        prop.pop("maxLength", None)
        prop.pop("minimum", None)


def add_required(schema):
    add_optional(schema)
    schema["required"].append("gift_message")


def remove_last_property(schema):
    name = list(schema["properties"])[-1]
    del schema["properties"][name]
    schema["required"] = [r for r in schema["required"] if r != name]


def narrow_version_type(schema):
    schema["properties"]["version"]["type"] = "integer"


def narrow_version_enum(schema):
    schema["properties"]["version"]["enum"] = ["2"]


def close(schema):
    schema["additionalProperties"] = False


EVOLUTIONS = [  # (change, compatible, what breaking_changes must say)
    (add_optional, True, None),
    (widen_version, True, None),
    (relax_every_bound, True, None),
    (add_required, False, "$.gift_message became required"),
    (remove_last_property, False, "was removed"),
    (narrow_version_type, False, "$.version type narrowed"),
    (narrow_version_enum, False, "$.version enum narrowed"),
    (close, False, "$ additionalProperties closed"),
]


@pytest.mark.parametrize("change, compatible, reason", EVOLUTIONS, ids=[e[0].__name__ for e in EVOLUTIONS])
@pytest.mark.parametrize("source, detail_type", DETAIL_TYPES, ids=IDS)
def test_evolution_of_a_real_contract(source, detail_type, change, compatible, reason):
    old, samples = load(source, detail_type)
    new = copy.deepcopy(old)
    change(new)
    assert is_backward_compatible(old, old)
    assert is_backward_compatible(old, new) is compatible
    if compatible:  # and indeed: every event the old contract accepted, the new one accepts
        validator = Draft4Validator(new)
        assert all(validator.is_valid(event["detail"]) for event in samples["valid"])
    else:
        assert any(reason in problem for problem in breaking_changes(old, new))


@pytest.mark.parametrize("change, reason", [
    (lambda s: s["properties"]["categories"]["items"]["properties"]["severity"]["enum"].remove("low"),
     "$.categories[].severity enum narrowed"),
    (lambda s: s["properties"]["sentiment"]["properties"]["score"].update(minimum=0),
     "$.sentiment.score minimum tightened"),
    (lambda s: s["properties"]["categories"].update(maxItems=5), "$.categories maxItems tightened"),
    (lambda s: s["properties"]["review_id"].update(pattern="^rev_"), "$.review_id pattern changed"),
], ids=["nested-enum", "nested-minimum", "max-items", "pattern"])
def test_nested_narrowing_is_found(change, reason):
    old, _ = load("mangaassist.ai", "ModerationFlagged")
    new = copy.deepcopy(old)
    change(new)
    assert breaking_changes(old, new) == [reason]


def test_widening_number_types_is_compatible_and_narrowing_is_not():
    integer, number = {"type": "integer"}, {"type": "number"}
    assert is_backward_compatible(integer, number)
    assert breaking_changes(number, integer) == ["$ type narrowed to ['integer']"]

"""Whether a document is valid against a draft-04 schema, answered exactly, without jsonschema.

Importing jsonschema (attrs, referencing, rpds, the metaschema registry, the format modules)
costs a cold start ~40 ms, about half of what a function may spend beyond boto3 and its first
client. Nearly every document a function checks is valid, and saying so needs none of that:
:func:`compile` turns a schema into a function that answers what jsonschema's Draft4Validator
answers (valid or not), for the keywords below. jsonschema stays the authority on everything
else: mangaassist.contracts asks it, for its error, whenever this check says no, and a schema
with any other draft-04 validation keyword is refused here (Unsupported) and left to jsonschema.
The contract tests hold the two to the same verdict on every sample of every schema.

Implemented: type, enum (of scalars), minLength, maxLength, pattern, minimum, maximum (with
draft-04's boolean exclusiveMinimum/exclusiveMaximum), required, properties, additionalProperties,
items (one schema), minItems, maxItems, format (the caller's checkers; other formats pass, as with
jsonschema's FormatChecker), allOf, anyOf, oneOf, not. Other keywords (title, description...)
are annotations: ignored, as jsonschema ignores them.

Values JSON does not produce (a Decimal, a tuple, a dict subclass) raise Unfamiliar: the caller
lets jsonschema judge them rather than guess how its type checker sees them.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]
Rule = Callable[[Any, str], bool]  # (instance, its JSON kind) -> valid

# Draft4Validator's validation keywords (jsonschema.validators); exclusiveMinimum/Maximum modify minimum/maximum.
DRAFT4_KEYWORDS = frozenset({
    "$ref", "additionalItems", "additionalProperties", "allOf", "anyOf", "dependencies", "enum", "format", "items",
    "maxItems", "maxLength", "maxProperties", "maximum", "minItems", "minLength", "minProperties", "minimum",
    "multipleOf", "not", "oneOf", "pattern", "patternProperties", "properties", "required", "type", "uniqueItems"})
_KINDS = {str: "string", bool: "boolean", int: "integer", float: "number", dict: "object", list: "array",
          type(None): "null"}
_TYPES = {"string", "boolean", "integer", "number", "object", "array", "null"}
_SCALARS = (str, bool, int, float, type(None))


class Unsupported(ValueError):
    """The schema uses a keyword (or a form of one) this check does not implement."""


class Unfamiliar(TypeError):
    """A value of a Python type JSON does not produce."""


def kind(value) -> str:
    try:
        return _KINDS[type(value)]
    except KeyError:
        raise Unfamiliar(type(value).__name__) from None


def compile(schema, formats: Mapping[str, Callable[[Any], bool]]) -> Check:  # noqa: A001 (re.compile's sense)
    """``schema`` as a check; ``formats``: the checker of each format name, which answers False
    or raises ValueError for an invalid value (jsonschema FormatChecker's contract)."""
    if not isinstance(schema, dict):
        raise Unsupported(f"a schema must be an object, not {type(schema).__name__}")
    rules: list[Rule] = []
    for keyword, value in schema.items():
        if keyword not in DRAFT4_KEYWORDS:
            continue
        build = _BUILDERS.get(keyword)
        if build is None:
            raise Unsupported(keyword)
        rules.append(build(value, schema, formats))

    def check(instance) -> bool:
        instance_kind = kind(instance)
        return all(rule(instance, instance_kind) for rule in rules)

    return check


def _type(value, schema, formats) -> Rule:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n in _TYPES for n in names):
        raise Unsupported(f"type {value!r}")
    accepted = set(names) | ({"integer"} if "number" in names else set())
    return lambda instance, kind: kind in accepted


def _same(member, instance) -> bool:
    """jsonschema's equality for a scalar enum member: True is not 1, 1 is 1.0."""
    if isinstance(member, str) or isinstance(instance, str):
        return member == instance
    if isinstance(member, bool) or isinstance(instance, bool):
        return member is instance
    if isinstance(instance, (dict, list)):
        return False
    return member == instance


def _enum(value, schema, formats) -> Rule:
    if not isinstance(value, list) or not all(isinstance(m, _SCALARS) for m in value):
        raise Unsupported("enum of anything but scalars")
    return lambda instance, kind: any(_same(member, instance) for member in value)


def _length(bound: Callable[[int], bool]) -> Rule:
    return lambda instance, kind: kind != "string" or bound(len(instance))


def _min_length(value, schema, formats) -> Rule:
    return _length(lambda n: not n < value)


def _max_length(value, schema, formats) -> Rule:
    return _length(lambda n: not n > value)


def _pattern(value, schema, formats) -> Rule:
    search = re.compile(value).search  # jsonschema: re.search(pattern, instance)
    return lambda instance, kind: kind != "string" or search(instance) is not None


def _minimum(value, schema, formats) -> Rule:
    if schema.get("exclusiveMinimum", False):
        return lambda instance, kind: kind not in ("integer", "number") or not instance <= value
    return lambda instance, kind: kind not in ("integer", "number") or not instance < value


def _maximum(value, schema, formats) -> Rule:
    if schema.get("exclusiveMaximum", False):
        return lambda instance, kind: kind not in ("integer", "number") or not instance >= value
    return lambda instance, kind: kind not in ("integer", "number") or not instance > value


def _required(value, schema, formats) -> Rule:
    names = list(value)
    return lambda instance, kind: kind != "object" or all(name in instance for name in names)


def _properties(value, schema, formats) -> Rule:
    checks = [(name, compile(sub, formats)) for name, sub in value.items()]
    return lambda instance, kind: kind != "object" or all(check(instance[name]) for name, check in checks
                                                           if name in instance)


def _additional_properties(value, schema, formats) -> Rule:
    if "patternProperties" in schema:
        raise Unsupported("patternProperties")
    known = schema.get("properties", {})
    if value is True:
        return lambda instance, kind: True
    if value is False:
        return lambda instance, kind: kind != "object" or all(name in known for name in instance)
    check = compile(value, formats)
    return lambda instance, kind: kind != "object" or all(check(v) for name, v in instance.items() if name not in known)


def _items(value, schema, formats) -> Rule:
    check = compile(value, formats)  # the array form (a schema per position) is refused there
    return lambda instance, kind: kind != "array" or all(check(item) for item in instance)


def _min_items(value, schema, formats) -> Rule:
    return lambda instance, kind: kind != "array" or not len(instance) < value


def _max_items(value, schema, formats) -> Rule:
    return lambda instance, kind: kind != "array" or not len(instance) > value


def _format(value, schema, formats) -> Rule:
    checker = formats.get(value)
    if checker is None:
        return lambda instance, kind: True  # as jsonschema: a format without a checker is not checked

    def rule(instance, kind) -> bool:
        try:
            return bool(checker(instance))
        except ValueError:
            return False

    return rule


def _branches(value, formats) -> list[Check]:
    if not isinstance(value, list) or not value:
        raise Unsupported("allOf/anyOf/oneOf must be a non-empty list")
    return [compile(sub, formats) for sub in value]


def _all_of(value, schema, formats) -> Rule:
    checks = _branches(value, formats)
    return lambda instance, kind: all(check(instance) for check in checks)


def _any_of(value, schema, formats) -> Rule:
    checks = _branches(value, formats)
    return lambda instance, kind: any(check(instance) for check in checks)


def _one_of(value, schema, formats) -> Rule:
    checks = _branches(value, formats)
    return lambda instance, kind: sum(1 for check in checks if check(instance)) == 1


def _not(value, schema, formats) -> Rule:
    check = compile(value, formats)
    return lambda instance, kind: not check(instance)


_BUILDERS: dict[str, Callable[[Any, dict, Mapping], Rule]] = {
    "type": _type, "enum": _enum, "minLength": _min_length, "maxLength": _max_length, "pattern": _pattern,
    "minimum": _minimum, "maximum": _maximum, "required": _required, "properties": _properties,
    "additionalProperties": _additional_properties, "items": _items, "minItems": _min_items,
    "maxItems": _max_items, "format": _format, "allOf": _all_of, "anyOf": _any_of, "oneOf": _one_of, "not": _not,
}

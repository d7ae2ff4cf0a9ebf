"""The event-pattern matcher answers like EventBridge on the conformance corpus, and bad
patterns are rejected with AWS's message, never another exception."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mangaassist.events.patterns import InvalidEventPattern, compile_pattern, matches, validate_pattern


def corpus(conformance_dir, name: str) -> list[dict]:
    return json.loads((conformance_dir / "eventbridge" / name).read_text())


def raw(case: dict, key: str):
    """Use the raw JSON text when the corpus has it: Python's float round trip would change it."""
    text = case.get(f"{key}_json")
    return json.loads(text, parse_float=Decimal) if text else case[key]


def unflagged(case: dict) -> bool:
    return not case.get("flags") and not any(t == "dotted-key" or t.startswith("quirk:") for t in case["tags"])


def wrong_answers(cases: list[dict]) -> list[str]:
    wrong = []
    for index, case in enumerate(cases):
        if compile_pattern(raw(case, "pattern"))(raw(case, "event")) != case["matches"]:
            wrong.append(f"#{index} {case['tags']} {json.dumps(case['pattern'])[:120]}")
    return wrong


def test_curated_corpus_is_answered_exactly(conformance_dir):
    cases = corpus(conformance_dir, "patterns.json")
    assert len(cases) == 313
    assert wrong_answers(cases) == []


def test_full_corpus_unflagged_cases_are_answered_exactly(conformance_dir):
    cases = [c for c in corpus(conformance_dir, "patterns_full.json") if unflagged(c)]
    assert len(cases) > 1300
    assert wrong_answers(cases) == []


def test_full_corpus_flagged_and_quirk_cases_reported_separately(conformance_dir):
    """Not confirmed against AWS itself (host bits in CIDRs, dotted keys, $or overrides): we follow
    event-ruler, and this records how far."""
    cases = [c for c in corpus(conformance_dir, "patterns_full.json") if not unflagged(c)]
    wrong = wrong_answers(cases)
    print(f"flagged/quirk cases: {len(cases) - len(wrong)}/{len(cases)} agree with event-ruler")
    assert len(wrong) <= len(cases)


def test_every_pattern_aws_rejects_is_rejected_with_awss_message(conformance_dir):
    cases = corpus(conformance_dir, "invalid_patterns.json")
    assert len(cases) == 38
    for case in cases:
        with pytest.raises(InvalidEventPattern) as caught:
            validate_pattern(case["pattern"])
        assert str(caught.value) == case["aws_error_message"], case["pattern"]


EVENT = {"source": "mangaassist.payments", "detail-type": "PaymentCompleted",
         "detail": {"amount": 1500, "currency": "JPY", "ip": "10.0.1.4", "state": None, "tags": ["new", "sale"],
                    "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}], "empty": [], "obj": {}}}


@pytest.mark.parametrize("pattern, expected", [
    ({"source": ["mangaassist.payments", "other"]}, True),
    ({"detail": {"amount": [1500.0]}}, True),               # numbers compare by value
    ({"detail": {"amount": ["1500"]}}, False),              # never a string against a number
    ({"detail": {"currency": [{"prefix": "J"}]}}, True),
    ({"detail": {"currency": [{"suffix": {"equals-ignore-case": "py"}}]}}, True),
    ({"detail": {"currency": [{"equals-ignore-case": "jpy"}]}}, True),
    ({"detail": {"amount": [{"numeric": [">", 1000, "<=", 1500]}]}}, True),
    ({"detail": {"amount": [{"numeric": ["=", 1500]}]}}, True),
    ({"detail": {"ip": [{"cidr": "10.0.0.0/22"}]}}, True),
    ({"detail": {"ip": [{"cidr": "2001:db8::/32"}]}}, False),
    ({"detail": {"state": [None]}}, True),
    ({"detail": {"state": [{"exists": True}]}}, True),      # null is present
    ({"detail": {"empty": [{"exists": False}]}}, True),     # [] is absent
    ({"detail": {"obj": [{"exists": False}]}}, True),       # {} is absent
    ({"detail": {"tags": ["sale"]}}, True),                 # any element of an array
    ({"detail": {"tags": [{"anything-but": ["new"]}]}}, True),
    ({"detail": {"missing": [{"anything-but": "x"}]}}, False),
    ({"detail": {"items": {"sku": ["a"], "qty": [5]}}}, False),  # array consistency
    ({"detail": {"items": {"sku": ["b"], "qty": [5]}}}, True),
    ({"detail-type": [{"wildcard": "Payment*ed"}]}, True),
    ({"$or": [{"source": ["x"]}, {"detail": {"currency": ["JPY"]}}]}, True),
    ({"detail.currency": ["JPY"]}, True),                  # dotted keys
])
def test_operators(pattern, expected):
    assert compile_pattern(pattern)(EVENT) is expected
    assert matches(pattern, EVENT) is expected


@pytest.mark.parametrize("pattern, reason", [
    ("not json", "Filter is not valid JSON"),
    ([], "Filter is not an object"),
    ({}, "Empty objects are not allowed"),
    ({"a": "x"}, '"a" must be an object or an array'),
    ({"a": []}, "Empty arrays are not allowed"),
    ({"a": [{"nope": 1}]}, "Unrecognized match type nope"),
    ({"a": [{"exists": "yes"}]}, "exists match pattern must be either true or false."),
    ({"a": [{"numeric": ["<", 5, ">", 1]}]}, "Bad numeric range operator: <"),
    ({"a": [{"prefix": "x", "suffix": "y"}]}, "Only one key allowed in match expression"),
    ({"$or": [{"a": ["x"]}]}, "Value of $or must be an array of at least 2 objects"),
    ({"a": [["nested"]]}, "Match value must be String, number, true, false, or null"),
])
def test_bad_patterns_are_rejected_with_a_reason(pattern, reason):
    with pytest.raises(InvalidEventPattern) as caught:
        validate_pattern(pattern)
    assert caught.value.reason == reason


def test_or_combinations_are_bounded():
    many = {"$or": [{"a": [str(i)]} for i in range(40)], "b": {"$or": [{"c": [str(i)]} for i in range(40)]}}
    with pytest.raises(InvalidEventPattern, match="too many combinations"):
        validate_pattern(many)


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=8))
OPERATORS = st.sampled_from(["prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr",
                             "wildcard", "EXISTS", "$or"])
PATTERN_VALUES = st.recursive(
    JSON_SCALARS | st.dictionaries(OPERATORS, JSON_SCALARS | st.lists(JSON_SCALARS, max_size=4), max_size=2),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4) | OPERATORS, children, max_size=3),
    max_leaves=12)
EVENTS = st.recursive(JSON_SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=4), c, max_size=4),
                      max_leaves=20)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(pattern=st.dictionaries(st.text(max_size=4) | OPERATORS, PATTERN_VALUES, max_size=4), event=EVENTS)
def test_any_pattern_compiles_or_is_rejected_and_never_raises_on_events(pattern, event):
    try:
        match = compile_pattern(pattern)
    except InvalidEventPattern:
        return
    assert match(event if isinstance(event, dict) else {"x": event}) in (True, False)

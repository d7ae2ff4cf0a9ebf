"""The routing table (terraform/wiring.json) against the contracts and the matcher.

Terraform deploys these patterns and the local stack routes with them: each rule must match the
sample events of exactly the detail-types it is meant for.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from mangaassist_dev.routing import load_wiring

from mangaassist.events.patterns import compile_pattern

ROOT = Path(__file__).resolve().parents[2]
DOC = json.loads((ROOT / "terraform" / "wiring.json").read_text())
WIRING = load_wiring()
SAMPLES = {
    f"{p.parent.name}/{p.name.removesuffix('.samples.json')}": json.loads(p.read_text())["valid"]
    for p in sorted((ROOT / "schemas" / "events").glob("*/*.samples.json"))
}


@pytest.mark.parametrize("rule", WIRING.rules, ids=lambda r: r.name)
def test_rule_matches_exactly_the_detail_types_it_is_meant_for(rule):
    meant = DOC["rules"][rule.name]["meant_for"]
    expected = set(SAMPLES) if meant == ["*"] else set(meant)
    assert expected <= set(SAMPLES), f"meant_for names detail-types without samples: {expected - set(SAMPLES)}"
    match = compile_pattern(rule.event_pattern)
    for detail_type, events in SAMPLES.items():
        for event in events:
            assert match(event) is (detail_type in expected), f"{rule.name} vs {detail_type}"


def test_every_target_names_a_function_or_queue_that_exists():
    for rule in WIRING.rules:
        for target in rule.targets:
            if target.function:
                assert target.function in DOC["functions"]
                assert (ROOT / "functions" / target.function / "handler.py").exists()
            else:
                assert target.queue in DOC["queues"]
                assert DOC["queues"][target.queue]["function"] in DOC["functions"]


def test_every_function_has_a_folder_and_every_folder_is_wired():
    folders = {p.parent.name for p in (ROOT / "functions").glob("*/handler.py")}
    assert folders == set(DOC["functions"])


def test_every_webhook_source_has_a_payload_contract_and_a_mapper():
    from mangaassist.webhooks.mapping import MAPPERS
    from mangaassist.webhooks.sources import load_sources

    sources = load_sources(json.dumps(DOC["sources"]))
    for source in sources.values():
        assert (ROOT / "schemas" / "webhooks" / f"{source.payload_schema}.schema.json").exists()
        assert source.mapper in MAPPERS


def test_every_detail_type_a_mapper_or_worker_emits_reaches_some_rule():
    for detail_type, events in SAMPLES.items():
        assert any(rule.matches(events[0]) for rule in WIRING.rules), f"{detail_type} reaches no rule"


def test_archive_pattern_is_valid_and_archives_every_platform_event():
    match = compile_pattern(WIRING.archive.event_pattern)
    assert all(match(events[0]) for events in SAMPLES.values())


def test_retry_policies_are_within_awss_limits_and_rules_have_at_most_five_targets():
    for rule in WIRING.rules:
        assert 1 <= len(rule.targets) <= 5
        for target in rule.targets:
            assert 0 <= target.retry_policy.maximum_retry_attempts <= 185
            assert 60 <= target.retry_policy.maximum_event_age_in_seconds <= 86400


@pytest.mark.parametrize("name", sorted(DOC["queues"]))
def test_queue_event_source_settings_are_within_lambdas_limits(name):
    spec = DOC["queues"][name]
    window = spec.get("maximum_batching_window_seconds", 0)
    assert spec["function"] in DOC["functions"]
    assert 0 <= window <= 300
    assert 2 <= spec.get("maximum_concurrency", 2) <= 1000  # the event source mapping's ScalingConfig
    # Standard queues: batches over 10 need a batching window of at least 1 s.
    assert 1 <= spec["batch_size"] <= (10_000 if window >= 1 else 10)
    # Lambda's advice: the queue's visibility timeout covers six times the function's timeout.
    assert spec["visibility_timeout_seconds"] >= 6 * DOC["functions"][spec["function"]].get("timeout", 3)

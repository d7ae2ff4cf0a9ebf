"""scripts/deploy_test.py: how the second plan's differences are told apart (the run itself is `make deploy-test`)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("deploy_test", ROOT / "scripts" / "deploy_test.py")
deploy_test = importlib.util.module_from_spec(spec)
sys.modules["deploy_test"] = deploy_test
spec.loader.exec_module(deploy_test)

HEALTH = 'module.functions.aws_lambda_function.function["health"]'
KNOWN = {"module.functions.aws_lambda_function.function[*]": (frozenset({"logging_config", "version"}), "moto")}


def change(address, actions, before, after, unknown=None):
    return {"address": address, "change": {"actions": actions, "before": before, "after": after,
                                           "after_unknown": unknown or {}}}


def test_a_listed_resource_may_change_only_its_listed_attributes():
    plan = {"resource_changes": [
        change(HEALTH, ["update"], {"logging_config": [], "version": "1", "timeout": 3},
               {"logging_config": [{}], "version": None, "timeout": 3}, {"version": True}),
        change('module.functions.aws_lambda_function.function["search"]', ["update"],
               {"timeout": 3}, {"timeout": 10}),
        change('module.data.aws_dynamodb_table.this["orders"]', ["update"], {"a": 1}, {"a": 2}),
        change('module.data.aws_s3_bucket.this["x"]', ["no-op"], {"a": 1}, {"a": 1}),
    ]}
    changes = deploy_test.changed_resources(plan)
    assert changes[HEALTH]["attributes"] == ["logging_config", "version"]
    listed, unlisted = deploy_test.classify(changes, KNOWN)
    assert set(listed) == {HEALTH}
    assert set(unlisted) == {'module.functions.aws_lambda_function.function["search"]',
                             'module.data.aws_dynamodb_table.this["orders"]'}


def test_a_replacement_is_never_a_listed_difference():
    plan = {"resource_changes": [change(HEALTH, ["delete", "create"], {"version": "1"}, {"version": None},
                                        {"version": True})]}
    listed, unlisted = deploy_test.classify(deploy_test.changed_resources(plan), KNOWN)
    assert not listed and unlisted


def test_any_key_matches_only_within_the_brackets():
    assert deploy_test.address_matches('module.x.aws_sqs_queue.target["a/b"]', "module.x.aws_sqs_queue.target[*]")
    assert not deploy_test.address_matches('module.x.aws_sqs_queue.target_dlq["a"]', "module.x.aws_sqs_queue.target[*]")
    assert not deploy_test.address_matches("module.x.aws_sqs_queue.target", "module.x.aws_sqs_queue.target[*]")

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


def test_the_switches_are_root_variables_documented_for_emulators():
    variables = (deploy_test.ROOT / "terraform" / "variables.tf").read_text()
    for name in deploy_test.DEPLOY_TEST_VARS:
        block = variables.split(f'variable "{name}" {{', 1)[1].split("\n}\n", 1)[0]
        assert "For emulators only" in block, name


def test_a_wired_function_without_a_folder_gets_a_stand_in_zip(tmp_path):
    import json
    import zipfile

    build = tmp_path / "build"
    (build / "functions").mkdir(parents=True)
    (build / "layers").mkdir()
    (build / "functions" / "health.zip").write_bytes(b"zip")
    (build / "manifest.json").write_text(json.dumps({"build_version": "0a1b2c3d4e5f", "layers": {}, "functions": {
        "health": {"path": "functions/health.zip", "source_code_hash": "aA==", "size": 3, "unzipped_size": 3}}}))
    wiring = tmp_path / "wiring.json"
    wiring.write_text(json.dumps({"functions": {"health": {}, "websocket": {}}}))

    stand_ins = deploy_test.link_build(build, tmp_path / "copy", wiring)

    assert stand_ins == ["websocket"]
    manifest = json.loads((tmp_path / "copy" / "manifest.json").read_text())
    assert manifest["functions"]["health"]["source_code_hash"] == "aA==", "real zips are the build's"
    assert (tmp_path / "copy" / "functions" / "health.zip").resolve() == (build / "functions" / "health.zip").resolve()
    assert manifest["functions"]["websocket"]["stand_in"] is True
    with zipfile.ZipFile(tmp_path / "copy" / manifest["functions"]["websocket"]["path"]) as zf:
        assert "stand-in" in zf.read("handler.py").decode()
    assert not (build / "functions" / "websocket.zip").exists(), "the repository's build is not touched"

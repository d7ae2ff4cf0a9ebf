"""The operator's experience: ops.py's commands and errors, and the functions' logs in the terminal."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
from e2e.conftest import ROOT
from e2e.test_local_stack import EVENTS, post_webhook, unique_stripe

pytestmark = pytest.mark.e2e
OPS = [sys.executable, str(ROOT / "scripts" / "ops.py")]


def ops(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*OPS, *args], capture_output=True, text=True, timeout=120, env=env, input=stdin)


def one_line_error(done: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code and "Traceback" not in done.stderr, done.stderr
    assert lines and all(fragment in done.stderr for fragment in fragments), done.stderr
    return lines[-1]


def test_errors_are_one_line_never_a_traceback(stack, tmp_path):
    local = ["--local", "--stack", str(stack.data_dir / "stack.json")]
    one_line_error(ops("send", "stripe", "--file", str(tmp_path / "missing.json"), *local), 1,
                   "cannot read", "missing.json", "No such file")
    assert len(ops("send", "stripe", "--file", str(tmp_path / "missing.json"), *local).stderr.strip().splitlines()) == 1
    one_line_error(ops("replay", "--from", "yesterday", "--to", "now", *local), 2, "'yesterday' is not a time")
    one_line_error(ops("cost", "--days", "0", *local), 2, "from 1 to 366")
    one_line_error(ops("cost", "--days", "x", *local), 2, "from 1 to 366")
    one_line_error(ops("redrive", "--max", "-3", *local), 2)
    one_line_error(ops("redrive", *local), 1, "say which DLQ")
    one_line_error(ops("redrive", "--rule", "nope", "--target", "x", *local), 1, "no rule named 'nope'")
    one_line_error(ops("send", "nope", "--file", str(EVENTS / "github.push.json"), *local), 1, "unknown source 'nope'")
    one_line_error(ops("status", "--local", "--stack", str(tmp_path / "none.json")), 1, "not found", "make run")
    one_line_error(ops("status", "--outputs", str(tmp_path / "none.json")), 1, "cannot read")
    (tmp_path / "outputs.json").write_text("{}")
    one_line_error(ops("status", "--outputs", str(tmp_path / "outputs.json")), 1, "no `names` output")
    names = json.loads((ROOT / "terraform" / "tests" / "fixtures" / "names.json").read_text())["names"]
    (tmp_path / "outputs.json").write_text(json.dumps({"names": {"sensitive": False, "value": names}}))
    no_region = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE")}
    no_region["AWS_CONFIG_FILE"] = str(tmp_path / "no-config")
    one_line_error(ops("status", "--outputs", str(tmp_path / "outputs.json"), env=no_region), 1, "no AWS region")


def test_file_urls_are_accepted_where_the_aws_cli_takes_them(stack, tmp_path):
    (tmp_path / "pattern.json").write_text('{"detail": {"n": [{"numeric": [">", 1]}]}}')
    (tmp_path / "event.json").write_text('{"detail": {"n": 2}}')
    done = ops("test-event-pattern", "--event-pattern", f"file://{tmp_path / 'pattern.json'}",
               "--event", f"file://{tmp_path / 'event.json'}", "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == {"Result": True}
    one_line_error(ops("test-event-pattern", "--event-pattern", f"file://{tmp_path / 'none.json'}", "--event", "{}"), 2,
                   "cannot read")
    code, sent = stack.ops("send", "reviews", "--file", f"file://{EVENTS / 'reviews.submitted.json'}", "--new-id")
    assert code == 0 and sent["status"] == 202


def test_send_repeats_a_delivery_unless_asked_for_a_new_id(stack, tmp_path):
    body = tmp_path / "payment.json"
    body.write_bytes(unique_stripe())
    code, first = stack.ops("send", "stripe", "--file", str(body))
    assert (code, first["status"]) == (0, 202)
    for _ in range(3):  # the claim is completed just after the answer: a retry right away may be told 409
        code, again = stack.ops("send", "stripe", "--file", str(body))
        if again["status"] != 409:
            break
        time.sleep(1)
    assert again["status"] == 200 and again["response"]["status"] == "duplicate"
    code, fresh = stack.ops("send", "stripe", "--file", str(body), "--new-id")
    assert fresh["status"] == 202 and fresh["response"]["delivery_id"] != first["response"]["delivery_id"]
    code, review = stack.ops("send", "reviews", "--file", str(EVENTS / "reviews.submitted.json"), "--new-id")
    assert review["status"] == 202


def test_replay_with_relative_times_follows_progress_to_completion_and_a_name_is_used_once(stack):
    rule = next(name for name, spec in stack.info["rules"].items() if "order_confirmation" in spec["targets"])
    assert post_webhook(stack, "stripe", unique_stripe())[0] == 202
    name = f"ops-{uuid.uuid4().hex[:8]}"
    local = ["--local", "--stack", str(stack.data_dir / "stack.json")]
    done = ops("replay", "--from", "-1h", "--to", "now", "--rule", rule, "--name", name, *local)
    assert done.returncode == 0, done.stderr
    final = re.search(rf"^replay {name}: (\d+)/(\d+) delivered$", done.stdout, re.M)
    assert final and final.group(1) == final.group(2) and int(final.group(2)) >= 1, done.stdout
    assert re.search(rf"replay {name}: \d+/\d+ delivered", done.stderr), "progress while it runs"
    again = ops("replay", "--from=-2h", "--to", "now", "--name", name, *local)
    assert one_line_error(again, 1, f"Replay {name} already exists")
    code, dry = stack.ops("replay", "--from", "-30m", "--to", "now", "--name", name, "--dry-run")
    assert code == 0 and dry["dry_run"], "a dry run uses no name"


def test_status_names_each_targets_dlq_and_redrive_says_why_it_failed(stack):
    code, status = stack.ops("status")
    assert code == 0
    assert {(t["rule"], t["dlq"]) for t in status["targets"]} == {
        (key.split("/")[0], dlq["name"]) for key, dlq in stack.info["dlqs"].items()}
    target = "review_moderation"
    rule = next(name for name, spec in stack.info["rules"].items() if target in spec["targets"])
    stack.json("POST", "/_local/faults", {"target": target, "fail_next": 1000})
    try:
        payload = json.loads((EVENTS / "reviews.submitted.json").read_text())
        payload["review_id"] = f"rev_{uuid.uuid4().hex[:8]}"
        status_code, _, answer = post_webhook(stack, "reviews", json.dumps(payload).encode())
        (event_id,) = answer["events"]
        stack.wait_for(lambda rs: any(r["event_id"] == event_id and r["status"] == "dead_lettered" for r in rs),
                       timeout=90, what="the dead letter")
        local = ["--local", "--stack", str(stack.data_dir / "stack.json")]
        done = ops("redrive", "--rule", rule, "--target", target, *local)
        assert done.returncode == 1, done.stdout
        assert re.search(r"\d+ failed: .*fault injected into review_moderation", done.stdout), done.stdout
    finally:
        stack.json("POST", "/_local/faults", {"target": target, "fail_next": 0})
    code, result = stack.ops("redrive", "--all")
    assert code == 0 and sum(r["redriven"] for r in result["dlqs"]) >= 1
    assert all(not r["failed"] for r in result["dlqs"])
    record = next(r for r in stack.deliveries() if r["event_id"] == event_id and r["target"] == target)
    assert record["status"] == "delivered" and record["redriven"] is True
    assert any(e.get("redrive") for e in record["errors"]), "the failed redrive attempt is in its errors"


def test_cost_gives_numbers_and_says_no_model_calls_only_without_any(stack):
    payload = json.loads((EVENTS / "stripe.checkout.session.completed.json").read_text())
    payload["id"] = f"evt_{uuid.uuid4().hex}"
    assert post_webhook(stack, "stripe", json.dumps(payload).encode())[0] == 202
    stack.wait_for(lambda rs: any(r["target"] == "usage_aggregator" and r["status"] == "delivered" for r in rs),
                   what="a model call counted")
    code, cost = stack.ops("cost", "--days", "2")
    assert code == 0 and cost["rows"]
    for row in cost["rows"]:
        assert isinstance(row["calls"], int) and isinstance(row.get("cost_usd", 0), (int, float)), row
    assert isinstance(cost["projected_cost_per_million_messages_usd"], (int, float))
    human = ops("cost", "--days", "2", "--local", "--stack", str(stack.data_dir / "stack.json"))
    assert "no model calls yet" not in human.stdout and "projected cost per 1M messages: $" in human.stdout


def test_env_exports_what_a_shell_needs(stack):
    done = ops("env", "--local", "--stack", str(stack.data_dir / "stack.json"))
    assert done.returncode == 0
    script = f'{done.stdout}\ncurl -s -H "x-local-token: $MANGAASSIST_LOCAL_TOKEN" "$MANGAASSIST_URL/_local/stack"'
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert json.loads(shell.stdout)["api_key"] == stack.info["api_key"]


def test_function_logs_are_one_readable_line_with_the_correlation_id(stack):
    status, headers, answer = post_webhook(stack, "stripe", unique_stripe())
    request_id = {k.lower(): v for k, v in headers.items()}["x-amzn-requestid"]
    (event_id,) = answer["events"]
    stack.wait_for(lambda rs: any(r["event_id"] == event_id and r["status"] == "delivered" for r in rs))
    line = next((line for line in stack.output if request_id in line), None)
    assert line and re.match(r"^\d\d:\d\d:\d\d\.\d{3} INFO  webhook_ingress +" + request_id
                             + r"  webhook answered  status=202 path=/webhooks/stripe$", line.rstrip()), line
    assert not any(line.lstrip().startswith("{") for line in stack.output), "no JSON unless asked for"

"""The embedded default end to end: partners over HTTP, the router, DLQs, redrive and replay."""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from mangaassist_dev import signing

pytestmark = pytest.mark.e2e
EVENTS = Path(__file__).resolve().parents[1] / "events"


def sign(stack, source: str, body: bytes, msg_id: str | None = None) -> dict:
    spec = stack.info["sources"][source]
    secret = spec["secrets"][0]
    headers = {"content-type": "application/json"}
    if spec["scheme"] == "stripe":
        headers.update(signing.sign_stripe(secret, body))
    elif spec["scheme"] == "github":
        headers.update(signing.sign_github(secret, body), **{"X-GitHub-Delivery": msg_id or str(uuid.uuid4()),
                                                             "X-GitHub-Event": "push"})
    else:
        headers.update(signing.sign_standard(secret, body, msg_id=msg_id or f"msg_{uuid.uuid4().hex}"))
    return headers


def post_webhook(stack, source: str, body: bytes, **kw):
    return stack.json("POST", f"/webhooks/{source}", body, sign(stack, source, body, **kw))


def resend_webhook(stack, source: str, body: bytes, **kw):
    """A partner's retry: right after an answer, the claim may still be completing (409 with
    Retry-After, the completion is written after the answer); the partner waits and sends again."""
    for _ in range(3):
        status, headers, answer = post_webhook(stack, source, body, **kw)
        if status != 409:
            return status, headers, answer
        time.sleep(float(headers.get("retry-after", 1)))
    return status, headers, answer


def unique_stripe(kind: str = "stripe.checkout.session.completed.json") -> bytes:
    payload = json.loads((EVENTS / kind).read_text())
    payload["id"] = f"evt_{uuid.uuid4().hex}"
    return json.dumps(payload).encode()


def for_events(ids):
    ids = set(ids)
    return lambda records: [r for r in records if r["event_id"] in ids]


def test_ready_description_names_everything(stack):
    info = stack.info
    assert info["base_url"].startswith("http://127.0.0.1:")
    assert set(info["sources"]) == {"stripe", "github", "reviews", "catalog"}
    assert info["archive"] and info["api_key"]
    for rule in info["rules"].values():
        assert rule["targets"]


def test_health_route_answers_like_api_gateway(stack):
    status, _, body = stack.json("GET", "/health")
    assert status == 200 and body["status"] == "ok"


@pytest.mark.parametrize("source, fixture", [
    ("stripe", None),
    ("github", "github.push.json"),
    ("reviews", "reviews.submitted.json"),
    ("catalog", "catalog.new_release.json"),
])
def test_a_signed_webhook_for_each_source_is_accepted_and_delivered(stack, source, fixture):
    body = unique_stripe() if fixture is None else (EVENTS / fixture).read_bytes()
    status, _, answer = post_webhook(stack, source, body)
    assert status == 202, answer
    assert answer["events"]
    expected_rules = {rule for rule in stack.info["rules"]}
    delivered = stack.wait_for(
        lambda records: (lambda mine: mine if mine and all(r["status"] == "delivered" for r in mine)
                         and {r["event_id"] for r in mine} == set(answer["events"]) else None)(
            for_events(answer["events"])(records)),
        what=f"{source} deliveries")
    assert {r["rule"] for r in delivered} <= expected_rules
    assert any(r["target"] == "analytics" for r in delivered), "the catch-all sink gets every event"


def test_bad_signature_is_401_over_http(stack):
    body = unique_stripe()
    headers = sign(stack, "stripe", body)
    signature = headers.pop("Stripe-Signature", headers.get("stripe-signature", ""))
    headers["stripe-signature"] = signature.replace("v1=", "v1=0")
    status, _, answer = stack.json("POST", "/webhooks/stripe", body, headers)
    assert status == 401 and answer["error"]


def test_unknown_source_and_wrong_method_over_http(stack):
    assert stack.json("POST", "/webhooks/nope", b"{}", {"content-type": "application/json"})[0] == 404
    assert stack.json("GET", "/webhooks/stripe")[0] == 405


def _payment_rule(stack) -> tuple[str, str]:
    for name, rule in stack.info["rules"].items():
        if "order_confirmation" in rule["targets"]:
            return name, "order_confirmation"
    pytest.skip("no rule targets order_confirmation")


def test_failing_target_reaches_its_dlq_with_aws_attributes_and_redrive_recovers_it(stack):
    rule, target = _payment_rule(stack)
    assert stack.json("POST", "/_local/faults", {"target": target, "fail_next": 1000})[0] == 200
    try:
        status, _, answer = post_webhook(stack, "stripe", unique_stripe())
        assert status == 202
        (event_id,) = answer["events"]
        record = stack.wait_for(lambda rs: next((r for r in rs if r["event_id"] == event_id and r["target"] == target
                                                 and r["status"] == "dead_lettered"), None), timeout=90,
                                what="the dead letter")
        assert record["attempts"] >= 2 and record["error"]["code"]
    finally:
        stack.json("POST", "/_local/faults", {"target": target, "fail_next": 0})

    dlq = stack.info["dlqs"][f"{rule}/{stack_target_id(stack, rule, target)}"]
    import boto3

    sqs = boto3.client("sqs", endpoint_url=stack.info["aws_endpoint_url"], region_name=stack.info["region"],
                       aws_access_key_id="local", aws_secret_access_key="local")
    peek = sqs.receive_message(QueueUrl=dlq["url"], MessageAttributeNames=["All"], VisibilityTimeout=0,
                               MaxNumberOfMessages=10)["Messages"]
    message = next(m for m in peek if json.loads(m["Body"])["id"] == event_id)
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert set(attributes) >= {"RULE_ARN", "TARGET_ARN", "ERROR_CODE", "ERROR_MESSAGE", "EXHAUSTED_RETRY_CONDITION",
                               "RETRY_ATTEMPTS"}
    assert attributes["RULE_ARN"].endswith(f"-{rule}") and attributes["TARGET_ARN"].endswith(f"-{target}")
    assert attributes["EXHAUSTED_RETRY_CONDITION"] in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
    # What an operator reads first (README, Operate): the code, then the message naming the failure.
    assert (attributes["ERROR_CODE"], record["error"]["code"]) == ("SDK_CLIENT_ERROR", "SDK_CLIENT_ERROR")
    assert attributes["ERROR_MESSAGE"] == f"InjectedFault: fault injected into {target} (POST /_local/faults)"
    assert attributes["RETRY_ATTEMPTS"] == str(record["attempts"] - 1)

    code, dry = stack.ops("redrive", "--dlq", dlq["name"], "--dry-run")
    assert code == 0 and dry["would_redrive"] >= 1 and dry["redriven"] == 0

    stack.json("POST", "/_local/faults", {"target": target, "fail_next": 1000})
    code, still_failing = stack.ops("redrive", "--dlq", dlq["name"])
    stack.json("POST", "/_local/faults", {"target": target, "fail_next": 0})
    assert code == 1 and still_failing["failed"] and still_failing["redriven"] == 0, \
        "a failed redrive keeps the message"

    code, result = stack.ops("redrive", "--dlq", dlq["name"])
    assert code == 0, result
    assert result["redriven"] >= 1 and result["failed"] == [] and result["left_visible"] == 0


def stack_target_id(stack, rule: str, target: str) -> str:
    from mangaassist_dev.routing import load_wiring

    return next(t.id for t in load_wiring().rule(rule).targets if t.resource == target)


def test_replay_redelivers_archived_events_with_replay_name_only_to_the_chosen_rule(stack):
    rule, target = _payment_rule(stack)
    start = time.time() - 1
    status, _, answer = post_webhook(stack, "stripe", unique_stripe())
    assert status == 202
    (event_id,) = answer["events"]
    stack.wait_for(lambda rs: all(r["status"] == "delivered" for r in for_events([event_id])(rs))
                   and for_events([event_id])(rs))
    end = time.time() + 1

    code, dry = stack.ops("replay", "--from", str(start), "--to", str(end), "--rule", rule, "--dry-run")
    assert code == 0 and dry["dry_run"] and dry["rules"] == {rule: dry["rules"][rule]} and dry["rules"][rule] >= 1

    name = f"replay-{uuid.uuid4().hex[:8]}"
    code, result = stack.ops("replay", "--from", str(start), "--to", str(end), "--rule", rule, "--name", name)
    assert code == 0, result
    replays = stack.wait_for(lambda rs: [r for r in rs if r["replay_name"] == name and r["event_id"] == event_id
                                         and r["status"] == "delivered"], what="the replay")
    assert {r["rule"] for r in replays} == {rule}, "only the chosen rule receives the replay"


def test_ops_test_event_pattern_is_offline_and_exact(stack):
    code, result = stack.ops("test-event-pattern", "--event-pattern", '{"detail":{"n":[{"numeric":[">",1]}]}}',
                             "--event", '{"detail":{"n":2}}')
    assert (code, result) == (0, {"Result": True})
    code, result = stack.ops("test-event-pattern", "--event-pattern", '{"a":[]}', "--event", "{}")
    assert code == 2 and result["error"] == "InvalidEventPatternException"


def test_ops_status_counts_deliveries(stack):
    code, result = stack.ops("status")
    assert code == 0 and result["targets"] and result["archive"]["events"] >= 1


def test_local_controls_reject_bad_input(stack):
    assert stack.json("POST", "/_local/faults", {"target": "nope", "fail_next": 1})[0] == 404
    assert stack.json("POST", "/_local/faults", {"target": "analytics", "fail_next": "x"})[0] == 400
    assert stack.json("POST", "/_local/replays", {"name": "bad name!", "start": 0, "end": 1})[0] == 400
    assert stack.request("POST", "/_local/faults", b"{not json", {"content-type": "application/json"})[0] == 400


def aws_client(stack, service: str):
    import boto3

    return boto3.client(service, endpoint_url=stack.info["aws_endpoint_url"], region_name=stack.info["region"],
                        aws_access_key_id="local", aws_secret_access_key="local")


def delivered_types(records) -> set[str]:
    return {r["detail_type"] for r in records if r["status"] == "delivered"}


def test_paid_checkout_gets_a_confirmation_and_its_model_call_is_counted(stack):
    payload = json.loads((EVENTS / "stripe.checkout.session.completed.json").read_text())
    order_id = f"ord_{uuid.uuid4().hex[:8]}"
    payload["id"] = f"evt_{uuid.uuid4().hex}"
    payload["data"]["object"]["metadata"]["order_id"] = order_id
    status, _, answer = post_webhook(stack, "stripe", json.dumps(payload).encode())
    assert status == 202
    (event_id,) = answer["events"]
    confirmed = stack.wait_for(lambda rs: [r for r in rs if r["event_id"] == event_id
                                           and r["target"] == "order_confirmation" and r["status"] == "delivered"],
                               what="this order's confirmation")
    assert confirmed
    stack.wait_for(lambda rs: any(r["target"] == "usage_aggregator" and r["status"] == "delivered"
                                  and r["detail_type"] == "InferenceCompleted" for r in rs),
                   what="its InferenceCompleted counted")
    table = stack.info["names"]["tables"]["orders"]
    order = aws_client(stack, "dynamodb").get_item(TableName=table, Key={"order_id": {"S": order_id}})["Item"]
    assert order["status"]["S"] == "paid" and "¥1,500" in order["confirmation"]["M"]["text"]["S"]
    code, cost = stack.ops("cost", "--days", "2")
    assert code == 0 and any(r["model_id"] == "local.fast-v1" for r in cost["rows"])


def test_a_toxic_review_is_flagged_and_reaches_the_analytics_sink(stack):
    payload = json.loads((EVENTS / "reviews.submitted.json").read_text())
    payload.update(review_id=f"rev_{uuid.uuid4().hex[:8]}",
                   text="You are an idiot and a moron. I will hurt you!!! TRASH")
    status, _, _ = post_webhook(stack, "reviews", json.dumps(payload).encode())
    assert status == 202
    flagged = stack.wait_for(lambda rs: [r for r in rs if r["detail_type"] == "ModerationFlagged"
                                         and r["status"] == "delivered"],
                             what="ModerationFlagged")
    # Every platform event goes to the analytics sink and to the outbound dispatcher, which filters.
    assert {r["target"] for r in flagged} == {"analytics", "notifications"}
    review = aws_client(stack, "dynamodb").get_item(TableName=stack.info["names"]["tables"]["reviews"],
                                                    Key={"review_id": {"S": payload["review_id"]}})["Item"]
    assert review["status"]["S"] == "quarantined"


def test_a_new_release_becomes_searchable_over_the_rest_api(stack):
    payload = json.loads((EVENTS / "catalog.new_release.json").read_text())
    payload["batch_id"] = f"batch_{uuid.uuid4().hex[:8]}"
    status, _, answer = post_webhook(stack, "catalog", json.dumps(payload, ensure_ascii=False).encode())
    assert status == 202 and len(answer["events"]) == 2
    stack.wait_for(lambda rs: len([r for r in rs if r["event_id"] in answer["events"]
                                   and r["target"] == "catalog_indexer"
                                   and r["status"] == "delivered"]) == 2, what="indexing")
    headers = {"x-api-key": stack.info["api_key"]}
    query = "/v1/search?q=%E3%83%95%E3%83%AA%E3%83%BC%E3%83%AC%E3%83%B3&k=3"
    status, _, body = stack.json("GET", query, headers=headers)
    assert status == 200 and body["results"][0]["product_id"] == "bk-frieren-14"
    assert stack.json("GET", "/v1/search?q=x")[0] == 403, "the API key is required"
    assert stack.json("GET", "/v1/search?q=", headers=headers)[0] == 400


def analytics_lines(stack, prefix: str = "events/") -> dict[str, list[dict]]:
    """The analytics bucket's objects under prefix, as their JSON lines."""
    s3, bucket = aws_client(stack, "s3"), stack.info["names"]["buckets"]["analytics"]
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    return {key: [json.loads(line)
                  for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()]
            for key in keys}


def wait_for_analytics(stack, event_id: str, prefix: str = "events/", timeout: float = 30) -> str:
    """The key of the analytics object that holds event_id, once the queue's consumer wrote it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [key for key, lines in analytics_lines(stack, prefix).items()
                 if any(e["id"] == event_id for e in lines)]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"{event_id} in {len(found)} analytics objects"
            return found[0]
        time.sleep(0.3)


def test_every_platform_event_lands_in_the_analytics_bucket(stack):
    status, _, answer = post_webhook(stack, "github", (EVENTS / "github.push.json").read_bytes())
    (event_id,) = answer["events"]
    key = wait_for_analytics(stack, event_id, "events/date=")
    assert "source=mangaassist.codehost/detail_type=RepositoryEvent/" in key and key.endswith(".jsonl")


def test_a_stack_with_s3_and_dynamodb_in_processes_of_their_own_works_the_same(tmp_path):
    import subprocess
    import sys

    from e2e.conftest import ROOT, start_stack, stop_stack

    sharded = start_stack(tmp_path / "sharded", {"EMULATOR_SHARDS": "s3,dynamodb"})
    try:
        body, delivery = (EVENTS / "github.push.json").read_bytes(), str(uuid.uuid4())
        status, _, answer = post_webhook(sharded, "github", body, msg_id=delivery)
        assert status == 202, answer
        resent = resend_webhook(sharded, "github", body, msg_id=delivery)
        assert resent[:3:2] == (200, {**answer, "status": "duplicate"})
        (event_id,) = answer["events"]
        assert wait_for_analytics(sharded, event_id)  # read over the one port
        code, result = sharded.ops("status")
        assert code == 0 and result["archive"]["events"] >= 1
    finally:
        assert stop_stack(sharded) == 0
    refused = subprocess.run([sys.executable, str(ROOT / "scripts" / "local_stack.py"), "--emulator-shards", "events"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "takes s3, dynamodb" in refused.stderr

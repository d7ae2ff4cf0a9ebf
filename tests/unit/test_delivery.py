"""Delivery semantics the local router runs: retries, DLQ messages, archive, replay, transformers."""
from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mangaassist_dev import delivery
from mangaassist_dev.delivery import Archive, TargetError, dead_letter_message, deliver, parse_dead_letter
from mangaassist_dev.routing import RetryPolicy, parse_wiring

from mangaassist.events.transform import transform

EVENT = json.loads((Path(__file__).parents[1] / "events" / "eventBridgeEvent.json").read_text())


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


BOOM = RuntimeError("boom")


def failing(times: int, exc: Exception = BOOM):
    calls = {"n": 0}

    def invoke():
        calls["n"] += 1
        if calls["n"] <= times:
            raise exc

    invoke.calls = calls
    return invoke


def run(invoke, policy, clock=None, **kw):
    clock = clock or FakeClock()
    return deliver(invoke, policy, clock=clock, sleep=clock.sleep, rng=random.Random(7), **kw), clock


def test_success_first_time_is_one_attempt():
    outcome, clock = run(failing(0), RetryPolicy(3, 3600))
    assert (outcome.status, outcome.attempts, clock.sleeps) == ("delivered", 1, [])


def test_transient_failures_are_retried_until_delivered():
    outcome, clock = run(failing(2), RetryPolicy(3, 3600))
    assert (outcome.status, outcome.attempts, len(clock.sleeps)) == ("delivered", 3, 2)


def test_attempts_follow_maximum_retry_attempts():
    invoke = failing(100)
    outcome, _ = run(invoke, RetryPolicy(4, 86400))
    assert outcome.status == "dead_lettered"
    assert invoke.calls["n"] == 5 and outcome.retry_attempts == 4
    assert outcome.exhausted == delivery.MAX_RETRY_ATTEMPTS
    assert outcome.error.code == delivery.SDK_CLIENT_ERROR and "RuntimeError: boom" in outcome.error.message


def test_zero_retries_means_one_attempt():
    outcome, clock = run(failing(100), RetryPolicy(0, 60))
    assert (outcome.attempts, outcome.exhausted, clock.sleeps) == (1, delivery.MAX_RETRY_ATTEMPTS, [])


def test_event_age_stops_retries_before_the_attempt_budget():
    outcome, clock = run(failing(1000), RetryPolicy(185, 60))
    assert outcome.exhausted == delivery.MAX_EVENT_AGE
    assert outcome.attempts < 186
    assert clock.now <= 60


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(1)
    for retry in range(12):
        for _ in range(50):
            delay = delivery.backoff_seconds(retry, rng)
            assert 0 <= delay <= min(delivery.BACKOFF_CAP_SECONDS, 2**retry)


def test_time_scale_shrinks_waits_but_not_the_attempt_count():
    invoke = failing(1000)
    outcome, clock = run(invoke, RetryPolicy(185, 86400), time_scale=0.001)
    assert outcome.attempts == 186
    assert clock.now < 60  # a target that always fails reaches its DLQ within a minute locally


@pytest.mark.parametrize("code", [delivery.NO_RESOURCE, delivery.NO_PERMISSIONS])
def test_non_retriable_errors_go_straight_to_the_dlq(code):
    outcome, clock = run(failing(1, TargetError(code, "nope")), RetryPolicy(10, 3600))
    assert (outcome.status, outcome.attempts, outcome.exhausted, clock.sleeps) == ("dead_lettered", 1, None, [])


def test_a_contract_violation_goes_to_the_dlq_on_the_first_attempt_with_the_error_named():
    from mangaassist.contracts import ContractError

    outcome, clock = run(failing(100, ContractError("detail.rating", "6 is greater than the maximum of 5")),
                         RetryPolicy(16, 21600))
    assert (outcome.status, outcome.attempts, outcome.exhausted, clock.sleeps) == ("dead_lettered", 1, None, [])
    message = dead_letter_message(EVENT, "arn:rule", "arn:target", outcome)["MessageAttributes"]
    assert message["ERROR_CODE"]["StringValue"] == delivery.SDK_CLIENT_ERROR
    assert message["ERROR_MESSAGE"]["StringValue"] == "ContractError: detail.rating: 6 is greater than the maximum of 5"
    assert message["RETRY_ATTEMPTS"]["StringValue"] == "0" and "EXHAUSTED_RETRY_CONDITION" not in message


def test_timeouts_are_recorded_as_timeout():
    outcome, _ = run(failing(5, TimeoutError("Task timed out after 3.00 seconds")), RetryPolicy(1, 3600))
    assert outcome.error.code == delivery.TIMEOUT


def test_on_retry_sees_every_failed_attempt_but_the_last():
    seen = []
    run(failing(100), RetryPolicy(3, 3600), on_retry=lambda n, err: seen.append((n, err.code)))
    assert seen == [(1, "SDK_CLIENT_ERROR"), (2, "SDK_CLIENT_ERROR"), (3, "SDK_CLIENT_ERROR")]


def test_dead_letter_message_has_awss_attributes_and_round_trips():
    outcome, _ = run(failing(100), RetryPolicy(2, 3600))
    rule_arn = "arn:aws:events:ap-northeast-1:123456789012:rule/bus/payment-completed"
    target_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:mangaassist-order_confirmation"
    msg = dead_letter_message(EVENT, rule_arn, target_arn, outcome)
    assert json.loads(msg["MessageBody"]) == EVENT
    assert set(msg["MessageAttributes"]) == {
        "RULE_ARN", "TARGET_ARN", "ERROR_CODE", "ERROR_MESSAGE", "EXHAUSTED_RETRY_CONDITION", "RETRY_ATTEMPTS"}
    assert msg["MessageAttributes"]["RETRY_ATTEMPTS"]["StringValue"] == "2"
    assert msg["MessageAttributes"]["EXHAUSTED_RETRY_CONDITION"]["StringValue"] == "MaximumRetryAttempts"
    received = {"Body": msg["MessageBody"], "MessageAttributes": msg["MessageAttributes"]}
    letter = parse_dead_letter(received)
    assert (letter.event, letter.rule_arn, letter.target_arn, letter.retry_attempts) == (EVENT, rule_arn, target_arn, 2)


def test_parse_dead_letter_rejects_other_messages():
    with pytest.raises(ValueError, match="TARGET_ARN"):
        parse_dead_letter({"Body": "{}", "MessageAttributes": {}})
    with pytest.raises(ValueError):
        parse_dead_letter({"Body": "not json"})


def test_parse_dead_letter_reads_lambdas_failure_destination_records():
    """What Lambda writes to an on-failure SQS destination after its async retries."""
    record = {
        "version": "1.0",
        "timestamp": "2026-11-25T03:04:09.123Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            "functionArn": "arn:aws:lambda:ap-northeast-1:123456789012:function:mangaassist-order_confirmation:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": EVENT,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "model unavailable", "errorType": "ModelUnavailable"},
    }
    letter = parse_dead_letter({"Body": json.dumps(record)})
    assert letter.event == EVENT
    assert letter.target_arn == "arn:aws:lambda:ap-northeast-1:123456789012:function:mangaassist-order_confirmation"
    assert (letter.error_code, letter.error_message, letter.retry_attempts) == ("RetriesExhausted", "model unavailable",
                                                                                2)


def test_replayed_event_adds_replay_name_after_region():
    out = delivery.replayed(EVENT, "fix-2026-11-20")
    keys = list(out)
    assert keys[keys.index("region") + 1] == "replay-name"
    assert out["replay-name"] == "fix-2026-11-20"
    assert {k: v for k, v in out.items() if k != "replay-name"} == EVENT


WIRING = parse_wiring({
    "rules": {
        "payments": {"event_pattern": {"source": ["mangaassist.payments"]},
                     "targets": {"t": {"function": "order_confirmation"}}},
        "everything": {"event_pattern": {"source": [{"prefix": "mangaassist."}]},
                       "targets": {"t": {"queue": "analytics"}}},
        "reviews": {"event_pattern": {"source": ["mangaassist.reviews"]},
                    "targets": {"t": {"function": "review_moderation"}}},
    }
})


def test_replay_reaches_only_the_chosen_matching_rules():
    event = delivery.replayed(EVENT, "r1")
    assert [r.name for r in delivery.replay_rules(WIRING.rules, event, None)] == ["everything", "payments"]
    assert [r.name for r in delivery.replay_rules(WIRING.rules, event, ["payments", "reviews"])] == ["payments"]


def test_wiring_targets_default_to_eventbridges_retry_policy():
    target = WIRING.rule("payments").targets[0]
    policy = target.retry_policy
    assert (policy.maximum_retry_attempts, policy.maximum_event_age_in_seconds) == (185, 86400)
    assert target.kind == "lambda" and WIRING.rule("everything").targets[0].kind == "sqs"


@pytest.mark.parametrize("spec", [{}, {"function": "a", "queue": "b"}])
def test_a_target_needs_exactly_one_destination(spec):
    with pytest.raises(ValueError, match="exactly one"):
        parse_wiring({"rules": {"r": {"event_pattern": {"source": ["x"]}, "targets": {"t": spec}}}})


@pytest.mark.parametrize("policy", [{"maximum_retry_attempts": 186}, {"maximum_event_age_in_seconds": 59}])
def test_retry_policy_limits_are_awss(policy):
    with pytest.raises(ValueError):
        RetryPolicy(**policy)


def test_archive_keeps_matching_events_but_never_replays(tmp_path):
    path = tmp_path / "archive.jsonl"
    archive = Archive("a", {"source": [{"prefix": "mangaassist."}]}, path)
    assert archive.record(EVENT)
    assert not archive.record({**EVENT, "source": "other"})
    assert not archive.record(delivery.replayed(EVENT, "r1"))
    reopened = Archive("a", {"source": [{"prefix": "mangaassist."}]}, path)  # each event is on disk as it is kept
    assert reopened.event_count == 1 and reopened.size_bytes > 0
    archive.close()
    assert archive.record({**EVENT, "id": "after-close"})  # and closing is not the end of it
    assert Archive("a", None, path).event_count == 2
    archive.close()


def test_archive_selects_by_event_time(tmp_path):
    archive = Archive("a", None)
    for hour in ("01", "02", "03"):
        archive.record({**EVENT, "time": f"2026-11-20T{hour}:00:00Z"})
    start = datetime(2026, 11, 20, 2, tzinfo=UTC).timestamp()
    picked = archive.between(start, start + 3600)
    assert [e["time"] for e in picked] == ["2026-11-20T02:00:00Z", "2026-11-20T03:00:00Z"]


TRANSFORM_ARGS = dict(rule_arn="arn:rule", rule_name="payments", ingestion_time="2026-11-20T03:04:06Z")


def test_input_transformer_builds_json_with_quoted_strings_and_raw_numbers():
    out = transform(EVENT, {
        "InputPathsMap": {"order": "$.detail.order_id", "amount": "$.detail.amount",
                          "first": "$.detail.items[0].title"},
        "InputTemplate": '{"order": <order>, "yen": <amount>, "title": "Vol: <first>", "rule": <aws.events.rule-name>}',
    }, **TRANSFORM_ARGS)
    assert json.loads(out) == {"order": "ord_1001", "yen": 1500, "title": "Vol: ONE PIECE 107", "rule": "payments"}


def test_input_transformer_leaves_missing_paths_unreplaced_and_passes_whole_event():
    out = transform(EVENT, {
        "InputPathsMap": {"nope": "$.detail.missing"},
        "InputTemplate": '{"x": "<nope>", "event": <aws.events.event.json>}',
    }, **TRANSFORM_ARGS)
    assert json.loads(out) == {"x": "<nope>", "event": EVENT}

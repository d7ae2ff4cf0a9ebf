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


RULE_ARN = "arn:aws:events:ap-northeast-1:123456789012:rule/mangaassist-bus/mangaassist-payment-completed"
TARGET_ARN = "arn:aws:lambda:ap-northeast-1:123456789012:function:mangaassist-order_confirmation"


def contract_error():
    from mangaassist.contracts import ContractError

    return ContractError("detail.rating", "6 is greater than the maximum of 5")


# Each way a delivery ends in the DLQ, and the attributes an operator reads there (README: read
# ERROR_CODE first). Policy (3 retries, 1 hour); the failing call raises on every attempt.
DEAD_LETTERS = {
    "missing function": (TargetError(delivery.NO_RESOURCE, f"Function not found: {TARGET_ARN}"), RetryPolicy(3, 3600),
                         {"ERROR_CODE": "NO_RESOURCE", "ERROR_MESSAGE": f"Function not found: {TARGET_ARN}",
                          "RETRY_ATTEMPTS": "0"}),
    "missing permission": (TargetError(delivery.NO_PERMISSIONS, "not authorized to perform lambda:InvokeFunction"),
                           RetryPolicy(3, 3600),
                           {"ERROR_CODE": "NO_PERMISSIONS", "RETRY_ATTEMPTS": "0",
                            "ERROR_MESSAGE": "not authorized to perform lambda:InvokeFunction"}),
    "contract broken": (contract_error(), RetryPolicy(3, 3600),
                        {"ERROR_CODE": "SDK_CLIENT_ERROR", "RETRY_ATTEMPTS": "0",
                         "ERROR_MESSAGE": "ContractError: detail.rating: 6 is greater than the maximum of 5"}),
    "function error, retries exhausted": (RuntimeError("model unavailable"), RetryPolicy(3, 3600),
                                          {"ERROR_CODE": "SDK_CLIENT_ERROR", "RETRY_ATTEMPTS": "3",
                                           "ERROR_MESSAGE": "RuntimeError: model unavailable",
                                           "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts"}),
    "timeouts, retries exhausted": (TimeoutError("Task timed out after 3.00 seconds"), RetryPolicy(1, 3600),
                                    {"ERROR_CODE": "TIMEOUT", "ERROR_MESSAGE": "Task timed out after 3.00 seconds",
                                     "RETRY_ATTEMPTS": "1", "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts"}),
    "silent timeout": (TimeoutError(), RetryPolicy(0, 3600),
                       {"ERROR_CODE": "TIMEOUT", "ERROR_MESSAGE": "target timed out", "RETRY_ATTEMPTS": "0",
                        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts"}),
    "throttled, event too old": (TargetError(delivery.THROTTLING, "Rate exceeded"), RetryPolicy(185, 60),
                                 {"ERROR_CODE": "THROTTLING", "ERROR_MESSAGE": "Rate exceeded",
                                  "EXHAUSTED_RETRY_CONDITION": "MaximumEventAgeInSeconds"}),
    "empty message": (TargetError(delivery.SDK_CLIENT_ERROR, ""), RetryPolicy(0, 3600),
                      {"ERROR_CODE": "SDK_CLIENT_ERROR", "ERROR_MESSAGE": "-", "RETRY_ATTEMPTS": "0",
                       "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts"}),
    "long message": (RuntimeError("x" * 5000), RetryPolicy(0, 3600),
                     {"ERROR_CODE": "SDK_CLIENT_ERROR", "ERROR_MESSAGE": ("RuntimeError: " + "x" * 5000)[:1024],
                      "RETRY_ATTEMPTS": "0", "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts"}),
}


@pytest.mark.parametrize("kind", sorted(DEAD_LETTERS))
def test_dead_letter_attributes_for_each_failure_kind(kind):
    error, policy, expected = DEAD_LETTERS[kind]
    outcome, _ = run(failing(10_000, error), policy)
    message = dead_letter_message(EVENT, RULE_ARN, TARGET_ARN, outcome)
    attributes = message["MessageAttributes"]
    assert all(value["DataType"] == "String" for value in attributes.values())
    values = {name: value["StringValue"] for name, value in attributes.items()}
    if "RETRY_ATTEMPTS" not in expected:  # the event-age limit: however many retries fitted in 60 s
        assert int(values["RETRY_ATTEMPTS"]) == outcome.attempts - 1 >= 1
        expected = {**expected, "RETRY_ATTEMPTS": values["RETRY_ATTEMPTS"]}
    assert values == {"RULE_ARN": RULE_ARN, "TARGET_ARN": TARGET_ARN, **expected}
    letter = parse_dead_letter({"Body": message["MessageBody"], "MessageAttributes": attributes})
    assert (letter.error_code, letter.error_message) == (expected["ERROR_CODE"], expected["ERROR_MESSAGE"])
    assert letter.retry_attempts == int(expected["RETRY_ATTEMPTS"]) and letter.event == EVENT


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


# --- the details an operator and the router rely on ---------------------------------------------
def test_a_target_error_is_retriable_by_default_and_says_its_message():
    error = TargetError(delivery.THROTTLING, "Rate exceeded")
    assert (str(error), error.message, error.deterministic, error.retriable) == ("Rate exceeded", "Rate exceeded",
                                                                                 False, True)
    assert not TargetError(delivery.SDK_CLIENT_ERROR, "x", deterministic=True).retriable


def test_a_silent_timeout_is_named_and_a_timeout_keeps_its_message():
    assert delivery.as_target_error(TimeoutError()).message == "target timed out"
    assert delivery.as_target_error(TimeoutError("Task timed out after 3.00 seconds")).message == \
        "Task timed out after 3.00 seconds"


class Highest(random.Random):
    """The jitter's upper end (random() just under 1): each delay is then its retry's bound."""

    def random(self) -> float:
        return 1.0


def test_each_retry_waits_up_to_twice_the_previous_bound_up_to_the_cap():
    assert [delivery.backoff_seconds(retry, Highest()) for retry in (0, 1, 2, 7, 8, 20)] == [1, 2, 4, 128, 180, 180]
    clock = FakeClock()
    deliver(failing(100), RetryPolicy(9, 86400), clock=clock, sleep=clock.sleep, rng=Highest())
    assert clock.sleeps == [1, 2, 4, 8, 16, 32, 64, 128, 180]  # the first retry waits the base, not twice it


def test_without_an_rng_the_jitter_is_random_and_bounded():
    clock = FakeClock()
    deliver(failing(100), RetryPolicy(20, 86400), clock=clock, sleep=clock.sleep)
    assert len(set(clock.sleeps)) > 10 and all(0 <= s <= min(180, 2 ** i) for i, s in enumerate(clock.sleeps))


def test_the_event_age_counts_from_the_first_attempt_in_unscaled_seconds():
    # With every delay at its bound: 1, 2, 4, 8, 16 s of waiting, then 32 s more would reach 63 s > 60.
    clock = FakeClock()
    clock.now = 1_000.0  # a clock that does not start at zero
    outcome = deliver(failing(100), RetryPolicy(185, 60), clock=clock, sleep=clock.sleep, rng=Highest())
    assert (outcome.status, outcome.attempts, outcome.exhausted) == ("dead_lettered", 6, delivery.MAX_EVENT_AGE)
    assert outcome.error.code == delivery.SDK_CLIENT_ERROR and clock.sleeps == [1, 2, 4, 8, 16]
    scaled = FakeClock()  # a thousandth of the time, the same attempts
    outcome = deliver(failing(100), RetryPolicy(185, 60), clock=scaled, sleep=scaled.sleep, rng=Highest(),
                      time_scale=0.001)
    assert (outcome.attempts, outcome.exhausted) == (6, delivery.MAX_EVENT_AGE)
    assert scaled.sleeps == pytest.approx([0.001, 0.002, 0.004, 0.008, 0.016])


def test_a_retry_that_would_land_exactly_on_the_age_limit_is_still_made():
    clock = FakeClock()  # waits 1 + 2 + 4 + 8 + 16 + 32 = 63 s: the sixth retry lands exactly at 63
    outcome = deliver(failing(6), RetryPolicy(185, 63), clock=clock, sleep=clock.sleep, rng=Highest())
    assert (outcome.status, outcome.attempts, clock.now) == ("delivered", 7, 63)


def test_a_time_scale_of_zero_never_waits_and_ages_no_event():
    clock = FakeClock()  # the policy's age still bounds each delay: 1 + ... + 64 fit in 64 s one by one, 128 does not
    outcome = deliver(failing(100), RetryPolicy(185, 64), clock=clock, sleep=clock.sleep, rng=Highest(), time_scale=0)
    assert (outcome.attempts, outcome.exhausted, clock.sleeps) == (8, delivery.MAX_EVENT_AGE, [0.0] * 7)


def test_without_a_time_scale_delays_are_real_seconds():
    clock = FakeClock()
    deliver(failing(2), RetryPolicy(3, 3600), clock=clock, sleep=clock.sleep, rng=Highest())
    assert clock.sleeps == [1, 2]


def test_dead_letter_attributes_are_strings_and_the_body_is_the_compact_event():
    outcome, _ = run(failing(100, TargetError(delivery.NO_RESOURCE, "é" * 1025)), RetryPolicy(0, 60))
    message = dead_letter_message(EVENT, RULE_ARN, TARGET_ARN, outcome)
    assert message["MessageBody"] == json.dumps(EVENT, separators=(",", ":"))
    assert {value["DataType"] for value in message["MessageAttributes"].values()} == {"String"}
    assert message["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"] == "é" * 1024


def test_a_dead_letter_with_only_its_target_reads_as_empty_fields():
    letter = parse_dead_letter({"Body": json.dumps(EVENT), "MessageAttributes": {
        "TARGET_ARN": {"DataType": "String", "StringValue": TARGET_ARN}}})
    assert (letter.rule_arn, letter.target_arn, letter.error_code, letter.error_message, letter.retry_attempts) == (
        "", TARGET_ARN, "", "", 0)
    letter = parse_dead_letter({"Body": json.dumps(EVENT), "MessageAttributes": {
        "TARGET_ARN": {"StringValue": TARGET_ARN}, "ERROR_CODE": {"DataType": "String"}}})  # no StringValue
    assert letter.error_code == ""
    letter = parse_dead_letter({"Body": json.dumps(EVENT), "MessageAttributes": {
        "TARGET_ARN": {"StringValue": TARGET_ARN}, "RETRY_ATTEMPTS": {"StringValue": ""}}})
    assert letter.retry_attempts == 0


def test_a_message_that_is_no_dead_letter_is_told_so():
    with pytest.raises(ValueError) as caught:
        parse_dead_letter({"Body": json.dumps({"requestContext": {}}), "MessageAttributes": {}})
    assert str(caught.value) == "not a dead letter: no TARGET_ARN attribute and not a Lambda failure record"


def failure_record(function_arn: str, **context) -> dict:
    return {"requestContext": {"functionArn": function_arn, **context}, "requestPayload": EVENT}


def test_a_lambda_failure_record_with_the_least_in_it():
    letter = parse_dead_letter({"Body": json.dumps(failure_record(TARGET_ARN))})  # unqualified: 6 colons, kept whole
    assert (letter.target_arn, letter.rule_arn, letter.error_code, letter.error_message, letter.retry_attempts) == (
        TARGET_ARN, "", "", "", 0)
    record = {**failure_record(TARGET_ARN + ":live", condition="EventAgeExceeded", approximateInvokeCount=1),
              "responsePayload": "Task timed out"}
    letter = parse_dead_letter({"Body": json.dumps(record)})
    assert (letter.target_arn, letter.error_code, letter.error_message) == (TARGET_ARN, "EventAgeExceeded",
                                                                           "Task timed out")
    record["responsePayload"] = {"errorType": "Timeout"}
    assert parse_dead_letter({"Body": json.dumps(record)}).error_message == ""


def test_a_replay_of_a_replayed_event_carries_the_new_name_once_and_keeps_every_field():
    first = delivery.replayed(EVENT, "first")
    again = delivery.replayed({"replay-name": "first", **first}, "second")
    keys = list(again)
    assert again["replay-name"] == "second" and keys[keys.index("region") + 1] == "replay-name"
    assert {k: v for k, v in again.items() if k != "replay-name"} == EVENT
    no_region = {k: v for k, v in EVENT.items() if k != "region"}
    assert delivery.replayed(no_region, "third") == {**no_region, "replay-name": "third"}


def test_the_archive_keeps_its_name_and_the_time_each_event_was_archived(tmp_path, monkeypatch):
    Archive("never-used", None, tmp_path / "never.jsonl").close()  # nothing opened: nothing to close
    path = tmp_path / "archive.jsonl"
    archive = Archive("orders-archive", None, path)
    assert archive.name == "orders-archive"
    archive.record(EVENT, archived_at=1234.5)
    monkeypatch.setattr(delivery.time, "time", lambda: 99.0)
    archive.record({**EVENT, "id": "2"})
    archive.close()
    archive.close()  # closing twice is harmless
    assert [json.loads(line)["archived_at"] for line in path.read_text().splitlines()] == [1234.5, 99.0]


def test_a_reopened_archive_has_every_event_by_id_with_its_archive_time_and_size(tmp_path):
    path = tmp_path / "archive.jsonl"
    archive = Archive("a", None, path)
    events = [{**EVENT, "id": str(n), "detail": {"n": n}} for n in range(3)]
    for n, event in enumerate(events):
        archive.record(event, archived_at=100.0 + n)
    archive.close()
    with path.open("a") as file:  # an event written without its archive time counts as archived at 0
        file.write(json.dumps({"event": {**EVENT, "id": "old"}}) + "\n")
    size = sum(len(json.dumps(e, separators=(",", ":"))) for e in [*events, {**EVENT, "id": "old"}])
    reopened = Archive("a", None, path)
    assert [(stamp, e["id"]) for stamp, e in reopened.archived()] == [(100.0, "0"), (101.0, "1"), (102.0, "2"),
                                                                    (0.0, "old")]
    assert reopened.get("1") == events[1] and reopened.get("missing") is None
    assert reopened.size_bytes == size and not reopened.damage


def test_an_archived_line_without_a_string_id_and_time_is_damage_not_an_event(tmp_path):
    path = tmp_path / "archive.jsonl"
    records = [{"archived_at": 1, "event": {**EVENT, "id": 7}}, {"archived_at": 2, "event": {**EVENT, "time": 7}},
               {"archived_at": "soon", "event": EVENT}, {"archived_at": 3, "event": EVENT}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    archive = Archive("a", None, path)
    assert archive.damage.lines == [1, 2, 3] and [e["id"] for _, e in archive.archived()] == [EVENT["id"]]


def test_an_event_with_a_damaged_time_is_skipped_by_a_replay_and_the_rest_still_found():
    archive = Archive("a", None)
    archive.record({**EVENT, "id": "bad", "time": "yesterday"})
    archive.record({**EVENT, "id": "good", "time": "2026-11-20T02:00:00Z"})
    start = datetime(2026, 11, 20, 1, tzinfo=UTC).timestamp()
    assert [e["id"] for e in archive.between(start, start + 3600 * 2)] == ["good"]


def test_events_between_two_times_come_oldest_first_whatever_order_they_were_archived_in():
    archive = Archive("a", None)
    for hour in ("03", "01", "02"):
        archive.record({**EVENT, "id": hour, "time": f"2026-11-20T{hour}:00:00Z"})
    archive.record({**EVENT, "id": "offset", "time": "2026-11-20T02:30:00+00:00"})
    archive.record({**EVENT, "id": "same time", "time": "2026-11-20T02:30:00Z"})  # ties keep archive order
    start = datetime(2026, 11, 20, 1, tzinfo=UTC).timestamp()
    assert [e["id"] for e in archive.between(start, start + 3 * 3600)] == ["01", "02", "offset", "same time", "03"]

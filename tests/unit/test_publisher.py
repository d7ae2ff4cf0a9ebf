"""publish(): validated, chunked by count and size, only failed entries retried, nothing dropped."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from mangaassist import backoff, clients, settings
from mangaassist.contracts import ContractError
from mangaassist.events import publisher
from mangaassist.events.publisher import Event, EventTooLarge, PublishError, publish

BUS = "test-bus"


def review(i: int, text: str = "good") -> Event:
    return Event("mangaassist.reviews", "ReviewSubmitted", {
        "version": "1", "review_id": f"r{i}", "product_id": "p1", "customer_id": "c1", "rating": 5, "text": text})


def reviews(n: int) -> list[Event]:
    return [review(i) for i in range(n)]


def review_ids(entries: list[dict]) -> list[str]:
    return [json.loads(e["Detail"])["review_id"] for e in entries]


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "PutEvents")


class Flaky:
    """The moto client's put_events, recording each call; chosen calls raise, chosen entries fail.

    ``fail_entry(call_number, review_id)`` returns an ErrorCode or None; ``fail_call(call_number)``
    returns an exception to raise or None. Call numbers start at 1.
    """

    def __init__(self, client, fail_entry=lambda call, review_id: None, fail_call=lambda call: None):
        self.client, self.fail_entry, self.fail_call, self.calls = client, fail_entry, fail_call, []

    def put_events(self, Entries):
        self.calls.append(Entries)
        number = len(self.calls)
        if error := self.fail_call(number):
            raise error
        codes = [self.fail_entry(number, review_id) for review_id in review_ids(Entries)]
        passed = [entry for entry, code in zip(Entries, codes) if not code]
        sent = iter(self.client.put_events(Entries=passed)["Entries"] if passed else [])
        results = [{"ErrorCode": code, "ErrorMessage": "injected"} if code else next(sent) for code in codes]
        return {"FailedEntryCount": sum(map(bool, codes)), "Entries": results}


@pytest.fixture
def bus(monkeypatch):
    """A moto bus whose every event lands in an SQS queue; yields (client, delivered)."""
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.delenv("MANGAASSIST_MAX_EVENT_BYTES", raising=False)
    monkeypatch.setattr(publisher, "sleep", lambda _seconds: None)
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name=BUS)
        url = sqs.create_queue(QueueName="tap")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": arn}])

        def delivered() -> list[dict]:
            out = []
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                out += [json.loads(m["Body"]) for m in batch]
                sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                                for i, m in enumerate(batch)])
            return out

        yield events, delivered


# --- batching --------------------------------------------------------------------------------
def test_twenty_five_events_are_three_calls_with_ids_in_input_order(bus):
    client, delivered = bus
    flaky = Flaky(client)
    ids = publish(reviews(25), client=flaky)
    assert [len(call) for call in flaky.calls] == [10, 10, 5]
    by_id = {event["id"]: event["detail"]["review_id"] for event in delivered()}
    assert [by_id[event_id] for event_id in ids] == [f"r{i}" for i in range(25)]


def test_calls_stay_within_the_size_limit(bus, monkeypatch):
    client, delivered = bus
    monkeypatch.setenv("MANGAASSIST_MAX_EVENT_BYTES", "2000")
    flaky = Flaky(client)
    publish([review(i, "x" * 700) for i in range(6)], client=flaky)
    assert [len(call) for call in flaky.calls] == [2, 2, 2]
    assert all(sum(map(publisher.entry_size, call)) <= 2000 for call in flaky.calls)
    assert len(delivered()) == 6


@pytest.mark.parametrize("setting, limit", [(None, 262144), ("1048576", 1048576), ("1048577", ValueError)])
def test_size_limit_setting_defaults_to_256_kb_and_stops_at_1_mb(monkeypatch, setting, limit):
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    if setting:
        monkeypatch.setenv("MANGAASSIST_MAX_EVENT_BYTES", setting)
    else:
        monkeypatch.delenv("MANGAASSIST_MAX_EVENT_BYTES", raising=False)
    if limit is ValueError:
        with pytest.raises(settings.MissingSetting, match="MANGAASSIST_MAX_EVENT_BYTES.*1 to 1048576"):
            settings.events()
    else:
        assert settings.events().max_event_bytes == limit


def test_size_is_counted_the_aws_way():
    entry = {"Source": "s", "DetailType": "dt", "Detail": '{"t":"あ"}', "Resources": ["arn:1"]}
    assert publisher.entry_size(entry) == 14 + 1 + 2 + len('{"t":"あ"}'.encode()) + 5


# --- nothing is sent unless everything can be -------------------------------------------------
def test_an_oversized_event_is_refused_before_anything_is_sent(bus, monkeypatch):
    client, delivered = bus
    monkeypatch.setenv("MANGAASSIST_MAX_EVENT_BYTES", "1000")
    flaky = Flaky(client)
    with pytest.raises(EventTooLarge, match="ReviewSubmitted"):
        publish([review(1), review(2, "x" * 2000)], client=flaky)
    assert flaky.calls == [] and delivered() == []


def test_an_invalid_detail_stops_the_whole_publish(bus):
    client, delivered = bus
    flaky = Flaky(client)
    bad = Event("mangaassist.reviews", "ReviewSubmitted", {"version": "1", "rating": 9})
    with pytest.raises(ContractError):
        publish([review(1), bad], client=flaky)
    assert flaky.calls == [] and delivered() == []


def test_no_bus_is_an_error_and_no_events_is_no_call(bus, monkeypatch):
    client, _ = bus
    flaky = Flaky(client)
    assert publish([], client=flaky) == [] and flaky.calls == []
    monkeypatch.delenv("EVENT_BUS_NAME")
    settings.reload()
    with pytest.raises(settings.MissingSetting, match="EVENT_BUS_NAME"):
        publish([review(1)], client=flaky)


# --- retries ---------------------------------------------------------------------------------
def test_only_failed_entries_are_retried_across_calls(bus):
    client, delivered = bus
    throttled = {"r3", "r11"}  # one from each call of the first round
    flaky = Flaky(client, fail_entry=lambda call, rid: "ThrottlingException" if call <= 2 and rid in throttled
                  else None)
    ids = publish(reviews(12), client=flaky)
    assert [review_ids(call) for call in flaky.calls[2:]] == [["r3", "r11"]]
    assert len(set(ids)) == 12 and all(ids)
    assert sorted(e["detail"]["review_id"] for e in delivered()) == sorted(f"r{i}" for i in range(12))


def test_exhausted_retries_raise_with_the_failed_entries_and_the_published_ids(bus):
    client, delivered = bus
    flaky = Flaky(client, fail_entry=lambda call, rid: "InternalFailure" if rid == "r1" else None)
    with pytest.raises(PublishError) as caught:
        publish(reviews(2), client=flaky, max_attempts=3)
    assert len(flaky.calls) == 3
    (failed,) = caught.value.failed
    assert review_ids([failed]) == ["r1"] and failed["ErrorCode"] == "InternalFailure"
    assert [e["id"] for e in delivered()] == caught.value.published


def test_an_entry_refused_for_good_is_not_retried(bus):
    client, _ = bus
    flaky = Flaky(client, fail_entry=lambda call, rid: "MalformedDetail" if rid == "r0" else None)
    with pytest.raises(PublishError) as caught:
        publish(reviews(2), client=flaky)
    assert len(flaky.calls) == 1 and [f["ErrorCode"] for f in caught.value.failed] == ["MalformedDetail"]
    assert len(caught.value.published) == 1


@pytest.mark.parametrize("code, status", [("ThrottlingException", 400), ("InternalException", 500), ("Unknown", 503)])
def test_a_throttled_or_failing_call_is_retried_whole(bus, code, status):
    client, delivered = bus
    flaky = Flaky(client, fail_call=lambda call: client_error(code, status) if call == 1 else None)
    ids = publish(reviews(3), client=flaky)
    assert [review_ids(call) for call in flaky.calls] == [["r0", "r1", "r2"]] * 2
    assert sorted(e["id"] for e in delivered()) == sorted(ids)


def test_a_call_refused_for_good_stops_and_reports_what_went_through(bus):
    client, delivered = bus
    flaky = Flaky(client, fail_call=lambda call: client_error("AccessDeniedException", 400) if call == 2 else None)
    with pytest.raises(PublishError) as caught:
        publish(reviews(25), client=flaky)
    assert len(flaky.calls) == 2, "the third call would be refused too"
    assert isinstance(caught.value.__cause__, ClientError)
    assert len(caught.value.published) == 10 and len(delivered()) == 10
    assert len(caught.value.failed) == 15 and {f["ErrorCode"] for f in caught.value.failed} == {"AccessDeniedException"}


def test_backoff_is_exponential_with_full_jitter_and_capped(bus, monkeypatch):
    client, _ = bus
    slept = []
    monkeypatch.setattr(publisher, "sleep", slept.append)
    monkeypatch.setattr(backoff.random, "random", lambda: 1.0)  # the top of each jitter range
    flaky = Flaky(client, fail_entry=lambda call, rid: "ThrottlingException")
    with pytest.raises(PublishError):
        publish(reviews(1), client=flaky, max_attempts=5, base_delay=0.05, max_delay=0.15)
    assert slept == [0.05, 0.1, 0.15, 0.15]


# --- what goes on the wire -------------------------------------------------------------------
def test_entries_are_compact_utf8_with_time_and_resources(bus):
    client, delivered = bus
    flaky = Flaky(client)
    when = datetime(2026, 11, 25, 3, 4, 5, tzinfo=UTC)
    arn = "arn:aws:dynamodb:ap-northeast-1:123456789012:table/reviews"
    publish([Event("mangaassist.reviews", "ReviewSubmitted", {**review(1).detail, "text": "最高の巻でした！"},
                   resources=(arn,), time=when)], client=flaky)
    assert '"text":"最高の巻でした！"' in flaky.calls[0][0]["Detail"]
    (event,) = delivered()
    assert (event["time"], event["resources"]) == ("2026-11-25T03:04:05Z", [arn])


def test_the_default_client_is_made_once(bus):
    _, delivered = bus
    publish([review(1)])
    first = clients.client("events", "publish")
    publish([review(2)])
    assert clients.client("events", "publish") is first and len(delivered()) == 2

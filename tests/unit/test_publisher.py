"""publish(): validated, chunked by count and size, only failed entries retried, nothing dropped."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from mangaassist.contracts import ContractError
from mangaassist.events import publisher
from mangaassist.events.publisher import Event, EventTooLarge, PublishError, publish

BUS = "test-bus"


def review(i: int, text: str = "good") -> Event:
    return Event("mangaassist.reviews", "ReviewSubmitted", {
        "version": "1", "review_id": f"r{i}", "product_id": "p1", "customer_id": "c1", "rating": 5, "text": text})


@pytest.fixture
def bus(monkeypatch):
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setattr(publisher, "_client", None)
    monkeypatch.setattr(publisher, "sleep", lambda _s: None)
    with mock_aws():
        events = boto3.client("events")
        events.create_event_bus(Name=BUS)
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="tap")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])

        def delivered():
            out = []
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                out += [json.loads(m["Body"]) for m in batch]
                sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                                for i, m in enumerate(batch)])
            return out

        yield events, delivered


class Recorder:
    """Wraps a client's put_events, optionally failing chosen entries per call."""

    def __init__(self, client, fail=None):
        self.client, self.fail, self.calls = client, fail or (lambda call, entry: None), []

    def put_events(self, Entries):
        self.calls.append(Entries)
        real = [e for e in Entries if not self.fail(len(self.calls), e)]
        answer = iter(self.client.put_events(Entries=real)["Entries"] if real else [])
        results = [{"ErrorCode": code, "ErrorMessage": "injected"} if (code := self.fail(len(self.calls), e))
                   else next(answer) for e in Entries]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_twenty_five_events_are_three_calls_and_all_delivered(bus):
    client, delivered = bus
    recorder = Recorder(client)
    ids = publish([review(i) for i in range(25)], client=recorder)
    assert [len(c) for c in recorder.calls] == [10, 10, 5]
    assert len(ids) == 25 and len(set(ids)) == 25
    assert sorted(e["detail"]["review_id"] for e in delivered()) == sorted(f"r{i}" for i in range(25))


def test_calls_stay_within_the_size_limit(bus, monkeypatch):
    client, _ = bus
    monkeypatch.setenv("MANGAASSIST_MAX_EVENT_BYTES", "2000")
    recorder = Recorder(client)
    publish([review(i, "x" * 700) for i in range(6)], client=recorder)
    assert all(sum(publisher.entry_size(e) for e in call) <= 2000 for call in recorder.calls)
    assert sum(len(c) for c in recorder.calls) == 6 and len(recorder.calls) == 3


def test_an_oversized_event_is_refused_before_anything_is_sent(bus, monkeypatch):
    client, delivered = bus
    monkeypatch.setattr(publisher, "validate_detail", lambda *a: None)  # contracts cap text well below 256 KB
    recorder = Recorder(client)
    with pytest.raises(EventTooLarge):
        publish([review(1), review(2, "x" * 300_000)], client=recorder)
    assert recorder.calls == [] and delivered() == []


def test_an_invalid_detail_stops_the_whole_publish(bus):
    client, delivered = bus
    bad = Event("mangaassist.reviews", "ReviewSubmitted", {"version": "1", "rating": 9})
    with pytest.raises(ContractError):
        publish([review(1), bad], client=Recorder(client))
    assert delivered() == []


def test_only_failed_entries_are_retried(bus):
    client, delivered = bus
    recorder = Recorder(client, fail=lambda call, e: "ThrottlingException" if call == 1 and '"r3"' in e["Detail"] else None)
    ids = publish([review(i) for i in range(5)], client=recorder)
    assert [len(c) for c in recorder.calls] == [5, 1] and '"r3"' in recorder.calls[1][0]["Detail"]
    assert len(ids) == 5 and all(ids)
    assert len(delivered()) == 5


def test_exhausted_retries_raise_with_the_failed_entries_and_the_published_ids(bus):
    client, delivered = bus
    recorder = Recorder(client, fail=lambda call, e: "InternalFailure" if '"r1"' in e["Detail"] else None)
    with pytest.raises(PublishError) as caught:
        publish([review(0), review(1)], client=recorder, max_attempts=3)
    assert len(recorder.calls) == 3
    assert [f["ErrorCode"] for f in caught.value.failed] == ["InternalFailure"]
    assert len(caught.value.published) == 1 and len(delivered()) == 1


def test_a_throttled_call_is_retried_whole(bus):
    client, _ = bus
    calls = {"n": 0}

    class Throttled:
        def put_events(self, Entries):
            calls["n"] += 1
            if calls["n"] == 1:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "PutEvents")
            return client.put_events(Entries=Entries)

    assert len(publish([review(1)], client=Throttled())) == 1 and calls["n"] == 2


def test_a_non_retryable_error_is_raised_at_once(bus):
    class Denied:
        def put_events(self, Entries):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents")

    with pytest.raises(ClientError):
        publish([review(1)], client=Denied())


def test_size_is_counted_the_aws_way():
    entry = {"Source": "s", "DetailType": "dt", "Detail": '{"t":"あ"}', "Resources": ["arn:1"]}
    assert publisher.entry_size(entry) == 14 + 1 + 2 + len('{"t":"あ"}'.encode()) + 5

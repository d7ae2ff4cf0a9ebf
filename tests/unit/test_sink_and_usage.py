"""The analytics sink (SQS batches -> JSON lines on S3) and the usage counters."""
from __future__ import annotations

import importlib.util
import json
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from mangaassist import clients
from mangaassist.deps import Deps
from mangaassist.workers import analytics, usage

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "schemas" / "events").glob("*/*.samples.json"))


def handler(name: str):
    spec = importlib.util.spec_from_file_location(f"fn_{name}", ROOT / "functions" / name / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


def sqs_event(bodies: list[str]) -> dict:
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"h{i}", "body": body, "attributes": {},
                         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:ap-northeast-1:123456789012:analytics",
                         "awsRegion": "ap-northeast-1"}
                        for i, body in enumerate(bodies)]}


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("ANALYTICS_BUCKET", "analytics-bucket")
    monkeypatch.setenv("USAGE_TABLE", "usage")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
    monkeypatch.setattr(usage, "_default", Deps())
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="analytics-bucket",
                                         CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
        ddb = boto3.client("dynamodb")
        ddb.create_table(TableName="usage", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}])
        ddb.create_table(TableName="idempotency", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
        yield


def counted(days: list[str]) -> dict:
    return usage.daily_usage(days, client=boto3.client("dynamodb"), table="usage")


def stored_lines(bucket: str = "analytics-bucket") -> dict[str, list[dict]]:
    s3 = boto3.client("s3")
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                       .decode().splitlines()] for o in objects}


def test_every_sample_event_lands_partitioned_as_a_json_line(aws):
    events = [json.loads(p.read_text())["valid"][0] for p in SAMPLES]
    response = handler("analytics")(sqs_event([json.dumps(e) for e in events]), None)
    assert response == {"batchItemFailures": []}
    stored = stored_lines()
    assert sorted(e["id"] for lines in stored.values() for e in lines) == sorted(e["id"] for e in events)
    for key, lines in stored.items():
        assert key.endswith(".jsonl") and "date=2026-11-25" in key
        assert {analytics.partition(e) for e in lines} == {key.rsplit("/", 1)[0] + "/"}  # one partition per object
        assert all(f"source={e['source']}" in key for e in lines)


def test_a_batch_is_one_object_per_partition_with_one_line_per_event(aws):
    sample = json.loads(SAMPLES[0].read_text())["valid"][0]
    events = [{**sample, "id": f"evt-{i}"} for i in range(10)]
    events.append({**sample, "id": "next-day", "time": "2026-11-26T00:00:01Z"})
    assert handler("analytics")(sqs_event([json.dumps(e) for e in events]), None) == {"batchItemFailures": []}
    stored = stored_lines()
    assert sorted(len(lines) for lines in stored.values()) == [1, 10]
    (key,) = [k for k, lines in stored.items() if len(lines) == 10]
    assert key == analytics.object_key(events[:10])
    assert [e["id"] for e in stored[key]] == [f"evt-{i}" for i in range(10)]
    body = boto3.client("s3").get_object(Bucket="analytics-bucket", Key=key)
    assert body["ServerSideEncryption"] == "AES256" and body["ContentType"] == "application/x-ndjson"


def test_bad_records_fail_alone(aws):
    good = json.loads(SAMPLES[0].read_text())["valid"][0]
    response = handler("analytics")(sqs_event([json.dumps(good), "not json", json.dumps({"id": "x"})]), None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert [e["id"] for lines in stored_lines().values() for e in lines] == [good["id"]]


def test_an_object_that_cannot_be_written_fails_only_its_records(aws, monkeypatch):
    sample = json.loads(SAMPLES[0].read_text())["valid"][0]
    events = [{**sample, "id": "today"}, {**sample, "id": "tomorrow", "time": "2026-11-26T00:00:01Z"}]
    handler("analytics")  # the handler's module, loaded
    s3 = boto3.client("s3")
    real_put = s3.put_object

    def put(**kwargs):
        if "date=2026-11-26" in kwargs["Key"]:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your request rate"}}, "PutObject")
        return real_put(**kwargs)

    monkeypatch.setattr(s3, "put_object", put)
    monkeypatch.setitem(clients._built, ("s3", "default"), s3)
    response = handler("analytics")(sqs_event([json.dumps(e) for e in events]), None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert [e["id"] for lines in stored_lines().values() for e in lines] == ["today"]


def test_a_redelivered_batch_rewrites_the_same_object(aws):
    event = json.loads(SAMPLES[0].read_text())["valid"][0]
    for _ in range(2):
        handler("analytics")(sqs_event([json.dumps(event)]), None)
    assert boto3.client("s3").list_objects_v2(Bucket="analytics-bucket")["KeyCount"] == 1


def inference(event_id: str, model: str, cost: float, tokens=(100, 20)) -> dict:
    samples = ROOT / "schemas/events/mangaassist.ai/InferenceCompleted.samples.json"
    sample = json.loads(samples.read_text())["valid"][0]
    return {**sample, "id": event_id, "detail": {**sample["detail"], "model_id": model, "input_tokens": tokens[0],
                                                 "output_tokens": tokens[1], "estimated_cost_usd": cost}}


def test_usage_counts_per_model_and_total_once_per_event(aws):
    run = handler("usage_aggregator")
    run(inference("e1", "haiku", 0.0005), None)
    run(inference("e1", "haiku", 0.0005), None)  # EventBridge delivered it twice
    run(inference("e2", "sonnet", 0.003, (200, 50)), None)
    counters = counted(["2026-11-25"])["2026-11-25"]
    assert counters["haiku"]["calls"] == 1 and counters["haiku"]["input_tokens"] == 100
    assert counters["total"] == {"calls": 2, "input_tokens": 300, "output_tokens": 70, "cost_usd": Decimal("0.0035")}
    assert usage.projected_cost_per_million(counted(["2026-11-25"])) == Decimal("1750.00")


def test_usage_rejects_an_event_that_breaks_the_contract(aws):
    from mangaassist.contracts import ContractError

    bad = inference("e3", "haiku", 0.001)
    bad["detail"]["input_tokens"] = -5
    with pytest.raises(ContractError):
        handler("usage_aggregator")(bad, None)
    assert counted(["2026-11-25"]) == {}


def test_usage_builds_its_client_once_per_container(aws, monkeypatch):
    made = []
    real = boto3.client
    monkeypatch.setattr(boto3, "client", lambda *a, **k: made.append(a) or real(*a, **k))
    for i in range(3):
        usage.record_usage(inference(f"c{i}", "haiku", 0.001))
    assert made == [("dynamodb",)]
    assert counted(["2026-11-25"])["2026-11-25"]["total"]["calls"] == 3

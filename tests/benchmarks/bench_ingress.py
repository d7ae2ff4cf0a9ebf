#!/usr/bin/env python3
"""Webhook ingress overhead: the handler's latency divided by the cost of the AWS calls it cannot
avoid (S3 put of the raw body, a conditional put to claim the delivery, PutEvents), made
directly against the same emulator in the same run. Goal: <= 1.2.

Also shown: the same with the fourth call the handler makes, the claim's completion record (what
a retry's 200 "duplicate" answer is read from), which isolates the handler's own overhead.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "layers" / "shared" / "python"), str(ROOT / "scripts")]

BUS, BUCKET, TABLE = "bench-bus", "bench-raw-payloads", "bench-idempotency"
# The conditional put is the claim the handler makes (Powertools' condition: a new key, an expired
# record, or an in-progress claim whose holder timed out), so both sides make the same call.
CLAIM_CONDITION = ("attribute_not_exists(#id) OR #expiry < :now OR "
                   "(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis)")
CLAIM_NAMES = {"#id": "id", "#expiry": "expiration", "#in_progress_expiry": "in_progress_expiration", "#status": "status"}
SECRET = "whsec_bench_secret"


class Context:
    function_name = "bench-webhook_ingress"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--in-process", action="store_true", help="reach the emulator without the socket, as the local stack does")
    args = parser.parse_args()

    import os

    from embedded.aws import Emulator

    emulator = Emulator(BUS, lambda events: None, in_process=args.in_process).start()
    os.environ.update(AWS_ENDPOINT_URL=emulator.endpoint_url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="ap-northeast-1", EVENT_BUS_NAME=BUS, POWERTOOLS_LOG_LEVEL="ERROR")
    import boto3

    from mangaassist.webhooks.ingest import Ingress, Settings
    from mangaassist.webhooks.mapping import map_stripe, Delivery
    from mangaassist.webhooks.signing import sign_stripe
    from mangaassist.webhooks.sources import Keys, load_sources

    s3, ddb, events = boto3.client("s3"), boto3.client("dynamodb"), boto3.client("events")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    events.create_event_bus(Name=BUS)
    sources = load_sources(json.dumps(json.loads((ROOT / "terraform" / "wiring.json").read_text())["sources"]))
    ingress = Ingress(sources, Settings(bucket=BUCKET, table=TABLE), keys=lambda _s: Keys((SECRET,)))
    template = json.loads((ROOT / "tests" / "events" / "stripe.checkout.session.completed.json").read_text())
    url_event = json.loads((ROOT / "tests" / "events" / "lambdaFunctionUrlEvent.json").read_text())

    def webhook() -> tuple[bytes, dict]:
        body = json.dumps({**template, "id": f"evt_{uuid.uuid4().hex}"}).encode()
        event = json.loads(json.dumps(url_event))
        event["headers"].update({k.lower(): v for k, v in sign_stripe(SECRET, body).items()})
        event["body"] = body.decode()
        return body, event

    def handler_once() -> float:
        _, event = webhook()
        start = time.perf_counter()
        response = ingress.handle(event, Context())
        elapsed = time.perf_counter() - start
        assert response["statusCode"] == 202, response
        return elapsed

    def direct_once(complete: bool = False) -> float:
        body, _ = webhook()
        payload = json.loads(body)
        entry = map_stripe(payload, Delivery("stripe", payload["id"], {}, datetime.now(timezone.utc)))[0].entry(BUS)
        start = time.perf_counter()
        s3.put_object(Bucket=BUCKET, Key=f"direct/{payload['id']}.json", Body=body, ServerSideEncryption="AES256")
        now = time.time()
        ddb.put_item(TableName=TABLE, Item={"id": {"S": f"direct#{payload['id']}"}, "status": {"S": "INPROGRESS"},
                                            "expiration": {"N": str(int(now) + 3600)},
                                            "in_progress_expiration": {"N": str(int(now * 1000) + 10_000)}},
                     ConditionExpression=CLAIM_CONDITION, ExpressionAttributeNames=CLAIM_NAMES,
                     ExpressionAttributeValues={":now": {"N": str(int(now))}, ":now_in_millis": {"N": str(int(now * 1000))},
                                                ":inprogress": {"S": "INPROGRESS"}})
        events.put_events(Entries=[entry])
        if complete:  # the claim's completion record, which a retry's 200 "duplicate" is read from
            ddb.put_item(TableName=TABLE, Item={"id": {"S": f"direct#{payload['id']}"}, "status": {"S": "COMPLETED"},
                                                "expiration": {"N": str(int(now) + 3600)}, "data": {"S": body[:200].decode()}})
        return time.perf_counter() - start

    for _ in range(20):  # warm both paths: clients, caches, imports
        handler_once(), direct_once()
    handler, direct, direct4 = [], [], []
    for _ in range(args.requests):  # interleaved, so noise hits all alike
        handler.append(handler_once())
        direct.append(direct_once())
        direct4.append(direct_once(complete=True))
    emulator.stop()
    h, d = statistics.median(handler), statistics.median(direct)
    result = {"requests": args.requests, "handler_p50_ms": round(h * 1000, 2), "direct_calls_p50_ms": round(d * 1000, 2),
              "ratio": round(h / d, 2), "handler_p99_ms": round(sorted(handler)[int(len(handler) * 0.99) - 1] * 1000, 2),
              "goal": 1.2, "direct_with_completion_p50_ms": round(statistics.median(direct4) * 1000, 2),
              "ratio_with_completion": round(h / statistics.median(direct4), 2)}
    result["goal_met"] = result["ratio"] <= 1.2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.requests} signed Stripe webhooks, each a new delivery, against one in-process emulator")
    print(f"handler p50 {result['handler_p50_ms']} ms (p99 {result['handler_p99_ms']} ms); "
          f"S3 put + conditional put + PutEvents p50 {result['direct_calls_p50_ms']} ms")
    print(f"ratio {result['ratio']} (goal <= 1.2): {'met' if result['goal_met'] else 'MISSED'}")
    print(f"with the fourth call the handler must make (the claim's completion, p50 "
          f"{result['direct_with_completion_p50_ms']} ms for all four): ratio {result['ratio_with_completion']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Webhook ingress overhead: the handler's latency divided by the cost of the AWS calls it cannot
avoid (S3 put of the raw body, a conditional put to claim the delivery, PutEvents), made
directly against the same emulator in the same run, on the same critical path as the handler:
the S3 put and the claim side by side (the handler runs them concurrently), then PutEvents.
Goal: <= 1.2.

The emulator is the local stack's, in both its configurations (moto in one child process, the
default; S3 and DynamoDB in processes of their own, where the handler's raw-body put and claim are
answered side by side), reached both ways the stack's code reaches it: over its HTTP port with
SigV4 and urllib3, as any SDK client reaches AWS, and through the in-process transport the
stack's functions use, where an AWS call costs half as much and fixed costs weigh more.

"Latency" is the partner's: until the answer. The fourth call the function makes, the claim's
completion record (what a retry's 200 "duplicate" answer is read from), is written after the
answer (mangaassist.after_response); the whole invocation, answer plus completion, is also shown
against all four calls made directly, which isolates the handler's own overhead.

A run that cannot measure (an answer other than 202, an emulator that does not start) says so
and exits 2; a missed goal exits 1.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "layers" / "shared" / "python"), str(ROOT / "scripts")]

BUS, BUCKET, TABLE = "bench-bus", "bench-raw-payloads", "bench-idempotency"
# The conditional put is the claim the handler makes (Powertools' condition: a new key, an expired
# record, or an in-progress claim whose holder timed out), so both sides make the same call.
CLAIM_CONDITION = ("attribute_not_exists(#id) OR #expiry < :now OR (#status = :inprogress AND "
                   "attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis)")
CLAIM_NAMES = {"#id": "id", "#expiry": "expiration", "#in_progress_expiry": "in_progress_expiration",
               "#status": "status"}
SECRET = "whsec_bench_secret"
GOAL = 1.2
CANNOT_MEASURE = 2


class Context:
    function_name = "bench-webhook_ingress"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def measure(requests: int) -> dict:
    """Handler and direct calls, interleaved so noise hits all alike, with clients made now (they
    reach the emulator the way the process is set up to at this moment)."""
    import boto3
    from mangaassist_dev.signing import sign_stripe

    from mangaassist import after_response, clients
    from mangaassist.settings import Webhooks
    from mangaassist.webhooks.ingest import Ingress
    from mangaassist.webhooks.mapping import Delivery, map_stripe
    from mangaassist.webhooks.sources import Keys, load_sources

    # boto3's default session keeps the handlers it was made with (the in-process transport among
    # them), and the layer keeps one client per service: both are made again, as every other client is.
    boto3.DEFAULT_SESSION = None
    clients.reset()
    s3, ddb, events = boto3.client("s3"), boto3.client("dynamodb"), boto3.client("events")
    sources = load_sources(json.dumps(json.loads((ROOT / "terraform" / "wiring.json").read_text())["sources"]))
    config = Webhooks(sources_json="{}", secret_prefix="bench/webhooks/", max_body_bytes=1024 * 1024,
                      raw_payloads_bucket=BUCKET, idempotency_table=TABLE)
    ingress = Ingress(sources, config, keys=lambda _s: Keys((SECRET,)))
    template = json.loads((ROOT / "tests" / "events" / "stripe.checkout.session.completed.json").read_text())
    url_event = json.loads((ROOT / "tests" / "events" / "lambdaFunctionUrlEvent.json").read_text())
    side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="direct-raw-body")  # as the handler's own pool

    def webhook() -> tuple[bytes, dict]:
        body = json.dumps({**template, "id": f"evt_{uuid.uuid4().hex}"}).encode()
        event = json.loads(json.dumps(url_event))
        event["headers"].update({k.lower(): v for k, v in sign_stripe(SECRET, body).items()})
        event["body"] = body.decode()
        return body, event

    # As functions/webhook_ingress wraps it; the host here does what the Lambda runtime and the
    # extension do (and the local stack's gateway): the answer first, then the deferred completion.
    handler = after_response.handler(ingress.handle)

    def handler_once() -> tuple[float, float]:
        _, event = webhook()
        later = after_response.Later()
        start = time.perf_counter()
        with later:
            response = handler(event, Context())
        answered = time.perf_counter() - start
        later.run()
        ended = time.perf_counter() - start
        if response["statusCode"] != 202 or later.tasks:
            raise RuntimeError(f"the handler answered {response['statusCode']}: {response['body']}")
        return answered, ended

    def claim(delivery_id: str, now: float) -> None:
        ddb.put_item(TableName=TABLE, Item={"id": {"S": f"direct#{delivery_id}"}, "status": {"S": "INPROGRESS"},
                                            "expiration": {"N": str(int(now) + 3600)},
                                            "in_progress_expiration": {"N": str(int(now * 1000) + 10_000)}},
                     ConditionExpression=CLAIM_CONDITION, ExpressionAttributeNames=CLAIM_NAMES,
                     ExpressionAttributeValues={":now": {"N": str(int(now))}, ":inprogress": {"S": "INPROGRESS"},
                                                ":now_in_millis": {"N": str(int(now * 1000))}})

    def direct_once(complete: bool = False) -> float:
        """The handler's critical path, made directly: the raw body's put on another thread and the
        claim on this one, side by side; PutEvents once both are done; then, for the whole
        invocation, the claim's completion record."""
        body, _ = webhook()
        payload = json.loads(body)
        entry = map_stripe(payload, Delivery("stripe", payload["id"], {}, datetime.now(UTC)))[0].entry(BUS)
        start = time.perf_counter()
        stored = side.submit(s3.put_object, Bucket=BUCKET, Key=f"direct/{payload['id']}.json", Body=body,
                             ServerSideEncryption="AES256")
        now = time.time()
        claim(payload["id"], now)
        stored.result()
        events.put_events(Entries=[entry])
        if complete:  # the claim's completion record, which a retry's 200 "duplicate" is read from
            ddb.put_item(TableName=TABLE, Item={"id": {"S": f"direct#{payload['id']}"}, "status": {"S": "COMPLETED"},
                                                "expiration": {"N": str(int(now) + 3600)},
                                                "data": {"S": body[:200].decode()}})
        return time.perf_counter() - start

    try:
        for _ in range(20):  # warm both paths: clients, caches, imports
            handler_once(), direct_once()
        answers, invocations, direct, direct4 = [], [], [], []
        for _ in range(requests):
            answered, ended = handler_once()
            answers.append(answered)
            invocations.append(ended)
            direct.append(direct_once())
            direct4.append(direct_once(complete=True))
    finally:
        side.shutdown()
    h, i = statistics.median(answers), statistics.median(invocations)
    d, d4 = statistics.median(direct), statistics.median(direct4)
    p99 = sorted(answers)[int(len(answers) * 0.99) - 1]
    return {"handler_p50_ms": round(h * 1000, 2), "handler_p99_ms": round(p99 * 1000, 2),
            "direct_calls_p50_ms": round(d * 1000, 2), "ratio": round(h / d, 2), "goal_met": h / d <= GOAL,
            "invocation_p50_ms": round(i * 1000, 2), "direct_with_completion_p50_ms": round(d4 * 1000, 2),
            "invocation_ratio": round(i / d4, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from embedded.emulator_process import PER_SERVICE, EmulatorProcess

    result: dict = {"requests": args.requests, "goal": GOAL}
    for config, shards in (("one_process", ()), ("per_service", PER_SERVICE)):
        try:
            emulator = EmulatorProcess(BUS, lambda events: None, shards=shards).start()
        except Exception as exc:
            print(f"bench_ingress: CANNOT MEASURE: the emulator ({config}) did not start: {exc}", file=sys.stderr)
            return CANNOT_MEASURE
        os.environ.update(AWS_ENDPOINT_URL=emulator.endpoint_url, AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="ap-northeast-1",
                          AWS_REGION="ap-northeast-1", EVENT_BUS_NAME=BUS, POWERTOOLS_LOG_LEVEL="ERROR",
                          # as the local stack runs functions (on Lambda, EMF lines go to stdout)
                          POWERTOOLS_METRICS_NAMESPACE="MangaAssist", POWERTOOLS_METRICS_DISABLED="true")
        import boto3

        try:
            boto3.DEFAULT_SESSION = None
            boto3.client("s3").create_bucket(Bucket=BUCKET,
                                             CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
            boto3.client("dynamodb").create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                                                  KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                                                  AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
            boto3.client("events").create_event_bus(Name=BUS)
            in_process = measure(args.requests)
            emulator.stop_in_process()  # clients made from here on go over the port
            result[config] = {"in_process": in_process, "over_port": measure(args.requests)}
        except Exception as exc:
            print(f"bench_ingress: CANNOT MEASURE ({config}): {type(exc).__name__}: {exc}", file=sys.stderr)
            return CANNOT_MEASURE
        finally:
            emulator.stop()
    met = all(result[config][way]["goal_met"] for config in ("one_process", "per_service")
              for way in ("in_process", "over_port"))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if met else 1
    print(f"{args.requests} signed Stripe webhooks, each a new delivery, against the local stack's emulator")
    for config, label in (("one_process", "moto in one process (make run's default)"),
                          ("per_service", "S3 and DynamoDB in processes of their own (EMULATOR_SHARDS=s3,dynamodb)")):
        print(label)
        for way, how in (("over_port", "over its HTTP port"), ("in_process", "in-process transport")):
            r = result[config][way]
            print(f"  {how}: answer p50 {r['handler_p50_ms']} ms (p99 {r['handler_p99_ms']} ms); "
                  f"S3 put + conditional put + PutEvents p50 {r['direct_calls_p50_ms']} ms; "
                  f"ratio {r['ratio']} (goal <= {GOAL}): {'met' if r['goal_met'] else 'MISSED'}; "
                  f"whole invocation with the completion after the answer {r['invocation_p50_ms']} ms "
                  f"against all four calls {r['direct_with_completion_p50_ms']} ms: {r['invocation_ratio']}")
    print("(the direct calls: the S3 put and the claim side by side, then PutEvents, as the handler makes them)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

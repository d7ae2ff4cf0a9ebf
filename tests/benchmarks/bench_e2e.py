#!/usr/bin/env python3
"""End to end on the local stack: signed webhooks over HTTP, accepted and delivered.

Starts `scripts/local_stack.py` on a free port, sends signed webhooks from concurrent clients
for --seconds, then waits for every accepted event to be delivered to every target its rules
name, and reports accepted/s, HTTP latency p50/p99, end-to-end delivery latency, and losses.
Goal: >= 100/s accepted and delivered, p99 <= 250 ms, zero lost. Also checked: the queue target's
function kept up (the analytics sink holds a line for every accepted event).

Which targets an event must reach comes from terraform/wiring.json, through the routing code
(mangaassist_dev.routing): each accepted webhook's payload is mapped to its events here as the
ingress maps it (one id per event in the answer, in order), and each event is matched against every
rule. An event is delivered when every one of those rule targets has it, and no other target does.

A run that cannot measure (the stack does not start, no webhook is accepted) says so and exits 2;
a missed goal exits 1.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "layers" / "shared" / "python"), str(ROOT / "scripts"), str(ROOT / "tests")]

from e2e.conftest import start_stack, stop_stack  # noqa: E402
from mangaassist_dev.routing import load_wiring  # noqa: E402
from mangaassist_dev.signing import sign  # noqa: E402

CANNOT_MEASURE = 2

BODIES = {
    "github": ROOT / "tests" / "events" / "github.push.json",
    "reviews": ROOT / "tests" / "events" / "reviews.submitted.json",
    "stripe": ROOT / "tests" / "events" / "stripe.checkout.session.completed.json",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=3,
                        help="seconds of webhooks before the clock starts (cold starts; their events are still "
                             "counted for losses)")
    parser.add_argument("--source", choices=sorted(BODIES), default="github")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data:
        try:
            stack = start_stack(Path(data), {"POWERTOOLS_LOG_LEVEL": "ERROR"})
        except Exception as exc:
            print(f"bench_e2e: CANNOT MEASURE: the local stack did not start: {exc}", file=sys.stderr)
            return CANNOT_MEASURE
        try:
            result = run(stack, args)
        finally:
            stop_stack(stack)
    if not result["accepted"]:
        print(f"bench_e2e: CANNOT MEASURE: no webhook was accepted ({result['rejected']} rejected)", file=sys.stderr)
        return CANNOT_MEASURE
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"cold start: first webhook answered in {result['cold_ms']} ms; {result['warmup_accepted']} more in "
              f"{args.warmup} s of warm-up")
        print(f"{result['accepted']} {args.source} webhooks accepted in {result['seconds']} s by {args.clients} "
              f"clients: {result['accepted_per_s']}/s (goal >= 100/s)")
        print(f"HTTP latency p50 {result['http_p50_ms']} ms, p90 {result['http_p90_ms']} ms, "
              f"p99 {result['http_p99_ms']} ms (goal p99 <= 250 ms), max {result['http_max_ms']} ms")
        print(f"delivery latency p50 {result['delivery_p50_ms']} ms, p99 {result['delivery_p99_ms']} ms; "
              f"{result['deliveries']} deliveries, lost {result['lost']}, misrouted {result['misrouted']}, "
              f"rejected {result['rejected']}")
        print(f"expected targets per event, from wiring.json: {result['expected_targets']}")
        print(f"analytics sink: {result['analytics_stored']} of {result['events']} events stored, "
              f"{result['analytics_drained_after_s']} s after the last delivery")
        print("goal " + ("met" if result["goal_met"] else "MISSED"))
    return 0 if result["goal_met"] else 1


def expected_targets(source: str, payload: dict, headers: dict, event_ids: list[str], wiring) -> dict:
    """{event id: {(rule, target)}}: the webhook's events as the ingress maps them (in the answer's
    order), each matched against every rule of wiring.json."""
    from mangaassist.webhooks.mapping import MAPPERS, Delivery
    from mangaassist.webhooks.sources import load_sources

    spec = load_sources(json.dumps({source: wiring.sources[source]}))[source]
    lowered = {k.lower(): v for k, v in headers.items()}
    events = MAPPERS[spec.mapper](payload, Delivery(source, "bench", lowered, datetime.now(UTC)))
    if len(events) != len(event_ids):
        raise RuntimeError(f"the ingress answered {len(event_ids)} event ids for {len(events)} mapped events")
    out = {}
    for event, event_id in zip(events, event_ids):
        envelope = {"version": "0", "id": event_id, "detail-type": event.detail_type, "source": event.source,
                    "account": "123456789012", "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": "ap-northeast-1", "resources": list(event.resources), "detail": event.detail}
        out[event_id] = {(rule.name, target.resource) for rule in wiring.matching_rules(envelope)
                         for target in rule.targets}
    return out


def run(stack, args) -> dict:
    spec = stack.info["sources"][args.source]
    template = json.loads(BODIES[args.source].read_text())
    url = f"{stack.base_url}/webhooks/{args.source}"
    accepted: list[str] = []
    latencies: list[float] = []
    sent: list[tuple[dict, dict, list[str]]] = []  # (payload, headers, event ids) of every accepted webhook
    rejected = [0]
    lock = threading.Lock()
    wiring = load_wiring()

    def send_one() -> None:
        payload = dict(template)
        if args.source == "stripe":
            payload["id"] = f"evt_{uuid.uuid4().hex}"
        elif args.source == "reviews":
            payload["review_id"] = f"rev_{uuid.uuid4().hex}"
        else:  # each push is another commit: GitHub deliveries are claimed by their signed body
            payload["after"] = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json", **sign(spec["scheme"], spec["secrets"], body)}
        if args.source == "github":  # sign() names a ping; this body is a push, and the ingress checks the name
            headers["X-GitHub-Event"] = "push"
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
                ok = response.status == 202
        except Exception:
            ok = False
        elapsed = time.perf_counter() - start
        with lock:
            if ok:
                accepted.extend(answer["events"])
                latencies.append(elapsed)
                sent.append((payload, headers, answer["events"]))
            else:
                rejected[0] += 1

    def client(deadline: float) -> None:
        while time.monotonic() < deadline:
            send_one()

    def clients(seconds: float) -> float:
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(started + seconds,)) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    send_one()  # one webhook alone: the cold start
    cold_ms = round(latencies[0] * 1000, 1) if latencies else None
    clients(args.warmup)
    warm_events, warm_count = list(accepted), len(latencies)
    accepted.clear(), latencies.clear()
    elapsed = clients(args.seconds)
    measured = len(latencies)
    accepted[:0] = warm_events  # every accepted event must be delivered, warm-up ones too

    # Every accepted event must reach every target of every rule it matches (wiring.json), and no
    # other target: wait, then count.
    expected: dict[str, set] = {}
    for payload, headers, event_ids in sent:
        expected.update(expected_targets(args.source, payload, headers, event_ids, wiring))
    records, reached, done = wait_for_deliveries(stack, accepted, expected)
    misrouted = sum(1 for e in accepted if set(reached.get(e, {})) - expected[e])
    delivery_ms = [r["latency_ms"] for r in records if r.get("status") == "delivered" and r["event_id"] in expected]
    stored, drained_s = analytics_objects(stack, set(accepted))
    result = {
        "source": args.source,
        "seconds": round(elapsed, 1),
        "cold_ms": cold_ms,
        "warmup_accepted": warm_count - 1,
        "accepted": measured,
        "accepted_per_s": round(measured / elapsed, 1),
        "rejected": rejected[0],
        "http_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "http_p90_ms": round(percentile(latencies, 0.90) * 1000, 1) if latencies else None,
        "http_p99_ms": round(percentile(latencies, 0.99) * 1000, 1) if latencies else None,
        "http_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "delivery_p50_ms": round(statistics.median(delivery_ms), 1) if delivery_ms else None,
        "delivery_p99_ms": round(percentile(delivery_ms, 0.99), 1) if delivery_ms else None,
        "deliveries": len(delivery_ms),
        "lost": len(accepted) - len(done),
        "misrouted": misrouted,
        "expected_targets": sorted({f"{r}/{t}" for targets in expected.values() for r, t in targets}),
        "events": len(accepted),
        "analytics_stored": stored,
        "analytics_drained_after_s": drained_s,
    }
    result["goal_met"] = (result["accepted_per_s"] >= 100 and (result["http_p99_ms"] or 1e9) <= 250
                          and result["lost"] == 0 and result["misrouted"] == 0 and result["rejected"] == 0
                          and stored == len(accepted))
    return result


def wait_for_deliveries(stack, accepted: list[str], expected: dict[str, set], timeout: float = 120):
    """(the delivery records, {event: {(rule, target): status}}, the events delivered to exactly their
    expected targets), once every accepted event is, or after ``timeout``."""
    wait_until = time.monotonic() + timeout
    while True:
        records = stack.deliveries()
        reached: dict[str, dict] = {}
        for record in records:
            if record["event_id"] in expected:
                reached.setdefault(record["event_id"], {})[(record["rule"], record["target"])] = record["status"]
        done = [e for e in accepted if set(reached.get(e, {})) == expected[e]
                and all(status == "delivered" for status in reached[e].values())]
        if len(done) == len(accepted) or time.monotonic() > wait_until:
            return records, reached, done
        time.sleep(0.5)


def analytics_objects(stack, events: set[str], timeout: float = 120) -> tuple[int, float | None]:
    """The queue target's own function must keep up too: wait until the analytics sink holds a
    line for every accepted event (objects are JSON lines, one per partition per batch), and say
    how long after the run."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=stack.info["aws_endpoint_url"], region_name=stack.info["region"],
                      aws_access_key_id="local", aws_secret_access_key="local")
    bucket, started = stack.info["names"]["buckets"]["analytics"], time.monotonic()
    seen: set[str] = set()
    read: set[str] = set()
    while True:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for key in {o["Key"] for o in page.get("Contents", [])} - read:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
                seen.update(json.loads(line)["id"] for line in body.splitlines())
                read.add(key)
        stored = len(events & seen)
        if stored == len(events) or time.monotonic() - started > timeout:
            return stored, round(time.monotonic() - started, 1) if stored == len(events) else None
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())

"""Nothing accepted is lost across a stop or a crash: SIGTERM drains and saves, a restart resumes
what did not finish, SIGKILL loses at most one snapshot interval of emulator writes (and no
accepted event), and damaged data files never stop a start."""
from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
from e2e.conftest import start_stack, stop_stack
from e2e.test_local_stack import EVENTS, post_webhook, resend_webhook, unique_stripe

pytestmark = pytest.mark.e2e


def aws(stack, service: str):
    return boto3.client(service, endpoint_url=stack.info["aws_endpoint_url"], region_name=stack.info["region"],
                        aws_access_key_id="local", aws_secret_access_key="local")


def catalog_body(ids: list[str]) -> bytes:
    payload = json.loads((EVENTS / "catalog.new_release.json").read_text())
    payload["batch_id"] = f"batch_{uuid.uuid4().hex[:10]}"
    for item, product_id in zip(payload["items"], ids):
        item["id"] = product_id
    return json.dumps(payload, ensure_ascii=False).encode()


def printed(stack, pattern: str) -> re.Match | None:
    return next((m for m in (re.search(pattern, line) for line in stack.output) if m), None)


def delivered(stack, event_id: str, target: str) -> bool:
    return any(r["event_id"] == event_id and r["target"] == target and r["status"] == "delivered"
               for r in stack.deliveries())


def test_sigterm_drains_saves_and_the_next_start_finishes_every_accepted_delivery(tmp_path):
    data = tmp_path / "data"
    # 1. A paid order, a dead letter and a product; then a clean stop.
    first = start_stack(data)
    try:
        paid = unique_stripe()
        status, _, paid_answer = post_webhook(first, "stripe", paid)
        assert status == 202
        assert first.json("POST", "/_local/faults", {"target": "order_confirmation", "fail_next": 1000})[0] == 200
        status, _, failed = post_webhook(first, "stripe", unique_stripe())
        (dead_event,) = failed["events"]
        first.wait_for(lambda rs: any(r["event_id"] == dead_event and r["status"] == "dead_lettered" for r in rs),
                       timeout=90, what="the dead letter")
        first.json("POST", "/_local/faults", {"target": "order_confirmation", "fail_next": 0})
        product = f"bk-{uuid.uuid4().hex[:8]}"
        assert post_webhook(first, "catalog", catalog_body([product, f"{product}-b"]))[0] == 202
        first.wait_for(lambda rs: all(delivered(first, e, "order_confirmation") for e in paid_answer["events"]),
                       what="the paid order")
    finally:
        assert stop_stack(first) == 0
    assert printed(first, r"stopping: no new requests; draining \d+ deliveries")
    assert printed(first, r"saved emulator state")

    # 2. Everything is still there; then deliveries still retrying when SIGTERM comes.
    second = start_stack(data, {"DELIVERY_TIME_SCALE": "0.05", "DRAIN_SECONDS": "1"})
    try:
        assert printed(second, r"^restored emulator state of") and printed(second, r"^resumed 0 deliveries")
        assert resend_webhook(second, "stripe", paid)[0] == 200, "the idempotency record survived"
        dlq = second.info["dlqs"][next(k for k in second.info["dlqs"] if k.startswith("payment-completed/"))]["url"]
        letters = aws(second, "sqs").receive_message(QueueUrl=dlq, VisibilityTimeout=0, MaxNumberOfMessages=10)
        assert dead_event in {json.loads(m["Body"])["id"] for m in letters.get("Messages", [])}
        products = second.info["names"]["tables"]["products"]
        assert aws(second, "dynamodb").get_item(TableName=products, Key={"product_id": {"S": product}}).get("Item")
        second.json("POST", "/_local/faults", {"target": "catalog_indexer", "fail_next": 100000})
        accepted, new_products = [], []
        for _ in range(5):
            ids = [f"bk-{uuid.uuid4().hex[:8]}" for _ in range(2)]
            status, _, answer = post_webhook(second, "catalog", catalog_body(ids))
            assert status == 202
            accepted += answer["events"]
            new_products += ids
        second.wait_for(lambda rs: sum(r["event_id"] in accepted and r["status"] == "retrying" for r in rs) >= 5,
                        what="deliveries retrying")
    finally:
        assert stop_stack(second) == 0
    left = printed(second, r"(\d+) deliveries left for the next start")
    assert left and int(left.group(1)) >= 5, "".join(second.output[-10:])

    # 3. The next start delivers them: every accepted event reaches every target.
    third = start_stack(data)
    try:
        resumed = printed(third, r"^resumed (\d+) deliveries")
        assert resumed and int(resumed.group(1)) >= int(left.group(1))
        third.wait_for(lambda rs: all(delivered(third, e, "catalog_indexer") and delivered(third, e, "analytics")
                                      for e in accepted), timeout=90, what="the resumed deliveries")
        ddb = aws(third, "dynamodb")
        for product_id in new_products:
            assert ddb.get_item(TableName=products, Key={"product_id": {"S": product_id}}).get("Item"), product_id
        code, result = third.ops("redrive", "--rule", "payment-completed", "--target", "order_confirmation")
        assert code == 0 and result["redriven"] >= 1, result
    finally:
        assert stop_stack(third) == 0


def test_sigkill_loses_no_accepted_event_and_at_most_a_snapshot_interval_of_emulator_writes(tmp_path):
    data = tmp_path / "data"
    stack = start_stack(data, new_session=True)  # a process group of its own: killed whole, emulator included
    s3, bucket = aws(stack, "s3"), stack.info["names"]["buckets"]["analytics"]
    accepted: list[str] = []
    markers: list[float] = []
    stop = threading.Event()

    def partner() -> None:
        while not stop.is_set():
            try:
                status, _, answer = post_webhook(stack, "github", (EVENTS / "github.push.json").read_bytes())
            except Exception:
                return  # the stack is gone
            if status == 202:
                accepted.extend(answer["events"])

    def writer() -> None:  # an emulator write every 50 ms, named by when it was acknowledged
        while not stop.is_set():
            try:
                s3.put_object(Bucket=bucket, Key=f"markers/{time.time():.3f}", Body=b"x")
            except Exception:
                return
            markers.append(time.time())
            time.sleep(0.05)

    threads = [threading.Thread(target=partner) for _ in range(2)] + [threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    time.sleep(12)
    os.killpg(stack.process.pid, signal.SIGKILL)
    killed_at = time.time()
    stop.set()
    for thread in threads:
        thread.join(30)
    stack.process.wait(10)
    assert accepted and markers
    assert not list(Path(tempfile.gettempdir()).glob(f"mangaassist-emulator-{stack.info['pid']}-*"))

    again = start_stack(data)
    try:
        resumed = printed(again, r"^resumed (\d+) deliveries")
        assert resumed, "".join(again.output)
        again.wait_for(lambda rs: (lambda done: all(e in done for e in accepted))(
            {r["event_id"] for r in rs if r["target"] == "analytics" and r["status"] == "delivered"}),
            timeout=120, what="every accepted event delivered")
        kept = [float(o["Key"].split("/", 1)[1]) for page in aws(again, "s3").get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="markers/") for o in page.get("Contents", [])]
    finally:
        assert stop_stack(again) == 0
    assert kept, "no acknowledged write survived: " + "".join(line for line in again.output if line[:1] != " ")
    window = killed_at - max(kept)
    acknowledged_after = sum(1 for m in markers if m > max(kept) + 0.001)
    print(f"\nSIGKILL: {len(accepted)} accepted events, 0 lost, {resumed.group(1)} deliveries resumed; "
          f"emulator writes lost: the last {window:.1f} s ({acknowledged_after} of {len(markers)} acknowledged writes)")
    assert window <= 5 + 5, f"{window:.1f} s of writes lost: more than one snapshot interval (5 s) and its writing"


def test_damaged_data_files_are_skipped_said_and_the_stack_serves(tmp_path):
    data = tmp_path / "damaged"
    started = time.monotonic()
    fresh = start_stack(data)  # a fresh data folder starts in seconds
    fresh_seconds = time.monotonic() - started
    try:
        assert post_webhook(fresh, "stripe", unique_stripe())[0] == 202
        fresh.wait_for(lambda rs: len(rs) >= 1)
    finally:
        assert stop_stack(fresh) == 0
    assert fresh_seconds < 45, f"a fresh data folder took {fresh_seconds:.1f} s to start"

    with open(data / "archive.jsonl", "a") as archive:
        archive.write('{"archived_at": 1, "event": {"id": "torn", "ti')  # a torn last line
    with open(data / "journal.jsonl", "a") as journal:
        journal.write("garbage\n")
    credentials = json.loads((data / "dev-credentials.json").read_text())
    credentials["sources"]["stripe"]["secrets"] = []
    (data / "dev-credentials.json").write_text(json.dumps(credentials))
    (data / "emulator" / "main.pickle").write_bytes(b"\x80\x05garbage")
    (data / "vectors").mkdir(exist_ok=True)
    (data / "vectors" / "products.sqlite3").write_bytes(b"garbage" * 1000)

    stack = start_stack(data)
    try:
        said = "".join(stack.output)
        assert "archive.jsonl: skipped 1 damaged line(s)" in said
        assert "journal.jsonl: skipped 1 damaged line(s)" in said
        assert "source 'stripe' had no usable stripe secret; made a new one" in said
        assert "main.pickle" in said and "moved to main.damaged" in said
        assert "vectors/products.sqlite3: damaged" in said
        assert stack.json("GET", "/health")[0] == 200
        assert stack.info["sources"]["stripe"]["secrets"], "a new secret, in stack.json"
        assert post_webhook(stack, "stripe", unique_stripe())[0] == 202  # signed with it, verified with it
        headers = {"x-api-key": stack.info["api_key"]}
        assert stack.json("GET", "/v1/search?q=x", headers=headers)[0] == 200
    finally:
        assert stop_stack(stack) == 0

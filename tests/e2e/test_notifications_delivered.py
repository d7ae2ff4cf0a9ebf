"""Outbound notifications end to end: a local stack (Svix's schedule shrunk ten-thousandfold, a 1 s
attempt timeout, no subscription cache) delivering to real receivers on 127.0.0.1, verified as a
partner would, with the official standardwebhooks and svix libraries.

Subscriptions are made as ops.py makes them (mangaassist_dev.product_ops against the emulator);
each test's pattern names its own events (a ``resources`` entry, or the partner's event id) so
the tests do not see each other's deliveries."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import boto3
import pytest
import standardwebhooks
import svix.webhooks
from e2e.conftest import start_stack, stop_stack, wait_until
from e2e.test_local_stack import post_webhook, unique_stripe
from mangaassist_dev import product_ops
from receivers import Receiver, make_dev_ca

from mangaassist.notifications.dispatch import SCHEDULE, message_id

pytestmark = pytest.mark.e2e
SAMPLE = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "schemas"
        / "events"
        / "mangaassist.ai"
        / "OrderConfirmationGenerated.samples.json"
    ).read_text()
)["valid"][0]


class Where:
    """What ops.py's Local gives product_ops: the stack's emulator and names."""

    local = True

    def __init__(self, info: dict):
        self.info, self.names = info, info["names"]
        self.session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=info["region"]
        )

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.info["aws_endpoint_url"])

    def client_resource(self, service: str):
        return self.session.resource(service, endpoint_url=self.info["aws_endpoint_url"])


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_dev_ca(tmp_path_factory.mktemp("dev-ca"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory, tls):
    client = start_stack(
        tmp_path_factory.mktemp("notify-stack"),
        {
            "DELIVERY_TIME_SCALE": "0.0001",  # 5 s, 5 min, ... 10 h: 0.5 ms ... 3.6 s, about 10 s in all
            "NOTIFY_TIMEOUT_SECONDS": "1",
            "NOTIFY_CACHE_SECONDS": "0",
            "NOTIFY_CA_FILE": str(tls["ca"]),
        },
    )
    yield client
    assert stop_stack(client) == 0


@pytest.fixture(scope="module")
def where(stack):
    return Where(stack.info)


@pytest.fixture(scope="module")
def subs(where):
    return product_ops.subscriptions(where)


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(answers=None, **kw) -> Receiver:
        made.append(Receiver(answers, **kw))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def tagged() -> tuple[str, dict]:
    """A resource naming one test's events, and the pattern choosing only them."""
    tag = f"arn:aws:mangaassist:ap-northeast-1:123456789012:e2e/{uuid.uuid4().hex}"
    return tag, {"source": ["mangaassist.ai"], "resources": [tag]}


def put_event(where, tag: str) -> str:
    """An OrderConfirmationGenerated on the stack's bus, as the order_confirmation function publishes it."""
    answer = where.client("events").put_events(
        Entries=[
            {
                "Source": SAMPLE["source"],
                "DetailType": SAMPLE["detail-type"],
                "Detail": json.dumps(SAMPLE["detail"]),
                "Resources": [tag],
                "EventBusName": where.info["bus"],
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0, answer
    return answer["Entries"][0]["EventId"]


def verify(request: dict, secret: str) -> dict:
    """What a partner does with each delivery: both official libraries, the payload they return."""
    svix.webhooks.Webhook(secret).verify(request["body"], request["headers"])  # raises when it does not verify
    return standardwebhooks.Webhook(secret).verify(request["body"].decode(), request["headers"])


# --- the seeded subscription ------------------------------------------------------------------
def test_the_stack_seeds_a_disabled_subscription_to_a_local_receiver(stack, subs):
    seeded = stack.info["notifications"]["seeded"]
    assert seeded["url"] == "http://127.0.0.1:9000/webhooks" and seeded["enabled"] is False
    assert json.loads(seeded["event_pattern"]) == {"source": [{"prefix": "mangaassist."}]}
    item = subs.get(seeded["subscription_id"])
    assert item["enabled"] is False and subs.active_secrets(item["subscription_id"]) == seeded["secrets"]
    assert any("listen --port 9000" in line for line in stack.output)


# --- (a) a delivery both official libraries verify ------------------------------------------------
def test_a_partners_payment_reaches_a_subscriber_signed_as_both_official_libraries_verify(stack, subs, receivers):
    body = unique_stripe()
    provider_event_id = json.loads(body)["id"]
    receiver = receivers()
    item, secret = subs.add(
        receiver.url,
        {
            "source": ["mangaassist.payments"],
            "detail-type": ["PaymentCompleted"],
            "detail": {"provider_event_id": [provider_event_id]},
        },
    )
    status, _, _ = post_webhook(stack, "stripe", body)
    assert status == 202
    (request,) = receiver.wait_for(1)
    payload = verify(request, secret)
    assert payload["detail-type"] == "PaymentCompleted" and payload["detail"]["provider_event_id"] == provider_event_id
    assert request["headers"]["webhook-id"] == message_id(payload["id"], item["subscription_id"])
    assert abs(int(request["headers"]["webhook-timestamp"]) - time.time()) < 60


# --- (b) a rotation: two signatures, either secret verifies -----------------------------------------
def test_during_a_rotation_deliveries_carry_two_signatures_and_verify_with_either_secret(where, subs, receivers):
    receiver = receivers()
    tag, pattern = tagged()
    item, old = subs.add(receiver.url, pattern)
    new = subs.rotate(item["subscription_id"])  # the old one stays valid for 24 h
    put_event(where, tag)
    (request,) = receiver.wait_for(1)
    signatures = request["headers"]["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert verify(request, old) == verify(request, new)
    subs.rotate(item["subscription_id"], expire_old_in=0)  # --expire-old: only the newest signs
    newest = subs.active_secrets(item["subscription_id"])[0]
    put_event(where, tag)
    later = receiver.wait_for(2)[1]
    assert len(later["headers"]["webhook-signature"].split(" ")) == 1
    verify(later, newest)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(old).verify(later["body"].decode(), later["headers"])


# --- (c) three failures, then one acceptance under one webhook-id ---------------------------------
def test_a_receiver_failing_three_times_then_succeeding_gets_the_event_once_under_one_webhook_id(
    where, subs, receivers
):
    receiver = receivers([500, 503, 429, 200])
    tag, pattern = tagged()
    item, secret = subs.add(receiver.url, pattern)
    event_id = put_event(where, tag)
    requests = receiver.wait_for(4)
    assert {r["headers"]["webhook-id"] for r in requests} == {message_id(event_id, item["subscription_id"])}
    for request in requests:
        verify(request, secret)
    with pytest.raises(AssertionError):
        receiver.wait_for(5, timeout=1.5)  # the 5 min retry, scaled, would be long past


# --- (d) always failing: the DLQ, then a redrive once the receiver recovers ------------------------
def test_a_receiver_always_failing_lands_in_the_dlq_and_a_redrive_delivers_once_it_recovers(
    stack, where, subs, receivers
):
    receiver = receivers([500] * len(SCHEDULE))
    tag, pattern = tagged()
    item, secret = subs.add(receiver.url, pattern)
    event_id = put_event(where, tag)
    sqs = where.client("sqs")
    dlq_name = where.names["queue_dlqs"]["notifications"]
    dlq = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]

    def dead_letter():
        for message in sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
        ).get("Messages", []):
            if json.loads(message["Body"]).get("subscription_id") == item["subscription_id"]:
                return message
        return None

    letter = wait_until(dead_letter, timeout=60, what="the dead letter")
    attributes = {name: value["StringValue"] for name, value in letter["MessageAttributes"].items()}
    assert attributes["SUBSCRIPTION_ID"] == item["subscription_id"]
    assert attributes["LAST_STATUS"] == "500" and attributes["ERROR_MESSAGE"].startswith("HTTP 500")
    assert attributes["ATTEMPTS"] == str(len(SCHEDULE)) and len(receiver.received()) == len(SCHEDULE)
    # The receiver recovers (its script is used up: 200 from now on); the operator redrives with ops.py,
    # first a dry run (it only counts), then for real: each dead letter back to the notifications queue.
    code, dry = stack.ops("redrive", "--dlq", dlq_name, "--dry-run")
    assert code == 0 and dry["dry_run"] and dry["would_redrive"] >= 1 and dry["redriven"] == 0, dry
    assert dead_letter() is not None and len(receiver.received()) == len(SCHEDULE)
    code, result = stack.ops("redrive", "--dlq", dlq_name)
    assert code == 0 and result["redriven"] >= 1 and result["failed"] == [], result
    assert (result["key"], result["source_queue"]) == ("notifications", where.names["queues"]["notifications"])
    requests = receiver.wait_for(len(SCHEDULE) + 1)
    assert {r["headers"]["webhook-id"] for r in requests} == {message_id(event_id, item["subscription_id"])}
    verify(requests[-1], secret)
    assert dead_letter() is None


# --- (e) 410 Gone disables the subscription, and an event says so -----------------------------------
def test_410_disables_the_subscription_and_a_subscription_disabled_event_says_so(where, subs, receivers):
    gone, watcher = receivers([410]), receivers()
    tag, pattern = tagged()
    item, _ = subs.add(gone.url, pattern)
    _, watcher_secret = subs.add(
        watcher.url,
        {
            "source": ["mangaassist.notifications"],
            "detail-type": ["SubscriptionDisabled"],
            "detail": {"subscription_id": [item["subscription_id"]]},
        },
    )
    put_event(where, tag)
    (said,) = watcher.wait_for(1)
    detail = verify(said, watcher_secret)["detail"]
    assert detail["reason"] == "gone" and detail["url"] == gone.url
    table = where.client_resource("dynamodb").Table(where.names["tables"]["subscriptions"])
    assert table.get_item(Key={"subscription_id": item["subscription_id"]})["Item"]["enabled"] is False
    put_event(where, tag)  # nothing more for a disabled subscription
    with pytest.raises(AssertionError):
        gone.wait_for(2, timeout=1.5)


# --- (g) slow, redirecting, huge or hanging receivers are failed attempts -------------------------
def test_slow_redirecting_huge_and_hanging_receivers_are_failed_attempts_and_hold_nobody_up(where, subs, receivers):
    bad = {
        "slow": receivers([{"status": 200, "delay": 3}]),  # past NOTIFY_TIMEOUT_SECONDS=1
        "redirect": receivers([302]),
        "10 MB": receivers([{"status": 200, "body": b"x" * 10_000_000}]),
        "hang-up": receivers([{"status": 200, "close": True}]),
    }
    healthy = receivers()
    tag, pattern = tagged()
    for receiver in (*bad.values(), healthy):
        subs.add(receiver.url, pattern)
    started = time.monotonic()
    put_event(where, tag)
    healthy.wait_for(1)
    assert time.monotonic() - started < 3, "the slow receiver does not hold the others' deliveries"
    for name, receiver in bad.items():
        first, second = receiver.wait_for(2, timeout=20)[:2]  # retried: the first was a failed attempt
        assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"], name
        assert first["path"] == second["path"] == "/hooks", f"{name}: a redirect is never followed"
    with pytest.raises(AssertionError):  # each second attempt was answered 200: no third
        bad["redirect"].wait_for(3, timeout=1)


# --- (h) a /v1/generate job's callback, signed with the key's callback secret ------------------------
def test_a_generate_jobs_callback_arrives_signed_with_the_api_keys_callback_secret(stack, subs, receivers, tls):
    receiver = receivers(tls=tls, path="/callbacks/mangaassist")  # https on 127.0.0.1, the test CA
    client_id = next(key_id for key_id, key in stack.info["api_keys"].items() if key == stack.info["api_key"])
    _, secret = subs.set_callbacks(client_id, ["127.0.0.1"])  # returned once, as ops.py prints it
    status, _, job = stack.json(
        "POST",
        "/v1/generate",
        {"task": "product_description", "input": {"product_id": "bk-frieren-14"}, "callback_url": receiver.url},
        {"x-api-key": stack.info["api_key"], "content-type": "application/json", "idempotency-key": uuid.uuid4().hex},
    )
    assert status == 202, job
    (request,) = receiver.wait_for(1, timeout=60)
    payload = verify(request, secret)
    assert payload["detail-type"] == "JobCompleted" and payload["detail"]["job_id"] == job["job_id"]
    # The fresh stack's catalog is empty: the job fails, and a failed job is called back too.
    assert payload["detail"]["status"] in ("succeeded", "failed") and payload["detail"]["client_id"] == client_id
    assert request["headers"]["webhook-id"] == message_id(payload["id"], f"callback:{client_id}")

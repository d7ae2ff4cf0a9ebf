"""Outbound notifications against real receivers on 127.0.0.1: signatures the official libraries
verify, Svix's retries with a stable webhook-id, 410, the DLQ and its redrive, SSRF refusals, and
subscriptions refused when they are saved."""
from __future__ import annotations

import base64
import json
import time

import boto3
import pytest
import standardwebhooks
import svix.webhooks
from receivers import Receiver

from mangaassist.notifications import egress, signing
from mangaassist.notifications.dispatch import SCHEDULE, Dispatcher, message_id
from mangaassist.notifications.subscriptions import SubscriptionRefused, Subscriptions, validate_template

EVENT = {"version": "0", "id": "9f1c2a7b-0000-4000-8000-000000000001", "detail-type": "OrderConfirmationGenerated",
         "source": "mangaassist.ai", "account": "123456789012", "time": "2026-11-25T03:04:05Z",
         "region": "ap-northeast-1", "resources": [],
         "detail": {"version": "1", "order_id": "ord_1", "payment_id": "pi_1", "text": "ご注文ありがとうございます",
                    "model_id": "local.fast-v1", "request_id": "r1"}}


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(answers=None) -> Receiver:
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def platform(platform_aws, monkeypatch):
    """Subscriptions, the notifications queue and its DLQ on moto, and a dispatcher that allows
    loopback receivers (as the local stack does) with Svix's schedule shrunk a hundred-thousandfold."""
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_url(QueueName="test-notifications")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="test-notifications-dlq")["QueueUrl"]
    published: list = []
    subscriptions = Subscriptions(boto3.resource("dynamodb").Table("test-subscriptions"),
                                  boto3.client("secretsmanager"), secret_prefix="test/subscriptions/",
                                  allow_loopback=True)
    dispatcher = Dispatcher(subscriptions=subscriptions, sqs=sqs, queue_url=queue, dlq_url=dlq,
                            queue_arn="arn:aws:sqs:ap-northeast-1:123456789012:test-notifications",
                            publish=published.extend, allow_loopback=True, time_scale=0.00001)

    class Platform:
        def __init__(self):
            self.subscriptions, self.dispatcher, self.published, self.sqs = subscriptions, dispatcher, published, sqs
            self.queue, self.dlq = queue, dlq

        def drain(self, rounds: int = 20) -> list[str]:
            """Receive and handle the dispatcher's own retry messages until the queue is empty."""
            outcomes = []
            for _ in range(rounds):
                time.sleep(0.02)
                got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
                if not got:
                    break
                for message in got:
                    outcomes += dispatcher.handle(json.loads(message["Body"]))
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            return outcomes

        def dead_letters(self) -> list[dict]:
            return sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10,
                                       MessageAttributeNames=["All"]).get("Messages", [])

    return Platform()


def verify_with_the_official_libraries(request: dict, secrets: list[str]) -> None:
    for secret in secrets:
        standardwebhooks.Webhook(secret).verify(request["body"].decode(), request["headers"])
        svix.webhooks.Webhook(secret).verify(request["body"], request["headers"])


# --- deliveries ------------------------------------------------------------------------------
def test_a_delivery_is_signed_as_the_official_libraries_verify(platform, receivers):
    receiver = receivers()
    item, secret = platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    assert platform.dispatcher.handle(EVENT) == ["delivered"]
    (request,) = receiver.requests
    verify_with_the_official_libraries(request, [secret])
    assert request["headers"]["webhook-id"] == message_id(EVENT["id"], item["subscription_id"])
    assert json.loads(request["body"]) == EVENT


def test_events_the_pattern_does_not_match_are_not_delivered(platform, receivers):
    receiver = receivers()
    platform.subscriptions.add(receiver.url, {"detail-type": ["ModerationFlagged"]})
    assert platform.dispatcher.handle(EVENT) == [] and receiver.requests == []


def test_during_a_rotation_both_secrets_sign_and_either_verifies(platform, receivers):
    receiver = receivers()
    item, old = platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    new = platform.subscriptions.rotate(item["subscription_id"])
    platform.subscriptions._secrets.clear()
    platform.dispatcher.handle(EVENT)
    (request,) = receiver.requests
    assert len(request["headers"]["webhook-signature"].split()) == 2
    verify_with_the_official_libraries(request, [old, new])
    platform.subscriptions.rotate(item["subscription_id"], expire_old_in=0)
    platform.subscriptions._secrets.clear()
    platform.dispatcher.handle({**EVENT, "id": "other"})
    assert len(receiver.requests[1]["headers"]["webhook-signature"].split()) == 1
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(old).verify(receiver.requests[1]["body"].decode(), receiver.requests[1]["headers"])


def test_a_template_shapes_the_body_like_an_input_transformer(platform, receivers):
    receiver = receivers()
    template = {"InputPathsMap": {"order": "$.detail.order_id", "text": "$.detail.text"},
                "InputTemplate": '{"text": "Order <order>: <text>"}'}
    platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]}, template)
    platform.dispatcher.handle(EVENT)
    assert json.loads(receiver.requests[0]["body"]) == {"text": "Order ord_1: ご注文ありがとうございます"}


def test_a_receiver_failing_three_times_then_succeeding_gets_the_event_once_with_one_webhook_id(platform, receivers):
    receiver = receivers([500, 503, 429, 200])
    platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    assert platform.dispatcher.handle(EVENT) == ["retrying"]
    assert platform.drain().count("delivered") == 1
    assert len(receiver.requests) == 4 and len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    assert len({r["headers"]["webhook-timestamp"] for r in receiver.requests}) >= 1  # signed anew each attempt


@pytest.mark.parametrize("answer", [{"status": 302}, {"status": 200, "delay": 0.6}, {"status": 200, "close": True},
                                    {"status": 500, "body": b"x" * 10_000_000}],
                         ids=["redirect", "slow", "hang-up", "10 MB"])
def test_a_bad_answer_is_a_failed_attempt_never_a_stuck_dispatcher(platform, receivers, answer):
    receiver = receivers([answer])
    platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    platform.dispatcher.timeout = 0.3  # NOTIFY_TIMEOUT_SECONDS (10 s by default)
    started = time.monotonic()
    assert platform.dispatcher.handle(EVENT) == ["retrying"]
    assert time.monotonic() - started < 5, "bounded by the timeout and the read cap"
    assert len(receiver.requests) == 1, "a redirect is never followed"


def test_a_receiver_always_failing_ends_in_the_dlq_and_redrive_delivers_once_it_recovers(platform, receivers):
    receiver = receivers([500] * len(SCHEDULE))
    item, _ = platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    platform.dispatcher.handle(EVENT)
    assert platform.drain().count("dead_lettered") == 1 and len(receiver.requests) == len(SCHEDULE)
    (letter,) = platform.dead_letters()
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert attributes["SUBSCRIPTION_ID"] == item["subscription_id"] and attributes["LAST_STATUS"] == "500"
    assert attributes["ATTEMPTS"] == str(len(SCHEDULE)) and attributes["TARGET_ARN"].endswith(":test-notifications")
    task = json.loads(letter["Body"])
    assert task["attempt"] == 0, "a redriven delivery starts its schedule over"
    assert platform.dispatcher.handle(task) == ["delivered"]  # what ops.py redrive sends back to the queue
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1


def test_410_disables_the_subscription_and_says_so(platform, receivers):
    receiver = receivers([410])
    item, _ = platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    assert platform.dispatcher.handle(EVENT) == ["disabled"]
    assert platform.subscriptions.get(item["subscription_id"])["enabled"] is False
    (disabled,) = platform.published
    assert disabled.detail_type == "SubscriptionDisabled" and disabled.detail["subscription_id"] == item[
        "subscription_id"]
    platform.subscriptions._cache = None
    assert platform.dispatcher.handle({**EVENT, "id": "later"}) == [] and len(receiver.requests) == 1


def test_a_job_callback_is_signed_with_the_keys_callback_secret_and_only_to_allowed_hosts(platform, receivers):
    receiver = receivers()
    _, secret = platform.subscriptions.set_callbacks("k1a2b3c4d5", ["127.0.0.1"])
    completed = {**EVENT, "id": "job-event", "source": "mangaassist.jobs", "detail-type": "JobCompleted",
                 "detail": {"version": "1", "job_id": "job_1", "task": "product_description", "status": "succeeded",
                            "client_id": "k1a2b3c4d5", "callback_url": receiver.url,
                            "completed_at": "2026-11-25T03:04:05Z"}}
    assert platform.dispatcher.handle(completed) == ["delivered"]
    verify_with_the_official_libraries(receiver.requests[0], [secret])
    elsewhere = {**completed, "id": "job-event-2", "detail": {**completed["detail"], "callback_url":
                                                                   receiver.url.replace("127.0.0.1", "localhost")}}
    assert platform.dispatcher.handle(elsewhere) == ["dead_lettered"], "a host the key did not allow"
    unknown = {**completed, "id": "job-event-3", "detail": {**completed["detail"], "client_id": "nobody"}}
    assert platform.dispatcher.handle(unknown) == ["dropped"]


# --- SSRF -------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, reason", [
    ("http://example.com/hook", "only https"),
    ("https://10.0.0.5/hook", "not a public address"),
    ("https://192.168.1.1/hook", "not a public address"),
    ("https://172.16.0.1/hook", "not a public address"),
    ("https://100.64.0.1/hook", "not a public address"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://localhost/hook", "loopback"),  # a name resolving to 127.0.0.1
    ("https://0.0.0.0/hook", "not a public address"),
    ("https://user:pass@example.com/hook", "credentials"),
    ("https://example.com:99999/hook", "port"),
    ("ftp://example.com/hook", "only https"),
])
def test_urls_the_platform_must_not_call_are_refused_on_the_aws_setting(url, reason):
    with pytest.raises(egress.EgressRefused, match=reason):
        scheme, host, port, _ = egress.check_url(url, allow_loopback=False)
        egress.safe_addresses(host, port, allow_loopback=False)


def test_a_name_that_rebinds_to_a_private_address_is_refused_at_connect_time(monkeypatch):
    import socket

    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))],
                    [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443))]])
    monkeypatch.setattr(egress.socket, "getaddrinfo", lambda *a, **k: next(answers))
    egress.safe_addresses("rebind.example", 443, allow_loopback=False)  # public when the subscription was saved
    with pytest.raises(egress.EgressRefused, match="not a public address"):  # private when posting
        egress.post("https://rebind.example/hook", b"{}", {}, allow_loopback=False)


def test_the_local_setting_allows_loopback_but_never_private_or_metadata():
    egress.safe_addresses("127.0.0.1", 80, allow_loopback=True)
    for address in ("10.1.2.3", "169.254.169.254"):
        with pytest.raises(egress.EgressRefused):
            egress.check_address(address, allow_loopback=True)


# --- subscriptions refused when saved ------------------------------------------------------------
@pytest.mark.parametrize("pattern, message", [
    ({"source": "mangaassist.ai"}, "Event pattern is not valid. Reason: \"source\" must be an object or an array"),
    ("{not json", "Event pattern is not valid"),
    ({"detail": {"n": [{"numeric": [">", "x"]}]}}, "Value of > must be numeric"),
])
def test_an_invalid_pattern_is_refused_with_awss_message(platform, pattern, message):
    with pytest.raises(SubscriptionRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        platform.subscriptions.add("http://127.0.0.1:9/hook", pattern)


@pytest.mark.parametrize("template, message", [
    ({"InputTemplate": "{not json <x>}"}, "does not render JSON"),
    ({"InputPathsMap": {"aws.x": "$.detail"}, "InputTemplate": "{}"}, "must be"),
    ({"InputPathsMap": {"x": "detail.id"}, "InputTemplate": "{}"}, "JSON path"),
    ({"InputPathsMap": [], "InputTemplate": "{}"}, "InputPathsMap maps"),
    ("just text", "a template is"),
])
def test_a_malformed_template_is_refused_when_saved(template, message):
    with pytest.raises(SubscriptionRefused, match=message):
        validate_template(template)


def test_a_slack_template_is_accepted():
    assert validate_template({"InputPathsMap": {"t": "$.detail.text"}, "InputTemplate": '{"text": "<t>"}'})


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_" + base64.b64encode(b"short").decode(), "nope"])
def test_an_empty_or_malformed_secret_is_refused(platform, secret):
    with pytest.raises(SubscriptionRefused, match="secret"):
        platform.subscriptions.add("http://127.0.0.1:9/hook", {"source": ["x"]}, secret=secret)


def test_the_signature_matches_the_standard_by_hand():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    headers = signing.headers("msg_1", 1700000000, b'{"a":1}', [secret])
    import hashlib
    import hmac

    digest = hmac.new(b"k" * 32, b'msg_1.1700000000.{"a":1}', hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()


def test_a_retry_received_before_it_is_due_waits_again_without_calling_the_receiver(platform, receivers):
    receiver = receivers()
    item, _ = platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    task = {"kind": "delivery", "subscription_id": item["subscription_id"], "event": EVENT, "attempt": 3,
            "msg_id": "msg_x", "due_at": time.time() + 3600}  # SQS delays at most 15 minutes
    sent = []
    real = platform.sqs.send_message
    platform.dispatcher.sqs = type("Spy", (), {"send_message": lambda self, **kw: sent.append(kw) or real(**kw)})()
    assert platform.dispatcher.handle(task) == ["waiting"] and receiver.requests == []
    (again,) = sent
    assert again["DelaySeconds"] == 900 and json.loads(again["MessageBody"]) == task


# --- https receivers, settings, SSRF through the dispatcher, the stack's seed ----------------------
def test_an_https_receiver_is_checked_against_the_ca_file_and_refused_without_it(platform, tmp_path):
    from receivers import Receiver, make_dev_ca

    tls = make_dev_ca(tmp_path)
    receiver = Receiver(tls=tls)
    try:
        platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
        platform.dispatcher.timeout = 2
        assert platform.dispatcher.handle(EVENT) == ["retrying"], "the system's CAs do not know the test CA"
        platform.dispatcher.ca_file = str(tls["ca"])
        assert platform.dispatcher.handle({**EVENT, "id": "with-ca"}) == ["delivered"]
        assert len(receiver.received()) == 1  # the refused handshake never reached the handler
    finally:
        receiver.close()


def test_the_notification_settings_have_awss_defaults_and_refuse_nonsense(monkeypatch):
    from mangaassist import settings

    for name, value in (("NOTIFY_SECRET_PREFIX", "p/"), ("NOTIFY_ALLOW_LOOPBACK", "false"),
                        ("NOTIFY_TIME_SCALE", "1")):
        monkeypatch.setenv(name, value)
    for name in ("NOTIFY_TIMEOUT_SECONDS", "NOTIFY_CACHE_SECONDS", "NOTIFY_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings.notifications.cache_clear()
    try:
        config = settings.notifications()
        assert (config.timeout_seconds, config.cache_seconds, config.ca_file) == (10.0, 30.0, None)
        monkeypatch.setenv("NOTIFY_TIMEOUT_SECONDS", "0.5")
        monkeypatch.setenv("NOTIFY_CACHE_SECONDS", "0")
        settings.notifications.cache_clear()
        assert (settings.notifications().timeout_seconds, settings.notifications().cache_seconds) == (0.5, 0.0)
        monkeypatch.setenv("NOTIFY_TIMEOUT_SECONDS", "0")
        settings.notifications.cache_clear()
        with pytest.raises(settings.MissingSetting, match="NOTIFY_TIMEOUT_SECONDS"):
            settings.notifications()
    finally:
        settings.notifications.cache_clear()


def test_with_no_cache_a_new_subscription_gets_the_next_event(platform, receivers):
    platform.subscriptions.cache_seconds = 0
    assert platform.dispatcher.handle(EVENT) == []  # the list is read (and would be kept 30 s)
    receiver = receivers()
    platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    assert platform.dispatcher.handle({**EVENT, "id": "next"}) == ["delivered"]


@pytest.mark.parametrize("address", ["10.0.0.5", "127.0.0.1", "169.254.169.254"])
def test_on_the_aws_setting_a_name_resolving_to_an_unsafe_address_is_dead_lettered_never_called(
        platform, receivers, monkeypatch, address):
    """A subscription saved while its name resolved to a public address; at delivery the name
    answers a private, loopback or metadata address: refused before connecting, not retried."""
    import socket

    receiver = receivers()  # on 127.0.0.1: it must never hear from the dispatcher
    port = int(receiver.url.split(":")[2].split("/")[0])
    item, _ = platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    platform.subscriptions.table.update_item(Key={"subscription_id": item["subscription_id"]},
                                             UpdateExpression="SET #u = :u", ExpressionAttributeNames={"#u": "url"},
                                             ExpressionAttributeValues={":u": f"https://hooks.partner.example:{port}/"})
    platform.subscriptions._cache = None
    monkeypatch.setattr(egress.socket, "getaddrinfo",
                        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))])
    platform.dispatcher.allow_loopback = False
    assert platform.dispatcher.handle(EVENT) == ["dead_lettered"]
    (letter,) = platform.dead_letters()
    assert letter["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"].startswith(f"refused: {address}")
    assert receiver.requests == []


def test_the_stack_seeds_one_disabled_subscription_once_and_never_over_an_operators(platform):
    from embedded.notifications import SEED_PATTERN, seed_subscription

    entry, notes = seed_subscription(platform.subscriptions, "http://127.0.0.1:9000/webhooks")
    seeded = entry["seeded"]
    assert seeded["enabled"] is False and seeded["url"] == "http://127.0.0.1:9000/webhooks"
    assert json.loads(seeded["event_pattern"]) == SEED_PATTERN and notes
    (secret,) = seeded["secrets"]
    assert secret.startswith("whsec_")
    assert platform.subscriptions.get(seeded["subscription_id"])["enabled"] is False
    again, notes = seed_subscription(platform.subscriptions, "http://127.0.0.1:9000/webhooks")  # a restart
    assert again == entry and notes == [] and len(platform.subscriptions.every()) == 1
    platform.subscriptions.remove(seeded["subscription_id"])
    platform.subscriptions.add("http://127.0.0.1:9001/mine", {"source": ["mangaassist.ai"]})
    assert seed_subscription(platform.subscriptions, "http://127.0.0.1:9000/webhooks") == ({"seeded": None}, [])
    assert len(platform.subscriptions.every()) == 1


def test_a_seed_url_the_platform_refuses_is_a_note_not_a_failed_start(platform):
    from embedded.notifications import seed_subscription

    entry, (note,) = seed_subscription(platform.subscriptions, "http://10.0.0.1/webhooks")
    assert entry == {"seeded": None} and "LOCAL_RECEIVER_URL" in note and platform.subscriptions.every() == []


def test_a_2xx_with_an_answer_past_the_cap_is_a_failed_attempt(platform, receivers):
    receiver = receivers([{"status": 200, "body": b"x" * (egress.MAX_RESPONSE_BYTES + 1)},
                          {"status": 200, "body": b"x" * egress.MAX_RESPONSE_BYTES}])
    platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    assert platform.dispatcher.handle(EVENT) == ["retrying"]
    assert platform.drain() == ["delivered"], "an answer of exactly the cap is read whole"


def test_redrive_sends_a_dispatcher_dead_letter_back_to_its_queue_where_it_starts_over(platform, receivers):
    from mangaassist_dev.redrive import redrive_queue, send_to_queue

    receiver = receivers([500] * len(SCHEDULE))
    platform.subscriptions.add(receiver.url, {"source": ["mangaassist.ai"]})
    platform.dispatcher.handle(EVENT)
    assert platform.drain().count("dead_lettered") == 1
    result = redrive_queue(platform.sqs, platform.dlq, "test-notifications-dlq", send_to_queue(platform.sqs))
    assert (result.redriven, result.failed, result.left_visible) == (1, [], 0)
    assert platform.drain() == ["delivered"] and len(receiver.requests) == len(SCHEDULE) + 1
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1


def test_the_local_stack_gives_the_dispatcher_every_setting_it_reads(tmp_path, monkeypatch):
    """The stack once set no <QUEUE>_DLQ_URL: its dispatcher failed every message at init."""
    from embedded.stack import Settings, Stack
    from mangaassist import settings

    stack = Stack(Settings(data_dir=tmp_path, notify_timeout=1.5, notify_ca_file="/dev/ca.pem"))
    for name, value in stack._environment("http://127.0.0.1:1").items():
        monkeypatch.setenv(name, value)
    settings.notifications.cache_clear()
    try:
        config = settings.notifications()
        assert (config.allow_loopback, config.timeout_seconds, config.cache_seconds, config.ca_file) == (
            True, 1.5, 2.0, "/dev/ca.pem")
        for queue, name in stack.names["queue_dlqs"].items():
            assert settings.dlq_url(queue) == f"http://127.0.0.1:1/123456789012/{name}"
    finally:
        settings.notifications.cache_clear()

"""Webhook ingress: every answer, fault injection, idempotency, and no 5xx for bad input."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from mangaassist_dev import signing
from moto import mock_aws

from mangaassist.events import publisher as publisher_module
from mangaassist.settings import Webhooks
from mangaassist.webhooks.ingest import IDEMPOTENCY_TTL, Ingress
from mangaassist.webhooks.sources import Keys, load_sources

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
SOURCES = load_sources(json.dumps(json.loads((ROOT / "terraform" / "wiring.json").read_text())["sources"]))
NOW = 1795921445.0
SECRETS = {
    "stripe": "whsec_test_stripe_0123456789abcdef",
    "github": "It's a Secret to Everybody",
    "reviews": "whsec_" + base64.b64encode(b"reviews-secret-0123456789abcd").decode(),
    "catalog": "whsec_" + base64.b64encode(b"catalog-secret-0123456789abcd").decode(),
}
OLD_SECRETS = {k: v.replace("0123", "9876") for k, v in SECRETS.items()}
BUS, BUCKET, TABLE = "test-bus", "test-raw-payloads", "test-idempotency"


def fixture_body(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def signed_headers(source: str, body: bytes, *, secret: str | None = None, timestamp: float = NOW,
                   msg_id: str = "msg_0001") -> dict:
    secret = secret or SECRETS[source]
    if source == "stripe":
        return signing.sign_stripe(secret, body, timestamp=int(timestamp))
    if source == "github":
        return {**signing.sign_github(secret, body), "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                "X-GitHub-Event": "push"}
    return signing.sign_standard(secret, body, msg_id=msg_id, timestamp=int(timestamp))


def url_event(source: str, body: bytes, headers: dict, method: str = "POST", base64_body: bool = False) -> dict:
    event = json.loads(fixture_body("lambdaFunctionUrlEvent.json"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/webhooks/{source}"
    event["requestContext"]["http"]["method"] = method
    event["headers"].update({k.lower(): v for k, v in headers.items()})
    event["body"] = base64.b64encode(body).decode() if base64_body else body.decode("utf-8", "surrogateescape")
    event["isBase64Encoded"] = base64_body
    return event


class BusTap:
    """A rule on the moto bus sending every event to an SQS queue, to count what was published."""

    def __init__(self):
        self.sqs = boto3.client("sqs")
        self.url = self.sqs.create_queue(QueueName="tap")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events")
        events.put_rule(Name="tap", EventBusName=BUS, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        events.put_targets(Rule="tap", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])

    def drain(self) -> list[dict]:
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            out += [json.loads(m["Body"]) for m in got]
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])


def create_resources() -> None:
    """The raw-payload bucket, the idempotency table and the bus, wherever boto3 points."""
    boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    boto3.client("dynamodb").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    boto3.client("events").create_event_bus(Name=BUS)


@pytest.fixture
def aws(monkeypatch, boto3_session):
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    with mock_aws():
        from moto.moto_api._internal.models import moto_api_backend

        boto3.DEFAULT_SESSION = boto3_session

        # a fresh account even when an earlier test left moto's backends holding its resources
        moto_api_backend.reset()
        create_resources()
        yield BusTap()


def make_ingress(**overrides) -> Ingress:
    kwargs = dict(keys=lambda source: Keys((SECRETS[source], OLD_SECRETS[source])), clock=lambda: NOW)
    kwargs.update(overrides)
    config = kwargs.pop("config", webhook_settings())
    return Ingress(SOURCES, config, **kwargs)


def webhook_settings(max_body: int = 1024 * 1024) -> Webhooks:
    return Webhooks(sources_json="{}", secret_prefix="test/webhooks/", max_body_bytes=max_body,
                    raw_payloads_bucket=BUCKET, idempotency_table=TABLE)


def answer(response: dict) -> tuple[int, dict]:
    assert response["headers"]["content-type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


class FakeContext:
    function_name = "mangaassist-test-webhook_ingress"
    aws_request_id = "req-1"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:mangaassist-test-webhook_ingress"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def send(ingress: Ingress, source: str, body: bytes, headers: dict | None = None, **kw) -> tuple[int, dict, dict]:
    event = url_event(source, body, signed_headers(source, body) if headers is None else headers, **kw)
    response = ingress.handle(event, FakeContext())
    status, payload = answer(response)
    return status, payload, response["headers"]


# --- acceptance -------------------------------------------------------------------------------
def test_stripe_jpy_checkout_is_accepted_with_yen_not_divided(aws):
    status, body, _ = send(make_ingress(), "stripe", fixture_body("stripe.checkout.session.completed.json"))
    assert status == 202 and body["status"] == "accepted" and len(body["events"]) == 1
    (event,) = aws.drain()
    assert event["id"] == body["events"][0]
    assert (event["source"], event["detail-type"]) == ("mangaassist.payments", "PaymentCompleted")
    assert event["detail"]["amount"] == 1500 and event["detail"]["currency"] == "JPY"
    assert event["detail"]["order_id"] == "ord_1001" and event["detail"]["payment_id"] == "pi_3QmangaIntent0001"


def test_two_decimal_currency_is_divided(aws):
    payload = json.loads(fixture_body("stripe.checkout.session.completed.json"))
    payload["data"]["object"].update(currency="usd", amount_total=1234)
    payload["id"] = "evt_usd"
    status, _, _ = send(make_ingress(), "stripe", json.dumps(payload).encode())
    assert status == 202
    assert aws.drain()[0]["detail"]["amount"] == 12.34


def test_charge_refunded_becomes_refund_processed(aws):
    status, body, _ = send(make_ingress(), "stripe", fixture_body("stripe.charge.refunded.json"))
    assert status == 202
    (event,) = aws.drain()
    assert event["detail-type"] == "RefundProcessed" and event["detail"]["refund_id"] == "re_3QmangaRefund0001"


def test_unmapped_stripe_type_is_acknowledged_without_events(aws):
    payload = json.loads(fixture_body("stripe.checkout.session.completed.json"))
    payload.update(type="customer.created", id="evt_customer")
    status, body, _ = send(make_ingress(), "stripe", json.dumps(payload).encode())
    assert (status, body["events"], aws.drain()) == (202, [], [])


def test_github_push_is_accepted_with_its_delivery_id(aws):
    status, body, _ = send(make_ingress(), "github", fixture_body("github.push.json"))
    assert status == 202 and body["delivery_id"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    (event,) = aws.drain()
    assert event["detail"]["event"] == "push" and event["detail"]["repository"] == "manga-store/mangaassist"


def test_review_is_accepted(aws):
    status, body, _ = send(make_ingress(), "reviews", fixture_body("reviews.submitted.json"))
    assert status == 202 and body["delivery_id"] == "msg_0001"
    (event,) = aws.drain()
    assert event["detail"]["rating"] == 5 and event["detail-type"] == "ReviewSubmitted"


def test_catalog_batch_becomes_one_event_per_item_all_published(aws):
    payload = json.loads(fixture_body("catalog.new_release.json"))
    template = payload["items"][0]
    payload["items"] = [{**template, "id": f"bk-{i:03d}", "title": f"第{i}巻"} for i in range(25)]
    status, body, _ = send(make_ingress(), "catalog", json.dumps(payload, ensure_ascii=False).encode())
    assert status == 202 and len(body["events"]) == 25
    events = aws.drain()
    assert sorted(e["detail"]["product_id"] for e in events) == [f"bk-{i:03d}" for i in range(25)]
    assert {e["detail-type"] for e in events} == {"CatalogUpdate.new_release"}


def test_svix_branded_headers_are_accepted(aws):
    body = fixture_body("reviews.submitted.json")
    headers = {k.replace("webhook-", "svix-"): v for k, v in signed_headers("reviews", body).items()}
    status, _, _ = send(make_ingress(), "reviews", body, headers)
    assert status == 202


def test_a_signature_by_the_previous_secret_is_valid_during_rotation(aws):
    body = fixture_body("reviews.submitted.json")
    status, _, _ = send(make_ingress(), "reviews", body, signed_headers("reviews", body, secret=OLD_SECRETS["reviews"]))
    assert status == 202


def test_base64_bodies_are_verified_on_the_decoded_raw_bytes(aws):
    body = fixture_body("stripe.checkout.session.completed.json")
    status, _, _ = send(make_ingress(), "stripe", body, base64_body=True)
    assert status == 202


def test_raw_body_is_kept_encrypted_in_s3_by_source_date_and_delivery(aws):
    body = fixture_body("stripe.checkout.session.completed.json")
    send(make_ingress(), "stripe", body)
    (obj,) = boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    day = time.strftime("%Y/%m/%d", time.gmtime(NOW))
    assert obj["Key"].startswith(f"stripe/{day}/evt_1QmangaCheckout0001/")
    stored = boto3.client("s3").get_object(Bucket=BUCKET, Key=obj["Key"])
    assert stored["Body"].read() == body and stored["ServerSideEncryption"] == "AES256"


# --- retries and duplicates -------------------------------------------------------------------
def test_a_retry_gets_the_original_answer_and_publishes_nothing_more(aws):
    ingress, body = make_ingress(), fixture_body("stripe.checkout.session.completed.json")
    first = send(ingress, "stripe", body)[1]
    status, again, _ = send(ingress, "stripe", body)
    assert status == 200 and again["status"] == "duplicate"
    assert again["events"] == first["events"] and again["delivery_id"] == first["delivery_id"]
    assert len(aws.drain()) == 1


def test_the_completed_claim_is_one_whole_record_another_container_answers_from(aws):
    body = fixture_body("github.push.json")
    first = send(make_ingress(), "github", body)[1]
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert len(items) == 1
    item = items[0]
    assert item["status"] == {"S": "COMPLETED"}
    assert "in_progress_expiration" not in item  # written whole by DeliveryClaims, not updated in place
    assert int(item["expiration"]["N"]) > time.time() + IDEMPOTENCY_TTL - 60  # the table's TTL attribute
    assert item["validation"]["S"] and json.loads(item["data"]["S"])["events"] == first["events"]
    status, again, _ = send(make_ingress(), "github", body)  # a cold container: nothing cached
    assert status == 200 and again["events"] == first["events"] and len(aws.drain()) == 1


def test_a_signed_id_is_kept_in_the_raw_body_s_key_with_its_unsafe_characters_replaced(aws):
    body = fixture_body("reviews.submitted.json")
    send(make_ingress(), "reviews", body, signed_headers("reviews", body, msg_id="msg/2026:11#a"))
    (obj,) = boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    assert obj["Key"].split("/")[4] == "msg_2026_11_a"
    head = boto3.client("s3").head_object(Bucket=BUCKET, Key=obj["Key"])
    assert head["Metadata"] == {"delivery-id": "msg_2026_11_a", "source": "reviews"}


def test_same_delivery_id_with_another_body_is_refused(aws):
    ingress = make_ingress()
    body = fixture_body("reviews.submitted.json")
    send(ingress, "reviews", body)
    other = body.replace(b'"rating": 5', b'"rating": 1')
    status, payload, _ = send(ingress, "reviews", other)
    assert (status, payload) == (422, {"error": "delivery_id_reused", "delivery_id": "msg_0001",
                                       "message": "this delivery id was already used for a different body"})


def test_fifty_concurrent_deliveries_of_one_id_publish_exactly_once(tmp_path, monkeypatch):
    """Over a real (single-writer) emulator, as DynamoDB's conditional writes are atomic."""
    from embedded.aws import Emulator

    published = []
    emulator = Emulator(BUS, published.extend).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint_url)
        monkeypatch.setenv("EVENT_BUS_NAME", BUS)
        create_resources()
        ingress = make_ingress()
        body = fixture_body("stripe.checkout.session.completed.json")
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(lambda _: send(ingress, "stripe", body)[:2], range(50)))
        statuses = sorted(status for status, _ in results)
        assert statuses.count(202) == 1, statuses
        assert set(statuses) <= {200, 202, 409}
        assert len(published) == 1
        for status, payload in results:
            if status == 409:
                assert payload["error"] == "in_progress"
    finally:
        emulator.stop()


def test_in_progress_delivery_answers_409_with_retry_after(aws):
    ingress, body = make_ingress(), fixture_body("reviews.submitted.json")
    results = {}

    def slow_publish(events):
        results["inner"] = send(ingress, "reviews", body)  # the partner's impatient retry
        return publisher_module.publish(events)

    ingress.publisher = slow_publish
    status, _, _ = send(ingress, "reviews", body)
    inner_status, inner_body, inner_headers = results["inner"]
    assert status == 202 and inner_status == 409 and inner_body == {
        "error": "in_progress", "message": "this delivery is being processed; retry shortly", "delivery_id": "msg_0001"}
    assert int(inner_headers["retry-after"]) > 0


# --- dependencies failing: 503, claim released, retry accepted, exactly one set of events ----
def _failing_s3(ingress):
    class Broken:
        def put_object(self, **_):
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "slow down"}}, "PutObject")

    ingress.s3 = Broken()


def _failing_put_events(ingress):
    def broken(events):
        raise publisher_module.PublishError([{"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}], [])

    ingress.publisher = broken


@pytest.mark.parametrize("break_it", [_failing_s3, _failing_put_events], ids=["s3", "put_events"])
def test_a_failing_dependency_is_503_and_the_retry_is_accepted_once(aws, break_it):
    body = fixture_body("stripe.checkout.session.completed.json")
    broken = make_ingress()
    break_it(broken)
    status, payload, headers = send(broken, "stripe", body)
    assert (status, payload["error"]) == (503, "unavailable") and int(headers["retry-after"]) > 0
    assert aws.drain() == []
    status, payload, _ = send(make_ingress(), "stripe", body)
    assert status == 202
    assert len(aws.drain()) == 1


def test_the_raw_body_put_and_the_claim_run_side_by_side(aws):
    from mangaassist.webhooks.claims import DeliveryClaims

    persistence = DeliveryClaims(table_name=TABLE)
    claimed = threading.Event()
    put_item = persistence.client.put_item

    def claim(**kwargs):
        result = put_item(**kwargs)
        claimed.set()
        return result

    persistence.client.put_item = claim
    ingress = make_ingress(persistence=persistence)
    s3_put = ingress.s3.put_object

    def put_after_the_claim(**kwargs):  # one after the other, this would wait for a claim that never comes
        if not claimed.wait(5):
            raise ClientError({"Error": {"Code": "RequestTimeout", "Message": "no claim yet"}}, "PutObject")
        return s3_put(**kwargs)

    ingress.s3.put_object = put_after_the_claim
    status, payload, _ = send(ingress, "stripe", fixture_body("stripe.checkout.session.completed.json"))
    assert status == 202 and len(aws.drain()) == 1


@pytest.mark.parametrize("first_answer", [202, None],
                         ids=["after an accepted delivery", "with a payload breaking its schema"])
def test_a_failed_raw_body_put_is_503_whatever_the_claim_says(aws, first_answer):
    body = fixture_body("reviews.submitted.json")
    if first_answer is None:
        body = json.dumps({**json.loads(body), "rating": 9}).encode()
    else:
        assert send(make_ingress(), "reviews", body)[0] == first_answer
        aws.drain()
    broken = make_ingress()
    _failing_s3(broken)
    status, payload, headers = send(broken, "reviews", body)
    assert (status, payload) == (503, {"error": "unavailable",
                                       "message": "the delivery could not be stored; retry later"})
    assert aws.drain() == []
    # The body is kept before anything else counts; once it is, the answers are the usual ones.
    status, payload, _ = send(make_ingress(), "reviews", body)
    assert status == (200 if first_answer else 422) and aws.drain() == []


def test_failing_dynamodb_is_503_and_the_retry_is_accepted_once(aws):
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    body = fixture_body("stripe.checkout.session.completed.json")
    persistence = DynamoDBPersistenceLayer(table_name=TABLE)

    def broken(**_):
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "PutItem")

    persistence.client.put_item = broken
    status, payload, _ = send(make_ingress(persistence=persistence), "stripe", body)
    assert (status, payload) == (503, {"error": "unavailable",
                                       "message": "the delivery could not be processed; retry later"})
    assert aws.drain() == []
    assert send(make_ingress(), "stripe", body)[0] == 202
    assert len(aws.drain()) == 1


# --- the claim's completion, written after the answer ----------------------------------------
def test_the_answer_comes_before_the_completion_and_a_retry_in_between_is_409(aws):
    from mangaassist import after_response

    ingress, body = make_ingress(), fixture_body("stripe.checkout.session.completed.json")
    handler = after_response.handler(ingress.handle)
    later = after_response.Later()  # what the Lambda runtime and the extension do, as the gateway does
    with later:
        first = answer(handler(url_event("stripe", body, signed_headers("stripe", body)), FakeContext()))
    assert first[0] == 202 and len(later.tasks) == 1
    (item,) = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert item["status"] == {"S": "INPROGRESS"}
    status, payload, headers = send(ingress, "stripe", body)
    assert (status, payload["error"]) == (409, "in_progress") and int(headers["retry-after"]) > 0
    later.run()
    status, again, _ = send(ingress, "stripe", body)
    assert status == 200 and again["events"] == first[1]["events"]
    assert len(aws.drain()) == 1


def test_a_failed_completion_after_publishing_still_answers_202_and_never_publishes_twice(aws, caplog):
    from mangaassist.webhooks.claims import DeliveryClaims

    persistence = DeliveryClaims(table_name=TABLE)
    put_item = persistence.client.put_item

    def completion_fails(**kwargs):
        if kwargs["Item"]["status"]["S"] == "COMPLETED":
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                              "PutItem")
        return put_item(**kwargs)

    persistence.client.put_item = completion_fails
    body = fixture_body("reviews.submitted.json")
    status, payload, _ = send(make_ingress(persistence=persistence), "reviews", body)
    # The events are on the bus: a 503 would make the partner retry into a second set of them.
    assert status == 202 and len(payload["events"]) == 1
    # ...in the words the Terraform metric filter (and its alarm) counts
    terraform = (ROOT / "terraform" / "modules" / "webhooks" / "main.tf").read_text()
    assert re.search(r'pattern\s*=\s*"\\"([^"\\]+)\\""', terraform)[1] in caplog.text
    (record,) = [r for r in caplog.records if r.name == "mangaassist.webhooks.claims"]
    assert record.getMessage() == ("delivery accepted, but its claim was not completed: a retry after the claim "
                                   "lapses is processed again")
    (claim,) = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]  # the claim it could not complete
    assert record.idempotency_key == claim["id"] and record.exc_info
    assert send(make_ingress(), "reviews", body)[0] == 409  # the claim holds until its invocation's deadline
    assert len(aws.drain()) == 1


def test_unreadable_secrets_are_503(aws):
    def broken(_source):
        raise ClientError({"Error": {"Code": "InternalServiceError", "Message": "boom"}}, "GetSecretValue")

    body = fixture_body("reviews.submitted.json")
    status, payload, headers = send(make_ingress(keys=broken), "reviews", body)
    assert (status, payload) == (503, {"error": "unavailable",
                                       "message": "the source's signing secrets could not be read; retry later"})
    assert int(headers["retry-after"]) > 0


# --- bad input: a clear 4xx ------------------------------------------------------------------
@pytest.mark.parametrize("mutate, code", [
    (lambda h: {}, "missing_signature"),
    (lambda h: {**h, "Stripe-Signature": "garbage"}, None),
    (lambda h: {**h, "Stripe-Signature": h["Stripe-Signature"].replace("v1=", "v1=00")}, None),
])
def test_bad_stripe_signatures_are_401(aws, mutate, code):
    body = fixture_body("stripe.checkout.session.completed.json")
    status, payload, _ = send(make_ingress(), "stripe", body, mutate(signed_headers("stripe", body)))
    assert status == 401 and payload["error"] and payload["message"]
    if code:
        assert payload["error"] == code
    assert aws.drain() == []


@pytest.mark.parametrize("skew", [-301, 301, -86400, 10**9])
def test_timestamps_outside_the_window_are_401_past_or_future(aws, skew):
    body = fixture_body("reviews.submitted.json")
    status, payload, _ = send(make_ingress(), "reviews", body, signed_headers("reviews", body, timestamp=NOW + skew))
    assert status == 401


def test_wrong_secret_is_401(aws):
    body = fixture_body("github.push.json")
    assert send(make_ingress(), "github", body, signed_headers("github", body, secret="not it"))[0] == 401


def test_tampered_body_is_401(aws):
    body = fixture_body("reviews.submitted.json")
    headers = signed_headers("reviews", body)
    assert send(make_ingress(), "reviews", body.replace(b"5", b"4"), headers)[0] == 401


def test_unknown_source_is_404(aws):
    response = make_ingress().handle(url_event("paypal", b"{}", {}))
    status, payload = answer(response)
    assert (status, payload) == (404, {"error": "unknown_source", "message": "no webhook source named 'paypal'",
                                       "sources": ["catalog", "github", "reviews", "stripe"]})


def test_other_paths_are_404(aws):
    event = url_event("stripe", b"{}", {})
    event["rawPath"] = "/admin"
    assert answer(make_ingress().handle(event)) == (404, {"error": "not_found",
                                                          "message": "POST webhooks to /webhooks/{source}"})


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_methods_other_than_post_are_405(aws, method):
    response = make_ingress().handle(url_event("stripe", b"", {}, method=method))
    assert answer(response) == (405, {"error": "method_not_allowed", "message": "webhooks are delivered with POST"})
    assert response["headers"]["allow"] == "POST"


def test_bodies_over_the_limit_are_413(aws):
    payload = json.loads(fixture_body("reviews.submitted.json"))
    payload["text"] = "あ" * 4000
    body = json.dumps(payload, ensure_ascii=False).encode()
    ingress = make_ingress(config=webhook_settings(max_body=4096))
    assert send(ingress, "reviews", body)[0] == 413


@pytest.mark.parametrize("body, message", [(b"not json", "the body is not JSON"),
                                           (b"[1, 2]", "the body must be a JSON object"),
                                           (b"\xff\xfe", "the body is not JSON"), (b"", "the body is not JSON")],
                         ids=["text", "an array", "not utf-8", "empty"])  # no backslashes: mutmut runs tests by id
def test_bodies_that_are_not_a_json_object_are_400(aws, body, message):
    # GitHub signs raw bytes, so even a body that is not UTF-8 arrives correctly signed.
    status, payload, _ = send(make_ingress(), "github", body, base64_body=True)
    assert (status, payload) == (400, {"error": "invalid_json", "message": message})  # and no path


def test_a_body_of_exactly_the_limit_is_accepted_and_one_byte_more_is_413_saying_both(aws):
    body = fixture_body("reviews.submitted.json")
    status, payload, _ = send(make_ingress(config=webhook_settings(max_body=len(body) - 1)), "reviews", body)
    assert (status, payload) == (413, {"error": "payload_too_large",
                                       "message": f"the body is {len(body)} bytes; the limit is {len(body) - 1}"})
    assert send(make_ingress(config=webhook_settings(max_body=len(body))), "reviews", body)[0] == 202


def test_a_number_the_platform_cannot_keep_is_422_with_its_path_and_nothing_is_kept(aws):
    payload = json.loads(fixture_body("catalog.new_release.json"))
    payload["items"][0]["price"] = "__price__"
    body = json.dumps(payload).replace('"__price__"', "1e999").encode()
    status, answered, _ = send(make_ingress(), "catalog", body)
    assert (status, answered) == (422, {"error": "number_out_of_range", "message": "numbers must be finite",
                                        "path": "items[0].price"})
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Count"] == 0 and aws.drain() == []


def test_invalid_base64_is_400(aws):
    event = url_event("stripe", b"x", {})
    event.update(body="***", isBase64Encoded=True)
    assert answer(make_ingress().handle(event)) == (400, {
        "error": "invalid_body", "message": "the body is marked base64 but is not valid base64"})


def test_payload_breaking_its_schema_is_422_with_the_path(aws):
    payload = json.loads(fixture_body("reviews.submitted.json"))
    payload["rating"] = 6
    status, body, _ = send(make_ingress(), "reviews", json.dumps(payload).encode())
    assert status == 422 and body["error"] == "invalid_payload" and "rating" in body["path"]
    assert body["message"] == "6 is greater than the maximum of 5"
    assert aws.drain() == []


def test_a_payload_its_mapper_cannot_read_is_422_naming_the_source_and_the_failure(aws, monkeypatch):
    from mangaassist.webhooks import mapping

    def broken(payload, delivery):
        raise KeyError("product_id")

    monkeypatch.setitem(mapping.MAPPERS, "reviews", broken)
    status, body, _ = send(make_ingress(), "reviews", fixture_body("reviews.submitted.json"))
    assert (status, body) == (422, {"error": "invalid_payload",
                                    "message": "cannot map this reviews payload to events: KeyError 'product_id'"})
    assert aws.drain() == []


def test_a_rejected_payload_does_not_hold_the_delivery_id(aws):
    ingress = make_ingress()
    payload = json.loads(fixture_body("reviews.submitted.json"))
    bad = dict(payload, rating=0)
    assert send(ingress, "reviews", json.dumps(bad).encode())[0] == 422
    assert send(ingress, "reviews", json.dumps(payload).encode())[0] == 202


def test_missing_delivery_id_is_400(aws):
    body = fixture_body("github.push.json")
    headers = signing.sign_github(SECRETS["github"], body)
    status, payload, _ = send(make_ingress(), "github", body, headers)
    assert (status, payload) == (400, {"error": "missing_delivery_id",
                                       "message": "no delivery id where this source keeps it "
                                                  "(header:x-github-delivery)"})


@pytest.mark.parametrize("created", [10**18, 2**63 - 1])
def test_a_stripe_created_past_year_9999_is_422_naming_created(aws, created):
    payload = json.loads(fixture_body("stripe.checkout.session.completed.json"))
    payload["created"] = created
    status, body, _ = send(make_ingress(), "stripe", json.dumps(payload).encode())
    assert (status, body["error"], body["path"]) == (422, "invalid_payload", "created") and aws.drain() == []


def test_numbers_at_the_edges_of_the_range_are_accepted(aws):
    payload = json.loads(fixture_body("catalog.new_release.json"))
    payload["items"][0]["price"] = 9.9e125
    payload["items"][0]["weight_grams"] = 1e-130
    payload["items"][0]["revision"] = 2**63 - 1
    status, body, _ = send(make_ingress(), "catalog", json.dumps(payload).encode())
    assert status == 202, body


# --- unsigned delivery ids: the signed content is the delivery -------------------------------
def github_headers(body: bytes, delivery: str, event: str = "push") -> dict:
    return {**signing.sign_github(SECRETS["github"], body), "X-GitHub-Delivery": delivery, "X-GitHub-Event": event}


def test_a_captured_github_delivery_reposted_under_a_new_id_is_a_duplicate(aws):
    body = fixture_body("github.push.json")
    ingress = make_ingress()
    status, first, _ = send(ingress, "github", body, github_headers(body, "11111111-0000-0000-0000-000000000001"))
    assert status == 202
    replayed = send(ingress, "github", body, github_headers(body, "22222222-0000-0000-0000-000000000002"))
    assert replayed[:2] == (200, {**first, "status": "duplicate"})
    assert len(aws.drain()) == 1, "one set of events for one signed body"


def test_signed_delivery_ids_are_still_the_claim_for_other_sources(aws):
    body = fixture_body("reviews.submitted.json")
    assert send(make_ingress(), "reviews", body, signed_headers("reviews", body, msg_id="msg_a"))[0] == 202
    # The same body under another signed id is another delivery: the partner signed both.
    assert send(make_ingress(), "reviews", body, signed_headers("reviews", body, msg_id="msg_b"))[0] == 202


def test_one_delivery_id_from_two_sources_is_two_deliveries(aws):
    """Reviews and the catalog both sign Standard Webhooks msg_... ids: the same id from two partners
    is two deliveries, each accepted and published, never one partner's duplicate of the other's."""
    ingress = make_ingress()
    review, catalog = fixture_body("reviews.submitted.json"), fixture_body("catalog.new_release.json")
    first = send(ingress, "reviews", review, signed_headers("reviews", review, msg_id="msg_shared"))
    second = send(ingress, "catalog", catalog, signed_headers("catalog", catalog, msg_id="msg_shared"))
    assert (first[0], first[1]["source"], second[0], second[1]["source"]) == (202, "reviews", 202, "catalog")
    assert {e["source"] for e in aws.drain()} == {"mangaassist.reviews", "mangaassist.catalog"}
    assert len(boto3.client("dynamodb").scan(TableName=TABLE)["Items"]) == 2  # a claim each
    # and each partner's retry is still its own duplicate
    again = send(ingress, "catalog", catalog, signed_headers("catalog", catalog, msg_id="msg_shared"))
    assert (again[0], again[1]["status"], again[1]["events"]) == (200, "duplicate", second[1]["events"])


@pytest.mark.parametrize("event", ["ping", "issues", "pull_request", "release"])
def test_an_x_github_event_that_contradicts_the_payload_is_422(aws, event):
    body = fixture_body("github.push.json")
    status, payload, _ = send(make_ingress(), "github", body, github_headers(body, "3" * 36, event))
    assert (status, payload["error"]) == (422, "event_mismatch") and event in payload["message"]
    assert aws.drain() == []


def test_a_ping_relabelled_as_another_event_is_422(aws):
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1, "hook": {"type": "Repository"}}).encode()
    assert send(make_ingress(), "github", body, github_headers(body, "4" * 36, "ping"))[0] == 202
    status, payload, _ = send(make_ingress(), "github", body + b" ", github_headers(body + b" ", "5" * 36, "star"))
    assert (status, payload["error"]) == (422, "event_mismatch")


def test_an_event_whose_shape_tells_nothing_keeps_its_name(aws):
    body = json.dumps({"action": "created", "starred_at": None}).encode()
    status, _, _ = send(make_ingress(), "github", body, github_headers(body, "6" * 36, "star"))
    assert status == 202 and aws.drain()[0]["detail"]["event"] == "star"


# --- anything at all: never a 5xx, never an exception -----------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

HEADER_VALUES = st.one_of(st.text(max_size=60),
                          st.sampled_from(["t=1,v1=00", "sha256=zz", "v1,AAAA", "v1a,@@", "1e99", ""]))
HEADERS = st.dictionaries(st.sampled_from(["stripe-signature", "x-hub-signature-256", "x-github-delivery", "webhook-id",
                                           "webhook-timestamp", "webhook-signature", "svix-id", "svix-signature",
                                           "content-type", "x-anything"]), HEADER_VALUES, max_size=5)
BODIES = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                   st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                                lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                                max_leaves=10).map(lambda v: json.dumps(v).encode()))


@pytest.mark.fuzz
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(source=st.sampled_from(["stripe", "github", "reviews", "catalog", "nope", ""]),
       method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]), headers=HEADERS, body=BODIES,
       base64_body=st.booleans(), sign_it=st.integers(0, 9))
def test_random_deliveries_never_get_a_5xx_or_an_exception(fuzz_ingress, source, method, headers, body, base64_body,
                                                           sign_it):
    if sign_it == 0 and source in SECRETS:  # one in ten correctly signed, so the deeper checks run too
        try:
            msg_id = "fuzz-" + hashlib.sha256(body).hexdigest()[:16]
            headers = {**headers, **signed_headers(source, body, msg_id=msg_id)}
        except UnicodeDecodeError:  # the Standard Webhooks signer takes text only
            pass
    event = url_event(source or "x", body, headers, method=method, base64_body=base64_body)
    if not source:
        event["rawPath"] = "/webhooks/"
    response = fuzz_ingress.handle(event, FakeContext())
    status, payload = answer(response)
    assert status < 500 and payload["error" if status >= 400 else "status"]


@pytest.fixture(scope="module")
def fuzz_ingress():
    """One ingress over moto for the whole fuzz run; every accepted payload really is published."""
    import os

    saved = dict(os.environ)
    os.environ["EVENT_BUS_NAME"] = BUS
    with mock_aws():
        create_resources()
        yield make_ingress()
    os.environ.clear()
    os.environ.update(saved)


# --- JSON the platform cannot keep: refused before anything is stored ------------------------
FIXTURES = {"stripe": "stripe.checkout.session.completed.json", "github": "github.push.json",
            "reviews": "reviews.submitted.json", "catalog": "catalog.new_release.json"}


def leaf_paths(value, path=()):
    """Every place in a document a value can be put: its keys and list items, and a new key per object."""
    if isinstance(value, dict):
        yield (*path, "injected")
        for key, item in value.items():
            yield (*path, key)
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index)
            yield from leaf_paths(item, (*path, index))


def put(document, path, value):
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return document


def dotted(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@pytest.fixture(scope="module")
def guarded_ingress(fuzz_ingress):
    """The fuzz run's ingress, and a way to see that a send stored, claimed and published nothing."""
    tap = BusTap()

    def kept() -> tuple[int, int, int]:
        objects = boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0)
        return objects, boto3.client("dynamodb").scan(TableName=TABLE)["Count"], len(tap.drain())

    def send_keeping_nothing(source: str, body: bytes) -> tuple[int, dict]:
        before = kept()
        status, payload, _ = send(fuzz_ingress, source, body)
        assert kept() == before[:2] + (0,), "nothing stored, claimed or published"
        return status, payload

    kept()
    return send_keeping_nothing


def nested(depth: int, shape: list[int]) -> object:
    value: object = 1
    for level in range(depth):
        value = [value] if shape[level % len(shape)] else {"n": value}
    return value


@pytest.mark.fuzz
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(source=st.sampled_from(sorted(FIXTURES)), depth=st.integers(65, 20_000),
       shape=st.lists(st.integers(0, 1), min_size=1, max_size=5), data=st.data())
def test_nesting_past_the_limit_is_400_naming_the_limit_and_nothing_is_kept(guarded_ingress, source, depth, shape,
                                                                            data):
    document = json.loads(fixture_body(FIXTURES[source]))
    path = data.draw(st.sampled_from(list(leaf_paths(document))))
    # json.dumps itself recurses: build the text of the deep value by hand.
    marker = "__deep__"
    text = json.dumps(put(document, path, marker)).replace(f'"{marker}"', json.dumps(nested(depth % 50, shape))
                                                             .replace("1", "[" * depth + "1" + "]" * depth, 1))
    status, payload = guarded_ingress(source, text.encode())
    assert (status, payload["error"]) == (400, "nesting_too_deep"), payload
    assert "the limit is 64" in payload["message"]


NOT_FINITE = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400"])
OUT_OF_RANGE = st.one_of(st.integers(2**63, 10**40).map(str), st.integers(-(10**40), -(2**63) - 1).map(str),
                         st.sampled_from(["1e200", "-3.5e130", "1e-200", "-2.2e-300", "1e126"]))


@pytest.mark.fuzz
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(source=st.sampled_from(sorted(FIXTURES)), number=st.one_of(NOT_FINITE, OUT_OF_RANGE), data=st.data())
def test_numbers_the_platform_cannot_keep_are_422_with_their_path_and_nothing_is_kept(guarded_ingress, source, number,
                                                                                     data):
    document = json.loads(fixture_body(FIXTURES[source]))
    path = data.draw(st.sampled_from(list(leaf_paths(document))))
    text = json.dumps(put(document, path, "__number__")).replace('"__number__"', number)
    status, payload = guarded_ingress(source, text.encode())
    assert (status, payload["error"], payload["path"]) == (422, "number_out_of_range", dotted(path)), payload





# --- the function as Lambda runs it: built from its settings on the first invocation -----------
def test_the_handler_builds_the_ingress_from_its_settings_and_accepts_a_delivery(platform_env, monkeypatch):
    import importlib.util

    from mangaassist import after_response

    sources = json.loads((ROOT / "terraform" / "wiring.json").read_text())["sources"]
    monkeypatch.setenv("WEBHOOK_SOURCES", json.dumps(sources))
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    # names of its own: an emulator test earlier in the session may have left moto's backends holding others
    platform_env.update(RAW_PAYLOADS_BUCKET="handler-raw-payloads", IDEMPOTENCY_TABLE="handler-idempotency")
    monkeypatch.setenv("RAW_PAYLOADS_BUCKET", platform_env["RAW_PAYLOADS_BUCKET"])
    monkeypatch.setenv("IDEMPOTENCY_TABLE", platform_env["IDEMPOTENCY_TABLE"])
    body = fixture_body("reviews.submitted.json")
    with mock_aws():
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        boto3.client("s3").create_bucket(Bucket=platform_env["RAW_PAYLOADS_BUCKET"],
                                         CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
        boto3.client("dynamodb").create_table(
            TableName=platform_env["IDEMPOTENCY_TABLE"], BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
        boto3.client("events").create_event_bus(Name=BUS)
        boto3.client("secretsmanager").create_secret(Name=platform_env["WEBHOOK_SECRET_PREFIX"] + "reviews",
                                                     SecretString=json.dumps({"secrets": [SECRETS["reviews"]]}))
        spec = importlib.util.spec_from_file_location("ingress_handler", ROOT / "functions" / "webhook_ingress" /
                                                      "handler.py")
        handler = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(handler)
        event = url_event("reviews", body, signed_headers("reviews", body, timestamp=time.time()))
        with after_response.Later() as later:
            status, answer_body = answer(handler.lambda_handler(event, FakeContext()))
        later.run()
        assert (status, answer_body["source"], answer_body["delivery_id"]) == (202, "reviews", "msg_0001")
        items = boto3.client("dynamodb").scan(TableName=platform_env["IDEMPOTENCY_TABLE"])["Items"]
        assert [item["status"]["S"] for item in items] == ["COMPLETED"]
        key = boto3.client("s3").list_objects_v2(Bucket=platform_env["RAW_PAYLOADS_BUCKET"])["Contents"][0]["Key"]
        assert key.startswith("reviews/")


# --- what the events say about when ------------------------------------------------------------
@pytest.fixture
def tokyo(monkeypatch):
    """A machine whose local time is not UTC: the events' times must not depend on it."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_event_times_are_the_signed_time_in_utc(aws, tokyo):
    signed_at = NOW - 60
    utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(signed_at))
    review = fixture_body("reviews.submitted.json")
    send(make_ingress(), "reviews", review, signed_headers("reviews", review, timestamp=signed_at))
    catalog = json.loads(fixture_body("catalog.new_release.json"))
    catalog["items"] = [{k: v for k, v in item.items() if k != "revision"} for item in catalog["items"]]
    body = json.dumps(catalog, ensure_ascii=False).encode()
    send(make_ingress(), "catalog", body, signed_headers("catalog", body, timestamp=signed_at, msg_id="msg_cat"))
    details = {e["detail-type"]: e["detail"] for e in aws.drain()}
    assert details["ReviewSubmitted"]["submitted_at"] == utc
    assert details["CatalogUpdate.new_release"]["revision"] == signed_at


def test_a_delivery_with_no_events_publishes_nothing_at_all(aws):
    payload = {**json.loads(fixture_body("stripe.checkout.session.completed.json")), "type": "customer.created"}
    calls = []
    ingress = make_ingress(publisher=lambda events: calls.append(events) or [])
    assert send(ingress, "stripe", json.dumps(payload).encode())[0] == 202 and calls == []


# --- what the pipeline hands on, keeps and counts ---------------------------------------------
def test_the_mapper_is_handed_the_source_the_id_the_event_header_and_both_times_in_utc(aws, monkeypatch):
    from mangaassist.webhooks import mapping

    handed = []
    for name in ("github", "reviews"):
        real = mapping.MAPPERS[name]
        monkeypatch.setitem(mapping.MAPPERS, name, lambda payload, delivery, real=real: handed.append(delivery)
                            or real(payload, delivery))
    push, review = fixture_body("github.push.json"), fixture_body("reviews.submitted.json")
    assert send(make_ingress(), "github", push)[0] == 202
    assert send(make_ingress(), "reviews", review, signed_headers("reviews", review, timestamp=NOW - 60))[0] == 202
    received = datetime.fromtimestamp(NOW, UTC)
    # GitHub signs no timestamp; of its headers, only the (unsigned) event name is handed on
    assert handed == [mapping.Delivery("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958", {"x-github-event": "push"},
                                       received, None),
                      mapping.Delivery("reviews", "msg_0001", {}, received, int(NOW - 60))]
    assert all(delivery.received_at.utcoffset() == timedelta(0) for delivery in handed)


def test_the_raw_body_s_key_is_source_day_delivery_and_body_hash_and_the_object_is_json(aws):
    body = fixture_body("stripe.checkout.session.completed.json")
    send(make_ingress(), "stripe", body)
    (obj,) = boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    day = time.strftime("%Y/%m/%d", time.gmtime(NOW))
    assert obj["Key"] == f"stripe/{day}/evt_1QmangaCheckout0001/{hashlib.sha256(body).hexdigest()[:16]}.json"
    head = boto3.client("s3").head_object(Bucket=BUCKET, Key=obj["Key"])
    assert (head["ContentType"], head["ServerSideEncryption"]) == ("application/json", "AES256")
    assert head["Metadata"] == {"delivery-id": "evt_1QmangaCheckout0001", "source": "stripe"}


def test_the_raw_body_is_filed_under_its_utc_day_whatever_the_machine_s_zone(aws, tokyo):
    late = 1795910400.0 - 3600  # 23:00 UTC on 28 November 2026, already the 29th in Tokyo
    body = fixture_body("reviews.submitted.json")
    headers = signed_headers("reviews", body, timestamp=late)
    status, _, _ = send(make_ingress(clock=lambda: late), "reviews", body, headers)
    assert status == 202
    (obj,) = boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    assert obj["Key"].startswith("reviews/2026/11/28/msg_0001/")


def test_every_answer_is_counted_by_source_with_the_refusal_s_error_code(aws, monkeypatch):
    from mangaassist import metrics

    counted = []
    monkeypatch.setattr(metrics, "webhook_answered", lambda *answered: counted.append(answered))
    ingress, body = make_ingress(), fixture_body("reviews.submitted.json")
    send(ingress, "reviews", body)
    send(ingress, "reviews", body)
    send(ingress, "reviews", body, {})
    answer(ingress.handle(url_event("paypal", b"{}", {})))
    assert counted == [("reviews", 202, None), ("reviews", 200, None), ("reviews", 401, "missing_signature"),
                       (None, 404, "unknown_source")]


def test_an_event_without_a_raw_path_is_routed_by_its_request_context_path(aws):
    body = fixture_body("reviews.submitted.json")
    event = url_event("reviews", body, signed_headers("reviews", body))
    del event["rawPath"]
    assert answer(make_ingress().handle(event, FakeContext()))[0] == 202


def test_an_in_progress_claim_lapses_at_the_invocation_s_deadline(aws):
    from mangaassist import after_response

    ingress, body = make_ingress(), fixture_body("stripe.checkout.session.completed.json")
    handler = after_response.handler(ingress.handle)
    before = time.time()
    with after_response.Later():  # the completion waits for after the answer: the claim stays in progress
        assert answer(handler(url_event("stripe", body, signed_headers("stripe", body)), FakeContext()))[0] == 202
    (item,) = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    remaining = FakeContext().get_remaining_time_in_millis() / 1000
    assert before + remaining - 1 <= int(item["in_progress_expiration"]["N"]) / 1000 <= time.time() + remaining


def test_an_event_with_no_method_is_405_not_an_exception(aws):
    event = url_event("stripe", b"{}", {})
    del event["requestContext"]["http"]["method"]
    response = make_ingress().handle(event)
    assert answer(response) == (405, {"error": "method_not_allowed", "message": "webhooks are delivered with POST"})
    assert response["headers"]["allow"] == "POST"


def test_a_delivery_signed_only_with_ed25519_is_verified_with_the_source_s_public_keys(aws):
    from nacl.signing import SigningKey

    key = SigningKey(bytes(range(32)))
    public = bytes(key.verify_key)
    private = "whsk_" + base64.b64encode(bytes(range(32)) + public).decode()
    keys = lambda source: Keys((SECRETS[source],), ("whpk_" + base64.b64encode(public).decode(),))  # noqa: E731
    body = fixture_body("reviews.submitted.json")
    headers = signing.sign_standard(private, body, msg_id="msg_0001", timestamp=int(NOW))
    assert headers["webhook-signature"].startswith("v1a,") and " " not in headers["webhook-signature"]
    status, payload, _ = send(make_ingress(keys=keys), "reviews", body, headers)
    assert (status, payload["delivery_id"]) == (202, "msg_0001")
    assert len(aws.drain()) == 1


def test_the_timestamp_window_is_the_source_s_own_tolerance(aws):
    from dataclasses import replace

    sources = {**SOURCES, "reviews": replace(SOURCES["reviews"], tolerance_seconds=600)}
    ingress = Ingress(sources, webhook_settings(), keys=lambda source: Keys((SECRETS[source],)), clock=lambda: NOW)
    body = fixture_body("reviews.submitted.json")
    for skew, msg_id in [(-500, "msg_past"), (500, "msg_future")]:  # outside the default 300 s, inside 600 s
        headers = signed_headers("reviews", body, timestamp=NOW + skew, msg_id=msg_id)
        assert send(ingress, "reviews", body, headers)[0] == 202
    for skew in (-601, 601):
        status, payload, _ = send(ingress, "reviews", body, signed_headers("reviews", body, timestamp=NOW + skew))
        assert (status, payload["error"]) == (401, "timestamp_out_of_window")


def test_the_claim_is_made_with_the_platform_s_dynamodb_client(aws, monkeypatch):
    from botocore.config import Config

    from mangaassist import clients

    built = []

    def client(service, profile="default", endpoint_url=None):
        built.append((service, profile))
        made = boto3.client(service, config=Config(**clients.PROFILES[profile]), endpoint_url=endpoint_url)
        if service == "dynamodb":  # the claim fails only if it is made with this client
            def broken(**_):
                raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "PutItem")

            made.put_item = broken
        return made

    monkeypatch.setattr(clients, "client", client)
    status, payload, _ = send(make_ingress(), "stripe", fixture_body("stripe.checkout.session.completed.json"))
    assert (status, payload["error"]) == (503, "unavailable")
    assert ("dynamodb", "default") in built and aws.drain() == []

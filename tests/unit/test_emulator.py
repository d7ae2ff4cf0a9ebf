"""The embedded emulator: the in-process transport answers exactly as the port does."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import pytest_socket
from botocore.exceptions import ClientError
from moto.moto_api._internal.models import moto_api_backend

from embedded.aws import Emulator

ROOT = Path(__file__).resolve().parents[2]
BUS = "emulator-test-bus"
REGION = "ap-northeast-1"


@pytest.fixture
def emulator(monkeypatch):
    moto_api_backend.reset()  # moto's state is per process, not per emulator
    published: list[dict] = []
    emulator = Emulator(BUS, published.extend, in_process=True).start()
    for key, value in {"AWS_ENDPOINT_URL": emulator.endpoint_url, "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    emulator.published = published
    yield emulator
    emulator.stop()


def session() -> boto3.session.Session:
    return boto3.session.Session(region_name=REGION)  # a new session picks up the transport


def test_in_process_calls_never_open_a_socket(emulator):
    s3 = session().client("s3")
    pytest_socket.disable_socket()  # not even loopback, from here on
    try:
        s3.create_bucket(Bucket="no-socket", CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket="no-socket", Key="k", Body=b"x")
        assert s3.get_object(Bucket="no-socket", Key="k")["Body"].read() == b"x"
    finally:
        pytest_socket.enable_socket()


@pytest.mark.parametrize("key", ["plain.json", "a b/c+d=e&f.json", "日本語/漫画 #1.json", "percent%2Fslash"])
def test_s3_keys_and_binary_bodies_round_trip_in_process_and_over_the_port(emulator, key):
    inside = session().client("s3")
    body = bytes(range(256)) * 3
    pytest_socket.disable_socket()  # all of this in-process, none of it over the port
    try:
        inside.create_bucket(Bucket="round-trip", CreateBucketConfiguration={"LocationConstraint": REGION})
        inside.put_object(Bucket="round-trip", Key=key, Body=body, ServerSideEncryption="AES256",
                          Metadata={"delivery-id": "d1", "partner_ref": "p_1"})
        got = inside.get_object(Bucket="round-trip", Key=key)
        assert got["Body"].read() == body and got["Metadata"] == {"delivery-id": "d1", "partner_ref": "p_1"}
        assert got["ServerSideEncryption"] == "AES256" and got["ContentType"] == "binary/octet-stream"
        assert inside.head_object(Bucket="round-trip", Key=key)["ContentLength"] == len(body)  # HEAD keeps its length
        assert [o["Key"] for o in inside.list_objects_v2(Bucket="round-trip")["Contents"]] == [key]
    finally:
        pytest_socket.enable_socket()
    # The same object through the port, as ops.py or the AWS CLI would see it.
    emulator.stop_in_process()
    outside = session().client("s3")
    over_the_port = outside.get_object(Bucket="round-trip", Key=key)
    assert over_the_port["Body"].read() == body and over_the_port["Metadata"] == got["Metadata"]


def test_errors_come_back_as_the_service_error(emulator):
    ddb = session().client("dynamodb")
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    ddb.put_item(TableName="t", Item={"id": {"S": "a"}}, ConditionExpression="attribute_not_exists(id)")
    with pytest.raises(ClientError) as caught:
        ddb.put_item(TableName="t", Item={"id": {"S": "a"}}, ConditionExpression="attribute_not_exists(id)")
    assert caught.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    with pytest.raises(ClientError) as caught:
        session().client("s3").get_object(Bucket="no-such-bucket", Key="k")
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"


def test_put_events_in_process_reaches_the_tap_as_delivered_envelopes(emulator):
    events = session().client("events")
    events.create_event_bus(Name=BUS)
    answer = events.put_events(Entries=[
        {"EventBusName": BUS, "Source": "mangaassist.test", "DetailType": "Ping", "Detail": json.dumps({"n": 1})},
        {"EventBusName": "default", "Source": "mangaassist.test", "DetailType": "Elsewhere", "Detail": "{}"},
    ])
    assert answer["FailedEntryCount"] == 0
    assert [(e["id"], e["detail-type"], e["detail"], e["region"]) for e in emulator.published] == [
        (answer["Entries"][0]["EventId"], "Ping", {"n": 1}, REGION)]


def test_sqs_messages_and_attributes_survive_the_transport(emulator):
    sqs = session().client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="こんにちは", MessageAttributes={
        "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"}})
    message = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"][0]
    assert message["Body"] == "こんにちは"
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "SDK_CLIENT_ERROR"
    assert int(message["Attributes"]["ApproximateReceiveCount"]) == 1


def test_the_emulator_process_answers_through_its_socket_and_returns_put_events(monkeypatch, tmp_path):
    from embedded.emulator_process import EmulatorProcess

    published: list[dict] = []
    arrived = threading.Event()
    emulator = EmulatorProcess(BUS, lambda events: (published.extend(events), arrived.set())).start()
    try:
        for key, value in {"AWS_ENDPOINT_URL": emulator.endpoint_url, "AWS_ACCESS_KEY_ID": "test",
                           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}.items():
            monkeypatch.setenv(key, value)
        s3 = session().client("s3")
        s3.create_bucket(Bucket="child", CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket="child", Key="日本語 key", Body=b"\x00\xff" * 100, Metadata={"partner_ref": "p"})
        events = session().client("events")
        events.create_event_bus(Name=BUS)
        answer = events.put_events(Entries=[{"EventBusName": BUS, "Source": "mangaassist.test", "DetailType": "Ping",
                                             "Detail": "{}"}])
        assert arrived.wait(10) and published[0]["id"] == answer["Entries"][0]["EventId"]
        # The port serves the same state, for clients in other processes.
        emulator.stop_in_process()
        got = session().client("s3").get_object(Bucket="child", Key="日本語 key")
        assert got["Body"].read() == b"\x00\xff" * 100 and got["Metadata"] == {"partner_ref": "p"}
    finally:
        emulator.stop()
    assert not emulator.is_alive() and not socket_files()
    emulator.stop()  # stopping twice is harmless


def test_a_failing_event_handler_does_not_stop_later_events_or_stall_calls(monkeypatch):
    from embedded.emulator_process import EmulatorProcess

    published: list[str] = []
    arrived = threading.Event()

    def on_events(events: list[dict]) -> None:
        if events[0]["detail-type"] == "Poison":
            raise RuntimeError("the router broke on this batch")
        published.extend(e["detail-type"] for e in events)
        arrived.set()

    emulator = EmulatorProcess(BUS, on_events).start()
    try:
        for key, value in {"AWS_ENDPOINT_URL": emulator.endpoint_url, "AWS_ACCESS_KEY_ID": "test",
                           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}.items():
            monkeypatch.setenv(key, value)
        events = session().client("events")
        events.create_event_bus(Name=BUS)
        with pytest.raises(ClientError, match="InternalFailure"):  # not accepted: the caller retries or says 503
            events.put_events(Entries=[{"EventBusName": BUS, "Source": "mangaassist.test", "DetailType": "Poison",
                                        "Detail": "{}"}])
        events.put_events(Entries=[{"EventBusName": BUS, "Source": "mangaassist.test", "DetailType": "Ping",
                                    "Detail": "{}"}])
        assert arrived.wait(10) and published == ["Ping"]
        assert events.list_event_buses()["EventBuses"]  # and calls still answer
    finally:
        emulator.stop()


def test_the_emulator_process_exits_when_its_parent_is_gone(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        f"sys.path[:0] = {[str(ROOT / 'scripts'), str(ROOT / 'layers' / 'shared' / 'python')]!r}\n"
        "from embedded.emulator_process import PER_SERVICE, EmulatorProcess\n"
        "if __name__ == '__main__':\n"
        "    emulator = EmulatorProcess('bus', lambda events: None, shards=PER_SERVICE).start()\n"
        "    print(os.getpid(), *emulator.pids, flush=True)\n"
        "    os._exit(0)  # no stop(): as if the stack was killed\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    parent, *children = done.stdout.split()
    assert len(children) == 3  # main, S3, DynamoDB

    def leftovers() -> list:
        return [pid for pid in children if _running(int(pid))] + socket_files(int(parent))

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and leftovers():
        time.sleep(0.1)
    assert not leftovers()  # all gone, and tidied up after themselves


def socket_files(pid: int | None = None) -> list[str]:
    """The socket folders of the stack process ``pid`` (this one by default): on Linux sockets are
    in the abstract namespace, so there are none, even after a kill."""
    import tempfile

    return [p.name for p in Path(tempfile.gettempdir()).glob(f"mangaassist-emulator-{pid or os.getpid()}-*")]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone too
        return stat.read().split(") ", 1)[1][0] != "Z"


def test_queue_counts_follow_visibility_and_delay(emulator):
    sqs = session().client("sqs")
    url = sqs.create_queue(QueueName="counts")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="now")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    sqs.send_message(QueueUrl=url, MessageBody="taken")

    def counts() -> tuple[int, int, int]:
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return (int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesDelayed"]),
                int(a["ApproximateNumberOfMessagesNotVisible"]))

    assert counts() == (2, 1, 0)
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)["Messages"]
    assert len(received) == 1 and counts() == (1, 1, 1)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"], VisibilityTimeout=0)
    time.sleep(0.01)
    assert counts() == (2, 1, 0)


def test_messages_past_their_queues_retention_are_not_received(emulator):
    from moto.sqs.models import sqs_backends

    sqs = session().client("sqs")
    url = sqs.create_queue(QueueName="retained", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="new")
    sqs.send_message(QueueUrl=url, MessageBody="old")  # moto stops a receive at its first expired message
    queue = sqs_backends["123456789012"][REGION].get_queue("retained")
    old = next(m for m in queue._messages if m.body == "old")
    old.sent_timestamp -= 61_000  # sent 61 s ago: past the 60 s retention
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert bodies == ["new"]


def test_requests_to_the_emulator_carry_a_credential_scope_and_others_a_real_signature(emulator):
    import botocore.auth
    from botocore.awsrequest import AWSRequest, AWSResponse

    sent = []

    def capture(request, **_):
        sent.append(request)
        if not request.url.startswith(emulator.endpoint_url):  # a canned answer: no network in tests
            return AWSResponse(request.url, 200, {}, type("Raw", (), {"stream": lambda *a, **k: iter([b"{}"])})())

    local, remote = (session().client("dynamodb", endpoint_url=url)
                     for url in (None, "https://dynamodb.example.invalid"))
    for client in (local, remote):
        client.meta.events.register_first("before-send.dynamodb", capture)
        client.list_tables()
    (here, there) = sent
    day = here.headers["X-Amz-Date"].decode()[:8]
    assert here.headers["Authorization"].decode() == (
        f"AWS4-HMAC-SHA256 Credential=test/{day}/{REGION}/dynamodb/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}")  # all moto reads: who, where, which service

    # Anywhere else the request is signed exactly as botocore's own SigV4 signs it.
    signer = botocore.auth.SigV4Auth(session().get_credentials(), "dynamodb", REGION)
    authorization = there.headers["Authorization"].decode()
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    resign = AWSRequest(there.method, there.url, data=there.body,
                        headers={k: v.decode() for k, v in there.headers.items() if k.lower() in signed})
    resign.context["timestamp"] = there.headers["X-Amz-Date"].decode()
    expected = signer.signature(signer.string_to_sign(resign, signer.canonical_request(resign)), resign)
    assert authorization.endswith(f"Signature={expected}") and expected != "0" * 64

    emulator.stop_in_process()  # with no transport left, botocore's signers are back
    assert botocore.auth.AUTH_TYPE_MAPS["v4"] is botocore.auth.SigV4Auth
    assert botocore.auth.AUTH_TYPE_MAPS["s3v4"] is botocore.auth.S3SigV4Auth


@pytest.mark.parametrize("authorization, query, service", [
    ("AWS4-HMAC-SHA256 Credential=AKID/20261201/ap-northeast-1/dynamodb/aws4_request, SignedHeaders=host, "
     "Signature=ab", "", "dynamodb"),
    ("AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=ab", "", "s3"),
    (None, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261201%2Fap-northeast-1%2Fs3%2Faws4_request"
           "&X-Amz-Signature=ab", "s3"),  # a presigned URL
    ("AWS AKID:signature", "", "s3"), (None, "AWSAccessKeyId=AKID&Signature=ab&Expires=1", "s3"),  # SigV2: S3 only
    (None, "", None), ("", "list-type=2", None),  # unsigned
    ("AWS4-HMAC-SHA256 Credential=broken", "X-Amz-Credential=%zz", None),
])
def test_the_signing_service_is_read_from_the_credential_scope(authorization, query, service):
    from embedded.emulator_process import signing_service

    assert signing_service(authorization, query) == service


def test_s3_and_dynamodb_live_in_children_of_their_own_and_the_port_reaches_each(monkeypatch):
    import requests
    from botocore.config import Config

    from embedded.emulator_process import PER_SERVICE, EmulatorProcess

    emulator = EmulatorProcess(BUS, lambda events: None, shards=PER_SERVICE).start()
    try:
        assert len(set(emulator.pids)) == 3
        for key, value in {"AWS_ENDPOINT_URL": emulator.endpoint_url, "AWS_ACCESS_KEY_ID": "test",
                           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}.items():
            monkeypatch.setenv(key, value)
        inside = session()
        inside.client("s3").create_bucket(Bucket="shards", CreateBucketConfiguration={"LocationConstraint": REGION})
        inside.client("s3").put_object(Bucket="shards", Key="a/b c.json", Body=b"{}")
        ddb = inside.client("dynamodb")
        ddb.create_table(TableName="claims", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
        ddb.put_item(TableName="claims", Item={"id": {"S": "d1"}})
        inside.client("sqs").create_queue(QueueName="main-child")

        emulator.stop_in_process()  # from here on, as another process would: through the one port
        outside = session()
        assert outside.client("dynamodb").get_item(TableName="claims", Key={"id": {"S": "d1"}})["Item"]
        with pytest.raises(ClientError) as taken:  # conditional writes still answer as DynamoDB does
            outside.client("dynamodb").put_item(TableName="claims", Item={"id": {"S": "d1"}},
                                                ConditionExpression="attribute_not_exists(id)")
        assert taken.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
        assert [q.rsplit("/", 1)[1] for q in outside.client("sqs").list_queues()["QueueUrls"]] == ["main-child"]
        for version in ("s3v4", None):  # presigned URLs: the scope (or SigV2's key) is in the query
            s3 = outside.client("s3", config=Config(signature_version=version))
            url = s3.generate_presigned_url("get_object", Params={"Bucket": "shards", "Key": "a/b c.json"})
            assert requests.get(url, timeout=10).content == b"{}", url
        # Each service's state is in its own child: the main child has no such bucket or table.
        head = outside.client("s3").head_object(Bucket="shards", Key="a/b c.json")
        assert head["ContentLength"] == 2  # HEAD: no body
        assert outside.client("s3").list_buckets()["Buckets"][0]["Name"] == "shards"
        assert outside.client("dynamodb").list_tables()["TableNames"] == ["claims"]
    finally:
        emulator.stop()
    assert not emulator.is_alive() and not socket_files()


def test_the_emulator_process_answers_each_caller_its_own_reply_while_a_long_poll_waits(monkeypatch):
    """One loop answers every connection; an SQS long poll is answered apart, so it never holds
    up the others, and gets the message sent while it waits."""
    from embedded.emulator_process import EmulatorProcess

    emulator = EmulatorProcess(BUS, lambda events: None).start()
    try:
        for key, value in {"AWS_ENDPOINT_URL": emulator.endpoint_url, "AWS_ACCESS_KEY_ID": "test",
                           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}.items():
            monkeypatch.setenv(key, value)
        sqs = session().client("sqs")
        url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
        polled: list[dict] = []
        poller = threading.Thread(target=lambda: polled.extend(session().client("sqs").receive_message(
            QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])))
        started = time.monotonic()
        poller.start()

        s3 = session().client("s3")
        s3.create_bucket(Bucket="callers", CreateBucketConfiguration={"LocationConstraint": REGION})
        mixed: list[str] = []

        def caller(n: int) -> None:
            client = session().client("s3")
            for i in range(15):
                key = f"caller-{n}/{i}"
                client.put_object(Bucket="callers", Key=key, Body=key.encode())
                if client.get_object(Bucket="callers", Key=key)["Body"].read() != key.encode():
                    mixed.append(key)

        callers = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
        for thread in callers:
            thread.start()
        for thread in callers:
            thread.join(30)
        assert not mixed and s3.list_objects_v2(Bucket="callers")["KeyCount"] == 90
        assert poller.is_alive()  # still waiting: the calls above went past it
        sqs.send_message(QueueUrl=url, MessageBody="late")
        poller.join(15)
        assert [m["Body"] for m in polled] == ["late"] and time.monotonic() - started < 10

        # A client that goes away leaves the loop serving the rest.
        emulator._main.connections.close()
        assert session().client("sqs").get_queue_url(QueueName="long-poll")["QueueUrl"] == url
    finally:
        emulator.stop()


def test_the_transport_hands_botocore_headers_as_urllib3_would():
    from botocore.awsrequest import AWSRequest

    from embedded.aws import InProcessTransport

    answer = (200, [("x-amz-meta-a", "1"), ("X-Amz-Meta-A", "2"), ("Content-Type", "text/plain")], b"hi")
    transport = InProcessTransport(lambda method, url, headers, body: answer, "http://127.0.0.1:1")
    response = transport(AWSRequest(method="GET", url="http://127.0.0.1:1/x").prepare())
    assert response.status_code == 200 and response.content == b"hi"
    assert response.headers["X-AMZ-META-A"] == "1, 2" and response.headers["content-type"] == "text/plain"
    assert transport(AWSRequest(method="GET", url="http://127.0.0.1:2/x").prepare()) is None  # not the emulator's


def test_the_transport_installs_once_and_uninstalling_puts_botocore_s_tables_back():
    import botocore.auth
    import botocore.handlers

    from embedded.aws import InProcessTransport

    handlers, signers = list(botocore.handlers.BUILTIN_HANDLERS), dict(botocore.auth.AUTH_TYPE_MAPS)
    first, second = (InProcessTransport(lambda *call: (200, [], b""), f"http://127.0.0.1:{port}") for port in (1, 2))
    try:
        for transport in (first, first, second):  # installing twice is installing once
            transport.install()
        assert len(botocore.handlers.BUILTIN_HANDLERS) == len(handlers) + 2
        first.uninstall()
        assert botocore.auth.AUTH_TYPE_MAPS != signers  # the second still skips SigV4's hashing
    finally:
        first.uninstall()
        second.uninstall()
    assert botocore.handlers.BUILTIN_HANDLERS == handlers and botocore.auth.AUTH_TYPE_MAPS == signers

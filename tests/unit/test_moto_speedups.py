"""scripts/embedded/moto_speedups.py: the contract (moto's release, each patch's fingerprints,
apply() and restore()) and every patch against stock moto's own answers to the same requests."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.moto_api._internal import mock_random
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from embedded import moto_speedups
from embedded.aws import DirectDispatch, InProcessTransport, PutEventsTap, call_app

ROOT = Path(__file__).resolve().parents[2]
REGION = "ap-northeast-1"
ACCOUNT = "123456789012"
BUS = "speedups-bus"
ENDPOINT = "http://127.0.0.1:9"  # never connected to: each client's own before-send hook answers
PATCH_NAMES = [patch.name for patch in moto_speedups.PATCHES]
CLAIM = "attribute_not_exists(#id) OR (#status = :inprogress AND #expiry < :now)"
CLAIM_NAMES = {"#id": "id", "#status": "status", "#expiry": "expiry"}


@contextlib.contextmanager
def patched(*names: str):
    """The named patches (every one by default) applied, then moto's own functions back."""
    warnings: list[str] = []
    try:
        applied = moto_speedups.apply(only=names or None, warn=warnings.append)
        assert not warnings and applied == list(names or PATCH_NAMES)
        yield
    finally:
        moto_speedups.restore()


@pytest.fixture
def speedups():
    with patched():
        yield


# --- the contract --------------------------------------------------------------------------------

def test_every_point_a_patch_sets_is_fingerprinted_and_matches_the_installed_moto():
    assert len(set(PATCH_NAMES)) == len(PATCH_NAMES)
    for patch in moto_speedups.PATCHES:
        assert set(patch.sets) <= set(patch.fingerprints), patch.name
        assert patch.why, patch.name
        for path, expected in patch.fingerprints.items():
            # Failing after a moto upgrade is the point: read what changed, rerun this file, update them.
            assert moto_speedups.fingerprint(path) == expected, (patch.name, path)


def test_apply_and_restore_swap_moto_s_own_objects_and_nothing_else():
    stock = moto_speedups.points()
    with patched():
        applied = moto_speedups.points()
        assert all(applied[path] is not value for path, value in stock.items())
        assert moto_speedups.apply() == PATCH_NAMES  # a second apply changes nothing
        assert all(moto_speedups.points()[path] is value for path, value in applied.items())
    assert moto_speedups.applied() == []
    assert all(moto_speedups.points()[path] is value for path, value in stock.items())


def test_importing_the_emulator_leaves_moto_and_botocore_as_they_were():
    """Unit tests see stock moto whatever ran or was collected before them (the conftest also
    checks after every test); here a fresh interpreter imports every module of the stack."""
    paths = list(moto_speedups.points())
    script = textwrap.dedent(f"""
        import importlib, json
        import botocore.auth, botocore.handlers

        def raw(path):
            module, _, attributes = path.partition(":")
            owner = importlib.import_module(module)
            *parents, name = attributes.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            return vars(owner)[name]

        paths = {paths!r}
        before = {{path: raw(path) for path in paths}}
        handlers, signers = list(botocore.handlers.BUILTIN_HANDLERS), dict(botocore.auth.AUTH_TYPE_MAPS)
        for name in ("moto_speedups", "aws", "emulator_process", "router", "lambdas", "gateway", "stack"):
            importlib.import_module("embedded." + name)
        from embedded import moto_speedups
        print(json.dumps({{"changed": [path for path in paths if raw(path) is not before[path]],
                          "applied": moto_speedups.applied(),
                          "handlers": botocore.handlers.BUILTIN_HANDLERS == handlers,
                          "signers": botocore.auth.AUTH_TYPE_MAPS == signers}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"changed": [], "applied": [], "handlers": True, "signers": True}


def _changed_send_to_targets(self, original_event, transform_input=True):  # as if moto had rewritten it
    return None


@pytest.mark.parametrize("owner, attribute, replacement", [
    ("Rule", "send_to_targets", _changed_send_to_targets),  # the function the patch wraps
    ("EventPattern", "matches_event", lambda self, event: True),  # one its answers rely on
], ids=["wrapped", "relied-on"])
def test_a_changed_moto_function_skips_only_its_patch_with_one_warning_line(monkeypatch, owner, attribute,
                                                                             replacement):
    import moto.events.models

    monkeypatch.setattr(getattr(moto.events.models, owner), attribute, replacement)
    warnings: list[str] = []
    try:
        applied = moto_speedups.apply(warn=warnings.append)
        assert applied == [name for name in PATCH_NAMES if name != "events.untargeted_rules"]
        assert warnings == [f"moto_speedups: events.untargeted_rules skipped, stock moto for it: "
                            f"moto.events.models:{owner}.{attribute} differs from moto 5.2.5's"]
        assert vars(getattr(moto.events.models, owner))[attribute] is replacement  # untouched
    finally:
        moto_speedups.restore()


def test_another_moto_release_gets_no_patch_and_one_warning_line(monkeypatch):
    import moto

    stock = moto_speedups.points()
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    warnings: list[str] = []
    assert moto_speedups.apply(warn=warnings.append) == []
    assert warnings == ["moto_speedups: moto 5.3.0 is installed, the patches were written for 5.2.5: "
                        "none applied, stock moto throughout"]
    assert moto_speedups.points() == stock


@pytest.mark.parametrize("release", ["installed", "other"])
def test_the_emulator_process_serves_on_another_moto_release_after_one_warning_line(tmp_path, release):
    """The stack's emulator process, as `make run` starts it: with another moto release it warns
    once and serves every call on stock moto; with the installed one it says nothing."""
    script = tmp_path / "emulator.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path[:0] = {[str(ROOT / "scripts"), str(ROOT / "layers" / "shared" / "python")]!r}
        import moto
        if sys.argv[1] == "other":  # here, and in the emulator process too: it runs this file as __mp_main__
            moto.__version__ = "5.3.0"

        if __name__ == "__main__":
            import json, threading
            import boto3
            from botocore.exceptions import ClientError
            from embedded.emulator_process import EmulatorProcess

            published, arrived = [], threading.Event()
            emulator = EmulatorProcess("bus", lambda events: (published.extend(events), arrived.set())).start()
            try:
                aws = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="{REGION}")
                s3, ddb, sqs, events = (aws.client(name, endpoint_url=emulator.endpoint_url)
                                        for name in ("s3", "dynamodb", "sqs", "events"))
                s3.create_bucket(Bucket="raw", CreateBucketConfiguration={{"LocationConstraint": "{REGION}"}})
                s3.put_object(Bucket="raw", Key="k", Body=b"body")
                ddb.create_table(TableName="claims", BillingMode="PAY_PER_REQUEST",
                                 KeySchema=[{{"AttributeName": "id", "KeyType": "HASH"}}],
                                 AttributeDefinitions=[{{"AttributeName": "id", "AttributeType": "S"}}])
                claims = []
                for _ in range(2):
                    try:
                        ddb.put_item(TableName="claims", Item={{"id": {{"S": "d1"}}}},
                                     ConditionExpression="attribute_not_exists(id)")
                        claims.append("taken")
                    except ClientError as exc:
                        claims.append(exc.response["Error"]["Code"])
                url = sqs.create_queue(QueueName="q")["QueueUrl"]
                sqs.send_message(QueueUrl=url, MessageBody="hello")
                events.create_event_bus(Name="bus")
                answer = events.put_events(Entries=[{{"EventBusName": "bus", "Source": "s", "DetailType": "Ping",
                                                      "Detail": "{{}}"}}])
                print(json.dumps({{
                    "body": s3.get_object(Bucket="raw", Key="k")["Body"].read().decode(),
                    "claims": claims,
                    "received": [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]],
                    "tapped": arrived.wait(10) and published[0]["id"] == answer["Entries"][0]["EventId"],
                }}))
            finally:
                emulator.stop()
    """))
    done = subprocess.run([sys.executable, str(script), release], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"body": "body", "claims": ["taken", "ConditionalCheckFailedException"],
                                       "received": ["hello"], "tapped": True}
    warnings = [line for line in done.stderr.splitlines() if line.startswith("moto_speedups:")]
    assert warnings == ({"installed": [], "other": [
        "moto_speedups: moto 5.3.0 is installed, the patches were written for 5.2.5: none applied, "
        "stock moto throughout"]}[release]), done.stderr


def test_the_fingerprint_report_says_each_patch_holds(capsys):
    assert moto_speedups.main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["moto"] == report["written_for"] == moto_speedups.MOTO_VERSION
    assert list(report["patches"]) == PATCH_NAMES
    assert all(p["expected"] == p["installed"] for paths in report["patches"].values() for p in paths.values())


# --- every patch against stock moto: the same requests, the same answers and state ----------------

class Moto:
    """moto's server app as the emulator process answers the stack's calls (PutEventsTap,
    DirectDispatch, call_app), reached by clients whose requests never leave this process and
    never touch botocore's global handlers."""

    SERVICES = ("s3", "dynamodb", "sqs", "events", "secretsmanager")

    def __init__(self):
        dispatcher = DomainDispatcherApplication(create_backend_app)
        self.published: list[dict] = []
        self.app = PutEventsTap(dispatcher, BUS, self.published.extend, direct=DirectDispatch(dispatcher))
        transport = InProcessTransport(partial(call_app, self.app), ENDPOINT)
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
        once = Config(retries={"total_max_attempts": 1})  # a 500 is an answer to compare, never retried
        self.clients = {}
        for name in self.SERVICES:
            client = session.client(name, endpoint_url=ENDPOINT, config=once)
            client.meta.events.register_first("before-send", transport)
            self.clients[name] = client


TIMES = {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "CreatedTimestamp", "LastModifiedTimestamp", "time",
         "ingestion-time"}


UNSEEDED = {"VersionId", "VersionIdsToStages"}  # Secrets Manager's versions: uuid.uuid4(), not moto's seeded random


def stable(value, key: str | None = None):
    """An answer without what differs between two runs on stock moto too: clock readings, ids
    moto does not draw from its seeded random, and HTTP headers (dates)."""
    if key in TIMES or isinstance(value, datetime):
        return "<time>"
    if key in UNSEEDED:
        return "<unseeded id>"
    if key == "ResponseMetadata":
        return {k: value[k] for k in ("RequestId", "HTTPStatusCode") if k in value}
    if key == "Body" and isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        answer = {k: stable(v, k) for k, v in value.items()}
        if "MD5OfBody" in answer and "<time>" in json.dumps(answer.get("Body")):
            answer["MD5OfBody"] = "<digest of a time>"
        return answer
    if isinstance(value, (list, tuple)):
        return [stable(v) for v in value]
    return value


def workload(moto: Moto) -> list:
    """Requests touching every patched point, error cases included; returns every answer."""
    from moto.sqs.models import sqs_backends

    moto_api_backend.reset()
    mock_random.seed(2026)
    moto.published.clear()
    log: list = []

    def call(service: str, operation: str, **kwargs) -> dict:
        try:
            answer = getattr(moto.clients[service], operation)(**kwargs)
            if hasattr(answer.get("Body"), "read"):
                answer["Body"] = answer["Body"].read()
        except ClientError as exc:
            answer = {"Error": exc.response["Error"], "ResponseMetadata": exc.response["ResponseMetadata"]}
        log.append((service, operation, answer))
        return answer

    _s3(call)
    _dynamodb(call)
    _sqs(call, sqs_backends[ACCOUNT][REGION])
    _events(call)
    call("secretsmanager", "create_secret", Name="webhooks/github", SecretString='{"secrets": ["s"]}')
    call("secretsmanager", "describe_secret", SecretId="webhooks/github")
    call("secretsmanager", "get_secret_value", SecretId="webhooks/github")
    call("secretsmanager", "get_secret_value", SecretId="webhooks/none")
    # Ids no request above draws: moto's own calls, as its other services make them.
    log.append(("ids", mock_random.get_random_hex(), mock_random.get_random_hex(32),
                mock_random.get_random_string(12, include_digits=False, lower_case=True)))
    log.append(("tap", list(moto.published)))
    return stable(log)


def _s3(call) -> None:
    call("s3", "create_bucket", Bucket="raw", CreateBucketConfiguration={"LocationConstraint": REGION})
    for key in ("github/d1.json", "日本語/漫画 #1.json"):
        call("s3", "put_object", Bucket="raw", Key=key, Body=b'{"n": 1}', Metadata={"delivery-id": "d1"})
        call("s3", "get_object", Bucket="raw", Key=key)
        call("s3", "head_object", Bucket="raw", Key=key)
    call("s3", "list_objects_v2", Bucket="raw", Prefix="github/")
    call("s3", "get_object", Bucket="raw", Key="missing")
    call("s3", "get_object", Bucket="no-such-bucket", Key="k")
    call("s3", "list_buckets")


def _dynamodb(call) -> None:
    call("dynamodb", "create_table", TableName="t", BillingMode="PAY_PER_REQUEST",
         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])

    def claim(key: str, expiry: int, now: int, names: dict = CLAIM_NAMES, values: dict | None = None,
              expression: str = CLAIM) -> None:
        call("dynamodb", "put_item", TableName="t", ConditionExpression=expression, ExpressionAttributeNames=names,
             Item={"id": {"S": key}, "status": {"S": "INPROGRESS"}, "expiry": {"N": str(expiry)}},
             ExpressionAttributeValues=values or {":inprogress": {"S": "INPROGRESS"}, ":now": {"N": str(now)}})

    claim("a", 100, 50)
    claim("a", 100, 50)  # held: ConditionalCheckFailed
    claim("a", 300, 150)  # the same text, a later :now: the expired claim is taken over
    claim("b", 100, 10**9, names={"#id": "id", "#status": "holder", "#expiry": "expiry"})
    claim("b", 100, 10**9, names={"#id": "id", "#status": "holder", "#expiry": "expiry"})
    claim("c", 1, 1, values={":inprogress": {"S": "INPROGRESS"}})  # :now missing
    claim("c", 1, 1, names={"#id": "id"})  # names missing
    claim("c", 1, 1, expression="#id = :now AND")  # a syntax error
    claim("c", 1, 1, expression="size(#status) > :now OR begins_with(#id, :inprogress) OR #expiry IN (:now, :now)")
    call("dynamodb", "put_item", TableName="t", Item={"id": {"S": "d"}, "n": {"N": "1"}},
         ConditionExpression="status = :v", ExpressionAttributeValues={":v": {"S": "x"}})  # a reserved word
    call("dynamodb", "put_item", TableName="t", Item={"id": {"S": "e"}, "list": {"L": [{"N": "1"}]}},
         ConditionExpression="attribute_not_exists(id)")

    def update(expression: str, values: dict | None = None, names: dict | None = None, **kwargs) -> None:
        extra = {"ExpressionAttributeValues": values} if values else {}
        if names:
            extra["ExpressionAttributeNames"] = names
        call("dynamodb", "update_item", TableName="t", Key={"id": {"S": "u"}}, UpdateExpression=expression,
             ReturnValues="ALL_NEW", **extra, **kwargs)

    counters = "SET #s = :s, tags = list_append(if_not_exists(tags, :empty), :tag) ADD hits :one"
    for n, tag in ((1, "x"), (2, "y")):  # one tree for both: each call's own values
        update(counters, {":s": {"S": tag}, ":empty": {"L": []}, ":tag": {"L": [{"S": tag}]}, ":one": {"N": str(n)}},
               {"#s": "status"})
    update("SET nested = :m", {":m": {"M": {"a": {"N": "1"}}}})
    update("SET nested.a = nested.a + :one", {":one": {"N": "4"}})
    update("REMOVE hits")
    update("SET a = :v SET b = :v", {":v": {"S": "x"}})
    update("SET id = :v", {":v": {"S": "x"}})
    update("SET a = :v, b = :missing", {":v": {"S": "x"}})
    update("SET a = = :v", {":v": {"S": "x"}})
    update("SET a = :v", {":v": {"S": "y"}, ":no": {"S": "n"}}, ConditionExpression="a = :no")
    call("dynamodb", "transact_write_items", TransactItems=[
        {"Update": {"TableName": "t", "Key": {"id": {"S": "u"}}, "UpdateExpression": "ADD hits :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"ConditionCheck": {"TableName": "t", "Key": {"id": {"S": "a"}}, "ConditionExpression": "#s = :done",
                            "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": {":done": {"S": "COMPLETED"}}}}])
    call("dynamodb", "transact_write_items", TransactItems=[
        {"Update": {"TableName": "t", "Key": {"id": {"S": "u"}}, "UpdateExpression": "ADD hits :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
    call("dynamodb", "get_item", TableName="t", Key={"id": {"S": "u"}})
    call("dynamodb", "query", TableName="t", KeyConditionExpression="id = :a",
         ExpressionAttributeValues={":a": {"S": "a"}})
    call("dynamodb", "scan", TableName="t", FilterExpression="#s = :s OR attribute_exists(#l)",
         ExpressionAttributeNames={"#s": "status", "#l": "list"}, ExpressionAttributeValues={":s": {"S": "INPROGRESS"}})
    call("dynamodb", "describe_table", TableName="t")


def _sqs(call, backend) -> None:
    url = call("sqs", "create_queue", QueueName="work", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]

    def counts() -> None:
        call("sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=["All"])

    call("sqs", "send_message", QueueUrl=url, MessageBody="now",
         MessageAttributes={"ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"}})
    call("sqs", "send_message", QueueUrl=url, MessageBody="later", DelaySeconds=60)
    call("sqs", "send_message_batch", QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"b{n}"} for n in range(3)])
    counts()
    taken = call("sqs", "receive_message", QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60,
                 AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
    counts()
    call("sqs", "change_message_visibility", QueueUrl=url, ReceiptHandle=taken[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = call("sqs", "receive_message", QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    counts()
    call("sqs", "delete_message", QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])
    call("sqs", "delete_message", QueueUrl=url, ReceiptHandle="not-a-handle")
    call("sqs", "delete_message_batch", QueueUrl=url, Entries=[
        {"Id": "ok", "ReceiptHandle": again[-1]["ReceiptHandle"]}, {"Id": "bad", "ReceiptHandle": "nope"}])
    counts()
    call("sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=["NoSuchAttribute"])

    kept = call("sqs", "create_queue", QueueName="retained", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    for body in ("new", "old", "newer"):
        call("sqs", "send_message", QueueUrl=kept, MessageBody=body)
    next(m for m in backend.get_queue("retained")._messages if m.body == "old").sent_timestamp -= 61_000
    call("sqs", "receive_message", QueueUrl=kept, MaxNumberOfMessages=10)  # moto stops at the expired one
    call("sqs", "receive_message", QueueUrl=kept, MaxNumberOfMessages=10)


def _events(call) -> None:
    bus_arn = call("events", "create_event_bus", Name=BUS)["EventBusArn"]
    queues = {}
    for name in ("deliveries", "rendered"):
        url = call("sqs", "create_queue", QueueName=name)["QueueUrl"]
        queues[name] = (url, call("sqs", "get_queue_attributes", QueueUrl=url,
                                  AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    call("events", "put_rule", Name="no-targets", EventBusName=BUS, EventPattern=json.dumps({"source": ["s"]}))
    call("events", "put_rule", Name="to-queue", EventBusName=BUS, EventPattern=json.dumps({"detail-type": ["Ping"]}))
    call("events", "put_targets", Rule="to-queue", EventBusName=BUS,
         Targets=[{"Id": "q", "Arn": queues["deliveries"][1]}])
    call("events", "put_rule", Name="rendered", EventBusName=BUS, EventPattern=json.dumps({"source": ["s"]}))
    call("events", "put_targets", Rule="rendered", EventBusName=BUS, Targets=[{
        "Id": "r", "Arn": queues["rendered"][1],
        "InputTransformer": {"InputPathsMap": {"src": "$.source", "n": "$.detail.n", "none": "$.detail.missing"},
                             "InputTemplate": '{"from": "<src>", "n": <n>, "none": "<none>"}'}}])
    call("events", "put_rule", Name="rendered-badly", EventBusName=BUS, EventPattern=json.dumps({"source": ["t"]}))
    call("events", "put_targets", Rule="rendered-badly", EventBusName=BUS, Targets=[{  # unquoted text: not JSON
        "Id": "r", "Arn": queues["rendered"][1],
        "InputTransformer": {"InputPathsMap": {"src": "$.source"}, "InputTemplate": '{"from": <src>}'}}])
    call("events", "create_archive", ArchiveName="archive", EventSourceArn=bus_arn,
         EventPattern=json.dumps({"source": [{"prefix": ""}]}))
    for n, detail_type in enumerate(("Ping", "Pong", "Ping")):
        call("events", "put_events", Entries=[{"EventBusName": BUS, "Source": "s", "DetailType": detail_type,
                                               "Detail": json.dumps({"n": n})}])
    call("events", "put_events", Entries=[
        {"EventBusName": BUS, "Source": "s", "DetailType": "Bad", "Detail": "{"},
        {"EventBusName": BUS, "Source": "s", "DetailType": "Missing"},
        {"EventBusName": BUS, "Source": "other", "DetailType": "Ping", "Detail": "{}",
         "Time": datetime(2026, 11, 25, tzinfo=UTC)},
        {"Source": "s", "DetailType": "Ping", "Detail": "{}"}])  # the default bus
    call("events", "put_events", Entries=[{"EventBusName": BUS, "Source": "t", "DetailType": "Ping", "Detail": "{}"}])
    call("events", "describe_archive", ArchiveName="archive")
    call("events", "list_rules", EventBusName=BUS)
    for url, _ in queues.values():
        call("sqs", "receive_message", QueueUrl=url, MaxNumberOfMessages=10)


@pytest.fixture(scope="module")
def moto_app() -> Moto:
    return Moto()


@pytest.fixture(scope="module")
def stock_answers(moto_app) -> list:
    assert moto_speedups.applied() == []
    first = workload(moto_app)
    assert workload(moto_app) == first  # deterministic on stock moto, or comparing would prove nothing
    return first


def _profiled(run):
    called: set = set()

    def profile(frame, event, arg):
        if event == "call":
            called.add(frame.f_code)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        return run(), called
    finally:
        sys.setprofile(previous)


def _ran(value, called: set) -> bool:
    if isinstance(value, property):
        value = value.fget
    elif isinstance(value, classmethod):
        value = value.__func__
    if hasattr(value, "cache_info"):  # an lru_cache made by this apply()
        info = value.cache_info()
        return info.hits + info.misses > 0
    return value.__code__ in called


@pytest.mark.parametrize("names", [[name] for name in PATCH_NAMES] + [PATCH_NAMES], ids=[*PATCH_NAMES, "all"])
def test_a_patch_answers_every_request_as_stock_moto_does(moto_app, stock_answers, names):
    with patched(*names):
        answers, called = _profiled(lambda: workload(moto_app))
        replacements = {path: value for path, value in moto_speedups.points().items()
                        if any(path in patch.sets for patch in moto_speedups.PATCHES if patch.name in names)}
    for stock, ours in zip(stock_answers, answers):
        assert ours == stock
    assert len(answers) == len(stock_answers)
    assert [path for path, value in replacements.items() if not _ran(value, called)] == []  # each one was used


# --- closer looks at single patches -----------------------------------------------------------------

PARSE_CASES = [  # (expression, names, values): every kind of node moto's grammar has
    (CLAIM, CLAIM_NAMES, {":inprogress": {"S": "INPROGRESS"}, ":now": {"N": "5"}}),
    ("#a BETWEEN :lo AND :hi AND NOT (#b IN (:x, :y))", {"#a": "n", "#b": "s"},
     {":lo": {"N": "1"}, ":hi": {"N": "9"}, ":x": {"S": "p"}, ":y": {"S": "q"}}),
    ("size(#l) > :two OR begins_with(#s, :pre) OR contains(#t, :t) OR attribute_type(#n, :type)",
     {"#l": "list", "#s": "s", "#t": "tags", "#n": "n"},
     {":two": {"N": "2"}, ":pre": {"S": "ab"}, ":t": {"S": "x"}, ":type": {"S": "N"}}),
    ("#m.#i[1] = :v AND (#n <> :v)", {"#m": "m", "#i": "inner", "#n": "n"}, {":v": {"N": "3"}}),
]
ITEMS = [
    {"id": {"S": "a"}, "status": {"S": "INPROGRESS"}, "expiry": {"N": "3"}, "n": {"N": "3"}, "s": {"S": "abc"},
     "list": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]}, "tags": {"SS": ["x", "y"]},
     "m": {"M": {"inner": {"L": [{"N": "0"}, {"N": "3"}]}}}},
    {"id": {"S": "b"}, "status": {"S": "COMPLETED"}, "expiry": {"N": "9"}, "n": {"N": "12"}, "s": {"S": "zz"}},
    {"id": {"S": "c"}},
]


def _evaluations(expression: str, names: dict, values: dict) -> tuple:
    from moto.dynamodb.models.dynamo_type import Item

    parser = ConditionExpressionParser(expression, names, values)
    condition = parser.parse()
    outcomes = []
    for attrs in ITEMS:
        try:
            outcomes.append(condition.expr(Item(hash_key=None, range_key=None, attrs=attrs)))
        except Exception as exc:  # moto raises for some (size() of a missing attribute): the same, then
            outcomes.append(repr(exc))
    return type(condition), outcomes, parser.expr_attr_names_found, parser.expr_attr_values_found


@pytest.mark.parametrize("expression, names, values", PARSE_CASES)
def test_a_cached_condition_tree_evaluates_as_moto_s_parse_with_each_calls_values(expression, names, values):
    shifted = [{k: ({"N": str(int(v["N"]) + n)} if "N" in v else v) for k, v in values.items()} for n in range(3)]
    expected = [_evaluations(expression, names, these) for these in shifted]
    with patched("dynamodb.condition_trees"):
        assert [_evaluations(expression, names, these) for these in shifted] == expected
        assert ConditionExpressionParser.parse.trees.cache_info()[:2] == (2, 1)  # built once (hits, misses)


@pytest.mark.parametrize("expression, names, values", [
    (CLAIM, CLAIM_NAMES, {":inprogress": {"S": "INPROGRESS"}}),  # :now missing
    (CLAIM, CLAIM_NAMES, None),
    (CLAIM, {"#id": "id"}, {":inprogress": {"S": "INPROGRESS"}, ":now": {"N": "5"}}),  # names missing
    ("#a = :v AND", {"#a": "a"}, {":v": {"S": "x"}}),  # a syntax error
    ("attribute_not_exists(id) OR ~", {}, {}),  # cannot be lexed
    ("status = :v", None, {":v": {"S": "x"}}),  # a reserved word
])
def test_a_broken_condition_fails_with_moto_s_own_error_every_time(expression, names, values):
    with pytest.raises(Exception) as stock:
        ConditionExpressionParser(expression, names, values).parse()
    with patched("dynamodb.condition_trees"):
        for _ in range(2):
            with pytest.raises(type(stock.value)) as ours:
                ConditionExpressionParser(expression, names, values).parse()
            assert str(ours.value) == str(stock.value)


def test_the_dispatcher_finds_each_hosts_backend_as_moto_does(capsys):
    hosts = [None, "moto_api", "sqs", "dynamodb", f"sqs.{REGION}.amazonaws.com", f"s3.{REGION}.amazonaws.com",
             "bucket.s3.amazonaws.com", f"events.{REGION}.amazonaws.com", "127.0.0.1:41233", "unknown.example",
             "nothing.amazonaws.com"]
    stock = [DomainDispatcherApplication(create_backend_app).get_backend_for_host(host) for host in hosts]
    capsys.readouterr()
    with patched("dispatch.backend_for_host"):
        dispatcher = DomainDispatcherApplication(create_backend_app)
        for _ in range(2):  # the second answers come from the cache
            assert [dispatcher.get_backend_for_host(host) for host in hosts] == stock
    assert "sqs" in stock and stock[-1] is None
    assert capsys.readouterr().out.count("Unable to find appropriate backend") == 1  # once per host, not per call


def test_ids_are_the_very_ones_moto_draws_for_the_same_seed():
    import moto.sqs.models

    def draws() -> list:
        out = []
        for seed in (1, 42):
            mock_random.seed(seed)
            out += [mock_random.get_random_string(), mock_random.get_random_string(length=52),
                    mock_random.get_random_string(length=300, include_digits=False),
                    mock_random.get_random_string(lower_case=True), mock_random.get_random_string(0),
                    mock_random.get_random_hex(), mock_random.get_random_hex(64),
                    moto.sqs.models.generate_receipt_handle(), str(mock_random.uuid4())]
        return out

    stock = draws()
    with patched("random.ids"):
        assert draws() == stock
    assert len(stock[7]) == 185 and set(stock[7]) <= set("abcdefghijklmnopqrstuvwxyz")


def test_ids_that_would_differ_from_moto_s_skip_the_patch(monkeypatch):
    """On a Python whose random.Random.choice draws differently, apply() finds out and keeps moto's."""
    stock = moto_speedups.points()
    monkeypatch.setattr(moto_speedups, "_draw", lambda rng, pool, count: "".join(rng.choices(pool, k=count)))
    warnings: list[str] = []
    try:
        assert moto_speedups.apply(only=["random.ids"], warn=warnings.append) == []
    finally:
        moto_speedups.restore()
    assert warnings == ["moto_speedups: random.ids skipped, stock moto for it: its ids differ from "
                        "random.Random.choice's on this Python"]
    assert moto_speedups.points() == stock


def test_the_clock_reads_what_moto_s_clock_reads():
    import moto.events.models
    import moto.sqs.models

    given = [datetime(2026, 11, 25, 12, 30, 15, 123456), datetime(1999, 1, 1), datetime(2038, 1, 19, 3, 14, 8)]
    clocks = ("moto.sqs.models:unix_time", "moto.sqs.models:unix_time_millis", "moto.events.models:unix_time")

    def read() -> list:
        return [[moto_speedups.value_at(path)(dt) for dt in given] for path in clocks]

    stock, stock_now = read(), moto.sqs.models.unix_time
    with patched("clock.now"):
        assert read() == stock
        for _ in range(100):
            before = stock_now()
            ours = (moto.sqs.models.unix_time(), moto.sqs.models.unix_time_millis() / 1000,
                    moto.events.models.unix_time())
            after = stock_now()
            assert all(before - 1e-6 <= now <= after + 1e-6 for now in ours)  # moto reads whole microseconds
    assert stock[0][0] == (given[0] - datetime(1970, 1, 1)) / timedelta(seconds=1)


def test_a_members_names_are_those_moto_s_lookup_finds_per_object_class_and_shape():
    from moto.core.serialize import AttributePickerContext, XFormedAttributePicker

    class DBInstance:
        identifier = "from the class prefix"

    class Other:
        identifier = "must not be picked: Other has no such prefix"

    class Explicit:  # aliases of each object's own: one class, two answers
        def __init__(self, alias: str):
            self.Meta = type("Meta", (), {"serialization_aliases": {"DBInstanceIdentifier": alias}})
            self.own, self.mine = "from the object's own aliases", "from another object's own aliases"

    cases = [(DBInstance(), "from the class prefix"), (Other(), None),
             (Explicit("own"), "from the object's own aliases"),
             (Explicit("mine"), "from another object's own aliases"), ({"db_instance_identifier": "d"}, "d")]

    def picks() -> list:
        picker = XFormedAttributePicker()
        out = []
        for obj, _ in cases:
            context = AttributePickerContext(obj=obj, key="DBInstanceIdentifier", shape=None)
            out.append((picker(context), list(picker.get_possible_keys(context))))
        return out

    stock = picks()
    assert [value for value, _ in stock] == [expected for _, expected in cases]
    with patched("serialize.member_names"):
        for _ in range(2):  # the first answer is worked out, the second remembered
            assert picks() == stock


def test_an_update_expression_is_parsed_once_and_its_tree_never_changes(speedups):
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    with mock_aws_table() as ddb:
        for n in range(3):
            ddb.update_item(TableName="t", Key={"id": {"S": "u"}}, UpdateExpression="SET n = :n ADD hits :one",
                            ExpressionAttributeValues={":n": {"N": str(n)}, ":one": {"N": "1"}})
        item = ddb.get_item(TableName="t", Key={"id": {"S": "u"}})["Item"]
    assert item == {"id": {"S": "u"}, "n": {"N": "2"}, "hits": {"N": "3"}}
    hits, misses = UpdateExpressionParser.make.__func__.trees.cache_info()[:2]
    assert misses == 1 and hits == 5  # the response class and the backend parse it, three times over


@contextlib.contextmanager
def mock_aws_table():
    from moto import mock_aws

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
        yield ddb

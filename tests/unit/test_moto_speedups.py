"""scripts/embedded/moto_speedups.py: each shortcut must give the answers moto gives without it."""
from __future__ import annotations

import string

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.moto_api._internal import mock_random
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from embedded import moto_speedups  # noqa: F401  (applied on import)

REGION = "ap-northeast-1"
CLAIM = "attribute_not_exists(#id) OR (#status = :inprogress AND #expiry < :now)"


@pytest.fixture
def table():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
        yield ddb


def claim(ddb, key: str, status: str, expiry: int, now: int, names: dict | None = None) -> bool:
    try:
        ddb.put_item(TableName="t", Item={"id": {"S": key}, "status": {"S": status}, "expiry": {"N": str(expiry)}},
                     ConditionExpression=CLAIM,
                     ExpressionAttributeNames=names or {"#id": "id", "#status": "status", "#expiry": "expiry"},
                     ExpressionAttributeValues={":inprogress": {"S": "INPROGRESS"}, ":now": {"N": str(now)}})
        return True
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
        return False


def test_a_cached_condition_is_evaluated_with_each_calls_own_names_and_values(table):
    assert claim(table, "a", "INPROGRESS", expiry=100, now=50)
    assert not claim(table, "a", "INPROGRESS", expiry=100, now=50)  # held, not expired
    assert claim(table, "a", "INPROGRESS", expiry=300, now=150)  # same text, later :now: expired claim taken over
    assert claim(table, "b", "INPROGRESS", expiry=100, now=50)
    # Same expression text, "#status" naming an attribute the item lacks: no longer a claim to take over.
    assert not claim(table, "b", "INPROGRESS", expiry=100, now=10**9,
                     names={"#id": "id", "#status": "holder", "#expiry": "expiry"})
    assert claim(table, "b", "INPROGRESS", expiry=100, now=10**9)


def test_an_expression_that_cannot_be_lexed_fails_every_time_not_only_the_first():
    for _ in range(2):
        with pytest.raises(ValueError, match="Cannot parse condition"):
            ConditionExpressionParser("attribute_not_exists(id) OR ~", {}, {}).parse()


PARSE_CASES = [  # (expression, names, values): every kind of node moto's grammar has
    (CLAIM, {"#id": "id", "#status": "status", "#expiry": "expiry"}, {":inprogress": {"S": "INPROGRESS"}, ":now": {"N": "5"}}),
    ("#a BETWEEN :lo AND :hi AND NOT (#b IN (:x, :y))", {"#a": "n", "#b": "s"},
     {":lo": {"N": "1"}, ":hi": {"N": "9"}, ":x": {"S": "p"}, ":y": {"S": "q"}}),
    ("size(#l) > :two OR begins_with(#s, :pre) OR contains(#t, :t) OR attribute_type(#n, :type)",
     {"#l": "list", "#s": "s", "#t": "tags", "#n": "n"}, {":two": {"N": "2"}, ":pre": {"S": "ab"}, ":t": {"S": "x"}, ":type": {"S": "N"}}),
    ("#m.#i[1] = :v AND (#n <> :v)", {"#m": "m", "#i": "inner", "#n": "n"}, {":v": {"N": "3"}}),
]
ITEMS = [
    {"id": {"S": "a"}, "status": {"S": "INPROGRESS"}, "expiry": {"N": "3"}, "n": {"N": "3"}, "s": {"S": "abc"},
     "list": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]}, "tags": {"SS": ["x", "y"]},
     "m": {"M": {"inner": {"L": [{"N": "0"}, {"N": "3"}]}}}},
    {"id": {"S": "b"}, "status": {"S": "COMPLETED"}, "expiry": {"N": "9"}, "n": {"N": "12"}, "s": {"S": "zz"}},
    {"id": {"S": "c"}},
]


def outcome(op, item):
    try:
        return op.expr(item)
    except Exception as exc:  # moto raises for some (size() of a missing attribute): the same, then
        return repr(exc)


def _original_parse(expression, names, values):
    return moto_speedups._parse(ConditionExpressionParser(expression, names, values))


@pytest.mark.parametrize("expression, names, values", PARSE_CASES)
def test_a_cached_parse_tree_evaluates_as_moto_parses_it_with_each_calls_values(expression, names, values):
    from moto.dynamodb.models.dynamo_type import Item

    items = [Item(hash_key=None, range_key=None, attrs=attrs) for attrs in ITEMS]
    moto_speedups._tree.cache_clear()
    for attempt in range(2):  # the first builds the tree, the second reads it from the cache
        shifted = {k: ({"N": str(int(v["N"]) + attempt)} if "N" in v else v) for k, v in values.items()}
        parser = ConditionExpressionParser(expression, names, shifted)
        cached = parser.parse()
        original = ConditionExpressionParser(expression, names, shifted)
        expected = moto_speedups._parse(original)
        assert type(cached) is type(expected)
        assert [outcome(cached, item) for item in items] == [outcome(expected, item) for item in items]
        assert parser.expr_attr_names_found == original.expr_attr_names_found
        assert parser.expr_attr_values_found == original.expr_attr_values_found
    assert moto_speedups._tree.cache_info()[:2] == (1, 1)  # built once (hits, misses), then read


@pytest.mark.parametrize("expression, names, values", [
    (CLAIM, {"#id": "id", "#status": "status", "#expiry": "expiry"}, {":inprogress": {"S": "INPROGRESS"}}),  # :now missing
    (CLAIM, {"#id": "id", "#status": "status", "#expiry": "expiry"}, None),
    (CLAIM, {"#id": "id"}, {":inprogress": {"S": "INPROGRESS"}, ":now": {"N": "5"}}),  # names missing
    ("#a = :v AND", {"#a": "a"}, {":v": {"S": "x"}}),  # a syntax error
    ("status = :v", None, {":v": {"S": "x"}}),  # a reserved word
])
def test_a_broken_condition_fails_with_moto_s_own_error_every_time(expression, names, values):
    with pytest.raises(Exception) as expected:
        _original_parse(expression, names, values)
    for _ in range(2):
        with pytest.raises(type(expected.value)) as got:
            ConditionExpressionParser(expression, names, values).parse()
        assert str(got.value) == str(expected.value)


def test_the_dispatcher_still_finds_each_services_backend():
    dispatcher = DomainDispatcherApplication(create_backend_app)
    for _ in range(2):  # the second answer comes from the cache
        assert dispatcher.get_backend_for_host(f"sqs.{REGION}.amazonaws.com") == "sqs"
        assert dispatcher.get_backend_for_host(f"s3.{REGION}.amazonaws.com") == "s3"
        assert dispatcher.get_backend_for_host(f"events.{REGION}.amazonaws.com") == "events"
        assert dispatcher.get_backend_for_host("unknown.example") is None


def test_ids_keep_their_alphabet_and_length_and_stay_seedable():
    from moto.sqs.models import generate_receipt_handle

    handles = {generate_receipt_handle() for _ in range(200)}
    assert len(handles) == 200 and all(len(h) == 185 and set(h) <= set(string.ascii_lowercase) for h in handles)
    assert len(mock_random.get_random_string(length=40)) == 40
    assert set(mock_random.get_random_string(length=400, include_digits=False)) <= set(string.ascii_letters)
    assert set(mock_random.get_random_hex(64)) <= set("0123456789abcdef")
    mock_random.seed(7)
    first = mock_random.get_random_string(), mock_random.get_random_hex()
    mock_random.seed(7)
    assert (mock_random.get_random_string(), mock_random.get_random_hex()) == first


def test_put_events_still_reaches_moto_s_archive_and_queue_targets_with_the_time_it_was_put():
    import calendar
    import json
    import time

    with mock_aws():
        events, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
        bus_arn = events.create_event_bus(Name="b")["EventBusArn"]
        events.create_archive(ArchiveName="a", EventSourceArn=bus_arn, EventPattern=json.dumps({"source": ["s"]}))
        events.put_rule(Name="no-targets", EventBusName="b", EventPattern=json.dumps({"source": ["s"]}))
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        events.put_rule(Name="to-queue", EventBusName="b", EventPattern=json.dumps({"detail-type": ["Ping"]}))
        events.put_targets(Rule="to-queue", EventBusName="b", Targets=[
            {"Id": "q", "Arn": sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]}])
        before = time.time()
        for detail_type in ("Ping", "Pong"):
            events.put_events(Entries=[{"EventBusName": "b", "Source": "s", "DetailType": detail_type, "Detail": "{}"}])
        assert events.describe_archive(ArchiveName="a")["EventCount"] == 2
        [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        delivered = json.loads(message["Body"])
        assert delivered["detail-type"] == "Ping" and delivered["source"] == "s"
        assert delivered["time"].endswith("Z")  # moto renders the float the patched clock gave it
        when = calendar.timegm(time.strptime(delivered["time"], "%Y-%m-%dT%H:%M:%SZ"))
        assert before - 2 <= when <= time.time() + 1


def update(ddb, expression: str, values: dict | None = None, names: dict | None = None) -> dict:
    kwargs = {"ExpressionAttributeValues": values} if values else {}
    if names:
        kwargs["ExpressionAttributeNames"] = names
    return ddb.update_item(TableName="t", Key={"id": {"S": "u"}}, UpdateExpression=expression, ReturnValues="ALL_NEW",
                           **kwargs)["Attributes"]


def test_a_shared_update_tree_is_applied_with_each_calls_own_values(table):
    counters = "SET #s = :s, tags = list_append(if_not_exists(tags, :empty), :tag) ADD hits :one"
    first = update(table, counters, {":s": {"S": "a"}, ":empty": {"L": []}, ":tag": {"L": [{"S": "x"}]}, ":one": {"N": "1"}},
                   {"#s": "status"})
    second = update(table, counters, {":s": {"S": "b"}, ":empty": {"L": []}, ":tag": {"L": [{"S": "y"}]}, ":one": {"N": "2"}},
                    {"#s": "status"})
    assert first["status"] == {"S": "a"} and first["hits"] == {"N": "1"}
    assert second == {"id": {"S": "u"}, "status": {"S": "b"}, "tags": {"L": [{"S": "x"}, {"S": "y"}]}, "hits": {"N": "3"}}
    assert update(table, "SET nested = :m", {":m": {"M": {"a": {"N": "1"}}}})["nested"] == {"M": {"a": {"N": "1"}}}
    assert update(table, "SET nested.a = nested.a + :one", {":one": {"N": "4"}})["nested"] == {"M": {"a": {"N": "5"}}}
    assert "hits" not in update(table, "REMOVE hits")


@pytest.mark.parametrize("expression, values, message", [
    ("SET a = :v SET b = :v", {":v": {"S": "x"}}, "The \"SET\" section can only be used once"),
    ("SET id = :v", {":v": {"S": "x"}}, "This attribute is part of the key"),
    ("SET a = :v, b = :missing", {":v": {"S": "x"}}, ":missing"),
    ("SET a = = :v", {":v": {"S": "x"}}, "Invalid UpdateExpression: Syntax error"),
])
def test_a_broken_update_fails_with_moto_s_own_error_every_time(table, expression, values, message):
    for _ in range(2):  # the first parse, then whatever the cache holds
        with pytest.raises(ClientError) as failed:
            update(table, expression, values)
        assert failed.value.response["Error"]["Code"] == "ValidationException"
        assert message in failed.value.response["Error"]["Message"]
    assert update(table, "SET a = :v", {":v": {"S": "fine"}})["a"] == {"S": "fine"}


def test_responses_carry_the_same_members_as_moto_s_own_lookup_finds(monkeypatch):
    import json
    from datetime import datetime

    import moto.core.serialize

    def answers() -> list:
        with mock_aws():
            ddb = boto3.client("dynamodb", region_name=REGION)
            ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
            item = {"id": {"S": "a"}, "n": {"N": "1"}, "m": {"M": {"l": {"L": [{"S": "x"}, {"BOOL": True}]}}}}
            ddb.put_item(TableName="t", Item=item)
            sqs = boto3.client("sqs", region_name=REGION)
            url = sqs.create_queue(QueueName="q", Attributes={"DelaySeconds": "0"})["QueueUrl"]
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket="bkt", CreateBucketConfiguration={"LocationConstraint": REGION})
            s3.put_object(Bucket="bkt", Key="k/1.json", Body=b"{}", Metadata={"m": "v"})
            events = boto3.client("events", region_name=REGION)
            bus = events.create_event_bus(Name="bus")["EventBusArn"]
            events.put_rule(Name="r", EventBusName="bus", EventPattern=json.dumps({"source": ["s"]}))
            events.create_archive(ArchiveName="a", EventSourceArn=bus)
            sm = boto3.client("secretsmanager", region_name=REGION)
            sm.create_secret(Name="s", SecretString="v")
            calls = [
                lambda: ddb.get_item(TableName="t", Key={"id": {"S": "a"}}),
                lambda: ddb.query(TableName="t", KeyConditionExpression="id = :a",
                                  ExpressionAttributeValues={":a": {"S": "a"}}),
                lambda: ddb.scan(TableName="t"),
                lambda: ddb.describe_table(TableName="t"),
                lambda: ddb.update_item(TableName="t", Key={"id": {"S": "a"}}, UpdateExpression="SET n = :n",
                                        ExpressionAttributeValues={":n": {"N": "1"}}, ReturnValues="ALL_NEW"),
                lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
                lambda: sqs.list_queues(),
                lambda: s3.list_objects_v2(Bucket="bkt"),
                lambda: s3.head_object(Bucket="bkt", Key="k/1.json"),
                lambda: s3.list_buckets(),
                lambda: events.describe_event_bus(Name="bus"),
                lambda: events.list_rules(EventBusName="bus"),
                lambda: events.describe_archive(ArchiveName="a"),
                lambda: sm.describe_secret(SecretId="s"),
            ]
            out = []
            for call in calls:
                answer = call()
                answer.pop("ResponseMetadata", None)
                out.append(answer)
            return out

    from embedded import moto_speedups as speedups

    ours = answers()
    monkeypatch.setattr(moto.core.serialize.XFormedAttributePicker, "get_possible_keys", speedups._get_possible_keys)
    moto_s = answers()

    volatile = {"TableId", "ARN", "VersionIdsToStages", "CreatedTimestamp", "LastModifiedTimestamp"}

    def stable(value):  # what differs between two fresh accounts: random ids and times
        if isinstance(value, dict):
            return {k: "-" if k in volatile else stable(v) for k, v in value.items()}
        if isinstance(value, list):
            return [stable(v) for v in value]
        return "-" if isinstance(value, datetime) else value

    assert stable(ours) == stable(moto_s)
    assert all(ours)  # and each call answered something


def test_a_members_names_are_kept_per_object_class_and_shape():
    from moto.core.serialize import AttributePickerContext, XFormedAttributePicker

    class DBInstance:
        identifier = "from the class prefix"

    class Other:
        identifier = "must not be picked: Other has no such prefix"

    class Explicit:
        def __init__(self):
            self.Meta = type("Meta", (), {"serialization_aliases": {"DBInstanceIdentifier": "own"}})
            self.own = "from the object's own aliases"

    picker = XFormedAttributePicker()
    for _ in range(2):  # the first answer is worked out, the second remembered
        for obj, expected in ((DBInstance(), "from the class prefix"), (Other(), None),
                              (Explicit(), "from the object's own aliases"), ({"db_instance_identifier": "d"}, "d")):
            context = AttributePickerContext(obj=obj, key="DBInstanceIdentifier", shape=None)
            assert picker(context) == expected
            assert list(picker.get_possible_keys(context)) == list(moto_speedups._get_possible_keys(picker, context))

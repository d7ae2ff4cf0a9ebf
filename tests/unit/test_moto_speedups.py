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

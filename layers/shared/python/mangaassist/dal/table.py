"""A DynamoDB table on the low-level client, with Python values in and out as the resource API has them.

The DAL classes were written against boto3's ``Table`` resource; this is the part of it they use
(get, put, update, delete, query, scan, and a batch get), with the same values: numbers come back
as ``Decimal``, sets as ``set``. Building the resource costs a cold start ~30 ms more than the
client it wraps (boto3 generates its classes from a JSON model), and every function already has
the DynamoDB client (idempotency, usage counters): so tables share that client.

Expressions are strings with placeholders, never ``boto3.dynamodb.conditions`` objects: only the
resource translates those.
"""
from __future__ import annotations

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize
_REQUEST_VALUES = ("Key", "Item", "ExclusiveStartKey", "ExpressionAttributeValues")
_RESPONSE_VALUES = ("Item", "Attributes", "LastEvaluatedKey")


def to_attributes(values: dict) -> dict:
    """``{"n": Decimal(1)}`` -> ``{"n": {"N": "1"}}``."""
    return {name: _serialize(value) for name, value in values.items()}


def from_attributes(item: dict) -> dict:
    """``{"n": {"N": "1"}}`` -> ``{"n": Decimal(1)}``."""
    return {name: _deserialize(value) for name, value in item.items()}


class Table:
    def __init__(self, client, name: str):
        self.client = client  # a low-level DynamoDB client (mangaassist.clients)
        self.name = name

    def get_item(self, **request) -> dict:
        return self._call("get_item", request)

    def put_item(self, **request) -> dict:
        return self._call("put_item", request)

    def update_item(self, **request) -> dict:
        return self._call("update_item", request)

    def delete_item(self, **request) -> dict:
        return self._call("delete_item", request)

    def query(self, **request) -> dict:
        return self._call("query", request)

    def scan(self, **request) -> dict:
        return self._call("scan", request)

    def batch_get(self, keys: list[dict]) -> tuple[list[dict], bool]:
        """The items of up to 100 ``keys``, and whether DynamoDB left some keys unprocessed."""
        response = self.client.batch_get_item(RequestItems={self.name: {"Keys": [to_attributes(k) for k in keys]}})
        items = [from_attributes(item) for item in response.get("Responses", {}).get(self.name, [])]
        return items, bool(response.get("UnprocessedKeys"))

    def _call(self, operation: str, request: dict) -> dict:
        for field in _REQUEST_VALUES:
            if field in request:
                request[field] = to_attributes(request[field])
        response = getattr(self.client, operation)(TableName=self.name, **request)
        for field in _RESPONSE_VALUES:
            if field in response:
                response[field] = from_attributes(response[field])
        if "Items" in response:
            response["Items"] = [from_attributes(item) for item in response["Items"]]
        return response

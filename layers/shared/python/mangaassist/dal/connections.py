"""The connections table: each open WebSocket connection, by ``connection_id``.

A row is written on $connect (the client, the end user and tier the authorizer verified) and
deleted on $disconnect or when a post finds the client gone; ``expires_at`` (DynamoDB TTL) is two
hours on, when API Gateway closes a connection anyway. The row also keeps what protects the
worker: the turn streaming now (one at a time per connection, claimed with a conditional write)
and a per-minute message count (a client over its rate is told so and closed).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from mangaassist.dal import from_dynamo, to_dynamo

CONNECTION_SECONDS = 2 * 3600  # API Gateway's maximum connection duration
STREAM_LEASE_SECONDS = 330  # longer than the stream worker's timeout: a crashed worker frees the slot


def _conditional(call) -> bool:
    try:
        call()
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


class Connections:
    def __init__(self, table, clock: Callable[[], float] = time.time):
        self.table = table
        self.clock = clock

    def open(self, connection_id: str, *, client_id: str, user_id: str | None, tier: str) -> None:
        now = self.clock()
        item = {"connection_id": connection_id, "client_id": client_id, "tier": tier, "connected_at": int(now),
                "expires_at": int(now + CONNECTION_SECONDS)}
        if user_id:
            item["user_id"] = user_id
        self.table.put_item(Item=to_dynamo(item))

    def get(self, connection_id: str) -> dict | None:
        item = self.table.get_item(Key={"connection_id": connection_id}, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def close(self, connection_id: str) -> None:
        self.table.delete_item(Key={"connection_id": connection_id})

    def count_message(self, connection_id: str) -> int:
        """This minute's messages from the connection, this one included."""
        window = int(self.clock() // 60)
        for _ in range(4):
            try:
                item = self.table.update_item(
                    Key={"connection_id": connection_id}, UpdateExpression="ADD window_count :one",
                    ConditionExpression="attribute_exists(connection_id) AND window_start = :w",
                    ExpressionAttributeValues={":one": 1, ":w": window}, ReturnValues="UPDATED_NEW")
                return int(item["Attributes"]["window_count"])
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            if _conditional(lambda: self.table.update_item(
                    Key={"connection_id": connection_id}, UpdateExpression="SET window_start = :w, window_count = :one",
                    ConditionExpression="attribute_exists(connection_id) AND "
                                        "(attribute_not_exists(window_start) OR window_start <> :w)",
                    ExpressionAttributeValues={":one": 1, ":w": window})):
                return 1
            if self.get(connection_id) is None:
                return 0  # gone while counting
        return 1 << 30  # contended beyond reason: treat as over any rate

    def claim_stream(self, connection_id: str, request_id: str) -> bool:
        """True when no other turn streams on this connection (its lease may have lapsed)."""
        now = self.clock()
        return _conditional(lambda: self.table.update_item(
            Key={"connection_id": connection_id}, UpdateExpression="SET streaming = :r, streaming_until = :until",
            ConditionExpression="attribute_exists(connection_id) AND "
                                "(attribute_not_exists(streaming) OR streaming_until < :now)",
            ExpressionAttributeValues={":r": request_id, ":until": int(now + STREAM_LEASE_SECONDS), ":now": int(now)}))

    def release_stream(self, connection_id: str, request_id: str) -> None:
        _conditional(lambda: self.table.update_item(
            Key={"connection_id": connection_id}, UpdateExpression="REMOVE streaming, streaming_until",
            ConditionExpression="streaming = :r", ExpressionAttributeValues={":r": request_id}))

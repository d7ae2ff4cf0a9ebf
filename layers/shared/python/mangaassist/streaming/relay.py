"""Frames to one WebSocket client through API Gateway's ``@connections`` API (PostToConnection).

API Gateway answers 410 ``GoneException`` once the client has gone: the relay raises ClientGone,
and the turn stops generating (no tokens are paid for that nobody reads).
"""
from __future__ import annotations

from mangaassist.streaming.frames import FRAME_LIMIT, encode


class ClientGone(Exception):
    """The connection is closed: nothing more can reach this client."""


class Relay:
    def __init__(self, client, connection_id: str):
        self.client = client  # a boto3 apigatewaymanagementapi client on the stage's callback URL
        self.connection_id = connection_id
        self.sent = 0

    def send(self, frame: dict) -> None:
        from botocore.exceptions import ClientError

        data = encode(frame)
        if len(data) > FRAME_LIMIT:  # frames.split keeps deltas under it; anything else is a bug
            raise ValueError(f"a {frame.get('type')} frame of {len(data)} bytes is over the 32 KB limit")
        try:
            self.client.post_to_connection(ConnectionId=self.connection_id, Data=data)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("GoneException", "410"):
                raise ClientGone(self.connection_id) from exc
            raise
        self.sent += 1

    def close(self) -> None:
        """Ask API Gateway to close the connection (after an error frame that ends it)."""
        from botocore.exceptions import ClientError

        try:
            self.client.delete_connection(ConnectionId=self.connection_id)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("GoneException", "410"):
                raise

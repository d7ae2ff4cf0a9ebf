"""The sessions table: each conversation's last turns, by ``session_id``, owned by one client.

A turn is read, answered, then written with one conditional write on the session's ``version``.
Two turns of one session racing both read version n; the first write makes it n+1 and the second
fails its condition, re-reads (now holding the first turn's messages) and appends its own: no
message is ever lost, and the list keeps at most ``max_turns`` messages.

Items carry ``expires_at`` (epoch seconds) for DynamoDB's TTL, which deletes them up to days
late: an expired item is treated as absent here.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from mangaassist.dal import from_dynamo, to_dynamo

WRITE_ATTEMPTS = 8


class SessionNotFound(LookupError):
    """No such live session for this client (another client's session is not found either)."""


class SessionBusy(RuntimeError):
    """Concurrent turns kept winning the race for WRITE_ATTEMPTS rounds."""


class Sessions:
    def __init__(self, table, *, ttl_seconds: int, max_turns: int, clock: Callable[[], float] = time.time):
        self.table = table  # a mangaassist.dal.table.Table (or a boto3 Table resource)
        self.ttl_seconds = ttl_seconds
        self.max_turns = max_turns
        self.clock = clock

    def get(self, session_id: str, owner: str) -> dict | None:
        item = self._read(session_id)
        if item is None or item.get("owner") != owner or float(item.get("expires_at", 0)) <= self.clock():
            return None
        return item

    def append(self, session_id: str, owner: str, turns: list[dict], *, user_id: str | None = None,
               must_exist: bool = False, seen: dict | None = None) -> dict:
        """Add ``turns`` after whatever the session holds now; the session as written. ``seen`` is
        the session as the caller read it (or None for a new one): the first write is conditioned on
        it without reading again; a lost race reads afresh."""
        for attempt in range(WRITE_ATTEMPTS):
            current = seen if attempt == 0 and (seen is not None or not must_exist) else self._read(session_id)
            live = current is not None and float(current.get("expires_at", 0)) > self.clock()
            if current is not None and current.get("owner") != owner:
                raise SessionNotFound(session_id)
            if must_exist and not live:
                raise SessionNotFound(session_id)
            now = self.clock()
            kept = (current["turns"] if live and current else []) + turns
            item = {
                "session_id": session_id, "owner": owner, "turns": kept[-self.max_turns:],
                "version": (current["version"] + 1) if current else 1,
                "created_at": current["created_at"] if live and current else int(now),
                "updated_at": int(now), "expires_at": int(now + self.ttl_seconds),
            }
            if user_id or (live and current and current.get("user_id")):
                item["user_id"] = user_id or current["user_id"]  # type: ignore[index]
            try:
                if current is None:
                    self.table.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(session_id)")
                else:
                    self.table.put_item(Item=to_dynamo(item), ConditionExpression="version = :seen",
                                        ExpressionAttributeValues={":seen": current["version"]})
                return item
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        raise SessionBusy(session_id)

    def _read(self, session_id: str) -> dict | None:
        item = self.table.get_item(Key={"session_id": session_id}, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def delete(self, session_id: str, owner: str) -> None:
        try:
            self.table.delete_item(Key={"session_id": session_id}, ConditionExpression="#o = :owner",
                                   ExpressionAttributeNames={"#o": "owner"},
                                   ExpressionAttributeValues={":owner": owner})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise SessionNotFound(session_id) from exc
            raise

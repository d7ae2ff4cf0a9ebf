"""publish(events): every event validated, then sent with PutEvents, and none silently dropped.

- Every detail is checked against its contract before anything is sent: one bad event stops
  the whole publish, so a caller never has to work out which half went out.
- Calls carry at most 10 entries and at most MANGAASSIST_MAX_EVENT_BYTES, counted AWS's way
  (Time 14 bytes + Source + DetailType + Detail + each Resource, UTF-8). The documented limit is
  256 KB; AWS raised it to 1 MB in 2026, so it is a setting.
- Only the entries PutEvents reports failed are retried (and whole calls on throttling or 5xx),
  with full-jitter exponential backoff; when attempts run out, PublishError lists what failed
  and what went through.
"""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable

from mangaassist.contracts import validate_detail

MAX_ENTRIES = 10
DEFAULT_MAX_BYTES = 256 * 1024
RETRYABLE_CALL_ERRORS = {"ThrottlingException", "InternalException", "InternalFailure", "ServiceUnavailable"}

_client = None
sleep: Callable[[float], None] = time.sleep  # tests replace it


class EventTooLarge(ValueError):
    pass


class PublishError(Exception):
    def __init__(self, failed: list[dict], published: list[str]):
        super().__init__(f"{len(failed)} event(s) not published after retries")
        self.failed = failed
        self.published = published


@dataclass(frozen=True)
class Event:
    source: str
    detail_type: str
    detail: dict
    resources: tuple = field(default=())
    time: datetime | None = None

    def entry(self, bus_name: str) -> dict:
        entry = {
            "Source": self.source,
            "DetailType": self.detail_type,
            "Detail": json.dumps(self.detail, separators=(",", ":"), ensure_ascii=False),
            "EventBusName": bus_name,
        }
        if self.resources:
            entry["Resources"] = list(self.resources)
        if self.time:
            entry["Time"] = self.time
        return entry


def entry_size(entry: dict) -> int:
    """https://docs.aws.amazon.com/eventbridge/latest/userguide/calculate-putevents-entry-size.html"""
    size = 14 + len(entry["Source"].encode()) + len(entry["DetailType"].encode()) + len(entry["Detail"].encode())
    return size + sum(len(r.encode()) for r in entry.get("Resources", []))


def chunks(entries: list[dict], max_bytes: int) -> list[list[int]]:
    """Indexes of ``entries`` grouped into PutEvents calls."""
    calls, current, current_bytes = [], [], 0
    for index, entry in enumerate(entries):
        size = entry_size(entry)
        if size > max_bytes:
            raise EventTooLarge(f"{entry['DetailType']} is {size} bytes; the limit is {max_bytes}")
        if current and (len(current) == MAX_ENTRIES or current_bytes + size > max_bytes):
            calls.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += size
    if current:
        calls.append(current)
    return calls


def default_client():
    global _client
    if _client is None:
        import boto3
        from botocore.config import Config

        _client = boto3.client("events", config=Config(connect_timeout=2, read_timeout=5,
                                                        retries={"mode": "standard", "max_attempts": 2}))
    return _client


def publish(events: Iterable[Event], *, bus_name: str | None = None, client=None, max_attempts: int = 5,
            base_delay: float = 0.05, max_delay: float = 2.0, max_bytes: int | None = None) -> list[str]:
    """Send ``events``; returns their event ids in input order."""
    events = list(events)
    for event in events:
        validate_detail(event.source, event.detail_type, event.detail)
    bus_name = bus_name or os.environ["EVENT_BUS_NAME"]
    max_bytes = max_bytes or int(os.environ.get("MANGAASSIST_MAX_EVENT_BYTES", DEFAULT_MAX_BYTES))
    entries = [event.entry(bus_name) for event in events]
    calls = chunks(entries, max_bytes)
    client = client or default_client()
    ids: list[str | None] = [None] * len(entries)
    errors: dict[int, dict] = {}
    for call in calls:
        pending = call
        for attempt in range(max_attempts):
            if attempt:
                sleep(random.uniform(0, min(max_delay, base_delay * 2 ** attempt)))
            try:
                response = client.put_events(Entries=[entries[i] for i in pending])
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                if code not in RETRYABLE_CALL_ERRORS:
                    raise
                errors.update({i: {"ErrorCode": code, "ErrorMessage": str(exc)} for i in pending})
                continue
            retry = []
            for index, result in zip(pending, response["Entries"]):
                if result.get("EventId"):
                    ids[index] = result["EventId"]
                    errors.pop(index, None)
                else:
                    errors[index] = {"ErrorCode": result.get("ErrorCode"), "ErrorMessage": result.get("ErrorMessage")}
                    retry.append(index)
            pending = retry
            if not pending:
                break
    if errors:
        failed = [{**entries[i], **errors[i]} for i in sorted(errors)]
        raise PublishError(failed, [i for i in ids if i])
    return ids

"""publish(events): every event validated, then sent with PutEvents, and none silently dropped.

- Every detail is checked against its contract, and every entry against the size limit, before
  anything is sent: one bad event stops the whole publish, so a caller never has to work out
  which half went out.
- Calls carry at most 10 entries and at most ``settings.events().max_event_bytes``, counted AWS's
  way (Time 14 bytes + Source + DetailType + Detail + each Resource, UTF-8).
- Entries that PutEvents reports with a retryable ErrorCode are retried, and only they; so are
  whole calls refused with throttling or a 5xx. Retries use full-jitter exponential backoff,
  bounded by ``max_attempts``. Whatever is left raises PublishError, which lists the failed
  entries and the ids that did go through.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mangaassist import clients, settings
from mangaassist.backoff import full_jitter

MAX_ENTRIES = 10
MAX_ATTEMPTS, BASE_DELAY, MAX_DELAY = 5, 0.05, 2.0
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html: the
# other entry codes (MalformedDetail, AccessDeniedException...) fail the same way every time.
RETRYABLE_ENTRY_ERRORS = frozenset({"InternalFailure", "ThrottlingException"})
RETRYABLE_CALL_ERRORS = frozenset({"ThrottlingException", "InternalException", "InternalFailure", "ServiceUnavailable"})

sleep = time.sleep  # tests replace it


class EventTooLarge(ValueError):
    pass


class PublishError(Exception):
    """Some events were not published: ``failed`` entries carry ErrorCode and ErrorMessage."""

    def __init__(self, failed: list[dict], published: list[str]):
        codes = sorted({str(f.get("ErrorCode")) for f in failed})
        super().__init__(f"{len(failed)} event(s) not published: {', '.join(codes)}")
        self.failed = failed
        self.published = published


@dataclass(frozen=True)
class Event:
    source: str
    detail_type: str
    detail: dict
    resources: tuple = ()
    time: datetime | None = None

    def entry(self, bus_name: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Source": self.source,
            "DetailType": self.detail_type,
            # Compact, and Japanese stays UTF-8 (3 bytes a character, not a 6-byte \uXXXX escape).
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


def chunks(indexes: list[int], sizes: list[int], max_bytes: int) -> list[list[int]]:
    """``indexes`` grouped into PutEvents calls of at most 10 entries and ``max_bytes``."""
    calls: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for index in indexes:
        if current and (len(current) == MAX_ENTRIES or current_bytes + sizes[index] > max_bytes):
            calls.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += sizes[index]
    return calls + [current] if current else calls


def publish(events: Iterable[Event], *, bus_name: str | None = None, client=None, max_attempts: int = MAX_ATTEMPTS,
            base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY) -> list[str]:
    """Send ``events``; returns their event ids in input order.

    Raises ContractError or EventTooLarge before sending anything, PublishError after.
    """
    # Imported here, not at import: jsonschema costs ~40 ms of cold start, and a function that imports the
    # publisher for Event (the notifications dispatcher) publishes rarely.
    from mangaassist.contracts import validate_detail

    events = list(events)
    for event in events:
        validate_detail(event.source, event.detail_type, event.detail)
    bus_name = bus_name or settings.events().bus_name
    entries = [event.entry(bus_name) for event in events]
    sizes = [entry_size(entry) for entry in entries]
    max_bytes = settings.events().max_event_bytes
    for entry, size in zip(entries, sizes):
        if size > max_bytes:
            raise EventTooLarge(f"{entry['DetailType']} is {size} bytes; the limit is {max_bytes}")
    if not entries:
        return []
    client = client or clients.client("events", "publish")

    ids: list[str | None] = [None] * len(entries)
    errors: dict[int, dict] = {}  # index -> the last ErrorCode/ErrorMessage it got
    pending = list(range(len(entries)))
    for attempt in range(max_attempts):
        if attempt:
            sleep(full_jitter(attempt - 1, base_delay, max_delay))
        pending = _send(client, entries, sizes, pending, max_bytes, ids, errors)
        if not pending:
            break
    if errors:
        raise _failure(entries, ids, errors)
    return [event_id for event_id in ids if event_id]  # every one, once no entry has an error


def _send(client, entries, sizes, pending, max_bytes, ids, errors) -> list[int]:
    """One round of PutEvents calls over ``pending``; records ids and errors, returns what to retry."""
    retry = []
    for call in chunks(pending, sizes, max_bytes):
        try:
            results = client.put_events(Entries=[entries[i] for i in call])["Entries"]
        except (ClientError, BotoCoreError) as exc:
            failure, retryable = _call_error(exc)
            errors.update(dict.fromkeys(call, failure))
            if not retryable:  # refused for good (permissions, missing bus): the rest would be too
                raise _failure(entries, ids, errors, failure) from exc
            retry += call
            continue
        for index, result in zip(call, results):
            if result.get("EventId"):
                ids[index] = result["EventId"]
                errors.pop(index, None)
            else:
                errors[index] = {"ErrorCode": result.get("ErrorCode"), "ErrorMessage": result.get("ErrorMessage")}
                if result.get("ErrorCode") in RETRYABLE_ENTRY_ERRORS:
                    retry.append(index)
    return retry


def _call_error(exc: Exception) -> tuple[dict, bool]:
    """(ErrorCode and ErrorMessage, retryable) for a PutEvents call that raised."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = error.get("Code", "Unknown")
        retryable = code in RETRYABLE_CALL_ERRORS or status >= 500
        return {"ErrorCode": code, "ErrorMessage": error.get("Message", "")}, retryable
    # Connection trouble the SDK already retried: the request may or may not have gone through.
    return {"ErrorCode": type(exc).__name__, "ErrorMessage": str(exc)}, False


def _failure(entries: list[dict], ids: list, errors: dict[int, dict], stopped_by: dict | None = None) -> PublishError:
    """Every entry without an id failed; those never sent carry the error that stopped the publish."""
    failed = [{**entry, **errors.get(i, stopped_by or {})} for i, entry in enumerate(entries) if ids[i] is None]
    return PublishError(failed, [i for i in ids if i])

"""EventBridge's delivery semantics, as code the local stack runs and tests can drive without it.

- A target that fails is retried with exponential backoff and jitter until its retry policy's
  ``MaximumRetryAttempts`` or ``MaximumEventAgeInSeconds`` runs out; non-retriable errors
  (missing resource, missing permission) go straight to the dead-letter queue, and so does a
  worker's ContractError: the event breaks its contract and would on every attempt. (On AWS,
  Lambda's asynchronous invocation retries a function error itself, at most twice; see README.)
- A dead-lettered event is the original event as the SQS message body, with AWS's message
  attributes: RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION and
  RETRY_ATTEMPTS.
- The archive keeps every event its pattern matches unless it carries ``replay-name``: AWS's
  managed ``Events-Archive-<name>`` rule adds ``{"replay-name": [{"exists": false}]}``.
- A replayed event is the original envelope plus ``replay-name`` (placed after ``region``, as
  AWS sends it), delivered only to the rules the replay names.
"""
from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mangaassist.backoff import full_jitter
from mangaassist.contracts import ContractError
from mangaassist.events.patterns import compile_pattern
from mangaassist_dev.jsonl import AppendLog, Damage, read_records
from mangaassist_dev.routing import RetryPolicy, Rule

# EventBridge does not publish its backoff schedule; these bound the exponential growth so
# 185 attempts fit in its 24 hour default (185 x 180 s = 9.25 h of waiting at most).
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 180.0

# ERROR_CODE values from the EventBridge user guide (eb-rule-dlq).
NO_RESOURCE = "NO_RESOURCE"
NO_PERMISSIONS = "NO_PERMISSIONS"
THROTTLING = "THROTTLING"
TIMEOUT = "TIMEOUT"
SDK_CLIENT_ERROR = "SDK_CLIENT_ERROR"
NON_RETRIABLE = {NO_RESOURCE, NO_PERMISSIONS}

MAX_RETRY_ATTEMPTS = "MaximumRetryAttempts"
MAX_EVENT_AGE = "MaximumEventAgeInSeconds"


class TargetError(Exception):
    """A failed invocation, with the ERROR_CODE EventBridge would record for it."""

    def __init__(self, code: str, message: str, *, deterministic: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.deterministic = deterministic  # the target fails this event every time: retrying is waste

    @property
    def retriable(self) -> bool:
        return self.code not in NON_RETRIABLE and not self.deterministic


def as_target_error(exc: BaseException) -> TargetError:
    if isinstance(exc, TargetError):
        return exc
    if isinstance(exc, TimeoutError):
        return TargetError(TIMEOUT, str(exc) or "target timed out")
    # A worker refusing the event's contract on receipt would refuse it on every attempt.
    return TargetError(SDK_CLIENT_ERROR, f"{type(exc).__name__}: {exc}", deterministic=isinstance(exc, ContractError))


@dataclass(frozen=True)
class Outcome:
    status: str  # "delivered" or "dead_lettered"
    attempts: int
    error: TargetError | None = None
    exhausted: str | None = None  # which limit ran out, for EXHAUSTED_RETRY_CONDITION

    @property
    def retry_attempts(self) -> int:
        return max(self.attempts - 1, 0)


def backoff_seconds(retry: int, rng: random.Random) -> float:
    """Full-jitter exponential backoff before retry number ``retry`` (0-based)."""
    return full_jitter(retry, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, rng.random)


def deliver(
    invoke: Callable[[], None],
    policy: RetryPolicy,
    *,
    time_scale: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[int, TargetError], None] | None = None,
) -> Outcome:
    """Invoke a target until it succeeds or its retry policy runs out.

    ``time_scale`` shrinks every delay and the event-age clock alike (0.001 turns EventBridge's
    hours into seconds), so the number of attempts always follows the policy.
    """
    rng = rng or random.Random()
    started = clock()
    attempts = 0
    while True:
        attempts += 1
        try:
            invoke()
            return Outcome("delivered", attempts)
        except Exception as exc:  # a target's failure is data here, never a crash of the router
            error = as_target_error(exc)
        if not error.retriable:
            return Outcome("dead_lettered", attempts, error)
        if attempts - 1 >= policy.maximum_retry_attempts:
            return Outcome("dead_lettered", attempts, error, MAX_RETRY_ATTEMPTS)
        delay = backoff_seconds(attempts - 1, rng)
        age = (clock() - started) / time_scale if time_scale else 0.0
        if age + delay > policy.maximum_event_age_in_seconds:
            return Outcome("dead_lettered", attempts, error, MAX_EVENT_AGE)
        if on_retry:
            on_retry(attempts, error)
        sleep(delay * time_scale)


def _attr(value) -> dict:
    return {"DataType": "String", "StringValue": str(value)}


def dead_letter_message(event: dict, rule_arn: str, target_arn: str, outcome: Outcome) -> dict:
    """The SQS SendMessage arguments EventBridge uses for a dead-lettered event."""
    attributes = {
        "RULE_ARN": _attr(rule_arn),
        "TARGET_ARN": _attr(target_arn),
        "ERROR_CODE": _attr(outcome.error.code),
        "ERROR_MESSAGE": _attr(outcome.error.message[:1024] or "-"),
        "RETRY_ATTEMPTS": _attr(outcome.retry_attempts),
    }
    if outcome.exhausted:
        attributes["EXHAUSTED_RETRY_CONDITION"] = _attr(outcome.exhausted)
    return {"MessageBody": json.dumps(event, separators=(",", ":")), "MessageAttributes": attributes}


@dataclass(frozen=True)
class DeadLetter:
    event: dict
    rule_arn: str
    target_arn: str
    error_code: str
    error_message: str
    retry_attempts: int


def parse_dead_letter(message: dict) -> DeadLetter:
    """Read an SQS message (as ReceiveMessage returns it) from a target's DLQ.

    Two writers use these queues on AWS: EventBridge (the event as the body, attributes
    RULE_ARN, TARGET_ARN, ...) and Lambda's failure destination for the target function (a JSON
    record with ``requestContext`` and ``requestPayload``, no attributes).
    """
    attrs = {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}
    if "TARGET_ARN" in attrs:
        return DeadLetter(
            event=json.loads(message["Body"]),
            rule_arn=attrs.get("RULE_ARN", ""),
            target_arn=attrs["TARGET_ARN"],
            error_code=attrs.get("ERROR_CODE", ""),
            error_message=attrs.get("ERROR_MESSAGE", ""),
            retry_attempts=int(attrs.get("RETRY_ATTEMPTS") or 0),
        )
    try:
        record = json.loads(message["Body"])
        context, event = record["requestContext"], record["requestPayload"]
        function_arn = context["functionArn"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("not a dead letter: no TARGET_ARN attribute and not a Lambda failure record") from None
    if function_arn.count(":") > 6:  # drop the version qualifier (":$LATEST"): redrive the function
        function_arn = function_arn.rsplit(":", 1)[0]
    response = record.get("responsePayload") or {}
    return DeadLetter(
        event=event,
        rule_arn="",
        target_arn=function_arn,
        error_code=context.get("condition", ""),
        error_message=str(response.get("errorMessage", "")) if isinstance(response, dict) else str(response),
        retry_attempts=int(context.get("approximateInvokeCount", 1)) - 1,
    )


def replayed(event: dict, replay_name: str) -> dict:
    """The event as a replay delivers it: ``replay-name`` right after ``region``."""
    out = {}
    for key, value in event.items():
        if key == "replay-name":
            continue
        out[key] = value
        if key == "region":
            out["replay-name"] = replay_name
    out.setdefault("replay-name", replay_name)
    return out


def replay_rules(rules: Iterable[Rule], event: dict, only: Iterable[str] | None) -> list[Rule]:
    """The rules a replayed event reaches: those that match, limited to the replay's filter."""
    chosen = None if only is None else set(only)
    return [r for r in rules if (chosen is None or r.name in chosen) and r.matches(event)]


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()  # Python 3.11+ reads a trailing "Z" as UTC


class Archive:
    """An event archive: what its pattern matches, minus replays, kept as JSON lines on disk.

    The local stack's archive is also its log of accepted events (mangaassist_dev.journal says
    which of their deliveries finished), so an event is on disk before PutEvents answers. A
    damaged line is skipped (``damage`` says which), never a reason not to start.
    """

    def __init__(self, name: str, event_pattern: dict | None, path: Path | None = None):
        self.name = name
        managed = dict(event_pattern or {})
        managed["replay-name"] = [{"exists": False}]
        self._matches = compile_pattern(managed)
        self._lock = threading.Lock()
        self._log = AppendLog(path) if path else None
        self._events: list[tuple[float, dict]] = []
        self._by_id: dict[str, dict] = {}
        self._size = 0
        self.damage = Damage(path or Path("archive"))
        if path:
            for number, record in read_records(path, self.damage):
                event = record.get("event")
                try:
                    if not (isinstance(event["id"], str) and isinstance(event["time"], str)):
                        raise TypeError
                    self._keep(float(record.get("archived_at") or 0), event)
                except (KeyError, TypeError, ValueError):  # JSON, but not an archived event
                    self.damage.lines.append(number)

    def _keep(self, stamp: float, event: dict) -> None:
        self._events.append((stamp, event))
        self._by_id[event["id"]] = event
        self._size += len(json.dumps(event, separators=(",", ":")))

    def record(self, event: dict, archived_at: float | None = None) -> bool:
        if not self._matches(event):
            return False
        stamp = time.time() if archived_at is None else archived_at
        with self._lock:
            self._keep(stamp, event)
            if self._log:
                self._log.append({"archived_at": stamp, "event": event})
        return True

    def close(self) -> None:
        if self._log:
            self._log.close()

    def get(self, event_id: str) -> dict | None:
        return self._by_id.get(event_id)

    def archived(self) -> list[tuple[float, dict]]:
        """Every (archived_at, event), in the order they were archived."""
        with self._lock:
            return list(self._events)

    def between(self, start: float, end: float) -> list[dict]:
        """Archived events whose ``time`` lies in [start, end] (epoch seconds), oldest first."""
        with self._lock:
            events = [e for _, e in self._events]
        timed = []
        for event in events:
            try:
                timed.append((_epoch(event["time"]), event))
            except ValueError:  # a damaged time: no replay can ask for it
                continue
        return [e for _, e in sorted((p for p in timed if start <= p[0] <= end), key=lambda pair: pair[0])]

    @property
    def event_count(self) -> int:
        return len(self._events)

    @property
    def size_bytes(self) -> int:
        return self._size

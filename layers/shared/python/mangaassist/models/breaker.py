"""A circuit breaker per model whose state every Lambda container shares, in DynamoDB.

One item per model, ``pk = "breaker#<model_id>"``: ``state`` (closed | open | half_open),
``failures`` (consecutive failed calls, fleet-wide), ``opened_at`` and ``probe_at`` (epoch
seconds). Every transition is a conditional write, so containers racing on the same item agree:

- closed: calls pass; a failed call adds 1 to ``failures`` and the write that sees it reach
  ``threshold`` opens the circuit. A success resets ``failures``.
- open: calls are rejected (the router goes straight to the fallback model) until
  ``cooldown_seconds`` after ``opened_at``; then one caller claims the probe with a write
  conditioned on the ``opened_at`` it saw, so exactly one container tests the model.
- half_open: the prober's success closes the circuit, its failure re-opens it for another
  cooldown. A probe that never reports (its container died) is re-claimable after a cooldown.

Trade-off of the read cache: each container reuses the state it last read or wrote for
``cache_seconds`` (2 s), so the hot path costs no DynamoDB read. A container may therefore
call a model up to that long after another opened its circuit, or skip it that long after it
closed: a few extra failures or fallbacks, never a wrong transition, since writes stay
conditional. Successes write only when this container last saw failures to reset.

If the table cannot be reached the breaker fails open (the model is called) and logs it: the
breaker must never be the outage.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
DEFAULT_THRESHOLD = 5
DEFAULT_COOLDOWN_SECONDS = 30.0
DEFAULT_CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class BreakerState:
    state: str = CLOSED
    failures: int = 0
    opened_at: float | None = None
    probe_at: float | None = None

    @classmethod
    def from_item(cls, item: dict | None) -> BreakerState:
        item = item or {}

        def number(name):
            return float(item[name]["N"]) if name in item else None

        return cls(state=item.get("state", {}).get("S", CLOSED), failures=int(number("failures") or 0),
                   opened_at=number("opened_at"), probe_at=number("probe_at"))


@dataclass(frozen=True)
class Permit:
    """Leave to call the model; ``probe_at`` is set when this call is the half-open probe."""

    probe_at: float | None = None


class Breaker(Protocol):
    def acquire(self) -> Permit | None: ...

    def record_success(self, permit: Permit) -> None: ...

    def record_failure(self, permit: Permit) -> None: ...


class NoBreaker:
    """Stands in when no breaker table is configured: every call passes."""

    def acquire(self) -> Permit:
        return Permit()

    def record_success(self, permit: Permit) -> None:
        pass

    def record_failure(self, permit: Permit) -> None:
        pass


class CircuitBreaker:
    def __init__(self, model_id: str, table_name: str, *, client=None, threshold: int = DEFAULT_THRESHOLD,
                 cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS, cache_seconds: float = DEFAULT_CACHE_SECONDS,
                 clock: Callable[[], float] = time.time):
        self.model_id = model_id
        self.table_name = table_name
        self.threshold = threshold
        self.cooldown_seconds = cooldown_seconds
        self.cache_seconds = cache_seconds
        self._client = client
        self._clock = clock
        self._key = {"pk": {"S": f"breaker#{model_id}"}}
        self._cached: tuple[float, BreakerState] | None = None

    @property
    def client(self):
        if self._client is None:
            from mangaassist import clients

            self._client = clients.client("dynamodb", "breaker")  # a slow table must not slow the model call
        return self._client

    def acquire(self) -> Permit | None:
        """A permit to call the model, or None while the circuit is open."""
        return self._fail_open(self._acquire, Permit())

    def record_success(self, permit: Permit) -> None:
        self._fail_open(lambda: self._record_success(permit), None)

    def record_failure(self, permit: Permit) -> None:
        self._fail_open(lambda: self._record_failure(permit), None)

    def state(self) -> BreakerState:
        """The state as stored now, bypassing the cache (for operators and tests)."""
        self._cached = None
        return self._current()

    def _acquire(self) -> Permit | None:
        current, now = self._current(), self._clock()
        if current.state == CLOSED:
            return Permit()
        since_name = "opened_at" if current.state == OPEN else "probe_at"
        since = current.opened_at if current.state == OPEN else current.probe_at
        if now - (since or 0.0) < self.cooldown_seconds:  # a state without its time is long past
            return None
        values = {":half_open": HALF_OPEN, ":now": now, ":seen": current.state}
        if since is None:  # an item written without it (by hand, say): "NULL" is no number to compare
            condition = f"#state = :seen AND attribute_not_exists({since_name})"
        else:
            values[":since"] = since
            condition = f"#state = :seen AND {since_name} = :since"
        claimed = self._update("SET #state = :half_open, probe_at = :now", values, condition=condition)
        return Permit(probe_at=now) if claimed else None

    def _record_success(self, permit: Permit) -> None:
        if permit.probe_at is not None:
            closed = self._update("SET #state = :closed, failures = :zero REMOVE opened_at, probe_at",
                                  {":closed": CLOSED, ":zero": 0, ":half_open": HALF_OPEN, ":probe": permit.probe_at},
                                  condition="#state = :half_open AND probe_at = :probe")
            if closed:
                logger.warning("circuit for %s closed: the probe succeeded", self.model_id)
        elif self._current().failures:
            self._update("SET failures = :zero", {":zero": 0, ":closed": CLOSED},
                         condition="attribute_not_exists(#state) OR #state = :closed")

    def _record_failure(self, permit: Permit) -> None:
        now = self._clock()
        if permit.probe_at is not None:
            if self._update("SET #state = :open, opened_at = :now REMOVE probe_at",
                            {":open": OPEN, ":now": now, ":half_open": HALF_OPEN, ":probe": permit.probe_at},
                            condition="#state = :half_open AND probe_at = :probe"):
                logger.warning("circuit for %s re-opened: the probe failed", self.model_id)
            return
        current = self._update("ADD failures :one", {":one": 1})
        if current is None:  # unconditional: only a condition can leave it unapplied
            return
        if current.state == CLOSED and current.failures >= self.threshold:
            if self._update("SET #state = :open, opened_at = :now",
                            {":open": OPEN, ":now": now, ":closed": CLOSED, ":threshold": self.threshold},
                            condition="(attribute_not_exists(#state) OR #state = :closed) AND failures >= :threshold"):
                logger.warning("circuit for %s opened after %d consecutive failures", self.model_id, current.failures)

    def _current(self) -> BreakerState:
        now = self._clock()
        if self._cached and now - self._cached[0] < self.cache_seconds:
            return self._cached[1]
        item = self.client.get_item(TableName=self.table_name, Key=self._key, ConsistentRead=True).get("Item")
        return self._remember(BreakerState.from_item(item))

    def _update(self, expression: str, values: dict, condition: str | None = None) -> BreakerState | None:
        """Applies an update; the new state, or None when the condition no longer held."""
        from botocore.exceptions import ClientError

        request = {
            "TableName": self.table_name,
            "Key": self._key,
            "UpdateExpression": expression,
            "ExpressionAttributeValues": {name: _attribute(value) for name, value in values.items()},
            "ReturnValues": "ALL_NEW",
        }
        if condition:
            request["ConditionExpression"] = condition
        if "#state" in expression or "#state" in (condition or ""):  # STATE is a reserved word
            request["ExpressionAttributeNames"] = {"#state": "state"}
        try:
            item = self.client.update_item(**request)["Attributes"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            self._cached = None  # someone else moved the state: read it afresh next time
            return None
        return self._remember(BreakerState.from_item(item))

    def _remember(self, state: BreakerState) -> BreakerState:
        self._cached = (self._clock(), state)
        return state

    def _fail_open(self, action: Callable, fallback):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action()
        except (BotoCoreError, ClientError) as exc:
            logger.warning("breaker table %s unreachable, calling %s anyway: %s", self.table_name, self.model_id, exc)
            self._remember(BreakerState())  # and leave the table alone for cache_seconds
            return fallback


def _attribute(value) -> dict:
    return {"S": value} if isinstance(value, str) else {"N": repr(value)}

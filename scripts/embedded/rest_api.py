"""What API Gateway does to a REST request before the Lambda integration, done locally the same way.

In API Gateway's order (its developer guide, "Control access to a REST API" and "Throttle requests"):

1. the API key (``x-api-key``) must be one of the usage plan's: else 403 ``{"message": "Forbidden"}``;
2. the usage plan's token bucket per key (rate and burst) and its daily quota: 429
   ``{"message": "Too Many Requests"}`` or ``{"message": "Limit Exceeded"}``;
3. the route's Lambda authorizer (a REQUEST authorizer: the function gets the headers and query
   string; ``Unauthorized`` is 401 ``{"message": "Unauthorized"}``, a Deny policy 403); its context
   reaches the integration as ``requestContext.authorizer``;
4. the request validator: the body against the route's model (schemas/api), required parameters:
   400 ``{"message": "Invalid request body"}`` or ``{"message": "Missing required request
   parameters: [q]"}``.

The plan's numbers are Terraform's defaults for the clients' usage plan (modules/api): 100 requests
a second per key with bursts of 200, and 10,000 a day; the stack's settings change them.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mangaassist.contracts import ContractError, validate_api


@dataclass(frozen=True)
class Plan:
    rate: float = 100.0  # requests per second per key, refilled continuously
    burst: int = 200  # the bucket's size
    daily_quota: int = 10_000  # per key per UTC day


class UsagePlan:
    """A token bucket and a daily counter per API key id, as API Gateway keeps them."""

    def __init__(self, plan: Plan, clock: Callable[[], float] = time.monotonic,
                 day: Callable[[], str] = lambda: datetime.now(UTC).strftime("%Y-%m-%d")):
        self.plan, self.clock, self.day = plan, clock, day
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._used: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def admit(self, key_id: str) -> str | None:
        """None to let the request through, else API Gateway's message for the 429."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key_id, (float(self.plan.burst), now))
            tokens = min(float(self.plan.burst), tokens + (now - at) * self.plan.rate)
            if tokens < 1:
                self._buckets[key_id] = (tokens, now)
                return "Too Many Requests"
            today = (key_id, self.day())
            if self._used.get(today, 0) >= self.plan.daily_quota:
                self._buckets[key_id] = (tokens, now)
                return "Limit Exceeded"
            self._buckets[key_id] = (tokens - 1, now)
            self._used[today] = self._used.get(today, 0) + 1
            return None


def invalid_body(route: dict, body: bytes) -> bool:
    """Whether API Gateway's validator would refuse the body against the route's model."""
    contract = route.get("request")
    if not contract:
        return False
    try:
        validate_api(contract, json.loads(body or b"null"))
    except (ValueError, UnicodeDecodeError, ContractError):
        return True
    return False


def missing_parameters(route: dict, query: dict, headers: dict) -> list[str]:
    """The route's required query string and header parameters that are absent (API Gateway's
    validator checks presence, not the parameters' schemas)."""
    missing = []
    for parameter in route.get("parameters", []):
        if not parameter.get("required"):
            continue
        where = query if parameter["in"] == "query" else headers if parameter["in"] == "header" else None
        if where is not None and not where.get(parameter["name"] if parameter["in"] == "query"
                                               else parameter["name"].lower()):
            missing.append(parameter["name"])
    return missing


def authorizer_event(method_arn: str, method: str, resource: str, path: str, headers: dict, query: dict | None,
                     path_parameters: dict | None, request_context: dict) -> dict:
    """A REQUEST authorizer's event, as API Gateway sends it."""
    return {"type": "REQUEST", "methodArn": method_arn, "resource": resource, "path": path, "httpMethod": method,
            "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": query, "pathParameters": path_parameters, "stageVariables": None,
            "requestContext": request_context}


class AuthorizerRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def authorize(invoke: Callable[[dict], dict], event: dict) -> dict:
    """The authorizer's context for the integration; AuthorizerRefused(401 or 403) otherwise."""
    try:
        answer = invoke(event)
    except Exception as exc:
        if str(exc) == "Unauthorized":
            raise AuthorizerRefused(401, "Unauthorized") from None
        raise AuthorizerRefused(500, None) from exc  # type: ignore[arg-type]  # API Gateway: {"message": null}
    statements = (answer.get("policyDocument") or {}).get("Statement") or []
    if not any(s.get("Effect") == "Allow" for s in statements) or any(s.get("Effect") == "Deny" for s in statements):
        raise AuthorizerRefused(403, "User is not authorized to access this resource with an explicit deny")
    return {**(answer.get("context") or {}), "principalId": answer.get("principalId")}

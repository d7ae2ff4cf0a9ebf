"""What every client-API handler does around its own logic, on Powertools' REST resolver.

- ``json_body(event, contract)``: the body as JSON checked against ``schemas/api/<contract>``:
  400 ``invalid_json`` or 400 ``invalid_request`` with the failing path. (On AWS, API Gateway's
  request validator refuses schema violations first, answering ``{"message": "Invalid request
  body"}``; handlers check again because nothing else does for a direct invocation.)
- ``caller(event)``: who is asking: the API key's id (the client, which owns its sessions and
  jobs), and the end user and tier from a verified token (the authorizer's context) or the body.
- ``Deadline``: API Gateway gives up on an integration after 29 s. A handler answers 504 JSON
  before that, from the invocation's remaining time less a margin.
- ``install_error_handlers(app)``: every failure becomes JSON: ApiError -> its status; a model
  outage -> 503 with Retry-After; an AWS dependency failing -> 503 with Retry-After; the deadline
  -> 504; a bug -> 500 ``internal_error`` with the request id (logged with its traceback).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from mangaassist.contracts import ContractError, validate_api

T = TypeVar("T")
logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "2"
MAX_BODY_BYTES = 64 * 1024  # far above any request contract's limits; a bigger body is refused unread
GATEWAY_TIMEOUT_SECONDS = 29.0  # API Gateway's integration timeout (REST and WebSocket)
DEADLINE_MARGIN_SECONDS = 1.5  # time left to write the 504 and for API Gateway to pass it on
TIERS = ("free", "premium")
# A call that outlives its deadline keeps its thread until it returns (a thread cannot be
# stopped); the answer has gone by then. Lambda runs one request per container at a time.
_RUNNER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="deadline")


class ApiError(Exception):
    """A refusal the client can act on: ``status``, ``code``, ``message`` and optional details."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict | None = None, **details):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.details = details


class DeadlineExceeded(Exception):
    """The work did not finish before the answer had to go."""


def json_body(event: dict, contract: str) -> dict:
    body = event.get("body")
    if event.get("isBase64Encoded") and body:
        import base64

        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "invalid_json", "the body is not UTF-8 JSON") from exc
    if not body:
        raise ApiError(400, "invalid_json", "a JSON body is required")
    # bytes, not characters: a Japanese character is three (a character is never fewer than one byte)
    if len(body) > MAX_BODY_BYTES or len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", "the body is not JSON") from exc
    try:
        validate_api(contract, document)
    except ContractError as exc:
        raise ApiError(400, "invalid_request", exc.message, path=exc.path) from exc
    return document


@dataclass(frozen=True)
class Caller:
    client_id: str  # the API key's id: it owns the client's sessions and jobs
    user_id: str | None  # a verified token's subject, else what the client said
    tier: str  # free | premium: from a verified token only (a client cannot promote itself)
    verified: bool  # whether user_id comes from a verified token


def caller(event: dict, claimed_user: str | None = None) -> Caller:
    context = event.get("requestContext") or {}
    identity = context.get("identity") or {}
    client_id = identity.get("apiKeyId") or "anonymous"
    authorizer = context.get("authorizer") or {}
    subject = authorizer.get("sub") or None
    claimed_tier = authorizer.get("tier")
    tier = claimed_tier if subject and isinstance(claimed_tier, str) and claimed_tier in TIERS else "free"
    return Caller(client_id=client_id, user_id=subject or claimed_user, tier=tier, verified=bool(subject))


class Deadline:
    """When the answer must go: API Gateway's 29 s, or the function's own timeout, less a margin."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.at = clock() + seconds

    @classmethod
    def for_invocation(cls, context: Any, ceiling: float = GATEWAY_TIMEOUT_SECONDS) -> Deadline:
        remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else ceiling
        return cls(max(0.0, min(remaining, ceiling) - DEADLINE_MARGIN_SECONDS))

    def left(self) -> float:
        return max(0.0, self.at - self.clock())

    def run(self, work: Callable[[], T]) -> T:
        """``work()``, or DeadlineExceeded once the deadline passes (the work is left to finish alone)."""
        left = self.left()
        if left <= 0:
            raise DeadlineExceeded()
        future = _RUNNER.submit(work)
        try:
            return future.result(timeout=left)
        except FutureTimeout as exc:
            raise DeadlineExceeded() from exc


def error_body(code: str, message: str, **details) -> dict:
    return {"error": code, "message": message, **details}


def install_error_handlers(app) -> None:
    """Register the JSON answers for every failure on a Powertools REST resolver."""
    from aws_lambda_powertools.event_handler import Response
    from botocore.exceptions import BotoCoreError, ClientError

    from mangaassist.models import ModelError

    def answer(status: int, body: dict, headers: dict | None = None) -> Response:
        return Response(status_code=status, content_type="application/json",
                        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")), headers=headers or {})

    @app.exception_handler(ApiError)
    def api_error(exc: ApiError):
        return answer(exc.status, error_body(exc.code, exc.message, **exc.details), exc.headers)

    @app.exception_handler(DeadlineExceeded)
    def deadline(_exc: DeadlineExceeded):
        logger.warning("answered 504: the work did not finish before the deadline")
        return answer(504, error_body("deadline_exceeded", "the answer took too long; retry, or ask something "
                                                           "shorter"), {"Retry-After": RETRY_AFTER_SECONDS})

    @app.exception_handler(ModelError)
    def model_outage(exc: ModelError):
        logger.warning("answered 503: the models failed: %s", exc)
        return answer(503, error_body("model_unavailable", "the assistant's models are unavailable; retry shortly",
                                      cause=exc.code), {"Retry-After": RETRY_AFTER_SECONDS})

    @app.exception_handler([BotoCoreError, ClientError])  # Powertools expands a list, not a tuple
    def dependency(exc: Exception):
        logger.warning("answered 503: an AWS dependency failed: %s", exc)
        return answer(503, error_body("unavailable", "a service the assistant depends on is unavailable; retry "
                                                     "shortly"), {"Retry-After": RETRY_AFTER_SECONDS})

    @app.exception_handler(Exception)
    def bug(exc: Exception):
        request_id = (app.current_event.request_context.request_id if app.current_event else None) or "-"
        logger.exception("answered 500 to request %s", request_id)
        return answer(500, error_body("internal_error", "something went wrong on our side; it was logged",
                                      request_id=request_id))

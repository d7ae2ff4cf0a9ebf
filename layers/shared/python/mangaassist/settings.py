"""Every environment variable the functions read, in one place, read once per container.

Terraform sets these on each function (terraform/main.tf); the local stack sets the very same
names (scripts/embedded/stack.py). There are no local defaults here: a value that differs
between AWS and a laptop is set by whoever deploys, so a function never silently runs with a
laptop's setting. Defaults exist only where AWS itself has one (the 256 KB event size).

Each concern is a frozen dataclass returned by a cached function. A handler asks for the
concerns it needs at import, during Lambda's init, so a missing or malformed value fails the
init with the variable's name (``MissingSetting: EVENT_BUS_NAME is not set``) instead of the
first request. Tests change the environment and call :func:`reload`.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

T = TypeVar("T")
_REQUIRED = object()


class MissingSetting(RuntimeError):
    """A required environment variable is not set, or is set to something unusable."""


def _read(name: str, parse: Callable[[str], T] = str, default=_REQUIRED, choices: tuple | None = None) -> T:  # type: ignore[assignment]
    raw = os.environ.get(name)
    if raw is None or raw == "":
        if default is _REQUIRED:
            raise MissingSetting(f"{name} is not set")
        return default
    try:
        value = parse(raw)
    except ValueError as exc:
        raise MissingSetting(f"{name}={raw!r} is not valid: {exc}") from exc
    if choices is not None and value not in choices:
        raise MissingSetting(f"{name}={raw!r} must be one of {', '.join(map(str, choices))}")
    return value


def _optional(name: str) -> str | None:
    return os.environ.get(name) or None


@dataclass(frozen=True)
class Runtime:
    """What Lambda itself sets on every function."""

    region: str  # AWS_REGION
    function_name: str | None  # AWS_LAMBDA_FUNCTION_NAME


@cache
def runtime() -> Runtime:
    return Runtime(region=_read("AWS_REGION"), function_name=_optional("AWS_LAMBDA_FUNCTION_NAME"))


@cache
def lambda_runtime_api() -> str | None:
    """AWS_LAMBDA_RUNTIME_API: where extensions register; unset off Lambda (tests, scripts, the stack)."""
    return _optional("AWS_LAMBDA_RUNTIME_API")


@cache
def build_version() -> str:
    """BUILD_VERSION: the build's id, from build/manifest.json."""
    return _read("BUILD_VERSION")


# EventBridge's documented entry limit; AWS raised the bus limit to 1 MB in 2026.
DEFAULT_MAX_EVENT_BYTES = 256 * 1024
MAX_EVENT_BYTES_CEILING = 1024 * 1024


def _event_bytes(raw: str) -> int:
    value = int(raw)
    if not 0 < value <= MAX_EVENT_BYTES_CEILING:
        raise ValueError(f"EventBridge takes 1 to {MAX_EVENT_BYTES_CEILING} bytes")
    return value


@dataclass(frozen=True)
class Events:
    bus_name: str  # EVENT_BUS_NAME
    max_event_bytes: int  # MANGAASSIST_MAX_EVENT_BYTES


@cache
def events() -> Events:
    return Events(bus_name=_read("EVENT_BUS_NAME"),
                  max_event_bytes=_read("MANGAASSIST_MAX_EVENT_BYTES", _event_bytes, DEFAULT_MAX_EVENT_BYTES))


@dataclass(frozen=True)
class Webhooks:
    sources_json: str  # WEBHOOK_SOURCES: wiring.json's "sources", as JSON
    secret_prefix: str  # WEBHOOK_SECRET_PREFIX: <prefix>/webhooks/
    max_body_bytes: int  # WEBHOOK_MAX_BODY_BYTES
    raw_payloads_bucket: str  # RAW_PAYLOADS_BUCKET
    idempotency_table: str  # IDEMPOTENCY_TABLE


@cache
def webhooks() -> Webhooks:
    return Webhooks(sources_json=_read("WEBHOOK_SOURCES"), secret_prefix=_read("WEBHOOK_SECRET_PREFIX"),
                    max_body_bytes=_read("WEBHOOK_MAX_BODY_BYTES", int), raw_payloads_bucket=bucket("raw_payloads"),
                    idempotency_table=table("idempotency"))


@dataclass(frozen=True)
class Models:
    provider: str  # MODEL_PROVIDER: bedrock | local
    fast_id: str  # MODEL_FAST_ID
    fallback_id: str  # MODEL_FALLBACK_ID
    breaker_table: str | None  # BREAKER_TABLE: unset, no circuit breaker
    # The offline provider's pace, so timings mean something (required with MODEL_PROVIDER=local):
    local_latency_ms: int  # LOCAL_MODEL_LATENCY_MS: before the first token
    local_tokens_per_second: float  # LOCAL_MODEL_TOKENS_PER_SECOND: 0 streams at once


@cache
def models() -> Models:
    provider: str = _read("MODEL_PROVIDER", choices=("bedrock", "local"))
    local = provider == "local"
    return Models(provider=provider, fast_id=_read("MODEL_FAST_ID"), fallback_id=_read("MODEL_FALLBACK_ID"),
                  breaker_table=_optional("BREAKER_TABLE"),
                  local_latency_ms=_read("LOCAL_MODEL_LATENCY_MS", int) if local else 0,
                  local_tokens_per_second=_read("LOCAL_MODEL_TOKENS_PER_SECOND", float) if local else 0.0)


@dataclass(frozen=True)
class Search:
    embeddings_provider: str  # EMBEDDINGS_PROVIDER: bedrock | local
    embeddings_model_id: str  # EMBEDDINGS_MODEL_ID
    embeddings_dimension: int  # EMBEDDINGS_DIMENSION, which the index is created with
    vector_store: str  # VECTOR_STORE: opensearch | local
    vector_index: str  # VECTOR_INDEX
    opensearch_endpoint: str | None  # OPENSEARCH_ENDPOINT: required with VECTOR_STORE=opensearch
    local_data_dir: str | None  # LOCAL_DATA_DIR: required with VECTOR_STORE=local


@cache
def search() -> Search:
    store: str = _read("VECTOR_STORE", choices=("opensearch", "local"))
    return Search(
        embeddings_provider=_read("EMBEDDINGS_PROVIDER", choices=("bedrock", "local")),
        embeddings_model_id=_read("EMBEDDINGS_MODEL_ID"),
        embeddings_dimension=_read("EMBEDDINGS_DIMENSION", int),
        vector_store=store,
        vector_index=_read("VECTOR_INDEX"),
        opensearch_endpoint=_read("OPENSEARCH_ENDPOINT") if store == "opensearch" else None,
        local_data_dir=_read("LOCAL_DATA_DIR") if store == "local" else None,
    )


@dataclass(frozen=True)
class Flags:
    """Where the feature flags are (AppConfig), how long a container trusts what it read, and the
    model a rollout flag's ``candidate`` names."""

    application: str  # APPCONFIG_APPLICATION
    environment: str  # APPCONFIG_ENVIRONMENT
    profile: str  # APPCONFIG_PROFILE: the feature-flags configuration profile
    max_age_seconds: int  # FLAGS_MAX_AGE_SECONDS: a change reaches every container within this
    candidate_model_id: str | None  # MODEL_CANDIDATE_ID: the model a rollout tries; unset, none


@cache
def flags() -> Flags:
    return Flags(application=_read("APPCONFIG_APPLICATION"), environment=_read("APPCONFIG_ENVIRONMENT"),
                 profile=_read("APPCONFIG_PROFILE"), max_age_seconds=_read("FLAGS_MAX_AGE_SECONDS", int),
                 candidate_model_id=_optional("MODEL_CANDIDATE_ID"))


@dataclass(frozen=True)
class Notifications:
    secret_prefix: str  # NOTIFY_SECRET_PREFIX: <prefix>/subscriptions/, one Secrets Manager secret per subscription
    allow_loopback: bool  # NOTIFY_ALLOW_LOOPBACK: true only where receivers run on 127.0.0.1 (the local stack)
    time_scale: float  # NOTIFY_TIME_SCALE: multiplies the retry schedule (1 on AWS; the stack shrinks it)
    timeout_seconds: float = 10.0  # NOTIFY_TIMEOUT_SECONDS: one attempt's bound, connect to the last byte read
    cache_seconds: float = 30.0  # NOTIFY_CACHE_SECONDS: how long a container keeps subscriptions and secrets
    ca_file: str | None = None  # NOTIFY_CA_FILE: the CAs https receivers are checked against instead of the
    # system's (the local stack's receivers on 127.0.0.1 use a development CA); unset on AWS


@cache
def notifications() -> Notifications:
    return Notifications(secret_prefix=_read("NOTIFY_SECRET_PREFIX"),
                         allow_loopback=_read("NOTIFY_ALLOW_LOOPBACK", _boolean),
                         time_scale=_read("NOTIFY_TIME_SCALE", float),
                         timeout_seconds=_read("NOTIFY_TIMEOUT_SECONDS", _positive, 10.0),
                         cache_seconds=_read("NOTIFY_CACHE_SECONDS", _not_negative, 30.0),
                         ca_file=_optional("NOTIFY_CA_FILE"))


def _positive(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("a number of seconds above 0")
    return value


def _not_negative(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("a number of seconds, 0 or more")
    return value


def _boolean(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ValueError("true or false")
    return raw.lower() == "true"


@dataclass(frozen=True)
class Auth:
    """The authorizer's: whose end-user tokens the APIs accept. Without an issuer (a deployment
    with no identity provider) no token verifies: anonymous requests only."""

    issuer: str | None  # JWT_ISSUER: the tokens' iss (a Cognito user pool's URL, say)
    audience: str | None  # JWT_AUDIENCE: their aud (the app client id); required with an issuer
    jwks_url: str | None  # JWT_JWKS_URL: where the issuer's public keys are; required with an issuer
    required: bool  # JWT_REQUIRED: true refuses requests without a token (401)


@cache
def auth() -> Auth:
    issuer = _optional("JWT_ISSUER")
    return Auth(issuer=issuer, audience=_read("JWT_AUDIENCE") if issuer else None,
                jwks_url=_read("JWT_JWKS_URL") if issuer else None, required=_read("JWT_REQUIRED", _boolean))


@cache
def table(logical: str) -> str:
    """A DynamoDB table's name by its wiring.json key: ``<KEY>_TABLE``."""
    return _read(f"{logical.upper()}_TABLE")


@cache
def bucket(logical: str) -> str:
    """An S3 bucket's name by its wiring.json key: ``<KEY>_BUCKET``."""
    return _read(f"{logical.upper()}_BUCKET")


@cache
def queue_url(logical: str) -> str:
    """An SQS queue's URL by its wiring.json key: ``<KEY>_QUEUE_URL``."""
    return _read(f"{logical.upper()}_QUEUE_URL")


@cache
def dlq_url(logical: str) -> str:
    """A queue's own dead-letter queue's URL by the queue's wiring.json key: ``<KEY>_DLQ_URL``."""
    return _read(f"{logical.upper()}_DLQ_URL")


@cache
def websocket_callback_url() -> str:
    """WEBSOCKET_CALLBACK_URL: the WebSocket stage's @connections endpoint (https://<api>.execute-api.
    <region>.amazonaws.com/<stage>; the local gateway's own URL offline)."""
    return _read("WEBSOCKET_CALLBACK_URL")


@cache
def job_max_attempts() -> int:
    """JOB_MAX_ATTEMPTS: deliveries of a job's message before the worker gives up on it (the jobs
    queue's maxReceiveCount: the last attempt records the failure instead of retrying)."""
    return _read("JOB_MAX_ATTEMPTS", int)


@cache
def schemas_dir() -> str | None:
    """MANGAASSIST_SCHEMAS_DIR: where the contracts are, when not inside the layer (tests, tools)."""
    return _optional("MANGAASSIST_SCHEMAS_DIR")


def reload() -> None:
    """Forget what was read: the next call reads the environment again (tests)."""
    for read in (runtime, lambda_runtime_api, build_version, events, webhooks, models, search, auth, flags,
                 notifications, table, bucket, queue_url, dlq_url, websocket_callback_url, job_max_attempts,
                 schemas_dir):
        read.cache_clear()

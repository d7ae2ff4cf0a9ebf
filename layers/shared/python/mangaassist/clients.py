"""Every boto3 client the functions use, built once per container, in one place.

Lambda reuses a container for many invocations and building a client costs more than most
calls it makes, so each (service, profile) is built on first use and kept. A profile is a
botocore Config chosen for how its caller copes with failure:

- ``default``: short timeouts and the SDK's standard retries;
- ``publish``: one quick SDK retry for connection hiccups, the publisher owns the retry budget;
- ``model``: one attempt with a long read timeout, because the model router retries and falls
  back itself (the SDK's retries would hide throttling from it and stretch the latency);
- ``breaker``: one-second timeouts, because the circuit breaker sits in front of every model call.

boto3 is imported on the first call, not at import: a function that never calls AWS never pays
for it. Tests call :func:`reset` so each test's mock sees clients created inside it.
"""
from __future__ import annotations

import threading
from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    "default": {"connect_timeout": 2, "read_timeout": 5, "retries": {"mode": "standard"}},
    "publish": {"connect_timeout": 2, "read_timeout": 5, "retries": {"mode": "standard", "max_attempts": 2}},
    "model": {"connect_timeout": 2, "read_timeout": 20, "retries": {"total_max_attempts": 1}},
    "breaker": {"connect_timeout": 1, "read_timeout": 1, "retries": {"total_max_attempts": 2}},
}
_built: dict[tuple, Any] = {}
_lock = threading.Lock()  # boto3's default session is not safe to build clients from concurrently


def client(service: str, profile: str = "default", endpoint_url: str | None = None) -> Any:
    """``endpoint_url``: a service reached at a deployment's own URL (API Gateway's @connections)."""
    key = (service, profile) if endpoint_url is None else (service, profile, endpoint_url)
    found = _built.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _built:
            import boto3
            from botocore.config import Config

            _built[key] = boto3.client(service, config=Config(**PROFILES[profile]), endpoint_url=endpoint_url)
        return _built[key]


class Lazy:
    """A client built on its first use, for holders that may never call it (a dispatcher's retry
    queue, a WebSocket route's queue on $connect): each client not built saves a cold start ~5-15 ms.
    Every attribute is the current client's, so a holder follows :func:`reset` too."""

    def __init__(self, service: str, profile: str = "default", endpoint_url: str | None = None):
        self._args = (service, profile, endpoint_url)

    def __getattr__(self, name: str) -> Any:
        return getattr(client(*self._args), name)


def lazy(service: str, profile: str = "default", endpoint_url: str | None = None) -> Any:
    """:func:`client`, built when it is first used rather than now."""
    return Lazy(service, profile, endpoint_url)


def reset() -> None:
    """Forget every client (tests: a mock started later must see new clients)."""
    with _lock:
        _built.clear()

"""Function logs in the `make run` terminal: one readable line each, with the correlation id.

On Lambda each function's Powertools Logger writes JSON lines to CloudWatch. Here every function
runs in one process, on many threads, so the stack configures the service's Powertools logger
before any function is imported (Powertools then reuses it: same handler, same formatter), with a
formatter whose ``serialize`` (Powertools' documented extension point) writes::

    12:04:31.208 INFO  webhook_ingress    7f3c9a1e-…  webhook answered  status=202 path=/webhooks/stripe

The layer's standard-library loggers (``mangaassist.workers...``) are its children and come out
the same way. The function and correlation id come from the invocation running on the thread
(``invocation``), not from keys appended to the shared formatter, which threads would mix up.
The correlation id is the EventBridge event id for bus events, the request id for HTTP requests
(also sent back as ``x-amzn-RequestId``) and the first message id for SQS batches.

``FUNCTION_LOGS=json`` keeps Powertools' JSON, with ``function_name`` and ``correlation_id`` added.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator

_current = threading.local()
SKIPPED_KEYS = {"level", "location", "message", "timestamp", "service", "sampling_rate", "xray_trace_id",
                "exception", "exception_name", "exception_notes", "stack_trace", "cold_start", "function_name",
                "function_memory_size", "function_arn", "function_request_id", "correlation_id"}


def correlation_id(event) -> str | None:
    """What ties a function's log lines to what it was called for."""
    if not isinstance(event, dict):
        return None
    if "detail-type" in event and "id" in event:
        return str(event["id"])
    context = event.get("requestContext")
    if isinstance(context, dict) and context.get("requestId"):
        return str(context["requestId"])
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0].get("messageId") or "?"
        return first if len(records) == 1 else f"{first}+{len(records) - 1}"
    return None


@contextlib.contextmanager
def invocation(function: str, event) -> Iterator[None]:
    """Marks the running thread as running ``function`` for ``event`` (lambdas.Functions)."""
    previous = getattr(_current, "value", None)
    _current.value = (function, correlation_id(event))
    try:
        yield
    finally:
        _current.value = previous


def current() -> tuple[str | None, str | None]:
    return getattr(_current, "value", None) or (None, None)


def _readable_formatter():
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    class ReadableFormatter(LambdaPowertoolsFormatter):
        def serialize(self, log: dict) -> str:
            function, correlation = current()
            stamp = time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
            extras = " ".join(f"{k}={v}" for k, v in log.items() if k not in SKIPPED_KEYS and v not in (None, ""))
            line = (f"{stamp} {log.get('level', ''):<5} {function or log.get('service', '-'):<18} "
                    f"{correlation or '-'}  {log.get('message', '')}{'  ' + extras if extras else ''}")
            if log.get("exception_name"):
                last = str(log.get("exception", "")).strip().splitlines()[-1:] or [log["exception_name"]]
                line += f"  ({last[0]})"
            return line.replace("\n", " ")

    return ReadableFormatter()


def _json_formatter():
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    class CorrelatedJsonFormatter(LambdaPowertoolsFormatter):
        def serialize(self, log: dict) -> str:
            function, correlation = current()
            return super().serialize({**log, "function_name": function, "correlation_id": correlation})

    return CorrelatedJsonFormatter()


def configure(service: str, level: str, style: str = "text") -> None:
    """Before any function is imported: the service's logger, as every function's Logger() will
    find it. ``style``: ``text`` (one readable line) or ``json``."""
    from aws_lambda_powertools import Logger

    formatter = _json_formatter() if style == "json" else _readable_formatter()
    Logger(service=service, level=level, logger_formatter=formatter, stream=sys.stdout)
    # The stack's own loggers (gateway, emulator): short lines on stderr, never a traceback.
    stack = logging.getLogger("embedded")
    if not stack.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S"))
        stack.addHandler(handler)
        stack.setLevel(logging.INFO)
        stack.propagate = False

"""Function logs in the local stack's terminal (scripts/embedded/function_logs.py)."""
from __future__ import annotations

import json
import logging
import re

from embedded import function_logs


def record(message: str, **extra) -> logging.LogRecord:
    entry = logging.LogRecord("mangaassist.workers.orders", logging.INFO, __file__, 1, message, None, None)
    entry.__dict__.update(extra)
    return entry


def test_the_correlation_id_is_the_event_id_the_request_id_or_the_first_message_id():
    assert function_logs.correlation_id({"id": "e-1", "detail-type": "X", "source": "s"}) == "e-1"
    assert function_logs.correlation_id({"requestContext": {"requestId": "r-1"}}) == "r-1"
    assert function_logs.correlation_id({"Records": [{"messageId": "m-1"}, {"messageId": "m-2"}]}) == "m-1+1"
    assert function_logs.correlation_id({"Records": [{"messageId": "m-1"}]}) == "m-1"
    assert function_logs.correlation_id("not an event") is None and function_logs.correlation_id({}) is None


def test_a_log_line_is_one_readable_line_naming_the_function_and_the_correlation_id():
    formatter = function_logs._readable_formatter()
    with function_logs.invocation("order_confirmation", {"id": "e-42", "detail-type": "X", "source": "s"}):
        line = formatter.format(record("confirmed\nthe order", order_id="ord_1"))
    assert "\n" not in line
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} INFO  order_confirmation +e-42  confirmed the order  .*order_id=ord_1",
                    line), line
    outside = formatter.format(record("between invocations"))  # no invocation on this thread: the service, no id
    assert re.match(r"^\S+ INFO  \S+ +-  between invocations", outside), outside


def test_an_exception_stays_on_the_line_as_its_last_words():
    formatter = function_logs._readable_formatter()
    try:
        raise ValueError("bad detail")
    except ValueError:
        import sys

        entry = record("failed", exc_info=sys.exc_info())
    line = formatter.format(entry)
    assert "\n" not in line and line.endswith("(ValueError: bad detail)")


def test_json_stays_available_with_the_function_and_correlation_id_added():
    formatter = function_logs._json_formatter()
    with function_logs.invocation("search", {"requestContext": {"requestId": "r-7"}}):
        logged = json.loads(formatter.format(record("searched", k=5)))
    assert logged["message"] == "searched" and logged["k"] == 5
    assert (logged["function_name"], logged["correlation_id"]) == ("search", "r-7")

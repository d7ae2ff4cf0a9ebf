"""A webhook body as JSON the rest of the platform can hold: bounded nesting, finite numbers in range.

Python's json accepts what no partner sends and what the platform cannot keep:
- nesting deep enough to exhaust the recursion limit (in json itself past ~1000 levels, in
  Powertools' deepcopy of the payload from ~500): refused before parsing, by counting brackets
  outside strings, with MAX_DEPTH named in the error;
- ``NaN``, ``Infinity``, ``-Infinity`` and ``1e999`` (which parses as infinity): DynamoDB,
  EventBridge's numeric matching and JSON itself have no such numbers, so a worker would fail on
  them forever;
- integers beyond a signed 64-bit integer (no partner sends them; converting one to a date
  overflows), and non-zero numbers outside DynamoDB's magnitudes (1e-130 to 1e126), where a
  worker's write would fail on every retry.

Numbers are checked after parsing, so the error names the value's path (``data.object.amount``).
"""
from __future__ import annotations

import json
import math
import re

MAX_DEPTH = 64  # Stripe and GitHub payloads nest under 10 levels; the margin is wide on purpose
MAX_INTEGER = 2**63 - 1
SMALLEST, LARGEST = 1e-130, 1e126  # DynamoDB numbers: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")


class PayloadRefused(ValueError):
    """Not JSON the platform accepts: ``status`` 400 (not JSON at all) or 422 (a value out of range)."""

    def __init__(self, status: int, code: str, message: str, path: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.path = status, code, message, path


def nesting_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects, without parsing (so without recursion)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b'""', body)):
        if bracket in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_object(body: bytes) -> dict:
    """The body as a JSON object, or PayloadRefused saying what is wrong and where."""
    depth = nesting_depth(body)
    if depth > MAX_DEPTH:
        raise PayloadRefused(400, "nesting_too_deep", f"the body nests {depth} levels; the limit is {MAX_DEPTH}")
    try:
        payload = json.loads(body)  # NaN and Infinity parse, to be refused below with their path
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PayloadRefused(400, "invalid_json", "the body is not JSON") from exc
    if not isinstance(payload, dict):
        raise PayloadRefused(400, "invalid_json", "the body must be a JSON object")
    _check_numbers(payload)
    return payload


def _check_numbers(payload: dict) -> None:
    pending: list[tuple[object, str]] = [(payload, "")]
    while pending:
        value, path = pending.pop()
        if isinstance(value, dict):
            pending += [(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()]
        elif isinstance(value, list):
            pending += [(v, f"{path}[{i}]") for i, v in enumerate(value)]
        elif isinstance(value, float) and not math.isfinite(value):
            raise PayloadRefused(422, "number_out_of_range", "numbers must be finite", path)
        elif isinstance(value, float) and value and not SMALLEST <= abs(value) < LARGEST:
            raise PayloadRefused(422, "number_out_of_range", f"numbers must be 0 or of magnitude {SMALLEST} to "
                                                             f"{LARGEST}", path)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
            raise PayloadRefused(422, "number_out_of_range", f"integers must be within +/-{MAX_INTEGER}", path)

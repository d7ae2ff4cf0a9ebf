"""JSON answers in the shape function URLs and API Gateway proxy integrations expect.

Every error a client sees is ``{"error": <code>, "message": <what to do>, ...}``: a code a
program can branch on and a sentence a person can act on, never a stack trace.
"""
from __future__ import annotations

import json
from collections.abc import Mapping


def json_response(status: int, body: dict, headers: dict | None = None) -> dict:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str),
    }


def error_response(status: int, code: str, message: str, headers: dict | None = None, **details) -> dict:
    return json_response(status, {"error": code, "message": message, **details}, headers)


def header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of ``name``, matched case-insensitively: function URLs lowercase header names,
    API Gateway's REST events and partners do not."""
    wanted = name.lower()
    return [value for key, value in headers.items() if isinstance(key, str) and key.lower() == wanted]


def header(headers: Mapping[str, str], name: str) -> str | None:
    values = header_values(headers, name)
    return values[0] if values else None

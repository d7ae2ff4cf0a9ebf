"""JSON answers in the shape function URLs and API Gateway proxy integrations expect.

Every error a client sees is ``{"error": <code>, "message": <what to do>, ...}``: a code a
program can branch on and a sentence a person can act on, never a stack trace.
"""
from __future__ import annotations

import json


def json_response(status: int, body: dict, headers: dict | None = None) -> dict:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str),
    }


def error_response(status: int, code: str, message: str, headers: dict | None = None, **details) -> dict:
    return json_response(status, {"error": code, "message": message, **details}, headers)

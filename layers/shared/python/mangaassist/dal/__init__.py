"""Data access: each DynamoDB table behind a small class named for what the platform does with it.

Workers and handlers never build DynamoDB requests themselves (the cookbook's handlers -> logic ->
dal layering): ``Orders.mark_paid``, ``Products.write_revision``, ``Reviews.save_moderation``,
``UsageCounters.add``. Each class takes its table name and a client, so tests pass moto's.
"""
from __future__ import annotations

import json
from decimal import Decimal


def to_dynamo(value):
    """JSON-shaped data as the DynamoDB resource API wants it (floats become Decimals)."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def from_dynamo(value):
    """DynamoDB resource values as JSON-shaped data (whole Decimals become ints)."""
    return json.loads(json.dumps(value, default=lambda d: int(d) if d == d.to_integral_value() else float(d)))

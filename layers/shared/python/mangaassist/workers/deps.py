"""What workers talk to, created once per container and replaceable in tests.

Lambda reuses a container for many invocations, so clients, the model provider and the vector
store are built on first use and kept; tests pass their own.
"""
from __future__ import annotations

import json
import os
from decimal import Decimal
from functools import cached_property


class Deps:
    @cached_property
    def dynamodb(self):
        import boto3

        return boto3.resource("dynamodb")

    @cached_property
    def dynamodb_client(self):
        """The low-level client, for calls in DynamoDB's own attribute format (the resource's
        client rewrites parameters as Python values)."""
        import boto3

        return boto3.client("dynamodb")

    @cached_property
    def _tables(self) -> dict:
        return {}

    def table(self, name: str):
        """A table by logical name: ORDERS_TABLE, PRODUCTS_TABLE, ... from the environment.
        Kept per name: boto3 builds a resource's class every time one is made."""
        if name not in self._tables:
            self._tables[name] = self.dynamodb.Table(os.environ[f"{name.upper()}_TABLE"])
        return self._tables[name]

    @cached_property
    def provider(self):
        from mangaassist.models import get_provider

        return get_provider()

    @cached_property
    def embedder(self):
        from mangaassist.search.embeddings import get_embedder

        return get_embedder()

    @cached_property
    def store(self):
        from mangaassist.search import get_vector_store

        store = get_vector_store()
        store.ensure_index()
        return store

    def publish(self, events) -> list[str]:
        from mangaassist.events.publisher import publish

        return publish(events)


def to_dynamo(value):
    """JSON-shaped data as the DynamoDB resource API wants it (floats become Decimals)."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def from_dynamo(value):
    return json.loads(json.dumps(value, default=lambda d: int(d) if d == d.to_integral_value() else float(d)))

"""Model adapters: Bedrock (Converse) behind a router with fallback and shared circuit breakers,
or an offline grounded provider; both honour the same contract (see base.py).

Configuration: ``settings.models()`` (MODEL_PROVIDER ``bedrock`` or ``local``, MODEL_FAST_ID and
MODEL_FALLBACK_ID: model or inference profile ids or ARNs, BREAKER_TABLE: the DynamoDB table
holding the circuit breakers, none when unset).

Importing this package does not import boto3: clients are created when a provider is built.
"""
from __future__ import annotations

from functools import lru_cache

from mangaassist import clients, settings
from mangaassist.models.base import (
    Completion,
    CompletionStream,
    ModelError,
    ModelUnavailable,
    Provider,
    inference_event,
)
from mangaassist.models.bedrock import BedrockModel
from mangaassist.models.breaker import CircuitBreaker, NoBreaker
from mangaassist.models.pricing import PRICES_AS_OF, estimate_cost
from mangaassist.models.router import ModelRetry, ModelRouter, Route

__all__ = [
    "BedrockModel", "CircuitBreaker", "Completion", "CompletionStream", "LocalProvider", "ModelError",
    "ModelRetry", "ModelRouter", "ModelUnavailable", "NoBreaker", "PRICES_AS_OF", "Provider", "Route",
    "estimate_cost", "get_provider", "inference_event", "local_moderation",
]


def __getattr__(name: str):
    # The offline provider (lexicons, regular expressions) loads only where it is used.
    if name in ("LocalProvider", "local_moderation"):
        from mangaassist.models import local

        return getattr(local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_provider() -> Provider:
    """The configured provider, one per configuration per container, so clients and the
    breakers' caches live across invocations."""
    config = settings.models()
    if config.provider == "local":
        from mangaassist.models.local import LocalProvider

        return LocalProvider()
    return _bedrock_router(config.fast_id, config.fallback_id, config.breaker_table)


@lru_cache(maxsize=4)
def _bedrock_router(fast_id: str, fallback_id: str, breaker_table: str | None) -> Provider:
    client = clients.client("bedrock-runtime", "model")
    table_client = clients.client("dynamodb", "breaker") if breaker_table else None

    def route(model_id: str) -> Route:
        breaker = CircuitBreaker(model_id, breaker_table, client=table_client) if breaker_table else NoBreaker()
        return Route(BedrockModel(model_id, client=client), breaker)

    return ModelRouter([route(fast_id), route(fallback_id)])

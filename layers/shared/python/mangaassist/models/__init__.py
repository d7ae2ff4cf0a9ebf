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
    Model,
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


def get_provider(*, first: str | None = None, only: bool = False) -> ModelRouter:
    """The configured models behind the router, the fast one first (``first``: that model, which
    the flags chose, then the configured ones; ``only``: that model and no fallback, for a shadow
    call). One per configuration per container, so clients and the breakers' caches live across
    invocations. With MODEL_PROVIDER=local the offline provider stands in for each model, behind
    the same router and breakers."""
    config = settings.models()
    order: tuple[str, ...] = (config.fast_id, config.fallback_id)
    if first:
        order = (first,) if only else (first, *order)
    return _router(config.provider, order, config.breaker_table, (config.local_latency_ms,
                                                                  config.local_tokens_per_second))


@lru_cache(maxsize=8)
def _router(kind: str, model_ids: tuple[str, ...], breaker_table: str | None,
            local_pace: tuple[int, float]) -> ModelRouter:
    table_client = clients.client("dynamodb", "breaker") if breaker_table else None
    if kind == "local":
        from mangaassist.models.local import LocalProvider

        def model(model_id: str) -> Model:
            return LocalProvider(model_id, latency_ms=local_pace[0], tokens_per_second=local_pace[1])
    else:
        client = clients.client("bedrock-runtime", "model")

        def model(model_id: str) -> Model:
            return BedrockModel(model_id, client=client)

    def route(model_id: str) -> Route:
        breaker = CircuitBreaker(model_id, breaker_table, client=table_client) if breaker_table else NoBreaker()
        return Route(model(model_id), breaker)

    return ModelRouter([route(model_id) for model_id in dict.fromkeys(model_ids)])  # one route per distinct model

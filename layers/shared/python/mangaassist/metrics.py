"""Business metrics, as CloudWatch embedded metric format (EMF) lines through Powertools.

Namespace and service come from Powertools' own settings (POWERTOOLS_METRICS_NAMESPACE,
POWERTOOLS_SERVICE_NAME; Terraform sets ``MangaAssist`` and ``mangaassist``); the service is a
dimension of every metric, as Powertools adds it. POWERTOOLS_METRICS_DISABLED turns them off
(the local stack does). The dashboard and alarms (terraform/modules/observability) read:

- ``WebhookAccepted`` by ``source`` (every 2xx answer: accepted or duplicate);
- ``WebhookRefused`` by ``source`` and ``reason`` (the error code of every 4xx or 5xx);
- ``ModelCalls``, ``ModelInputTokens``, ``ModelOutputTokens``, ``ModelCostUSD`` and
  ``ModelFallbacks`` by ``model_id`` and ``feature``, for every model call.

Each call writes one line holding all its metrics, because their dimensions differ from one
call to the next (Powertools' Metrics shares one dimension set per invocation). A metric must
never fail a request: errors are logged.
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def emit(dimensions: dict[str, str], values: dict[str, tuple[str, float]]) -> None:
    """One EMF line: ``values`` is ``{name: (unit, value)}`` with Powertools' unit names."""
    try:
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

        provider = AmazonCloudWatchEMFProvider()
        for name, (unit, value) in values.items():
            provider.add_metric(name=name, unit=unit, value=value)
        for dimension, label in dimensions.items():
            provider.add_dimension(name=dimension, value=label)
        provider.flush_metrics()
    except Exception:
        logger.exception("metrics not emitted: %s", sorted(values))


def webhook_answered(source: str | None, status: int, reason: str | None) -> None:
    """A webhook's answer; ``source`` None (an unknown one) is counted as ``-`` to bound the dimension."""
    if 200 <= status < 300:
        emit({"source": source or "-"}, {"WebhookAccepted": ("Count", 1)})
    else:
        emit({"source": source or "-", "reason": reason or str(status)}, {"WebhookRefused": ("Count", 1)})


def model_call(completion, feature: str) -> None:
    """A model call's tokens, estimated cost and whether a fallback model answered."""
    emit({"model_id": completion.model_id, "feature": feature}, {
        "ModelCalls": ("Count", 1),
        "ModelInputTokens": ("Count", completion.input_tokens),
        "ModelOutputTokens": ("Count", completion.output_tokens),
        "ModelCostUSD": ("None", completion.estimated_cost_usd),
        "ModelFallbacks": ("Count", 1 if completion.fallback_used else 0),
    })

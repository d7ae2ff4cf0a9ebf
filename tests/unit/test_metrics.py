"""The business metrics are EMF lines CloudWatch turns into the dashboard's metrics."""
from __future__ import annotations

import json

import pytest

from mangaassist import metrics
from mangaassist.models.local import LocalProvider


@pytest.fixture
def emitted(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    def lines() -> list[dict]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]

    return lines


def metric_names(line: dict) -> set[str]:
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "MangaAssist"
    return {m["Name"] for m in directive["Metrics"]}


def dimensions(line: dict) -> set[str]:
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    return set(directive["Dimensions"][0])


def test_webhook_answers_are_accepted_or_refused_with_a_reason(emitted):
    metrics.webhook_answered("stripe", 202, None)
    metrics.webhook_answered("stripe", 200, None)
    metrics.webhook_answered("github", 401, "bad_signature")
    metrics.webhook_answered(None, 404, "unknown_source")
    accepted, duplicate, refused, unknown = emitted()
    assert metric_names(accepted) == metric_names(duplicate) == {"WebhookAccepted"}
    assert accepted["source"] == "stripe" and dimensions(accepted) == {"service", "source"}
    assert metric_names(refused) == {"WebhookRefused"} and dimensions(refused) == {"service", "source", "reason"}
    assert (refused["source"], refused["reason"], refused["WebhookRefused"]) == ("github", "bad_signature", [1.0])
    assert (unknown["source"], unknown["reason"]) == ("-", "unknown_source")


def test_a_model_call_is_one_line_with_tokens_cost_and_fallback(emitted):
    completion = LocalProvider("local.grounded-v1").converse([{"role": "user", "content": "ONE PIECE 107?"}])
    metrics.model_call(completion, "chat")
    (line,) = emitted()
    assert metric_names(line) == {"ModelCalls", "ModelInputTokens", "ModelOutputTokens", "ModelCostUSD",
                                  "ModelFallbacks"}
    assert dimensions(line) == {"service", "model_id", "feature"}
    assert (line["model_id"], line["feature"], line["ModelInputTokens"]) == ("local.grounded-v1", "chat",
                                                                            [float(completion.input_tokens)])


def test_disabled_metrics_print_nothing(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.webhook_answered("stripe", 202, None)
    assert capsys.readouterr().out == ""


def test_a_metric_that_cannot_be_emitted_never_fails_the_caller(monkeypatch, caplog):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE")
    metrics.webhook_answered("stripe", 202, None)
    assert "metrics not emitted" in caplog.text

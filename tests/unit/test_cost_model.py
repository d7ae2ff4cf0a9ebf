"""mangaassist_dev.cost_model: the model part of the capacity and cost model."""
from __future__ import annotations

import pytest
from mangaassist_dev import cost_model

from mangaassist.models.pricing import PRICES

HAIKU, SONNET = cost_model.FAST_MODEL, cost_model.FALLBACK_MODEL


def test_the_planned_mix_at_a_million_messages_a_day():
    projection = cost_model.project_model_cost(cost_model.planned_usage(fallback_share=0.05, input_tokens=1500,
                                                                        output_tokens=300))
    haiku = (1500 * PRICES[HAIKU].input_per_million + 300 * PRICES[HAIKU].output_per_million) / 1e6
    sonnet = (1500 * PRICES[SONNET].input_per_million + 300 * PRICES[SONNET].output_per_million) / 1e6
    assert projection.usd_per_message == pytest.approx(0.95 * haiku + 0.05 * sonnet)
    assert projection.usd_per_day == pytest.approx(1_000_000 * (0.95 * haiku + 0.05 * sonnet))
    assert projection.usd_per_month == pytest.approx(30 * projection.usd_per_day)
    assert projection.usd_per_million_messages == pytest.approx(projection.usd_per_day)
    by_model = {line.model_id: line for line in projection.lines}
    assert by_model[SONNET].share == pytest.approx(0.05) and by_model[HAIKU].calls_per_day == pytest.approx(950_000)


def test_measured_counters_keep_each_models_share_and_tokens_per_call():
    usage = {"total": {"calls": 4, "input_tokens": 999, "output_tokens": 999},
             HAIKU: {"calls": 3, "input_tokens": 3000, "output_tokens": 600},
             f"jp.{SONNET}": {"calls": 1, "input_tokens": 2000, "output_tokens": 500}}
    projection = cost_model.project_model_cost(usage, messages_per_day=1000)
    by_model = {line.model_id: line for line in projection.lines}
    assert set(by_model) == {HAIKU, f"jp.{SONNET}"}, "the total row is not a model"
    assert by_model[HAIKU].share == pytest.approx(0.75) and by_model[HAIKU].input_tokens_per_call == pytest.approx(1000)
    # An inference profile is priced as its foundation model.
    assert by_model[f"jp.{SONNET}"].usd_per_call == pytest.approx((2000 * 3.00 + 500 * 15.00) / 1e6)
    assert projection.usd_per_day == pytest.approx(1000 * (0.75 * by_model[HAIKU].usd_per_call
                                                           + 0.25 * by_model[f"jp.{SONNET}"].usd_per_call))


def test_an_unpriced_model_counts_as_zero_and_says_so():
    unknown = {"acme.unknown-v1": {"calls": 2, "input_tokens": 10, "output_tokens": 10}}
    projection = cost_model.project_model_cost(unknown)
    (line,) = projection.lines
    assert not line.priced and line.usd_per_call == 0 and "no price" in cost_model.format_projection(projection)


def test_no_calls_no_projection():
    assert cost_model.project_model_cost({}) is None
    assert cost_model.project_model_cost({"total": {"calls": 0}}) is None


def test_the_fallback_share_is_a_fraction():
    with pytest.raises(ValueError):
        cost_model.planned_usage(fallback_share=5)
    assert set(cost_model.planned_usage(fallback_share=0)) == {HAIKU}

"""Feature flags: rollout shares, segments, the kill switch, budgets, a broken or unreachable store,
and shadow mode, evaluated by Powertools over the repository's config/flags.json."""
from __future__ import annotations

import copy
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError

from mangaassist.chat.turn import seconds_to_midnight_utc
from mangaassist.flags import shadow
from mangaassist.flags.budget import Budgets
from mangaassist.flags.decisions import FlagBook, stable_hash
from mangaassist.flags.store import LastGoodStore

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = json.loads((ROOT / "config" / "flags.json").read_text())
FAST, FALLBACK, CANDIDATE = "anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0", \
    "anthropic.claude-3-5-haiku-20241022-v1:0"


class Store(StoreProvider):
    """What AppConfig would answer: a document, or a failure."""

    def __init__(self, document=None):
        super().__init__()
        self.document, self.calls = document, 0

    @property
    def get_raw_configuration(self):
        return self.get_configuration()

    def get_configuration(self):
        self.calls += 1
        if isinstance(self.document, Exception):
            raise self.document
        return copy.deepcopy(self.document)


def book(document=DOCUMENT, candidate: str | None = CANDIDATE) -> tuple[FlagBook, Store]:
    store = Store(document)
    return FlagBook(FeatureFlags(store=LastGoodStore(store, retry_seconds=0)), fast_id=FAST, fallback_id=FALLBACK,
                    candidate_id=candidate), store


def decide(flags: FlagBook, user: str, tier: str = "free", feature: str = "chat", request: str = "req-1"):
    return flags.decide(feature, flags.context(feature, tier=tier, subject=user, request_id=request, user_id=user))


def test_the_repository_flags_validate_and_every_feature_has_every_aspect():
    from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator

    SchemaValidator(DOCUMENT).validate()
    for feature in ("chat", "recommend", "generate"):
        for aspect in ("enabled", "model", "max_tokens", "prompt_version", "daily_token_budget", "over_budget",
                       "shadow_model", "shadow_texts"):
            assert f"{feature}_{aspect}" in DOCUMENT


def test_a_ten_percent_rollout_lands_on_ten_percent_of_users_and_each_stays_where_it_landed():
    flags, _ = book()
    users = [f"user-{i}" for i in range(10_000)]
    chosen = {user: decide(flags, user).model_id for user in users}
    share = sum(model == CANDIDATE for model in chosen.values()) / len(users)
    assert 0.08 <= share <= 0.12, share
    again, _ = book()  # another container, the same answers
    assert all(decide(again, user).model_id == chosen[user] for user in users[:2000])
    assert {decide(flags, "user-7", request=f"r{i}").model_id for i in range(20)} == {chosen["user-7"]}


def test_the_rollout_is_a_consistent_hash_of_the_user_not_of_the_request():
    inside = next(f"u{i}" for i in range(1000) if stable_hash(f"u{i}") % 100 < 10)
    flags, _ = book()
    assert (decide(flags, inside).model_id, decide(flags, inside).model_rule) == (CANDIDATE, "candidate")


def test_premium_customers_get_the_fallback_model_whatever_their_hash():
    flags, _ = book()
    for i in range(200):
        assert decide(flags, f"user-{i}", tier="premium").model_id == FALLBACK


def test_a_rollout_without_a_candidate_model_stays_on_the_fast_one():
    flags, _ = book(candidate=None)
    inside = next(f"u{i}" for i in range(1000) if stable_hash(f"u{i}") % 100 < 10)
    assert decide(flags, inside).model_id == FAST


def test_the_kill_switch_and_limits_come_from_the_document():
    document = copy.deepcopy(DOCUMENT)
    document["chat_enabled"]["default"] = False
    document["chat_max_tokens"]["default"] = 123
    document["chat_prompt_version"]["default"] = "v2"
    decision = decide(book(document)[0], "u1")
    assert (decision.enabled, decision.max_tokens, decision.prompt_version) == (False, 123, "v2")


@pytest.mark.parametrize("failure", [ConfigurationStoreError("AppConfig unreachable"), ValueError("not JSON"),
                                     {"chat_enabled": {"rules": "nonsense"}}])
def test_a_failing_or_broken_store_keeps_the_last_good_document(failure):
    document = copy.deepcopy(DOCUMENT)
    document["chat_max_tokens"]["default"] = 321
    flags, store = book(document)
    assert decide(flags, "u1").max_tokens == 321
    store.document = failure
    assert decide(flags, "u1").max_tokens == 321 and store.calls >= 2, "the last good document stays"


def test_with_no_good_document_ever_the_code_defaults_apply():
    flags, _ = book({"chat_enabled": {"rules": "nonsense"}})
    decision = decide(flags, "u1", tier="premium")
    assert (decision.enabled, decision.model_id, decision.max_tokens) == (True, FAST, 500)
    assert decision.shadow_model_id is None
    assert decide(book(ConfigurationStoreError("down"))[0], "u1", feature="generate").model_id == FALLBACK


def test_nonsense_values_fall_back_per_aspect():
    document = copy.deepcopy(DOCUMENT)
    document["chat_max_tokens"]["default"] = -5
    document["chat_over_budget"]["default"] = "explode"
    document["chat_daily_token_budget"]["default"] = "lots"
    decision = decide(book(document)[0], "u1")
    assert (decision.max_tokens, decision.over_budget, decision.daily_token_budget) == (500, "downgrade", 0)


def test_zero_or_one_token_limits_and_a_zero_budget_are_read_as_meant():
    document = copy.deepcopy(DOCUMENT)
    document["chat_max_tokens"]["default"] = 0
    document["chat_daily_token_budget"]["default"] = 0
    assert (decide(book(document)[0], "u1").max_tokens, decide(book(document)[0], "u1").daily_token_budget) == (500, 0)
    document["chat_max_tokens"]["default"] = 1
    document["chat_daily_token_budget"]["default"] = True
    assert (decide(book(document)[0], "u1").max_tokens, decide(book(document)[0], "u1").daily_token_budget) == (1, 0)


def test_a_flag_may_name_a_model_id_outright():
    document = copy.deepcopy(DOCUMENT)
    document["chat_model"] = {"default": "anthropic.claude-3-opus-20240229-v1:0", "boolean_type": False}
    decision = decide(book(document)[0], "u1")
    assert (decision.model_id, decision.model_rule) == ("anthropic.claude-3-opus-20240229-v1:0",) * 2


def test_the_evaluation_context_carries_the_feature_tier_user_and_both_hashes():
    flags, _ = book()
    assert flags.context("chat", tier="premium", subject="user-1", request_id="sess_1", user_id="user-1") == {
        "feature": "chat", "tier": "premium", "user_id": "user-1", "user_hash": stable_hash("user-1"),
        "request_hash": stable_hash("sess_1")}
    assert flags.context("generate", tier="free", subject="sess_1", request_id="r", user_id=None)["user_id"] == ""


def test_the_user_hash_is_the_same_in_every_release():
    """A user must not change sides of a rollout because the service was redeployed."""
    assert (stable_hash("user-1"), stable_hash("sess_1")) == (14322161379998172594, 9999053772423137868)


def test_shadow_mode_samples_five_percent_of_requests():
    flags, _ = book()
    shadowed = sum(decide(flags, "u1", request=f"req-{i}").shadow_model_id == FALLBACK for i in range(4000))
    assert 0.035 <= shadowed / 4000 <= 0.065


class Usage:
    def __init__(self, used: int):
        self.used, self.reads = used, 0

    def tokens(self, day, feature):
        self.reads += 1
        return self.used


def test_a_budget_is_read_at_most_once_per_ttl_and_spent_at_its_value():
    usage, now = Usage(999), [1000.0]
    budgets = Budgets(usage, ttl_seconds=10, clock=lambda: now[0])
    assert not budgets.exhausted("chat", 1000) and not budgets.exhausted("chat", 0)
    usage.used = 1000
    assert not budgets.exhausted("chat", 1000), "the container trusts its reading for ttl_seconds"
    now[0] += 11
    assert budgets.exhausted("chat", 1000) and usage.reads == 2


def test_a_budget_is_spent_at_its_last_token_and_read_for_its_own_feature():
    class PerFeature(Usage):
        def tokens(self, day, feature):
            return {"chat": 1, "generate": 0}[feature]

    budgets = Budgets(PerFeature(0))
    assert budgets.exhausted("chat", 1) and not budgets.exhausted("generate", 1)


def test_a_container_rereads_a_budget_every_ten_seconds_by_default():
    usage, now = Usage(1), [1000.0]
    budgets = Budgets(usage, clock=lambda: now[0])
    budgets.used_today("chat")
    now[0] += 9.9
    budgets.used_today("chat")
    assert usage.reads == 1
    now[0] = 1010.0
    budgets.used_today("chat")
    assert usage.reads == 2


def test_an_unreadable_usage_table_never_blocks_a_request():
    class Broken:
        def tokens(self, day, feature):
            raise RuntimeError("throttled")

    assert Budgets(Broken()).exhausted("chat", 1) is False


def test_a_budget_reading_is_trusted_for_less_than_ttl_seconds_whatever_it_counts():
    usage, now = Usage(5), [1_000_000.0]
    budgets = Budgets(usage, ttl_seconds=10, clock=lambda: now[0])
    assert budgets.used_today("chat") == budgets.used_today("chat") == 5 and usage.reads == 1
    now[0] += 10
    usage.used = 7
    assert budgets.used_today("chat") == 7 and usage.reads == 2, "a reading exactly ttl_seconds old is read again"


def test_an_unreadable_usage_table_keeps_the_last_reading_and_says_which_feature(caplog):
    class Flaky(Usage):
        def tokens(self, day, feature):
            if self.reads:
                raise RuntimeError("throttled")
            return super().tokens(day, feature)

    now = [1000.0]
    budgets = Budgets(Flaky(1000), ttl_seconds=10, clock=lambda: now[0])
    assert budgets.exhausted("chat", 1000)
    now[0] += 11
    with caplog.at_level("WARNING", logger="mangaassist.flags.budget"):
        assert budgets.exhausted("chat", 1000), "a failed reread keeps the last reading"
    assert [r.getMessage() for r in caplog.records] == [
        "usage table unreadable, budget for chat not enforced this time: throttled"]


@pytest.fixture
def tokyo_local_time():
    """The machine's zone is UTC+9 (a developer's laptop in Tokyo), not Lambda's UTC."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "JST-9"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_the_budget_day_is_the_utc_day_whatever_the_machines_zone(tokyo_local_time):
    days = []

    class DayRecorder:
        def tokens(self, day, feature):
            days.append((day, feature))
            return 0

    at = datetime(2026, 3, 1, 20, 0, tzinfo=UTC).timestamp()  # already 2 March in Tokyo
    Budgets(DayRecorder(), clock=lambda: at).used_today("chat")
    assert days == [("2026-03-01", "chat")]


def test_a_spent_budget_retries_at_the_next_utc_midnight_whatever_the_machines_zone(tokyo_local_time):
    def at(hour, minute, second, microsecond=0):
        return datetime(2026, 3, 1, hour, minute, second, microsecond, tzinfo=UTC).timestamp()

    assert seconds_to_midnight_utc(at(12, 34, 56, 1)) == 11 * 3600 + 25 * 60 + 3  # 11:25:03.999999, whole seconds
    assert seconds_to_midnight_utc(at(23, 59, 59, 500_000)) == 1, "never 0: a client would retry at once"
    assert seconds_to_midnight_utc(at(0, 0, 0)) == 86400


@pytest.mark.parametrize("a, b, low, high", [
    ("葬送のフリーレン 14 は 2025年 発売", "葬送のフリーレン 14 は 2025年 発売", 1.0, 1.0),
    ("葬送のフリーレン 14 は 2025年 発売", "フリーレン 14巻は2025年に発売されます", 0.3, 0.95),
    ("ONE PIECE volume 107 is out", "Cooking Papa is a slice of life manga", 0.0, 0.2),
])
def test_similarity_is_lexical_cosine_between_zero_and_one(a, b, low, high):
    assert low <= shadow.similarity(a, b) <= high


def test_empty_flags_mean_the_features_defaults_and_an_unset_candidate_its_default_model():
    document = copy.deepcopy(DOCUMENT)
    document["chat_model"] = {"default": "", "boolean_type": False}
    document["chat_prompt_version"] = {"default": "", "boolean_type": False}
    document["generate_model"] = {"default": "candidate", "boolean_type": False}
    flags, _ = book(document, candidate=None)
    chat = decide(flags, "user-1")
    assert (chat.model_rule, chat.model_id, chat.prompt_version) == ("fast", FAST, "v1")
    generate = decide(flags, "user-1", feature="generate")
    assert (generate.model_rule, generate.model_id) == ("candidate", FALLBACK), "generate's own default, not fast"


def test_a_shadow_naming_the_model_that_answers_is_no_shadow():
    document = copy.deepcopy(DOCUMENT)
    document["chat_shadow_model"] = {"default": "fast", "boolean_type": False}
    flags, _ = book(document)
    assert decide(flags, "user-1").shadow_model_id is None
    document["chat_shadow_model"] = {"default": "fallback", "boolean_type": False}
    assert decide(book(document)[0], "user-1").shadow_model_id == FALLBACK

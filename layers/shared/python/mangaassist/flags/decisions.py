"""What the flags decide for one request of one feature.

Flags per feature (``<feature>_<aspect>`` in config/flags.json), each with its default here for
when no document was ever read:

========================  =======================================================  ==========
aspect                    meaning                                                  default
========================  =======================================================  ==========
enabled                   the kill switch: off answers 503 with Retry-After        true
model                     ``fast``, ``fallback``, ``candidate`` or a model id      per feature
max_tokens                the answer's token limit                                  per feature
prompt_version            the prompt template (mangaassist.prompts)                 v1
daily_token_budget        tokens a day across all users (0: no budget)              0
over_budget               past it: ``downgrade`` (to the fast model) or ``refuse``  downgrade
shadow_model              a model that also answers after the client's answer       "" (off)
shadow_texts              whether ShadowCompared carries both answers' texts        false
========================  =======================================================  ==========

The evaluation context is ``{"feature", "tier", "user_id", "user_hash", "request_hash"}``:
``user_hash`` is a consistent integer hash of the user (the verified subject, else the id the
client gave, else the session): ``MODULO_RANGE`` over it puts the same user on the same side of
a rollout every time. ``request_hash`` samples requests (shadow mode).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from mangaassist import settings

DEFAULTS: dict[str, dict] = {
    "chat": {"model": "fast", "max_tokens": 500},
    "recommend": {"model": "fast", "max_tokens": 600},
    "generate": {"model": "fallback", "max_tokens": 700},
}
COMMON: dict = {"enabled": True, "prompt_version": "v1", "daily_token_budget": 0, "over_budget": "downgrade",
          "shadow_model": "", "shadow_texts": False}
ROLES = ("fast", "fallback", "candidate")


def stable_hash(value: str) -> int:
    """An integer that depends only on ``value`` (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class Decision:
    feature: str
    enabled: bool
    model_id: str
    model_rule: str  # the flag value that chose it: fast, fallback, candidate or an explicit id
    max_tokens: int
    prompt_version: str
    daily_token_budget: int
    over_budget: str
    shadow_model_id: str | None
    shadow_texts: bool


class FlagBook:
    """Evaluates a feature's flags; ``flags`` is Powertools' FeatureFlags (or anything with evaluate)."""

    def __init__(self, flags, *, fast_id: str, fallback_id: str, candidate_id: str | None):
        self.flags = flags
        self.models = {"fast": fast_id, "fallback": fallback_id, "candidate": candidate_id}

    def context(self, feature: str, *, tier: str, subject: str, request_id: str, user_id: str | None) -> dict:
        return {"feature": feature, "tier": tier, "user_id": user_id or "", "user_hash": stable_hash(subject),
                "request_hash": stable_hash(request_id)}

    def decide(self, feature: str, context: dict) -> Decision:
        defaults = {**COMMON, **DEFAULTS[feature]}

        def flag(aspect: str):
            return self.flags.evaluate(name=f"{feature}_{aspect}", context=context, default=defaults[aspect])

        rule = str(flag("model") or defaults["model"])
        model_id = self.model_id(rule) or self.model_id(defaults["model"]) or self.fast_id
        shadow = str(flag("shadow_model") or "")
        shadow_id = self.model_id(shadow) if shadow else None
        return Decision(
            feature=feature, enabled=bool(flag("enabled")), model_id=model_id, model_rule=rule,
            max_tokens=_positive(flag("max_tokens"), defaults["max_tokens"]),
            prompt_version=str(flag("prompt_version") or "v1"),
            daily_token_budget=_positive(flag("daily_token_budget"), 0),
            over_budget="refuse" if flag("over_budget") == "refuse" else "downgrade",
            shadow_model_id=shadow_id if shadow_id != model_id else None,
            shadow_texts=bool(flag("shadow_texts")),
        )

    def model_id(self, rule: str) -> str | None:
        """A role's model (``candidate`` may be unset: None), or the model id the flag names."""
        return self.models.get(rule) if rule in ROLES else rule

    @property
    def fast_id(self) -> str:
        return str(self.models["fast"])


def _positive(value, default: int) -> int:
    """``value`` if it is a positive integer, else ``default`` (0 for a budget: no budget)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return default
    return value


@cache
def flag_book() -> FlagBook:
    """The container's flags: AppConfig through the last-good store, cached for FLAGS_MAX_AGE_SECONDS."""
    from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags

    from mangaassist import clients
    from mangaassist.flags.store import LastGoodStore

    where, models = settings.flags(), settings.models()
    store = LastGoodStore(AppConfigStore(environment=where.environment, application=where.application,
                                         name=where.profile, max_age=where.max_age_seconds,
                                         boto3_client=clients.client("appconfigdata")))
    return FlagBook(FeatureFlags(store=store), fast_id=models.fast_id, fallback_id=models.fallback_id,
                    candidate_id=where.candidate_model_id)

"""ReviewSubmitted -> moderation categories and sentiment, as JSON the model must get right.

The model's answer is parsed and validated against MODERATION_SCHEMA; an invalid answer gets one
corrective retry, and a second failure leaves the review ``needs_review`` for a person. High or
critical severity quarantines the review and publishes ModerationFlagged. Every model call is
reported with InferenceCompleted.
"""
from __future__ import annotations

import json
import re
import uuid

from mangaassist.contracts import Contract
from mangaassist.deps import Deps
from mangaassist.events.publisher import Event
from mangaassist.inference import inference_completed

FEATURE = "moderation"
SEVERITIES = ["low", "medium", "high", "critical"]
MODERATION_SCHEMA = {
    "type": "object",
    "required": ["categories", "sentiment"],
    "properties": {
        "categories": {"type": "array", "maxItems": 20, "items": {
            "type": "object", "required": ["name", "severity"],
            "properties": {"name": {"type": "string", "enum": ["toxicity", "harassment", "hate", "sexual", "spam",
                                                                 "spoiler", "self_harm", "violence"]},
                           "severity": {"type": "string", "enum": SEVERITIES}}}},
        "sentiment": {"type": "object", "required": ["label", "score"], "properties": {
            "label": {"type": "string", "enum": ["positive", "neutral", "negative"]},
            "score": {"type": "number", "minimum": -1, "maximum": 1}}},
    },
}
ANSWER = Contract(MODERATION_SCHEMA)  # jsonschema (for the error) only for a wrong answer
SYSTEM = ("You moderate customer reviews for a manga store. Reply with JSON only, no prose, matching this "
          "JSON Schema: " + json.dumps(MODERATION_SCHEMA, separators=(",", ":")) +
          " List only categories that apply; an empty list means the review is fine.")
FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_default = Deps()


def parse_moderation(text: str) -> tuple[dict | None, str | None]:
    """(result, None) for a valid answer, else (None, what was wrong)."""
    try:
        result = json.loads(FENCE.sub("", text.strip()))
    except ValueError as exc:
        return None, f"not JSON: {exc}"
    if ANSWER.accepts(result):
        return result, None
    from jsonschema.exceptions import best_match

    error = best_match(ANSWER.validator.iter_errors(result))
    if error:
        return None, f"{'/'.join(map(str, error.path)) or 'answer'}: {error.message}"
    return result, None


def moderate_review(event: dict, deps: Deps | None = None) -> dict:
    deps = deps or _default
    detail = event["detail"]
    messages = [{"role": "user", "content": [{"text": f"<review>{detail['text']}</review>"}]}]
    completions, result = [], None
    for _attempt in range(2):
        completion = deps.provider.converse(messages, system=SYSTEM, max_tokens=400, temperature=0.0, feature=FEATURE)
        completions.append((str(uuid.uuid4()), completion))
        result, problem = parse_moderation(completion.text)
        if result is not None:
            break
        correction = f"That answer was invalid ({problem}). Reply with the JSON only."
        messages += [{"role": "assistant", "content": [{"text": completion.text}]},
                     {"role": "user", "content": [{"text": correction}]}]
    model_id = completions[-1][1].model_id
    if result is None:
        decision, categories, sentiment, worst = "needs_review", [], None, None
    else:
        categories, sentiment = result["categories"], result["sentiment"]
        worst = max((c["severity"] for c in categories), key=SEVERITIES.index, default="low")
        decision = "quarantined" if worst in ("high", "critical") else "approved"
    deps.reviews.save_moderation(detail, status=decision, moderation={
        "categories": categories, "sentiment": sentiment, "max_severity": worst, "model_id": model_id})
    events = [Event("mangaassist.ai", "ReviewModerated", {
        "version": "1", "review_id": detail["review_id"], "product_id": detail["product_id"], "decision": decision,
        "max_severity": worst, "categories": categories, "sentiment": sentiment, "model_id": model_id})]
    if decision == "quarantined":
        events.append(Event("mangaassist.ai", "ModerationFlagged", {
            "version": "1", "review_id": detail["review_id"], "product_id": detail["product_id"], "severity": worst,
            "categories": categories, "sentiment": sentiment, "model_id": model_id}))
    events += [inference_completed(c, request_id=rid, feature=FEATURE, correlation_id=event["id"])
               for rid, c in completions]
    ids = deps.publish(events)
    return {"review_id": detail["review_id"], "decision": decision, "events": ids}

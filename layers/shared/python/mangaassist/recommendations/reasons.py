"""The reasons a recommendation gives, written by the model from each product's facts.

The model gets the products as numbered fact lines inside ``<content>`` and must answer JSON
``{"reasons": [{"product_id": ..., "reason": ...}]}``; the offline provider answers the same
JSON by restating each product's facts (``local_reasons``). An answer that is not that JSON, or
misses a product, falls back to the restated facts for the products it lacks: a recommendation
never fails because of its prose.
"""
from __future__ import annotations

import json
import re

FEATURE = "recommend"
MAX_REASON = 300
SYSTEM = {
    "en": ("You recommend manga in a Japanese manga store. For each product listed below, write one short reason "
           "(at most 25 words, in English) why it suits the customer, using only its facts. Reply with JSON only: "
           '{"reasons": [{"product_id": "...", "reason": "..."}]}.'),
    "ja": ("あなたは日本の漫画ストアのおすすめ担当です。下の各商品について、事実だけを使って、"
           "お客様に合う理由を日本語で一文ずつ書いてください。JSON だけで答えてください: "
           '{"reasons": [{"product_id": "...", "reason": "..."}]}'),
}
LINE = re.compile(r"^\[\d+\] (.*)$", re.M)
FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def fact_line(number: int, product_id: str, fields: dict) -> str:
    facts = [f"product_id: {product_id}"]
    for name in ("title", "author", "genres", "publisher", "release_date"):
        value = fields.get(name)
        if value not in (None, "", []):
            facts.append(f"{name}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
    return f"[{number}] " + " | ".join(facts)


def prompt(basis: str, lines: list[str]) -> str:
    return "<content>\nbased on: " + basis + "\n" + "\n".join(lines) + "\n</content>"


def restated(line_facts: str) -> tuple[str | None, str]:
    """(product_id, a reason restating the line's facts) from one ``[n] key: value | ...`` line."""
    facts = dict(part.split(": ", 1) for part in line_facts.split(" | ") if ": " in part)
    described = [facts.get("title"), facts.get("author") and f"by {facts['author']}", facts.get("genres")]
    return facts.get("product_id"), " — ".join(d for d in described if d)[:MAX_REASON] or "in the catalog"


def local_reasons(content: str) -> dict:
    """The offline provider's answer: each product's facts, restated."""
    reasons = []
    for line in LINE.findall(content):
        product_id, reason = restated(line)
        if product_id:
            reasons.append({"product_id": product_id, "reason": reason})
    return {"reasons": reasons}


def parse(answer: str, lines: dict[str, str]) -> dict[str, str]:
    """``{product_id: reason}`` for every product in ``lines`` (product_id -> its fact line)."""
    written: dict[str, str] = {}
    try:
        document = json.loads(FENCE.sub("", answer.strip()))
        for entry in document.get("reasons", []) if isinstance(document, dict) else []:
            if isinstance(entry, dict) and entry.get("product_id") in lines and isinstance(entry.get("reason"), str):
                written[entry["product_id"]] = entry["reason"].strip()[:MAX_REASON]
    except ValueError:
        pass
    for product_id, line in lines.items():
        if not written.get(product_id):
            written[product_id] = restated(LINE.findall(line)[0])[1]
    return written

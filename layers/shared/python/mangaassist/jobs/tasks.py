"""The generation tasks, each from stored facts only: what it reads, what it asks, what it returns.

Every task returns ``(result, completion)``; ``completion`` is None when no model call was needed
(a product without reviews has nothing to summarise). A task whose input names nothing that
exists raises TaskRefused: a failed job, not a retry.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mangaassist.models import Completion

DESCRIPTION_FACTS = ("title", "author", "publisher", "genres", "volume", "release_date", "price", "currency",
                     "synopsis")
TONES = {"neutral": "neutral", "enthusiastic": "warm and enthusiastic", "concise": "concise"}
LANGUAGES = {"ja": "Japanese", "en": "English"}


class TaskRefused(Exception):
    """The job cannot run as asked (an unknown product): it fails with ``code`` and ``message``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[..., tuple[dict, Completion | None]]


def _facts(product: dict, names: tuple[str, ...]) -> str:
    lines = []
    for name in names:
        value = product.get(name)
        if value not in (None, "", []):
            lines.append(f"{name}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
    return "\n".join(lines)


def product_description(job_input: dict, deps, provider, max_tokens: int) -> tuple[dict, Completion | None]:
    product = deps.products.get(job_input["product_id"])
    if product is None or not product.get("title"):
        raise TaskRefused("unknown_product", f"no product {job_input['product_id']!r} in the catalog")
    language = LANGUAGES[job_input.get("locale", "ja")]
    tone = TONES[job_input.get("tone", "neutral")]
    system = (f"You write product descriptions for a Japanese manga store: about 100 words in {language}, {tone}, "
              "from the product facts below only. Never add a title, a price, a date or a plot point that is not "
              "there.\n<product>\n" + _facts(product, DESCRIPTION_FACTS) + "\n</product>")
    completion = provider.converse([{"role": "user", "content": [{"text": "Write the product description."}]}],
                                   system=system, max_tokens=max_tokens, temperature=0.4, feature="generate")
    return {"text": completion.text, "product_id": product["product_id"], "model_id": completion.model_id}, completion


def review_summary(job_input: dict, deps, provider, max_tokens: int) -> tuple[dict, Completion | None]:
    product_id = job_input["product_id"]
    reviews = deps.reviews.approved_for(product_id, job_input.get("max_reviews", 50))
    if not reviews:
        if deps.products.get(product_id) is None:
            raise TaskRefused("unknown_product", f"no product {product_id!r} in the catalog")
        return {"text": "", "product_id": product_id, "review_count": 0, "average_rating": None}, None
    average = round(sum(float(r["rating"]) for r in reviews) / len(reviews), 2)
    lines = "\n".join(f"[{i}] rating: {r['rating']} | text: {' '.join(str(r['text']).split())}"
                      for i, r in enumerate(reviews, 1))
    language = LANGUAGES[job_input.get("locale", "ja")]
    system = (f"You summarise customer reviews for a Japanese manga store, in {language}, in three to five "
              "sentences: what readers liked, what they did not. Use only the reviews below.\n<reviews>\n"
              + lines + "\n</reviews>")
    completion = provider.converse([{"role": "user", "content": [{"text": "Summarise these reviews."}]}],
                                   system=system, max_tokens=max_tokens, temperature=0.3, feature="generate")
    return {"text": completion.text, "product_id": product_id, "review_count": len(reviews), "average_rating": average,
            "model_id": completion.model_id}, completion


TASKS = {task.name: task for task in (Task("product_description", product_description),
                                      Task("review_summary", review_summary))}

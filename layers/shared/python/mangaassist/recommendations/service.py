"""Recommendations for a customer: what to suggest, and why.

Candidates are the active products closest, by vector similarity, to the query when one is
given, else to the product named, else to the customer's past orders (the orders table's
by_customer index); a product the customer bought (and the product asked about) is never one.
The fast model writes a short reason per product from its facts (recommendations.reasons).
``mangaassist.ai/RecommendationGenerated`` and the model call's InferenceCompleted are published
after the answer.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import cache

from mangaassist import after_response
from mangaassist.chat.grounding import language
from mangaassist.chat.turn import gate
from mangaassist.events.publisher import Event
from mangaassist.inference import inference_completed
from mangaassist.models import Provider
from mangaassist.recommendations import reasons
from mangaassist.rest import ApiError, Caller, Deadline
from mangaassist.workers.catalog import document_text

DEFAULT_LIMIT = 5
HISTORY_PRODUCTS = 10  # the most recent purchases that describe a customer's taste


class Recommender:
    def __init__(self, *, products, orders, flags, budgets, providers: Callable[..., Provider], embedder, store,
                 publish: Callable[[list[Event]], list[str]]):
        self.products, self.orders, self.flags, self.budgets = products, orders, flags, budgets
        self.providers, self.embedder, self.store, self.publish = providers, embedder, store, publish

    def recommend(self, request: dict, caller: Caller, deadline: Deadline) -> dict:
        request_id = str(uuid.uuid4())
        decision = self.flags.decide(reasons.FEATURE, self.flags.context(
            reasons.FEATURE, tier=caller.tier, user_id=caller.user_id, request_id=request_id,
            subject=caller.user_id or request["customer_id"]))
        model_id, budget_action = gate(self.flags, self.budgets, decision)
        limit = request.get("limit", DEFAULT_LIMIT)
        bought = deadline.run(lambda: self.orders.product_ids_of(request["customer_id"]))
        strategy, basis, text = self._basis(request, bought, deadline)
        if text is None:
            return {"recommendations": [], "strategy": "none", "model_id": None}
        excluded = set(bought) | ({request["product_id"]} if request.get("product_id") else set())
        vector = self.embedder.embed([text])[0]
        hits = deadline.run(lambda: self.store.query(vector, k=limit + len(excluded),
                                                     filters={"status": "active"}))
        chosen = [hit for hit in hits if hit.id not in excluded][:limit]
        if not chosen:
            return {"recommendations": [], "strategy": strategy, "model_id": None}
        lines = {hit.id: reasons.fact_line(i, hit.id, hit.fields) for i, hit in enumerate(chosen, 1)}
        locale = language(basis, None)
        messages = [{"role": "user", "content": [{"text": reasons.prompt(basis, list(lines.values()))}]}]
        provider = self.providers(model_id)
        completion = deadline.run(lambda: provider.converse(messages, system=reasons.SYSTEM[locale],
                                                            max_tokens=decision.max_tokens, temperature=0.3,
                                                            feature=reasons.FEATURE))
        written = reasons.parse(completion.text, lines)
        items = [{"product_id": hit.id, "title": str(hit.fields.get("title") or hit.id),
                  "score": round(hit.score, 4), "reason": written[hit.id]} for hit in chosen]
        detail = {"version": "1", "request_id": request_id, "customer_id": request["customer_id"][:200],
                  "model_id": completion.model_id, "strategy": strategy,
                  "items": [{k: item[k] for k in ("product_id", "score", "reason")} for item in items]}
        flagged = {"model_rule": decision.model_rule, **({"budget_action": budget_action} if budget_action else {})}
        events = [Event("mangaassist.ai", "RecommendationGenerated", detail),
                  inference_completed(completion, request_id=request_id, feature=reasons.FEATURE,
                                      correlation_id=request["customer_id"][:200], **flagged)]
        after_response.defer(lambda: self.publish(events))
        return {"recommendations": items, "strategy": strategy, "model_id": completion.model_id}

    def _basis(self, request: dict, bought: list[str], deadline: Deadline) -> tuple[str, str, str | None]:
        """(strategy, what it is based on, the text whose neighbours are the candidates)."""
        if request.get("query"):
            return "query", request["query"], request["query"]
        if request.get("product_id"):
            product = deadline.run(lambda: self.products.get(request["product_id"]))
            if product is None or product.get("status") != "active" or not product.get("title"):
                raise ApiError(404, "unknown_product", f"no product {request['product_id']!r} in the catalog")
            return "product", str(product["title"]), document_text(product)
        if bought:
            titles = deadline.run(lambda: self.products.titles(bought[:HISTORY_PRODUCTS]))
            if titles:
                return "history", " / ".join(titles.values()), " / ".join(titles.values())
        return "none", "", None


@cache
def recommender() -> Recommender:
    from mangaassist.deps import Deps

    deps = Deps()
    return Recommender(products=deps.products, orders=deps.orders, flags=deps.flags, budgets=deps.budgets,
                       providers=deps.provider_for, embedder=deps.embedder, store=deps.store, publish=deps.publish)

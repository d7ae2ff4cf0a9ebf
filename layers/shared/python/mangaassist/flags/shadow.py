"""Shadow mode: a request the flags sample is answered by a second model too, after the client has
its answer (mangaassist.after_response), so the client's latency never includes it.

Each comparison is published as ``mangaassist.ai/ShadowCompared``: both models' latency, tokens and
estimated cost, and how alike the two answers are: the cosine of their hashed word and character
n-gram vectors (the offline embedder's, mangaassist.search.embeddings.LocalEmbedder): 1 for the same
text, near 0 for texts sharing no words. It measures lexical likeness, not meaning; it is cheap,
deterministic and language-agnostic (Japanese included). The answers' texts go in only when the
``<feature>_shadow_texts`` flag allows it. The shadow call is reported with InferenceCompleted
(``shadow: true``) like any other, so its cost counts.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable

from mangaassist.events.publisher import Event
from mangaassist.inference import inference_completed
from mangaassist.models import Completion
from mangaassist.search.embeddings import LocalEmbedder

logger = logging.getLogger(__name__)
METHOD = "hashed-ngram-cosine-v1"
_embedder = LocalEmbedder(512)


def similarity(a: str, b: str) -> float:
    """Cosine of the two texts' unit vectors, clipped to 0..1, rounded to 4 places."""
    if not a.strip() and not b.strip():
        return 1.0
    va, vb = _embedder.embed([a, b])
    return round(max(0.0, min(1.0, math.fsum(x * y for x, y in zip(va, vb)))), 4)


def _side(completion: Completion, with_text: bool) -> dict:
    side = {"model_id": completion.model_id, "latency_ms": completion.latency_ms,
            "input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens,
            "cost_usd": completion.estimated_cost_usd}
    return {**side, "text": completion.text} if with_text else side


def compare(primary: Completion, call_shadow: Callable[[], Completion], *, request_id: str, feature: str,
            with_texts: bool, publish: Callable[[list[Event]], object]) -> None:
    """Run the shadow call and publish the comparison; a failing shadow model is logged, never raised."""
    try:
        shadow = call_shadow()
    except Exception as exc:
        logger.warning("shadow call for %s failed: %s", request_id, exc)
        return
    detail = {"version": "1", "request_id": request_id, "feature": feature,
              "primary": _side(primary, with_texts), "shadow": _side(shadow, with_texts),
              "similarity": similarity(primary.text, shadow.text), "similarity_method": METHOD}
    publish([Event("mangaassist.ai", "ShadowCompared", detail),
             inference_completed(shadow, request_id=f"{request_id}-shadow", feature=feature, correlation_id=request_id,
                                 shadow=True)])

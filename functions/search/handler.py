"""GET /v1/search?q=...&k=...&genre=...: semantic product search (API Gateway REST proxy)."""
from __future__ import annotations

from aws_lambda_powertools import Logger

from mangaassist.http import error_response, json_response
from mangaassist.search import EmbeddingError, VectorStoreError
from mangaassist.workers.catalog import search_products

MAX_QUERY = 500
MAX_K = 20
logger = Logger()


def lambda_handler(event, context):
    params = event.get("queryStringParameters") or {}
    query = (params.get("q") or "").strip()
    if not query or len(query) > MAX_QUERY:
        return error_response(400, "invalid_request", f"q is required, 1-{MAX_QUERY} characters")
    k = params.get("k", "5")
    if not (k.isascii() and k.isdigit() and 1 <= int(k) <= MAX_K):
        return error_response(400, "invalid_request", f"k must be an integer from 1 to {MAX_K}")
    try:
        results = search_products(query, int(k), params.get("genre") or None)
    except (EmbeddingError, VectorStoreError):  # a dependency's outage, not the client's fault: say so, retryable
        logger.exception("search failed")
        return error_response(503, "unavailable", "search is unavailable; retry later", {"retry-after": "2"})
    return json_response(200, {"query": query, "results": results})

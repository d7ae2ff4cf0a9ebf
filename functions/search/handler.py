"""GET /v1/search?q=...&k=...&genre=...: semantic product search (API Gateway REST proxy)."""
from __future__ import annotations

from mangaassist.http import error_response, json_response
from mangaassist.workers.catalog import search_products

MAX_QUERY = 500


def lambda_handler(event, context):
    params = event.get("queryStringParameters") or {}
    query = (params.get("q") or "").strip()
    if not query or len(query) > MAX_QUERY:
        return error_response(400, "invalid_request", f"q is required, 1-{MAX_QUERY} characters")
    try:
        k = int(params.get("k", "5"))
    except ValueError:
        k = 0
    if not 1 <= k <= 20:
        return error_response(400, "invalid_request", "k must be an integer from 1 to 20")
    results = search_products(query, k, params.get("genre") or None)
    return json_response(200, {"query": query, "results": results})

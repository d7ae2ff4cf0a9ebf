"""HTTP on 127.0.0.1:PORT, turned into exactly the events AWS hands to Lambda.

- ``/webhooks/{source}`` (any method): a Lambda function URL event, payload format 2.0.
- the REST routes in wiring.json: API Gateway REST proxy events (format 1.0), each request first
  through what API Gateway does before the integration (rest_api.py): the API key (403), the
  usage plan (429), the route's Lambda authorizer (401/403), the request validator (400).
- ``GET /openapi.json``: the REST API's description (schemas/api/openapi.json, what Terraform
  imports); ``GET /.well-known/jwks.json``: the dev identity's public key (dev_identity.py).
- ``GET /ws``: the WebSocket API (websocket_api.py): API Gateway v2's $connect (authorizer, API
  key), route selection, $disconnect and limits, the functions handed its events; and
  ``/_aws/ws/@connections/{id}``, the management API the functions post frames to.
- ``/_local/...``: the stack's own controls and its page (local_api.py).

Served by aiohttp (http_server.py: limits, timeouts, JSON refusals); handlers are the functions'
synchronous ``lambda_handler``s, run on a thread pool. As on Lambda, what a function deferred
(mangaassist.after_response) runs once its answer is sent, and that connection takes its next
request only after that.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web

from embedded.http_server import HttpServer, Limits, Refused, read_body, refusal
from embedded.lambda_events import function_url_event, lambda_answer, request_id, rest_proxy_event, route_pattern
from embedded.local_api import LocalApi
from embedded.rest_api import (
    AuthorizerRefused,
    UsagePlan,
    authorize,
    authorizer_event,
    invalid_body,
    missing_parameters,
)
from embedded.websocket_api import MANAGEMENT_PREFIX, WebSocketApi, WebSocketLimits
from embedded.websocket_api import PATH as WEBSOCKET_PATH
from mangaassist import after_response

logger = logging.getLogger("embedded.gateway")
FUNCTION_URL_MAX_BODY = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
REST_MAX_BODY = 10 * 1024 * 1024  # API Gateway REST APIs' payload limit

API_ID, STAGE = "local", "local"


class Gateway:
    def __init__(self, stack, limits: Limits | None = None, websocket_limits: WebSocketLimits | None = None):
        self.stack = stack
        self.limits = limits = limits or Limits()
        self.routes = []
        for key, spec in stack.wiring_doc.get("routes", {}).items():
            method, path = key.split(" ", 1)
            self.routes.append((method, path, route_pattern(path), spec))
        self.server = HttpServer(self.handle, limits)
        self.local = LocalApi(stack, self)
        self.usage_plan = UsagePlan(stack.settings.usage_plan)
        self.authorizers = stack.wiring_doc.get("authorizers", {})
        self.websocket = WebSocketApi(stack, self.server, websocket_limits)
        self.accepting = True

    @property
    def port(self) -> int:
        return self.server.port

    def start(self, port: int) -> int:
        return self.server.start("127.0.0.1", port)

    def stop_accepting(self) -> None:
        """New connections are refused; requests on open ones get 503 (the stack is stopping)."""
        self.accepting = False
        self.server.stop_accepting()

    def stop(self) -> None:
        """Close the WebSocket connections (1001, each one's $disconnect run), then the server."""
        if self.server.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self.websocket.close_all(), self.server.loop).result(5)
            except Exception as exc:  # stopping anyway
                logger.warning("closing WebSocket connections: %r", exc)
        self.server.stop()

    # --- dispatch ---------------------------------------------------------------------------
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except Refused as refused:
            return refused.response
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:  # a bug in the gateway itself: a JSON 502, and one line in the log
            logger.warning("%s %s failed: %r", request.method, request.raw_path[:200], exc)
            return web.json_response({"message": "Internal server error"}, status=502)

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        path = urlsplit(request.raw_path).path
        if path == "/_local" or path.startswith("/_local/"):
            return await self.local.handle(request, path)
        if path.startswith(MANAGEMENT_PREFIX):  # even while stopping: a stream worker learns its client is gone
            return await self.websocket.manage(request, path)
        if not self.accepting:
            return refusal(503, "unavailable", "the local stack is stopping", {"retry-after": "5"}, close=True)
        if path == WEBSOCKET_PATH:
            if request.method != "GET":
                return refusal(405, "method_not_allowed", f"{WEBSOCKET_PATH} takes GET with Upgrade: websocket")
            return await self.websocket.handshake(request)
        if path.startswith("/webhooks/"):
            body = await read_body(request, FUNCTION_URL_MAX_BODY, self.limits.body_timeout)
            event = function_url_event(request.method, request.raw_path, merged_headers(request), body,
                                       request.remote or "127.0.0.1")
            return await self.invoke(request, "webhook_ingress", event)
        if request.method in ("GET", "HEAD") and path in self.documents:
            return web.json_response(self.documents[path](), headers={"cache-control": "no-store"})
        known = False
        for method, resource, pattern, spec in self.routes:
            match = pattern.match(path)
            if not match:
                continue
            known = True
            if method not in (request.method, "ANY") and not (method == "GET" and request.method == "HEAD"):
                continue
            return await self._rest(request, method, resource, match.groupdict(), spec)
        if known:
            return refusal(405, "method_not_allowed", f"no route for {request.method} {path}")
        return refusal(404, "not_found", f"no route for {request.method} {path}")

    @property
    def documents(self) -> dict[str, Callable[[], dict]]:
        return {"/openapi.json": self.stack.openapi, "/.well-known/jwks.json": self.stack.identity.jwks}

    async def _rest(self, request: web.BaseRequest, method: str, resource: str, params: dict,
                    spec: dict) -> web.StreamResponse:
        """API Gateway's steps before a REST route's integration, in its order (rest_api.py)."""
        headers = merged_headers(request)
        key_id = self.stack.api_key_ids.get(headers.get("x-api-key", ""))
        if spec.get("api_key_required", True):
            if key_id is None:
                return web.json_response({"message": "Forbidden"}, status=403)  # API Gateway's very words
            exceeded = self.usage_plan.admit(key_id)
            if exceeded is not None:
                return web.json_response({"message": exceeded}, status=429)
        body = await read_body(request, REST_MAX_BODY, self.limits.body_timeout)
        query = {k: v for k, v in request.query.items()}
        context = None
        if spec.get("authorizer"):
            authorizer = self.authorizers[spec["authorizer"]]
            arn = (f"arn:aws:execute-api:{self.stack.region}:{self.stack.account}:{API_ID}/{STAGE}/"
                   f"{request.method}{urlsplit(request.raw_path).path}")
            event = authorizer_event(arn, request.method, resource, urlsplit(request.raw_path).path, headers,
                                     query or None, params or None,
                                     {"apiId": API_ID, "stage": STAGE, "resourcePath": resource,
                                      "httpMethod": request.method, "accountId": self.stack.account})
            try:
                context = await self.server.run_sync(authorize,
                                                     lambda e: self.stack.functions.invoke(authorizer["function"], e),
                                                     event)
            except AuthorizerRefused as refused:
                return web.json_response({"message": refused.message}, status=refused.status)
        missing = missing_parameters(spec, query, headers)
        if missing:
            return web.json_response({"message": f"Missing required request parameters: [{', '.join(missing)}]"},
                                     status=400)
        if invalid_body(spec, body):
            return web.json_response({"message": "Invalid request body"}, status=400)
        event = rest_proxy_event(request.method, resource, request.raw_path, headers, body, params,
                                 request.remote or "127.0.0.1", headers.get("x-api-key"), key_id, context)
        return await self.invoke(request, spec["function"], event)

    # --- Lambda ------------------------------------------------------------------------------
    async def invoke(self, request: web.BaseRequest, function: str, event: dict) -> web.StreamResponse:
        later = after_response.Later()

        def run():
            with later:  # on the pool's thread: deferred tasks are collected per thread
                return self.stack.functions.invoke(function, event)

        try:
            result = await self.server.run_sync(run)
        except Exception as exc:  # the function failed: API Gateway's and function URLs' 502
            logger.info("%s failed: %s: %s", function, type(exc).__name__, str(exc)[:300])
            return web.json_response({"message": "Internal server error"}, status=502,
                                     headers={"x-amzn-requestid": request_id(event) or ""})
        status, headers, body = lambda_answer(result)
        for hop_by_hop in ("content-length", "transfer-encoding", "connection", "keep-alive"):
            headers.pop(hop_by_hop, None)  # the server frames the answer itself
        headers["x-amzn-requestid"] = request_id(event) or ""
        response = web.Response(status=status, body=body, headers=headers)
        if not later.tasks:
            return response
        try:
            await response.prepare(request)
            await response.write_eof()
        finally:
            # Whether or not the client is still there to read it (Lambda runs them either way):
            # a webhook's claim is completed here, and losing that would let a retry in twice.
            await asyncio.shield(asyncio.wrap_future(self.server.pool.submit(later.run)))
        return response


def merged_headers(request: web.BaseRequest) -> dict[str, str]:
    """Lowercased names, a repeated header's values joined with commas (as function URLs do)."""
    merged: dict[str, str] = {}
    for key, value in request.headers.items():
        key = key.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def json_body(raw: bytes):
    """A control's JSON body: {} when empty; Refused with 400 when not JSON."""
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise Refused(refusal(400, "invalid_json", "body is not JSON")) from None

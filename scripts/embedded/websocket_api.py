"""The WebSocket API as API Gateway serves it (moto has no WebSocket APIs, nor ``@connections``).

- ``GET /ws``: the handshake. As on AWS, before the upgrade: the ``$connect`` authorizer (the
  Lambda REQUEST authorizer of wiring.json's ``websocket.authorizer``: 401 ``Unauthorized``, 403 on
  a Deny), then the API key it returned as ``usageIdentifierKey`` against the usage plan (403
  ``Forbidden``, 429), then the ``$connect`` route: an answer outside 2xx refuses the handshake
  with that status, a failing function with 502. Only then is the connection upgraded.
- each frame from the client: its route by the route selection expression
  (``$request.body.action``: a JSON object's ``action`` naming one of the routes; anything else,
  non-JSON included, goes to ``$default``), then that route's function with a MESSAGE event. A
  connection's frames reach the function one at a time, in order. A function that fails: the
  client gets API Gateway's ``{"message": "Internal server error", ...}`` and stays connected.
- a frame over ``frame_bytes`` (API Gateway's 32 KB): an error frame, then close 1009; over
  ``max_message_bytes`` aiohttp closes 1009 before reading it (API Gateway's 128 KB message).
- closing, whoever closes (the client, ``DELETE @connections``: 1000; the idle timeout, 10 min
  without a frame from the client, or the 2 h maximum: 1001 "Going away"): ``$disconnect``, with
  ``disconnectStatusCode`` and ``disconnectReason``.
- ``/_aws/ws/@connections/{connectionId}`` (the stack's WEBSOCKET_CALLBACK_URL, where the
  functions' boto3 ``apigatewaymanagementapi`` client posts): POST sends the body as one frame
  (text when UTF-8; 413 ``PayloadTooLargeException`` over 128 KB), GET describes the connection,
  DELETE closes it (204); an unknown or closed connection is 410 ``GoneException``. No SigV4 check:
  the port is loopback only.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from embedded.http_server import HttpServer, Refused, read_body, refusal
from embedded.lambda_events import lambda_answer, request_id, websocket_event
from embedded.rest_api import AuthorizerRefused, UsagePlan, authorize
from mangaassist import after_response
from mangaassist.streaming import frames

logger = logging.getLogger("embedded.gateway")
PATH = "/ws"
MANAGEMENT_PREFIX = "/_aws/ws/@connections/"
SPECIAL_ROUTES = ("$connect", "$disconnect", "$default")
NORMAL, GOING_AWAY, MESSAGE_TOO_BIG = 1000, 1001, 1009


@dataclass(frozen=True)
class WebSocketLimits:
    """API Gateway's WebSocket quotas (its developer guide, "Amazon API Gateway quotas")."""

    frame_bytes: int = 32 * 1024  # a frame from the client
    max_message_bytes: int = 128 * 1024  # a message either way (and a PostToConnection's Data)
    idle_seconds: float = 600.0  # no frame from the client for this long: closed
    max_seconds: float = 7200.0  # the longest a connection lives
    body_timeout: float = 30.0  # a PostToConnection's body


def selection_field(expression: str) -> list[str]:
    """``$request.body.action`` -> ["action"]: the only kind of route selection expression served here."""
    match = re.fullmatch(r"\$request\.body\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)", expression)
    if not match:
        raise ValueError(f"route selection expression {expression!r}: only $request.body.<field> is emulated")
    return match.group(1).split(".")


def select_route(field: list[str], routes: set[str] | frozenset[str], data: str | bytes) -> str:
    """The route a frame goes to: the field's value when it names one of ``routes``, else $default."""
    if isinstance(data, bytes):
        return "$default"
    try:
        value = json.loads(data)
    except ValueError:
        return "$default"
    for name in field:
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value in routes else "$default"


def new_connection_id() -> str:
    """16 characters ending in ``=``, like API Gateway's (``L0SM9cOFvHcCIhw=``)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch * 1000) % 1000:03d}Z"


def aws_error(status: int, code: str, message: str | None) -> web.Response:
    """An error as API Gateway's management API answers it: boto3 reads the code from the header."""
    return web.json_response({"message": message}, status=status, headers={"x-amzn-errortype": code})


class Connection:
    def __init__(self, connection_id: str, ws: web.WebSocketResponse, *, source_ip: str, user_agent: str,
                 domain: str, clock: Callable[[], float] = time.time):
        self.id, self.ws, self.clock = connection_id, ws, clock
        self.source_ip, self.user_agent, self.domain = source_ip, user_agent, domain
        self.identity: dict = {}  # API Gateway's $context.identity, once the API key is known
        self.authorizer: dict | None = None  # the authorizer's context, handed to every route
        self.connected_at = self.last_active_at = clock()
        self.closing = False
        self.close_code: int | None = None
        self.close_reason = ""
        self._closer: asyncio.Task | None = None

    def info(self) -> dict:
        """GetConnection's answer."""
        return {"connectedAt": iso(self.connected_at), "lastActiveAt": iso(self.last_active_at),
                "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent}}

    async def send(self, data: bytes) -> None:
        try:
            await self.ws.send_str(data.decode())
        except UnicodeDecodeError:
            await self.ws.send_bytes(data)

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; at once no more frames are sent to the client."""
        if self.closing:
            return
        self.closing, self.close_code, self.close_reason = True, code, reason
        self._closer = asyncio.ensure_future(self.ws.close(code=code, message=reason.encode()))

    async def closed(self) -> None:
        """The closing handshake this side started, finished."""
        if self._closer is not None:
            await asyncio.shield(self._closer)


class WebSocketApi:
    def __init__(self, stack, server: HttpServer, limits: WebSocketLimits | None = None,
                 clock: Callable[[], float] = time.time):
        spec = stack.wiring_doc["websocket"]
        self.stack, self.server, self.clock = stack, server, clock
        self.limits = limits or WebSocketLimits()
        self.function = spec["function"]
        self.routes = frozenset(spec["routes"]) - set(SPECIAL_ROUTES)
        self.field = selection_field(spec["route_selection_expression"])
        authorizer = spec.get("authorizer")
        self.authorizer = stack.wiring_doc["authorizers"][authorizer]["function"] if authorizer else None
        self.api_key_required = bool(spec.get("api_key_required"))
        self.usage_plan = UsagePlan(stack.settings.usage_plan)  # the WebSocket API's own plan (modules/websocket)
        self.connections: dict[str, Connection] = {}

    # --- the handshake and the frames ----------------------------------------------------------
    async def handshake(self, request: web.BaseRequest) -> web.StreamResponse:
        from embedded.gateway import merged_headers

        ws = web.WebSocketResponse(max_msg_size=self.limits.max_message_bytes)
        if not ws.can_prepare(request).ok:
            return refusal(426, "upgrade_required", f"GET {PATH} is a WebSocket handshake (Upgrade: websocket)",
                           {"upgrade": "websocket"})
        headers = merged_headers(request)
        query = {k: v for k, v in request.query.items()}
        connection = Connection(new_connection_id(), ws, source_ip=request.remote or "127.0.0.1",
                                user_agent=headers.get("user-agent", ""), domain=headers.get("host", "127.0.0.1"),
                                clock=self.clock)
        key = headers.get("x-api-key")
        if self.authorizer:
            answer: dict = {}

            def invoke(event: dict) -> dict:
                answer.update(self.stack.functions.invoke(self.authorizer, event) or {})
                return answer

            arn = f"arn:aws:execute-api:{self.stack.region}:{self.stack.account}:local/local/$connect"
            event = {"type": "REQUEST", "methodArn": arn,
                     **self._event(connection, "CONNECT", "$connect", headers=headers, query=query)}
            try:
                connection.authorizer = await self.server.run_sync(authorize, invoke, event)
            except AuthorizerRefused as refused:
                return web.json_response({"message": refused.message}, status=refused.status)
            key = answer.get("usageIdentifierKey")
        key_id = self.stack.api_key_ids.get(key or "")
        if self.api_key_required:
            if key_id is None:
                return web.json_response({"message": "Forbidden"}, status=403)
            exceeded = self.usage_plan.admit(key_id)
            if exceeded is not None:
                return web.json_response({"message": exceeded}, status=429)
        connection.identity = {"apiKey": key if key_id else None, "apiKeyId": key_id,
                               "userAgent": headers.get("user-agent")}
        answer_to_connect = await self._invoke(self._event(connection, "CONNECT", "$connect", headers=headers,
                                                           query=query))
        if answer_to_connect is None:
            return web.json_response({"message": "Internal server error"}, status=502)
        status, _, body = answer_to_connect
        if not 200 <= status < 300:
            return web.json_response(_json_or_message(body, status), status=status)
        await ws.prepare(request)
        connection.last_active_at = self.clock()
        self.connections[connection.id] = connection
        expiry = asyncio.ensure_future(self._expire(connection))
        try:
            await self._serve(connection)
        finally:
            expiry.cancel()
            self.connections.pop(connection.id, None)
            connection.closing = True
            code = connection.close_code or ws.close_code or 1006
            reason = connection.close_reason or ("Connection Closed Normally" if code in (NORMAL, 1005) else "")
            await asyncio.shield(self._invoke(self._event(connection, "DISCONNECT", "$disconnect", extra_context={
                "disconnectStatusCode": code, "disconnectReason": reason}, headers=headers)))
        return ws

    async def _serve(self, connection: Connection) -> None:
        ws = connection.ws
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break  # an error: aiohttp has closed the connection (1009 over max_msg_size)
            connection.last_active_at = self.clock()
            data = message.data
            size = len(data.encode()) if isinstance(data, str) else len(data)
            if size > self.limits.frame_bytes:
                await self._tell(connection, frames.error(
                    "frame_too_large", f"a frame is at most {self.limits.frame_bytes} bytes; this one had {size}",
                    False))
                connection.close(MESSAGE_TOO_BIG, "Message too big")
                break
            event = self._event(connection, "MESSAGE", select_route(self.field, self.routes, data), body=data)
            if await self._invoke(event) is None:  # API Gateway's answer to a failed integration
                await self._tell(connection, {"message": "Internal server error", "connectionId": connection.id,
                                              "requestId": request_id(event)})
        await connection.closed()

    def _event(self, connection: Connection, event_type: str, route: str, **kwargs) -> dict:
        return websocket_event(event_type, route, connection_id=connection.id, connected_at=connection.connected_at,
                               domain=connection.domain, source_ip=connection.source_ip, identity=connection.identity,
                               authorizer=connection.authorizer, **kwargs)

    async def _invoke(self, event: dict) -> tuple[int, dict[str, str], bytes] | None:
        """The route's function on ``event`` (on the pool, as the REST routes); None when it failed."""
        later = after_response.Later()

        def run():
            with later:
                return self.stack.functions.invoke(self.function, event)

        try:
            result = await self.server.run_sync(run)
        except Exception as exc:
            logger.info("%s %s failed: %s: %s", self.function, event["requestContext"]["routeKey"],
                        type(exc).__name__, str(exc)[:300])
            return None
        finally:
            if later.tasks:
                self.server.pool.submit(later.run)
        return lambda_answer(result)

    @staticmethod
    async def _tell(connection: Connection, frame: dict) -> None:
        if connection.closing or connection.ws.closed:
            return
        try:
            await connection.send(frames.encode(frame))
        except ConnectionError:
            pass  # it went away meanwhile

    async def _expire(self, connection: Connection) -> None:
        """Close the connection once idle for ``idle_seconds`` or open for ``max_seconds`` (1001)."""
        while True:
            at = min(connection.last_active_at + self.limits.idle_seconds,
                     connection.connected_at + self.limits.max_seconds)
            left = at - self.clock()
            if left <= 0:
                connection.close(GOING_AWAY, "Going away")
                return
            await asyncio.sleep(left)  # a timer: woken early only to find the deadline moved

    async def close_all(self) -> None:
        """The stack is stopping: every connection closed (1001), each one's $disconnect run."""
        for connection in list(self.connections.values()):
            connection.close(GOING_AWAY, "Going away")

    # --- @connections ----------------------------------------------------------------------------
    async def manage(self, request: web.BaseRequest, path: str) -> web.Response:
        raw_id = path[len(MANAGEMENT_PREFIX):]
        if not raw_id or "/" in raw_id:
            return refusal(404, "not_found", f"no route for {request.method} {path}")
        connection = self.connections.get(unquote(raw_id))
        if request.method == "POST":
            try:
                data = await read_body(request, self.limits.max_message_bytes, self.limits.body_timeout)
            except Refused as refused:
                if refused.response.status != 413:
                    raise
                return aws_error(413, "PayloadTooLargeException", "Message too long")
            if connection is None or connection.closing or connection.ws.closed:
                return aws_error(410, "GoneException", None)
            try:
                await connection.send(data)
            except ConnectionError:
                return aws_error(410, "GoneException", None)
            return web.Response(status=200)
        if request.method not in ("GET", "DELETE"):
            return refusal(405, "method_not_allowed", "@connections takes POST, GET and DELETE")
        if connection is None or connection.closing:
            return aws_error(410, "GoneException", None)
        if request.method == "GET":
            return web.json_response(connection.info())
        connection.close(NORMAL, "")
        return web.Response(status=204)


def _json_or_message(body: bytes, status: int) -> dict:
    """A refused $connect's body: the function's JSON object, else API Gateway's kind of message."""
    try:
        value = json.loads(body)
        if isinstance(value, dict):
            return value
    except ValueError:
        pass
    return {"message": "Forbidden" if status == 403 else "Unauthorized" if status == 401 else "Refused"}

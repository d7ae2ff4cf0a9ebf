"""The gateway's WebSocket API in process, with stand-in functions: the events it hands them
(shaped like AWS's fixtures), route selection, refusals before the upgrade, a failing route, the
idle timeout and the stack's stop (1001), binary frames."""
from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from embedded.http_server import HttpServer
from embedded.lambda_events import websocket_event
from embedded.rest_api import Plan
from embedded.websocket_api import (
    MANAGEMENT_PREFIX,
    WebSocketApi,
    WebSocketLimits,
    new_connection_id,
    select_route,
    selection_field,
)

EVENTS = Path(__file__).resolve().parents[1] / "events"
KEY = "k-123"
WIRING = {"websocket": {"function": "websocket", "routes": ["$connect", "$disconnect", "$default", "sendMessage"],
                        "route_selection_expression": "$request.body.action", "authorizer": "jwt",
                        "api_key_required": True},
          "authorizers": {"jwt": {"function": "authorizer"}}}


def fixture(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


# --- events --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, event_type, route, kwargs", [
    ("apiGatewayWebSocketConnectEvent.json", "CONNECT", "$connect",
     {"headers": {"host": "h"}, "query": {"api_key": KEY}}),
    ("apiGatewayWebSocketMessageEvent.json", "MESSAGE", "sendMessage", {"body": '{"action":"sendMessage"}'}),
    ("apiGatewayWebSocketDisconnectEvent.json", "DISCONNECT", "$disconnect",
     {"headers": {"host": "h"}, "extra_context": {"disconnectStatusCode": 1000, "disconnectReason": "bye"}}),
])
def test_websocket_events_have_the_shape_of_awss_fixtures(name, event_type, route, kwargs):
    aws = fixture(name)
    event = websocket_event(event_type, route, connection_id="L0SM9cOFvHcCIhw=", connected_at=1.5, domain="h",
                            source_ip="127.0.0.1", identity={"apiKey": KEY, "apiKeyId": "dev", "userAgent": None},
                            authorizer={"principalId": "anonymous"}, **kwargs)
    assert set(event) == set(aws)
    assert set(event["requestContext"]) == set(aws["requestContext"])
    assert set(event["requestContext"]["identity"]) == set(aws["requestContext"]["identity"])
    assert (event["requestContext"]["eventType"], event["requestContext"]["routeKey"]) == (event_type, route)
    assert event["requestContext"]["connectedAt"] == 1500


def test_a_binary_frame_is_base64():
    event = websocket_event("MESSAGE", "$default", connection_id="c", connected_at=0, domain="h", source_ip="1",
                            body=b"\xff\x00")
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == b"\xff\x00"


# --- route selection -----------------------------------------------------------------------------
@pytest.mark.parametrize("data, route", [
    ('{"action": "sendMessage", "message": "x"}', "sendMessage"),
    ('{"action": "dance"}', "$default"),
    ('{"action": "$connect"}', "$default"),
    ('{"action": ["sendMessage"]}', "$default"),
    ('["sendMessage"]', "$default"),
    ("not json", "$default"),
    ("", "$default"),
    (b'{"action": "sendMessage"}', "$default"),
])
def test_the_route_is_the_body_s_action_when_it_names_one(data, route):
    assert select_route(selection_field("$request.body.action"), frozenset({"sendMessage"}), data) == route


def test_a_nested_field_selects_too_and_other_expressions_are_refused():
    assert select_route(selection_field("$request.body.meta.kind"), {"a"}, '{"meta": {"kind": "a"}}') == "a"
    with pytest.raises(ValueError, match="only"):
        selection_field("${request.body.action}")


def test_connection_ids_look_like_api_gateways():
    ids = {new_connection_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 16 and i.endswith("=") for i in ids)


# --- the API in process --------------------------------------------------------------------------
class Functions:
    """The authorizer allows and returns the query's key; the websocket function answers as told."""

    def __init__(self):
        self.events: list[dict] = []
        self.connect_status = 200
        self.fail_messages = False
        self.disconnected = threading.Event()

    def invoke(self, function: str, event: dict):
        if function == "authorizer":
            key = (event.get("queryStringParameters") or {}).get("api_key")
            return {"principalId": "anonymous", "context": {"tier": "free"}, "usageIdentifierKey": key,
                    "policyDocument": {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke",
                                                      "Resource": [event["methodArn"]]}]}}
        self.events.append(event)
        route = event["requestContext"]["routeKey"]
        if route == "$disconnect":
            self.disconnected.set()
        if route == "$connect":
            return {"statusCode": self.connect_status, "body": json.dumps({"message": "go away"})}
        if self.fail_messages:
            raise RuntimeError("the function broke")
        return {"statusCode": 200}

    def routes(self) -> list[str]:
        return [e["requestContext"]["routeKey"] for e in self.events]


@pytest.fixture
def api():
    functions = Functions()
    stack = SimpleNamespace(wiring_doc=WIRING, functions=functions, region="ap-northeast-1", account="123456789012",
                            api_key_ids={KEY: "dev"}, settings=SimpleNamespace(usage_plan=Plan()))
    holder: dict = {}

    async def handle(request):
        if request.path.startswith(MANAGEMENT_PREFIX):
            return await holder["api"].manage(request, request.raw_path)
        return await holder["api"].handshake(request)

    server = HttpServer(handle, workers=4)
    holder["api"] = WebSocketApi(stack, server, WebSocketLimits(idle_seconds=0.3))
    port = server.start("127.0.0.1", 0)
    yield SimpleNamespace(api=holder["api"], functions=functions, server=server, url=f"ws://127.0.0.1:{port}/ws",
                          base=f"http://127.0.0.1:{port}")
    server.stop()


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def test_connect_messages_and_disconnect_reach_the_function_with_the_connection_s_context(api):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{api.url}?api_key={KEY}") as ws:
                await ws.send_str('{"action": "sendMessage", "message": "x"}')
                await ws.send_bytes(b"\xff")
                await ws.send_str("closing")  # answered in order: once it is seen, the two before it were
                await asyncio.to_thread(lambda: wait(lambda: len(api.functions.events) == 4))

    run(scenario())
    assert api.functions.disconnected.wait(10)
    connect, message, binary, last, disconnect = api.functions.events
    assert api.functions.routes() == ["$connect", "sendMessage", "$default", "$default", "$disconnect"]
    assert connect["queryStringParameters"] == {"api_key": KEY}
    ids = {e["requestContext"]["connectionId"] for e in api.functions.events}
    assert len(ids) == 1
    for event in api.functions.events:
        context = event["requestContext"]
        assert context["identity"]["apiKeyId"] == "dev" and context["authorizer"]["tier"] == "free"
    assert binary["isBase64Encoded"] and base64.b64decode(binary["body"]) == b"\xff"
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1000


def wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_a_connect_answered_outside_2xx_refuses_the_handshake_with_its_status(api):
    api.functions.connect_status = 401

    async def scenario():
        async with aiohttp.ClientSession() as session:
            async with session.get(api.url, headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                     "Sec-WebSocket-Version": "13",
                                                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as response:
                return response.status, await response.json()

    assert run(scenario()) == (403, {"message": "Forbidden"})

    async def with_key():
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{api.url}?api_key={KEY}")
            return refused.value.status

    assert run(with_key()) == 401
    assert api.functions.routes() == ["$connect"], "no $disconnect for a connection that never was"


def test_a_failing_route_is_api_gateways_internal_error_message_and_the_connection_stays(api):
    api.functions.fail_messages = True

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{api.url}?api_key={KEY}") as ws:
            await ws.send_str('{"action": "sendMessage"}')
            first = await ws.receive_json(timeout=10)
            await ws.send_str("again")
            return first, await ws.receive_json(timeout=10)

    first, second = run(scenario())
    assert first["message"] == "Internal server error" and first["connectionId"] and first["requestId"]
    assert second["message"] == "Internal server error"


def test_an_idle_connection_is_closed_going_away_and_disconnected(api):
    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{api.url}?api_key={KEY}") as ws:
            return await ws.receive(timeout=10)

    closing = run(scenario())
    assert (closing.type, closing.data, closing.extra) == (aiohttp.WSMsgType.CLOSE, 1001, "Going away")
    assert api.functions.disconnected.wait(10)
    assert api.functions.events[-1]["requestContext"]["disconnectStatusCode"] == 1001


def test_the_stack_stopping_closes_every_connection_going_away(api):
    api.api.limits = WebSocketLimits(idle_seconds=60)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(f"{api.url}?api_key={KEY}") for _ in range(3)]
            await asyncio.to_thread(lambda: wait(lambda: len(api.api.connections) == 3))
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(api.api.close_all(), api.server.loop))
            return [(await ws.receive(timeout=10)).data for ws in sockets]

    assert run(scenario()) == [1001, 1001, 1001]
    wait(lambda: api.functions.routes().count("$disconnect") == 3)


@pytest.mark.parametrize("size, frames_before_close", [(32 * 1024 + 1, ["frame_too_large"]), (128 * 1024 + 1, [])])
def test_an_oversized_frame_closes_1009(api, size, frames_before_close):
    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{api.url}?api_key={KEY}") as ws:
            await ws.send_str("x" * size)
            received = []
            while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
                received.append(json.loads(message.data)["code"])
            return received, message.type, message.data

    assert run(scenario()) == (frames_before_close, aiohttp.WSMsgType.CLOSE, 1009)
    assert "$default" not in api.functions.routes(), "an oversized frame reaches no function"

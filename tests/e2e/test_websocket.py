"""The WebSocket API of the local stack with a real WebSocket client (aiohttp's): the handshake's
refusals before the upgrade, a streamed answer in order and equal to /v1/chat's, every bad frame,
the @connections API as the functions' boto3 client reaches it, and $disconnect."""
from __future__ import annotations

import asyncio
import http.client
import json
import time
from urllib.parse import urlsplit

import aiohttp
import boto3
import pytest
from botocore.exceptions import ClientError
from e2e.conftest import wait_until

from mangaassist.contracts import validate_api

pytestmark = pytest.mark.e2e
TIMEOUT = 30


def ws_url(stack, **query: str) -> str:
    url = stack.info["websocket_url"]
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def keyed(stack) -> str:
    return ws_url(stack, api_key=stack.info["api_key"])


def management(stack):
    return boto3.client("apigatewaymanagementapi", endpoint_url=stack.info["websocket_callback_url"],
                        region_name=stack.info["region"], aws_access_key_id="local", aws_secret_access_key="local")


def connection_ids(stack) -> set[str]:
    return set(connection_rows(stack))


def connection_rows(stack) -> dict[str, dict]:
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.info["aws_endpoint_url"], region_name=stack.info["region"],
                            aws_access_key_id="local", aws_secret_access_key="local")
    items = dynamodb.scan(TableName=stack.info["names"]["tables"]["connections"], ConsistentRead=True)["Items"]
    return {item["connection_id"]["S"]: {k: next(iter(v.values())) for k, v in item.items()} for item in items}


def dev_token(stack, user: str, tier: str) -> str:
    import jwt

    auth, now = stack.info["jwt"], int(time.time())
    with open(auth["private_key_file"]) as key:
        return jwt.encode({"iss": auth["issuer"], "aud": auth["audience"], "sub": user, "tier": tier, "iat": now,
                           "exp": now + 600}, key.read(), algorithm="RS256", headers={"kid": auth["key_id"]})


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 2))


async def answer(ws, request: dict) -> list[dict]:
    """Send ``request``; every frame until the end (or error) frame."""
    await ws.send_json(request)
    received = []
    while True:
        frame = await ws.receive_json(timeout=TIMEOUT)
        validate_api("ws.frame.response", frame)
        received.append(frame)
        if frame["type"] in ("end", "error"):
            return received


def handshake(stack, url: str, headers: dict | None = None) -> tuple[int, dict]:
    """A handshake the server refuses, read as plain HTTP (a WebSocket client hides the body)."""
    split = urlsplit(url)
    connection = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=TIMEOUT)
    try:
        connection.request("GET", f"{split.path}?{split.query}", headers={
            "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **(headers or {})})
        response = connection.getresponse()
        assert response.headers.get("content-type", "").startswith("application/json"), response.status
        return response.status, json.loads(response.read())
    finally:
        connection.close()


# --- the handshake -------------------------------------------------------------------------------
def test_the_stack_description_names_the_websocket_url(stack):
    port = stack.base_url.rsplit(":", 1)[1]
    assert stack.info["websocket_url"] == f"ws://127.0.0.1:{port}/ws"
    assert stack.info["websocket_callback_url"] == f"http://127.0.0.1:{port}/_aws/ws"


@pytest.mark.parametrize("query, headers, status, message", [
    ({}, {}, 403, "Forbidden"),
    ({"api_key": "not-a-key"}, {}, 403, "Forbidden"),
    ({"token": "not.a.jwt"}, None, 401, "Unauthorized"),
], ids=["no-key", "wrong-key", "bad-token"])
def test_a_handshake_without_a_valid_key_or_token_is_refused_before_the_upgrade(stack, query, headers, status,
                                                                                message):
    before = connection_ids(stack)
    if headers is None:  # the right key, a bad token: the authorizer refuses first
        query = {**query, "api_key": stack.info["api_key"]}
    assert handshake(stack, ws_url(stack, **query), headers) == (status, {"message": message})
    assert connection_ids(stack) == before, "no connection row is written"


@pytest.mark.parametrize("in_headers", [True, False], ids=["headers", "query"])
def test_the_token_s_user_is_the_connection_s_whether_in_headers_or_the_query(stack, in_headers):
    token, key = dev_token(stack, "user-ws", "premium"), stack.info["api_key"]
    url, headers = ((ws_url(stack), {"x-api-key": key, "authorization": f"Bearer {token}"}) if in_headers
                    else (ws_url(stack, api_key=key, token=token), {}))
    before = connection_ids(stack)

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers):
            return await asyncio.to_thread(wait_until, lambda: {k: v for k, v in connection_rows(stack).items()
                                                                if k not in before}, "the row")

    ((connection_id, row),) = run(scenario()).items()
    assert (row["user_id"], row["tier"], row["client_id"]) == ("user-ws", "premium", "dev")
    wait_until(lambda: connection_id not in connection_ids(stack), "$disconnect to delete the row")


def test_a_plain_get_of_the_websocket_path_is_426(stack):
    status, _, body = stack.json("GET", "/ws")
    assert (status, body["error"]) == (426, "upgrade_required")


# --- a streamed answer ---------------------------------------------------------------------------
def test_a_streamed_answer_comes_in_order_and_equals_the_rest_answer(stack):
    message = "葬送のフリーレンの最新刊は？"

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(keyed(stack)) as ws:
            return await answer(ws, {"action": "sendMessage", "message": message})

    received = run(scenario())
    start, *deltas, end = received
    assert start["type"] == "start" and end["type"] == "end", received
    assert end["message_id"] == start["message_id"]
    assert [d["type"] for d in deltas] == ["delta"] * len(deltas) and deltas
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert end["frames"] == len(deltas) and end["tokens"] > len(deltas)
    status, _, rest = stack.json("POST", "/v1/chat", {"message": message}, {"x-api-key": stack.info["api_key"]})
    assert status == 200
    assert "".join(d["text"] for d in deltas) == rest["answer"]


def test_two_connections_get_their_own_frames_only(stack):
    async def one(session, message: str) -> list[dict]:
        async with session.ws_connect(keyed(stack)) as ws:
            return await answer(ws, {"action": "sendMessage", "message": message})

    async def scenario():
        async with aiohttp.ClientSession() as session:
            return await asyncio.gather(one(session, "ワンピースの新刊は？"), one(session, "Is Frieren out?"))

    first, second = run(scenario())
    for frames in (first, second):
        assert frames[0]["type"] == "start" and frames[-1]["type"] == "end", frames
        assert frames[-1]["message_id"] == frames[0]["message_id"]
        assert [f["seq"] for f in frames if f["type"] == "delta"] == list(range(1, frames[-1]["frames"] + 1))
    assert first[0]["message_id"] != second[0]["message_id"]
    assert first[0]["session_id"] != second[0]["session_id"]


def test_a_client_that_leaves_mid_answer_stops_the_generation(stack):
    before = connection_ids(stack)

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(keyed(stack)) as ws:
            (connection_id,) = await asyncio.to_thread(wait_until, lambda: connection_ids(stack) - before, "the row")
            await ws.send_json({"action": "sendMessage", "message": "ダンダダンとフリーレンの新刊を全部教えて"})
            start = await ws.receive_json(timeout=TIMEOUT)
            return connection_id, start  # and the client goes: the next frame's post finds it gone

    connection_id, start = run(scenario())
    assert start["type"] == "start"
    # The turn's events, in the bus's archive: the call stopped as the client left (stop_reason
    # client_gone, its tokens so far), on this connection. (Not the log: locally the functions share
    # Powertools' logger keys across threads, so a line's connection_id may be another turn's.)
    def events() -> dict[str, dict]:
        found = {}
        for line in (stack.data_dir / "archive.jsonl").read_text().splitlines():
            try:
                event = json.loads(line)["event"]
            except ValueError:  # the line being written
                continue
            if event["detail"].get("message_id", event["detail"].get("request_id")) == start["message_id"]:
                found[event["detail-type"]] = event["detail"]
        return found if {"MessageReceived", "InferenceCompleted"} <= set(found) else {}

    published = wait_until(events, "the turn's MessageReceived and InferenceCompleted")
    assert published["MessageReceived"]["connection_id"] == connection_id
    assert published["InferenceCompleted"]["stop_reason"] == "client_gone", published
    wait_until(lambda: connection_id not in connection_ids(stack), "the row deleted")


# --- bad frames ----------------------------------------------------------------------------------
@pytest.mark.parametrize("frame, code", [
    ("not json", "invalid_json"),
    (json.dumps({"action": "dance"}), "unknown_action"),
    (json.dumps(["sendMessage"]), "unknown_action"),
    (json.dumps({"action": "sendMessage"}), "invalid_request"),
    (json.dumps({"action": "sendMessage", "message": "x" * 4001}), "invalid_request"),
], ids=["not-json", "unknown-action", "not-an-object", "no-message", "message-too-long"])
def test_a_bad_frame_gets_an_error_frame_and_the_connection_stays(stack, frame, code):
    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(keyed(stack)) as ws:
            await ws.send_str(frame)
            error = await ws.receive_json(timeout=TIMEOUT)
            await ws.send_json({"action": "dance"})  # still connected: answered again
            again = await ws.receive_json(timeout=TIMEOUT)
            return error, again, ws.closed

    error, again, closed = run(scenario())
    validate_api("ws.frame.response", error)
    assert (error["type"], error["code"], again["code"], closed) == ("error", code, "unknown_action", False)


def test_a_frame_over_32_kb_gets_an_error_frame_and_close_1009(stack):
    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(keyed(stack)) as ws:
            await ws.send_str(json.dumps({"action": "sendMessage", "message": "x" * 33_000}))
            error = await ws.receive_json(timeout=TIMEOUT)
            closing = await ws.receive(timeout=TIMEOUT)
            return error, closing.type, ws.close_code

    error, kind, code = run(scenario())
    assert error["code"] == "frame_too_large" and (kind, code) == (aiohttp.WSMsgType.CLOSE, 1009)


def test_a_second_message_while_one_streams_is_a_busy_error_frame(stack):
    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(keyed(stack)) as ws:
            await ws.send_json({"action": "sendMessage", "message": "ワンピースの新刊は？"})
            await ws.send_json({"action": "sendMessage", "message": "and another"})
            received: list[dict] = []
            while not any(f["type"] == "end" for f in received):
                received.append(await ws.receive_json(timeout=TIMEOUT))
            return received

    received = run(scenario())
    assert [f["code"] for f in received if f["type"] == "error"] == ["busy"]


def test_a_client_over_its_message_rate_gets_an_error_frame_and_is_closed(stack):
    from mangaassist.streaming.service import MESSAGES_PER_MINUTE

    if time.time() % 60 > 45:  # the rate is counted per clock minute: all of this run's messages in one
        time.sleep(61 - time.time() % 60)

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(keyed(stack)) as ws:
            for i in range(MESSAGES_PER_MINUTE + 1):
                await ws.send_json({"action": "sendMessage", "message": f"question {i}"})
            received = []
            while (message := await ws.receive(timeout=TIMEOUT)).type == aiohttp.WSMsgType.TEXT:
                received.append(json.loads(message.data))
            return received, message

    received, closing = run(scenario())
    codes = [f["code"] for f in received if f["type"] == "error"]
    assert codes[-1] == "rate_limited" and set(codes[:-1]) <= {"busy"}, codes
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1000)


# --- @connections --------------------------------------------------------------------------------
def test_the_management_api_posts_describes_and_closes_a_connection(stack):
    client = management(stack)
    before = connection_ids(stack)

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(keyed(stack)) as ws:
            (connection_id,) = await asyncio.to_thread(wait_until, lambda: connection_ids(stack) - before,
                                                       "the connection's row")
            info = await asyncio.to_thread(client.get_connection, ConnectionId=connection_id)
            data = '{"hello":"あ"}'.encode()
            await asyncio.to_thread(client.post_to_connection, ConnectionId=connection_id, Data=data)
            posted = await ws.receive(timeout=TIMEOUT)
            await asyncio.to_thread(client.delete_connection, ConnectionId=connection_id)
            closing = await ws.receive(timeout=TIMEOUT)
            return connection_id, info, posted, closing

    connection_id, info, posted, closing = run(scenario())
    assert info["Identity"]["SourceIp"] == "127.0.0.1" and info["ConnectedAt"] <= info["LastActiveAt"]
    assert (posted.type, posted.data) == (aiohttp.WSMsgType.TEXT, '{"hello":"あ"}')
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1000)
    wait_until(lambda: connection_id not in connection_ids(stack), "$disconnect to delete the row")
    for call in (lambda: client.post_to_connection(ConnectionId=connection_id, Data=b"late"),
                 lambda: client.get_connection(ConnectionId=connection_id),
                 lambda: client.delete_connection(ConnectionId=connection_id)):
        with pytest.raises(ClientError) as gone:
            call()
        assert gone.value.response["Error"]["Code"] == "GoneException"
        assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_an_unknown_connection_is_410_gone_and_an_oversized_post_413(stack):
    status, headers, body = stack.request("POST", "/_aws/ws/@connections/nobody%3D", b"{}")
    error_type = {k.lower(): v for k, v in headers.items()}.get("x-amzn-errortype")
    assert (status, error_type, json.loads(body)) == (410, "GoneException", {"message": None})
    with pytest.raises(ClientError) as too_large:
        management(stack).post_to_connection(ConnectionId="nobody=", Data=b"x" * (128 * 1024 + 1))
    assert too_large.value.response["Error"]["Code"] == "PayloadTooLargeException"
    status, _, body = stack.request("PUT", "/_aws/ws/@connections/nobody%3D", b"{}")
    assert status == 405 and json.loads(body)["error"] == "method_not_allowed"


def test_a_client_that_closes_runs_disconnect_and_its_row_is_deleted(stack):
    before = connection_ids(stack)

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(keyed(stack)):
            return await asyncio.to_thread(wait_until, lambda: connection_ids(stack) - before, "the connection's row")

    (connection_id,) = run(scenario())
    wait_until(lambda: connection_id not in connection_ids(stack), "$disconnect to delete the row")


def test_a_model_failing_mid_answer_resets_to_the_next_model_and_the_answer_completes(stack):
    message = "フリーレンとダンダダンの新刊は？"
    # One signed-in user: the flags send a user to the same model every turn (the rollout hashes the
    # user; an anonymous connection is hashed by its own id, so each connection could differ).
    url = ws_url(stack, api_key=stack.info["api_key"], token=dev_token(stack, "user-reset", "free"))

    async def turn():
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            return await answer(ws, {"action": "sendMessage", "message": message})

    first = run(turn())
    answering = first[0]["model_id"]
    # The model that answers this client fails after 5 tokens of its next stream, as Bedrock's
    # ThrottlingException mid-stream would (/_local/faults' model targets).
    status, _, body = stack.json("POST", "/_local/faults", {"target": f"model:{answering}", "fail_next": 1,
                                                            "after_chunks": 5})
    assert status == 200, body
    received = run(turn())
    kinds = [f["type"] for f in received]
    assert kinds[0] == "start" and received[0]["model_id"] == answering, received
    assert "reset" in kinds and kinds[-1] == "end", kinds
    reset_at = kinds.index("reset")
    reset = received[reset_at]
    assert reset["model_id"] != answering and reset["reason"].startswith("ThrottlingException"), reset
    deltas = [f for f in received if f["type"] == "delta"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1)), "seq runs on across the reset"
    after = "".join(f["text"] for f in received[reset_at + 1:] if f["type"] == "delta")
    assert after.strip(), "the next model's whole answer follows the reset"


def test_model_faults_are_refused_when_malformed(stack):
    for payload, status in (({"target": "model:nope", "fail_next": 1}, 404),
                            ({"target": "model:local.fast-v1", "fail_next": 1, "after_chunks": -1}, 400),
                            ({"target": "model:local.fast-v1", "fail_next": 1, "code": "not a code"}, 400)):
        answered, _, body = stack.json("POST", "/_local/faults", payload)
        assert (answered, body["error"]) == (status, "unknown_target" if status == 404 else "invalid_request")

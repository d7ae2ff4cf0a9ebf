"""WebSocket streaming: batched frames, the reset after a mid-answer failure, a client that goes
away, and the route function's refusals — on moto, with the offline model paced like a real one."""
from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from test_client_api import CATALOG_SAMPLE, PRODUCTS, Recorder

from mangaassist import contracts
from mangaassist.chat import service as chat_service_module
from mangaassist.deps import Deps
from mangaassist.events import publisher
from mangaassist.models import local
from mangaassist.rest import Caller
from mangaassist.streaming import frames
from mangaassist.streaming import service as streaming_service
from mangaassist.streaming.relay import ClientGone, Relay
from mangaassist.streaming.turn import StreamTurn
from mangaassist.workers.catalog import index_product


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


# --- batching ----------------------------------------------------------------------------------
def test_the_first_token_goes_at_once():
    sent, clock = [], Clock()
    batcher = frames.FrameBatcher(sent.append, clock=clock)
    batcher.add("葬送の")
    assert sent == [{"type": "delta", "seq": 1, "text": "葬送の"}] and batcher.due_in() is None
    batcher.add("フリーレン")
    assert len(sent) == 1, "the tokens after it wait for company"


def test_a_frame_goes_at_a_sentence_end():
    sent, clock = [], Clock()
    batcher = frames.FrameBatcher(sent.append, clock=clock)
    for token in ["", "葬送の", "フリーレン", "14 は", "発売中です。", "次"]:
        batcher.add(token)
    assert sent[1:] == [{"type": "delta", "seq": 2, "text": "フリーレン14 は発売中です。"}]
    assert batcher.due_in() == pytest.approx(0.1)


def test_a_frame_goes_100_ms_after_its_first_token():
    sent, clock = [], Clock()
    batcher = frames.FrameBatcher(sent.append, clock=clock)
    batcher.add("THE ")  # the first token: at once
    batcher.add("ONE ")
    clock.now = 0.06
    batcher.add("PIECE ")
    assert batcher.due_in() == pytest.approx(0.04) and len(sent) == 1
    clock.now = 0.1
    assert batcher.due_in() == 0.0
    batcher.flush()
    assert sent[1:] == [{"type": "delta", "seq": 2, "text": "ONE PIECE "}] and batcher.due_in() is None


def test_a_frame_goes_at_the_size_threshold_and_never_exceeds_32_kb():
    sent = []
    batcher = frames.FrameBatcher(sent.append, size=10)
    batcher.add("0123456789ab")
    assert [f["text"] for f in sent] == ["0123456789ab"]
    big = "漫" * 40_000  # 120 KB of UTF-8
    pieces = frames.split(big)
    assert "".join(pieces) == big and len(pieces) == 4
    assert all(len(frames.encode({"type": "delta", "seq": 10**6, "text": p})) <= frames.FRAME_LIMIT for p in pieces)
    escaped = frames.split('"\\' * 20_000)  # characters JSON escapes take two bytes
    assert all(len(frames.encode({"type": "delta", "seq": 1, "text": p})) <= frames.FRAME_LIMIT for p in escaped)


# --- a streamed turn -----------------------------------------------------------------------------
class FakeRelay(Relay):
    """What API Gateway's @connections would carry, kept; optionally the client leaves after N frames."""

    def __init__(self, leave_after: int | None = None):
        super().__init__(client=None, connection_id="conn-1")
        self.frames: list[dict] = []
        self.leave_after = leave_after
        self.closed = False

    def send(self, frame: dict) -> None:
        if self.leave_after is not None and len(self.frames) >= self.leave_after:
            raise ClientGone(self.connection_id)
        contracts.validate_api("ws.frame.response", frame)
        assert len(frames.encode(frame)) <= frames.FRAME_LIMIT
        self.frames.append({**frame, "at": time.monotonic()})
        self.sent += 1

    def close(self) -> None:
        self.closed = True

    def text(self) -> str:
        """What the client shows: the deltas after the last reset."""
        shown = []
        for frame in self.frames:
            if frame["type"] == "reset":
                shown = []
            elif frame["type"] == "delta":
                shown.append(frame["text"])
        return "".join(shown)


@pytest.fixture
def streaming(platform_aws, monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(publisher, "publish", recorder)
    monkeypatch.setenv("LOCAL_MODEL_TOKENS_PER_SECOND", "400")
    monkeypatch.setenv("LOCAL_MODEL_LATENCY_MS", "20")
    from mangaassist import settings

    settings.reload()
    chat_service_module.chat_service.cache_clear()
    local.clear_faults()
    deps = Deps()
    for revision, (product_id, (title, author, genres, synopsis)) in enumerate(PRODUCTS.items(), 1):
        detail = {**CATALOG_SAMPLE["detail"], "product_id": product_id, "title": title, "author": author,
                  "genres": genres, "synopsis": synopsis, "revision": revision}
        index_product({**CATALOG_SAMPLE, "id": f"evt-{product_id}", "detail": detail}, deps)
    yield recorder
    local.clear_faults()
    chat_service_module.chat_service.cache_clear()


CALLER = Caller(client_id="k1a2b3c4d5", user_id=None, tier="free", verified=False)


def stream(request: dict, relay: FakeRelay | None = None) -> tuple[str, FakeRelay]:
    relay = relay or FakeRelay()
    return StreamTurn(chat_service_module.chat_service()).run(request, CALLER, relay), relay


def test_a_streamed_answer_equals_the_rest_answer_for_the_same_prompt(streaming):
    outcome, relay = stream({"message": "フリーレンの新刊はいつ出ますか？"})
    assert outcome == "answered"
    start, *deltas, end = relay.frames
    assert start["type"] == "start" and end["type"] == "end" and start["model_id"] == "local.fast-v1"
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    from test_client_api import chat

    assert relay.text() == chat({"message": "フリーレンの新刊はいつ出ますか？"})[2]["answer"]
    assert end["tokens"] >= 5 * len(deltas), "far fewer frames than tokens"
    received, inference = streaming.of("MessageReceived")[0], streaming.of("InferenceCompleted")[0]
    assert received["channel"] == "websocket" and received["connection_id"] == "conn-1"
    assert inference["output_tokens"] == end["usage"]["output_tokens"]
    session = boto3.resource("dynamodb").Table("test-sessions").get_item(Key={"session_id": start["session_id"]})
    assert [t["role"] for t in session["Item"]["turns"]] == ["user", "assistant"], "one conversation, either way"


def test_a_model_failing_mid_answer_resets_to_the_next_model_and_the_client_ends_with_one_answer(streaming):
    local.inject_fault("local.fast-v1", local.Fault("ModelStreamErrorException", after_chunks=6))
    outcome, relay = stream({"message": "フリーレンの新刊はいつ出ますか？"})
    assert outcome == "answered"
    types = [f["type"] for f in relay.frames]
    assert types[0] == "start" and "reset" in types and types[-1] == "end"
    reset = relay.frames[types.index("reset")]
    assert reset["model_id"] == "local.deep-v1" and "ModelStreamErrorException" in reset["reason"]
    seqs = [f["seq"] for f in relay.frames if f["type"] == "delta"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "seq keeps counting across the reset"
    _, clean = stream({"message": "フリーレンの新刊はいつ出ますか？"})
    assert relay.text() == clean.text(), "the answer after the reset is whole"
    calls = streaming.of("InferenceCompleted")
    assert [c["model_id"] for c in calls[:2]] == ["local.fast-v1", "local.deep-v1"]
    assert calls[0]["stop_reason"] == "error" and calls[0]["output_tokens"] > 0, "the failed call is counted too"


def test_a_failure_before_the_first_token_falls_back_without_a_reset(streaming):
    local.inject_fault("local.fast-v1", local.Fault("ThrottlingException"), count=4)
    outcome, relay = stream({"message": "フリーレン"})
    assert outcome == "answered" and relay.frames[0]["model_id"] == "local.deep-v1"
    assert "reset" not in [f["type"] for f in relay.frames]


def test_every_model_failing_is_one_retryable_error_frame(streaming):
    for model_id in ("local.fast-v1", "local.deep-v1"):
        local.inject_fault(model_id, local.Fault("ServiceUnavailableException"), count=10)
    outcome, relay = stream({"message": "フリーレン"})
    assert outcome == "failed" and relay.frames[-1]["type"] == "error" and relay.frames[-1]["retryable"] is True


def test_a_client_that_goes_away_stops_the_generation(streaming, monkeypatch):
    produced = []
    real = local.LocalProvider._stream

    def counting(self, completion, fault):
        inner = real(self, completion, fault)
        while True:
            try:
                token = next(inner)
            except StopIteration as end:
                return end.value
            produced.append(token)
            yield token

    monkeypatch.setattr(local.LocalProvider, "_stream", counting)
    question = {"message": "フリーレンの新刊はいつ出ますか？ 詳しく教えてください"}
    outcome, relay = stream(question, FakeRelay(leave_after=2))
    assert outcome == "gone"
    time.sleep(0.3)  # were it still generating, more tokens would come now
    generated = len(produced)
    whole = len(stream(question)[1].text())
    assert len("".join(produced[:generated])) < whole / 2, "the model stopped soon after the client left"
    (call,) = [c for c in streaming.of("InferenceCompleted") if c["stop_reason"] == "client_gone"]
    assert call["output_tokens"] > 0


def test_an_unknown_session_is_an_error_frame_not_a_stream(streaming):
    outcome, relay = stream({"message": "hi", "session_id": "sess_doesnotexist0"})
    assert outcome == "refused" and relay.frames[0]["code"] == "unknown_session"


# --- the route function --------------------------------------------------------------------------
@pytest.fixture
def routes(platform_aws):
    relays: dict[str, FakeRelay] = {}
    queued: list[dict] = []

    def relay_for(connection_id: str) -> FakeRelay:
        return relays.setdefault(connection_id, FakeRelay())

    service = streaming_service.WebSocketRoutes(connections=Deps().connections, relay_for=relay_for,
                                                enqueue=queued.append)
    return service, relays, queued


def ws_event(route: str, body=None, connection_id: str = "conn-1", authorizer=None) -> dict:
    context = {"routeKey": route, "connectionId": connection_id, "eventType": "MESSAGE",
               "identity": {"apiKeyId": "k1a2b3c4d5", "sourceIp": "127.0.0.1"}}
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {"requestContext": context, "body": body if body is None or isinstance(body, str) else json.dumps(body)}


def test_connect_keeps_the_verified_caller_and_disconnect_forgets_it(routes):
    service, _, _ = routes
    assert service.connect(ws_event("$connect", authorizer={"sub": "user-9", "tier": "premium"})) == {"statusCode": 200}
    row = Deps().connections.get("conn-1")
    assert (row["client_id"], row["user_id"], row["tier"]) == ("k1a2b3c4d5", "user-9", "premium")
    assert row["expires_at"] - row["connected_at"] == 7200
    service.disconnect(ws_event("$disconnect"))
    assert Deps().connections.get("conn-1") is None


def test_a_message_is_queued_with_the_connections_caller(routes):
    service, relays, queued = routes
    service.connect(ws_event("$connect"))
    service.send_message(ws_event("sendMessage", {"action": "sendMessage", "message": "フリーレン"}))
    (job,) = queued
    assert job["request"] == {"message": "フリーレン"} and job["client_id"] == "k1a2b3c4d5"
    assert relays.get("conn-1") is None or relays["conn-1"].frames == []


def test_a_second_message_while_one_streams_is_a_busy_error_frame(routes):
    service, relays, queued = routes
    service.connect(ws_event("$connect"))
    service.send_message(ws_event("sendMessage", {"action": "sendMessage", "message": "one"}))
    service.send_message(ws_event("sendMessage", {"action": "sendMessage", "message": "two"}))
    assert len(queued) == 1 and relays["conn-1"].frames[-1]["code"] == "busy"
    Deps().connections.release_stream("conn-1", queued[0]["request_id"])
    service.send_message(ws_event("sendMessage", {"action": "sendMessage", "message": "three"}))
    assert len(queued) == 2


@pytest.mark.parametrize("route, body, code", [
    ("$default", "not json", "invalid_json"),
    ("$default", {"action": "dance"}, "unknown_action"),
    ("sendMessage", {"action": "sendMessage"}, "invalid_request"),
    ("sendMessage", {"action": "sendMessage", "message": "x" * 4001}, "invalid_request"),
    ("sendMessage", "{{", "invalid_request"),
])
def test_bad_frames_get_an_error_frame_and_the_connection_stays(routes, route, body, code):
    service, relays, queued = routes
    service.connect(ws_event("$connect"))
    handler = service.unknown if route == "$default" else service.send_message
    assert handler(ws_event(route, body)) == {"statusCode": 200}
    assert relays["conn-1"].frames[-1]["code"] == code and not relays["conn-1"].closed and queued == []
    assert Deps().connections.get("conn-1") is not None


def test_a_client_over_its_rate_gets_an_error_frame_and_is_closed(routes):
    service, relays, queued = routes
    service.connect(ws_event("$connect"))
    for i in range(streaming_service.MESSAGES_PER_MINUTE + 1):
        if queued:
            Deps().connections.release_stream("conn-1", queued[-1]["request_id"])
        service.send_message(ws_event("sendMessage", {"action": "sendMessage", "message": f"m{i}"}))
    assert relays["conn-1"].frames[-1]["code"] == "rate_limited" and relays["conn-1"].closed
    assert Deps().connections.get("conn-1") is None and len(queued) == streaming_service.MESSAGES_PER_MINUTE


def test_the_relay_turns_gone_into_client_gone():
    class Gone:
        def post_to_connection(self, **kwargs):
            raise ClientError({"Error": {"Code": "GoneException", "Message": "gone"}}, "PostToConnection")

    with pytest.raises(ClientGone):
        Relay(Gone(), "c").send({"type": "delta", "seq": 1, "text": "x"})

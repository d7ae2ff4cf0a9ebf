"""The client API's handlers (chat, recommend, generate + the job worker) on moto, through the REST
proxy events API Gateway sends them: answers, memory, ownership, bad input and every failure."""
from __future__ import annotations

import copy
import importlib.util
import json
import re
import time
from pathlib import Path

import boto3
import pytest

from mangaassist import contracts
from mangaassist.chat import service as chat_service_module
from mangaassist.deps import Deps
from mangaassist.events import publisher
from mangaassist.jobs import submit as submit_module
from mangaassist.models import local
from mangaassist.recommendations import service as recommend_module
from mangaassist.workers.catalog import index_product

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "tests" / "events" / "apiGatewayProxyEvent.json").read_text())
CATALOG_SAMPLE = json.loads((ROOT / "schemas/events/mangaassist.catalog/CatalogUpdate.new_release.samples.json")
                            .read_text())["valid"][0]
PRODUCTS = {
    "bk-frieren-14": ("葬送のフリーレン 14", "山田鐘人", ["fantasy", "adventure"], "魔法使いフリーレンの旅の続き。"),
    "bk-frieren-13": ("葬送のフリーレン 13", "山田鐘人", ["fantasy", "adventure"], "フリーレン一行の北への旅。"),
    "bk-dungeon-meshi-1": ("ダンジョン飯 1", "九井諒子", ["fantasy", "comedy"], "迷宮で魔物を料理する冒険。"),
    "bk-onepiece-107": ("ONE PIECE 107", "尾田栄一郎", ["adventure", "shonen"], "海賊王を目指すルフィの冒険。"),
    "bk-cooking-papa-1": ("クッキングパパ 1", "うえやまとち", ["slice of life", "cooking"], "料理上手な父の日常。"),
}


class Recorder:
    """Stands in for PutEvents: every event checked against its contract, then kept."""

    def __init__(self):
        self.events: list = []

    def __call__(self, events, **_):
        for event in events:
            contracts.validate_detail(event.source, event.detail_type, event.detail)
        self.events += list(events)
        return [f"evt-{i}" for i in range(len(events))]

    def of(self, detail_type: str) -> list[dict]:
        return [e.detail for e in self.events if e.detail_type == detail_type]


def handler(function: str):
    path = ROOT / "functions" / function / "handler.py"
    spec = importlib.util.spec_from_file_location(f"{function}_handler_api", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


class Context:
    function_name = "mangaassist-test-chat"
    aws_request_id = "req-1"
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:mangaassist-test-chat"
    memory_limit_in_mb = 1024

    def __init__(self, remaining_ms: int = 28_000):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def api(platform_aws, monkeypatch):
    """The platform on moto, the catalog indexed, events recorded, fresh per-container state."""
    recorder = Recorder()
    monkeypatch.setattr(publisher, "publish", recorder)
    for cached in (chat_service_module.chat_service, recommend_module.recommender, submit_module.job_desk):
        cached.cache_clear()
    local.clear_faults()
    deps = Deps()
    for revision, (product_id, (title, author, genres, synopsis)) in enumerate(PRODUCTS.items(), 1):
        detail = {**CATALOG_SAMPLE["detail"], "product_id": product_id, "title": title, "author": author,
                  "genres": genres, "synopsis": synopsis, "revision": revision}
        index_product({**CATALOG_SAMPLE, "id": f"evt-{product_id}", "detail": detail}, deps)
    yield recorder
    local.clear_faults()
    for cached in (chat_service_module.chat_service, recommend_module.recommender, submit_module.job_desk):
        cached.cache_clear()


def request(method: str, path: str, body=None, *, resource: str | None = None, key_id: str = "k1a2b3c4d5",
            headers: dict | None = None, params: dict | None = None, authorizer: dict | None = None) -> dict:
    event = copy.deepcopy(EVENT)
    event.update(httpMethod=method, path=path, resource=resource or path, pathParameters=params)
    event["requestContext"].update(httpMethod=method, resourcePath=resource or path, path=f"/prod{path}")
    event["requestContext"]["identity"]["apiKeyId"] = key_id
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    event["headers"].update(headers or {})
    event["body"] = body if body is None or isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return event


def call(function: str, event: dict, context: Context | None = None) -> tuple[int, dict, dict]:
    response = handler(function)(event, context or Context())
    body = json.loads(response["body"]) if response.get("body") else {}
    headers = {**(response.get("headers") or {}),
               **{k: ",".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()}}
    assert headers["Content-Type"].startswith("application/json")
    return response["statusCode"], headers, body


def chat(body, **kwargs) -> tuple[int, dict, dict]:
    return call("chat", request("POST", "/v1/chat", body, **kwargs))


# --- chat ------------------------------------------------------------------------------------
def test_a_first_turn_mints_a_session_and_answers_from_the_catalog(api):
    status, _, answer = chat({"message": "フリーレンの新刊はいつ出ますか？"})
    assert status == 200, answer
    contracts.validate_api("chat.response", answer)
    assert answer["session_id"].startswith("sess_") and answer["model_id"] == "local.fast-v1"
    assert answer["fallback"] is False and "フリーレン" in answer["answer"]
    assert {c["product_id"] for c in answer["citations"]} >= {"bk-frieren-14"}
    assert all(c["product_id"] in PRODUCTS for c in answer["citations"]), "only retrieved products are cited"
    assert answer["usage"]["input_tokens"] > 0 and answer["usage"]["cost_usd"] == 0.0
    (received,) = api.of("MessageReceived")
    (inference,) = api.of("InferenceCompleted")
    assert (received["session_id"], received["message_id"], received["channel"]) == (
        answer["session_id"], answer["message_id"], "rest")
    assert (inference["feature"], inference["model_id"], inference["request_id"]) == (
        "chat", "local.fast-v1", answer["message_id"])


def test_turns_of_one_session_are_remembered_and_given_to_the_model(api, monkeypatch):
    first = chat({"message": "フリーレンの新刊はいつ出ますか？", "user_id": "cust_77"})[2]
    seen = []
    real = local.LocalProvider.converse

    def spy(self, messages, **kwargs):
        seen.append(messages)
        return real(self, messages, **kwargs)

    monkeypatch.setattr(local.LocalProvider, "converse", spy)
    status, _, second = chat({"message": "その前の巻は？", "session_id": first["session_id"]})
    assert status == 200 and second["session_id"] == first["session_id"]
    assert [m["role"] for m in seen[0]] == ["user", "assistant", "user"]
    assert seen[0][0]["content"][0]["text"] == "フリーレンの新刊はいつ出ますか？"
    stored = boto3.resource("dynamodb").Table("test-sessions").get_item(Key={"session_id": first["session_id"]})["Item"]
    assert [t["role"] for t in stored["turns"]] == ["user", "assistant"] * 2
    assert stored["owner"] == "k1a2b3c4d5" and stored["user_id"] == "cust_77" and int(stored["version"]) == 2
    assert int(stored["expires_at"]) > int(stored["updated_at"]), "sessions carry a TTL"


def test_a_turn_that_loses_the_race_rereads_and_keeps_both_turns(api, monkeypatch):
    """Two turns of one session read the same version; the second write must not drop the first."""
    first = chat({"message": "こんにちは"})[2]
    session_id = first["session_id"]
    table = chat_service_module.chat_service().sessions.table
    real_get = table.get_item
    reads = []

    def get_then_race(**kwargs):
        item = real_get(**kwargs)
        reads.append(1)
        if len(reads) == 1:  # the turn has read the session: another turn lands before its write
            chat({"message": "割り込みの質問", "session_id": session_id})
        return item

    monkeypatch.setattr(table, "get_item", get_then_race)
    status, _, answer = chat({"message": "続きの質問", "session_id": session_id})
    assert status == 200 and len(reads) == 3, "the losing write re-read the session, once"
    turns = boto3.resource("dynamodb").Table("test-sessions").get_item(Key={"session_id": session_id})["Item"]["turns"]
    texts = [t["text"] for t in turns if t["role"] == "user"]
    assert texts[0] == "こんにちは" and sorted(texts[1:]) == sorted(["割り込みの質問", "続きの質問"])


def test_sessions_belong_to_the_client_that_made_them(api):
    session_id = chat({"message": "こんにちは"})[2]["session_id"]
    status, _, body = chat({"message": "hi", "session_id": session_id}, key_id="another-key")
    assert (status, body["error"]) == (404, "unknown_session")
    delete = request("DELETE", f"/v1/sessions/{session_id}", resource="/v1/sessions/{session_id}",
                     params={"session_id": session_id}, key_id="another-key")
    assert call("chat", delete)[0] == 404


def test_a_forgotten_session_is_gone(api):
    session_id = chat({"message": "こんにちは"})[2]["session_id"]
    delete = request("DELETE", f"/v1/sessions/{session_id}", resource="/v1/sessions/{session_id}",
                     params={"session_id": session_id})
    assert call("chat", delete)[0] == 204
    gone = {"error": "unknown_session", "message": "no such session for this client"}
    assert call("chat", delete)[::2] == (404, gone)
    assert chat({"message": "hi", "session_id": session_id})[0] == 404


def test_a_turn_is_stored_as_the_message_and_its_answer_with_their_id_time_and_model(api):
    before = int(time.time())
    answer = chat({"message": "フリーレンの新刊は？"})[2]
    after = int(time.time())
    stored = boto3.resource("dynamodb").Table("test-sessions").get_item(Key={"session_id": answer["session_id"]})
    user, assistant = stored["Item"]["turns"]
    assert before <= int(user["at"]) == int(assistant["at"]) <= after
    assert {k: v for k, v in user.items() if k != "at"} == {
        "role": "user", "text": "フリーレンの新刊は？", "message_id": answer["message_id"]}
    assert {k: v for k, v in assistant.items() if k != "at"} == {
        "role": "assistant", "text": answer["answer"], "message_id": answer["message_id"], "model_id": "local.fast-v1"}


def test_a_session_forgotten_while_the_model_answers_is_404_and_not_started_again(api, monkeypatch):
    session_id = chat({"message": "こんにちは"})[2]["session_id"]
    table = boto3.resource("dynamodb").Table("test-sessions")
    real = local.LocalProvider.converse

    def forgotten_meanwhile(self, messages, **kwargs):
        table.delete_item(Key={"session_id": session_id})
        return real(self, messages, **kwargs)

    monkeypatch.setattr(local.LocalProvider, "converse", forgotten_meanwhile)
    status, _, body = chat({"message": "続きの質問", "session_id": session_id})
    assert (status, body) == (404, {"error": "unknown_session",
                                    "message": "the session ended while answering: start a new one"})
    assert "Item" not in table.get_item(Key={"session_id": session_id}), "the answer did not start a new session"


def test_chat_events_stay_within_their_contracts_and_name_each_model_call(api):
    from mangaassist.chat.turn import ChatService, Turn
    from mangaassist.flags.decisions import Decision
    from mangaassist.models import Completion
    from mangaassist.rest import Caller

    decision = Decision(feature="chat", enabled=True, model_id="local.fast-v1", model_rule="fast", max_tokens=500,
                        prompt_version="v2", daily_token_budget=1000, over_budget="downgrade", shadow_model_id=None,
                        shadow_texts=False)
    turn = Turn(caller=Caller(client_id="k1", user_id="u" * 300, tier="free", verified=True), session_id="sess_1",
                session=None, existing=False, message="あ" * 5000, message_id="msg_1", decision=decision,
                model_id="local.fast-v1", budget_action="downgraded", found=[], messages=[], system="")
    made = (("途中", "error", "local.fast-v1"), ("答え", "end_turn", "local.deep-v1"))  # a failed call, its fallback
    completions = [Completion(text=text, stop_reason=stop, input_tokens=10, output_tokens=3, latency_ms=5,
                              model_id=model_id, provider="local", estimated_cost_usd=0.0)
                   for text, stop, model_id in made]
    service = ChatService(sessions=None, flags=None, budgets=None, providers=None, embedder=None, store=None,
                          publish=None)
    received, *calls = service.events(turn, completions, channel="websocket", connection_id="c" * 300)
    for event in (received, *calls):
        contracts.validate_detail(event.source, event.detail_type, event.detail)
    assert received.detail == {"version": "1", "session_id": "sess_1", "message_id": "msg_1", "text": "あ" * 4000,
                               "channel": "websocket", "customer_id": "u" * 200, "connection_id": "c" * 200}
    assert [(c.detail["request_id"], c.detail["model_id"]) for c in calls] == [
        ("msg_1", "local.fast-v1"), ("msg_1-1", "local.deep-v1")]
    assert {(c.detail["correlation_id"], c.detail["model_rule"], c.detail["prompt_version"], c.detail["budget_action"])
            for c in calls} == {("sess_1", "fast", "v2", "downgraded")}


def test_an_api_error_reads_as_its_message_wherever_it_is_logged():
    from mangaassist.rest import ApiError

    error = ApiError(404, "unknown_session", "no such session for this client", headers={"X": "1"}, path="session_id")
    assert (str(error), error.status, error.code, error.headers, error.details) == (
        "no such session for this client", 404, "unknown_session", {"X": "1"}, {"path": "session_id"})
    assert (ApiError(400, "c", "m").headers, ApiError(400, "c", "m").details) == ({}, {})


def test_an_unknown_session_is_404(api):
    status, _, body = chat({"message": "hi", "session_id": "sess_doesnotexist0"})
    assert (status, body["error"]) == (404, "unknown_session") and body["message"]


@pytest.mark.parametrize("body, status, code, path", [
    ("{not json", 400, "invalid_json", None),
    ("", 400, "invalid_json", None),
    ("[1, 2]", 400, "invalid_request", ""),
    ({"message": ""}, 400, "invalid_request", "message"),
    ({"message": "   "}, 400, "invalid_request", "message"),
    ({"message": "x" * 4001}, 400, "invalid_request", "message"),
    ({"message": "hi", "locale": "fr"}, 400, "invalid_request", "locale"),
    ({"message": "hi", "session_id": "../x"}, 400, "invalid_request", "session_id"),
    ({"message": "hi", "surprise": 1}, 400, "invalid_request", ""),
    ({"message": "x" * 70_000}, 413, "payload_too_large", None),
    ("[" * 5000 + "]" * 5000, 400, "invalid_json", None),
])
def test_bad_chat_requests_are_4xx_json_naming_the_path(api, body, status, code, path):
    got, _, answer = chat(body)
    assert (got, answer["error"]) == (status, code) and answer["message"]
    assert answer.get("path") == path
    contracts.validate_api("error.response", answer)
    assert api.events == []


def test_the_fast_model_failing_is_answered_by_the_fallback_model(api):
    local.inject_fault("local.fast-v1", local.Fault("ThrottlingException"), count=4)
    status, _, answer = chat({"message": "フリーレンの新刊は？"})
    assert (status, answer["model_id"], answer["fallback"]) == (200, "local.deep-v1", True)
    assert api.of("InferenceCompleted")[0]["fallback_used"] is True


def test_every_model_failing_is_503_with_retry_after(api):
    for model_id in ("local.fast-v1", "local.deep-v1"):
        local.inject_fault(model_id, local.Fault("ServiceUnavailableException"), count=4)
    status, headers, body = chat({"message": "フリーレンの新刊は？"})
    assert (status, body["error"], headers["Retry-After"]) == (503, "model_unavailable", "2")
    assert api.events == [], "nothing is reported for a turn that did not happen"


def test_a_turn_past_its_deadline_is_504_before_api_gateway_gives_up(api, monkeypatch):
    monkeypatch.setenv("LOCAL_MODEL_LATENCY_MS", "3000")
    from mangaassist import settings

    settings.reload()
    from concurrent.futures import ThreadPoolExecutor

    from mangaassist import rest

    runner = ThreadPoolExecutor(max_workers=1)  # the abandoned call finishes inside this test's emulator
    monkeypatch.setattr(rest, "_RUNNER", runner)
    event = request("POST", "/v1/chat", {"message": "フリーレン"})
    status, headers, body = call("chat", event, Context(remaining_ms=2500))  # 1 s of work left after the margin
    runner.shutdown(wait=True)
    assert (status, body["error"], headers["Retry-After"]) == (504, "deadline_exceeded", "2")


def test_a_verified_token_names_the_user_and_a_client_cannot_claim_a_tier(api):
    verified = rest_caller(request("POST", "/v1/chat", {}, authorizer={"sub": "user-1", "tier": "premium"}), "x")
    assert (verified.user_id, verified.tier, verified.verified) == ("user-1", "premium", True)
    claimed = rest_caller(request("POST", "/v1/chat", {}, authorizer={"tier": "premium"}), "cust_77")
    assert (claimed.user_id, claimed.tier, claimed.verified) == ("cust_77", "free", False)


def test_a_request_without_an_api_key_or_token_is_the_anonymous_free_client():
    from mangaassist.rest import Caller, caller

    assert caller({}) == Caller(client_id="anonymous", user_id=None, tier="free", verified=False)
    assert caller({"requestContext": {"authorizer": {"sub": "user-1", "tier": "gold"}}}, "cust_77") == Caller(
        client_id="anonymous", user_id="user-1", tier="free", verified=True), "an unknown tier is free"


def test_a_deadline_is_the_invocations_time_left_less_the_margin_never_past_api_gateways():
    from mangaassist.rest import Deadline

    assert Deadline.for_invocation(Context(remaining_ms=2000)).left() == pytest.approx(0.5, abs=1e-3)
    assert Deadline.for_invocation(Context(remaining_ms=900_000)).left() == pytest.approx(27.5, abs=1e-3)
    assert Deadline.for_invocation(None).left() == pytest.approx(27.5, abs=1e-3)
    assert Deadline.for_invocation(Context(remaining_ms=1000)).left() == 0.0


def test_work_runs_while_time_is_left_and_never_starts_once_it_is_gone():
    import threading

    from mangaassist.rest import Deadline, DeadlineExceeded

    now = [100.0]
    deadline = Deadline(0.5, clock=lambda: now[0])
    assert deadline.run(lambda: "answered") == "answered"
    now[0] += 0.5
    started = threading.Event()
    with pytest.raises(DeadlineExceeded):
        deadline.run(started.set)
    assert not started.wait(0.2) and deadline.left() == 0.0
    now[0] += 60
    assert deadline.left() == 0.0


def rest_caller(event, claimed):
    from mangaassist import rest

    return rest.caller(event, claimed)


def test_a_bug_is_a_500_json_with_the_request_id_never_a_traceback(api, monkeypatch):
    monkeypatch.setattr(chat_service_module.ChatService, "turn", lambda *a, **k: 1 / 0)
    status, _, body = chat({"message": "hi"})
    assert (status, body["error"]) == (500, "internal_error")
    assert body["request_id"] == EVENT["requestContext"]["requestId"]
    assert "ZeroDivision" not in json.dumps(body)


# --- recommend -------------------------------------------------------------------------------
def recommend(body, **kwargs) -> tuple[int, dict, dict]:
    return call("recommend", request("POST", "/v1/recommend", body, **kwargs))


def test_recommendations_like_a_query_each_with_a_reason(api):
    status, _, answer = recommend({"customer_id": "cust_new", "query": "フリーレン fantasy", "limit": 3})
    assert status == 200, answer
    contracts.validate_api("recommend.response", answer)
    assert answer["strategy"] == "query" and answer["model_id"] == "local.fast-v1"
    assert len(answer["recommendations"]) == 3 and answer["recommendations"][0]["product_id"].startswith("bk-frieren")
    assert all(r["reason"] and r["title"] in r["reason"] for r in answer["recommendations"]), "reasons restate facts"
    (generated,) = api.of("RecommendationGenerated")
    assert [i["product_id"] for i in generated["items"]] == [r["product_id"] for r in answer["recommendations"]]


def test_recommendations_like_a_product_never_include_it(api):
    status, _, answer = recommend({"customer_id": "cust_new", "product_id": "bk-frieren-14"})
    assert status == 200 and answer["strategy"] == "product"
    ids = [r["product_id"] for r in answer["recommendations"]]
    assert "bk-frieren-14" not in ids and ids[0] == "bk-frieren-13"


def test_recommendations_from_past_orders_never_include_what_was_bought(api):
    orders = boto3.resource("dynamodb").Table("test-orders")
    orders.put_item(Item={"order_id": "ord-1", "customer_id": "cust_77", "paid_at": "2026-11-20T00:00:00Z",
                          "items": [{"product_id": "bk-frieren-14", "quantity": 1}]})
    status, _, answer = recommend({"customer_id": "cust_77", "limit": 2})
    assert status == 200 and answer["strategy"] == "history"
    ids = [r["product_id"] for r in answer["recommendations"]]
    assert "bk-frieren-14" not in ids and ids[0] == "bk-frieren-13"
    status, _, queried = recommend({"customer_id": "cust_77", "query": "フリーレン"})
    assert "bk-frieren-14" not in [r["product_id"] for r in queried["recommendations"]]


def test_a_customer_with_nothing_to_go_on_gets_an_empty_list(api):
    assert recommend({"customer_id": "cust_nobody"})[::2] == (200, {"recommendations": [], "strategy": "none",
                                                                    "model_id": None})


def test_an_unknown_product_is_404_and_bad_requests_are_400(api):
    status, _, body = recommend({"customer_id": "c", "product_id": "bk-missing"})
    assert (status, body["error"]) == (404, "unknown_product")
    for bad, path in (({"query": "x"}, "customer_id"), ({"customer_id": "c", "limit": 11}, "limit"),
                      ({"customer_id": "c", "limit": "5"}, "limit")):
        status, _, body = recommend(bad)
        assert (status, body["error"], body["path"]) == (400, "invalid_request", path)


def test_reasons_the_model_garbles_fall_back_to_the_facts(api, monkeypatch):
    monkeypatch.setitem(local.JSON_TASKS, "recommend", lambda content: {"reasons": [{"product_id": 1}]})
    status, _, answer = recommend({"customer_id": "c", "query": "ONE PIECE"})
    assert status == 200 and all(r["reason"] for r in answer["recommendations"])


# --- generate and jobs -----------------------------------------------------------------------
def generate(body, headers=None, key_id="k1a2b3c4d5") -> tuple[int, dict, dict]:
    return call("generate", request("POST", "/v1/generate", body, headers=headers, key_id=key_id))


def job(job_id: str, key_id: str = "k1a2b3c4d5") -> tuple[int, dict, dict]:
    return call("generate", request("GET", f"/v1/jobs/{job_id}", resource="/v1/jobs/{job_id}",
                                    params={"job_id": job_id}, key_id=key_id))


def run_worker(max_messages: int = 10) -> dict:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="test-jobs")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=max_messages, AttributeNames=["All"])
    records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:ap-northeast-1:123456789012:test-jobs",
                "awsRegion": "ap-northeast-1"} for m in messages.get("Messages", [])]
    result = handler("job_worker")({"Records": records}, Context())
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for m in messages.get("Messages", []):
        if m["MessageId"] in failed:  # back to the queue at once, as after its visibility timeout
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        else:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return result


def test_a_job_is_queued_run_and_announced(api):
    status, headers, queued = generate({"task": "product_description", "input": {"product_id": "bk-frieren-14"},
                                        "callback_url": "https://partner.example.com/hooks/jobs"})
    assert status == 202, queued
    contracts.validate_api("generate.response", queued)
    assert queued["status_url"] == f"/prod/v1/jobs/{queued['job_id']}" == headers["Location"]
    assert job(queued["job_id"])[2]["status"] == "queued"
    assert run_worker() == {"batchItemFailures": []}
    status, _, done = job(queued["job_id"])
    assert status == 200 and done["status"] == "succeeded"
    contracts.validate_api("job.response", done)
    assert "葬送のフリーレン 14" in done["result"]["text"] and done["result"]["model_id"] == "local.deep-v1"
    assert done["usage"]["output_tokens"] > 0
    (completed,) = api.of("JobCompleted")
    assert (completed["job_id"], completed["status"], completed["client_id"], completed["callback_url"]) == (
        queued["job_id"], "succeeded", "k1a2b3c4d5", "https://partner.example.com/hooks/jobs")
    assert api.of("InferenceCompleted")[0]["feature"] == "generate"


def test_a_review_summary_reads_only_approved_reviews(api):
    reviews = boto3.resource("dynamodb").Table("test-reviews")
    for i, (status, text) in enumerate([("approved", "最高の巻でした"), ("approved", "Great art"),
                                        ("quarantined", "spam spam")]):
        reviews.put_item(Item={"review_id": f"r{i}", "product_id": "bk-onepiece-107", "rating": 5 - i,
                               "text": text, "status": status})
    job_id = generate({"task": "review_summary", "input": {"product_id": "bk-onepiece-107"}})[2]["job_id"]
    run_worker()
    done = job(job_id)[2]
    assert done["status"] == "succeeded"
    assert (done["result"]["review_count"], done["result"]["average_rating"]) == (2, 4.5)
    assert "spam" not in done["result"]["text"]


def test_the_same_idempotency_key_and_body_is_the_same_job_another_body_is_422(api):
    body = {"task": "product_description", "input": {"product_id": "bk-frieren-14"}}
    first = generate(body, {"Idempotency-Key": "order-42-description"})
    again = generate(body, {"Idempotency-Key": "order-42-description"})
    assert first[0] == again[0] == 202 and first[2] == again[2]
    other = generate({**body, "input": {"product_id": "bk-onepiece-107"}}, {"Idempotency-Key": "order-42-description"})
    assert (other[0], other[2]["error"]) == (422, "idempotency_key_reused")
    another_client = generate(body, {"Idempotency-Key": "order-42-description"}, key_id="another-key")
    assert another_client[0] == 202 and another_client[2]["job_id"] != first[2]["job_id"], "keys are per client"
    assert generate(body, {"Idempotency-Key": "has spaces"})[2]["error"] == "invalid_idempotency_key"
    assert len(boto3.client("sqs").receive_message(QueueUrl=boto3.client("sqs").get_queue_url(
        QueueName="test-jobs")["QueueUrl"], MaxNumberOfMessages=10).get("Messages", [])) == 2


def test_a_job_submitted_with_an_idempotency_key_is_its_clients_under_the_stage_path(api):
    body = {"task": "product_description", "input": {"product_id": "bk-frieren-14"}}
    status, headers, queued = generate(body, {"Idempotency-Key": "order-43-description"})
    assert status == 202 and queued["status_url"] == f"/prod/v1/jobs/{queued['job_id']}" == headers["Location"]
    assert job(queued["job_id"])[0] == 200 and job(queued["job_id"], key_id="another-key")[0] == 404


def test_the_status_url_keeps_a_custom_domains_base_path_and_only_a_true_prefix():
    base_path = submit_module.base_path
    assert base_path({"requestContext": {"path": "/manga/v1/generate"}, "path": "/v1/generate"}) == "/manga"
    assert base_path({"requestContext": {"path": "/v1/generate/"}, "path": "/v1/generate"}) == ""
    assert base_path({"requestContext": {"path": "/prod/v1/generate"}}) == ""
    assert base_path({}) == ""


def test_an_unknown_job_is_404_naming_it(api):
    assert job("job_doesnotexist00")[::2] == (404, {
        "error": "unknown_job", "message": "no job 'job_doesnotexist00' for this client (jobs are kept 30 days)"})


def test_idempotency_keys_are_told_apart_and_a_bodys_key_order_is_not_a_different_body(api):
    body = {"task": "product_description", "input": {"product_id": "bk-frieren-14"}}
    status, _, first = generate(body, {"Idempotency-Key": "order-44"})
    reordered = json.dumps({"input": body["input"], "task": body["task"]})
    assert generate(reordered, {"Idempotency-Key": "order-44"})[::2] == (202, first)
    other = generate({**body, "input": {"product_id": "bk-onepiece-107"}}, {"Idempotency-Key": "order-45"})
    assert other[0] == 202 and other[2]["job_id"] != first["job_id"]
    assert re.fullmatch(r"job_[0-9a-f]{20}", first["job_id"])
    (claim,) = [i for i in boto3.resource("dynamodb").Table("test-idempotency").scan()["Items"]
                if i["status"] == "COMPLETED" and first["job_id"] in i.get("data", "")]
    assert abs(int(claim["expiration"]) - time.time() - 24 * 3600) < 60, "a key is kept 24 hours"


def test_a_bad_or_reused_idempotency_key_says_what_is_wrong(api):
    body = {"task": "product_description", "input": {"product_id": "bk-frieren-14"}}
    assert generate(body, {"Idempotency-Key": "has spaces"})[::2] == (400, {
        "error": "invalid_idempotency_key", "message": "Idempotency-Key must be 1-128 printable ASCII characters"})
    generate(body, {"Idempotency-Key": "order-46"})
    assert generate({**body, "task": "review_summary"}, {"Idempotency-Key": "order-46"})[::2] == (422, {
        "error": "idempotency_key_reused", "message": "this Idempotency-Key was used with a different body"})


def test_a_job_is_visible_only_to_the_key_that_created_it(api):
    job_id = generate({"task": "product_description", "input": {"product_id": "bk-frieren-14"}})[2]["job_id"]
    assert job(job_id, key_id="another-key")[::2] == (404, {"error": "unknown_job", "message": job(
        job_id, key_id="another-key")[2]["message"]})
    assert job("job_doesnotexist00")[0] == 404


@pytest.mark.parametrize("body, path", [
    ({"task": "poem", "input": {}}, "task"),
    ({"task": "product_description", "input": {}}, "input.product_id"),
    ({"task": "review_summary", "input": {"product_id": "p", "max_reviews": 0}}, "input.max_reviews"),
    ({"task": "product_description", "input": {"product_id": "p"}, "callback_url": "http://x.example/h"},
     "callback_url"),
])
def test_bad_generate_requests_are_400_with_the_path(api, body, path):
    status, _, answer = generate(body)
    assert (status, answer["error"], answer["path"]) == (400, "invalid_request", path)


def test_a_job_for_an_unknown_product_fails_without_retrying(api):
    job_id = generate({"task": "product_description", "input": {"product_id": "bk-missing"}})[2]["job_id"]
    assert run_worker() == {"batchItemFailures": []}
    done = job(job_id)[2]
    assert (done["status"], done["error"]["code"]) == ("failed", "unknown_product")
    assert api.of("JobCompleted")[0]["status"] == "failed"


def test_a_model_outage_retries_the_job_and_its_last_attempt_fails_it(api):
    job_id = generate({"task": "product_description", "input": {"product_id": "bk-frieren-14"}})[2]["job_id"]
    for model_id in ("local.fast-v1", "local.deep-v1"):
        local.inject_fault(model_id, local.Fault("ServiceUnavailableException"), count=100)
    first = run_worker()
    assert len(first["batchItemFailures"]) == 1 and job(job_id)[2]["status"] == "running"
    run_worker()
    assert job(job_id)[2]["status"] == "running" and api.of("JobCompleted") == []
    run_worker()  # the third delivery is the queue's last (JOB_MAX_ATTEMPTS=3)
    done = job(job_id)[2]
    assert (done["status"], done["error"]["code"]) == ("failed", "ModelUnavailable")
    assert api.of("JobCompleted")[0]["status"] == "failed"


def test_a_redelivered_message_for_a_finished_job_changes_nothing(api):
    job_id = generate({"task": "product_description", "input": {"product_id": "bk-frieren-14"}})[2]["job_id"]
    run_worker()
    from mangaassist.jobs.worker import run_job

    assert run_job(job_id, Deps(), last_attempt=False) == "skipped"
    assert len(api.of("JobCompleted")) == 1


# --- the flags on a chat turn ------------------------------------------------------------------
@pytest.fixture
def flags_document(api, monkeypatch):
    """config/flags.json served as AppConfig would; tests change it in place."""
    from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
    from test_flags import Store

    from mangaassist.flags import decisions
    from mangaassist.flags.store import LastGoodStore

    document = json.loads((ROOT / "config" / "flags.json").read_text())
    store = Store(document)
    flag_book = decisions.FlagBook(FeatureFlags(store=LastGoodStore(store, retry_seconds=0)), fast_id="local.fast-v1",
                                   fallback_id="local.deep-v1", candidate_id="local.candidate-v1")
    monkeypatch.setattr(decisions, "flag_book", lambda: flag_book)
    return document


# A signed-in free user whose hash (93 of 100) is outside the 10% candidate rollout: an anonymous
# caller is hashed by its session id, new each time, and would get the candidate model one time in ten.
OUTSIDE_THE_CANDIDATE_ROLLOUT = {"sub": "user-shadow", "tier": "free"}


def test_a_paused_chat_answers_503_with_retry_after_and_calls_no_model(flags_document, api):
    flags_document["chat_enabled"]["default"] = False
    status, headers, body = chat({"message": "フリーレン"})
    assert (status, body["error"], headers["Retry-After"]) == (503, "feature_paused", "30")
    assert api.events == []


def test_a_premium_token_is_answered_by_the_fallback_model(flags_document, api):
    status, _, answer = chat({"message": "フリーレン"}, authorizer={"sub": "user-1", "tier": "premium"})
    assert (status, answer["model_id"], answer["fallback"]) == (200, "local.deep-v1", False)
    assert api.of("InferenceCompleted")[0]["model_rule"] == "fallback"


def test_a_spent_budget_downgrades_or_refuses_as_the_flag_says(flags_document, api):
    from datetime import UTC, datetime

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    boto3.client("dynamodb").put_item(TableName="test-usage", Item={
        "pk": {"S": f"day#{day}"}, "sk": {"S": "feature#chat"}, "input_tokens": {"N": "20000000"},
        "output_tokens": {"N": "1"}})
    status, _, answer = chat({"message": "フリーレン"}, authorizer={"sub": "user-2", "tier": "free"})
    assert (status, answer["model_id"]) == (200, "local.fast-v1")
    assert api.of("InferenceCompleted")[0]["budget_action"] == "downgraded"
    status, headers, body = chat({"message": "フリーレン"}, authorizer={"sub": "user-3", "tier": "premium"})
    assert (status, body["error"]) == (429, "budget_exhausted") and 0 < int(headers["Retry-After"]) <= 86400


def test_shadow_mode_compares_after_the_answer_and_publishes_a_valid_event(flags_document, api):
    flags_document["chat_shadow_model"] = {"default": "fallback", "boolean_type": False}
    flags_document["chat_shadow_texts"] = {"default": True}
    status, _, answer = chat({"message": "フリーレンの新刊は？"}, authorizer=OUTSIDE_THE_CANDIDATE_ROLLOUT)
    assert status == 200 and answer["model_id"] == "local.fast-v1"
    (compared,) = api.of("ShadowCompared")
    assert (compared["primary"]["model_id"], compared["shadow"]["model_id"]) == ("local.fast-v1", "local.deep-v1")
    assert compared["primary"]["text"] == answer["answer"] and compared["similarity"] == 1.0
    assert [e["shadow"] for e in api.of("InferenceCompleted") if "shadow" in e] == [True]


def test_a_failing_shadow_model_changes_nothing_for_the_client(flags_document, api):
    flags_document["chat_shadow_model"] = {"default": "fallback", "boolean_type": False}
    local.inject_fault("local.deep-v1", local.Fault("ThrottlingException"), count=10)
    status, _, answer = chat({"message": "フリーレンの新刊は？"}, authorizer=OUTSIDE_THE_CANDIDATE_ROLLOUT)
    assert status == 200 and api.of("ShadowCompared") == []


# --- the flags, the idempotency claim and a failed queue on a job submission ---------------------
PRODUCT_DESCRIPTION = {"task": "product_description", "input": {"product_id": "bk-frieren-14"}}


def queued_messages() -> list[dict]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="test-jobs")["QueueUrl"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])


def stored(table: str) -> list[dict]:
    return boto3.resource("dynamodb").Table(f"test-{table}").scan()["Items"]


def test_a_paused_generate_answers_503_with_retry_after_and_stores_and_queues_nothing(flags_document, api):
    flags_document["generate_enabled"]["default"] = False
    status, headers, body = generate(PRODUCT_DESCRIPTION, {"Idempotency-Key": "order-50"})
    assert (status, body, headers["Retry-After"]) == (503, {
        "error": "feature_paused", "message": "generate is paused by its operators; retry later"}, "30")
    assert stored("jobs") == [] and queued_messages() == []
    assert stored("idempotency") == [], "a refused submission claims no key"
    flags_document["generate_enabled"]["default"] = True
    status, _, queued = generate(PRODUCT_DESCRIPTION, {"Idempotency-Key": "order-50"})
    assert status == 202 and [j["job_id"] for j in stored("jobs")] == [queued["job_id"]], "the same key then works"


def test_the_generate_flags_are_decided_for_the_callers_tier_and_user(flags_document, api):
    flags_document["generate_enabled"]["rules"] = {"paused for premium user-9 on generate": {
        "when_match": False, "conditions": [{"action": "EQUALS", "key": "tier", "value": "premium"},
                                            {"action": "EQUALS", "key": "user_id", "value": "user-9"},
                                            {"action": "EQUALS", "key": "feature", "value": "generate"}]}}

    def submit(authorizer):
        return call("generate", request("POST", "/v1/generate", PRODUCT_DESCRIPTION, authorizer=authorizer))[::2]

    assert submit({"sub": "user-9", "tier": "premium"})[1]["error"] == "feature_paused"
    assert submit({"sub": "user-8", "tier": "premium"})[0] == 202
    assert submit({"sub": "user-9", "tier": "free"})[0] == 202
    assert len(stored("jobs")) == 2


def test_a_generate_decision_hashes_the_user_or_else_the_key_and_a_fresh_request_id(flags_document, api,
                                                                                    monkeypatch):
    from mangaassist.flags import decisions

    book = decisions.flag_book()
    seen = []
    real = book.decide

    def spy(feature, context):
        seen.append((feature, context))
        return real(feature, context)

    monkeypatch.setattr(book, "decide", spy)
    call("generate", request("POST", "/v1/generate", PRODUCT_DESCRIPTION, authorizer={"sub": "user-9",
                                                                                      "tier": "premium"}))
    generate(PRODUCT_DESCRIPTION)
    generate(PRODUCT_DESCRIPTION)
    (signed_in, user), (anonymous, key), (_, again) = seen
    assert signed_in == anonymous == "generate"
    assert {k: v for k, v in user.items() if k != "request_hash"} == {
        "feature": "generate", "tier": "premium", "user_id": "user-9", "user_hash": decisions.stable_hash("user-9")}
    assert {k: v for k, v in key.items() if k != "request_hash"} == {
        "feature": "generate", "tier": "free", "user_id": "", "user_hash": decisions.stable_hash("k1a2b3c4d5")}
    assert len({user["request_hash"], key["request_hash"], again["request_hash"]}) == 3, "a new request id each time"
    assert decisions.stable_hash("None") not in {user["request_hash"], key["request_hash"]}


def test_a_spent_generate_budget_downgrades_by_default_and_refuses_when_the_flag_says(flags_document, api):
    from datetime import UTC, datetime

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    boto3.client("dynamodb").put_item(TableName="test-usage", Item={
        "pk": {"S": f"day#{day}"}, "sk": {"S": "feature#generate"}, "input_tokens": {"N": "5000000"},
        "output_tokens": {"N": "1"}})
    status, _, queued = generate(PRODUCT_DESCRIPTION)
    assert status == 202 and len(queued_messages()) == 1, "downgraded: the job still runs"
    flags_document["generate_over_budget"]["default"] = "refuse"
    status, headers, body = generate(PRODUCT_DESCRIPTION, {"Idempotency-Key": "order-51"})
    assert (status, body) == (429, {"error": "budget_exhausted", "message": "today's token budget for generate is "
                                                                           "spent; retry after midnight UTC"})
    assert 0 < int(headers["Retry-After"]) <= 86400
    assert len(stored("jobs")) == 1 and stored("idempotency") == [], "the refusal stored and claimed nothing"


def test_a_keys_in_progress_claim_expires_with_the_invocations_remaining_time(api):
    before = int(time.time() * 1000)
    event = request("POST", "/v1/generate", PRODUCT_DESCRIPTION, headers={"Idempotency-Key": "order-52"})
    assert call("generate", event, Context(remaining_ms=7_000))[0] == 202
    after = int(time.time() * 1000)
    (claim,) = stored("idempotency")
    assert before + 7_000 <= int(claim["in_progress_expiration"]) <= after + 7_000


def test_the_same_key_while_its_first_request_is_in_progress_is_409_retry_after_1(api, monkeypatch):
    desk = submit_module.job_desk()
    real_send = desk.send
    overlapping = []

    def send_after_a_retry(job_id):
        if not overlapping:  # the client retries while the first request is still queueing its job
            overlapping.append(generate(PRODUCT_DESCRIPTION, {"Idempotency-Key": "order-53"}))
        real_send(job_id)

    monkeypatch.setattr(desk, "send", send_after_a_retry)
    status, _, queued = generate(PRODUCT_DESCRIPTION, {"Idempotency-Key": "order-53"})
    ((retry_status, retry_headers, retry_body),) = overlapping
    assert (retry_status, retry_body, retry_headers["Retry-After"]) == (409, {
        "error": "in_progress", "message": "a request with this Idempotency-Key is being processed; retry"}, "1")
    assert status == 202 and [j["job_id"] for j in stored("jobs")] == [queued["job_id"]]
    assert len(queued_messages()) == 1, "the 409 queued nothing"
    assert generate(PRODUCT_DESCRIPTION, {"Idempotency-Key": "order-53"})[::2] == (202, queued), "then the same job"


def test_a_submission_without_a_key_is_a_new_job_each_time_and_claims_nothing(api):
    first = generate(PRODUCT_DESCRIPTION)
    second = generate(PRODUCT_DESCRIPTION)
    assert first[0] == second[0] == 202 and first[2]["job_id"] != second[2]["job_id"]
    assert sorted(j["job_id"] for j in stored("jobs")) == sorted([first[2]["job_id"], second[2]["job_id"]])
    assert len(queued_messages()) == 2 and stored("idempotency") == []


def test_idempotency_claims_go_to_the_idempotency_table_through_the_containers_dynamodb_client(api):
    from mangaassist import clients

    writes = []
    clients.client("dynamodb").meta.events.register(
        "before-parameter-build.dynamodb.PutItem", lambda params, **_: writes.append(params["TableName"]))
    status, _, queued = generate(PRODUCT_DESCRIPTION, {"Idempotency-Key": "order-54"})
    assert status == 202 and writes == ["test-idempotency", "test-jobs"]
    (claim,) = stored("idempotency")
    assert claim["status"] == "COMPLETED" and queued["job_id"] in claim["data"]


def test_a_failing_aws_dependency_is_503_unavailable_with_retry_after(api, monkeypatch):
    from botocore.exceptions import ClientError, EndpointConnectionError

    desk = submit_module.job_desk()
    for error in (ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage"),
                  EndpointConnectionError(endpoint_url="https://sqs.ap-northeast-1.amazonaws.com")):
        def queue_down(job_id, error=error):
            raise error

        monkeypatch.setattr(desk, "send", queue_down)
        status, headers, body = generate(PRODUCT_DESCRIPTION)
        assert (status, headers["Retry-After"], body) == (503, "2", {
            "error": "unavailable", "message": "a service the assistant depends on is unavailable; retry shortly"})
    assert stored("jobs") == []


def test_a_job_that_cannot_be_queued_is_deleted_answered_500_and_its_key_can_be_retried(api, monkeypatch):
    desk = submit_module.job_desk()
    real_send = desk.send
    sent = []

    def queue_down(job_id):
        sent.append(job_id)
        raise RuntimeError("the jobs queue is down")

    monkeypatch.setattr(desk, "send", queue_down)
    assert generate(PRODUCT_DESCRIPTION, {"Idempotency-Key": "order-55"})[::2] == (500, {
        "error": "internal_error", "message": "something went wrong on our side; it was logged",
        "request_id": EVENT["requestContext"]["requestId"]})
    (lost,) = sent
    assert job(lost)[0] == 404 and stored("jobs") == [], "no job that no worker will run"
    assert stored("idempotency") == [], "the key's claim is released"
    monkeypatch.setattr(desk, "send", real_send)
    status, _, queued = generate(PRODUCT_DESCRIPTION, {"Idempotency-Key": "order-55"})
    assert status == 202 and queued["job_id"] != lost and [j["job_id"] for j in stored("jobs")] == [queued["job_id"]]
    assert [json.loads(m["Body"]) for m in queued_messages()] == [{"job_id": queued["job_id"]}]


# --- one chat turn on stand-ins: exactly what goes to the model, the session and the events -------
class FakeSessions:
    def __init__(self, session=None):
        self.session, self.reads, self.appends = session, [], []

    def get(self, session_id, owner):
        self.reads.append((session_id, owner))
        return self.session

    def append(self, session_id, owner, turns, **kwargs):
        self.appends.append((session_id, owner, turns, kwargs))


class FakeBudgets:
    def __init__(self, spent=False):
        self.spent, self.asked = spent, []

    def exhausted(self, feature, budget):
        self.asked.append((feature, budget))
        return self.spent


class FakeFlags:
    fast_id = "m.fast"

    def __init__(self, decision):
        self.decision, self.contexts = decision, []

    def context(self, feature, **kwargs):
        self.contexts.append((feature, kwargs))
        return {"feature": feature}

    def decide(self, feature, context):
        assert context == {"feature": feature}
        return self.decision


def a_decision(**changes):
    from mangaassist.flags.decisions import Decision

    return Decision(**{"feature": "chat", "enabled": True, "model_id": "m.chosen", "model_rule": "fast",
                       "max_tokens": 321, "prompt_version": "v2", "daily_token_budget": 1000,
                       "over_budget": "downgrade", "shadow_model_id": None, "shadow_texts": False, **changes})


class FakeModels:
    """providers(model_id, only=False): every call is recorded; ``answers`` maps a model to its Completion."""

    def __init__(self, answered_by=None, text="ダンジョン飯 1 [2] がおすすめ"):
        self.answered_by, self.text, self.chosen, self.calls = answered_by, text, [], []

    def __call__(self, model_id, only=False):
        from mangaassist.models import Completion

        self.chosen.append((model_id, only))
        models = self

        class Provider:
            def converse(self, messages, **kwargs):
                models.calls.append((model_id, messages, kwargs))
                return Completion(text=models.text, stop_reason="end_turn", input_tokens=11, output_tokens=7,
                                  latency_ms=3, model_id=models.answered_by or model_id, provider="local",
                                  estimated_cost_usd=0.25, fallback_used=models.answered_by is not None)

        return Provider()


class FakeIndex:
    def __init__(self, hits):
        self.hits, self.embedded, self.queries = hits, [], []

    def embed(self, texts):
        self.embedded.append(texts)
        return [[0.5, 0.25]]

    def query(self, vector, **kwargs):
        self.queries.append((vector, kwargs))
        return self.hits


HITS = [("bk-frieren-14", "葬送のフリーレン 14"), ("bk-dungeon-meshi-1", "ダンジョン飯 1"), ("bk-onepiece-107", None)]


def a_service(*, session=None, decision=None, spent=False, models=None, clock=(10.0, 10.2344)):
    from mangaassist.chat.turn import ChatService
    from mangaassist.search import Hit

    index = FakeIndex([Hit(i, 0.9, {"title": t} if t else {}) for i, t in HITS])
    published = []
    ticks = iter(clock)
    service = ChatService(sessions=FakeSessions(session), flags=FakeFlags(decision or a_decision()),
                          budgets=FakeBudgets(spent), providers=models or FakeModels(), embedder=index, store=index,
                          publish=lambda events: published.append(events) or [], clock=lambda: next(ticks))
    return service, index, published


class NoDeadline:
    def run(self, work):
        return work()


def test_a_turn_answers_exactly_with_the_chosen_models_text_usage_citations_and_latency():
    from mangaassist.chat import grounding
    from mangaassist.rest import Caller

    models = FakeModels()
    service, index, published = a_service(models=models)
    who = Caller(client_id="k1", user_id="u-7", tier="premium", verified=True)
    answer = service.turn({"message": "  おすすめは？  ", "locale": "en"}, who, NoDeadline())
    assert re.fullmatch(r"sess_[A-Za-z0-9]{24}", answer["session_id"])
    assert re.fullmatch(r"msg_[0-9a-f]{20}", answer["message_id"])
    assert answer == {
        "session_id": answer["session_id"], "message_id": answer["message_id"],
        "answer": "ダンジョン飯 1 [2] がおすすめ", "model_id": "m.chosen", "fallback": False,
        "citations": [{"product_id": "bk-dungeon-meshi-1", "title": "ダンジョン飯 1"}],
        "usage": {"input_tokens": 11, "output_tokens": 7, "cost_usd": 0.25}, "latency_ms": 234}
    assert models.chosen == [("m.chosen", False)], "no shadow call without a shadow model"
    found = grounding.products(index.hits)
    ((model_id, messages, kwargs),) = models.calls
    assert (model_id, messages) == ("m.chosen", [{"role": "user", "content": [{"text": "おすすめは？"}]}])
    assert kwargs == {"system": grounding.system_prompt(found, "en", "v2"), "max_tokens": 321, "feature": "chat"}
    assert [p.product_id for p in found] == ["bk-frieren-14", "bk-dungeon-meshi-1", "bk-onepiece-107"]
    assert "\n[3] product_id: bk-onepiece-107\n" in kwargs["system"], "a product without a title has only its id"
    assert index.embedded == [["おすすめは？"]]
    assert index.queries == [([0.5, 0.25], {"k": 5, "filters": {"status": "active"}})]
    assert service.flags.contexts == [("chat", {"tier": "premium", "user_id": "u-7", "request_id": answer["message_id"],
                                                "subject": "u-7"})]
    assert service.budgets.asked == [("chat", 1000)]
    assert service.sessions.reads == []
    ((session_id, owner, turns, options),) = service.sessions.appends
    assert (session_id, owner, options) == (answer["session_id"], "k1", {"user_id": "u-7", "must_exist": False,
                                                                         "seen": None})
    assert [{k: v for k, v in t.items() if k != "at"} for t in turns] == [
        {"role": "user", "text": "おすすめは？", "message_id": answer["message_id"]},
        {"role": "assistant", "text": answer["answer"], "message_id": answer["message_id"], "model_id": "m.chosen"}]
    ((received, inference),) = published
    assert received.detail == {"version": "1", "session_id": answer["session_id"], "message_id": answer["message_id"],
                               "text": "おすすめは？", "channel": "rest", "customer_id": "u-7"}
    assert (inference.detail["request_id"], inference.detail["correlation_id"], inference.detail["model_rule"],
            inference.detail["prompt_version"], "budget_action" in inference.detail) == (
        answer["message_id"], answer["session_id"], "fast", "v2", False)


def test_a_turn_in_a_session_gives_the_model_its_last_four_turns_and_grounds_on_the_last_question():
    from mangaassist.chat import grounding
    from mangaassist.rest import Caller

    history = [{"role": "user" if i % 2 == 0 else "assistant", "text": f"t{i}"} for i in range(10)]
    session = {"turns": history, "version": 5}
    models = FakeModels()
    service, index, _ = a_service(session=session, models=models)
    who = Caller(client_id="k1", user_id=None, tier="free", verified=False)
    answer = service.turn({"message": "次は？", "session_id": "sess_abc"}, who, NoDeadline())
    assert answer["session_id"] == "sess_abc" and service.sessions.reads == [("sess_abc", "k1")]
    ((_, messages, kwargs),) = models.calls
    assert messages == [{"role": t["role"], "content": [{"text": t["text"]}]} for t in history[2:]] + [
        {"role": "user", "content": [{"text": "次は？"}]}]
    assert index.embedded == [["次は？\nt8"]], "the session's last user message helps find the series"
    assert kwargs["system"] == grounding.system_prompt(grounding.products(index.hits), "ja", "v2")
    assert service.flags.contexts[0][1] == {"tier": "free", "user_id": None, "request_id": answer["message_id"],
                                            "subject": "sess_abc"}
    ((_, _, _, options),) = service.sessions.appends
    assert options == {"user_id": None, "must_exist": True, "seen": session}


def test_a_shadow_model_answers_after_the_turn_unless_it_is_the_model_that_answered():
    from mangaassist.rest import Caller

    who = Caller(client_id="k1", user_id=None, tier="free", verified=False)
    models = FakeModels()
    service, _, published = a_service(models=models, decision=a_decision(shadow_model_id="m.shadow",
                                                                         shadow_texts=True))
    answer = service.turn({"message": "hi"}, who, NoDeadline())
    assert models.chosen == [("m.chosen", False), ("m.shadow", True)]
    (_, (_, shadow_messages, shadow_kwargs)) = models.calls
    assert (shadow_messages, shadow_kwargs) == (models.calls[0][1], models.calls[0][2])
    (_, (compared, _)) = published
    assert (compared.detail["request_id"], compared.detail["feature"], compared.detail["primary"]["text"]) == (
        answer["message_id"], "chat", answer["answer"])
    models = FakeModels(answered_by="m.shadow")  # the chosen model failed; the shadow's model answered instead
    service, _, published = a_service(models=models, decision=a_decision(shadow_model_id="m.shadow"))
    assert service.turn({"message": "hi"}, who, NoDeadline())["fallback"] is True
    assert models.chosen == [("m.chosen", False)] and len(published) == 1


def test_the_gate_picks_the_decided_model_downgrades_or_refuses_a_spent_budget_and_pauses():
    from datetime import UTC, datetime

    from mangaassist.chat.turn import gate, seconds_to_midnight_utc
    from mangaassist.rest import ApiError

    flags = FakeFlags(None)
    budgets = FakeBudgets(spent=False)
    assert gate(flags, budgets, a_decision()) == ("m.chosen", None)
    assert budgets.asked == [("chat", 1000)]
    assert gate(flags, FakeBudgets(spent=True), a_decision()) == ("m.fast", "downgraded")
    with pytest.raises(ApiError) as refused:
        gate(flags, FakeBudgets(spent=True), a_decision(over_budget="refuse"))
    assert (refused.value.status, refused.value.code, refused.value.message, set(refused.value.headers)) == (
        429, "budget_exhausted", "today's token budget for chat is spent; retry after midnight UTC", {"Retry-After"})
    assert abs(int(refused.value.headers["Retry-After"]) - seconds_to_midnight_utc()) <= 1
    with pytest.raises(ApiError) as paused:
        gate(flags, FakeBudgets(spent=True), a_decision(enabled=False, over_budget="refuse"))
    assert (paused.value.status, paused.value.code, paused.value.message, paused.value.headers) == (
        503, "feature_paused", "chat is paused by its operators; retry later", {"Retry-After": "30"})
    noon = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC).timestamp()
    assert seconds_to_midnight_utc(noon) == 43200
    assert seconds_to_midnight_utc(noon - 12 * 3600) == 86400
    assert seconds_to_midnight_utc(noon + 12 * 3600 - 0.5) == 1
    assert seconds_to_midnight_utc(noon + 12 * 3600 - 1.5) == 1
    assert seconds_to_midnight_utc(noon + 12 * 3600 - 2.5) == 2


def test_a_named_session_that_is_gone_is_404_before_any_model_or_index_is_asked():
    from mangaassist.rest import ApiError, Caller

    models = FakeModels()
    service, index, published = a_service(models=models)
    with pytest.raises(ApiError) as gone:
        service.turn({"message": "hi", "session_id": "sess_gone"}, Caller("k9", None, "free", False), NoDeadline())
    assert (gone.value.status, gone.value.code, gone.value.message) == (
        404, "unknown_session", "no such session for this client (sessions end after 24 hours without a turn): "
                                "start a new one")
    assert service.sessions.reads == [("sess_gone", "k9")]
    assert (models.calls, index.embedded, published, service.sessions.appends) == ([], [], [], [])


def test_a_turn_whose_time_is_gone_reads_and_grounds_nothing():
    """The session read and the grounding run under the invocation's deadline too, not only the model."""
    from mangaassist.rest import Caller, Deadline, DeadlineExceeded

    models = FakeModels()
    service, index, published = a_service(models=models)
    with pytest.raises(DeadlineExceeded):
        service.turn({"message": "hi"}, Caller("k9", None, "free", False), Deadline(0))
    assert (models.calls, index.embedded, published, service.sessions.appends) == ([], [], [], [])


def test_a_new_session_id_is_sess_and_24_url_safe_letters_without_dashes_or_underscores(monkeypatch):
    from mangaassist.chat import turn

    monkeypatch.setattr(turn.secrets, "token_urlsafe", lambda n: f"{n}-a_b-c_")
    assert turn.new_session_id() == "sess_18xaybxcy"


# --- the REST glue: bodies, callers and every failure's exact answer -----------------------------
def test_a_body_is_read_as_json_or_base64_json_and_refused_exactly_when_it_is_not():
    import base64

    from mangaassist.rest import MAX_BODY_BYTES, ApiError, json_body

    def refusal(event):
        with pytest.raises(ApiError) as refused:
            json_body(event, "chat.request")
        return refused.value.status, refused.value.code, refused.value.message, refused.value.details

    encoded = base64.b64encode(json.dumps({"message": "フリーレン"}).encode()).decode()
    assert json_body({"body": encoded, "isBase64Encoded": True}, "chat.request") == {"message": "フリーレン"}
    assert json_body({"body": '{"message": "hi"}', "isBase64Encoded": False}, "chat.request") == {"message": "hi"}
    assert refusal({"body": "not base64!", "isBase64Encoded": True}) == (
        400, "invalid_json", "the body is not UTF-8 JSON", {})
    assert refusal({"body": encoded[:4] + "!" + encoded[4:], "isBase64Encoded": True}) == (
        400, "invalid_json", "the body is not UTF-8 JSON", {}), "a character outside base64 is refused, not skipped"
    assert refusal({"body": base64.b64encode(b"\xff\xfe").decode(), "isBase64Encoded": True}) == (
        400, "invalid_json", "the body is not UTF-8 JSON", {})
    assert refusal({"body": "", "isBase64Encoded": True}) == (400, "invalid_json", "a JSON body is required", {})
    assert refusal({"body": None}) == refusal({}) == (400, "invalid_json", "a JSON body is required", {})
    assert refusal({"body": "{"}) == refusal({"body": "[" * 5000}) == (400, "invalid_json", "the body is not JSON", {})
    assert refusal({"body": " " * (MAX_BODY_BYTES + 1)}) == (
        413, "payload_too_large", "the body is over 65536 bytes", {})
    assert refusal({"body": "{}" + "フ" * (MAX_BODY_BYTES // 3)})[:2] == (413, "payload_too_large"), "counted in bytes"
    at_the_limit = refusal({"body": " " * (MAX_BODY_BYTES - 2) + "{}"})
    assert at_the_limit[:2] == (400, "invalid_request") and at_the_limit[3] == {"path": "message"}
    assert refusal({"body": '{"message": "hi", "locale": "fr"}'})[::3] == (400, {"path": "locale"})


def test_a_caller_without_identity_or_authorizer_objects_is_the_anonymous_free_client():
    from mangaassist.rest import Caller, caller

    anonymous = Caller(client_id="anonymous", user_id="cust_1", tier="free", verified=False)
    assert caller({"requestContext": {"identity": None, "authorizer": None}}, "cust_1") == anonymous
    assert caller({"requestContext": None}, "cust_1") == anonymous
    assert caller({"requestContext": {"identity": {"apiKeyId": ""}, "authorizer": {"sub": "", "tier": "premium"}}},
                  "cust_1") == anonymous, "an empty subject verifies nothing"
    assert caller({"requestContext": {"authorizer": {"sub": "u-1"}}}) == Caller(
        client_id="anonymous", user_id="u-1", tier="free", verified=True), "a token without a tier is free"


def failing_app(error: Exception):
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from mangaassist import rest

    app = APIGatewayRestResolver()
    rest.install_error_handlers(app)

    @app.post("/v1/chat")
    def fail():
        raise error

    return lambda event=None: app.resolve(event or request("POST", "/v1/chat", {"message": "hi"}), Context())


@pytest.mark.parametrize("error, status, body, headers, logged", [
    ("api", 409, '{"error":"in_progress","message":"処理中です","path":"x"}', {"Retry-After": "1"}, None),
    ("deadline", 504, '{"error":"deadline_exceeded","message":"the answer took too long; retry, or ask something '
                      'shorter"}', {"Retry-After": "2"}, "answered 504: the work did not finish before the deadline"),
    ("model", 503, '{"error":"model_unavailable","message":"the assistant\'s models are unavailable; retry shortly",'
                   '"cause":"ThrottlingException"}', {"Retry-After": "2"},
     "answered 503: the models failed: ThrottlingException: every model failed"),
    ("aws", 503, '{"error":"unavailable","message":"a service the assistant depends on is unavailable; retry '
                 'shortly"}', {"Retry-After": "2"}, "answered 503: an AWS dependency failed: An error occurred "
                                                     "(ServiceUnavailable) when calling the Query operation: down"),
    ("bug", 500, '{"error":"internal_error","message":"something went wrong on our side; it was logged",'
                 f'"request_id":"{EVENT["requestContext"]["requestId"]}"}}', {},
     f"answered 500 to request {EVENT['requestContext']['requestId']}"),
])
def test_every_failure_is_answered_with_its_exact_json_headers_and_log(caplog, error, status, body, headers, logged):
    import logging

    from botocore.exceptions import ClientError

    from mangaassist.models import ModelError
    from mangaassist.rest import ApiError, DeadlineExceeded

    raised = {"api": ApiError(409, "in_progress", "処理中です", headers={"Retry-After": "1"}, path="x"),
              "deadline": DeadlineExceeded(), "model": ModelError("ThrottlingException", "every model failed"),
              "aws": ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "Query"),
              "bug": ZeroDivisionError("division by zero")}[error]
    with caplog.at_level(logging.INFO, logger="mangaassist.rest"):
        response = failing_app(raised)()
    assert (response["statusCode"], response["body"]) == (status, body)
    got = {**(response.get("headers") or {}),
           **{k: ",".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()}}
    assert got.pop("Content-Type") == "application/json" and got == headers
    records = [(r.levelname, r.getMessage(), r.exc_info is not None)
               for r in caplog.records if r.name == "mangaassist.rest"]
    assert records == ([] if logged is None else [("ERROR", logged, True)] if error == "bug" else
                       [("WARNING", logged, False)]), "a bug is logged with its traceback, a known failure without"


def test_a_bug_in_a_request_without_a_request_id_is_answered_500_with_a_dash():
    event = request("POST", "/v1/chat", {"message": "hi"})
    event["requestContext"]["requestId"] = None
    response = failing_app(RuntimeError("boom"))(event)
    assert (response["statusCode"], json.loads(response["body"])) == (500, {
        "error": "internal_error", "message": "something went wrong on our side; it was logged", "request_id": "-"})


def test_a_turn_prepared_without_a_deadline_past_a_spent_budget_is_the_fast_models_and_reports_the_downgrade():
    from mangaassist.chat import grounding
    from mangaassist.chat.turn import Turn
    from mangaassist.rest import Caller

    service, index, _ = a_service(spent=True)
    who = Caller(client_id="k1", user_id="u-1", tier="free", verified=True)
    turn = service.prepare({"message": "hi", "locale": "ja"}, who)
    found = grounding.products(index.hits)
    assert turn == Turn(caller=who, session_id=turn.session_id, session=None, existing=False, message="hi",
                        message_id=turn.message_id, decision=a_decision(), model_id="m.fast",
                        budget_action="downgraded", found=found,
                        messages=[{"role": "user", "content": [{"text": "hi"}]}],
                        system=grounding.system_prompt(found, "ja", "v2"))
    (_, inference) = service.events(turn, [FakeModels()("m.fast").converse([])], channel="rest")
    assert inference.detail["budget_action"] == "downgraded"

"""The client API end to end, over HTTP only, against a running local stack: chat with memory,
end-user tokens, generation jobs with idempotency keys, API keys and the usage plan, the flags'
kill switch flipped by `ops.py` while the stack runs, outbound signed notifications and job
callbacks received on 127.0.0.1, and schemathesis from the served OpenAPI document.

One stack serves the module (a usage plan too large to get in the way, and a test CA the
dispatcher trusts, so a job's https callback reaches a receiver on this machine); a second, small
one has a usage plan small enough to hit.
"""

from __future__ import annotations

import http.server
import json
import queue
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from e2e.conftest import ROOT, StackClient, start_stack, stop_stack
from e2e.test_local_stack import EVENTS, aws_client, post_webhook
from receivers import make_dev_ca

pytestmark = pytest.mark.e2e
FLAGS_MAX_AGE_SECONDS = 2.0  # what the stack gives the functions (embedded/stack.py)
KILL_SWITCH_MARGIN = 3.0  # a poll interval, the container's next read, this machine's 2 busy cores
OPENAPI = json.loads((ROOT / "schemas" / "api" / "openapi.json").read_text())


# --- receivers on 127.0.0.1 ------------------------------------------------------------------------
class Receiver:
    """An HTTP(S) server that records every POST (path, headers, body) and answers 200."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.received: queue.SimpleQueue = queue.SimpleQueue()
        self.seen: list[dict] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.put(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout: float = 30.0) -> dict:
        """The first delivery (received so far or within timeout) for which predicate is true."""
        deadline = time.monotonic() + timeout
        while True:
            for delivery in self.seen:
                if predicate(delivery):
                    return delivery
            try:
                self.seen.append(self.received.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no matching delivery within {timeout} s; got {self.seen}") from None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def verify_both_ways(delivery: dict, secret: str) -> dict:
    """The delivery verified by the official Standard Webhooks and Svix libraries, as partners do."""
    import standardwebhooks
    import svix.webhooks

    payload = standardwebhooks.Webhook(secret).verify(delivery["body"].decode(), delivery["headers"])
    svix.webhooks.Webhook(secret).verify(delivery["body"], delivery["headers"])
    assert delivery["headers"]["webhook-id"].startswith("msg_")
    return payload


# --- the module's stack ------------------------------------------------------------------------------
def lower(headers: dict) -> dict:
    """Response headers by lower-case name (HTTP names are case-insensitive)."""
    return {name.lower(): value for name, value in headers.items()}


class Api:
    def __init__(self, stack: StackClient):
        self.stack = stack
        self.keys = stack.info["api_keys"]  # {"dev": ..., "dev-2": ...}

    def call(self, method: str, path: str, body=None, key: str | None = "dev", headers: dict | None = None):
        headers = dict(headers or {})
        if key is not None:
            headers["x-api-key"] = self.keys[key]
        if isinstance(body, dict):
            headers.setdefault("content-type", "application/json")
        status, answered, document = self.stack.json(method, path, body, headers)
        return status, lower(answered), document

    def chat(self, message: str, session_id: str | None = None, **extra):
        body = {"message": message, **({"session_id": session_id} if session_id else {})}
        return self.call("POST", "/v1/chat", body, **extra)

    def job_until_finished(self, job_id: str, key: str = "dev", timeout: float = 60) -> list[dict]:
        """Every distinct status the job showed while it was polled, until it finished."""
        seen: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, _, job = self.call("GET", f"/v1/jobs/{job_id}", key=key)
            assert status == 200, job
            if not seen or seen[-1]["status"] != job["status"]:
                seen.append(job)
            if job["status"] in ("succeeded", "failed"):
                return seen
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still {seen[-1]['status']} after {timeout} s")


@pytest.fixture(scope="module")
def outbound(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    tls = make_dev_ca(folder)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(tls["cert"], tls["key"])
    receiver, secure = Receiver(), Receiver(tls=server_tls)
    yield {"ca_file": tls["ca"], "receiver": receiver, "secure": secure}
    receiver.close()
    secure.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory, outbound):
    stack = start_stack(
        tmp_path_factory.mktemp("client-api"),
        {
            "USAGE_PLAN_RATE": "10000",
            "USAGE_PLAN_BURST": "10000",
            "USAGE_PLAN_DAILY_QUOTA": "10000000",
            "LOCAL_MODEL_TOKENS_PER_SECOND": "2000",
            "NOTIFY_CA_FILE": str(outbound["ca_file"]),  # the https receiver's development CA
        },
    )
    client = Api(stack)
    # Subscriptions before any traffic: a dispatcher caches the list it read for 30 s.
    code, jobs = stack.ops(
        "subscriptions",
        "add",
        "--url",
        f"http://127.0.0.1:{outbound['receiver'].port}/jobs",
        "--events",
        "mangaassist.jobs/JobCompleted",
    )
    assert code == 0, jobs
    code, orders = stack.ops(
        "subscriptions",
        "add",
        "--url",
        f"http://127.0.0.1:{outbound['receiver'].port}/orders",
        "--event-pattern",
        json.dumps({"source": ["mangaassist.payments"], "detail-type": ["PaymentCompleted"]}),
        "--template",
        json.dumps(
            {"InputPathsMap": {"order": "$.detail.order_id"}, "InputTemplate": '{"text": "order <order> is paid"}'}
        ),
    )
    assert code == 0, orders
    code, callbacks = stack.ops("callbacks", "set", "--client", "dev", "--allow-host", "localhost")
    assert code == 0, callbacks
    client.secrets = {"jobs": jobs["secret"], "orders": orders["secret"], "callbacks": callbacks["secret"]}
    client.listen_port = free_port()  # `ops.py listen` takes it in its own test
    code, listened = stack.ops(
        "subscriptions",
        "add",
        "--url",
        f"http://127.0.0.1:{client.listen_port}/listen",
        "--events",
        "mangaassist.jobs/JobCompleted",
    )
    assert code == 0, listened
    client.listened = listened["id"]
    # A catalog product for the generation tasks, indexed before the tests start.
    payload = json.loads((EVENTS / "catalog.new_release.json").read_text())
    status, _, answer = post_webhook(stack, "catalog", json.dumps(payload, ensure_ascii=False).encode())
    assert status == 202, answer
    stack.wait_for(
        lambda rs: (
            len(
                [
                    r
                    for r in rs
                    if r["event_id"] in answer["events"]
                    and r["target"] == "catalog_indexer"
                    and r["status"] == "delivered"
                ]
            )
            == 2
        ),
        what="indexing",
    )
    yield client
    assert stop_stack(stack) == 0


# --- chat ----------------------------------------------------------------------------------------------
def test_a_second_turn_sees_the_first_and_the_session_is_reused(api):
    status, _, first = api.chat("Please remember this.\ncode word: zebra-4711")
    assert status == 200 and first["session_id"].startswith("sess_") and "zebra-4711" in first["answer"]
    status, _, second = api.chat("What was the code word?", first["session_id"])
    assert status == 200 and second["session_id"] == first["session_id"]
    assert second["message_id"] != first["message_id"]
    assert "zebra-4711" in second["answer"], "the session's earlier turn is in the model's context"
    assert second["usage"]["input_tokens"] > first["usage"]["input_tokens"]
    status, _, fresh = api.chat("What was the code word?")
    assert status == 200 and fresh["session_id"] != first["session_id"] and "zebra-4711" not in fresh["answer"]
    assert api.chat("hello", first["session_id"], key="dev-2")[0] == 404, "another API key's session"
    assert api.call("DELETE", f"/v1/sessions/{first['session_id']}")[0] == 204
    assert api.chat("again?", first["session_id"])[0] == 404, "a forgotten session"


def test_concurrent_turns_of_one_session_lose_no_message(api):
    status, _, first = api.chat("first turn")
    session = first["session_id"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda n: api.chat(f"concurrent turn {n}", session), range(6)))
    assert [status for status, _, _ in answers] == [200] * 6, answers
    item = aws_client(api.stack, "dynamodb").get_item(
        TableName=api.stack.info["names"]["tables"]["sessions"], Key={"session_id": {"S": session}}, ConsistentRead=True
    )["Item"]
    turns = [t["M"] for t in item["turns"]["L"]]
    texts = sorted(t["text"]["S"] for t in turns if t["role"]["S"] == "user")
    assert texts == sorted(["first turn", *(f"concurrent turn {n}" for n in range(6))])
    ids = {t["message_id"]["S"] for t in turns}
    assert {first["message_id"], *(body["message_id"] for _, _, body in answers)} == ids
    assert len(turns) == 14, "each turn is its user message and its answer"


def test_a_premium_token_gets_the_deep_model_and_bad_or_expired_tokens_get_401(api):
    code, minted = api.stack.ops("token", "--user", "reader-premium", "--tier", "premium", "--minutes", "5")
    assert code == 0, minted
    status, _, answer = api.chat("おすすめは?", headers={"authorization": f"Bearer {minted['token']}"})
    assert status == 200 and answer["model_id"] == "local.deep-v1", answer
    code, free = api.stack.ops("token", "--user", "reader-free-7", "--tier", "free")
    status, _, answer = api.chat("おすすめは?", headers={"authorization": f"Bearer {free['token']}"})
    assert status == 200 and answer["model_id"] in ("local.fast-v1", "local.candidate-v1")
    status, _, refused = api.chat("hi", headers={"authorization": "Bearer not.a.token"})
    assert (status, refused) == (401, {"message": "Unauthorized"})
    import jwt

    auth = api.stack.info["jwt"]
    past = int(time.time()) - 3600
    expired = jwt.encode(
        {"iss": auth["issuer"], "aud": auth["audience"], "sub": "u", "tier": "premium", "iat": past - 60, "exp": past},
        Path(auth["private_key_file"]).read_text(),
        algorithm="RS256",
        headers={"kid": auth["key_id"]},
    )
    status, _, refused = api.chat("hi", headers={"authorization": f"Bearer {expired}"})
    assert (status, refused) == (401, {"message": "Unauthorized"})
    status, _, refused = api.chat("hi", key=None, headers={"authorization": f"Bearer {minted['token']}"})
    assert status == 403 and refused == {"message": "Forbidden"}, "a token is no API key"


# --- generation jobs -------------------------------------------------------------------------------
def test_generate_answers_202_and_the_job_goes_queued_running_succeeded(api):
    status, headers, queued = api.call(
        "POST", "/v1/generate", {"task": "product_description", "input": {"product_id": "bk-frieren-14"}}
    )
    assert status == 202 and queued["status"] == "queued" and queued["job_id"].startswith("job_"), queued
    assert headers["location"] == queued["status_url"] == f"/v1/jobs/{queued['job_id']}"
    seen = api.job_until_finished(queued["job_id"])
    order = ["queued", "running", "succeeded"]
    statuses = [job["status"] for job in seen]
    assert statuses[-1] == "succeeded" and statuses == sorted(statuses, key=order.index), statuses
    done = seen[-1]
    assert done["result"] and done["usage"]["output_tokens"] > 0 and done["created_at"] <= done["updated_at"]
    assert all("result" not in job for job in seen[:-1]), "no result before the job finished"


def test_an_idempotency_key_gives_the_same_job_and_refuses_another_body(api):
    key = f"order-{uuid.uuid4().hex}"
    body = {"task": "product_description", "input": {"product_id": "bk-frieren-14", "tone": "concise"}}
    first = api.call("POST", "/v1/generate", body, headers={"Idempotency-Key": key})
    again = api.call("POST", "/v1/generate", body, headers={"Idempotency-Key": key})
    assert first[0] == again[0] == 202 and first[2]["job_id"] == again[2]["job_id"]
    status, _, refused = api.call(
        "POST", "/v1/generate", {**body, "input": {"product_id": "bk-frieren-14"}}, headers={"Idempotency-Key": key}
    )
    assert status == 422 and refused["error"] == "idempotency_key_reused", refused
    other_client = api.call("POST", "/v1/generate", body, key="dev-2", headers={"Idempotency-Key": key})
    assert other_client[0] == 202 and other_client[2]["job_id"] != first[2]["job_id"], "keys are per API key"
    fresh = api.call("POST", "/v1/generate", body)
    assert fresh[0] == 202 and fresh[2]["job_id"] != first[2]["job_id"], "no key: a new job each time"


def test_a_job_is_visible_only_to_its_api_key_and_a_key_is_required(api):
    status, _, queued = api.call(
        "POST", "/v1/generate", {"task": "product_description", "input": {"product_id": "bk-frieren-14"}}
    )
    assert status == 202
    assert api.call("GET", f"/v1/jobs/{queued['job_id']}")[0] == 200
    status, _, hidden = api.call("GET", f"/v1/jobs/{queued['job_id']}", key="dev-2")
    assert status == 404 and hidden["error"] == "unknown_job"
    assert api.call("GET", "/v1/jobs/job_00000000000000000000")[0] == 404
    for method, path, body in (
        ("GET", f"/v1/jobs/{queued['job_id']}", None),
        ("POST", "/v1/chat", {"message": "hi"}),
        ("POST", "/v1/generate", {"task": "product_description", "input": {"product_id": "x"}}),
    ):
        status, headers, refused = api.call(method, path, body, key=None)
        assert (status, refused) == (403, {"message": "Forbidden"}) and headers["content-type"].startswith(
            "application/json"
        )
    status, _, refused = api.call("GET", f"/v1/jobs/{queued['job_id']}", headers={"x-api-key": "not-a-key"}, key=None)
    assert status == 403


# --- the kill switch ---------------------------------------------------------------------------------
def wait_for_status(api, wanted: int, timeout: float) -> tuple[float, tuple]:
    started = time.monotonic()
    while True:
        answer = api.chat("switch?")
        if answer[0] == wanted or time.monotonic() - started > timeout:
            return time.monotonic() - started, answer
        time.sleep(0.1)


def test_ops_flags_kill_pauses_chat_on_the_running_stack_and_revive_restores_it(api):
    assert api.chat("before")[0] == 200
    bound = FLAGS_MAX_AGE_SECONDS + KILL_SWITCH_MARGIN
    code, killed = api.stack.ops("flags", "kill", "chat")
    try:
        assert code == 0 and killed["enabled"] is False, killed
        took, (status, headers, body) = wait_for_status(api, 503, bound + 5)
        assert status == 503 and took <= bound, f"paused after {took:.1f} s"
        assert body["error"] == "feature_paused" and int(headers["retry-after"]) > 0
        assert api.call("POST", "/v1/recommend", {"customer_id": "c-1", "query": "fantasy"})[0] == 200, (
            "only chat is paused"
        )
    finally:
        code, revived = api.stack.ops("flags", "revive", "chat")
    assert code == 0 and revived["enabled"] is True, revived
    took, (status, _, body) = wait_for_status(api, 200, bound + 5)
    assert status == 200 and took <= bound, f"back after {took:.1f} s: {body}"
    code, shown = api.stack.ops("flags", "show")
    assert code == 0 and shown["flags"]["chat_enabled"] == {"default": True}


# --- outbound notifications and callbacks ------------------------------------------------------------
def test_a_subscription_gets_a_signed_delivery_of_a_finished_job(api, outbound):
    status, _, queued = api.call(
        "POST", "/v1/generate", {"task": "product_description", "input": {"product_id": "bk-frieren-14"}}
    )
    assert status == 202
    delivery = outbound["receiver"].wait_for(
        lambda d: d["path"] == "/jobs" and json.loads(d["body"])["detail"]["job_id"] == queued["job_id"]
    )
    event = verify_both_ways(delivery, api.secrets["jobs"])
    assert event["detail-type"] == "JobCompleted" and event["detail"]["status"] == "succeeded"
    import standardwebhooks

    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(api.secrets["orders"]).verify(delivery["body"].decode(), delivery["headers"])


def test_ops_listen_verifies_deliveries_with_the_subscription_secrets_it_reads(api):
    command = [
        sys.executable,
        str(ROOT / "scripts" / "ops.py"),
        "listen",
        "--port",
        str(api.listen_port),
        "--subscription",
        api.listened,
        "--local",
        "--stack",
        str(api.stack.data_dir / "stack.json"),
    ]
    listener = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on" in listener.stderr.readline()
        status, _, queued = api.call(
            "POST", "/v1/generate", {"task": "product_description", "input": {"product_id": "bk-frieren-14"}}
        )
        assert status == 202
        lines = queue.SimpleQueue()
        threading.Thread(target=lambda: [lines.put(json.loads(line)) for line in listener.stdout], daemon=True).start()
        deadline = time.monotonic() + 30
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line["payload"]["detail"]["job_id"] == queued["job_id"]:
                break
        assert line["verified"] is True and line["path"] == "/listen" and line["webhook_id"].startswith("msg_")
    finally:
        listener.terminate()
        listener.wait(10)


def test_an_order_webhook_reaches_its_subscription_through_its_template(api, outbound):
    payload = json.loads((EVENTS / "stripe.checkout.session.completed.json").read_text())
    payload["id"] = f"evt_{uuid.uuid4().hex}"
    status, _, accepted = post_webhook(api.stack, "stripe", json.dumps(payload).encode())
    assert status == 202, accepted
    delivery = outbound["receiver"].wait_for(lambda d: d["path"] == "/orders")
    body = verify_both_ways(delivery, api.secrets["orders"])
    assert set(body) == {"text"} and body["text"].startswith("order ") and body["text"].endswith(" is paid")


def test_a_job_with_a_callback_url_gets_a_signed_callback_over_verified_tls(api, outbound):
    url = f"https://localhost:{outbound['secure'].port}/callbacks/{uuid.uuid4().hex}"
    status, _, queued = api.call(
        "POST",
        "/v1/generate",
        {"task": "product_description", "callback_url": url, "input": {"product_id": "bk-frieren-14"}},
    )
    assert status == 202, queued
    delivery = outbound["secure"].wait_for(lambda d: url.endswith(d["path"]))
    event = verify_both_ways(delivery, api.secrets["callbacks"])
    assert event["detail"]["job_id"] == queued["job_id"] and event["detail"]["callback_url"] == url
    status, _, refused = api.call(
        "POST",
        "/v1/generate",
        {"task": "product_description", "callback_url": "http://localhost/x", "input": {"product_id": "bk-frieren-14"}},
    )
    assert (status, refused) == (400, {"message": "Invalid request body"}), "callbacks are https only"
    code, status_now = api.stack.ops("callbacks")
    assert code == 0 and status_now["callbacks"][0]["allowed_hosts"] == ["localhost"]


# --- the usage plan ---------------------------------------------------------------------------------
def test_the_usage_plan_answers_429_past_the_burst_and_past_the_daily_quota(tmp_path):
    small = start_stack(tmp_path, {"USAGE_PLAN_RATE": "1", "USAGE_PLAN_BURST": "3", "USAGE_PLAN_DAILY_QUOTA": "5"})
    try:
        headers = {"x-api-key": small.info["api_key"]}
        answers = [small.json("GET", "/v1/search?q=x", headers=headers) for _ in range(4)]
        assert [status for status, _, _ in answers[:3]] == [200, 200, 200]
        status, head, body = answers[3]
        assert (status, body) == (429, {"message": "Too Many Requests"})
        assert lower(head)["content-type"].startswith("application/json")
        other = small.json("GET", "/v1/search?q=x", headers={"x-api-key": small.info["api_keys"]["dev-2"]})
        assert other[0] == 200, "each key has its own bucket"
        statuses = []
        for _ in range(3):  # a token a second: requests 4 and 5 of the day pass, the 6th is past the quota
            time.sleep(1.1)
            statuses.append(small.json("GET", "/v1/search?q=x", headers=headers)[:3:2])
        assert statuses == [(200, statuses[0][1]), (200, statuses[1][1]), (429, {"message": "Limit Exceeded"})]
        assert small.json("GET", "/health")[0] == 200, "routes without a key are not metered"
    finally:
        assert stop_stack(small) == 0


# --- schemathesis from the served OpenAPI document ----------------------------------------------------
OPERATIONS = [(method.upper(), path) for path, ops in OPENAPI["paths"].items() for method in ops]
EXAMPLES_PER_OPERATION = 25  # `python tests/benchmarks/fuzz_client_api.py` runs the 1,000 each


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(api, method, path):
    from benchmarks.fuzz_client_api import fuzz_operation

    failures, sent = fuzz_operation(api.stack.info, method, path, examples=EXAMPLES_PER_OPERATION)
    assert failures == [], "\n".join(failures)
    assert sent >= (1 if method == "GET" and path == "/health" else EXAMPLES_PER_OPERATION)

"""Deferred work: after the answer on Lambda (an internal extension on a Runtime API served here on
127.0.0.1 the way Lambda serves it), after the gateway's answer locally, before it elsewhere."""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mangaassist import after_response


class RuntimeApi(ThreadingHTTPServer):
    """The Extensions API part of Lambda's Runtime API: register, then event/next, which blocks
    until the test starts an invocation."""

    daemon_threads = True

    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.registered: list[dict] = []
        self.invocations: queue.Queue[dict] = queue.Queue()
        self.next_calls: queue.Queue[float] = queue.Queue()
        self.log: list[str] = []
        super().__init__(("127.0.0.1", 0), RuntimeApiHandler)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def invoke(self, deadline_in: float = 10.0) -> None:
        self.invocations.put({"eventType": "INVOKE", "requestId": "req-1",
                              "deadlineMs": int((time.time() + deadline_in) * 1000)})


class RuntimeApiHandler(BaseHTTPRequestHandler):
    server: RuntimeApi

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        assert self.path == "/2020-01-01/extension/register"
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.refuse:
            self._answer(403, {"errorType": "Extension.Forbidden"})
            return
        self.server.registered.append({"name": self.headers["Lambda-Extension-Name"], **body})
        self._answer(200, {"functionName": "f", "functionVersion": "$LATEST", "handler": "handler.lambda_handler"},
                     {"Lambda-Extension-Identifier": "ext-0001"})

    def do_GET(self):
        assert self.path == "/2020-01-01/extension/event/next"
        assert self.headers["Lambda-Extension-Identifier"] == "ext-0001"
        self.server.log.append("next")
        self.server.next_calls.put(time.monotonic())
        self._answer(200, self.server.invocations.get(timeout=30))


@pytest.fixture
def runtime_api(monkeypatch):
    server = RuntimeApi()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", server.address)
    monkeypatch.setattr(after_response, "_extension", None)
    yield server
    extension = after_response._extension
    if extension is not None:
        extension.stopping.set()
        server.invocations.put({"eventType": "SHUTDOWN"})  # releases its pending next
        extension.join(5)
    server.shutdown()
    server.server_close()


def test_on_lambda_the_tasks_run_after_the_answer_and_the_invocation_ends_after_them(runtime_api):
    answered, log = threading.Event(), runtime_api.log

    def complete_the_claim():
        log.append(f"task saw the answer: {answered.wait(5)}")

    @after_response.handler  # at import, during init: registers the extension
    def handler(event, context):
        after_response.defer(complete_the_claim)
        log.append("handler")
        return {"statusCode": 202}

    assert runtime_api.registered == [{"name": after_response.EXTENSION_NAME, "events": ["INVOKE"]}]
    runtime_api.next_calls.get(timeout=5)  # init ends when the extension asks for its first event
    runtime_api.invoke()
    assert handler({}, None) == {"statusCode": 202}  # returned without running the task
    log.append("answer sent")
    answered.set()
    runtime_api.next_calls.get(timeout=5)  # the extension's next request: the invocation is over
    assert log == ["next", "handler", "answer sent", "task saw the answer: True", "next"]


def test_on_lambda_an_invocation_without_tasks_ends_with_its_answer(runtime_api):
    handler = after_response.handler(lambda event, context: "answer")
    runtime_api.next_calls.get(timeout=5)
    for _ in range(3):
        runtime_api.invoke()
        assert handler({}, None) == "answer"
        runtime_api.next_calls.get(timeout=5)


def test_on_lambda_a_handler_that_never_reports_holds_the_invocation_only_to_its_deadline(runtime_api):
    after_response.handler(lambda event, context: None)
    runtime_api.next_calls.get(timeout=5)
    started = time.monotonic()
    runtime_api.invoke(deadline_in=0.3)  # the runtime never calls the handler (it timed out)
    ended = runtime_api.next_calls.get(timeout=5)
    assert 0.2 < ended - started < 3


def test_on_lambda_a_failing_task_is_logged_and_the_extension_goes_on(runtime_api, caplog):
    def broken():
        raise RuntimeError("DynamoDB said no")

    @after_response.handler
    def handler(event, context):
        after_response.defer(broken)
        return "answer"

    runtime_api.next_calls.get(timeout=5)
    with caplog.at_level(logging.ERROR, logger=after_response.__name__):
        runtime_api.invoke()
        assert handler({}, None) == "answer"
        runtime_api.next_calls.get(timeout=5)
    assert "DynamoDB said no" in caplog.text
    runtime_api.invoke()  # still serving invocations
    assert handler({}, None) == "answer"
    runtime_api.next_calls.get(timeout=5)


def test_a_refused_registration_runs_the_tasks_before_the_answer(monkeypatch, caplog):
    server = RuntimeApi(refuse=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", server.address)
    monkeypatch.setattr(after_response, "_extension", None)
    try:
        log = []

        @after_response.handler
        def handler(event, context):
            after_response.defer(lambda: log.append("task"))
            return "answer"

        assert after_response._extension is None and "registration failed" in caplog.text
        assert handler({}, None) == "answer" and log == ["task"]
    finally:
        server.shutdown()
        server.server_close()


# --- off Lambda ---------------------------------------------------------------------------------
@pytest.fixture
def off_lambda(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_RUNTIME_API", raising=False)
    monkeypatch.setattr(after_response, "_extension", None)


def test_a_task_deferred_outside_any_invocation_runs_at_once(off_lambda):
    log = []
    after_response.defer(lambda: log.append("task"))
    assert log == ["task"]


def test_without_a_host_the_tasks_run_before_the_answer(off_lambda):
    log = []

    @after_response.handler
    def handler(event, context):
        after_response.defer(lambda: log.append("task"))
        log.append("handler")
        return "answer"

    assert handler({}, None) == "answer" and log == ["handler", "task"]


def test_a_host_runs_the_tasks_after_it_has_sent_the_answer(off_lambda, caplog):
    log = []

    @after_response.handler
    def handler(event, context):
        after_response.defer(lambda: log.append("first"))
        after_response.defer(lambda: 1 / 0)
        after_response.defer(lambda: log.append("after a failing one"))
        return "answer"

    later = after_response.Later()
    with later:
        assert handler({}, None) == "answer"
    assert log == []
    log.append("answer sent")
    later.run()
    assert log == ["answer sent", "first", "after a failing one"]
    assert "ZeroDivisionError" in caplog.text
    later.run()  # run once only
    assert len(log) == 3


def test_tasks_deferred_before_the_handler_raises_still_run(off_lambda):
    log = []

    @after_response.handler
    def handler(event, context):
        after_response.defer(lambda: log.append("task"))
        raise ValueError("bug")

    with pytest.raises(ValueError):
        handler({}, None)
    assert log == ["task"]
    after_response.defer(lambda: log.append("outside again"))  # the scope is closed
    assert log == ["task", "outside again"]

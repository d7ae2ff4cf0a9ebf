"""Work that may finish after a function's answer has been sent.

On Lambda the caller gets the answer as soon as the handler returns, but the invocation only ends
once every registered extension asks for its next event. An internal extension (a thread in the
runtime process, registered during init) that holds that request until the handler's deferred
tasks are done runs them after the answer and still inside the invocation: billed, within its
timeout, never frozen half-way. This is the pattern of AWS's "Running code after returning a
response from an AWS Lambda function" (Compute Blog), on the Extensions API.

Defer only work that no answer depends on and whose loss is tolerable: the environment can still
die after the answer. A failing task is logged, never raised: nobody is left to tell.

Where nothing runs tasks after the answer (tests, scripts, a function without the extension), a
deferred task runs when the handler returns, before its answer: slower, never lost. The local
stack's gateway hosts them as Lambda does, running them once it has sent the answer.
"""
from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable

from mangaassist import settings

Task = Callable[[], object]  # what it returns is dropped
EXTENSION_NAME = "mangaassist-after-response"
logger = logging.getLogger(__name__)
_scope = threading.local()  # .tasks: the running invocation's deferred tasks; .hosted: a host runs them


def defer(task: Task) -> None:
    """Run ``task`` after the answer if the running invocation can, else now."""
    tasks = getattr(_scope, "tasks", None)
    if tasks is None:
        run([task])
    else:
        tasks.append(task)


def run(tasks: list[Task]) -> None:
    for task in tasks:
        try:
            task()
        except Exception:
            logger.exception("after-response task %s failed", getattr(task, "__name__", task))


class Later:
    """A host's hold on the tasks of the invocations it runs (the local stack's gateway):
    ``with later: answer = handler(...)``, send the answer, then ``later.run()``."""

    def __init__(self):
        self.tasks: list[Task] = []

    def __enter__(self) -> Later:
        _scope.hosted = self
        return self

    def __exit__(self, *_) -> None:
        _scope.hosted = None

    def run(self) -> None:
        tasks, self.tasks = self.tasks, []
        run(tasks)


class Extension(threading.Thread):
    """The internal extension: registered for INVOKE during init; each ``next`` request it makes
    ends the previous invocation, so it makes it only once that invocation's tasks are done."""

    def __init__(self, runtime_api: str, *, register_timeout: float = 2.0):
        import urllib.request  # on Lambda only; boto3 imports it too, later

        self._urllib = urllib.request
        super().__init__(name=EXTENSION_NAME, daemon=True)
        self.base = f"http://{runtime_api}/2020-01-01/extension"
        self.batches: queue.SimpleQueue[list[Task]] = queue.SimpleQueue()
        request = urllib.request.Request(
            f"{self.base}/register", data=json.dumps({"events": ["INVOKE"]}).encode(), method="POST",
            headers={"Lambda-Extension-Name": EXTENSION_NAME, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=register_timeout) as response:
            self.identifier = response.headers["Lambda-Extension-Identifier"]
        self.stopping = threading.Event()  # Lambda never stops it; tests do

    def _next(self) -> dict:
        request = self._urllib.Request(f"{self.base}/event/next",
                                       headers={"Lambda-Extension-Identifier": self.identifier})
        with self._urllib.urlopen(request) as response:  # blocks until the next invocation starts
            return json.loads(response.read() or b"{}")

    def run(self) -> None:
        # This thread must never die: every invocation would then wait for it until its timeout.
        while not self.stopping.is_set():
            try:
                event = self._next()
            except Exception:
                if not self.stopping.is_set():
                    logger.exception("extension: next event failed")
                    time.sleep(0.05)
                continue
            if event.get("eventType") != "INVOKE":
                continue
            deadline = event.get("deadlineMs")
            # A handler that never reports (it timed out, or the runtime failed before calling it)
            # must not keep the invocation open past its deadline.
            wait = max(0.0, deadline / 1000 - time.time()) if deadline else None
            try:
                tasks = self.batches.get(timeout=wait)
            except queue.Empty:
                continue
            run(tasks)


_extension: Extension | None = None
_extension_lock = threading.Lock()


def extension() -> Extension | None:
    """The registered extension on Lambda (registering it on first call, which must come during
    init: at import of the handler's module); None elsewhere, or if Lambda refused it."""
    global _extension
    api = settings.lambda_runtime_api()
    if not api:
        return None
    with _extension_lock:
        if _extension is None:
            try:
                _extension = Extension(api)
            except Exception:
                logger.exception("extension: registration failed; deferred tasks run before the answer")
                return None
            _extension.start()
        return _extension


def handler(fn: Callable) -> Callable:
    """Decorate a Lambda handler whose code calls :func:`defer`. Call at import time (init)."""
    ext = extension()

    @functools.wraps(fn)
    def wrapper(event, context):
        tasks: list[Task] = []
        _scope.tasks = tasks
        try:
            return fn(event, context)
        finally:
            _scope.tasks = None
            host = getattr(_scope, "hosted", None)
            if host is not None:
                host.tasks.extend(tasks)
            elif ext is not None:
                ext.batches.put(tasks)  # every invocation reports, with or without tasks
            else:
                run(tasks)

    return wrapper

"""The local stack's in-process Lambda runtime (scripts/embedded/lambdas.py)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from embedded.lambdas import Functions


def functions_with(handler, timeout: float) -> Functions:
    functions = Functions({"f": {"timeout": timeout}}, names={"f": "test-f"}, region="ap-northeast-1",
                          account="123456789012")
    functions.handler = lambda name: handler
    return functions


def test_the_first_run_initialises_alone_and_waiting_does_not_count_against_the_timeout():
    running, peak, calls = [0], [0], []
    lock = threading.Lock()

    def handler(event, context):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            first = not calls
            calls.append(context.get_remaining_time_in_millis())
        time.sleep(0.4 if first else 0.2)  # the first run initialises, the rest are warm
        with lock:
            running[0] -= 1
        return event

    functions = functions_with(handler, timeout=0.5)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda n: functions.invoke("f", n), range(6)))
    assert sorted(results) == list(range(6))  # nobody timed out behind the first run
    assert min(calls) > 400  # each caller's clock started when it ran: ~500 ms left, not ~100
    assert peak[0] > 1  # after the first run the warm ones ran side by side


def test_a_run_past_the_timeout_fails_as_on_aws():
    functions = functions_with(lambda event, context: time.sleep(0.15), timeout=0.1)
    with pytest.raises(TimeoutError, match="Task timed out after 0.10 seconds"):
        functions.invoke("f", {})


def test_injected_faults_fail_the_next_invocations_then_stop():
    functions = functions_with(lambda event, context: "ok", timeout=1)
    functions.inject_faults("f", 2)
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(functions.invoke("f", {}))
        except Exception as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == ["InjectedFault", "InjectedFault", "ok"]

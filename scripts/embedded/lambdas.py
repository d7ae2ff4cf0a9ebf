"""Lambda functions in-process: each functions/<name>/handler.py imported once under its own
module name and called with a Lambda context (request id, remaining time from its timeout)."""
from __future__ import annotations

import gc
import importlib.util
import sys
import threading
import time
import uuid
from pathlib import Path

from mangaassist_dev.delivery import NO_RESOURCE, TargetError

from embedded import function_logs

ROOT = Path(__file__).resolve().parents[2]


class LambdaContext:
    """What the Python runtime passes as ``context``."""

    def __init__(self, function_name: str, arn: str, memory_mb: int, timeout_s: float):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InjectedFault(Exception):
    """A failure asked for with POST /_local/faults."""


class Functions:
    def __init__(self, specs: dict, *, names: dict[str, str], region: str, account: str):
        self.specs = specs
        self.names = names  # function -> its deployed name (mangaassist_dev.naming)
        self.region = region
        self.account = account
        self._handlers: dict = {}
        self._faults: dict[str, int] = {}
        self._lock = threading.Lock()
        self._cold = {name: threading.Lock() for name in specs}  # held through a function's first run

    def name(self, function: str) -> str:
        return self.names[function]

    def arn(self, function: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name(function)}"

    def by_arn(self, arn: str) -> str:
        for function in self.specs:
            if self.arn(function) == arn or self.name(function) == arn.rsplit(":", 1)[-1]:
                return function
        raise KeyError(arn)

    def handler(self, function: str):
        with self._lock:
            if function not in self._handlers:
                path = ROOT / "functions" / function / "handler.py"
                # As in Lambda, the function's folder (its zip's root) is on the path: its own modules
                # (functions/authorizer/jwt_tokens.py) import by their names, which are unique.
                if str(path.parent) not in sys.path:
                    sys.path.append(str(path.parent))
                spec = importlib.util.spec_from_file_location(f"functions.{function}.handler", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._handlers[function] = module.lambda_handler
            return self._handlers[function]

    def _run(self, function: str, event):
        cold = self._cold.get(function)
        if cold is not None:
            # The first run initialises the function (imports, clients, caches) alone, as one
            # Lambda container would; concurrent callers wait rather than each build their own,
            # and their own timeout starts once they run, as in a container of their own.
            with cold:
                if function in self._cold:
                    try:
                        return self._call(function, event)
                    finally:
                        del self._cold[function]
                        # What init built lives as long as the stack: keep it out of the garbage
                        # collector's full passes, which otherwise pause every thread for longer
                        # and longer (half a second with boto3's models loaded).
                        gc.freeze()
        return self._call(function, event)

    def _call(self, function: str, event):
        spec = self.specs[function]
        timeout = float(spec.get("timeout", 3))
        context = LambdaContext(self.name(function), self.arn(function), spec.get("memory_size", 128), timeout)
        started = time.monotonic()
        with function_logs.invocation(function, event):
            result = self.handler(function)(event, context)
        # A thread cannot be stopped, but a run past the timeout failed on AWS: report it so.
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"Task timed out after {timeout:.2f} seconds")
        return result

    def inject_faults(self, function: str, count: int) -> None:
        if function not in self.specs:
            raise KeyError(function)
        with self._lock:
            self._faults[function] = count

    def faults(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self._faults.items() if v}

    def _take_fault(self, function: str) -> bool:
        with self._lock:
            if self._faults.get(function, 0) > 0:
                self._faults[function] -= 1
                return True
        return False

    def invoke(self, function: str, event):
        """Run the function on ``event`` as Lambda would; raises what the function raised."""
        if function not in self.specs:
            raise TargetError(NO_RESOURCE, f"Function not found: {self.arn(function)}")
        if self._take_fault(function):
            raise InjectedFault(f"fault injected into {function} (POST /_local/faults)")
        return self._run(function, event)

"""Start the local stack (`scripts/local_stack.py`) on a free port, as a user would, and talk to
it over HTTP only."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class StackClient:
    def __init__(self, info: dict, process: subprocess.Popen, data_dir: Path, output: list[str]):
        self.info = info
        self.process = process
        self.data_dir = data_dir
        self.base_url = info["base_url"]
        self.output = output  # every line the stack printed so far (a thread keeps reading them)

    def request(self, method: str, path: str, body: bytes | dict | None = None, headers: dict | None = None,
                token: bool = True):
        """One request; /_local/* ones carry the dev token unless ``token`` is False."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        headers = dict(headers or {})
        if token and path.startswith("/_local"):
            headers.setdefault("x-local-token", self.info["local_token"])
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, method: str, path: str, body=None, headers=None, token: bool = True):
        status, head, raw = self.request(method, path, body, headers, token)
        return status, head, json.loads(raw or b"{}")

    def deliveries(self) -> list[dict]:
        return self.json("GET", "/_local/deliveries")[2]["deliveries"]

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "deliveries"):
        """Poll /_local/deliveries until predicate(deliveries) is truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.deliveries()
            result = predicate(records)
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: {json.dumps(self.deliveries())[:2000]}")

    def ops(self, *args: str) -> tuple[int, dict | str]:
        """scripts/ops.py against this stack, as an operator runs it."""
        cmd = [sys.executable, str(ROOT / "scripts" / "ops.py"), *args, "--local",
               "--stack", str(self.data_dir / "stack.json"), "--json"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError:
            return done.returncode, done.stdout + done.stderr


def wait_until(predicate, what: str = "a condition", timeout: float = 30.0):
    """predicate()'s first truthy result, polled; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_stack(data_dir: Path, extra_env: dict | None = None, timeout: float = 90,
                new_session: bool = False) -> StackClient:
    """`make run` on a free port; ``new_session``: in a process group of its own (to kill it whole)."""
    env = {**os.environ, "PORT": "0", "MANGAASSIST_DATA": str(data_dir), **(extra_env or {})}
    process = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "local_stack.py")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=new_session)
    lines: list[str] = []
    arrived: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:  # all the way: a pipe nobody reads fills up and blocks the stack's logging
        for line in process.stdout:
            lines.append(line)
            arrived.put(line)
        arrived.put(None)

    threading.Thread(target=read, name="stack-output", daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = arrived.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        if line.startswith("ready"):
            info = json.loads((data_dir / "stack.json").read_text())
            return StackClient(info, process, data_dir, lines)
    process.kill()
    raise RuntimeError("the local stack did not become ready:\n" + "".join(lines))


def stop_stack(stack: StackClient, timeout: float = 60) -> int:
    stack.process.send_signal(signal.SIGTERM)
    try:
        return stack.process.wait(timeout=timeout)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    client = start_stack(tmp_path_factory.mktemp("stack"))
    yield client
    assert stop_stack(client) == 0, "SIGTERM stops the stack cleanly"

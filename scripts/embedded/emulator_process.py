"""moto in a child process, so the stack uses a second core.

Under load the stack spends about half its CPU inside moto and half in the functions, the
router and boto3. In one process they share one core (the GIL); here moto runs in a child of the
stack's process, with its HTTP port for other clients as before. The stack's own boto3 calls
reach it over a local Unix socket, one pooled connection per concurrent call, carrying the
request as bytes and getting the response back: the same app, the same lock, the same PutEvents
tap (its events come back over the control pipe to the router).

The child ignores Ctrl-C (the terminal sends it to the whole process group: the parent decides
when to stop) and exits when the parent asks or when the parent is gone.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import signal
import tempfile
import threading
from multiprocessing.connection import Client, Listener
from typing import Callable

import botocore.handlers

from embedded.aws import Headers, InProcessTransport

START_TIMEOUT = 60


def _serve(bus_name: str, port: int, address: str, authkey: bytes, control) -> None:
    """The child: moto's app on its port and on the socket until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import gc

    from embedded.aws import Emulator, call_app

    sending = threading.Lock()

    def on_events(events: list[dict]) -> None:
        with sending:
            control.send(("events", events))

    try:
        emulator = Emulator(bus_name, on_events, port).start()
        listener = Listener(address, family="AF_UNIX", authkey=authkey)
    except OSError as exc:
        control.send(("error", str(exc)))
        return

    def answer(connection) -> None:
        with connection:
            while True:
                try:
                    method, url, headers, body = connection.recv()
                except (EOFError, OSError):
                    return
                try:
                    reply = call_app(emulator.app, method, url, headers, body)
                except Exception as exc:  # moto itself broke: an AWS-style 500, not a dead socket
                    reply = (500, [("content-type", "application/json")],
                             json.dumps({"__type": "InternalFailure", "message": repr(exc)}).encode())
                connection.send(reply)

    def accept() -> None:
        while True:
            try:
                connection = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(connection,), name="emulator-call", daemon=True).start()

    threading.Thread(target=accept, name="emulator-accept", daemon=True).start()
    gc.freeze()  # moto and its models live as long as the process
    control.send(("ready", emulator.endpoint_url))
    try:
        while control.recv()[0] != "stop":
            pass
    except (EOFError, OSError):
        pass  # the parent is gone
    listener.close()
    emulator.stop()


class _Connections:
    """Connections to the child's socket, reused by whichever thread needs one next."""

    def __init__(self, address: str, authkey: bytes):
        self.address = address
        self.authkey = authkey
        self._idle: list = []
        self._lock = threading.Lock()

    def call(self, method: str, url: str, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = Client(self.address, family="AF_UNIX", authkey=self.authkey)
        try:
            connection.send((method, url, headers, body))
            reply = connection.recv()
        except BaseException:
            connection.close()
            raise
        with self._lock:
            self._idle.append(connection)
        return reply

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class EmulatorProcess:
    """The Emulator's interface (endpoint_url, start, stop), with moto in a child process. boto3
    sessions created in this process after start() reach it over the socket."""

    def __init__(self, bus_name: str, on_events: Callable[[list[dict]], None], port: int = 0):
        self.bus_name = bus_name
        self.port = port
        self.on_events = on_events
        self.socket_dir = tempfile.mkdtemp(prefix="mangaassist-emulator-")
        self._address = os.path.join(self.socket_dir, "moto.sock")
        self._authkey = secrets.token_bytes(32)
        context = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited threads or locks
        self._control, child_end = context.Pipe()
        self._process = context.Process(target=_serve, name="mangaassist-emulator", daemon=True,
                                        args=(bus_name, port, self._address, self._authkey, child_end))
        self._transport = None
        self.endpoint_url = ""

    def start(self) -> "EmulatorProcess":
        self._process.start()
        if not self._control.poll(START_TIMEOUT):
            self._process.terminate()
            raise OSError("the AWS emulator process did not start")
        kind, value = self._control.recv()
        if kind != "ready":
            self._process.join(5)
            raise OSError(value)
        self.endpoint_url = value
        self._connections = _Connections(self._address, self._authkey)
        self._transport = InProcessTransport(self._connections.call, self.endpoint_url)
        botocore.handlers.BUILTIN_HANDLERS.append(("before-send", self._transport))
        threading.Thread(target=self._pump_events, name="emulator-events", daemon=True).start()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def stop_in_process(self) -> None:
        """Sessions created from now on reach the emulator over its port."""
        if self._transport and ("before-send", self._transport) in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.remove(("before-send", self._transport))

    def _pump_events(self) -> None:
        while True:
            try:
                kind, value = self._control.recv()
            except (EOFError, OSError):
                return
            if kind == "events":
                self.on_events(value)

    def stop(self) -> None:
        self.stop_in_process()
        try:
            self._control.send(("stop",))
        except (OSError, ValueError):
            pass
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        if self._transport:
            self._connections.close()
        for name in os.listdir(self.socket_dir):
            os.unlink(os.path.join(self.socket_dir, name))
        os.rmdir(self.socket_dir)

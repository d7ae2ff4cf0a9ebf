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

import multiprocessing
import os
import queue
import secrets
import select
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from multiprocessing.connection import Client, Listener
from typing import Callable

from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from embedded.aws import Headers, InProcessTransport

START_TIMEOUT = 60
REPLY_TIMEOUT = 60  # longer than any call moto answers (SQS long polls wait at most 20 s)


def _serve(bus_name: str, port: int, address: str, authkey: bytes, control) -> None:
    """The child: moto's app on its port and on the socket until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import gc

    from embedded.aws import Emulator, call_app

    # The tap runs under the emulator's lock: it only queues, so a slow or stuck reader on the
    # other end of the pipe can never stall AWS calls.
    outbox: queue.SimpleQueue = queue.SimpleQueue()
    sending = threading.Lock()

    def send(message) -> None:
        with sending:
            try:
                control.send(message)
            except OSError:
                pass  # the parent is gone; the main loop below ends the process

    def forward() -> None:
        while True:
            send(("events", outbox.get()))

    try:
        emulator = Emulator(bus_name, outbox.put, port).start()
        listener = Listener(address, family="AF_UNIX", authkey=authkey)
    except OSError as exc:
        send(("error", str(exc)))
        return
    threading.Thread(target=forward, name="emulator-events", daemon=True).start()

    def answer(connection) -> None:
        with connection:
            while True:
                try:
                    method, url, headers, body = connection.recv()
                    connection.send(call_app(emulator.app, method, url, headers, body))
                except (EOFError, OSError):
                    return

    def accept() -> None:
        while True:
            try:
                connection = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(connection,), name="emulator-call", daemon=True).start()

    threading.Thread(target=accept, name="emulator-accept", daemon=True).start()
    gc.freeze()  # moto and its models live as long as the process
    send(("ready", emulator.endpoint_url))
    try:
        while control.recv()[0] != "stop":
            pass
    except (EOFError, OSError):
        pass  # the parent is gone
    listener.close()
    emulator.stop()
    shutil.rmtree(os.path.dirname(address), ignore_errors=True)  # a parent that died can't


class _Channel:
    """One connection to the child's socket with its poller: Connection.poll builds a new
    selector on every call, a cost paid on every AWS call the stack makes."""

    def __init__(self, address: str, authkey: bytes):
        self.connection = Client(address, family="AF_UNIX", authkey=authkey)
        self._poller = select.poll()
        self._poller.register(self.connection.fileno(), select.POLLIN)

    def ask(self, message, timeout: float):
        """The reply to `message`, or TimeoutError."""
        self.connection.send(message)
        if not self._poller.poll(timeout * 1000):
            raise TimeoutError
        return self.connection.recv()

    def close(self) -> None:
        self.connection.close()


class _Connections:
    """Connections to the child's socket, reused by whichever thread needs one next."""

    def __init__(self, address: str, authkey: bytes):
        self.address = address
        self.authkey = authkey
        self._idle: list = []
        self._lock = threading.Lock()

    def call(self, method: str, url: str, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        with self._lock:
            channel = self._idle.pop() if self._idle else None
        if channel is None:
            try:
                channel = _Channel(self.address, self.authkey)
            except OSError as exc:
                raise EndpointConnectionError(endpoint_url=url, error=exc) from exc
        try:
            reply = channel.ask((method, url, headers, body), REPLY_TIMEOUT)
        except TimeoutError:
            channel.close()  # a late reply must not answer the next call
            raise ReadTimeoutError(endpoint_url=url) from None
        except (EOFError, OSError) as exc:  # the emulator is gone: what botocore says of a dead endpoint
            channel.close()
            raise EndpointConnectionError(endpoint_url=url, error=exc) from exc
        except BaseException:
            channel.close()
            raise
        with self._lock:
            self._idle.append(channel)
        return reply

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for channel in idle:
            channel.close()


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
        try:
            if not self._control.poll(START_TIMEOUT):
                raise OSError("the AWS emulator process did not start")
            kind, value = self._control.recv()
        except EOFError:
            kind, value = "error", "the AWS emulator process exited while starting"
        except OSError:
            self.stop()
            raise
        if kind != "ready":
            self.stop()
            raise OSError(value)
        self.endpoint_url = value
        self._connections = _Connections(self._address, self._authkey)
        self._transport = InProcessTransport(self._connections.call, self.endpoint_url)
        self._transport.install()
        threading.Thread(target=self._pump_events, name="emulator-events", daemon=True).start()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def stop_in_process(self) -> None:
        """Sessions created from now on reach the emulator over its port."""
        if self._transport:
            self._transport.uninstall()

    def _pump_events(self) -> None:
        while True:
            try:
                kind, value = self._control.recv()
            except (EOFError, OSError):
                return
            if kind != "events":
                continue
            try:
                self.on_events(value)
            except Exception:  # one bad batch must not stop every later event reaching the router
                traceback.print_exc(file=sys.stderr)

    def stop(self) -> None:
        """Idempotent: stops the child, closes connections, removes the socket's folder."""
        self.stop_in_process()
        try:
            self._control.send(("stop",))
        except (OSError, ValueError):
            pass
        if self._process.pid is not None:
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
        if self._transport:
            self._connections.close()
        self._control.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)

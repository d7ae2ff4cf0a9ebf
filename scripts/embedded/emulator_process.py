"""moto in a child process, so the stack uses a second core, and optionally one per service.

Under load the stack spends about half its CPU inside moto and half in the functions, the
router and boto3. In one process they share one core (the GIL); here moto runs in a child of
the stack's process. `shards` gives chosen services a child of their own (PER_SERVICE: S3 and
DynamoDB), as on AWS where they are separate services: a webhook's raw-body put and its
idempotency claim are then answered side by side and no service waits behind another's lock.
None of the platform's wiring crosses these lines (no S3 notifications, no DynamoDB streams);
rules with SQS targets, the archive and replays stay together in the main child.

The stack's own boto3 calls reach the child that owns their service (read from the SigV4
credential scope) over a local Unix socket, one pooled connection per concurrent call, carrying
the request as bytes and getting the response back. The main child also serves the one HTTP
port other clients use (ops.py, the AWS CLI, Terraform) and forwards what belongs to another
child. PutEvents' tap lives in the main child; its events come back over the control pipe to
the router.

Children ignore Ctrl-C, SIGTERM and SIGHUP (a terminal or `kill -- -PGID` signals the whole
process group: the parent decides when to stop, after draining deliveries that still need moto)
and exit when the parent asks or when the parent is gone. With a data folder they restore their
services' state at start, snapshot it while running and save it when they exit, the parent gone
or not (emulator_state.py).

Sockets are in Linux's abstract namespace: nothing on disk to leave behind when a process is
killed. Elsewhere they live in a temporary folder named after the stack's pid; a later start
removes folders whose stack is gone.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import queue
import re
import secrets
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Client, Listener
from pathlib import Path
from urllib.parse import quote, unquote

from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY
from werkzeug.http import HTTP_STATUS_CODES

from embedded.aws import Headers, InProcessTransport, PutEventsTap, accepted_events

START_TIMEOUT = 120  # moto's import, and restoring a large saved state
SAVE_TIMEOUT = 120
REPLY_TIMEOUT = 60  # longer than any call moto answers (SQS long polls wait at most 20 s)
# Services that can have a child of their own (SigV4 signing names), the rest staying in the main
# child: a webhook's raw-body put and its claim are then answered side by side. On two cores that
# buys latency, not throughput, for a little more CPU (see README, Measured), so it is a setting.
PER_SERVICE: tuple[tuple[str, ...], ...] = (("s3",), ("dynamodb",))

_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/[^/]*/([^/,\s]+)/aws4_request")
_PRESIGNED_SCOPE = re.compile(r"(?:^|&)X-Amz-Credential=([^&]*)")
_SIGV2_QUERY = re.compile(r"(?:^|&)AWSAccessKeyId=")


def _dumps(message) -> bytes:
    # AWS calls and their answers are builtins only (str, int, bytes, lists, tuples): plain pickle,
    # not Connection.send's ForkingPickler, which copies the copyreg dispatch table per message.
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


_loads = pickle.loads


def signing_service(authorization: str | None, query: str = "") -> str | None:
    """The service in a SigV4 credential scope: from Authorization, or a presigned URL's query.
    SigV2 (Authorization "AWS key:signature", or AWSAccessKeyId in the query) is S3's alone."""
    if (authorization or "").startswith("AWS ") or _SIGV2_QUERY.search(query or ""):
        return "s3"
    scope = authorization or ""
    if "Credential=" not in scope:
        match = _PRESIGNED_SCOPE.search(query or "")
        scope = "Credential=" + unquote(match.group(1)) if match else ""
    match = _SCOPE.search(scope)
    return match.group(1) if match else None


class _Forward:
    """WSGI in front of the main child's port: requests for a service another child owns go there
    over its socket, as they arrived; the rest go to this child's own app."""

    def __init__(self, app, routes: dict[str, _Connections]):
        self.app = app
        self.routes = routes

    def __call__(self, environ, start_response):
        connections = self.routes.get(signing_service(environ.get("HTTP_AUTHORIZATION"), environ.get("QUERY_STRING")))
        if connections is None:
            return self.app(environ, start_response)
        stream, length = environ["wsgi.input"], environ.get("CONTENT_LENGTH")
        body = stream.read(int(length)) if length else stream.read() if environ.get("wsgi.input_terminated") else b""
        target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or (
            quote(environ.get("PATH_INFO", "/"))
            + (f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else ""))
        preserved = environ.get(PRESERVED_HEADER_NAMES_ENVIRON_KEY) or {}
        headers = [(preserved.get(key) or key[5:].replace("_", "-"), value)
                   for key, value in environ.items() if key.startswith("HTTP_")]
        if environ.get("CONTENT_TYPE"):
            headers.append(("Content-Type", environ["CONTENT_TYPE"]))
        try:
            status, response_headers, content = connections.call(
                environ["REQUEST_METHOD"], f"http://{environ.get('HTTP_HOST', '127.0.0.1')}{target}", headers, body)
        except Exception as exc:  # that child is gone: an AWS-style 500, as moto's server would answer
            status, response_headers = 500, [("Content-Type", "application/json")]
            content = json.dumps({"__type": "InternalFailure", "message": repr(exc)}).encode()
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN')}", response_headers)
        return [content]


def _owner(services: tuple[str, ...], others: tuple[str, ...]) -> Callable[[str], bool]:
    """Which moto services a child keeps state for: its own, or (the main child) all but the others'."""
    if services:
        return lambda service: service in services
    return lambda service: service not in others


def _serve(bus_name: str, port: int, address: str, authkey: bytes, control,
           routes: dict[str, str] | None = None, state: dict | None = None, appconfig: dict | None = None) -> None:
    """A child: moto's app on its port and on its socket until told to stop. `routes` (service
    -> socket address) are the other children, for what the port receives on their behalf.
    `state` (folder, file, services, others, interval): where its moto state is kept.
    `appconfig` (application, environment, profile, flags_file, account, region): AppConfig's data
    API, which moto lacks, served from this child beside moto's control plane (appconfig_data.py)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    import gc

    from embedded import moto_speedups
    from embedded.aws import Emulator, call_app
    from embedded.emulator_state import Restored, Snapshots, restore

    moto_speedups.apply()  # this process only: checked against the installed moto's source, a warning line per skip

    forwards = {service: _Connections(other, authkey) for service, other in (routes or {}).items()}

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

    state_of = state or {}
    restored, owned = Restored(), _owner(tuple(state_of.get("services", ())), tuple(state_of.get("others", ())))
    try:
        if state:
            restored = restore(Path(state["folder"]), owned, state["file"])
        # Calls through the socket are the parent's, which reports their PutEvents itself.
        extensions = []
        if appconfig:
            from embedded.appconfig_data import AppConfigData, moto_hosted, wants

            extensions.append((wants, AppConfigData(
                application=appconfig["application"], environment=appconfig["environment"],
                profile=appconfig["profile"], flags_file=Path(appconfig["flags_file"]),
                hosted=moto_hosted(appconfig["account"], appconfig["region"]))))
        emulator = Emulator(bus_name, outbox.put, port, tap_in_process=False, extensions=extensions,
                            front=(lambda app: _Forward(app, forwards)) if forwards else None)
        emulator.start()
        listener = Listener(address, family="AF_UNIX", authkey=authkey)
    except OSError as exc:
        send(("error", str(exc)))
        return
    snapshots = Snapshots(Path(state["folder"]) / state["file"], emulator.app.lock, owned, float(state["interval"]),
                          calls=lambda: emulator.app.calls) if state else None
    if snapshots:
        snapshots.start()
    threading.Thread(target=forward, name="emulator-events", daemon=True).start()
    _answer_calls(listener, lambda message: call_app(emulator.app, *message))
    gc.freeze()  # moto and its models live as long as the process
    send(("ready", {"endpoint": emulator.endpoint_url, "restored": sorted(restored.services),
                    "taken_at": restored.taken_at, "skipped": restored.skipped}))
    try:
        while control.recv()[0] != "stop":
            pass
    except (EOFError, OSError):
        pass  # the parent is gone: save what it left, then go
    listener.close()
    if snapshots:
        snapshots.stop()
        try:
            send(("saved", snapshots.save()))
        except Exception as exc:  # a full disk: say so, the last snapshot stays
            send(("saved", {"error": f"{type(exc).__name__}: {exc}"}))
    emulator.stop()
    for connections in forwards.values():
        connections.close()
    _remove_socket(address)


def _answer_calls(listener, answer: Callable[[tuple], tuple]) -> None:
    """Every connection to the socket served by one _CallLoop."""
    calls = _CallLoop(answer)

    def accept() -> None:
        while True:
            try:
                connection = listener.accept()
            except OSError:
                return
            calls.join(connection)

    threading.Thread(target=calls.run, name="emulator-calls", daemon=True).start()
    threading.Thread(target=accept, name="emulator-accept", daemon=True).start()


def _remove_socket(address: str) -> None:
    if address.startswith("\0"):  # abstract: nothing on disk
        return
    for leftover in (lambda: os.unlink(address), lambda: os.rmdir(os.path.dirname(address))):
        try:
            leftover()
        except OSError:
            pass  # another child's socket is still there: the last child out removes the folder


def _unlocked(headers: Headers) -> bool:
    return any(name.lower() == "x-amz-target" and value in PutEventsTap.UNLOCKED for name, value in headers)


class _CallLoop:
    """Answers every connection's calls from one thread, a call at a time.

    moto answers one call at a time anyway (PutEventsTap's lock); a thread per connection only
    made a score of threads wake, fight for the interpreter lock and then wait on moto's, several
    context switches per call. Calls that must not hold the others up (SQS long polls, as
    PutEventsTap leaves them unlocked) get a thread of their own, and their connection rejoins
    the loop once answered.
    """

    def __init__(self, answer: Callable[[tuple], tuple]):
        self.answer = answer
        self._arrivals: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()

    def join(self, connection) -> None:
        """Thread-safe: the loop serves this connection from its next turn."""
        self._arrivals.put(connection)
        os.write(self._wake_w, b"\0")

    def _answer_apart(self, connection, message: tuple) -> None:
        try:
            connection.send_bytes(_dumps(self.answer(message)))
        except OSError:
            connection.close()
            return
        self.join(connection)

    def run(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        served: dict[int, object] = {}

        def drop(fd: int) -> None:
            poller.unregister(fd)
            served.pop(fd)

        while True:
            for fd, _ in poller.poll():
                if fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                    while not self._arrivals.empty():
                        connection = self._arrivals.get()
                        served[connection.fileno()] = connection
                        poller.register(connection.fileno(), select.POLLIN)
                    continue
                connection = served[fd]
                try:
                    message = _loads(connection.recv_bytes())
                    if _unlocked(message[2]):
                        drop(fd)
                        threading.Thread(target=self._answer_apart, args=(connection, message),
                                         name="emulator-long-call", daemon=True).start()
                        continue
                    connection.send_bytes(_dumps(self.answer(message)))
                except (EOFError, OSError):  # that client is gone
                    drop(fd)
                    connection.close()
                except Exception:  # never the loop: that caller sees its connection close
                    traceback.print_exc(file=sys.stderr)
                    drop(fd)
                    connection.close()


class _Channel:
    """One connection to the child's socket with its poller: Connection.poll builds a new
    selector on every call, a cost paid on every AWS call the stack makes."""

    def __init__(self, address: str, authkey: bytes):
        self.connection = Client(address, family="AF_UNIX", authkey=authkey)
        self._poller = select.poll()
        self._poller.register(self.connection.fileno(), select.POLLIN)

    def ask(self, message, timeout: float):
        """The reply to `message`, or TimeoutError."""
        self.connection.send_bytes(_dumps(message))
        if not self._poller.poll(timeout * 1000):
            raise TimeoutError
        return _loads(self.connection.recv_bytes())

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


class _Child:
    """One moto child: its process, its control pipe, its socket and the connections to it."""

    def __init__(self, context, name: str, bus_name: str, port: int, address: str, authkey: bytes,
                 routes: dict[str, str], state: dict | None, appconfig: dict | None = None):
        self.name = name
        self.address = address
        self.control, child_end = context.Pipe()
        self.process = context.Process(target=_serve, name=f"mangaassist-emulator-{name}", daemon=True,
                                       args=(bus_name, port, address, authkey, child_end, routes, state, appconfig))
        self.connections = _Connections(address, authkey)
        self.endpoint_url = ""
        self.ready: dict = {}
        self.saved: dict | None = None
        self._saved = threading.Event()
        self.on_events: Callable[[list[dict]], None] | None = None

    def wait_ready(self) -> None:
        try:
            if not self.control.poll(START_TIMEOUT):
                raise OSError(f"the AWS emulator process ({self.name}) did not start")
            kind, value = self.control.recv()
        except EOFError:
            kind, value = "error", f"the AWS emulator process ({self.name}) exited while starting"
        if kind != "ready":
            raise OSError(value)
        self.ready = value
        self.endpoint_url = value["endpoint"]
        threading.Thread(target=self._listen, name=f"emulator-{self.name}-control", daemon=True).start()

    def _listen(self) -> None:
        """What the child says after it is ready: events accepted over its port, and "saved"."""
        while True:
            try:
                kind, value = self.control.recv()
            except (EOFError, OSError):
                self._saved.set()
                return
            if kind == "saved":
                self.saved = value
                self._saved.set()
            elif kind == "events" and self.on_events is not None:
                try:
                    self.on_events(value)
                except Exception:  # one bad batch must not stop every later event reaching the router
                    traceback.print_exc(file=sys.stderr)

    def stop(self) -> None:
        try:
            self.control.send(("stop",))
        except (OSError, ValueError):
            pass
        if self.process.pid is not None:
            self._saved.wait(SAVE_TIMEOUT)
            self.process.join(10)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(5)
        self.connections.close()
        self.control.close()


def _socket_folder() -> str | None:
    """None on Linux (abstract sockets); elsewhere a temporary folder named after this process,
    after removing those of stacks that are gone."""
    if sys.platform.startswith("linux"):
        return None
    root = Path(tempfile.gettempdir())
    for folder in root.glob("mangaassist-emulator-*"):
        owner = folder.name.split("-")[2]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"mangaassist-emulator-{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmulatorProcess:
    """The Emulator's interface (endpoint_url, start, stop), with moto in child processes. boto3
    sessions created in this process after start() reach them over their sockets.

    With ``state_folder``, each child restores its services from there at start, snapshots them
    every ``snapshot_seconds`` (0: only at stop) and saves them at stop (emulator_state.py).
    """

    def __init__(self, bus_name: str, on_events: Callable[[list[dict]], None], port: int = 0,
                 shards: tuple[tuple[str, ...], ...] = (), state_folder: Path | None = None,
                 snapshot_seconds: float = 0.0, appconfig: dict | None = None):
        self.bus_name = bus_name
        self.port = port
        self.on_events = on_events
        self.socket_dir = _socket_folder()
        tag = f"mangaassist-emulator-{os.getpid()}-{secrets.token_hex(4)}"
        address = (lambda i: f"\0{tag}-{i}") if self.socket_dir is None else (
            lambda i: os.path.join(self.socket_dir, f"{i}.sock"))
        authkey = secrets.token_bytes(32)
        context = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited threads or locks
        sharded = tuple(service for services in shards for service in services)

        def state(name: str, services: tuple[str, ...]) -> dict | None:
            if state_folder is None:
                return None
            return {"folder": str(state_folder), "file": f"{name}.pickle", "services": services, "others": sharded,
                    "interval": snapshot_seconds}

        names = ["-".join(services) for services in shards]
        self._shards = [_Child(context, name, bus_name, 0, address(i), authkey, {}, state(name, services))
                        for i, (name, services) in enumerate(zip(names, shards), 1)]
        routes = {service: child for services, child in zip(shards, self._shards) for service in services}
        self._main = _Child(context, "main", bus_name, port, address(0), authkey,
                            {service: child.address for service, child in routes.items()}, state("main", ()),
                            appconfig)
        self._main.on_events = on_events
        self._by_service = {service: child.connections for service, child in routes.items()}
        self._children = [self._main, *self._shards]
        self._transport = None
        self.endpoint_url = ""

    def start(self) -> EmulatorProcess:
        for child in self._children:  # they import moto side by side
            child.process.start()
        try:
            for child in self._children:
                child.wait_ready()
        except OSError:
            self.stop()
            raise
        self.endpoint_url = self._main.endpoint_url
        self._transport = InProcessTransport(self._call, self.endpoint_url)
        self._transport.install()
        return self

    @property
    def restored(self) -> dict:
        """What the children restored: services, the oldest snapshot's time, what was skipped."""
        taken = [c.ready.get("taken_at") for c in self._children if c.ready.get("restored")]
        return {"services": sorted({s for c in self._children for s in c.ready.get("restored", [])}),
                "taken_at": min(taken) if taken else None,
                "skipped": [line for c in self._children for line in c.ready.get("skipped", [])]}

    def _call(self, method: str, url: str, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        if not self._by_service:  # one child (the default): no scope to read on every call
            answer = self._main.connections.call(method, url, headers, body)
        else:
            authorization = next((value for name, value in headers if name.lower() == "authorization"), None)
            service = signing_service(authorization, url.partition("?")[2])
            answer = self._by_service.get(service, self._main.connections).call(method, url, headers, body)
        if answer[0] == 200 and _is_put_events(headers):
            # Reported before PutEvents returns: an event is archived before the caller hears it
            # was accepted (the ingress answers 202 only then). If the router cannot take them,
            # the call fails as AWS fails it, and the caller retries or answers 503.
            authorization = next((value for name, value in headers if name.lower() == "authorization"), "")
            events = accepted_events(body, answer[2], authorization, self.bus_name)
            try:
                if events:
                    self.on_events(events)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                return 500, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(
                    {"__type": "InternalFailure", "message": f"the local bus could not record the events: {exc!r}"}
                ).encode()
        return answer

    @property
    def pid(self) -> int | None:
        """The main child's (it serves the port)."""
        return self._main.process.pid

    @property
    def pids(self) -> list[int | None]:
        return [child.process.pid for child in self._children]

    def is_alive(self) -> bool:
        return any(child.process.is_alive() for child in self._children)

    def stop_in_process(self) -> None:
        """Sessions created from now on reach the emulator over its port."""
        if self._transport:
            self._transport.uninstall()

    def stop(self) -> dict:
        """Idempotent: stops the children (each saves its state first), closes connections,
        removes the sockets' folder. What was saved: bytes, seconds, errors."""
        self.stop_in_process()
        started = time.monotonic()
        for child in self._children:
            child.stop()
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        saved = [child.saved for child in self._children if child.saved]
        return {"bytes": sum(s.get("bytes", 0) for s in saved), "seconds": round(time.monotonic() - started, 2),
                "errors": [f"{c.name}: {c.saved['error']}" for c in self._children if c.saved and "error" in c.saved]}


def _is_put_events(headers: Headers) -> bool:
    return any(value == "AWSEvents.PutEvents" and name.lower() == "x-amz-target" for name, value in headers)

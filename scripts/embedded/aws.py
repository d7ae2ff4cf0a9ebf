"""moto's server on loopback, with a tap on PutEvents, and a way in without the socket.

moto stores rules and targets but cannot deliver to Lambda targets (PutEvents fails), and never
runs retry policies or DLQs. So the stack lets moto answer every AWS call, and the tap hands
each event moto accepted for our bus, as the envelope EventBridge would deliver, to the local
router, which does the matching, retries, DLQs and archive with the platform's own code.
The stack's own calls reach the same app through call_app (InProcessTransport, DirectDispatch).
"""
from __future__ import annotations

import io
import json
import re
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from urllib.parse import unquote, urlsplit

import botocore.auth
import botocore.handlers
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.exceptions import ClientError, NoCredentialsError
from moto.core.botocore_stubber import MockRawResponse
from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    should_preserve_original_header_name,
)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.serving import make_server

ACCOUNT_ID = "123456789012"  # moto's default account
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def envelope(entry: dict, event_id: str, region: str) -> dict:
    """The event as EventBridge delivers it to targets, from a PutEvents entry."""
    when = entry.get("Time")
    if isinstance(when, (int, float)):
        when = datetime.fromtimestamp(when, UTC)
    elif isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    else:
        when = datetime.now(UTC)
    return {
        "version": "0",
        "id": event_id,
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": ACCOUNT_ID,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": entry.get("Resources") or [],
        "detail": json.loads(entry.get("Detail") or "{}"),
    }


def accepted_events(request: bytes, response: bytes, authorization: str, bus_name: str) -> list[dict]:
    """The envelopes of the events a successful PutEvents accepted for ``bus_name``."""
    match = _REGION.search(authorization or "")
    region = match.group(1) if match else "us-east-1"
    events = []
    for entry, result in zip(json.loads(request).get("Entries", []), json.loads(response).get("Entries", [])):
        bus = (entry.get("EventBusName") or "default").rsplit("/", 1)[-1]
        if bus == bus_name and "EventId" in result:
            events.append(envelope(entry, result["EventId"], region))
    return events


class PutEventsTap:
    """WSGI middleware in front of moto: one request at a time, and a tap on one bus's PutEvents.

    moto's backends are plain Python objects: two threads can both pass a DynamoDB condition
    check before either writes, which real DynamoDB never allows. Serialising requests keeps
    conditional writes (idempotency claims, breaker state) atomic. SQS long polls are left out
    of the lock, or one idle consumer would stall every other call.

    With ``tap_in_process=False`` the calls that come through call_app are not tapped: their
    caller reports them itself (EmulatorProcess, so that an event is archived before PutEvents
    answers). ``calls`` counts every call, for the state snapshots' "anything changed?".
    """

    UNLOCKED = {"AmazonSQS.ReceiveMessage"}

    def __init__(self, app, bus_name: str, on_events: Callable[[list[dict]], None], direct=None,
                 tap_in_process: bool = True, extensions: list | None = None):
        self.extensions = list(extensions or [])  # (wants(environ), WSGI app): APIs moto lacks
        self.full_app = app
        self.direct_app = direct or app
        self.bus_name = bus_name
        self.on_events = on_events
        self.tap_in_process = tap_in_process
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        in_process = environ.get(IN_PROCESS)
        app = self.direct_app if in_process else self.full_app
        target = environ.get("HTTP_X_AMZ_TARGET")
        self.calls += 1
        for wants, extension in self.extensions:
            if wants(environ):
                return extension(environ, start_response)
        if target in self.UNLOCKED:
            return app(environ, start_response)
        with self.lock:
            if target != "AWSEvents.PutEvents" or (in_process and not self.tap_in_process):
                return list(app(environ, start_response))
            return self._put_events(app, environ, start_response)

    def _put_events(self, app, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            return start_response(status, headers, exc_info)

        chunks = list(app(environ, capture))
        if captured.get("status", "").startswith("200"):
            events = accepted_events(body, b"".join(chunks), environ.get("HTTP_AUTHORIZATION", ""), self.bus_name)
            if events:
                self.on_events(events)
        return chunks


IN_PROCESS = "mangaassist.in_process"  # environ key: the request came through call_app, not the port


class DirectDispatch:
    """moto's dispatch without Flask's request machinery, for the stack's own calls.

    The same service lookup, URL rules, request class and response methods as the Flask app
    (moto's responses never read Flask's request context); what it leaves out is the request
    context, before/after hooks and CORS headers, a quarter of the emulator's time per call.
    Anything that is not a plain moto response method goes to the full app.
    """

    def __init__(self, dispatcher: DomainDispatcherApplication):
        self.dispatcher = dispatcher

    def __call__(self, environ, start_response):
        app = self.dispatcher.get_application(environ)
        try:
            endpoint, _ = app.url_map.bind_to_environ(environ).match()
            callback = app.view_functions[endpoint].callback
        except (HTTPException, AttributeError, KeyError):
            return app(environ, start_response)
        request = app.request_class(environ)
        try:
            result = callback(request, request.raw_url, dict(request.headers))
        except HTTPException as exc:  # moto's service errors are werkzeug responses
            return exc(environ, start_response)
        except ClientError as exc:  # as convert_to_flask_response answers it
            result = 400, {}, exc.response["Error"]["Message"]
        finally:
            request.close()
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        body = content.encode() if isinstance(content, str) else (content or b"")
        headers = {str(k): str(v) for k, v in dict(headers).items()}
        names = {k.lower() for k in headers}
        if not (request.method == "HEAD" and "content-length" in names):
            headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            headers["Content-Length"] = str(len(body))
        if "content-type" not in names:
            headers["Content-Type"] = "text/html; charset=utf-8"  # Flask's default
        code = int(str(status).split(" ", 1)[0])  # moto answers 200, "200" or "200 OK"
        start_response(f"{code} {HTTP_STATUS_CODES.get(code, 'UNKNOWN')}", list(headers.items()))
        return [body]


def _latin1(text: str) -> str:
    return text.encode().decode("latin-1")  # PEP 3333: environ strings carry bytes as latin-1


Headers = list[tuple[str, str]]


def call_app(app, method: str, url: str, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    """One HTTP request answered by a WSGI app without a socket, from the environ werkzeug's
    server and moto's request handler would build for it."""
    split = urlsplit(url)
    target = split.path + (f"?{split.query}" if split.query else "")
    environ = {
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": _latin1(unquote(split.path)),
        "QUERY_STRING": _latin1(split.query), "REQUEST_URI": _latin1(target), "RAW_URI": _latin1(target),
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": 0, "SERVER_NAME": split.hostname or "",
        "SERVER_PORT": str(split.port or 80), "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": split.netloc,
    }
    # As werkzeug and moto's request handler do: headers with underscores are dropped, except S3
    # metadata, which keeps its spelling and never stands in for a dashed header.
    dashed = {environ_key_for_header(name) for name, _ in headers if "_" not in name}
    preserved = {}
    for name, value in headers:
        key = environ_key_for_header(name)
        if key == "HTTP_TRANSFER_ENCODING":
            continue  # the whole body is here already
        if "_" in name:
            if not should_preserve_original_header_name(name) or key in dashed:
                continue
            preserved.setdefault(key, name)
        environ[key] = value
    environ["CONTENT_LENGTH"] = str(len(body))
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved
    environ[IN_PROCESS] = True
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started.update(status=int(status.split(" ", 1)[0]), headers=list(response_headers))
        return lambda data: None

    try:
        chunks = app(environ, start_response)
        try:
            content = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
    except Exception as exc:  # moto itself broke: an AWS-style 500, as its server would answer
        return 500, [("Content-Type", "application/json")], json.dumps(
            {"__type": "InternalFailure", "message": repr(exc)}).encode()
    return started["status"], started["headers"], content


class _LocalSigning:
    """SigV4 without the hashing, for requests the in-process transport carries.

    moto reads the credential scope (access key, region, service) from Authorization and never
    checks a signature; computing one (a SHA-256 of the body and canonical request, five HMACs)
    was a fifth of the stack's CPU under load. Requests to any other URL are signed as botocore
    always does. Mixed in front of botocore's v4 signers while a transport is installed.
    """

    prefixes: list[str] = []  # the installed transports' endpoints

    def add_auth(self, request):
        if not any((request.url + "/").startswith(prefix) for prefix in self.prefixes):
            return super().add_auth(request)
        if self.credentials is None:
            raise NoCredentialsError()
        stamp = datetime.now(UTC).strftime(botocore.auth.SIGV4_TIMESTAMP)
        request.context["timestamp"] = stamp
        headers = request.headers
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in headers:
                del headers[name]
        headers["X-Amz-Date"] = stamp
        if self.credentials.token:
            headers["X-Amz-Security-Token"] = self.credentials.token
        if isinstance(self, botocore.auth.S3SigV4Auth) and "X-Amz-Content-SHA256" not in headers:
            headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"  # S3's value for a body it does not hash
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.scope(request)}, "
                                    f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}")


class _LocalSigV4(_LocalSigning, botocore.auth.SigV4Auth):
    pass


class _LocalS3SigV4(_LocalSigning, botocore.auth.S3SigV4Auth):
    pass


_SIGNERS = {"v4": _LocalSigV4, "s3v4": _LocalS3SigV4}
_SIGNERS_REPLACED: dict = {}


class InProcessTransport:
    """A botocore `before-send` hook that hands requests for the emulator's URL to `call`
    (method, url, headers, body) -> (status, headers, body) instead of a socket.

    The stack's functions, router and queue pollers going over loopback TCP cost a socket, a
    server thread and two HTTP parsers per AWS call: about a third of the stack's CPU. Clients in
    other processes (ops.py, tests, the AWS CLI) still use the port. This is the hook moto's own
    mock_aws uses, pointed at the server's app (or at the emulator process, emulator_process.py).
    """

    def __init__(self, call: Callable[[str, str, Headers, bytes], tuple[int, Headers, bytes]], endpoint_url: str):
        self.call = call
        self.prefix = endpoint_url.rstrip("/") + "/"

    def __call__(self, request, **kwargs):
        if not (request.url + "/").startswith(self.prefix):
            return None  # some other endpoint: let botocore send it
        body = request.body or b""
        if hasattr(body, "read"):
            body = body.read()
        elif isinstance(body, str):
            body = body.encode()
        headers = [(name, value.decode("latin-1") if isinstance(value, bytes) else value)
                   for name, value in request.headers.items()]
        status, response_headers, content = self.call(request.method, request.url, headers, body)
        # As urllib3's headers reach botocore: case-insensitive, a repeated header's values joined.
        # (A dict, not http.client's email.Message: that cost a tenth of each call.)
        merged = HeadersDict()
        for name, value in response_headers:
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        return AWSResponse(request.url, status, merged, MockRawResponse(content))

    def install(self) -> None:
        """boto3 sessions created from now on use this transport (they read botocore's built-in
        handlers when they are created), and requests to the emulator skip SigV4's hashing."""
        if ("before-send", self) in botocore.handlers.BUILTIN_HANDLERS:
            return  # installed once, or one uninstall() would leave it half in place
        botocore.handlers.BUILTIN_HANDLERS.append(("before-send", self))
        if not _LocalSigning.prefixes:
            for name, signer in _SIGNERS.items():
                _SIGNERS_REPLACED[name] = botocore.auth.AUTH_TYPE_MAPS[name]
                botocore.auth.AUTH_TYPE_MAPS[name] = signer
        _LocalSigning.prefixes.append(self.prefix)

    def uninstall(self) -> None:
        """Sessions created from now on reach the emulator over its port, signed as usual."""
        if ("before-send", self) in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.remove(("before-send", self))
            _LocalSigning.prefixes.remove(self.prefix)
            if not _LocalSigning.prefixes:
                botocore.auth.AUTH_TYPE_MAPS.update(_SIGNERS_REPLACED)


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # one line per AWS call drowns the stack's output
        pass


class Emulator:
    """moto on 127.0.0.1:<free port> in a background thread.

    With `in_process`, boto3 clients created in this process after start() reach the same app
    without the socket (InProcessTransport); everything else reaches it over the port.
    """

    def __init__(self, bus_name: str, on_events: Callable[[list[dict]], None], port: int = 0, in_process: bool = False,
                 front: Callable | None = None, tap_in_process: bool = True, extensions: list | None = None):
        """`front` wraps the app for requests that come through the port; `tap_in_process`, `extensions`:
        see PutEventsTap."""
        dispatcher = DomainDispatcherApplication(create_backend_app)
        self.app = PutEventsTap(dispatcher, bus_name, on_events, direct=DirectDispatch(dispatcher),
                                tap_in_process=tap_in_process, extensions=extensions)
        self._server = make_server("127.0.0.1", port, front(self.app) if front else self.app, threaded=True,
                                   request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._transport = InProcessTransport(partial(call_app, self.app), self.endpoint_url) if in_process else None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Emulator:
        self._thread.start()
        if self._transport:
            self._transport.install()
        return self

    def stop_in_process(self) -> None:
        """Sessions created from now on reach the emulator over the port."""
        if self._transport:
            self._transport.uninstall()

    def stop(self) -> None:
        self.stop_in_process()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

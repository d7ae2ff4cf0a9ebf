"""moto's server on loopback, with a tap on PutEvents.

moto stores rules and targets but cannot deliver to Lambda targets (PutEvents fails), and never
runs retry policies or DLQs. So the stack lets moto answer every AWS call, and the tap hands
each event moto accepted for our bus, as the envelope EventBridge would deliver, to the local
router, which does the matching, retries, DLQs and archive with the platform's own code.
"""
from __future__ import annotations

import io
import json
import re
import threading
from datetime import datetime, timezone
from typing import Callable

import moto.backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

# moto's dispatcher lists its package directory on every request to find the service; the list
# never changes while the process runs, and listing it was a tenth of the stack's CPU time.
_MODULES = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MODULES

ACCOUNT_ID = "123456789012"  # moto's default account
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def envelope(entry: dict, event_id: str, region: str) -> dict:
    """The event as EventBridge delivers it to targets, from a PutEvents entry."""
    when = entry.get("Time")
    if isinstance(when, (int, float)):
        when = datetime.fromtimestamp(when, timezone.utc)
    elif isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    else:
        when = datetime.now(timezone.utc)
    return {
        "version": "0",
        "id": event_id,
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": ACCOUNT_ID,
        "time": when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": entry.get("Resources") or [],
        "detail": json.loads(entry.get("Detail") or "{}"),
    }


class PutEventsTap:
    """WSGI middleware in front of moto: one request at a time, and a tap on one bus's PutEvents.

    moto's backends are plain Python objects: two threads can both pass a DynamoDB condition
    check before either writes, which real DynamoDB never allows. Serialising requests keeps
    conditional writes (idempotency claims, breaker state) atomic. SQS long polls are left out
    of the lock, or one idle consumer would stall every other call.
    """

    UNLOCKED = {"AmazonSQS.ReceiveMessage"}

    def __init__(self, app, bus_name: str, on_events: Callable[[list[dict]], None]):
        self.app = app
        self.bus_name = bus_name
        self.on_events = on_events
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target in self.UNLOCKED:
            return self.app(environ, start_response)
        with self._lock:
            if target != "AWSEvents.PutEvents":
                return list(self.app(environ, start_response))
            return self._put_events(environ, start_response)

    def _put_events(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            return start_response(status, headers, exc_info)

        chunks = list(self.app(environ, capture))
        if captured.get("status", "").startswith("200"):
            self._report(json.loads(body), json.loads(b"".join(chunks)), environ)
        return chunks

    def _report(self, request: dict, response: dict, environ) -> None:
        match = _REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = match.group(1) if match else "us-east-1"
        events = []
        for entry, result in zip(request.get("Entries", []), response.get("Entries", [])):
            bus = (entry.get("EventBusName") or "default").rsplit("/", 1)[-1]
            if bus == self.bus_name and "EventId" in result:
                events.append(envelope(entry, result["EventId"], region))
        if events:
            self.on_events(events)


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # one line per AWS call drowns the stack's output
        pass


class Emulator:
    """moto on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, bus_name: str, on_events: Callable[[list[dict]], None], port: int = 0):
        app = PutEventsTap(DomainDispatcherApplication(create_backend_app), bus_name, on_events)
        self._server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "Emulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

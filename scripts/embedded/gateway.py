"""HTTP on 127.0.0.1:PORT, turned into exactly the events AWS hands to Lambda.

- ``/webhooks/{source}`` (any method): a Lambda function URL event, payload format 2.0.
- the REST routes in wiring.json: API Gateway REST proxy events (format 1.0), API key checked
  like a usage plan does (403 ``{"message": "Forbidden"}``).
- ``/_local/...``: the stack's own controls (deliveries, faults, replay, invoke) and a page.
"""
from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from mangaassist import after_response

PAGE = Path(__file__).with_name("page.html")
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
              "application/x-www-form-urlencoded", "+json", "+xml")


def is_text(content_type: str, body: bytes) -> bool:
    if not any(t in content_type for t in TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def function_url_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict:
    """Payload format 2.0, as a function URL sends it: lowercased headers, base64 for binary."""
    split = urlsplit(target)
    now = datetime.now(UTC)
    text = is_text(headers.get("content-type", ""), body)
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": split.path,
        "rawQueryString": split.query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {"method": method, "path": split.path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not text and bool(body),
    }
    if split.query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in parse_qs(split.query).items()}
    if body:
        event["body"] = body.decode("utf-8") if text else base64.b64encode(body).decode()
    return event


def route_pattern(path: str) -> re.Pattern:
    """/v1/products/{id} -> a regex with a named group per path parameter."""
    return re.compile("^" + re.sub(r"\{([A-Za-z0-9_]+)\+?\}", r"(?P<\1>[^/]+)", path) + "$")


def rest_proxy_event(method: str, resource: str, target: str, headers: dict[str, str], body: bytes,
                     params: dict, source_ip: str, api_key: str | None) -> dict:
    """API Gateway REST proxy integration event (format 1.0)."""
    split = urlsplit(target)
    query = parse_qs(split.query)
    text = is_text(headers.get("content-type", ""), body) or not body
    return {
        "resource": resource,
        "path": split.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/local{split.path}",
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "123456789012",
            "apiId": "local",
            "identity": {"sourceIp": source_ip, "apiKey": api_key, "userAgent": headers.get("user-agent")},
        },
        "body": (body.decode("utf-8") if text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": not text,
    }


class Gateway(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: while the process is busy, a burst of partners'
    # connections overflows it and the kernel drops their SYNs, which clients only retry after
    # 1 s, then 3 s... (that was the benchmark's multi-second p99).
    request_queue_size = 1024

    def __init__(self, port: int, stack):
        self.stack = stack
        routes = stack.wiring_doc.get("routes", {})
        self.routes = []
        for key, spec in routes.items():
            method, path = key.split(" ", 1)
            self.routes.append((method, path, route_pattern(path), spec))
        super().__init__(("127.0.0.1", port), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Gateway
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # the page and /_local/deliveries say what happened
        pass

    def _headers(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for key, value in self.headers.items():
            key = key.lower()
            merged[key] = f"{merged[key]},{value}" if key in merged else value
        return merged

    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body, headers: dict | None = None, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        headers.setdefault("content-type", content_type)
        for key, value in headers.items():
            self.send_header(key, str(value))
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_lambda_result(self, result) -> None:
        """A handler's return value as function URLs and proxy integrations render it."""
        if not isinstance(result, dict) or "statusCode" not in result:
            self._send(200, json.dumps(result))
            return
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        headers = dict(result.get("headers") or {})
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key] = ",".join(map(str, values))
        self._send(int(result["statusCode"]), data, headers)

    def _invoke_and_answer(self, function: str, event: dict) -> None:
        # As on Lambda, what the function deferred (mangaassist.after_response) runs once the
        # answer is sent, and this connection takes its next request only after that.
        later = after_response.Later()
        try:
            with later:
                result = self.server.stack.functions.invoke(function, event)
            self._send_lambda_result(result)
        finally:
            later.run()

    def _handle(self) -> None:
        try:
            self._dispatch()
        except Exception as exc:  # a crash in a handler is a 502 from API Gateway, not a dead socket
            self._send(502, {"message": "Internal server error", "error": type(exc).__name__})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def _dispatch(self) -> None:
        stack = self.server.stack
        # http.server reads the request line as Latin-1; clients such as curl send raw UTF-8.
        self.path = self.path.encode("latin-1").decode("utf-8", "replace")
        path = urlsplit(self.path).path
        headers, body = self._headers(), self._body()
        if path.startswith("/_local"):
            self._local(path, body)
            return
        if path.startswith("/webhooks/"):
            event = function_url_event(self.command, self.path, headers, body, self.client_address[0])
            self._invoke_and_answer("webhook_ingress", event)
            return
        for method, resource, pattern, spec in self.server.routes:
            match = pattern.match(path)
            if match and method in (self.command, "ANY"):
                api_key = headers.get("x-api-key")
                if spec.get("api_key_required", True) and api_key != stack.api_key:
                    self._send(403, {"message": "Forbidden"})
                    return
                event = rest_proxy_event(self.command, resource, self.path, headers, body, match.groupdict(),
                                         self.client_address[0], api_key)
                self._invoke_and_answer(spec["function"], event)
                return
        known = any(pattern.match(path) for _, _, pattern, _ in self.server.routes)
        self._send(405 if known else 404, {"error": "method_not_allowed" if known else "not_found",
                                           "message": f"no route for {self.command} {path}"})

    # --- the stack's own controls -----------------------------------------------------------
    def _local(self, path: str, body: bytes) -> None:
        stack = self.server.stack
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            self._send(400, {"error": "invalid_json", "message": "body is not JSON"})
            return
        if path in ("/_local", "/_local/") and self.command == "GET":
            self._send(200, PAGE.read_bytes(), content_type="text/html; charset=utf-8")
        elif path == "/_local/deliveries" and self.command == "GET":
            self._send(200, {"deliveries": stack.router.log.records(), "faults": stack.functions.faults(),
                             "archive": {"events": stack.archive.event_count, "size_bytes": stack.archive.size_bytes}})
        elif path == "/_local/stack" and self.command == "GET":
            self._send(200, stack.description())
        elif path == "/_local/faults" and self.command == "POST":
            target, count = payload.get("target"), payload.get("fail_next")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                self._send(400, {"error": "invalid_request", "message": "fail_next must be an integer >= 0"})
                return
            try:
                stack.functions.inject_faults(target, count)
            except KeyError:
                self._send(404, {"error": "unknown_target", "message": f"no function named {target!r}"})
                return
            self._send(200, {"target": target, "fail_next": count})
        elif path == "/_local/replays" and self.command == "POST":
            self._replay(payload)
        elif path.startswith("/_local/invoke/") and self.command == "POST":
            function = path.rsplit("/", 1)[-1]
            if function not in stack.functions.specs:
                self._send(404, {"error": "unknown_function", "message": f"no function named {function!r}"})
                return
            try:
                result = stack.functions.invoke(function, payload)
            except Exception as exc:
                self._send(200, {"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
                return
            self._send(200, {"status": "ok", "result": result})
        else:
            self._send(404, {"error": "not_found", "message": f"{self.command} {path} is not a local control"})

    def _replay(self, payload: dict) -> None:
        stack = self.server.stack
        try:
            name = payload["name"]
            start, end = float(payload["start"]), float(payload["end"])
            rules = payload.get("rules")
            if not re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", str(name)):
                raise ValueError("name must be 1-64 of [.-_A-Za-z0-9]")
            if payload.get("archive") not in (None, stack.archive_name):
                raise LookupError(f"no archive named {payload['archive']!r}")
            unknown = sorted(set(rules or []) - {r.name for r in stack.wiring.rules})
            if unknown:
                raise LookupError(f"no rule named {', '.join(unknown)}")
            if end < start:
                raise ValueError("end is before start")
        except LookupError as exc:
            self._send(404, {"error": "not_found", "message": str(exc)})
            return
        except (KeyError, TypeError, ValueError) as exc:
            self._send(400, {"error": "invalid_request", "message": f"replay needs name, start, end: {exc}"})
            return
        self._send(200, stack.router.replay(start, end, rules, name, dry_run=bool(payload.get("dry_run"))))

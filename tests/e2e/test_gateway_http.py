"""The local gateway under bad and hostile HTTP, over raw sockets (a client library would fix or
refuse these requests before they left): every refusal is JSON with the right status, limits hold
before the body is read, and /_local/* is only for this machine's own tools."""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from mangaassist_dev import signing

pytestmark = pytest.mark.e2e
EVENTS = Path(__file__).resolve().parents[1] / "events"


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, rest: bytes):
        self.status, self.headers, self.body, self.rest = status, headers, body, rest

    def json(self) -> dict:
        assert self.headers.get("content-type", "").startswith("application/json"), (self.status, self.body)
        return json.loads(self.body)


def connect(stack) -> socket.socket:
    port = int(stack.base_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_response(sock: socket.socket, head_request: bool = False, linger: float = 0.3) -> Response:
    """One response from the socket, then whatever else arrives within ``linger`` seconds."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, data = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = 0 if head_request else int(headers.get("content-length", 0))
    while len(data) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    body, rest = data[:length], data[length:]
    sock.settimeout(linger)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    sock.settimeout(10)
    return Response(int(status_line.split(" ")[1]), headers, body, rest)


def exchange(stack, raw: bytes, head_request: bool = False) -> Response:
    with connect(stack) as sock:
        sock.sendall(raw)
        return read_response(sock, head_request)


def host(stack) -> str:
    return stack.base_url.removeprefix("http://")


def signed_stripe(stack) -> tuple[bytes, dict]:
    payload = json.loads((EVENTS / "stripe.checkout.session.completed.json").read_text())
    payload["id"] = f"evt_{uuid.uuid4().hex}"
    body = json.dumps(payload).encode()
    return body, signing.sign_stripe(stack.info["sources"]["stripe"]["secrets"], body)


@pytest.mark.parametrize("path", ["/health", "/webhooks/stripe", "/_local/faults", "/v1/search?q=x"])
def test_a_malformed_content_length_is_a_json_400_not_a_502(stack, path):
    response = exchange(stack, f"POST {path} HTTP/1.1\r\nHost: {host(stack)}\r\nContent-Length: abc\r\n\r\n{{}}"
                               .encode())
    assert response.status == 400 and response.json()["error"] == "bad_request"
    assert "content-length" in response.json()["message"].lower()


@pytest.mark.parametrize("headers", [
    "Content-Length: 2\r\nContent-Length: 3",  # two lengths
    "Content-Length: 3\r\nTransfer-Encoding: chunked",  # a smuggling attempt
    "Content-Length: -1",
    "Transfer-Encoding: gzip, chunked, identity",
])
def test_conflicting_framing_is_refused_in_json(stack, headers):
    response = exchange(stack, f"POST /webhooks/stripe HTTP/1.1\r\nHost: {host(stack)}\r\n{headers}\r\n\r\n{{}}"
                               .encode())
    assert response.status == 400 and response.json()["error"] == "bad_request"


def test_a_signed_chunked_webhook_is_accepted_and_nothing_is_left_over(stack):
    body, signature = signed_stripe(stack)
    parts = (body[:10], body[10:200], body[200:])
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"
    head = "".join(f"{k}: {v}\r\n" for k, v in signature.items())
    with connect(stack) as sock:
        sock.sendall(f"POST /webhooks/stripe HTTP/1.1\r\nHost: {host(stack)}\r\nContent-Type: application/json\r\n"
                     f"Transfer-Encoding: chunked\r\n{head}\r\n".encode())
        for i in range(0, len(chunks), 97):  # in pieces, as a slow network would deliver it
            sock.sendall(chunks[i:i + 97])
        response = read_response(sock, linger=0.5)
    assert response.status == 202, response.body
    assert response.json()["status"] == "accepted" and response.rest == b"", "exactly one response"


def test_a_body_too_large_is_refused_from_its_content_length_before_it_is_sent(stack):
    with connect(stack) as sock:
        sock.sendall(f"POST /webhooks/stripe HTTP/1.1\r\nHost: {host(stack)}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {64 * 1024 * 1024}\r\n\r\n".encode())
        started = time.monotonic()
        response = read_response(sock)  # answered while not one byte of the 64 MB was sent
    assert response.status == 413 and response.json()["error"] == "payload_too_large"
    assert time.monotonic() - started < 5 and response.headers.get("connection") == "close"
    response = exchange(stack, f"POST /_local/faults HTTP/1.1\r\nHost: {host(stack)}\r\n"
                               f"x-local-token: {stack.info['local_token']}\r\n"
                               f"Content-Length: {2 * 1024 * 1024}\r\n\r\n".encode())
    assert response.status == 413  # the controls take at most 1 MB


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(stack):
    with connect(stack) as sock:
        sock.sendall(f"POST /_local/faults HTTP/1.1\r\nHost: {host(stack)}\r\nTransfer-Encoding: chunked\r\n"
                     f"x-local-token: {stack.info['local_token']}\r\n\r\n".encode())
        chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"x" * 256 * 1024)
        try:
            for _ in range(8):  # 2 MB, twice the controls' limit
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused part-way: the answer is still there to read
        response = read_response(sock)
    assert response.status == 413 and response.json()["error"] == "payload_too_large"


def test_expect_100_continue_is_answered_before_the_body(stack):
    body, signature = signed_stripe(stack)
    head = "".join(f"{k}: {v}\r\n" for k, v in signature.items())
    with connect(stack) as sock:
        sock.sendall(f"POST /webhooks/stripe HTTP/1.1\r\nHost: {host(stack)}\r\nContent-Type: application/json\r\n"
                     f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        assert read_response(sock).status == 202


@pytest.mark.parametrize("raw, status, error", [
    (b"BREW /health HTTP/1.1\r\nHost: h\r\n\r\n", 501, "not_implemented"),
    (b"GET /health HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "request_header_fields_too_large"),
    (b"GET /health HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431,
     "request_header_fields_too_large"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414, "uri_too_long"),
    (b"GET /v1/search?q=\xe3\x83\x95 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n", 400, "bad_request"),
    (b"GET /health HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n", 400, "bad_request"),
])
def test_what_the_parser_refuses_is_refused_in_json(stack, raw, status, error):
    response = exchange(stack, raw)
    assert (response.status, response.json()["error"]) == (status, error)


@pytest.mark.parametrize("method, path, status", [
    ("PROPFIND", "/health", 405), ("DELETE", "/v1/search", 405), ("GET", "/nope", 404), ("PUT", "/_local/faults", 405),
    ("GET", "/_local/nope", 404),
])
def test_unknown_routes_and_methods_are_json(stack, method, path, status):
    response = exchange(stack, f"{method} {path} HTTP/1.1\r\nHost: {host(stack)}\r\n\r\n".encode())
    assert response.status == status and response.json()["message"]


def test_head_answers_carry_no_body_and_the_connection_goes_on(stack):
    with connect(stack) as sock:
        sock.sendall(f"HEAD /health HTTP/1.1\r\nHost: {host(stack)}\r\n\r\n".encode())
        head = read_response(sock, head_request=True, linger=0.5)
        assert head.status == 200 and int(head.headers["content-length"]) > 0 and head.body == b"" and head.rest == b""
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host(stack)}\r\n\r\n".encode())
        assert read_response(sock).json()["status"] == "ok"  # the same connection, the next request
    missing = exchange(stack, f"HEAD /nope HTTP/1.1\r\nHost: {host(stack)}\r\n\r\n".encode(), head_request=True)
    assert missing.status == 404 and missing.body == b"" and missing.rest == b""


def test_pipelined_requests_are_answered_in_order(stack):
    with connect(stack) as sock:
        sock.sendall((f"GET /health HTTP/1.1\r\nHost: {host(stack)}\r\n\r\n"
                      f"GET /nope HTTP/1.1\r\nHost: {host(stack)}\r\n\r\n").encode())
        first = read_response(sock, linger=1)
    assert first.status == 200 and first.rest.startswith(b"HTTP/1.1 404 Not Found\r\n"), first.rest


# --- /_local/* is this machine's -----------------------------------------------------------------
def local(stack, method: str, path: str, body: bytes = b"", **headers) -> Response:
    lines = {"Host": host(stack), "Content-Length": str(len(body)),
             **{k.replace("_", "-"): v for k, v in headers.items()}}
    head = "".join(f"{k}: {v}\r\n" for k, v in lines.items() if v is not None)
    return exchange(stack, f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode() + body)


def test_secrets_and_changes_need_the_dev_token(stack):
    token = stack.info["local_token"]
    assert local(stack, "GET", "/_local/stack").status == 401
    assert local(stack, "GET", "/_local/stack", x_local_token="wrong").status == 401
    described = local(stack, "GET", "/_local/stack", x_local_token=token)
    assert described.status == 200 and described.json()["api_key"] == stack.info["api_key"]
    fault = b'{"target": "analytics", "fail_next": 1}'
    # A form or a plain text POST from a web page carries no token.
    refused = local(stack, "POST", "/_local/faults", fault, Content_Type="text/plain")
    assert refused.status == 401 and refused.json()["error"] == "unauthorized"
    for path in ("/_local/invoke/health", "/_local/replays", "/_local/redrive", "/_local/redeliver"):
        assert local(stack, "POST", path, b"{}").status == 401, path
    assert local(stack, "GET", "/_local/deliveries?limit=1").status == 200  # reading needs no token
    assert stack.json("GET", "/_local/faults")[2]["faults"].get("analytics") is None


@pytest.mark.parametrize("host_header", ["evil.example:{port}", "127.0.0.1", "localhost:1", "127.0.0.1.nip.io:{port}",
                                         None])
def test_another_host_name_is_refused_dns_rebinding(stack, host_header):
    port = stack.base_url.rsplit(":", 1)[1]
    raw_host = f"Host: {host_header.format(port=port)}\r\n" if host_header else ""
    response = exchange(stack, f"GET /_local/stack HTTP/1.1\r\n{raw_host}x-local-token: {stack.info['local_token']}"
                               f"\r\n\r\n".encode())
    assert response.status in (400, 403) and response.json()["error"] in ("forbidden_host", "bad_request")
    assert stack.info["api_key"].encode() not in response.body


def test_cross_site_requests_are_refused_even_with_the_token(stack):
    token = stack.info["local_token"]
    body = b'{"target": "analytics", "fail_next": 0}'
    evil = "https://evil.example"
    assert local(stack, "POST", "/_local/faults", body, x_local_token=token, Origin=evil).status == 403
    assert local(stack, "POST", "/_local/faults", body, x_local_token=token, Origin="null").status == 403
    assert local(stack, "GET", "/_local/deliveries", Sec_Fetch_Site="cross-site").status == 403
    assert local(stack, "GET", "/_local/", Sec_Fetch_Site="cross-site", Sec_Fetch_Mode="no-cors").status == 403
    # A link from elsewhere may open the page itself (it cannot read it: another origin).
    assert local(stack, "GET", "/_local/", Sec_Fetch_Site="cross-site", Sec_Fetch_Mode="navigate").status == 200
    port = stack.base_url.rsplit(":", 1)[1]
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        assert local(stack, "POST", "/_local/faults", body, x_local_token=token, Origin=origin,
                     Sec_Fetch_Site="same-origin").status == 200
    assert local(stack, "POST", "/_local/faults", body, x_local_token=token, Host=f"localhost:{port}").status == 200


@pytest.mark.parametrize("body, status", [(b"{not json", 400), (b"[1, 2]", 400), (b'"text"', 400)])
def test_control_bodies_must_be_json_objects(stack, body, status):
    response = local(stack, "POST", "/_local/faults", body, x_local_token=stack.info["local_token"])
    assert response.status == status and response.json()["error"] in ("invalid_json", "invalid_request")


# --- timeouts and many slow clients: a stack of its own, with short limits -----------------------------
@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    from e2e.conftest import start_stack, stop_stack

    stack = start_stack(tmp_path_factory.mktemp("impatient"), {
        "GATEWAY_HEADER_TIMEOUT": "1", "GATEWAY_BODY_TIMEOUT": "1", "GATEWAY_IDLE_TIMEOUT": "2"})
    yield stack
    assert stop_stack(stack) == 0


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("Threads:")))


def test_headers_that_never_finish_get_a_408(impatient):
    with connect(impatient) as sock:
        sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-")
        started = time.monotonic()
        response = read_response(sock)
    assert response.status == 408 and response.json()["error"] == "request_timeout"
    assert 0.8 < time.monotonic() - started < 5


def test_an_idle_connection_is_closed(impatient):
    with connect(impatient) as sock:
        sock.settimeout(10)
        started = time.monotonic()
        assert sock.recv(10) == b""  # closed by the stack, not by us
    assert 1.5 < time.monotonic() - started < 8


def test_hundreds_of_stalled_bodies_hold_no_threads_and_log_no_tracebacks(impatient):
    pid = impatient.info["pid"]
    before = threads_of(pid)
    lines_before = len(impatient.output)
    stalled = []
    for _ in range(300):
        sock = connect(impatient)
        sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"partial\": ")
        stalled.append(sock)
    time.sleep(0.3)
    assert threads_of(pid) <= before + 5, "a stalled body holds a coroutine, not a thread"
    health = exchange(impatient, f"GET /health HTTP/1.1\r\nHost: {host(impatient)}\r\n\r\n".encode())
    assert health.status == 200  # answered meanwhile
    answers = []

    def collect(sock):
        try:
            answers.append(read_response(sock).status)
        except AssertionError:
            answers.append(None)

    readers = [threading.Thread(target=collect, args=(sock,)) for sock in stalled]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(30)
    assert answers.count(408) == 300, {status: answers.count(status) for status in set(answers)}
    for sock in stalled[:150]:  # half hang up abruptly
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    for sock in stalled[150:]:
        sock.close()
    time.sleep(0.5)
    logged = "".join(impatient.output[lines_before:])
    assert "Traceback" not in logged and "BrokenPipe" not in logged, logged[-2000:]

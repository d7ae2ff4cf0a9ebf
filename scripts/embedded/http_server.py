"""The HTTP server under the local gateway: aiohttp's low-level server with a public endpoint's
limits, every refusal a JSON body.

aiohttp parses HTTP/1.1 with llhttp (Node's parser, in C): malformed or conflicting
Content-Length, chunked bodies, request smuggling attempts, oversized lines and unknown methods are
its to judge. What this module adds:

- JSON for what aiohttp refuses itself (it answers text or HTML), with the fitting status: 431 for
  oversized or too many headers, 414 for an oversized request line, 501 for an unknown method;
- a header timeout (a request's headers must arrive within ``Limits.header_timeout`` of its first
  byte: 408), an idle timeout (a kept-alive connection with no request is closed), a body timeout
  and a body size limit read from Content-Length before any of the body is (``read_body``);
- handlers that are plain functions run on a thread pool (``run_sync``), so the event loop never
  waits for a Lambda handler;
- one line in the log per refused or broken connection, never a traceback.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler

logger = logging.getLogger("embedded.gateway")


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0  # first byte of a request -> its last header
    idle_timeout: float = 30.0  # a connection with no request in progress (AWS's function URLs: ~60 s)
    body_timeout: float = 30.0  # headers received -> the whole body
    max_request_line: int = 8192  # differs from max_header_line so a LineTooLong says which it was
    max_header_line: int = 8190
    max_headers: int = 100
    lingering: float = 2.0  # after a refusal with a body unread, how long to drain it before closing
    shutdown_timeout: float = 5.0  # at stop, how long requests in progress may take to finish


def refusal(status: int, error: str, message: str, headers: dict | None = None, close: bool = False) -> web.Response:
    """Every refusal: a JSON body with a code a client can branch on and a message a person can act on."""
    response = web.Response(status=status, body=json.dumps({"error": error, "message": message}).encode(),
                            content_type="application/json", headers=headers)
    if close:
        response.force_close()
    return response


class Refused(Exception):
    """Raised anywhere under a request: its response is the answer."""

    def __init__(self, response: web.Response):
        super().__init__(response.status)
        self.response = response


def _parse_error(status: int, exc: BaseException | None, message: str | None) -> tuple[int, str, str]:
    """What aiohttp could not parse, as (status, error, message)."""
    text = (message or (str(exc) if exc else "") or "bad request").split("\n", 1)[0].rstrip(":")
    if isinstance(exc, LineTooLong):
        if exc.args[1] == Limits.max_request_line:
            return 414, "uri_too_long", f"the request line is longer than {Limits.max_request_line} bytes"
        return 431, "request_header_fields_too_large", f"a header line is longer than {Limits.max_header_line} bytes"
    if "Too many headers" in text:
        return 431, "request_header_fields_too_large", f"more than {Limits.max_headers} headers"
    if isinstance(exc, BadHttpMethod):
        if "HTTPS" in text:
            return 400, "bad_request", "this port speaks plain HTTP, not HTTPS"
        return 501, "not_implemented", "unknown HTTP method"
    if status == 504:
        return 504, "gateway_timeout", "the request took too long"
    if status >= 500:
        return 500, "internal_error", "the gateway failed; see the stack's log"
    if "url" in text.lower():
        text += " (percent-encode non-ASCII characters)"
    return 400, "bad_request", text


class _Connection(RequestHandler):
    """aiohttp's per-connection protocol, with JSON refusals and a header timeout."""

    header_timeout = Limits.header_timeout

    def connection_made(self, transport) -> None:
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a request's headers are complete
            self._stop_header_timer()
        elif data and self._header_timer is None and self._awaiting_request():
            # The first bytes of a request: its headers must all arrive in time (slowloris).
            self._header_timer = self._loop.call_later(self.header_timeout, self._headers_too_slow, parsed)

    def _awaiting_request(self) -> bool:
        # start() waits on _waiter between requests; while a handler runs (reading its body) there is none.
        return self._waiter is not None and not self._waiter.done()

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self, parsed: int) -> None:
        self._header_timer = None
        if self.transport is None or self._request_count != parsed or not self._awaiting_request():
            return
        message = f"the request's headers did not arrive within {self.header_timeout:g} s"
        body = json.dumps({"error": "request_timeout", "message": message}).encode()
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        logger.info("closed a connection from %s: headers too slow", self._peer())
        self.force_close()

    def connection_lost(self, exc) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return f"{peer[0]}:{peer[1]}" if peer else "a client"

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        status, error, text = _parse_error(status, exc, message)
        if status >= 500 and status != 501:
            logger.warning("request from %s failed: %s", request.remote, exc or message)
        if request.writer.output_size > 0:  # an answer was already on its way: nothing to add
            raise ConnectionError("response already started")
        return refusal(status, error, text, close=True)

    def log_exception(self, message: str, *args, exc_info=None, **kwargs) -> None:
        # aiohttp logs each with a traceback (a client hanging up is not the stack's failure).
        logger.warning("%s: %r", message % args if args else message, exc_info)


class _Server(web.Server):
    def __init__(self, handler, header_timeout: float, **kwargs):
        super().__init__(handler, **kwargs)
        self._header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        connection = _Connection(self, loop=self._loop, **self._kwargs)
        connection.header_timeout = self._header_timeout
        return connection


async def read_body(request: web.BaseRequest, limit: int, timeout: float) -> bytes:
    """The request's body, refused with 413 from its Content-Length before any of it is read, or
    once a chunked body passes ``limit``; 408 if it does not arrive within ``timeout``."""
    too_large = refusal(413, "payload_too_large", f"the body must be at most {limit} bytes", close=True)
    if request.content_length is not None and request.content_length > limit:
        raise Refused(too_large)
    expect = request.headers.get("expect")
    if expect is not None:
        if expect.lower() != "100-continue":
            raise Refused(refusal(417, "expectation_failed", f"cannot meet Expect: {expect}", close=True))
        if request.version >= (1, 1):  # the client waits for this before sending the body
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise Refused(too_large)
                chunks.append(chunk)
    except TimeoutError:
        raise Refused(refusal(408, "request_timeout", f"the body did not arrive within {timeout:g} s",
                              close=True)) from None
    return b"".join(chunks)


class HttpServer:
    """aiohttp on 127.0.0.1:<port>, its event loop on a thread of its own.

    ``handle(request) -> response`` runs on the loop; ``run_sync`` hands plain functions to a pool.
    """

    def __init__(self, handle: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
                 limits: Limits | None = None, workers: int = 64):
        self.handle = handle
        self.limits = limits or Limits()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gateway")
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._loop_error)
        self._thread = threading.Thread(target=self.loop.run_forever, name="gateway-loop", daemon=True)
        self._runner: web.ServerRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    def start(self, host: str, port: int) -> int:
        """Listen (OSError if the port is taken) and serve; the port listened on."""
        self._thread.start()
        try:
            self._call(self._start(host, port))
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise
        return self.port

    async def _start(self, host: str, port: int) -> None:
        limits = self.limits
        # No handler cancellation when a client hangs up: like a Lambda invocation, a function
        # call that started runs to its end, and so do its after-response tasks.
        server = _Server(self.handle, limits.header_timeout, handler_cancellation=False, access_log=None,
                         keepalive_timeout=limits.idle_timeout, max_line_size=limits.max_request_line,
                         max_field_size=limits.max_header_line, max_headers=limits.max_headers,
                         lingering_time=limits.lingering)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=limits.shutdown_timeout)
        await self._runner.setup()
        # A deep backlog: a burst of partners' connections while the process is busy must queue,
        # not be dropped (clients retry a dropped SYN only after 1 s, then 3 s).
        self._site = web.TCPSite(self._runner, host, port, backlog=1024)
        await self._site.start()
        self.port = self._runner.addresses[0][1]

    def run_sync(self, fn: Callable, *args) -> asyncio.Future:
        return self.loop.run_in_executor(self.pool, fn, *args)

    def stop_accepting(self) -> None:
        """Close the listening socket: new connections are refused, open ones go on."""
        if self._site is not None:
            self._call(self._stop_listening())

    async def _stop_listening(self) -> None:
        if self._site is not None:
            site, self._site = self._site, None
            await site.stop()

    def stop(self) -> None:
        """Finish the requests in progress (up to ``Limits.shutdown_timeout``), close every connection, stop."""
        if not self._thread.is_alive():
            return
        if self._runner is not None:
            try:
                self._call(self._runner.cleanup(), self.limits.shutdown_timeout + 5)
            except Exception as exc:  # stopping anyway
                logger.warning("gateway stop: %r", exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _call(self, coroutine, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _loop_error(self, loop, context: dict) -> None:
        exc = context.get("exception")
        if isinstance(exc, (ConnectionError, asyncio.CancelledError)):
            return  # a client went away
        print(f"gateway: {context.get('message')}: {exc!r}", file=sys.stderr, flush=True)

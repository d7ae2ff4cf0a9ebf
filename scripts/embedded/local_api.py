"""``/_local/*``: the stack's own controls and its page, for the developer's machine only.

Who may call them (``guard``), because a web page the developer visits can send requests to
127.0.0.1 too:

- ``Host`` must be ``127.0.0.1:<port>`` or ``localhost:<port>``: a DNS-rebinding page reaches
  this port under its own host name;
- a browser's cross-site request is refused (``Origin`` other than this stack's, or
  ``Sec-Fetch-Site`` other than same-origin/none), except a plain navigation to the page;
- what changes something or reveals a secret needs the stack's dev token in ``x-local-token``
  (stack.json's ``local_token``, printed at ready; ops.py and the page send it). A custom header
  also means a browser can only send it same-origin: no form or simple request carries it.

Reading endpoints (deliveries, events, replays, DLQ counts, faults) need no token; the page is
served with the token inside, to this origin only (no framing, no caching).
"""
from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from embedded.http_server import Refused, read_body, refusal

PAGE = Path(__file__).with_name("page.html")
MAX_BODY = 1024 * 1024
REPLAY_NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")
SAFE_SITES = (None, "same-origin", "none")

Handler = Callable[[web.BaseRequest, dict, re.Match], Awaitable[web.StreamResponse]]


class LocalApi:
    def __init__(self, stack, gateway):
        self.stack = stack
        self.gateway = gateway
        # (method, path pattern, needs the token, handler)
        self.endpoints: list[tuple[str, re.Pattern, bool, Handler]] = [
            ("GET", re.compile(r"/_local/?"), False, self.page),
            ("GET", re.compile(r"/_local/deliveries"), False, self.deliveries),
            ("GET", re.compile(r"/_local/events/(?P<event_id>[^/]+)"), False, self.event),
            ("GET", re.compile(r"/_local/stack"), True, self.description),
            ("GET", re.compile(r"/_local/faults"), False, self.faults),
            ("POST", re.compile(r"/_local/faults"), True, self.inject_faults),
            ("GET", re.compile(r"/_local/replays"), False, self.replays),
            ("GET", re.compile(r"/_local/replays/(?P<name>[^/]+)"), False, self.replay),
            ("POST", re.compile(r"/_local/replays"), True, self.start_replay),
            ("GET", re.compile(r"/_local/dlqs"), False, self.dlqs),
            ("POST", re.compile(r"/_local/redrive"), True, self.redrive),
            ("POST", re.compile(r"/_local/redeliver"), True, self.redeliver),
            ("POST", re.compile(r"/_local/invoke/(?P<function>[^/]+)"), True, self.invoke),
        ]

    # --- who may call ----------------------------------------------------------------------
    def _hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.gateway.port}", f"localhost:{self.gateway.port}"}

    def guard(self, request: web.BaseRequest, protected: bool, is_page: bool) -> web.Response | None:
        hosts = self._hosts()
        if request.headers.get("host", "").lower() not in hosts:
            allowed = " or ".join(sorted(hosts))
            return refusal(403, "forbidden_host", f"the local controls answer only to Host: {allowed}")
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() not in {f"http://{host}" for host in hosts}:
            return refusal(403, "cross_site", f"requests from {origin} may not use the local controls")
        site = request.headers.get("sec-fetch-site")
        navigation = (is_page and request.method in ("GET", "HEAD")
                      and request.headers.get("sec-fetch-mode") == "navigate")
        if site not in SAFE_SITES and not navigation:
            return refusal(403, "cross_site", f"a {site} request may not use the local controls")
        if protected and not hmac.compare_digest(request.headers.get("x-local-token", "").encode(),
                                                 self.stack.local_token.encode()):
            return refusal(401, "unauthorized", "send the stack's dev token in x-local-token "
                                                "(local_token in stack.json, printed when the stack is ready)")
        return None

    async def handle(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        method = "GET" if request.method == "HEAD" else request.method
        allowed = []
        for verb, pattern, protected, handler in self.endpoints:
            match = pattern.fullmatch(path)
            if not match:
                continue
            allowed.append(verb)
            if verb != method:
                continue
            refused = self.guard(request, protected, handler == self.page)
            if refused is not None:
                return refused
            payload = await self._payload(request) if verb == "POST" else {}
            return await handler(request, payload, match)
        if allowed:
            return refusal(405, "method_not_allowed", f"{path} takes {', '.join(sorted(set(allowed)))}",
                           {"allow": ", ".join(sorted(set(allowed)))})
        return refusal(404, "not_found", f"{request.method} {path} is not a local control")

    async def _payload(self, request: web.BaseRequest) -> dict:
        from embedded.gateway import json_body

        payload = json_body(await read_body(request, MAX_BODY, self.gateway.limits.body_timeout))
        if not isinstance(payload, dict):
            raise Refused(refusal(400, "invalid_request", "the body must be a JSON object"))
        return payload

    def _sync(self, fn, *args):
        return self.gateway.server.run_sync(fn, *args)

    # --- the page --------------------------------------------------------------------------
    async def page(self, request, payload, match) -> web.StreamResponse:
        nonce = secrets.token_urlsafe(16)
        html = PAGE.read_text(encoding="utf-8").replace("{{LOCAL_TOKEN}}", self.stack.local_token) \
            .replace("{{NONCE}}", nonce)
        return web.Response(text=html, content_type="text/html", headers={
            "cache-control": "no-store",
            "x-frame-options": "DENY",
            "referrer-policy": "no-referrer",
            "content-security-policy": f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                       "style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; "
                                       "base-uri 'none'; form-action 'none'",
        })

    # --- reading -----------------------------------------------------------------------------
    async def deliveries(self, request, payload, match) -> web.StreamResponse:
        query = request.rel_url.query
        filters = {name: query.get(name) or None for name in ("source", "rule", "target", "status", "event_id",
                                                              "replay_name")}
        limit = query.get("limit")
        if limit is not None and not (limit.isdigit() and 1 <= int(limit) <= 100_000):
            return refusal(400, "invalid_request", "limit must be an integer from 1 to 100000")
        router, archive = self.stack.router, self.stack.archive
        records = router.log.records(**filters)
        matched = len(records)
        if limit:
            records = records[-int(limit):]
        return web.json_response({
            "deliveries": records, "matched": matched, "counts": router.log.counts(),
            "faults": self.stack.functions.faults(),
            "archive": {"events": archive.event_count, "size_bytes": archive.size_bytes},
            "sources": router.log.sources(), "rules": [r.name for r in self.stack.wiring.rules],
            "updated_at": time.time(),
        })

    async def event(self, request, payload, match) -> web.StreamResponse:
        event_id = match["event_id"]
        event = self.stack.archive.get(event_id)
        records = self.stack.router.log.records(event_id=event_id)
        if event is None and not records:
            return refusal(404, "not_found", f"no event {event_id!r} in the archive or the deliveries")
        return web.json_response({"event": event, "deliveries": records})

    async def description(self, request, payload, match) -> web.StreamResponse:
        return web.json_response(self.stack.description())

    async def faults(self, request, payload, match) -> web.StreamResponse:
        return web.json_response({"faults": self.stack.functions.faults()})

    async def replays(self, request, payload, match) -> web.StreamResponse:
        return web.json_response({"replays": self.stack.router.replays()})

    async def replay(self, request, payload, match) -> web.StreamResponse:
        try:
            return web.json_response(self.stack.router.replay_status(match["name"]))
        except KeyError:
            return refusal(404, "ResourceNotFoundException", f"Replay {match['name']} does not exist.")

    async def dlqs(self, request, payload, match) -> web.StreamResponse:
        return web.json_response({"dlqs": await self._sync(self.stack.dead_letters.counts)})

    # --- changing ----------------------------------------------------------------------------
    async def inject_faults(self, request, payload, match) -> web.StreamResponse:
        target, count = payload.get("target"), payload.get("fail_next")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return refusal(400, "invalid_request", "fail_next must be an integer >= 0")
        if isinstance(target, str) and target.startswith("model:"):
            return self._model_faults(target, count, payload)
        try:
            self.stack.functions.inject_faults(target, count)
        except KeyError:
            return refusal(404, "unknown_target", f"no function named {target!r}")
        return web.json_response({"target": target, "fail_next": count})

    def _model_faults(self, target: str, count: int, payload: dict) -> web.StreamResponse:
        """``model:<id>``: the local model fails its next ``fail_next`` calls as Bedrock would (``code``,
        ThrottlingException by default), a stream after ``after_chunks`` tokens (a mid-answer failure)."""
        from embedded.stack import LOCAL_CANDIDATE_MODEL, LOCAL_FALLBACK_MODEL, LOCAL_FAST_MODEL
        from mangaassist.models import local

        model_id = target.removeprefix("model:")
        code, after = payload.get("code", "ThrottlingException"), payload.get("after_chunks", 0)
        if model_id not in {LOCAL_FAST_MODEL, LOCAL_FALLBACK_MODEL, LOCAL_CANDIDATE_MODEL}:
            return refusal(404, "unknown_target", f"no local model named {model_id!r}")
        if not isinstance(code, str) or not code.isidentifier():
            return refusal(400, "invalid_request", "code must be an error code such as ThrottlingException")
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            return refusal(400, "invalid_request", "after_chunks must be an integer >= 0")
        local.clear_faults(model_id)
        if count:
            local.inject_fault(model_id, local.Fault(code, after), count)
        return web.json_response({"target": target, "fail_next": count, "code": code, "after_chunks": after})

    async def start_replay(self, request, payload, match) -> web.StreamResponse:
        from embedded.router import ReplayExists

        stack = self.stack
        try:
            name = payload["name"]
            start, end = float(payload["start"]), float(payload["end"])
            rules = payload.get("rules")
            if not isinstance(name, str) or not REPLAY_NAME.fullmatch(name):
                raise ValueError("name must be 1-64 of [.-_A-Za-z0-9]")
            if rules is not None and not (isinstance(rules, list) and all(isinstance(r, str) for r in rules)):
                raise ValueError("rules must be a list of rule names")
            if payload.get("archive") not in (None, stack.archive_name):
                raise LookupError(f"no archive named {payload['archive']!r}")
            unknown = sorted(set(rules or []) - {r.name for r in stack.wiring.rules})
            if unknown:
                raise LookupError(f"no rule named {', '.join(unknown)}")
            if end < start:
                raise ValueError("end is before start")
        except LookupError as exc:
            return refusal(404, "not_found", str(exc))
        except (KeyError, TypeError, ValueError) as exc:
            return refusal(400, "invalid_request", f"replay needs name, start, end: {exc}")
        try:
            result = await self._sync(stack.router.replay, start, end, rules, name, bool(payload.get("dry_run")))
        except ReplayExists as exc:  # AWS: ResourceAlreadyExistsException
            return refusal(409, "ResourceAlreadyExistsException", str(exc))
        return web.json_response(result)

    async def redrive(self, request, payload, match) -> web.StreamResponse:
        keys = self.stack.dead_letters.keys(payload)
        if isinstance(keys, str):
            return refusal(400 if "give" in keys else 404, "invalid_request" if "give" in keys else "not_found", keys)
        count = payload.get("max")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            return refusal(400, "invalid_request", "max must be an integer >= 1")
        results = await self._sync(self.stack.dead_letters.redrive, keys, count, bool(payload.get("dry_run")))
        return web.json_response({"results": results})

    async def redeliver(self, request, payload, match) -> web.StreamResponse:
        event, target_arn = payload.get("event"), payload.get("target_arn")
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(target_arn, str):
            return refusal(400, "invalid_request", "redeliver needs event (an EventBridge event) and target_arn")
        try:
            rule, target = self.stack.router.target_by_arns(str(payload.get("rule_arn") or ""), target_arn)
        except LookupError as exc:
            return refusal(404, "not_found", str(exc))
        try:
            record = await self._sync(self.stack.router.redeliver, event, rule, target)
        except Exception as exc:
            return web.json_response({"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return web.json_response({"status": "delivered", "delivery": record})

    async def invoke(self, request, payload, match) -> web.StreamResponse:
        function = match["function"]
        if function not in self.stack.functions.specs:
            return refusal(404, "unknown_function", f"no function named {function!r}")
        try:
            result = await self._sync(self.stack.functions.invoke, function, payload)
        except Exception as exc:
            return web.json_response({"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return web.json_response({"status": "ok", "result": result})

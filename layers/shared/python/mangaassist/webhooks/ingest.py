"""The webhook front door, in the order that keeps every acknowledged delivery:

verify signature and timestamp -> size and JSON checks -> raw body to S3 -> idempotency claim
on the delivery id -> payload schema -> publish events -> 202.

The raw-body put (S3) and the claim (DynamoDB) are independent calls to two services, so they
run side by side; the claimed work waits for the put, and a failed put answers 503 whatever the
claim said, so what a partner sees is exactly the order above, one round trip sooner.

Nothing is acknowledged before its events are on the bus. A dependency failing before that
answers 503 with Retry-After and releases the claim (Powertools deletes the in-progress record
when the function raises), so the partner's retry is processed as new. A retry after a 2xx
gets the original answer back (200, "duplicate"), never a second set of events.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from mangaassist import clients, metrics, settings
from mangaassist.contracts import ContractError, validate_payload
from mangaassist.events.publisher import PublishError, publish
from mangaassist.http import error_response, json_response
from mangaassist.webhooks.mapping import MAPPERS, Delivery, EventMismatch
from mangaassist.webhooks.payloads import PayloadRefused, parse_object
from mangaassist.webhooks.signatures import SignatureError, verify
from mangaassist.webhooks.sources import Keys, Source, fetch_keys, load_sources

PATH = re.compile(r"^/webhooks/(?P<source>[A-Za-z0-9_-]{1,64})/?$")
RETRY_AFTER = "5"
IDEMPOTENCY_TTL = 7 * 24 * 3600  # longer than any partner retries (Stripe: 3 days)


class DependencyError(Exception):
    """S3, DynamoDB, Secrets Manager or EventBridge failed: the partner should retry."""


class UnmappablePayload(Exception):
    """Valid against its schema, yet missing what the mapper needs: the partner must fix it."""


class RawBodyNotStored(Exception):
    """The S3 put of the raw body failed: the claim is released and the partner retries."""


# Lambda runs one request per environment at a time; the local stack runs several in one process.
_BACKGROUND = ThreadPoolExecutor(max_workers=8, thread_name_prefix="raw-body")  # threads start on first use


def _safe(delivery_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", delivery_id)


class Ingress:
    def __init__(self, sources: dict[str, Source], config: settings.Webhooks, *, s3=None, persistence=None,
                 keys: Callable[[str], Keys] = fetch_keys, publisher: Callable = publish,
                 clock: Callable[[], float] = time.time):
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        from mangaassist.webhooks.claims import DeliveryClaims

        self.sources = sources
        self.config = config
        self.keys = keys
        self.publisher = publisher
        self.clock = clock
        self.s3 = s3 or clients.client("s3")
        self.idempotency = IdempotencyConfig(
            event_key_jmespath="[source, claim]",
            # The same id with another body is not a retry: refuse it rather than hide it.
            payload_validation_jmespath="sha256",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=IDEMPOTENCY_TTL,
            response_hook=lambda response, _record: {**response, "status": "duplicate"},
        )
        persistence = persistence or DeliveryClaims(table_name=config.idempotency_table,
                                                    boto3_client=clients.client("dynamodb"))
        self._accept = idempotent_function(data_keyword_argument="delivery", persistence_store=persistence,
                                           config=self.idempotency)(self._accept_delivery)

    @classmethod
    def from_env(cls) -> Ingress:
        config = settings.webhooks()
        return cls(load_sources(config.sources_json), config)

    # --- the pipeline ------------------------------------------------------------------------
    def handle(self, event: dict, context=None) -> dict:
        """The answer to one function URL event; every answer is counted (mangaassist.metrics)."""
        response, source = self._handle(event, context)
        status = response["statusCode"]
        metrics.webhook_answered(source, status, json.loads(response["body"]).get("error") if status >= 300 else None)
        return response

    def _handle(self, event: dict, context) -> tuple[dict, str | None]:
        if context is not None:
            self.idempotency.register_lambda_context(context)  # in-progress claims expire with the invocation
        http = (event.get("requestContext") or {}).get("http") or {}
        match = PATH.match(event.get("rawPath") or http.get("path") or "")
        if not match:
            return error_response(404, "not_found", "POST webhooks to /webhooks/{source}"), None
        source = self.sources.get(match["source"])
        if source is None:
            return error_response(404, "unknown_source", f"no webhook source named {match['source']!r}",
                                  sources=sorted(self.sources)), None
        return self._deliver(source, event, http), source.name

    def _deliver(self, source: Source, event: dict, http: dict) -> dict:
        if http.get("method", "").upper() != "POST":
            return error_response(405, "method_not_allowed", "webhooks are delivered with POST", {"allow": "POST"})
        headers = event.get("headers") or {}
        try:
            body = self._raw_body(event)
        except ValueError:
            return error_response(400, "invalid_body", "the body is marked base64 but is not valid base64")

        try:
            keys = self.keys(source.name)
        except Exception:
            return self._unavailable("the source's signing secrets could not be read")
        try:
            signed = verify(source.verifier_scheme, headers, body, secrets=keys.secrets, public_keys=keys.public_keys,
                            now=self.clock(), tolerance=source.tolerance_seconds,
                            future_tolerance=source.tolerance_seconds)
        except SignatureError as exc:
            return error_response(401, exc.code, exc.message)

        if len(body) > self.config.max_body_bytes:
            return error_response(413, "payload_too_large",
                                  f"the body is {len(body)} bytes; the limit is {self.config.max_body_bytes}")
        try:
            payload = parse_object(body)
        except PayloadRefused as exc:
            if exc.path is None:
                return error_response(exc.status, exc.code, exc.message)
            return error_response(exc.status, exc.code, exc.message, path=exc.path)
        delivery_id = source.find_delivery_id(headers, payload, signed.delivery_id)
        if delivery_id is None:
            return error_response(400, "missing_delivery_id",
                                  f"no delivery id where this source keeps it ({source.delivery_id})")

        received = datetime.fromtimestamp(self.clock(), UTC)
        digest = hashlib.sha256(body).hexdigest()
        raw_key = self._raw_key(source, delivery_id, digest, received)
        # The raw body's put and the claim are independent calls to two services: they run side by
        # side, and nothing is published (nor answered) before the put has succeeded.
        stored = _BACKGROUND.submit(self._store_raw, source, raw_key, delivery_id, body)
        delivery = {"source": source.name, "delivery_id": delivery_id, "sha256": digest, "raw_key": raw_key,
                    # Where the delivery id is not signed (GitHub's header), a captured body re-posted
                    # under a new id is the same delivery: the signed content is what is claimed.
                    "claim": delivery_id if source.delivery_id_signed else f"sha256:{digest}",
                    "received_at": received.timestamp(), "signed_timestamp": signed.timestamp,
                    "headers": {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-github-event")},
                    "payload": payload}
        return self._claim_and_publish(delivery, stored)  # which always waits for the put: Lambda would freeze it

    def _claim_and_publish(self, delivery: dict, stored: Future) -> dict:
        refusal: dict | None = None
        try:
            result = self._accept(delivery=delivery, stored=stored)
        except Exception as exc:
            refusal = self._refusal(exc, delivery)
        if stored.exception() is not None:  # the raw body comes first: whatever the claim said, not kept
            return self._unavailable("the delivery could not be stored")
        if refusal is not None:
            return refusal
        status = 200 if result.get("status") == "duplicate" else 202
        return json_response(status, result)

    def _refusal(self, exc: Exception, delivery: dict) -> dict:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (  # loaded by __init__ already
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        if isinstance(exc, ContractError):
            return error_response(422, "invalid_payload", exc.message, path=exc.path)
        if isinstance(exc, UnmappablePayload):
            return error_response(422, "invalid_payload", str(exc))
        if isinstance(exc, EventMismatch):
            return error_response(422, "event_mismatch", str(exc))
        if isinstance(exc, IdempotencyAlreadyInProgressError):
            return error_response(409, "in_progress", "this delivery is being processed; retry shortly",
                                  {"retry-after": RETRY_AFTER}, delivery_id=delivery["delivery_id"])
        if isinstance(exc, IdempotencyValidationError):
            return error_response(422, "delivery_id_reused", "this delivery id was already used for a different body",
                                  delivery_id=delivery["delivery_id"])
        # DynamoDB, EventBridge: the claim is released, the partner retries
        return self._unavailable("the delivery could not be processed")

    def _accept_delivery(self, delivery: dict, stored: Future) -> dict:
        """Runs once per (source, delivery id): schema, events, publish. Raising releases the claim."""
        source = self.sources[delivery["source"]]
        payload = delivery["payload"]
        failure = stored.exception()  # waits for the raw body: nothing goes further unless it is kept
        if failure is not None:
            raise RawBodyNotStored() from failure
        validate_payload(source.payload_schema, payload)
        context = Delivery(source.name, delivery["delivery_id"], delivery["headers"],
                           datetime.fromtimestamp(delivery["received_at"], UTC), delivery["signed_timestamp"])
        try:
            events = MAPPERS[source.mapper](payload, context)
        except EventMismatch:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UnmappablePayload(f"cannot map this {source.name} payload to events: "
                                    f"{type(exc).__name__} {exc}") from exc
        try:
            ids = self.publisher(events) if events else []
        except PublishError as exc:
            raise DependencyError(f"{len(exc.failed)} event(s) not published") from exc
        return {"status": "accepted", "source": source.name, "delivery_id": delivery["delivery_id"], "events": ids}

    # --- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _raw_body(event: dict) -> bytes:
        body = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                return base64.b64decode(body, validate=True)
            except binascii.Error as exc:
                raise ValueError("bad base64") from exc
        return body.encode("utf-8")

    @staticmethod
    def _raw_key(source: Source, delivery_id: str, digest: str, received: datetime) -> str:
        # The body hash in the key keeps a reused id's other body instead of overwriting the first.
        return f"{source.name}/{received:%Y/%m/%d}/{_safe(delivery_id)}/{digest[:16]}.json"

    def _store_raw(self, source: Source, key: str, delivery_id: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.config.raw_payloads_bucket, Key=key, Body=body, ContentType="application/json",
                           ServerSideEncryption="AES256",
                           Metadata={"delivery-id": _safe(delivery_id), "source": source.name})

    @staticmethod
    def _unavailable(message: str) -> dict:
        return error_response(503, "unavailable", f"{message}; retry later", {"retry-after": RETRY_AFTER})

"""One Bedrock model behind the provider contract, through the Converse and ConverseStream APIs.

Retries and fallback belong to the router, so the client makes exactly one attempt per call
(the ``model`` profile in mangaassist.clients).
"""
from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager

from mangaassist.models.base import (
    DEFAULT_FEATURE,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    Completion,
    CompletionStream,
    ModelError,
    converse_messages,
)
from mangaassist.models.pricing import estimate_cost

PROVIDER = "bedrock"


class BedrockModel:
    provider = PROVIDER

    def __init__(self, model_id: str, client=None):
        self.model_id = model_id
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from mangaassist import clients

            self._client = clients.client("bedrock-runtime", "model")
        return self._client

    def converse(self, messages: list[dict], *, system: str | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                 temperature: float = DEFAULT_TEMPERATURE, feature: str = DEFAULT_FEATURE) -> Completion:
        request = self._request(messages, system, max_tokens, temperature)
        with bedrock_errors(self.model_id):
            response = self.client.converse(**request)
        return parse_converse_response(response, self.model_id)

    def converse_stream(self, messages: list[dict], *, system: str | None = None,
                        max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = DEFAULT_TEMPERATURE,
                        feature: str = DEFAULT_FEATURE) -> CompletionStream:
        return CompletionStream(self._stream(self._request(messages, system, max_tokens, temperature)),
                                model_id=self.model_id)

    def _stream(self, request: dict) -> Generator[str, None, Completion]:
        started = time.perf_counter()
        with bedrock_errors(self.model_id):  # errors arrive on the call and inside the event stream
            response = self.client.converse_stream(**request)
            try:
                return (yield from parse_converse_stream(response["stream"], self.model_id, started=started))
            finally:  # a consumer that stops early (its client went away) ends the HTTP stream: no more tokens
                close = getattr(response["stream"], "close", None)  # botocore's EventStream has one
                if close is not None:
                    close()

    def _request(self, messages, system, max_tokens, temperature) -> dict:
        request = {
            "modelId": self.model_id,
            "messages": converse_messages(messages),
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature},
        }
        if system:
            request["system"] = [{"text": system}]
        return request


def parse_converse_response(response: dict, model_id: str) -> Completion:
    usage = response.get("usage", {})
    content = response["output"]["message"]["content"]
    return _completion(
        model_id,
        text="".join(block["text"] for block in content if "text" in block),
        stop_reason=response.get("stopReason", "end_turn"),
        input_tokens=usage.get("inputTokens", 0),
        output_tokens=usage.get("outputTokens", 0),
        latency_ms=response.get("metrics", {}).get("latencyMs", 0),
    )


def parse_converse_stream(events: Iterable[dict], model_id: str, *,
                          started: float | None = None) -> Generator[str, None, Completion]:
    """Yields the text of each contentBlockDelta and returns the Completion the stream describes.

    Pure over ConverseStream event dicts, so it is tested without an HTTP event stream. When the
    stream carries no metadata.metrics, latency is measured from ``started`` (a perf_counter).
    """
    parts: list[str] = []
    stop_reason, usage, latency_ms = "end_turn", {}, None
    for event in events:
        if "contentBlockDelta" in event:
            text = event["contentBlockDelta"]["delta"].get("text")
            if text:
                parts.append(text)
                yield text
        elif "messageStop" in event:
            stop_reason = event["messageStop"].get("stopReason", stop_reason)
        elif "metadata" in event:
            usage = event["metadata"].get("usage", {})
            latency_ms = event["metadata"].get("metrics", {}).get("latencyMs")
    if latency_ms is None:
        latency_ms = round((time.perf_counter() - started) * 1000) if started is not None else 0
    return _completion(model_id, text="".join(parts), stop_reason=stop_reason,
                       input_tokens=usage.get("inputTokens", 0), output_tokens=usage.get("outputTokens", 0),
                       latency_ms=latency_ms)


def _completion(model_id: str, *, text: str, stop_reason: str, input_tokens: int, output_tokens: int,
                latency_ms: int) -> Completion:
    return Completion(text=text, stop_reason=stop_reason, input_tokens=input_tokens, output_tokens=output_tokens,
                      latency_ms=latency_ms, model_id=model_id, provider=PROVIDER,
                      estimated_cost_usd=estimate_cost(model_id, input_tokens, output_tokens))


@contextmanager
def bedrock_errors(model_id: str) -> Iterator[None]:
    """Turns botocore exceptions into ModelError with a code the router can act on."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise model_error(exc, model_id) from exc


def model_error(exc: Exception, model_id: str) -> ModelError:
    from botocore.exceptions import ClientError, ConnectionError, ConnectTimeoutError, ReadTimeoutError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or "ClientError"
        # Errors inside an event stream are named like their members: throttlingException.
        return ModelError(code[0].upper() + code[1:], error.get("Message") or str(exc), model_id)
    if isinstance(exc, ReadTimeoutError):
        return ModelError("ReadTimeout", str(exc), model_id)
    if isinstance(exc, ConnectTimeoutError):
        return ModelError("ConnectTimeout", str(exc), model_id)
    if isinstance(exc, ConnectionError):
        return ModelError("ConnectionError", str(exc), model_id)
    return ModelError(type(exc).__name__, str(exc), model_id)

"""The provider contract every model adapter honours, and the errors the router acts on.

A provider answers ``converse(messages, ...) -> Completion`` and ``converse_stream(...) ->
CompletionStream`` (text chunks, then ``.completion``). Messages use the Converse API shape,
``{"role": "user", "content": [{"text": ...}]}``; a plain string as content is accepted too.
"""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

DEFAULT_MAX_TOKENS = 512
DEFAULT_TEMPERATURE = 0.2
DEFAULT_FEATURE = "chat"

CIRCUIT_OPEN = "CircuitOpen"
# Worth another attempt on the same model: quota, capacity and transient model faults.
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "ServiceUnavailableException", "InternalServerException",
    "ModelErrorException", "ModelNotReadyException", "ModelStreamErrorException", "ConnectionError",
})
# A timeout has already cost a full timeout: go straight to the other model instead of waiting
# again; an open circuit means the model is known to be failing.
FALLBACK_ONLY_CODES = frozenset({"ModelTimeoutException", "ReadTimeout", "ConnectTimeout", CIRCUIT_OPEN})


@dataclass(frozen=True)
class Completion:
    text: str
    stop_reason: str
    input_tokens: int
    output_tokens: int
    latency_ms: int
    model_id: str
    provider: str  # "bedrock" | "local"
    estimated_cost_usd: float
    fallback_used: bool = False


class ModelError(Exception):
    """A failed model call, with the service's error code (e.g. ThrottlingException)."""

    def __init__(self, code: str, message: str, model_id: str | None = None):
        super().__init__(f"{code}: {message}" + (f" ({model_id})" if model_id else ""))
        self.code = code
        self.message = message
        self.model_id = model_id

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES

    @property
    def fallback(self) -> bool:
        """True when another model may well succeed where this one failed."""
        return self.code in RETRYABLE_CODES or self.code in FALLBACK_ONLY_CODES


class ModelUnavailable(ModelError):
    """Every model in the chain failed; workers let it raise so EventBridge retries or dead-letters."""

    def __init__(self, causes: list[ModelError]):
        super().__init__("ModelUnavailable", "; ".join(str(cause) for cause in causes) or "no model configured")
        self.causes = tuple(causes)


class CompletionStream:
    """Iterates text chunks; once exhausted, ``completion`` holds the final Completion.
    ``model_id`` names the model that is answering, once it is known (for a router's stream:
    when the first chunk arrived). ``close()`` stops the generation (a client that went away)."""

    def __init__(self, chunks: Generator[str, None, Completion], model_id: str | None = None):
        self._chunks = chunks
        self.completion: Completion | None = None
        self.model_id = model_id

    def close(self) -> None:
        self._chunks.close()

    def __iter__(self) -> CompletionStream:
        return self

    def __next__(self) -> str:
        try:
            return next(self._chunks)
        except StopIteration as end:
            # An exhausted generator ends again with no value: keep the first one.
            self.completion = self.completion or end.value
            raise


class Provider(Protocol):
    """``feature`` names the product feature (chat, moderation, ...); the local provider picks
    its task by it, Bedrock ignores it."""

    def converse(self, messages: list[dict], *, system: str | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                 temperature: float = DEFAULT_TEMPERATURE, feature: str = DEFAULT_FEATURE) -> Completion: ...

    def converse_stream(self, messages: list[dict], *, system: str | None = None,
                        max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = DEFAULT_TEMPERATURE,
                        feature: str = DEFAULT_FEATURE) -> CompletionStream: ...


class Model(Provider, Protocol):
    """One model behind the provider contract, named by its id (what the router's routes hold:
    BedrockModel, LocalProvider). The router itself is a Provider without one id."""

    model_id: str


def converse_messages(messages: list[dict]) -> list[dict]:
    """Messages in the Converse shape: string content becomes ``[{"text": ...}]``."""
    return [
        {"role": m["role"], "content": [{"text": m["content"]}] if isinstance(m["content"], str) else m["content"]}
        for m in messages
    ]


def message_text(message: dict) -> str:
    return "\n".join(block["text"] for block in converse_messages([message])[0]["content"] if "text" in block)


def inference_event(completion: Completion, *, request_id: str, feature: str,
                    correlation_id: str | None = None) -> dict:
    """The detail of a ``mangaassist.ai`` ``InferenceCompleted`` event for one model call."""
    detail = {
        "version": "1",
        "request_id": request_id,
        "feature": feature,
        "model_id": completion.model_id,
        "provider": completion.provider,
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "latency_ms": completion.latency_ms,
        "estimated_cost_usd": completion.estimated_cost_usd,
        "stop_reason": completion.stop_reason,
        "fallback_used": completion.fallback_used,
    }
    if correlation_id is not None:
        detail["correlation_id"] = correlation_id
    return detail

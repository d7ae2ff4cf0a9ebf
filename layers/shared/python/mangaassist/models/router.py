"""The router: the fast model first, the fallback model when the fast one is failing.

For each model in order: its circuit breaker is asked first (an open circuit skips the model);
then the call is made, retried with full-jitter backoff on retryable errors; fallback-class
errors (throttling, 5xx, model not ready, timeouts) move on to the next model; any other error
(ValidationException, AccessDeniedException...) is raised at once. When every model fails the
router raises ModelUnavailable. The router honours the provider contract itself.

Streams fall back the same way until their first chunk arrives; after that the text is with the
client and cannot be taken back, so a later failure raises ModelError to the caller.
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from mangaassist.backoff import full_jitter
from mangaassist.models.base import (
    CIRCUIT_OPEN,
    DEFAULT_FEATURE,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    Completion,
    CompletionStream,
    Model,
    ModelError,
    ModelUnavailable,
)
from mangaassist.models.breaker import Breaker, NoBreaker

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ModelRetry:
    """Attempts per model, with full-jitter backoff (mangaassist.backoff) between them."""

    attempts: int = 2
    base_seconds: float = 0.1
    cap_seconds: float = 1.0

    def __post_init__(self):
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")

    def delay(self, attempt: int, rng: Callable[[], float]) -> float:
        return full_jitter(attempt, self.base_seconds, self.cap_seconds, rng)


@dataclass(frozen=True)
class Route:
    model: Model
    breaker: Breaker = NoBreaker()


class ModelRouter:
    def __init__(self, routes: Sequence[Route], *, retry: ModelRetry | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random):
        self.routes = tuple(routes)
        self.retry = retry or ModelRetry()
        self._sleep = sleep
        self._rng = rng

    def converse(self, messages: list[dict], *, system: str | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                 temperature: float = DEFAULT_TEMPERATURE, feature: str = DEFAULT_FEATURE) -> Completion:
        completion, fallback_used = self._first_success(lambda model: model.converse(
            messages, system=system, max_tokens=max_tokens, temperature=temperature, feature=feature))
        return replace(completion, fallback_used=fallback_used)

    def converse_stream(self, messages: list[dict], *, system: str | None = None,
                        max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = DEFAULT_TEMPERATURE,
                        feature: str = DEFAULT_FEATURE) -> CompletionStream:
        options = dict(system=system, max_tokens=max_tokens, temperature=temperature, feature=feature)
        outer = CompletionStream(self._stream(messages, options, lambda model_id: setattr(outer, "model_id", model_id)))
        return outer

    def _stream(self, messages: list[dict], options: dict,
                answering: Callable[[str], None]) -> Generator[str, None, Completion]:
        def first_chunk(model):
            stream = model.converse_stream(messages, **options)
            return stream, next(stream, None)  # a model has answered once its first chunk is here

        (stream, first), fallback_used = self._first_success(first_chunk)
        answering(stream.model_id)
        try:
            if first is not None:
                yield first
                yield from stream
        finally:
            stream.close()  # a consumer that stops early stops the model's stream too
        return replace(stream.completion, fallback_used=fallback_used)

    def _first_success(self, call: Callable[[Model], T]) -> tuple[T, bool]:
        """The first model's answer that succeeds, and whether it came from a fallback model."""
        failures: list[ModelError] = []
        for index, route in enumerate(self.routes):
            permit = route.breaker.acquire()
            if permit is None:
                failures.append(ModelError(CIRCUIT_OPEN, "circuit open", route.model.model_id))
                continue
            try:
                result = self._with_retries(route.model, call)
            except ModelError as error:
                if not error.fallback:
                    route.breaker.record_success(permit)  # the service answered: the model is up
                    raise
                route.breaker.record_failure(permit)
                failures.append(error)
                logger.warning("model %s failed (%s), trying the next model", route.model.model_id, error.code)
                continue
            route.breaker.record_success(permit)
            return result, index > 0
        raise ModelUnavailable(failures)

    def _with_retries(self, model: Model, call: Callable[[Model], T]) -> T:
        attempt = 0
        while True:
            try:
                return call(model)
            except ModelError as error:
                attempt += 1
                if not error.retryable or attempt >= self.retry.attempts:
                    raise
                self._sleep(self.retry.delay(attempt - 1, self._rng))

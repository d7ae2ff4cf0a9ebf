"""One streamed chat turn: the same session, flags and grounding as /v1/chat (chat.turn.ChatService),
answered through ConverseStream in batched frames.

The model's tokens are read on a thread of their own into a queue, so the frame window (100 ms
after a frame's first token) is kept even while the model pauses. Before the first token the
router falls back as for /v1/chat. A model failing after tokens were sent is reported (an
InferenceCompleted for what it produced), the client gets ``reset`` naming the next model, and that
model answers from the start: the client always ends with one complete answer, or an error frame.
A client that goes away (GoneException) stops the generation: the model's stream is closed.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from mangaassist.chat.turn import FEATURE, ChatService, Turn
from mangaassist.models import Completion, ModelError
from mangaassist.models.pricing import estimate_cost
from mangaassist.rest import ApiError, Caller
from mangaassist.streaming import frames
from mangaassist.streaming.relay import ClientGone, Relay

logger = logging.getLogger(__name__)
_END = object()


def _approx_tokens(text: str) -> int:
    ascii_chars = sum(1 for c in text if c.isascii())
    return -(-ascii_chars // 4) + len(text) - ascii_chars


class StreamTurn:
    def __init__(self, chat: ChatService, *, clock: Callable[[], float] = time.monotonic):
        self.chat = chat
        self.clock = clock

    def run(self, request: dict, caller: Caller, relay: Relay) -> str:
        """Stream one answer to ``relay``; what became of it: answered, refused, failed or gone."""
        started = self.clock()
        try:
            turn = self.chat.prepare(request, caller)
        except ApiError as exc:
            relay.send(frames.error(exc.code, exc.message, exc.status >= 500 or exc.status == 429))
            return "refused"
        completions: list[Completion] = []
        try:
            outcome = self._answer(turn, relay, started, completions)
        except ClientGone:
            outcome = "gone"
        if completions:
            self.chat.publish(self.chat.events(turn, completions, channel="websocket",
                                               connection_id=relay.connection_id))
        return outcome

    def _answer(self, turn: Turn, relay: Relay, started: float, completions: list[Completion]) -> str:
        # The chosen model, then the others the deployment has: who takes over after a mid-answer failure.
        candidates: list[str] = [c for c in dict.fromkeys([turn.model_id, self.chat.flags.fast_id,
                                                           *self.chat.flags.models.values()]) if c]
        batcher = frames.FrameBatcher(relay.send, clock=self.clock)
        first_token_at: float | None = None
        model_id = turn.model_id
        while True:
            stream = self.chat.providers(model_id).converse_stream(
                turn.messages, system=turn.system, max_tokens=turn.decision.max_tokens, feature=FEATURE)
            tokens: queue.Queue = queue.Queue()
            stop = threading.Event()
            reader = threading.Thread(target=_read, args=(stream, tokens, stop), name="model-stream", daemon=True)
            reader.start()
            text, answering = [], None
            try:
                while True:
                    due = batcher.due_in()
                    try:
                        item = tokens.get(timeout=due) if due is not None else tokens.get()
                    except queue.Empty:
                        batcher.flush()
                        continue
                    if item is _END:
                        break
                    if isinstance(item, ModelError):
                        raise item
                    if answering is None:
                        answering = stream.model_id or model_id
                        if first_token_at is None:
                            first_token_at = self.clock()
                            relay.send({"type": "start", "message_id": turn.message_id,
                                        "session_id": turn.session_id, "model_id": answering})
                    text.append(item)
                    batcher.add(item)
            except ModelError as error:
                if answering is None:  # no token reached the client: every model failed before its first
                    relay.send(frames.error("model_unavailable", "the assistant's models are unavailable; retry "
                                                                 "shortly", True))
                    return "failed"
                completions.append(self._failed(answering, turn, "".join(text)))
                following = candidates[candidates.index(answering) + 1:] if answering in candidates else []
                if not following:
                    relay.send(frames.error("model_unavailable", "the answer broke off and no other model is left; "
                                                                 "retry", True))
                    return "failed"
                logger.warning("model %s failed mid-answer (%s): resetting to %s", answering, error.code, following[0])
                model_id = following[0]
                batcher = frames.FrameBatcher(relay.send, clock=self.clock, seq=batcher.seq)
                relay.send({"type": "reset", "reason": f"{error.code}: the answer restarts with another model",
                            "model_id": model_id})
                continue
            except ClientGone:
                stop.set()  # nobody reads the rest: the reader closes the model's stream at its next token
                if answering is not None:
                    completions.append(self._failed(answering, turn, "".join(text), stop_reason="client_gone"))
                raise
            batcher.flush()
            completion = stream.completion
            assert completion is not None
            completions.append(completion)
            self.chat.remember(turn, completion)
            now = self.clock()
            relay.send({"type": "end", "message_id": turn.message_id,
                        "usage": {"input_tokens": sum(c.input_tokens for c in completions),
                                  "output_tokens": sum(c.output_tokens for c in completions),
                                  "cost_usd": round(sum(c.estimated_cost_usd for c in completions), 10)},
                        "first_token_ms": round(((first_token_at or now) - started) * 1000),
                        "latency_ms": round((now - started) * 1000), "frames": batcher.frames,
                        "tokens": completion.output_tokens})
            return "answered"

    @staticmethod
    def _failed(model_id: str, turn: Turn, text: str, stop_reason: str = "error") -> Completion:
        """A broken-off call as InferenceCompleted reports it: tokens estimated from what it said
        and was asked (the service's own count never arrived)."""
        prompt = turn.system + "".join(str(block.get("text", "")) for m in turn.messages for block in m["content"])
        input_tokens, output_tokens = _approx_tokens(prompt), _approx_tokens(text)
        provider = "local" if model_id.startswith("local.") else "bedrock"
        return Completion(text=text, stop_reason=stop_reason, input_tokens=input_tokens, output_tokens=output_tokens,
                          latency_ms=0, model_id=model_id, provider=provider,
                          estimated_cost_usd=estimate_cost(model_id, input_tokens, output_tokens))


def _read(stream, tokens: queue.Queue, stop: threading.Event) -> None:
    """The model's tokens onto ``tokens``; once ``stop`` is set, the stream is closed (the generator
    can only be closed by the thread iterating it), which ends the model's HTTP stream."""
    try:
        for token in stream:
            if stop.is_set():
                stream.close()
                return
            tokens.put(token)
        tokens.put(_END)
    except ModelError as error:
        tokens.put(error)
    except Exception as error:  # noqa: BLE001 (anything else the SDK raises mid-stream is a model failure)
        tokens.put(ModelError(type(error).__name__, str(error)[:300]))

"""Frames, batched: fewer WebSocket messages than tokens, the first one soon after the first token.

The answer's first token is a delta frame of its own, at once (the client sees text within a post
of the model's first token); after it, a delta frame is flushed at a sentence end, once its text
reaches SIZE_THRESHOLD bytes, or WINDOW seconds after its first unflushed token, whichever comes
first (the window is kept by the caller waiting on its token queue no longer than ``due_in()``).
No frame exceeds API Gateway's 32 KB WebSocket frame: a longer text is split into several deltas,
at character boundaries.

Frames (schemas/api/ws.frame.schema.json):
``{"type": "start", "message_id", "session_id", "model_id"}``, ``{"type": "delta", "seq", "text"}``
(seq counts from 1 across the whole answer, resets included), ``{"type": "reset", "reason",
"model_id"}`` (discard the deltas so far: another model starts the answer again),
``{"type": "end", "usage", "first_token_ms", "latency_ms"}`` and ``{"type": "error", "code",
"message", "retryable"}``.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

FRAME_LIMIT = 32 * 1024  # API Gateway: a WebSocket frame is at most 32 KB
SIZE_THRESHOLD = 2048  # bytes of text that make a frame worth sending without waiting
WINDOW = 0.1  # seconds a token may wait for company
SENTENCE_END = re.compile(r"[。．！？!?\n]|\.(?:\s|$)")
_ENVELOPE = len(json.dumps({"type": "delta", "seq": 10**9, "text": ""}))


def encode(frame: dict) -> bytes:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode()


def error(code: str, message: str, retryable: bool) -> dict:
    return {"type": "error", "code": code, "message": message, "retryable": retryable}


def split(text: str, limit: int = FRAME_LIMIT - _ENVELOPE) -> list[str]:
    """``text`` in pieces whose delta frames stay under ``limit`` bytes once JSON-escaped."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = len(json.dumps(char, ensure_ascii=False).encode()) - 2
        if current and size + width > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    return pieces + (["".join(current)] if current else [])


class FrameBatcher:
    def __init__(self, send: Callable[[dict], None], *, window: float = WINDOW, size: int = SIZE_THRESHOLD,
                 clock: Callable[[], float] = time.monotonic, seq: int = 0):
        self.send, self.window, self.size, self.clock = send, window, size, clock
        self.seq = seq
        self.frames = 0
        self._pending: list[str] = []
        self._bytes = 0
        self._since: float | None = None

    def add(self, token: str) -> None:
        if not token:
            return
        if self._since is None:
            self._since = self.clock()
        self._pending.append(token)
        self._bytes += len(token.encode())
        if not self.frames or SENTENCE_END.search(token) or self._bytes >= self.size:
            self.flush()

    def due_in(self) -> float | None:
        """Seconds until the pending text must go (0: now); None when nothing waits."""
        if self._since is None:
            return None
        return max(0.0, self._since + self.window - self.clock())

    def flush(self) -> None:
        text = "".join(self._pending)
        self._pending, self._bytes, self._since = [], 0, None
        for piece in split(text):
            self.seq += 1
            self.frames += 1
            self.send({"type": "delta", "seq": self.seq, "text": piece})

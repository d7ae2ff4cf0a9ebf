"""One chat turn: ground, answer, remember, report.

1. The products closest to the message (and the session's last user message) are retrieved
   from the vector index and put in the system prompt (chat.grounding).
2. The fast model answers first (the router falls back to the other model when it fails), with
   the session's last turns as context, within the request's deadline.
3. The user's message and the answer are appended to the session with one conditional write
   (dal.sessions): concurrent turns of one session never lose a message.
4. MessageReceived and InferenceCompleted are published after the answer is sent
   (mangaassist.after_response): the client does not wait for analytics.
"""
from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable

from mangaassist import after_response
from mangaassist.chat import grounding
from mangaassist.dal.sessions import SessionNotFound, Sessions
from mangaassist.events.publisher import Event
from mangaassist.inference import inference_completed
from mangaassist.rest import ApiError, Caller, Deadline

FEATURE = "chat"
MAX_TOKENS = 500
SESSION_TTL_SECONDS = 24 * 3600
MAX_SESSION_MESSAGES = 20  # ten turns of context
CONTEXT_MESSAGES = 8  # the last four turns go into the prompt


def new_session_id() -> str:
    return "sess_" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


class ChatService:
    def __init__(self, *, sessions: Sessions, provider, embedder, store, publish: Callable[[list[Event]], list[str]],
                 clock: Callable[[], float] = time.perf_counter):
        self.sessions = sessions
        self.provider = provider
        self.embedder = embedder
        self.store = store
        self.publish = publish
        self.clock = clock

    def turn(self, request: dict, caller: Caller, deadline: Deadline, *, channel: str = "rest") -> dict:
        started = self.clock()
        message = request["message"].strip()
        session_id = request.get("session_id")
        history: list[dict] = []
        session = None
        if session_id:
            session = self.sessions.get(session_id, caller.client_id)
            if session is None:
                raise ApiError(404, "unknown_session", "no such session for this client (sessions end after "
                                                       "24 hours without a turn): start a new one")
            history = session["turns"]
        else:
            session_id = new_session_id()
        locale = grounding.language(message, request.get("locale"))
        found = deadline.run(lambda: self._ground(message, history))
        messages = [{"role": t["role"], "content": [{"text": t["text"]}]} for t in history[-CONTEXT_MESSAGES:]]
        messages.append({"role": "user", "content": [{"text": message}]})
        system = grounding.system_prompt(found, locale)
        completion = deadline.run(lambda: self.provider.converse(messages, system=system, max_tokens=MAX_TOKENS,
                                                                 feature=FEATURE))
        message_id = "msg_" + uuid.uuid4().hex[:20]
        now = int(time.time())
        try:
            self.sessions.append(session_id, caller.client_id, [
                {"role": "user", "text": message, "message_id": message_id, "at": now},
                {"role": "assistant", "text": completion.text, "message_id": message_id, "at": now,
                 "model_id": completion.model_id},
            ], user_id=caller.user_id, must_exist=bool(request.get("session_id")), seen=session)
        except SessionNotFound as exc:  # deleted, or expired, while the model answered
            raise ApiError(404, "unknown_session", "the session ended while answering: start a new one") from exc
        answer = {
            "session_id": session_id, "message_id": message_id, "answer": completion.text,
            "model_id": completion.model_id, "fallback": completion.fallback_used,
            "citations": grounding.cited(completion.text, found),
            "usage": {"input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens,
                      "cost_usd": completion.estimated_cost_usd},
            "latency_ms": round((self.clock() - started) * 1000),
        }
        received = {"version": "1", "session_id": session_id, "message_id": message_id, "text": message[:4000],
                    "channel": channel}
        if caller.user_id:
            received["customer_id"] = caller.user_id[:200]
        events = [Event("mangaassist.chat", "MessageReceived", received),
                  inference_completed(completion, request_id=message_id, feature=FEATURE, correlation_id=session_id)]
        after_response.defer(lambda: self.publish(events))
        return answer

    def forget(self, session_id: str, caller: Caller) -> None:
        try:
            self.sessions.delete(session_id, caller.client_id)
        except SessionNotFound as exc:
            raise ApiError(404, "unknown_session", "no such session for this client") from exc

    def _ground(self, message: str, history: list[dict]) -> list[grounding.Product]:
        previous = next((t["text"] for t in reversed(history) if t["role"] == "user"), "")
        vector = self.embedder.embed([f"{message}\n{previous}" if previous else message])[0]
        return grounding.products(self.store.query(vector, k=grounding.TOP_K, filters={"status": "active"}))

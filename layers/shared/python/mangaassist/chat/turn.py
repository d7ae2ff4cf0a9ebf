"""One chat turn: decide, ground, answer, remember, report.

1. The flags decide (mangaassist.flags): whether chat is on, which model answers first (the fast
   one by default; by tier or rollout share otherwise), the token limit, the prompt version,
   the daily token budget and what happens past it, and whether a shadow model answers too.
2. The products closest to the message (and the session's last user message) are retrieved
   from the vector index and put in the system prompt (chat.grounding).
3. The chosen model answers (the router falls back to the others when it fails), with the
   session's last turns as context, within the request's deadline.
4. The user's message and the answer are appended to the session with one conditional write
   (dal.sessions): concurrent turns of one session never lose a message.
5. MessageReceived and InferenceCompleted are published after the answer is sent
   (mangaassist.after_response): the client does not wait for analytics, nor for a shadow call.
"""
from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mangaassist import after_response
from mangaassist.chat import grounding
from mangaassist.dal.sessions import SessionNotFound, Sessions
from mangaassist.events.publisher import Event
from mangaassist.flags import shadow
from mangaassist.flags.budget import Budgets
from mangaassist.flags.decisions import Decision, FlagBook
from mangaassist.inference import inference_completed
from mangaassist.models import Completion, Provider
from mangaassist.rest import ApiError, Caller, Deadline

FEATURE = "chat"
PAUSED_RETRY_AFTER = "30"
SESSION_TTL_SECONDS = 24 * 3600
MAX_SESSION_MESSAGES = 20  # ten turns of context
CONTEXT_MESSAGES = 8  # the last four turns go into the prompt


def new_session_id() -> str:
    return "sess_" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


def seconds_to_midnight_utc(now: float | None = None) -> int:
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - moment).total_seconds()))


def gate(flags: FlagBook, budgets: Budgets, decision: Decision) -> tuple[str, str | None]:
    """(the model to call, "downgraded" or None) for a feature the flags turned on; raises the
    answer when they turned it off (503) or its budget is spent and the flag says refuse (429)."""
    if not decision.enabled:
        raise ApiError(503, "feature_paused", f"{decision.feature} is paused by its operators; retry later",
                       headers={"Retry-After": PAUSED_RETRY_AFTER})
    if budgets.exhausted(decision.feature, decision.daily_token_budget):
        if decision.over_budget == "refuse":
            raise ApiError(429, "budget_exhausted", f"today's token budget for {decision.feature} is spent; "
                                                    "retry after midnight UTC",
                           headers={"Retry-After": str(seconds_to_midnight_utc())})
        return flags.fast_id, "downgraded"
    return decision.model_id, None


@dataclass(frozen=True)
class Turn:
    """A turn ready for the model: who asks, in which session, what the flags decided, the prompt."""

    caller: Caller
    session_id: str
    session: dict | None  # as read: the write is conditioned on it
    existing: bool  # the client named the session (it must still exist when the answer is written)
    message: str
    message_id: str
    decision: Decision
    model_id: str
    budget_action: str | None
    found: list[grounding.Product]
    messages: list[dict]
    system: str


class ChatService:
    def __init__(self, *, sessions: Sessions, flags: FlagBook, budgets: Budgets, providers: Callable[..., Provider],
                 embedder, store, publish: Callable[[list[Event]], list[str]],
                 clock: Callable[[], float] = time.perf_counter):
        self.sessions = sessions
        self.flags = flags
        self.budgets = budgets
        self.providers = providers  # (model_id, only=False) -> a provider with that model first
        self.embedder = embedder
        self.store = store
        self.publish = publish
        self.clock = clock

    def turn(self, request: dict, caller: Caller, deadline: Deadline) -> dict:
        """One REST turn: the whole answer at once."""
        started = self.clock()
        turn = self.prepare(request, caller, deadline.run)
        provider = self.providers(turn.model_id)
        completion = deadline.run(lambda: provider.converse(turn.messages, system=turn.system,
                                                            max_tokens=turn.decision.max_tokens, feature=FEATURE))
        self.remember(turn, completion)
        answer = {
            "session_id": turn.session_id, "message_id": turn.message_id, "answer": completion.text,
            "model_id": completion.model_id, "fallback": completion.fallback_used,
            "citations": grounding.cited(completion.text, turn.found),
            "usage": {"input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens,
                      "cost_usd": completion.estimated_cost_usd},
            "latency_ms": round((self.clock() - started) * 1000),
        }
        events = self.events(turn, [completion], channel="rest")
        after_response.defer(lambda: self.publish(events))
        if turn.decision.shadow_model_id and turn.decision.shadow_model_id != completion.model_id:
            shadow_provider = self.providers(turn.decision.shadow_model_id, only=True)
            after_response.defer(lambda: shadow.compare(
                completion, lambda: shadow_provider.converse(turn.messages, system=turn.system,
                                                             max_tokens=turn.decision.max_tokens, feature=FEATURE),
                request_id=turn.message_id, feature=FEATURE, with_texts=turn.decision.shadow_texts,
                publish=self.publish))
        return answer

    def prepare(self, request: dict, caller: Caller, run: Callable = lambda work: work()) -> Turn:
        """Everything before the model answers: the session, the flags' decision, the grounded prompt.
        ``run`` bounds the I/O (a deadline's run for REST). Raises ApiError for a refusal."""
        message = request["message"].strip()
        session_id = request.get("session_id")
        session = None
        if session_id:
            session = run(lambda: self.sessions.get(session_id, caller.client_id))
            if session is None:
                raise ApiError(404, "unknown_session", "no such session for this client (sessions end after "
                                                       "24 hours without a turn): start a new one")
        history: list[dict] = session["turns"] if session else []
        session_id = session_id or new_session_id()
        message_id = "msg_" + uuid.uuid4().hex[:20]
        context = self.flags.context(FEATURE, tier=caller.tier, user_id=caller.user_id, request_id=message_id,
                                     subject=caller.user_id or session_id)
        decision = self.flags.decide(FEATURE, context)
        model_id, budget_action = gate(self.flags, self.budgets, decision)
        found = run(lambda: self._ground(message, history))
        messages = [{"role": t["role"], "content": [{"text": t["text"]}]} for t in history[-CONTEXT_MESSAGES:]]
        messages.append({"role": "user", "content": [{"text": message}]})
        locale = grounding.language(message, request.get("locale"))
        return Turn(caller=caller, session_id=session_id, session=session, existing=bool(request.get("session_id")),
                    message=message, message_id=message_id, decision=decision, model_id=model_id,
                    budget_action=budget_action, found=found, messages=messages,
                    system=grounding.system_prompt(found, locale, decision.prompt_version))

    def remember(self, turn: Turn, completion: Completion) -> None:
        """The message and its answer, appended to the session (one conditional write)."""
        now = int(time.time())
        try:
            self.sessions.append(turn.session_id, turn.caller.client_id, [
                {"role": "user", "text": turn.message, "message_id": turn.message_id, "at": now},
                {"role": "assistant", "text": completion.text, "message_id": turn.message_id, "at": now,
                 "model_id": completion.model_id},
            ], user_id=turn.caller.user_id, must_exist=turn.existing, seen=turn.session)
        except SessionNotFound as exc:  # deleted, or expired, while the model answered
            raise ApiError(404, "unknown_session", "the session ended while answering: start a new one") from exc

    def events(self, turn: Turn, completions: list[Completion], *, channel: str,
               connection_id: str | None = None) -> list[Event]:
        """MessageReceived, and an InferenceCompleted per model call (a failed one included)."""
        received = {"version": "1", "session_id": turn.session_id, "message_id": turn.message_id,
                    "text": turn.message[:4000], "channel": channel}
        if turn.caller.user_id:
            received["customer_id"] = turn.caller.user_id[:200]
        if connection_id:
            received["connection_id"] = connection_id[:200]
        chosen = {"model_rule": turn.decision.model_rule, "prompt_version": turn.decision.prompt_version}
        if turn.budget_action:
            chosen["budget_action"] = turn.budget_action
        calls = [inference_completed(completion, request_id=turn.message_id if i == 0 else
                                     f"{turn.message_id}-{i}", feature=FEATURE, correlation_id=turn.session_id,
                                     **chosen) for i, completion in enumerate(completions)]
        return [Event("mangaassist.chat", "MessageReceived", received), *calls]

    def forget(self, session_id: str, caller: Caller) -> None:
        try:
            self.sessions.delete(session_id, caller.client_id)
        except SessionNotFound as exc:
            raise ApiError(404, "unknown_session", "no such session for this client") from exc

    def _ground(self, message: str, history: list[dict]) -> list[grounding.Product]:
        previous = next((t["text"] for t in reversed(history) if t["role"] == "user"), "")
        vector = self.embedder.embed([f"{message}\n{previous}" if previous else message])[0]
        return grounding.products(self.store.query(vector, k=grounding.TOP_K, filters={"status": "active"}))

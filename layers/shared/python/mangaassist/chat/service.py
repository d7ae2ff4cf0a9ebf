"""The chat service a container keeps: built once, from the settings, on first use."""
from __future__ import annotations

from functools import cache

from mangaassist.chat.turn import ChatService
from mangaassist.deps import Deps


@cache
def chat_service() -> ChatService:
    deps = Deps()
    return ChatService(sessions=deps.sessions, flags=deps.flags, budgets=deps.budgets, providers=deps.provider_for,
                       embedder=deps.embedder, store=deps.store, publish=deps.publish)

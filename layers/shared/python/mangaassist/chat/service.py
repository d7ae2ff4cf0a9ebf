"""The chat service a container keeps: built once, from the settings, on first use."""
from __future__ import annotations

from functools import cache

from mangaassist.chat.turn import ChatService
from mangaassist.deps import Deps


@cache
def chat_service() -> ChatService:
    deps = Deps()
    return ChatService(sessions=deps.sessions, provider=deps.provider, embedder=deps.embedder, store=deps.store,
                       publish=deps.publish)

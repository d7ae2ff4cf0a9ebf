"""Streamed answers over WebSocket: the turn runs off the route (WebSocket -> queue -> worker, so it
outlives API Gateway's 29 s), streams from ConverseStream, and posts batched frames through the
``@connections`` API; a model failing mid-answer is replaced by the next one after a ``reset``."""

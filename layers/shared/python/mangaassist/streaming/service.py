"""The WebSocket side of the conversation: connections in, turns queued, frames out.

The route function (functions/websocket) answers within API Gateway's 29 s: it keeps the
connection's row, checks each sendMessage (its contract, the connection's rate, one turn at a time)
and queues the turn; the stream worker (functions/stream_worker) runs it (streaming.turn) however
long it takes. Refusals are error frames posted to the connection; the connection stays open,
except past the rate limit, where it is closed after its error frame.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import cache

from mangaassist import settings
from mangaassist.contracts import ContractError, validate_api
from mangaassist.dal.connections import Connections
from mangaassist.rest import Caller, caller
from mangaassist.streaming import frames
from mangaassist.streaming.relay import ClientGone, Relay

MESSAGES_PER_MINUTE = 30  # per connection: a client sending more is closed (policy violation)


class WebSocketRoutes:
    def __init__(self, *, connections: Connections, relay_for: Callable[[str], Relay],
                 enqueue: Callable[[dict], None]):
        self.connections, self.relay_for, self.enqueue = connections, relay_for, enqueue

    def connect(self, event: dict) -> dict:
        context = event["requestContext"]
        who = caller(event)
        self.connections.open(context["connectionId"], client_id=who.client_id, user_id=who.user_id, tier=who.tier)
        return {"statusCode": 200}

    def disconnect(self, event: dict) -> dict:
        self.connections.close(event["requestContext"]["connectionId"])
        return {"statusCode": 200}

    def unknown(self, event: dict) -> dict:
        """$default: a frame that is not JSON, or names no route."""
        relay = self.relay_for(event["requestContext"]["connectionId"])
        try:
            body = json.loads(event.get("body") or "")
            action = body.get("action") if isinstance(body, dict) else None
            self._send(relay, frames.error("unknown_action", f"no action {action!r}: send "
                                                             '{"action": "sendMessage", "message": ...}', False))
        except ValueError:
            self._send(relay, frames.error("invalid_json", "a frame is a JSON object", False))
        return {"statusCode": 200}

    def send_message(self, event: dict) -> dict:
        connection_id = event["requestContext"]["connectionId"]
        relay = self.relay_for(connection_id)
        try:
            request = json.loads(event.get("body") or "")
            validate_api("ws.sendMessage.request", request)
        except ValueError as exc:  # ContractError is one
            path = exc.path if isinstance(exc, ContractError) else None
            message = exc.message if isinstance(exc, ContractError) else "a frame is a JSON object"
            self._send(relay, {**frames.error("invalid_request", message, False), **({"path": path} if path else {})})
            return {"statusCode": 200}
        row = self.connections.get(connection_id)
        if row is None:
            self._send(relay, frames.error("unknown_connection", "reconnect: this connection is not known", True))
            return {"statusCode": 200}
        if self.connections.count_message(connection_id) > MESSAGES_PER_MINUTE:
            self._send(relay, frames.error("rate_limited", f"more than {MESSAGES_PER_MINUTE} messages a minute: "
                                                           "the connection is closed", True))
            relay.close()
            self.connections.close(connection_id)
            return {"statusCode": 200}
        request_id = "req_" + uuid.uuid4().hex[:20]
        if not self.connections.claim_stream(connection_id, request_id):
            self._send(relay, frames.error("busy", "an answer is streaming on this connection: send the next message "
                                                   "after its end frame", True))
            return {"statusCode": 200}
        try:
            self.enqueue({"request_id": request_id, "connection_id": connection_id, "client_id": row["client_id"],
                          "user_id": row.get("user_id"), "tier": row.get("tier", "free"),
                          "request": {k: v for k, v in request.items() if k != "action"}})
        except Exception:
            self.connections.release_stream(connection_id, request_id)
            self._send(relay, frames.error("unavailable", "the message could not be queued; retry", True))
            raise
        return {"statusCode": 200}

    @staticmethod
    def _send(relay: Relay, frame: dict) -> None:
        try:
            relay.send(frame)
        except ClientGone:
            pass  # it left: nobody to tell


def management_client():
    from mangaassist import clients

    return clients.client("apigatewaymanagementapi", endpoint_url=settings.websocket_callback_url())


@cache
def routes() -> WebSocketRoutes:
    from mangaassist import clients
    from mangaassist.deps import Deps

    sqs, url = clients.lazy("sqs"), settings.queue_url("streams")  # $connect and $disconnect queue nothing
    return WebSocketRoutes(connections=Deps().connections, relay_for=lambda cid: Relay(management_client(), cid),
                           enqueue=lambda job: sqs.send_message(QueueUrl=url, MessageBody=json.dumps(job)))


def run_streamed_turn(job: dict) -> str:
    """The stream worker's one job: the turn streamed, the connection's slot released."""
    from mangaassist.chat.service import chat_service
    from mangaassist.deps import Deps
    from mangaassist.streaming.turn import StreamTurn

    connections = Deps().connections
    relay = Relay(management_client(), job["connection_id"])
    who = Caller(client_id=job["client_id"], user_id=job.get("user_id"), tier=job.get("tier", "free"),
                 verified=bool(job.get("user_id")))
    try:
        outcome = StreamTurn(chat_service()).run(job["request"], who, relay)
    finally:
        connections.release_stream(job["connection_id"], job["request_id"])
    if outcome == "gone":
        connections.close(job["connection_id"])
    return outcome

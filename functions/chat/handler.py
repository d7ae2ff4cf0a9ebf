"""POST /v1/chat and DELETE /v1/sessions/{session_id}: the assistant's conversation over REST.

Thin glue on Powertools' REST resolver: the turn itself is mangaassist.chat.turn.ChatService;
events are published after the answer by the internal extension mangaassist.after_response
registers here, at init.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from mangaassist import after_response, rest
from mangaassist.chat.service import chat_service

logger = Logger()
app = APIGatewayRestResolver()
rest.install_error_handlers(app)


@app.post("/v1/chat")
def post_chat():
    event = app.current_event.raw_event
    request = rest.json_body(event, "chat.request")
    who = rest.caller(event, request.get("user_id"))
    return chat_service().turn(request, who, rest.Deadline.for_invocation(app.lambda_context))


@app.delete("/v1/sessions/<session_id>")
def delete_session(session_id: str):
    chat_service().forget(session_id, rest.caller(app.current_event.raw_event))
    return Response(status_code=204, content_type="application/json", body="")


@after_response.handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def lambda_handler(event, context):
    return app.resolve(event, context)

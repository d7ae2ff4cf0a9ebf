"""The WebSocket API's routes: $connect (after the authorizer), $disconnect, sendMessage (checked and
queued for the stream worker), $default (an error frame). Thin glue over mangaassist.streaming.service.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger

from mangaassist.streaming.service import routes

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    route = event["requestContext"].get("routeKey")
    logger.append_keys(connection_id=event["requestContext"].get("connectionId"), route=route)
    handlers = {"$connect": routes().connect, "$disconnect": routes().disconnect, "sendMessage": routes().send_message}
    return handlers.get(route, routes().unknown)(event)

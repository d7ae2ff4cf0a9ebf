"""POST /v1/recommend: products for a customer, each with a reason (REST).

Thin glue: mangaassist.recommendations.service.Recommender does the work; its events are
published after the answer by the internal extension registered here, at init.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths

from mangaassist import after_response, rest
from mangaassist.recommendations.service import recommender

logger = Logger()
app = APIGatewayRestResolver()
rest.install_error_handlers(app)


@app.post("/v1/recommend")
def post_recommend():
    event = app.current_event.raw_event
    request = rest.json_body(event, "recommend.request")
    return recommender().recommend(request, rest.caller(event), rest.Deadline.for_invocation(app.lambda_context))


@after_response.handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def lambda_handler(event, context):
    return app.resolve(event, context)

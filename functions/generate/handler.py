"""POST /v1/generate (202 + a job) and GET /v1/jobs/{job_id}: long generation, off the request path.

Thin glue: mangaassist.jobs.submit.JobDesk stores and queues the job; the job_worker function
runs it from the queue.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from mangaassist import rest
from mangaassist.jobs.submit import base_path, job_desk

logger = Logger()
app = APIGatewayRestResolver()
rest.install_error_handlers(app)


@app.post("/v1/generate")
def post_generate():
    event = app.current_event.raw_event
    request = rest.json_body(event, "generate.request")
    queued = job_desk().submit(request, rest.caller(event), event.get("headers") or {}, base_path(event),
                               app.lambda_context)
    return Response(status_code=202, content_type="application/json", body=queued,
                    headers={"Location": queued["status_url"]})


@app.get("/v1/jobs/<job_id>")
def get_job(job_id: str):
    return job_desk().status(job_id, rest.caller(app.current_event.raw_event))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def lambda_handler(event, context):
    return app.resolve(event, context)

"""POST /webhooks/{source} on the function URL: partners' signed webhooks onto the bus.

Thin glue: the pipeline is mangaassist.webhooks.ingest.Ingress, built once per container. The
claim's completion record is written after the answer, by the internal extension that
mangaassist.after_response registers here, at init.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger

from mangaassist import after_response
from mangaassist.http import error_response
from mangaassist.webhooks.ingest import Ingress

logger = Logger()
_ingress: Ingress | None = None


@after_response.handler
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    global _ingress
    if _ingress is None:  # built on first use so configuration errors surface in the logs, not at import
        _ingress = Ingress.from_env()
    try:
        response = _ingress.handle(event, context)
    except Exception:  # a bug must not look like an acknowledgement: nothing was accepted, retry
        logger.exception("webhook failed")
        return error_response(503, "unavailable", "the delivery could not be processed; retry later",
                              {"retry-after": "5"})
    logger.info("webhook answered", extra={"status": response["statusCode"], "path": event.get("rawPath")})
    return response

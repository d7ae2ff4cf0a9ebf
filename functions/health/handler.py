"""GET /health: liveness for load balancers and `ops status`; says which build is running."""
from __future__ import annotations

from mangaassist import settings
from mangaassist.http import json_response

BUILD_VERSION = settings.build_version()  # read at init: a deployment without it fails to start, loudly
RUNTIME = settings.runtime()


def lambda_handler(event, context):
    return json_response(200, {"status": "ok", "service": "mangaassist", "version": BUILD_VERSION,
                               "function": getattr(context, "function_name", None) or RUNTIME.function_name,
                               "region": RUNTIME.region})

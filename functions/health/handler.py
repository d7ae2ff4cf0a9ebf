"""GET /health: liveness for load balancers and `ops status`; says which build is running."""
from __future__ import annotations

import json
import os


def lambda_handler(event, context):
    body = {
        "status": "ok",
        "service": "mangaassist",
        "function": getattr(context, "function_name", os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "health")),
        "version": os.environ.get("BUILD_VERSION", "dev"),
        "region": os.environ.get("AWS_REGION", "local"),
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}

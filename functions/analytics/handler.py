"""SQS (every mangaassist.* event, from the catch-all rule) -> JSON lines on S3, partial failures."""
from __future__ import annotations

from mangaassist.workers.analytics import write_batch


def lambda_handler(event, context):
    return write_batch(event, context)

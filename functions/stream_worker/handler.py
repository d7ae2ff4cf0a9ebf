"""SQS (the streams queue) -> one chat turn streamed to its WebSocket connection in batched frames.

Thin glue: mangaassist.streaming.service.run_streamed_turn. A turn is never redelivered (the
queue's maxReceiveCount is 1): half an answer streamed twice would confuse the client more than
an error frame does.
"""
from __future__ import annotations

import json

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from mangaassist.streaming.service import run_streamed_turn

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> str:
    job = json.loads(record.body)
    logger.append_keys(connection_id=job.get("connection_id"), request_id=job.get("request_id"))
    outcome = run_streamed_turn(job)
    logger.info("streamed", extra={"outcome": outcome})
    return outcome


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

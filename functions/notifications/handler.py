"""SQS (every platform event, and the dispatcher's own retries) -> Standard Webhooks deliveries to
subscriptions and job callbacks (mangaassist.notifications.dispatch).

Thin glue on Powertools' batch processor: a message that cannot be read fails alone; a delivery
that fails is retried by the dispatcher itself on Svix's schedule, not by SQS.
"""
from __future__ import annotations

import json

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from mangaassist.notifications.service import dispatcher

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> list[str]:
    outcomes = dispatcher().handle(json.loads(record.body))
    if outcomes:
        logger.info("notifications", extra={"outcomes": outcomes})
    return outcomes


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

"""The analytics sink: every mangaassist.* event, from SQS batches into JSON lines on S3.

Objects are partitioned for Athena/Glue: ``events/date=YYYY-MM-DD/source=<source>/
detail_type=<detail-type>/<event id>.jsonl``. One object per event, named by its id, makes the
sink idempotent (a redelivered message rewrites the same object) at the price of small objects;
past a few hundred events a second, Firehose would be the cheaper sink. Each record succeeds or
fails alone (Powertools batch processing): a bad record is reported in batchItemFailures, retried,
and after the queue's maxReceiveCount dead-lettered, while the rest of the batch is done.
"""
from __future__ import annotations

import json
import os
import re

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from mangaassist.contracts import validate_envelope

SAFE = re.compile(r"[^A-Za-z0-9._-]")
_clients: dict = {}


def object_key(event: dict) -> str:
    return (f"events/date={event['time'][:10]}/source={SAFE.sub('_', event['source'])}/"
            f"detail_type={SAFE.sub('_', event['detail-type'])}/{SAFE.sub('_', event['id'])}.jsonl")


def store_event(record) -> str:
    """Powertools record handler: raise to fail this record only."""
    if "s3" not in _clients:
        import boto3

        _clients["s3"] = boto3.client("s3")
    event = json.loads(record.body)
    validate_envelope(event)
    key = object_key(event)
    line = json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"
    _clients["s3"].put_object(Bucket=os.environ["ANALYTICS_BUCKET"], Key=key, Body=line.encode(),
                              ContentType="application/x-ndjson", ServerSideEncryption="AES256")
    return key


def write_batch(sqs_event: dict, context=None) -> dict:
    """An SQS event -> objects on S3; returns the partial batch response."""
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=sqs_event, record_handler=store_event, processor=processor, context=context)

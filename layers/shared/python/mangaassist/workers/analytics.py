"""The analytics sink: every mangaassist.* event, from SQS batches into JSON lines on S3.

Objects are partitioned for Athena/Glue: ``events/date=YYYY-MM-DD/source=<source>/
detail_type=<detail-type>/<digest>.jsonl``, one object per partition per batch (as Firehose
writes), not one per event: a batch of ten is one PUT, not ten, and queries read fewer, larger
files. The name is a digest of the object's event ids, so a batch delivered again rewrites the
same object. SQS and EventBridge deliver at least once, and a message can come back in another
batch, so readers count distinct event ids (``SELECT DISTINCT id`` or a window over ``id``).

Each record fails alone: one that is not a valid event envelope is reported in
batchItemFailures (retried, and after the queue's maxReceiveCount dead-lettered), as is every
record of an object that could not be written; the rest of the batch is done.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re

from mangaassist import clients, settings
from mangaassist.contracts import validate_envelope

SAFE = re.compile(r"[^A-Za-z0-9._-]")
logger = logging.getLogger(__name__)


def partition(event: dict) -> str:
    return (f"events/date={event['time'][:10]}/source={SAFE.sub('_', event['source'])}/"
            f"detail_type={SAFE.sub('_', event['detail-type'])}/")


def object_key(events: list[dict]) -> str:
    """Where these events (one partition's share of a batch) are written."""
    digest = hashlib.sha256("\n".join(sorted(str(e["id"]) for e in events)).encode()).hexdigest()[:32]
    return f"{partition(events[0])}{digest}.jsonl"


def write_batch(sqs_event: dict, context=None) -> dict:
    """An SQS event -> objects on S3; returns the partial batch response.

    Powertools' BatchProcessor handles records one at a time; writing one object per partition
    needs the whole batch first, so the (small) partial-response bookkeeping is done here.
    """
    records = sqs_event.get("Records") or []
    failed: set[str] = set()
    groups: dict[str, list[tuple[str, dict]]] = {}
    for record in records:
        try:
            event = json.loads(record["body"])
            validate_envelope(event)
            groups.setdefault(partition(event), []).append((record["messageId"], event))
        except Exception as exc:  # this record only: the others go on
            logger.warning("record %s is not an event envelope: %s", record.get("messageId"), exc)
            failed.add(record.get("messageId"))
    for members in groups.values():
        events = [event for _, event in members]
        body = "".join(json.dumps(e, separators=(",", ":"), ensure_ascii=False) + "\n" for e in events)
        try:
            clients.client("s3").put_object(Bucket=settings.bucket("analytics"), Key=object_key(events),
                                            Body=body.encode(), ContentType="application/x-ndjson",
                                            ServerSideEncryption="AES256")
        except Exception as exc:  # these records come back; other partitions are kept
            logger.warning("could not write %d events to the analytics bucket: %s", len(events), exc)
            failed.update(message_id for message_id, _ in members)
    return {"batchItemFailures": [{"itemIdentifier": r.get("messageId")} for r in records
                                  if r.get("messageId") in failed]}

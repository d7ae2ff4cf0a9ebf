"""SQS (the jobs queue) -> each generation job run, recorded and announced (JobCompleted).

Thin glue on Powertools' batch processor: a record fails alone (partial batch response), so a
model outage retries only its own job.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from mangaassist import settings
from mangaassist.deps import Deps
from mangaassist.jobs.worker import job_id_of, run_job

logger = Logger()
# A failed job is a batch item failure, not a function error: no Errors alarm for a model outage.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
deps = Deps()
MAX_ATTEMPTS = settings.job_max_attempts()


def record_handler(record: SQSRecord) -> str:
    attempt = int(record.attributes.approximate_receive_count or 1)
    outcome = run_job(job_id_of(record.body), deps, last_attempt=attempt >= MAX_ATTEMPTS)
    logger.info("job done", extra={"job_outcome": outcome, "attempt": attempt})
    return outcome


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

"""Generation jobs: long work off the request path (POST /v1/generate -> SQS -> the job worker).

A job outlives API Gateway's 29 s: the API answers 202 with the job's id once the job is stored
and queued; the worker runs the task on the fallback model first (Sonnet: these tasks want its
reasoning), records the result and publishes ``mangaassist.jobs/JobCompleted``, which the
outbound dispatcher delivers, signed, to the job's callback_url.
"""
from __future__ import annotations

JOB_TTL_SECONDS = 30 * 24 * 3600  # a finished job can be read for 30 days

"""POST /v1/generate and GET /v1/jobs/{job_id}: queue a job, report on it.

An ``Idempotency-Key`` header makes a submission safe to retry: the same key and body from the
same client get the same job back; the same key with another body is refused (422). Keys are
scoped to the client (API key), kept 24 hours, and claimed with Powertools idempotency on
``[client_id, key]`` with the body's hash as the payload check.
"""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from functools import cache

from mangaassist.dal.jobs import FINISHED, Jobs
from mangaassist.http import header
from mangaassist.rest import ApiError, Caller

IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,128}")  # printable ASCII, no spaces
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
JOB_FIELDS = ("job_id", "task", "status", "result", "error", "usage", "created_at", "updated_at")


class JobDesk:
    def __init__(self, *, jobs: Jobs, send: Callable[[str], None], flags=None, budgets=None, persistence=None):
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        self.jobs = jobs
        self.send = send  # puts the job's id on the jobs queue
        self.flags, self.budgets = flags, budgets  # the kill switch and the budget, checked at submission
        self.idempotency = IdempotencyConfig(event_key_jmespath="[client_id, key]", payload_validation_jmespath="body",
                                             raise_on_no_idempotency_key=True,
                                             expires_after_seconds=IDEMPOTENCY_TTL_SECONDS)
        if persistence is None:
            from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

            from mangaassist import clients, settings

            persistence = DynamoDBPersistenceLayer(table_name=settings.table("idempotency"),
                                                   boto3_client=clients.client("dynamodb"))
        self._submit_once = idempotent_function(data_keyword_argument="submission", persistence_store=persistence,
                                                config=self.idempotency)(self._submit)

    def submit(self, request: dict, caller: Caller, headers: dict, base_path: str, context=None) -> dict:
        if self.flags is not None:
            from mangaassist.chat.turn import gate

            gate(self.flags, self.budgets, self.flags.decide("generate", self.flags.context(
                "generate", tier=caller.tier, subject=caller.user_id or caller.client_id, request_id=str(uuid.uuid4()),
                user_id=caller.user_id)))
        key = header(headers, "Idempotency-Key")
        if key is None:
            return self._queue(request, caller.client_id, base_path)
        if not IDEMPOTENCY_KEY.fullmatch(key):
            raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1-128 printable ASCII characters")
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        if context is not None:
            self.idempotency.register_lambda_context(context)
        submission = {"client_id": caller.client_id, "key": key, "body": json.dumps(request, sort_keys=True),
                      "request": request, "base_path": base_path}
        try:
            return self._submit_once(submission=submission)
        except IdempotencyValidationError as exc:
            raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used with a different body") \
                from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise ApiError(409, "in_progress", "a request with this Idempotency-Key is being processed; retry",
                           headers={"Retry-After": "1"}) from exc

    def _submit(self, submission: dict) -> dict:
        return self._queue(submission["request"], submission["client_id"], submission["base_path"])

    def _queue(self, request: dict, client_id: str, base_path: str) -> dict:
        job_id = "job_" + uuid.uuid4().hex[:20]
        self.jobs.create(job_id, client_id=client_id, task=request["task"], input=request["input"],
                         callback_url=request.get("callback_url"))
        try:
            self.send(job_id)
        except Exception:
            self.jobs.delete(job_id)  # never a job that no worker will run
            raise
        return {"job_id": job_id, "status": "queued", "status_url": f"{base_path}/v1/jobs/{job_id}"}

    def status(self, job_id: str, caller: Caller) -> dict:
        job = self.jobs.get(job_id)
        if job is None or job.get("client_id") != caller.client_id:  # another client's job is not found either
            raise ApiError(404, "unknown_job", f"no job {job_id!r} for this client (jobs are kept 30 days)")
        view = {field: job[field] for field in JOB_FIELDS if field in job}
        if job["status"] not in FINISHED:
            view.pop("result", None)
        return view


def base_path(event: dict) -> str:
    """The API's own prefix in the caller's URL: the stage (``/prod``) or a custom domain's base path."""
    full, route = (event.get("requestContext") or {}).get("path") or "", event.get("path") or ""
    return full[: -len(route)] if route and full.endswith(route) else ""


@cache
def job_desk() -> JobDesk:
    from mangaassist import clients, settings
    from mangaassist.deps import Deps

    sqs, url, deps = clients.lazy("sqs"), settings.queue_url("jobs"), Deps()  # GET /v1/jobs queues nothing
    return JobDesk(jobs=deps.jobs, flags=deps.flags, budgets=deps.budgets,
                   send=lambda job_id: sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": job_id})))

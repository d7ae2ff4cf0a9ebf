"""The job worker: runs queued jobs, records what happened, announces it.

Each SQS message names one job. A job already finished is skipped (SQS delivers at least once),
except that its JobCompleted is published again if the last attempt could not confirm it. A
model outage raises, so SQS delivers the message again after its visibility timeout; on the
queue's last attempt (``JOB_MAX_ATTEMPTS``, its maxReceiveCount) the job is failed instead, so a
client polling it or waiting for its callback always hears the end.
"""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from mangaassist.dal.jobs import FAILED, FINISHED, SUCCEEDED
from mangaassist.events.publisher import Event
from mangaassist.inference import inference_completed
from mangaassist.jobs.tasks import TASKS, TaskRefused
from mangaassist.models import ModelError

logger = logging.getLogger(__name__)
FEATURE = "generate"


def run_job(job_id: str, deps, *, last_attempt: bool) -> str:
    """What became of the job: succeeded, failed, skipped; raises to have it retried."""
    job = deps.jobs.get(job_id)
    if job is None:
        return "skipped"  # expired, or never stored
    if job["status"] in FINISHED:
        if not job.get("announced"):
            _announce(deps, job, [])
        return "skipped"
    deps.jobs.start(job_id)
    decision = deps.flags.decide(FEATURE, deps.flags.context(FEATURE, tier="free", subject=job["client_id"],
                                                             request_id=job_id, user_id=None))
    model_id, budget_action = decision.model_id, None
    if deps.budgets.exhausted(FEATURE, decision.daily_token_budget):
        if decision.over_budget == "refuse":
            return _finish(deps, job, FAILED, {"error": {"code": "budget_exhausted", "message": "today's token "
                                                         "budget for generation is spent"}}, None)
        model_id, budget_action = deps.flags.fast_id, "downgraded"
    try:
        result, completion = TASKS[job["task"]].run(job["input"], deps, deps.provider_for(model_id),
                                                    decision.max_tokens)
    except TaskRefused as exc:
        return _finish(deps, job, FAILED, {"error": {"code": exc.code, "message": exc.message}}, None)
    except ModelError as exc:
        if not last_attempt:
            raise
        logger.warning("job %s failed on its last attempt: %s", job_id, exc)
        return _finish(deps, job, FAILED, {"error": {"code": exc.code, "message": "the models were unavailable"}},
                       None)
    fields: dict = {"result": result}
    if completion is not None:
        fields["usage"] = {"input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens,
                           "cost_usd": completion.estimated_cost_usd}
    flagged = {"model_rule": decision.model_rule, **({"budget_action": budget_action} if budget_action else {})}
    return _finish(deps, job, SUCCEEDED, fields, completion, flagged)


def _finish(deps, job: dict, status: str, fields: dict, completion, flagged: dict | None = None) -> str:
    if not deps.jobs.finish(job["job_id"], status, fields):
        return "skipped"  # another delivery finished it first
    extra = [inference_completed(completion, request_id=job["job_id"], feature=FEATURE, correlation_id=job["job_id"],
                                 **(flagged or {}))] if completion is not None else []
    _announce(deps, {**job, **fields, "status": status}, extra)
    return status


def _announce(deps, job: dict, extra: list[Event]) -> None:
    detail = {"version": "1", "job_id": job["job_id"], "task": job["task"], "status": job["status"],
              "client_id": job["client_id"], "completed_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    for field in ("callback_url", "result", "error", "usage"):
        if job.get(field) is not None:
            detail[field] = job[field]
    deps.publish([Event("mangaassist.jobs", "JobCompleted", detail), *extra])
    deps.jobs.mark_announced(job["job_id"])


def job_id_of(body: str) -> str:
    message = json.loads(body)
    if not isinstance(message, dict) or not isinstance(message.get("job_id"), str):
        raise ValueError("a jobs queue message is {\"job_id\": ...}")
    return message["job_id"]

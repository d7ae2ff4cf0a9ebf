"""The jobs table: each generation job's request, status and result, by ``job_id``.

Status moves queued -> running -> succeeded | failed, each step a conditional write, so a job a
worker finished is never reopened by a redelivered message. Jobs expire (DynamoDB TTL,
``expires_at``) after ``ttl_seconds``; an expired item is treated as absent.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from mangaassist.dal import from_dynamo, to_dynamo

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
FINISHED = (SUCCEEDED, FAILED)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Jobs:
    def __init__(self, table, *, ttl_seconds: int, clock: Callable[[], float] = time.time):
        self.table = table  # a mangaassist.dal.table.Table (or a boto3 Table resource)
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def create(self, job_id: str, *, client_id: str, task: str, input: dict, callback_url: str | None) -> dict:
        now = self.clock()
        item = {"job_id": job_id, "client_id": client_id, "task": task, "input": input, "status": QUEUED,
                "created_at": iso(now), "updated_at": iso(now), "expires_at": int(now + self.ttl_seconds)}
        if callback_url:
            item["callback_url"] = callback_url
        self.table.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(job_id)")
        return item

    def get(self, job_id: str) -> dict | None:
        item = self.table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        if item is None or float(item.get("expires_at", 0)) <= self.clock():
            return None
        return from_dynamo(item)

    def delete(self, job_id: str) -> None:
        self.table.delete_item(Key={"job_id": job_id})

    def start(self, job_id: str) -> bool:
        """queued (or running, for a redelivered message) -> running; False once finished."""
        return self._move(job_id, RUNNING, (QUEUED, RUNNING), {})

    def finish(self, job_id: str, status: str, fields: dict) -> bool:
        """running -> succeeded | failed with ``fields`` (result, error, usage); False if already finished."""
        return self._move(job_id, status, (QUEUED, RUNNING), fields)

    def mark_announced(self, job_id: str) -> None:
        """JobCompleted is on the bus: a redelivered message need not publish it again."""
        self.table.update_item(Key={"job_id": job_id}, UpdateExpression="SET announced = :yes",
                               ExpressionAttributeValues={":yes": True})

    def _move(self, job_id: str, status: str, allowed: tuple[str, ...], fields: dict) -> bool:
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        sets = ", ".join(f"{n} = {v}" for n, v in zip(names, values))
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET #s = :status, updated_at = :now" + (f", {sets}" if sets else ""),
                ConditionExpression="#s IN (" + ", ".join(f":a{i}" for i in range(len(allowed))) + ")",
                ExpressionAttributeNames={"#s": "status", **names},
                ExpressionAttributeValues=to_dynamo({":status": status, ":now": iso(self.clock()), **values,
                                                     **{f":a{i}": a for i, a in enumerate(allowed)}}))
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

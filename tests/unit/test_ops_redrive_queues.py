"""`ops.py redrive --dlq <a queue's own DLQ>` and `ops.py status`'s queue DLQs, run against moto
(mock_aws): locally each dead letter is sent back to its source queue; on AWS SQS's own
StartMessageMoveTask moves them (moto lacks it: a stand-in client does the move)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import ops  # noqa: E402
from mangaassist_dev.naming import derive  # noqa: E402

REGION, ACCOUNT, PREFIX = "ap-northeast-1", "123456789012", "mangaassist-unit"
WIRING = json.loads((ROOT / "terraform" / "wiring.json").read_text())
REDRIVE_KEYS = {"key", "dlq", "dry_run", "redriven", "would_redrive", "failed", "left_visible"}


class MotoLocal(ops.Local):
    """ops.Local on moto's in-process mocks."""

    def client(self, service: str):
        return self.aws.client(service)


class MoveTasks:
    """An SQS client with StartMessageMoveTask, which moto lacks: it moves every message at once."""

    def __init__(self, sqs):
        self.sqs, self.tasks = sqs, []

    def __getattr__(self, name):
        return getattr(self.sqs, name)

    def _url(self, arn: str) -> str:
        return self.sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]

    def start_message_move_task(self, SourceArn, DestinationArn=None):  # noqa: N803 (boto3's names)
        moved = 0
        while batch := self.sqs.receive_message(QueueUrl=self._url(SourceArn), MaxNumberOfMessages=10,
                                                MessageAttributeNames=["All"]).get("Messages", []):
            for message in batch:
                self.sqs.send_message(QueueUrl=self._url(DestinationArn), MessageBody=message["Body"])
                self.sqs.delete_message(QueueUrl=self._url(SourceArn), ReceiptHandle=message["ReceiptHandle"])
                moved += 1
        self.tasks.append({"TaskHandle": f"h{len(self.tasks)}", "Status": "COMPLETED", "SourceArn": SourceArn,
                           "DestinationArn": DestinationArn, "ApproximateNumberOfMessagesMoved": moved,
                           "ApproximateNumberOfMessagesToMove": moved})
        return {"TaskHandle": self.tasks[-1]["TaskHandle"]}

    def list_message_move_tasks(self, SourceArn, MaxResults=1):  # noqa: N803
        return {"Results": [t for t in reversed(self.tasks) if t["SourceArn"] == SourceArn][:MaxResults]}


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        names = derive(PREFIX, WIRING, ACCOUNT)
        sqs = session.client("sqs")
        for queue, spec in WIRING["queues"].items():  # as the stack and Terraform make them
            dlq = sqs.create_queue(QueueName=names["queue_dlqs"][queue])["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sqs.create_queue(QueueName=names["queues"][queue], Attributes={"RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec["max_receive_count"]})})
        yield session, names


@pytest.fixture
def local(aws, tmp_path, monkeypatch):
    session, names = aws
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({"names": names, "region": REGION, "aws_endpoint_url": "http://127.0.0.1:9",
                                 "base_url": "http://127.0.0.1:9"}))
    where = MotoLocal(stack)
    where.aws = session
    monkeypatch.setattr(ops, "platform", lambda args: where)
    return where


def run(capsys, *argv: str) -> tuple[int, dict | str]:
    code = ops.main([*argv, "--json"])
    out, _ = capsys.readouterr()
    try:
        return code, json.loads(out)
    except ValueError:
        return code, out


def url(sqs, name: str) -> str:
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


def bodies(sqs, name: str) -> list[dict]:
    got = sqs.receive_message(QueueUrl=url(sqs, name), MaxNumberOfMessages=10, VisibilityTimeout=0)
    return sorted((json.loads(m["Body"]) for m in got.get("Messages", [])), key=json.dumps)


def dead_letter_a_delivery(sqs, names: dict, msg_id: str) -> dict:
    """What the notifications dispatcher sends its DLQ after the last attempt."""
    task = {"kind": "delivery", "msg_id": msg_id, "subscription_id": "sub_1", "attempt": 0, "event": {"id": "e1"}}
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{names['queues']['notifications']}"
    sqs.send_message(QueueUrl=url(sqs, names["queue_dlqs"]["notifications"]), MessageBody=json.dumps(task),
                     MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in (
                         ("SUBSCRIPTION_ID", "sub_1"), ("LAST_STATUS", "500"), ("ERROR_MESSAGE", "HTTP 500"),
                         ("ATTEMPTS", "8"), ("TARGET_ARN", arn))})
    return task


def dead_letter_a_job(sqs, names: dict) -> dict:
    """A job whose worker failed it max_receive_count times: SQS itself moves it to the DLQ."""
    job, jobs = {"job_id": "job_1"}, url(sqs, names["queues"]["jobs"])
    sqs.send_message(QueueUrl=jobs, MessageBody=json.dumps(job))
    for _ in range(WIRING["queues"]["jobs"]["max_receive_count"] + 1):
        sqs.receive_message(QueueUrl=jobs, VisibilityTimeout=0)
    assert bodies(sqs, names["queue_dlqs"]["jobs"]) == [job], "moto moved it after maxReceiveCount"
    return job


def test_a_dry_run_only_counts_and_a_redrive_sends_each_dead_letter_back_to_its_queue(local, capsys):
    sqs, names = local.client("sqs"), local.names
    tasks = [dead_letter_a_delivery(sqs, names, f"msg_{n}") for n in (1, 2)]
    dlq = names["queue_dlqs"]["notifications"]
    code, result = run(capsys, "redrive", "--local", "--dlq", dlq, "--dry-run")
    assert code == 0 and REDRIVE_KEYS <= set(result)
    assert (result["key"], result["dlq"], result["dry_run"], result["would_redrive"], result["redriven"]) == (
        "notifications", dlq, True, 2, 0)
    assert result["source_queue"] == names["queues"]["notifications"] and result["left_visible"] == 2
    assert bodies(sqs, names["queues"]["notifications"]) == []
    code, result = run(capsys, "redrive", "--local", "--dlq", dlq)
    assert code == 0 and (result["redriven"], result["failed"], result["left_visible"]) == (2, [], 0)
    assert bodies(sqs, names["queues"]["notifications"]) == sorted(tasks, key=json.dumps)
    assert bodies(sqs, dlq) == []


def test_a_message_sqs_dead_lettered_goes_back_to_its_queue_and_max_bounds_a_redrive(local, capsys):
    sqs, names = local.client("sqs"), local.names
    job = dead_letter_a_job(sqs, names)
    code, result = run(capsys, "redrive", "--local", "--dlq", names["queue_dlqs"]["jobs"], "--max", "1")
    assert code == 0 and result["redriven"] == 1 and result["left_visible"] == 0
    assert bodies(sqs, names["queues"]["jobs"]) == [job]


def test_a_body_that_is_not_json_stays_in_the_dlq_and_says_why(local, capsys):
    sqs, names = local.client("sqs"), local.names
    dlq = names["queue_dlqs"]["analytics"]
    sqs.send_message(QueueUrl=url(sqs, dlq), MessageBody="not json")
    code, result = run(capsys, "redrive", "--local", "--dlq", dlq)
    assert code == 1 and result["redriven"] == 0 and result["left_visible"] == 1
    assert "not JSON" in result["failed"][0]["error"]
    code, text = ops.main(["redrive", "--local", "--dlq", dlq]), capsys.readouterr().out
    assert code == 1 and f"{dlq}: redrove 0 to {names['queues']['analytics']}, failed 1, 1 left visible" in text


def cloud(tmp_path, names: dict, sqs) -> ops.Cloud:
    (tmp_path / "outputs.json").write_text(json.dumps({"names": {"value": names}}))
    where = ops.Cloud(str(tmp_path / "outputs.json"), REGION)
    where.client = lambda service: sqs  # type: ignore[method-assign]
    return where


def test_on_aws_a_queue_dlq_is_redriven_with_a_message_move_task(aws, tmp_path, capsys, monkeypatch):
    session, names = aws
    sqs = MoveTasks(session.client("sqs"))
    monkeypatch.setattr(ops, "platform", lambda args: cloud(tmp_path, names, sqs))
    tasks = [dead_letter_a_delivery(sqs, names, f"msg_{n}") for n in (1, 2, 3)]
    dlq = names["queue_dlqs"]["notifications"]
    code, result = run(capsys, "redrive", "--dlq", dlq, "--dry-run")  # a dry run peeks, moves nothing
    assert code == 0 and result["would_redrive"] == 3 and sqs.tasks == []
    code, result = run(capsys, "redrive", "--dlq", dlq)
    assert code == 0 and REDRIVE_KEYS <= set(result)
    assert (result["method"], result["redriven"], result["failed"], result["left_visible"]) == (
        "StartMessageMoveTask", 3, [], 0)
    (task,) = sqs.tasks
    assert task["SourceArn"].endswith(f":{dlq}") and task["DestinationArn"].endswith(
        f":{names['queues']['notifications']}")
    assert bodies(sqs, names["queues"]["notifications"]) == sorted(tasks, key=json.dumps)


def test_on_aws_a_failed_move_task_is_a_failure(aws, tmp_path, capsys, monkeypatch):
    session, names = aws
    sqs = MoveTasks(session.client("sqs"))
    monkeypatch.setattr(ops, "platform", lambda args: cloud(tmp_path, names, sqs))

    def failing(SourceArn, DestinationArn=None):  # noqa: N803
        sqs.tasks.append({"TaskHandle": "h0", "Status": "FAILED", "SourceArn": SourceArn,
                          "FailureReason": "AWS.SimpleQueueService.KmsAccessDenied",
                          "ApproximateNumberOfMessagesMoved": 0})
        return {"TaskHandle": "h0"}

    sqs.start_message_move_task = failing  # type: ignore[method-assign]
    dead_letter_a_delivery(sqs, names, "msg_1")
    code, result = run(capsys, "redrive", "--dlq", names["queue_dlqs"]["notifications"])
    assert code == 1 and result["redriven"] == 0 and result["left_visible"] == 1
    assert "FAILED: AWS.SimpleQueueService.KmsAccessDenied" in result["failed"][0]["error"]


def test_status_lists_each_queue_and_its_own_dlq(local, capsys, monkeypatch):
    sqs, names = local.client("sqs"), local.names
    monkeypatch.setattr(local, "deliveries", lambda: {"deliveries": [], "archive": {"events": 0}})
    dead_letter_a_delivery(sqs, names, "msg_1")
    dead_letter_a_job(sqs, names)
    code, result = run(capsys, "status", "--local")
    assert code == 0
    queues = {q["queue"]: q for q in result["queues"]}
    assert set(queues) == set(WIRING["queues"])
    assert (queues["notifications"]["in_dlq"], queues["jobs"]["in_dlq"], queues["analytics"]["in_dlq"]) == (1, 1, 0)
    assert queues["jobs"]["dlq"] == names["queue_dlqs"]["jobs"]
    assert all(t["in_dlq"] is None for t in result["targets"]), "no target DLQ was made here"
    ops.main(["status", "--local"])
    assert f"notifications{' ' * 9}{0:>8}{1:>8}  {names['queue_dlqs']['notifications']}" in capsys.readouterr().out

"""Redriving a rule target's dead-letter queue, as `ops.py redrive` and the local page's button do.

Each dead letter is delivered again, once, to the target in its TARGET_ARN, and deleted only once
that succeeded; what failed stays in the queue, visible again at once, and the result says why.
A dry run only peeks (visibility 0) and sends nothing.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from mangaassist_dev.delivery import DeadLetter, parse_dead_letter


@dataclass
class RedriveResult:
    dlq: str
    dry_run: bool
    redriven: int = 0
    would_redrive: int = 0
    failed: list[dict] = field(default_factory=list)  # event_id, target, error: why it stayed
    left_visible: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def send_to_queue(sqs) -> Callable[[DeadLetter], None]:
    """A redrive's delivery for dead letters whose TARGET_ARN is an SQS queue (the notifications
    dispatcher's: its body is a delivery task that starts its schedule over): the body goes back to
    that queue. (On AWS, ops.py's Cloud.redeliver does the same for every SQS target.)"""

    def deliver(letter: DeadLetter) -> None:
        if ":sqs:" not in letter.target_arn:
            raise ValueError(f"{letter.target_arn} is not an SQS queue")
        url = sqs.get_queue_url(QueueName=letter.target_arn.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(letter.event, ensure_ascii=False))

    return deliver


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def redrive_queue(sqs, url: str, name: str, deliver: Callable[[DeadLetter], None], *, max_messages: int | None = None,
                  dry_run: bool = False, progress: Callable[[str], None] | None = None) -> RedriveResult:
    """Redrive up to ``max_messages`` dead letters of the queue at ``url`` through ``deliver``."""
    result = RedriveResult(dlq=name, dry_run=dry_run)
    seen: set[str] = set()
    to_release: list[dict] = []
    say = progress or (lambda line: None)

    def handled() -> int:
        return result.redriven + result.would_redrive + len(result.failed)

    while max_messages is None or handled() < max_messages:
        # A dry run only peeks; a redrive hides each message while it re-delivers it.
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    VisibilityTimeout=0 if dry_run else 30,
                                    MessageAttributeNames=["All"]).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        to_release += [m for m in batch if m["MessageId"] in seen]
        if not fresh:
            break
        for message in fresh[: None if max_messages is None else max_messages - handled()]:
            seen.add(message["MessageId"])
            try:
                letter = parse_dead_letter(message)
            except ValueError as exc:
                result.failed.append({"event_id": None, "target": None, "error": _reason(exc)})
                to_release.append(message)
                continue
            event_id = letter.event.get("id") if isinstance(letter.event, dict) else None
            if dry_run:
                result.would_redrive += 1
                say(f"would redrive {event_id} -> {letter.target_arn} ({letter.error_code}: {letter.error_message})")
                continue
            try:
                deliver(letter)
            except Exception as exc:  # it stays in the DLQ
                result.failed.append({"event_id": event_id, "target": letter.target_arn, "error": _reason(exc)})
                to_release.append(message)
                say(f"failed   {event_id} -> {letter.target_arn}: {_reason(exc)}")
                continue
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            result.redriven += 1
            say(f"redriven {event_id} -> {letter.target_arn}")
    for message in to_release:  # what failed, or was received twice, is visible again at once
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    result.left_visible = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                              ["Attributes"]["ApproximateNumberOfMessages"])
    return result

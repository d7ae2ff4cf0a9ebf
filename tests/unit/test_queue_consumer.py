"""The local stack's SQS event source mapping (scripts/embedded/router.py QueueConsumer)."""
from __future__ import annotations

import threading

from embedded.router import FILL_INTERVAL, QueueConsumer


class FakeQueue:
    """An SQS client over a list of messages; `per_receive` caps what one ReceiveMessage returns,
    as when messages arrive one by one."""

    def __init__(self, count: int, per_receive: int = 10):
        self.messages = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": f'{{"n": {i}}}'} for i in range(count)]
        self.per_receive = per_receive
        self.receives = 0
        self.deleted: list[str] = []

    def receive_message(self, MaxNumberOfMessages, **_):
        self.receives += 1
        taken = self.messages[:min(MaxNumberOfMessages, self.per_receive)]
        del self.messages[:len(taken)]
        return {"Messages": taken}

    def delete_message_batch(self, Entries, **_):
        self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def consumer(queue: FakeQueue, invoked: list, window: float, fail: set[str] = frozenset()) -> QueueConsumer:
    class Functions:
        def invoke(self, name, event):
            invoked.append([r["messageId"] for r in event["Records"]])
            return {"batchItemFailures": [{"itemIdentifier": m} for m in invoked[-1] if m in fail]}

    aws = type("Session", (), {"client": lambda self, service: queue})()
    return QueueConsumer("q", {"function": "f", "batch_size": 10, "maximum_batching_window_seconds": window},
                         Functions(), aws, queue_url="url", queue_arn="arn:aws:sqs:ap-northeast-1:123456789012:q",
                         region="ap-northeast-1")


def test_a_full_batch_is_invoked_at_once_without_waiting_for_the_window():
    queue, invoked = FakeQueue(10), []
    consumer(queue, invoked, window=30)._poll_once()
    assert invoked == [[f"m{i}" for i in range(10)]] and queue.receives == 1


def test_a_trickling_queue_fills_one_batch_within_the_window_with_few_receives():
    queue, invoked = FakeQueue(10, per_receive=1), []
    consumer(queue, invoked, window=0.5)._poll_once()
    assert len(invoked) == 1 and invoked[0] == [f"m{i}" for i in range(len(invoked[0]))]
    # One receive to start, then one per fill interval while the window lasts, not a busy loop.
    assert queue.receives == len(invoked[0]) <= 2 + int(0.5 / FILL_INTERVAL)


def test_only_what_the_function_did_not_report_is_deleted():
    queue, invoked = FakeQueue(3), []
    consumer(queue, invoked, window=0, fail={"m1"})._poll_once()
    assert queue.deleted == ["r0", "r2"]


def test_stopping_ends_the_fill_wait_early():
    queue, invoked = FakeQueue(1, per_receive=1), []
    poller = consumer(queue, invoked, window=30)
    threading.Timer(0.2, poller.stop).start()
    poller._poll_once()  # returns long before the 30 s window: the batch it has is still invoked
    assert invoked == [["m0"]]

"""The local stack's SQS event source mapping (scripts/embedded/router.py QueueConsumer)."""
from __future__ import annotations

import threading

from embedded.router import FILL_INTERVAL, QueueConsumer


class FakeQueue:
    """An SQS client over a list of messages; `per_receive` caps what one ReceiveMessage returns,
    as when messages arrive one by one."""

    def __init__(self, count: int, per_receive: int = 10):
        self.messages = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": f'{{"n": {i}}}'}
                         for i in range(count)]
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


# --- the router's side: events to a queue target, ten to a call ------------------------------
class FakeSqs:
    def __init__(self, fail_ids=(), broken: bool = False):
        self.calls: list[list[str]] = []
        self.fail_ids, self.broken = set(fail_ids), broken
        self.gate = threading.Event()

    def send_message_batch(self, QueueUrl, Entries):
        self.gate.wait(5)  # the first call is held until the test has queued more
        self.calls.append([e["MessageBody"] for e in Entries])
        if self.broken:
            raise RuntimeError("the emulator went away")
        return {"Successful": [{"Id": e["Id"]} for e in Entries if e["MessageBody"] not in self.fail_ids],
                "Failed": [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False}
                           for e in Entries if e["MessageBody"] in self.fail_ids]}


def run_sender(sqs: FakeSqs, items: list[str], body=lambda item: item) -> tuple[list, list]:
    from embedded.router import QueueSender

    sent, unsent, done = [], [], threading.Semaphore(0)
    sender = QueueSender(sqs, "http://sqs/123/analytics", body,
                         sent=lambda item: (sent.append(item), done.release()),
                         unsent=lambda item: (unsent.append(item), done.release()))
    for item in items:
        sender.put(item)
    sqs.gate.set()
    for _ in items:
        assert done.acquire(timeout=5)
    sender.stop()
    return sent, unsent


def test_events_queued_while_a_batch_is_in_flight_go_ten_to_a_call_in_order():
    sqs = FakeSqs()
    sent, unsent = run_sender(sqs, [f"e{i}" for i in range(23)])
    assert sent == [f"e{i}" for i in range(23)] and unsent == []
    sizes = [len(call) for call in sqs.calls]  # the first holds what was queued when the sender woke
    assert sum(sizes) == 23 and len(sizes) <= 4 and all(size == 10 for size in sizes[1:-1])


def test_entries_a_batch_could_not_send_take_the_one_event_way():
    sqs = FakeSqs(fail_ids={"e1"})
    sent, unsent = run_sender(sqs, ["e0", "e1", "e2"])
    assert sorted(sent) == ["e0", "e2"] and unsent == ["e1"]
    broken = FakeSqs(broken=True)
    sent, unsent = run_sender(broken, ["e0", "e1"])
    assert sent == [] and sorted(unsent) == ["e0", "e1"]


def test_a_batch_stays_under_sqs_size_limit_and_a_body_that_fails_is_not_batched():
    sqs = FakeSqs()
    big = ["a" * 100_000, "b" * 100_000, "c" * 100_000]  # 300 KB: more than one SendMessageBatch takes

    def body(item):
        if item == "bad":
            raise ValueError("input transformer failed")
        return item

    sent, unsent = run_sender(sqs, [*big, "bad"], body)
    assert unsent == ["bad"] and sent == big
    assert all(sum(len(b) for b in call) <= 256 * 1024 for call in sqs.calls)

"""The local EventBridge: delivers bus events to targets by the routing table, asynchronously.

Matching, retries, dead-lettering, the archive and replay are the shared layer's
(mangaassist_dev.delivery); this module only runs them on threads and records what happened
for GET /_local/deliveries.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from mangaassist_dev.delivery import Archive, dead_letter_message, deliver, replay_rules, replayed
from mangaassist_dev.routing import Rule, Target, Wiring

from mangaassist.events.transform import transform


class DeliveryLog:
    """Every delivery attempt's latest state, newest last."""

    def __init__(self, limit: int = 100_000):
        self._records: deque[dict] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._open = 0

    def start(self, event: dict, rule: str, target: str) -> dict:
        record = {
            "delivery_id": str(uuid.uuid4()),
            "event_id": event["id"],
            "source": event["source"],
            "detail_type": event["detail-type"],
            "rule": rule,
            "target": target,
            "status": "pending",
            "attempts": 0,
            "replay_name": event.get("replay-name"),
            "error": None,
            "started_at": time.time(),
        }
        with self._lock:
            self._records.append(record)
            self._open += 1
        return record

    def update(self, record: dict, status: str, attempts: int, error=None) -> None:
        with self._lock:
            record.update(status=status, attempts=attempts, updated_at=time.time(),
                          error=None if error is None else {"code": error.code, "message": error.message})
            if status in ("delivered", "dead_lettered"):
                self._open -= 1
                record["latency_ms"] = round((record["updated_at"] - record["started_at"]) * 1000, 1)
                self._idle.notify_all()

    def records(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._records]

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._open == 0, timeout)


class Router:
    def __init__(self, wiring: Wiring, functions, aws, *, bus_name: str, names: dict, region: str, account: str,
                 archive: Archive, dlq_urls: dict[str, str], queue_urls: dict[str, str], time_scale: float,
                 workers: int = 32):
        self.wiring = wiring
        self.functions = functions
        self.sqs = aws.client("sqs")
        self.bus_name = bus_name
        self.names = names  # mangaassist_dev.naming.derive
        self.region = region
        self.account = account
        self.archive = archive
        self.dlq_urls = dlq_urls
        self.queue_urls = queue_urls
        self.time_scale = time_scale
        self.log = DeliveryLog()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="delivery")
        self._senders: dict[str, QueueSender] = {}
        self._senders_lock = threading.Lock()

    # --- names as AWS spells them ---------------------------------------------------------
    def rule_arn(self, rule: Rule) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:rule/{self.bus_name}/{self.names['rules'][rule.name]}"

    def target_arn(self, target: Target) -> str:
        if target.kind == "lambda":
            return self.functions.arn(target.function)
        return f"arn:aws:sqs:{self.region}:{self.account}:{self.names['queues'][target.queue]}"

    # --- the bus ------------------------------------------------------------------------
    def put(self, events: list[dict]) -> None:
        """Events moto accepted on our bus: archive them and fan them out, without waiting."""
        for event in events:
            self.archive.record(event)
            for rule in self.wiring.matching_rules(event):
                self._fan_out(event, rule)

    def replay(self, start: float, end: float, rules: list[str] | None, name: str, dry_run: bool = False) -> dict:
        """StartReplay's semantics: archived events in [start, end], with replay-name, to chosen rules.
        A dry run counts what each rule would receive and sends nothing."""
        counts = {rule.name: 0 for rule in self.wiring.rules if rules is None or rule.name in rules}
        events = self.archive.between(start, end)
        for original in events:
            event = replayed(original, name)
            for rule in replay_rules(self.wiring.rules, event, rules):
                counts[rule.name] += 1
                if not dry_run:
                    self._fan_out(event, rule)
        result = {"replay_name": name, "events": len(events), "rules": counts}
        return {**result, "dry_run": True} if dry_run else result

    def _fan_out(self, event: dict, rule: Rule) -> None:
        for target in rule.targets:
            record = self.log.start(event, rule.name, target.resource)
            if target.kind == "lambda":
                self._pool.submit(self._deliver, event, rule, target, record)
            else:
                self._sender(target.queue).put((event, rule, target, record))

    def _sender(self, queue: str) -> QueueSender:
        with self._senders_lock:
            if queue not in self._senders:
                self._senders[queue] = QueueSender(
                    self.sqs, self.queue_urls[queue], self._message_body,
                    sent=lambda item: self.log.update(item[3], "delivered", 1),
                    # What a batch could not send goes the one-event way, with the target's retry policy.
                    unsent=lambda item: self._pool.submit(self._deliver, *item))
            return self._senders[queue]

    def _deliver(self, event: dict, rule: Rule, target: Target, record: dict) -> None:
        outcome = deliver(
            lambda: self._invoke(event, rule, target),
            target.retry_policy,
            time_scale=self.time_scale,
            on_retry=lambda attempts, error: self.log.update(record, "retrying", attempts, error),
        )
        if outcome.status == "dead_lettered":
            message = dead_letter_message(event, self.rule_arn(rule), self.target_arn(target), outcome)
            self.sqs.send_message(QueueUrl=self.dlq_urls[f"{rule.name}/{target.id}"], **message)
        self.log.update(record, outcome.status, outcome.attempts, outcome.error)

    def _payload(self, event: dict, rule: Rule, target: Target) -> dict:
        if not target.input_transformer:
            return event
        return json.loads(transform(event, target.input_transformer, rule_arn=self.rule_arn(rule), rule_name=rule.name,
                                    ingestion_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))

    def _message_body(self, item: tuple) -> str:
        event, rule, target, _ = item
        return json.dumps(self._payload(event, rule, target))

    def _invoke(self, event: dict, rule: Rule, target: Target) -> None:
        payload = self._payload(event, rule, target)
        if target.kind == "lambda":
            self.functions.invoke(target.function, payload)
        else:
            self.sqs.send_message(QueueUrl=self.queue_urls[target.queue], MessageBody=json.dumps(payload))

    def shutdown(self) -> None:
        for sender in list(self._senders.values()):
            sender.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)


class QueueSender:
    """Sends what the router hands it for one queue target with SendMessageBatch: whatever arrives
    while a batch is in flight goes in the next one, so a busy target costs a call per ten events,
    not one per event, with no added wait. Each event is still its own message, as EventBridge
    sends it."""

    MAX_ENTRIES, MAX_BYTES = 10, 256 * 1024  # SendMessageBatch's limits

    def __init__(self, sqs, url: str, body, *, sent, unsent):
        self.sqs, self.url, self.body, self.sent, self.unsent = sqs, url, body, sent, unsent
        self._pending: deque = deque()
        self._ready = threading.Condition()
        self._stopped = False
        threading.Thread(target=self._run, name=f"send-{url.rsplit('/', 1)[-1]}", daemon=True).start()

    def put(self, item) -> None:
        with self._ready:
            self._pending.append(item)
            self._ready.notify()

    def stop(self) -> None:
        with self._ready:
            self._stopped = True
            self._ready.notify()

    def _next_batch(self) -> list[tuple]:
        with self._ready:
            self._ready.wait_for(lambda: self._pending or self._stopped)
            batch, size = [], 0
            while self._pending and len(batch) < self.MAX_ENTRIES:
                item = self._pending[0]
                try:
                    body = self.body(item)
                except Exception:  # e.g. an input transformer that fails: the one-event path reports it
                    self.unsent(self._pending.popleft())
                    continue
                length = len(body.encode())
                if batch and size + length > self.MAX_BYTES:
                    break
                self._pending.popleft()
                batch.append((item, body))
                size += length
            return batch

    def _run(self) -> None:
        while not self._stopped:
            batch = self._next_batch()
            if not batch:
                continue
            try:
                answer = self.sqs.send_message_batch(QueueUrl=self.url, Entries=[
                    {"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(batch)])
                failed = {int(f["Id"]) for f in answer.get("Failed", [])}
            except Exception:  # the queue or the emulator failed the whole call
                failed = set(range(len(batch)))
            for i, (item, _) in enumerate(batch):
                (self.unsent if i in failed else self.sent)(item)


# While a batch fills, how long a poller waits between receives: messages arriving one by one
# are picked up several at a time, within the same batching window.
FILL_INTERVAL = 0.2


class QueueConsumer(threading.Thread):
    """An SQS event source mapping: polls a queue and invokes its function with batches,
    deleting only what the function did not report in batchItemFailures. With a batching window
    it gathers messages until the batch is full or the window has passed since the first one."""

    def __init__(self, name: str, spec: dict, functions, aws, *, queue_url: str, queue_arn: str, region: str,
                 index: int = 0):
        super().__init__(name=f"queue-{name}-{index}", daemon=True)
        self.function = spec["function"]
        self.batch_size = int(spec.get("batch_size", 10))
        self.window = float(spec.get("maximum_batching_window_seconds", 0))
        self.functions = functions
        self.sqs = aws.client("sqs")
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll_once()
            except Exception:  # the emulator stopping, or a bad message: keep the loop alive
                self._stop.wait(0.5)

    def _receive(self, count: int, wait: int) -> list[dict]:
        return self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, count),
                                        WaitTimeSeconds=wait, AttributeNames=["All"],
                                        MessageAttributeNames=["All"]).get("Messages", [])

    def _poll_once(self) -> None:
        messages = self._receive(self.batch_size, 1)
        if not messages:
            return
        deadline = time.monotonic() + self.window
        while len(messages) < self.batch_size and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._stop.wait(min(left, FILL_INTERVAL))
            messages += self._receive(self.batch_size - len(messages), 0)
        event = {"Records": [self._record(m) for m in messages]}
        try:
            response = self.functions.invoke(self.function, event) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            failed = {m["MessageId"] for m in messages}  # the whole batch returns to the queue
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):  # DeleteMessageBatch takes ten at a time
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])])

    def _record(self, message: dict) -> dict:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType")}
                for k, v in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }

    def stop(self) -> None:
        self._stop.set()

"""The local EventBridge: delivers bus events to targets by the routing table, asynchronously.

Matching, retries, dead-lettering, the archive and replay are the development package's
(mangaassist_dev.delivery); this module runs them on threads, records every delivery and each of
its attempts for GET /_local/deliveries, and writes a journal line when one finishes
(mangaassist_dev.journal), so that a restart delivers again what was accepted and not finished.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from mangaassist_dev.delivery import (
    Archive,
    TargetError,
    as_target_error,
    dead_letter_message,
    deliver,
    replay_rules,
    replayed,
)
from mangaassist_dev.journal import Journal, Key, Pending, delivery_key
from mangaassist_dev.routing import Rule, Target, Wiring

from mangaassist.events.transform import transform

logger = logging.getLogger("embedded.router")

FINAL = ("delivered", "dead_lettered")
MAX_ERRORS_KEPT = 20  # per delivery: the first attempts' errors and the last ones (185 retries are possible)


class Stopping(Exception):
    """The router is closing: a delivery waiting for its next attempt stops there, unfinished, and
    is made again at the next start."""


class ReplayExists(Exception):
    """StartReplay with a name already used (AWS: ResourceAlreadyExistsException)."""


class DeliveryLog:
    """Every delivery's latest state, newest last, with each failed attempt's error."""

    def __init__(self, limit: int = 100_000):
        self._records: deque[dict] = deque(maxlen=limit)
        self._by_key: dict[Key, dict] = {}
        self._sources: set[str] = set()  # every event source seen, for the page's filter
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._open = 0

    def _add(self, record: dict) -> None:
        if len(self._records) == self._records.maxlen:
            oldest = self._records[0]
            if self._by_key.get(self.key(oldest)) is oldest:
                del self._by_key[self.key(oldest)]
        self._records.append(record)
        self._by_key[self.key(record)] = record
        self._sources.add(record["source"])

    @staticmethod
    def key(record: dict) -> Key:
        return delivery_key(record["event_id"], record["rule"], record["target"], record.get("replay_name"))

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
            "errors": [],
            "started_at": time.time(),
        }
        with self._lock:
            self._add(record)
            self._open += 1
        return record

    def failed_attempt(self, record: dict, attempt: int, error: TargetError) -> None:
        with self._lock:
            errors = record["errors"]
            errors.append({"attempt": attempt, "at": time.time(), "code": error.code, "message": error.message})
            if len(errors) > MAX_ERRORS_KEPT:
                del errors[MAX_ERRORS_KEPT // 2]
            record.update(status="retrying", attempts=attempt, updated_at=time.time(),
                          error={"code": error.code, "message": error.message})

    def failed_redrive(self, record: dict, error: TargetError) -> None:
        """A redrive's attempt failed: the delivery stays dead-lettered, with one more error."""
        with self._lock:
            record["attempts"] += 1
            record["errors"].append({"attempt": record["attempts"], "at": time.time(), "code": error.code,
                                     "message": error.message, "redrive": True})
            record["error"] = {"code": error.code, "message": error.message}

    def finish(self, record: dict, status: str, attempts: int, error: TargetError | None = None, **extra) -> dict:
        """The record as it ends (a copy, for the journal)."""
        with self._lock:
            was_open = record["status"] not in FINAL
            if error is not None and (not record["errors"] or record["errors"][-1]["attempt"] != attempts):
                record["errors"].append({"attempt": attempts, "at": time.time(), "code": error.code,
                                         "message": error.message})
            now = time.time()
            record.update(status=status, attempts=attempts, updated_at=now, finished_at=now, **extra,
                          error=None if error is None else {"code": error.code, "message": error.message})
            record["latency_ms"] = round((now - record["started_at"]) * 1000, 1)
            if was_open:
                self._open -= 1
                self._idle.notify_all()
            return {**record, "errors": list(record["errors"])}

    def restore(self, finished: list[dict]) -> None:
        """Deliveries that finished before a restart, oldest first."""
        with self._lock:
            for record in finished:
                self._add({**record, "errors": list(record.get("errors") or [])})

    def find(self, key: Key) -> dict | None:
        with self._lock:
            return self._by_key.get(key)

    def records(self, **filters) -> list[dict]:
        """Copies, oldest first; ``filters`` (source, rule, target, status, event_id, replay_name)
        keep the records whose field equals the value."""
        wanted = {k: v for k, v in filters.items() if v is not None}
        with self._lock:
            return [{**r, "errors": list(r["errors"])} for r in self._records
                    if all(r.get(k) == v for k, v in wanted.items())]

    def sources(self) -> list[str]:
        with self._lock:
            return sorted(self._sources)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            for record in self._records:
                counts[record["status"]] = counts.get(record["status"], 0) + 1
        return counts

    @property
    def open(self) -> int:
        return self._open

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._open == 0, timeout)


class Router:
    def __init__(self, wiring: Wiring, functions, aws, *, bus_name: str, names: dict, region: str, account: str,
                 archive: Archive, journal: Journal | None, dlq_urls: dict[str, str], queue_urls: dict[str, str],
                 time_scale: float, workers: int = 32):
        self.wiring = wiring
        self.functions = functions
        self.sqs = aws.client("sqs")
        self.bus_name = bus_name
        self.names = names  # mangaassist_dev.naming.derive
        self.region = region
        self.account = account
        self.archive = archive
        self.journal = journal
        self.dlq_urls = dlq_urls
        self.queue_urls = queue_urls
        self.time_scale = time_scale
        self.log_limit = 100_000
        self.log = DeliveryLog(self.log_limit)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="delivery")
        self._senders: dict[str, QueueSender] = {}
        self._senders_lock = threading.Lock()
        self._replays: dict[str, dict] = {}
        self._replays_lock = threading.Lock()
        self._closing = threading.Event()

    # --- names as AWS spells them ---------------------------------------------------------
    def rule_arn(self, rule: Rule) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:rule/{self.bus_name}/{self.names['rules'][rule.name]}"

    def target_arn(self, target: Target) -> str:
        if target.kind == "lambda":
            return self.functions.arn(target.function)
        return f"arn:aws:sqs:{self.region}:{self.account}:{self.names['queues'][target.queue]}"

    def target_by_arns(self, rule_arn: str, target_arn: str) -> tuple[Rule, Target]:
        """The rule target a dead letter came from (its RULE_ARN and TARGET_ARN attributes)."""
        for rule in self.wiring.rules:
            if rule_arn and self.rule_arn(rule) != rule_arn:
                continue
            for target in rule.targets:
                if self.target_arn(target) == target_arn:
                    return rule, target
        raise LookupError(f"no rule target has the ARN {target_arn!r}" + (f" under {rule_arn!r}" if rule_arn else ""))

    # --- the bus ------------------------------------------------------------------------
    def put(self, events: list[dict]) -> None:
        """Events moto accepted on our bus: archive them and fan them out, without waiting.
        Once the router is closing they are only archived: the next start delivers them."""
        for event in events:
            self.archive.record(event)
            if self._closing.is_set():
                continue
            for rule in self.wiring.matching_rules(event):
                self._fan_out(event, rule)

    def resume(self, pending: list[Pending]) -> None:
        """Deliveries accepted before a restart and not finished then."""
        for item in pending:
            self._send(item.event, item.rule, item.target)

    def replay(self, start: float, end: float, rules: list[str] | None, name: str, dry_run: bool = False) -> dict:
        """StartReplay's semantics: archived events in [start, end], with replay-name, to chosen rules.
        A dry run counts what each rule would receive and sends nothing. A name is used once."""
        counts = {rule.name: 0 for rule in self.wiring.rules if rules is None or rule.name in rules}
        events = self.archive.between(start, end)
        plan = []
        for original in events:
            event = replayed(original, name)
            for rule in replay_rules(self.wiring.rules, event, rules):
                counts[rule.name] += 1
                plan.append((event, rule))
        result = {"replay_name": name, "events": len(events), "rules": counts}
        if dry_run:
            return {**result, "dry_run": True}
        deliveries = sum(len(rule.targets) for _, rule in plan)
        spec = {"name": name, "archive": self.archive.name, "start": start, "end": end, "rules": rules,
                "events": len(events), "deliveries": deliveries, "started_at": time.time()}
        with self._replays_lock:
            if name in self._replays:
                raise ReplayExists(f"Replay {name} already exists.")
            self._replays[name] = {**spec, "finished": 0, "delivered": 0, "dead_lettered": 0}
        if self.journal:
            self.journal.replay_started(spec)
        for event, rule in plan:
            self._fan_out(event, rule)
        return {**result, **self.replay_status(name)}

    def known_replays(self, replays: dict[str, dict], finished: dict[Key, dict]) -> None:
        """Replays started before a restart, with what of them finished then."""
        with self._replays_lock:
            for name, spec in replays.items():
                done = [r for r in finished.values() if r.get("replay_name") == name]
                self._replays[name] = {**spec, "finished": len(done),
                                       "delivered": sum(r["status"] == "delivered" for r in done),
                                       "dead_lettered": sum(r["status"] == "dead_lettered" for r in done)}

    def replay_status(self, name: str) -> dict:
        """DescribeReplay's view, counted in deliveries: COMPLETED once every one finished."""
        with self._replays_lock:
            replay = dict(self._replays[name])
        return {"replay_name": name, "state": "COMPLETED" if replay["finished"] >= replay["deliveries"] else "RUNNING",
                "archive": replay.get("archive"), "start": replay["start"], "end": replay["end"],
                "only_rules": replay.get("rules"), "events": replay["events"], "deliveries": replay["deliveries"],
                "finished": replay["finished"], "delivered": replay["delivered"],
                "dead_lettered": replay["dead_lettered"], "started_at": replay["started_at"]}

    def replays(self) -> list[dict]:
        with self._replays_lock:
            names = list(self._replays)
        return [self.replay_status(name) for name in names]

    # --- deliveries -----------------------------------------------------------------------
    def _fan_out(self, event: dict, rule: Rule) -> None:
        for target in rule.targets:
            self._send(event, rule, target)

    def _send(self, event: dict, rule: Rule, target: Target) -> None:
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
                    sent=lambda item: self._finished(item[3], "delivered", 1),
                    # What a batch could not send goes the one-event way, with the target's retry policy.
                    unsent=lambda item: self._pool.submit(self._deliver, *item))
            return self._senders[queue]

    def _wait(self, seconds: float) -> None:
        if self._closing.wait(seconds):
            raise Stopping

    def _deliver(self, event: dict, rule: Rule, target: Target, record: dict) -> None:
        try:
            outcome = deliver(
                lambda: self._invoke(event, rule, target),
                target.retry_policy,
                time_scale=self.time_scale,
                sleep=self._wait,
                on_retry=lambda attempts, error: self.log.failed_attempt(record, attempts, error),
            )
        except Stopping:
            return
        if outcome.status == "dead_lettered":
            message = dead_letter_message(event, self.rule_arn(rule), self.target_arn(target), outcome)
            self.sqs.send_message(QueueUrl=self.dlq_urls[f"{rule.name}/{target.id}"], **message)
        self._finished(record, outcome.status, outcome.attempts, outcome.error)

    def _finished(self, record: dict, status: str, attempts: int, error: TargetError | None = None, **extra) -> None:
        if self._closing.is_set():
            return  # its effects may miss the state saved at stop: the next start makes it again
        done = self.log.finish(record, status, attempts, error, **extra)
        if self.journal:
            self.journal.finished(done)
        name = record.get("replay_name")
        if name:
            with self._replays_lock:
                replay = self._replays.get(name)
                if replay is not None and extra.get("redriven") is None:
                    replay["finished"] += 1
                    replay[status] += 1

    def redeliver(self, event: dict, rule: Rule, target: Target) -> dict:
        """One more attempt for a dead-lettered event (a redrive): raises what the target raised;
        on success its delivery shows as delivered, redriven."""
        key = delivery_key(event["id"], rule.name, target.resource, event.get("replay-name"))
        record = self.log.find(key)
        if record is None or record["status"] not in FINAL:
            record = self.log.start(event, rule.name, target.resource)
            self.log.finish(record, "dead_lettered", 0)  # known only from its dead letter
        try:
            self._invoke(event, rule, target)
        except Exception as exc:
            self.log.failed_redrive(record, as_target_error(exc))
            raise
        self._finished(record, "delivered", record["attempts"] + 1, None, redriven_at=time.time(), redriven=True)
        return self.log.find(key) or record

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

    # --- stopping -------------------------------------------------------------------------
    def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` for the deliveries in progress; how many are still open."""
        self.log.wait_idle(timeout)
        return self.log.open

    def shutdown(self) -> None:
        """Stop delivering: what has not finished is not journaled, so the next start makes it."""
        self._closing.set()
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
        self._stopping = threading.Event()  # not _stop: Thread has one

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._poll_once()
            except Exception:  # the emulator stopping, or a bad message: keep the loop alive
                self._stopping.wait(0.5)

    def _receive(self, count: int, wait: int) -> list[dict]:
        return self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, count),
                                        WaitTimeSeconds=wait, AttributeNames=["All"],
                                        MessageAttributeNames=["All"]).get("Messages", [])

    def _poll_once(self) -> None:
        messages = self._receive(self.batch_size, 1)
        if not messages:
            return
        deadline = time.monotonic() + self.window
        while len(messages) < self.batch_size and not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._stopping.wait(min(left, FILL_INTERVAL))
            messages += self._receive(self.batch_size - len(messages), 0)
        event = {"Records": [self._record(m) for m in messages]}
        try:
            response = self.functions.invoke(self.function, event) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception as exc:  # the whole batch returns to the queue, visible again after its timeout
            logger.warning("%s failed on a batch of %d from %s: %s", self.function, len(messages),
                           self.queue_arn.rsplit(":", 1)[-1], " ".join(f"{type(exc).__name__}: {exc}".split())[:500])
            failed = {m["MessageId"] for m in messages}
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
        self._stopping.set()

"""The dispatcher: platform events in, signed deliveries out, on Svix's retry schedule.

Its queue receives two kinds of message: EventBridge events (the ``notify`` rule sends every
platform event) and delivery tasks (``{"kind": "delivery", ...}``) it queues for itself. An event
becomes one delivery per enabled subscription whose pattern matches it, plus one to the job's
callback_url for a JobCompleted that names one. Each delivery:

- is POSTed with the Standard Webhooks headers; ``webhook-id`` is derived from the event and the
  subscription, so it is the same on every retry (receivers deduplicate on it);
- 2xx: done. 410 Gone: the subscription is disabled and ``SubscriptionDisabled`` is published.
  Anything else, a timeout or a connection error: a failed attempt, retried after 5 s, 5 min,
  30 min, 2 h, 5 h, 10 h and 10 h (Svix's schedule, times NOTIFY_TIME_SCALE), each retry a message
  delayed on the queue (SQS delays at most 15 minutes: a message received early is delayed again);
- after the last attempt, or at once for a URL that became unsafe to call, the task goes to the
  queue's DLQ with SUBSCRIPTION_ID, LAST_STATUS, ERROR_MESSAGE and ATTEMPTS attributes (and
  TARGET_ARN, the queue, so ``ops.py redrive`` sends it back to start over).

Per-subscription ordering is not promised (retries interleave with newer events); per-delivery
idempotency is, through ``webhook-id``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlsplit

from mangaassist import metrics
from mangaassist.events.publisher import Event
from mangaassist.events.transform import transform
from mangaassist.notifications import egress, signing
from mangaassist.notifications.subscriptions import Subscriptions, callback_id

logger = logging.getLogger(__name__)
SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)  # seconds before each attempt (Svix)
MAX_SQS_DELAY = 900
CALLBACK_EVENT = ("mangaassist.jobs", "JobCompleted")


def message_id(event_id: str, subscription_id: str) -> str:
    return "msg_" + hashlib.sha256(f"{event_id}|{subscription_id}".encode()).hexdigest()[:26]


class Dispatcher:
    def __init__(self, *, subscriptions: Subscriptions, sqs, queue_url: str, dlq_url: str, queue_arn: str,
                 publish: Callable[[list[Event]], object], allow_loopback: bool, time_scale: float,
                 post: Callable[..., egress.Answer] = egress.post, clock: Callable[[], float] = time.time,
                 timeout: float = egress.TIMEOUT_SECONDS, ca_file: str | None = None):
        self.subscriptions = subscriptions
        self.sqs, self.queue_url, self.dlq_url, self.queue_arn = sqs, queue_url, dlq_url, queue_arn
        self.publish = publish
        self.allow_loopback = allow_loopback
        self.time_scale = time_scale
        self.post = post
        self.clock = clock
        self.timeout, self.ca_file = timeout, ca_file
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="deliver")

    # --- one queue message --------------------------------------------------------------------
    def handle(self, message: dict) -> list[str]:
        """Everything one message asks for; the outcome of each delivery."""
        if message.get("kind") == "delivery":
            return [self.attempt(message)]
        tasks = self.tasks_for(message)
        return list(self._pool.map(self.attempt, tasks))  # a slow receiver does not hold the others up

    def tasks_for(self, event: dict) -> list[dict]:
        targets = [item["subscription_id"] for item in self.subscriptions.matching(event)]
        detail = event.get("detail") or {}
        if (event.get("source"), event.get("detail-type")) == CALLBACK_EVENT and detail.get("callback_url"):
            targets.append(callback_id(str(detail.get("client_id"))))
        return [{"kind": "delivery", "subscription_id": target, "event": event, "attempt": 0,
                 "msg_id": message_id(str(event.get("id")), target)} for target in targets]

    # --- one delivery attempt -------------------------------------------------------------------
    def attempt(self, task: dict) -> str:
        due = task.get("due_at", 0)
        if due > self.clock() + 1:  # SQS delayed it at most 15 minutes: wait the rest
            self._queue(task, due - self.clock())
            return "waiting"
        try:
            item = self.subscriptions.get(task["subscription_id"])
        except LookupError:
            logger.info("delivery %s dropped: subscription %s is gone", task["msg_id"], task["subscription_id"])
            return "dropped"
        if not item.get("enabled"):
            return "dropped"
        try:
            url, body = self._request(item, task["event"])
            secrets = self.subscriptions.active_secrets(item["subscription_id"])
            timestamp = int(self.clock())
            answer = self.post(url, body, signing.headers(task["msg_id"], timestamp, body, secrets),
                               allow_loopback=self.allow_loopback, timeout=self.timeout, ca_file=self.ca_file)
        except egress.EgressRefused as exc:  # no retry makes an unsafe URL safe
            return self._dead_letter(task, 0, f"refused: {exc}")
        except Exception as exc:  # timeout, refused connection, TLS, a malformed answer: a failed attempt
            return self._retry(task, 0, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= answer.status < 300:
            metrics.emit({"subscription": _kind(item)}, {"NotificationsDelivered": ("Count", 1)})
            return "delivered"
        if answer.status == 410:
            self._disable(item, task)
            return "disabled"
        return self._retry(task, answer.status, f"HTTP {answer.status}: {answer.body[:200]!r}")

    def _request(self, item: dict, event: dict) -> tuple[str, bytes]:
        if item.get("kind") == "callback":
            url = str(event["detail"]["callback_url"])
            host = (urlsplit(url).hostname or "").lower()
            if host not in item.get("allowed_hosts", []):
                raise egress.EgressRefused(f"{host} is not an allowed callback host for this API key")
            return url, json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        if item.get("template"):
            rendered = transform(event, json.loads(item["template"]), rule_arn=self.queue_arn,
                                 rule_name=str(item["subscription_id"]),
                                 ingestion_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            return str(item["url"]), rendered.encode()
        return str(item["url"]), json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()

    def _retry(self, task: dict, status: int, error: str) -> str:
        following = task["attempt"] + 1
        if following >= len(SCHEDULE):
            return self._dead_letter(task, status, error)
        delay = SCHEDULE[following] * self.time_scale
        self._queue({**task, "attempt": following, "due_at": self.clock() + delay, "last_status": status,
                     "last_error": error}, delay)
        return "retrying"

    def _queue(self, task: dict, delay: float) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(task, ensure_ascii=False),
                              DelaySeconds=min(MAX_SQS_DELAY, max(0, math.floor(delay))))

    def _dead_letter(self, task: dict, status: int, error: str) -> str:
        attempts = task["attempt"] + 1
        logger.warning("delivery %s to %s dead-lettered after %d attempts: %s", task["msg_id"],
                       task["subscription_id"], attempts, error)
        restart = {key: value for key, value in task.items() if key not in ("due_at", "last_status", "last_error")}
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps({**restart, "attempt": 0},
                                                                             ensure_ascii=False),
                              MessageAttributes={name: {"DataType": "String", "StringValue": str(value)} for name, value
                                                 in (("SUBSCRIPTION_ID", task["subscription_id"]),
                                                     ("LAST_STATUS", status or "-"), ("ERROR_MESSAGE", error or "-"),
                                                     ("ATTEMPTS", attempts), ("TARGET_ARN", self.queue_arn))})
        metrics.emit({"subscription": "dead-letter"}, {"NotificationsDeadLettered": ("Count", 1)})
        return "dead_lettered"

    def _disable(self, item: dict, task: dict) -> None:
        self.subscriptions.set_enabled(item["subscription_id"], False)
        self.publish([Event("mangaassist.notifications", "SubscriptionDisabled", {
            "version": "1", "subscription_id": item["subscription_id"], "reason": "gone",
            "url": str(item.get("url") or task["event"].get("detail", {}).get("callback_url", "")),
            "disabled_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})])


def _kind(item: dict) -> str:
    return "callback" if item.get("kind") == "callback" else "subscription"

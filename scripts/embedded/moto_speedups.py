"""moto's hot spots, fixed for a long-running stack (found with `py-spy record --gil`).

Each keeps moto's behaviour and only removes work that gives the same answer every time.
Importing this module applies them once.
"""
from __future__ import annotations

import functools
import time

import jsonpath_ng.ext
import moto.backends
import moto.core.responses
import moto.sqs.models
from moto.core.utils import unix_time
from moto.sqs.models import SQSBackend

# The dispatcher lists moto's package directory on every request to find a service; the list
# cannot change while the process runs.
_MODULES = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MODULES

# Every rule target (the archive included) renders the event through eight JSONPath expressions,
# and jsonpath_ng builds a new lexer and parser for each one. Parsed paths are immutable.
jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)


def _retained(self: SQSBackend, queue_name: str, message) -> bool:
    """moto computes every queue attribute three times, each a scan of all messages, to read the
    retention period once per received message; the attribute itself is a plain field."""
    retention = int(self.get_queue(queue_name).message_retention_period)
    return retention + message.sent_timestamp / 1000 > time.time()


SQSBackend.is_message_valid_based_on_retention_period = _retained


def _unix_time(dt=None) -> float:
    return time.time() if dt is None else unix_time(dt)


# SQS asks for "now" twice per message per scan (visible? delayed?), and moto builds two
# datetimes to answer; a queue with a few hundred messages in flight spent most of its time there.
moto.sqs.models.unix_time = _unix_time
moto.sqs.models.unix_time_millis = lambda dt=None: _unix_time(dt) * 1000.0

# Every SendMessage reads the queue's attributes (for ContentBasedDeduplication), which counts
# visible, delayed and in-flight messages by asking each message the time. Same counts, one
# clock read per count.
def _now_ms() -> float:
    return time.time() * 1000.0


def _visible(queue) -> int:
    now = _now_ms()
    return sum(1 for m in queue._messages if now > m.visible_at and not now < m.delayed_until)


def _delayed(queue) -> int:
    now = _now_ms()
    return sum(1 for m in queue._messages if now < m.delayed_until)


def _not_visible(queue) -> int:
    now = _now_ms()
    return sum(1 for m in queue._messages if not now > m.visible_at)


moto.sqs.models.Queue.approximate_number_of_messages = property(_visible)
moto.sqs.models.Queue.approximate_number_of_messages_delayed = property(_delayed)
moto.sqs.models.Queue.approximate_number_of_messages_not_visible = property(_not_visible)

# Every request lists its response class's methods with inspect.getmembers; classes don't change.
moto.core.responses.method_names_from_class = functools.lru_cache(maxsize=None)(
    moto.core.responses.method_names_from_class)

"""moto's hot spots, fixed for a long-running stack (found with `py-spy record --gil`).

Each keeps moto's behaviour and only removes work that gives the same answer every time.
Importing this module applies them once.
"""
from __future__ import annotations

import functools
import string
import time

import jsonpath_ng.ext
import moto.backends
import moto.core.responses
import moto.core.serialize
import moto.events.models
import moto.sqs.models
from moto.core.utils import unix_time
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.moto_api._internal import mock_random
from moto.moto_api._internal.moto_random import HEX_CHARS, MotoRandom
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.models import SQSBackend

# The dispatcher lists moto's package directory on every request to find a service; the list
# cannot change while the process runs.
_MODULES = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MODULES

_backend_for_host = DomainDispatcherApplication.get_backend_for_host


def _cached_backend_for_host(self, host):
    """The dispatcher matches a request's host against every service's URL patterns (hundreds of
    regexes) to find its backend; the answer for a host never changes."""
    cache = self.__dict__.setdefault("_backends_by_host", {})
    try:
        return cache[host]
    except KeyError:
        if len(cache) > 4096:  # S3 virtual-host names are unbounded
            cache.clear()
        cache[host] = backend = _backend_for_host(self, host)
        return backend


DomainDispatcherApplication.get_backend_for_host = _cached_backend_for_host


class _Value:
    """An expression attribute value's place in a cached tree: the tree depends on the
    expression and its names, while values (timestamps, ids) change on every request."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _AnyValues(dict):
    def __missing__(self, name: str) -> _Value:
        return _Value(name)


class _TreeBuilder(ConditionExpressionParser):
    def _make_op_condition(self, node):  # parse() ends here: keep the tree, not its operators
        return node


_parse = ConditionExpressionParser.parse
_make_operand = ConditionExpressionParser._make_operand


@functools.lru_cache(maxsize=512)
def _tree(expression: str, names: tuple | None) -> tuple:
    builder = _TreeBuilder(expression, None if names is None else dict(names), _AnyValues())
    tree = _parse(builder)  # moto's own passes (builder.parse is the cached one below)
    return tree, tuple(builder.expr_attr_names_found), tuple(builder.expr_attr_values_found)


def _parse_cached(self):
    """Every conditional write parses its ConditionExpression through a dozen passes; the tree
    is the same for the same text and names, so it is built once and only the values are looked
    up per request. Anything unusual (no expression, a syntax error, a missing value) goes to
    moto's own parse, so errors are moto's own."""
    if not self.condition_expression:
        return _parse(self)
    try:
        names = self.expression_attribute_names
        tree, found_names, found_values = _tree(self.condition_expression,
                                                None if names is None else tuple(sorted(names.items())))
        values = self.expression_attribute_values
        if any(name not in values for name in found_values):
            raise KeyError(found_values)
    except Exception:
        return _parse(self)
    self.expr_attr_names_found.extend(found_names)
    self.expr_attr_values_found.extend(found_values)
    return self._make_op_condition(tree)


def _operand(self, node):
    if type(node.value) is _Value:
        node = node._replace(value=self.expression_attribute_values[node.value.name])
    return _make_operand(self, node)


ConditionExpressionParser.parse = _parse_cached
ConditionExpressionParser._make_operand = _operand

# An UpdateItem parses its UpdateExpression twice (the response class, then the backend) and
# only ever reads the tree or validates a deep copy of it, so one tree per text can be shared.
# Syntax errors are raised, never cached, so they come from moto's parse every time.
_make_update_tree = functools.lru_cache(maxsize=512)(UpdateExpressionParser.make)
UpdateExpressionParser.make = classmethod(lambda cls, expression: _make_update_tree(expression))


def _processing(self) -> dict:
    try:
        return self.__dict__["_processing"]
    except KeyError:
        self.__dict__["_processing"] = processing = self._processing_map()
        self.__dict__["_processed_types"] = tuple(processing)
        return processing


def _processed_types(self) -> tuple:
    try:
        return self.__dict__["_processed_types"]
    except KeyError:
        _processing(self)
        return self.__dict__["_processed_types"]


# Each of the ten passes that validate an update expression rebuilds its node-type map twice per
# node it visits; every map is a constant of the pass.
DepthFirstTraverser.nodes_to_be_processed = _processed_types


def _process(self, node):
    for class_key, processor in _processing(self).items():
        if isinstance(node, class_key):
            return processor(node)
    return None


DepthFirstTraverser.process = _process



def _keys_once(original):
    """Every response member asks six alias providers for the names it may have on the model
    object (and their snake_case forms), per response. The answer depends on the picker, the
    object's class, the member and its shape, all fixed; an object carrying its own `Meta`
    (explicit aliases) or anything unusual is asked afresh."""
    known: dict = {}

    def get_possible_keys(self, context):
        obj = context.obj
        if "Meta" in getattr(obj, "__dict__", ()):
            return original(self, context)
        try:
            signature = (type(self), tuple(self.alias_providers), type(obj), context.key, context.shape)
            return known[signature]
        except KeyError:
            pass
        except TypeError:  # something unhashable
            return original(self, context)
        try:
            keys = tuple(original(self, context))
        except Exception:  # let moto's own lazy walk decide, as before
            return original(self, context)
        if len(known) > 8192:  # shapes are per operation model; bound it anyway
            known.clear()
        known[signature] = keys
        return keys

    return get_possible_keys


_get_possible_keys = moto.core.serialize.XFormedAttributePicker.get_possible_keys
moto.core.serialize.XFormedAttributePicker.get_possible_keys = _keys_once(_get_possible_keys)

# Ids, request ids and receipt handles are drawn one character per call to random.choice;
# choices(k=n) draws the same distribution in one call (and stays seedable).
def _random_string(self, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
    pool = string.ascii_letters + (string.digits if include_digits else "")
    text = "".join(self.choices(pool, k=length))
    return text.lower() if lower_case else text


MotoRandom.get_random_string = _random_string
MotoRandom.get_random_hex = lambda self, length=8: "".join(map(str, self.choices(HEX_CHARS, k=length)))
moto.sqs.models.generate_receipt_handle = lambda: "".join(mock_random.choices(string.ascii_lowercase, k=185))

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
moto.events.models.unix_time = _unix_time  # PutEvents: twice per rule per event


_send_to_targets = moto.events.models.Rule.send_to_targets


def _send_if_targeted(self, original_event, transform_input: bool = True) -> None:
    """PutEvents matches the event against every rule on the bus, targets or not; the stack's
    rules have none in moto (the router delivers), only the archive's rule has."""
    if self.targets:
        _send_to_targets(self, original_event, transform_input)


moto.events.models.Rule.send_to_targets = _send_if_targeted

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

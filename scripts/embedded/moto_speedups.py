"""moto's hot spots, cached for a long-running emulator, under a contract with moto's source.

Found with `py-spy record --gil` on the stack under load. Importing this module changes nothing:
the emulator process calls apply() before it serves (emulator_process._serve, its only caller),
tests call apply() and restore() around what they compare.

Each patch lists the moto functions it replaces and the ones its answers rely on, with a
fingerprint of their source (sha256, first 16 hex digits) in the moto release it was written
for. apply() first compares the installed release with MOTO_VERSION: another release, and no
patch is applied (stock moto throughout). Then, per patch, the fingerprints: one that differs,
and that patch is skipped (stock moto for it). Each skip prints one warning line. Most patches
are caches around moto's own functions; the rest say why a cache would not do.

After upgrading moto: read what changed in the listed functions, run
tests/unit/test_moto_speedups.py (every patch against stock moto), then update MOTO_VERSION and
the fingerprints (`python -m embedded.moto_speedups` prints the installed ones).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import linecache
import string
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MOTO_VERSION = "5.2.5"


class Unfit(Exception):
    """A patch's build found that its replacement would not answer as moto does here."""


@dataclass(frozen=True)
class Patch:
    name: str
    sets: tuple[str, ...]  # the points it replaces, "module:Class.attribute"
    fingerprints: Mapping[str, str]  # every point it sets and every function it relies on -> fingerprint
    build: Callable[..., tuple]  # moto's values at `sets`, in order -> the replacements, in order (or Unfit)
    why: str


def resolve(path: str) -> tuple[Any, str]:
    """'moto.sqs.models:Queue.messages' -> (the Queue class, 'messages')."""
    module, _, attributes = path.partition(":")
    owner: Any = importlib.import_module(module)
    *parents, name = attributes.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    return owner, name


def value_at(path: str) -> Any:
    """The value stored at `path` itself (a property, a classmethod), never an inherited one."""
    owner, name = resolve(path)
    return vars(owner)[name]


def fingerprint(path: str) -> str | None:
    """sha256 of the source of what `path` holds (a property's getter, a classmethod's function,
    a whole class); None when there is no such thing or no source."""
    try:
        value = value_at(path)
    except (ImportError, AttributeError, KeyError):
        return None
    if isinstance(value, property):
        value = value.fget
    elif isinstance(value, (classmethod, staticmethod)):
        value = value.__func__
    try:
        source = _class_source(value) if inspect.isclass(value) else inspect.getsource(value)
    except (OSError, TypeError, KeyError, SyntaxError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def _class_source(cls: type) -> str:
    """inspect.getsource's text for a class, from one parse per file (inspect parses the whole
    module again for every class it is asked about: tens of milliseconds per class here)."""
    filename = inspect.getsourcefile(cls) or ""
    start, end = _class_spans(filename)[cls.__qualname__]
    return "".join(linecache.getlines(filename)[start - 1:end])


@functools.cache
def _class_spans(filename: str) -> dict[str, tuple[int, int]]:
    spans: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                first = child.decorator_list[0].lineno if child.decorator_list else child.lineno
                spans.setdefault(prefix + child.name, (first, child.end_lineno or first))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{prefix}{child.name}.<locals>.")

    visit(ast.parse("".join(linecache.getlines(filename))), "")
    return spans


# --- the patches' replacements ---------------------------------------------------------------

def _cache_backend_for_host(get_backend_for_host):
    def cached_backend_for_host(self, host):
        cache = self.__dict__.setdefault("_speedups_backend_by_host", {})
        try:
            return cache[host]
        except KeyError:
            pass
        if len(cache) > 4096:  # S3 virtual-host names are unbounded
            cache.clear()
        cache[host] = backend = get_backend_for_host(self, host)
        return backend

    return (cached_backend_for_host,)


class _Value:
    """An expression attribute value's place in a cached condition tree: the tree depends on the
    expression and its names, while the values (timestamps, ids) change on every request."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _AnyValues(dict):
    def __missing__(self, name: str) -> _Value:
        return _Value(name)


def _cache_condition_trees(parse, make_operand):
    from moto.dynamodb.comparisons import ConditionExpressionParser

    class TreeBuilder(ConditionExpressionParser):
        def _make_op_condition(self, node):  # moto's parse() ends here: keep the tree, not its operators
            return node

    @functools.lru_cache(maxsize=512)
    def tree(expression: str, names: tuple | None) -> tuple:
        builder = TreeBuilder(expression, None if names is None else dict(names), _AnyValues())
        node = parse(builder)  # moto's own passes, every one of them
        return node, tuple(builder.expr_attr_names_found), tuple(builder.expr_attr_values_found)

    def cached_parse(self):
        # Anything unusual (no expression, a syntax error, a missing name or value) goes to moto's
        # own parse, so its errors are moto's own, every time (errors are never cached).
        if not self.condition_expression:
            return parse(self)
        try:
            names = self.expression_attribute_names
            node, names_found, values_found = tree(self.condition_expression,
                                                   None if names is None else tuple(sorted(names.items())))
            values = self.expression_attribute_values
            if any(name not in values for name in values_found):
                raise KeyError(values_found)
        except Exception:
            return parse(self)
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return self._make_op_condition(node)

    def operand_with_this_calls_value(self, node):
        if type(node.value) is _Value:
            node = node._replace(value=self.expression_attribute_values[node.value.name])
        return make_operand(self, node)

    cached_parse.trees = tree  # for tests: cache_info()
    return cached_parse, operand_with_this_calls_value


def _share_update_trees(make):
    cached = functools.lru_cache(maxsize=512)(make.__func__)

    def shared_make(cls, expression_str):
        return cached(cls, expression_str)

    shared_make.trees = cached
    return (classmethod(shared_make),)


def _memo_node_types(nodes_to_be_processed):
    def memo_nodes_to_be_processed(self):
        try:
            return self.__dict__["_speedups_node_types"]
        except KeyError:
            pass
        processing = self._processing_map()
        self._processing_map = lambda: processing  # moto's process() asks again for every node it processes
        self.__dict__["_speedups_node_types"] = node_types = nodes_to_be_processed(self)
        return node_types

    return (memo_nodes_to_be_processed,)


def _cache_member_names(get_possible_keys):
    known: dict = {}

    def cached_possible_keys(self, context):
        obj = context.obj
        if "Meta" in getattr(obj, "__dict__", ()):  # the object's own aliases: ask afresh
            return get_possible_keys(self, context)
        try:
            signature = (type(self), tuple(self.alias_providers), type(obj), context.key, context.shape)
            return known[signature]
        except KeyError:
            pass
        except TypeError:  # something unhashable
            return get_possible_keys(self, context)
        try:
            keys = tuple(get_possible_keys(self, context))
        except Exception:  # an alias provider that fails past the key moto would pick: let its lazy walk decide
            return get_possible_keys(self, context)
        if len(known) > 8192:  # shapes are per operation model; bound it anyway
            known.clear()
        known[signature] = keys
        return keys

    return (cached_possible_keys,)


def _draw(rng, pool: str, count: int) -> str:
    """`count` characters of `pool`: the very ones `rng.choice(pool)` draws `count` times
    (random.Random's _randbelow: getrandbits, rejecting values past the pool), in one loop
    instead of three calls per character. apply() checks the equivalence on this Python."""
    size = len(pool)
    bits = size.bit_length()
    getrandbits = rng.getrandbits
    drawn = []
    for _ in range(count):
        index = getrandbits(bits)
        while index >= size:
            index = getrandbits(bits)
        drawn.append(pool[index])
    return "".join(drawn)


_HEX = "0123456789abcdef"  # moto's HEX_CHARS, as text


def _draw_ids_at_once(get_random_string, get_random_hex, generate_receipt_handle):
    from moto.moto_api._internal import mock_random
    from moto.moto_api._internal.moto_random import MotoRandom

    def random_string(self, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
        text = _draw(self, string.ascii_letters + string.digits if include_digits else string.ascii_letters, length)
        return text.lower() if lower_case else text

    def random_hex(self, length: int = 8) -> str:
        return _draw(self, _HEX, length)

    def receipt_handle() -> str:
        return _draw(mock_random, string.ascii_lowercase, 185)

    stock, ours = MotoRandom(), MotoRandom()
    for seed in (0, 7, 2026):
        stock.seed(seed)
        ours.seed(seed)
        for kwargs in ({}, {"length": 52}, {"length": 40, "include_digits": False}, {"lower_case": True}):
            if get_random_string(stock, **kwargs) != random_string(ours, **kwargs):
                raise Unfit("its ids differ from random.Random.choice's on this Python")
        if get_random_hex(stock, 64) != random_hex(ours, 64):
            raise Unfit("its hex ids differ from random.Random.choice's on this Python")
    state = mock_random.getstate()
    try:
        expected = generate_receipt_handle()
        mock_random.setstate(state)
        if receipt_handle() != expected:
            raise Unfit("its receipt handles differ from moto's on this Python")
    finally:
        mock_random.setstate(state)
    return random_string, random_hex, receipt_handle


def _cache_parses(parse):
    return (functools.lru_cache(maxsize=1024)(parse),)


def _retention_from_the_field(is_message_valid_based_on_retention_period):
    import moto.sqs.models

    def retained(self, queue_name: str, message) -> bool:
        retain_until = self.get_queue(queue_name).message_retention_period + message.sent_timestamp / 1000
        return not retain_until <= moto.sqs.models.unix_time()

    return (retained,)


def _clock_reads(sqs_unix_time, sqs_unix_time_millis, events_unix_time):
    def now_or(unix_time):
        def unix_time_now_or(dt=None) -> float:
            return time.time() if dt is None else unix_time(dt)

        return unix_time_now_or

    sqs_now = now_or(sqs_unix_time)
    return sqs_now, lambda dt=None: sqs_now(dt) * 1000.0, now_or(events_unix_time)


def _skip_untargeted_rules(send_to_targets):
    def send_if_targeted(self, original_event, transform_input: bool = True) -> None:
        if self.targets:
            send_to_targets(self, original_event, transform_input)

    return (send_if_targeted,)


def _count_with_one_clock_read(approximate_number_of_messages, delayed, not_visible):
    import moto.sqs.models

    def visible_now(queue) -> int:  # Queue.messages: visible and not delayed
        now = moto.sqs.models.unix_time_millis()
        return sum(1 for m in queue._messages if now > m.visible_at and not now < m.delayed_until)

    def delayed_now(queue) -> int:  # Message.delayed
        now = moto.sqs.models.unix_time_millis()
        return sum(1 for m in queue._messages if now < m.delayed_until)

    def not_visible_now(queue) -> int:  # not Message.visible
        now = moto.sqs.models.unix_time_millis()
        return sum(1 for m in queue._messages if not now > m.visible_at)

    return property(visible_now), property(delayed_now), property(not_visible_now)


def _cache_method_names(method_names_from_class):
    return (functools.cache(method_names_from_class),)


# --- the contract ------------------------------------------------------------------------------

_DISPATCH = "moto.moto_server.werkzeug_app:DomainDispatcherApplication"
_CONDITIONS = "moto.dynamodb.comparisons:ConditionExpressionParser"
_TRAVERSER = "moto.dynamodb.parsing.ast_nodes:DepthFirstTraverser"
_PICKERS = "moto.core.serialize"
_RANDOM = "moto.moto_api._internal.moto_random:MotoRandom"
_QUEUE = "moto.sqs.models:Queue"
_MESSAGE = "moto.sqs.models:Message"
_SQS = "moto.sqs.models:SQSBackend"

PATCHES: tuple[Patch, ...] = (
    Patch(
        "dispatch.backend_for_host",
        sets=(f"{_DISPATCH}.get_backend_for_host",),
        fingerprints={f"{_DISPATCH}.get_backend_for_host": "1f41972c1e4e660f"},
        build=_cache_backend_for_host,
        why="cache: a host's backend, found by listing moto's package folder and trying hundreds of URL "
            "patterns per request, never changes (an unknown amazonaws.com host's notice prints once)",
    ),
    Patch(
        "dynamodb.condition_trees",
        sets=(f"{_CONDITIONS}.parse", f"{_CONDITIONS}._make_operand"),
        fingerprints={_CONDITIONS: "ba0de03156fea746", f"{_CONDITIONS}.parse": "5c9b63c5f49ed5d5",
                      f"{_CONDITIONS}._make_operand": "021131942c01900c"},
        build=_cache_condition_trees,
        why="cache of moto's own parse (a dozen passes per conditional write) per expression and names; "
            "values are placeholders in the tree, looked up per call when moto makes its operands",
    ),
    Patch(
        "dynamodb.update_trees",
        sets=("moto.dynamodb.parsing.expressions:UpdateExpressionParser.make",),
        fingerprints={
            "moto.dynamodb.parsing.expressions:UpdateExpressionParser.make": "2c00ed96d6e191f2",
            # what reads the tree: only find_clauses, and the validator works on a deep copy
            "moto.dynamodb.parsing.validators:Validator.__init__": "9489b532dd0fb359",
            "moto.dynamodb.models:DynamoDBBackend.update_item": "218984588dd689a5",
            "moto.dynamodb.responses:DynamoHandler.update_item": "638893af1afd43d2",
            "moto.dynamodb.responses:DynamoHandler.transact_write_items": "61c163fff213f33a",
        },
        build=_share_update_trees,
        why="cache: an UpdateItem parses its UpdateExpression twice and only reads the tree or validates a "
            "deep copy; syntax errors are raised, never cached",
    ),
    Patch(
        "dynamodb.update_node_types",
        sets=(f"{_TRAVERSER}.nodes_to_be_processed",),
        fingerprints={
            f"{_TRAVERSER}.nodes_to_be_processed": "1c2c84c8097e3517", f"{_TRAVERSER}.process": "58328ec7c2f9b1f9",
            f"{_TRAVERSER}.traverse_node_recursively": "d7f01d9b45cf9f64",
            # the traversers, each with a constant map
            "moto.dynamodb.parsing.validators:UpdateExpressionValidator.get_ast_processors": "918400bbecd67e83",
        },
        build=_memo_node_types,
        why="cache per traverser: each of the ten passes over an update expression rebuilt its node-type map "
            "twice per node it visits; the map is a constant of the pass",
    ),
    Patch(
        "serialize.member_names",
        sets=(f"{_PICKERS}:XFormedAttributePicker.get_possible_keys",),
        fingerprints={
            f"{_PICKERS}:XFormedAttributePicker.get_possible_keys": "f0d20f55f37fd8a1",
            f"{_PICKERS}:AttributePicker.get_possible_keys": "cb284052c5ea7fe1",
            # the alias providers: what each answer depends on
            f"{_PICKERS}:ExplicitAlias": "50e6df2c5ef1bb8c", f"{_PICKERS}:NoAlias": "54b6a9dd71d3de73",
            f"{_PICKERS}:ModelAlias": "dc305f0cc88422f9", f"{_PICKERS}:ShapePrefixAlias": "bc24d299803babd2",
            f"{_PICKERS}:ClassPrefixAlias": "badfb8d077e500ff", f"{_PICKERS}:ShapeNameAlias": "3aac05bf01b44d5c",
        },
        build=_cache_member_names,
        why="cache: a response member's possible names depend on the picker, the object's class, the member "
            "and its shape; an object with its own Meta is asked afresh",
    ),
    Patch(
        "random.ids",
        sets=(f"{_RANDOM}.get_random_string", f"{_RANDOM}.get_random_hex", "moto.sqs.models:generate_receipt_handle"),
        fingerprints={f"{_RANDOM}.get_random_string": "942eb93ebea1f80a",
                      f"{_RANDOM}.get_random_hex": "3ae5a34be792e421",
                      "moto.sqs.models:generate_receipt_handle": "10853f98152c8dab"},
        build=_draw_ids_at_once,
        why="re-implementation (no cache for random draws): the same characters for the same seed, drawn in "
            "one frame instead of three calls per character; apply() compares both on this Python first",
    ),
    Patch(
        "events.jsonpath_parses",
        sets=("jsonpath_ng.ext:parse",),
        fingerprints={"jsonpath_ng.ext:parse": "8e8fc5e91980418d",
                      "moto.events.utils:EventTemplateParser.parse": "40a5a46a321811bb"},  # imports parse per call
        build=_cache_parses,
        why="cache: every rule target (the archive too) renders the event through eight JSONPath expressions, "
            "and jsonpath_ng builds a lexer and a parser for each; parsed paths are immutable",
    ),
    Patch(
        "sqs.retention",
        sets=(f"{_SQS}.is_message_valid_based_on_retention_period",),
        fingerprints={f"{_SQS}.is_message_valid_based_on_retention_period": "cca23b94a5f3af9d",
                      f"{_SQS}.get_queue_attributes": "58417223da457b5a", f"{_SQS}.get_queue": "a306ef8d1b461c40",
                      f"{_QUEUE}.attributes": "40cb990b121628d5", f"{_QUEUE}._set_attributes": "4b7aaf3f46363f13"},
        build=_retention_from_the_field,
        why="re-implementation (two lines; the answer moves with the clock): moto computes every queue "
            "attribute three times, each counting all messages, to read the retention period per received message",
    ),
    Patch(
        "clock.now",
        sets=("moto.sqs.models:unix_time", "moto.sqs.models:unix_time_millis", "moto.events.models:unix_time"),
        fingerprints={"moto.sqs.models:unix_time": "f0576ec9e5f586e5",
                      "moto.sqs.models:unix_time_millis": "7a37e1337d02962e",
                      "moto.events.models:unix_time": "f0576ec9e5f586e5", "moto.core.utils:utcnow": "7b8bb404c4f6dc02"},
        build=_clock_reads,
        why="re-implementation of 'now' only (a clock; a given datetime still goes to moto): SQS asks twice "
            "per message per scan, PutEvents twice per rule per event, and moto built two datetimes each time",
    ),
    Patch(
        "events.untargeted_rules",
        sets=("moto.events.models:Rule.send_to_targets",),
        fingerprints={"moto.events.models:Rule.send_to_targets": "472e002e2dab8a59",
                      "moto.events.models:EventPattern.matches_event": "3e71eb7ff5903b50"},
        build=_skip_untargeted_rules,
        why="wrapper: PutEvents matches every event against every rule, to then loop over no targets; "
            "the stack's rules have none in moto (the router delivers)",
    ),
    Patch(
        "sqs.queue_counts",
        sets=(f"{_QUEUE}.approximate_number_of_messages", f"{_QUEUE}.approximate_number_of_messages_delayed",
              f"{_QUEUE}.approximate_number_of_messages_not_visible"),
        fingerprints={f"{_QUEUE}.approximate_number_of_messages": "d357a9506a56d2f8",
                      f"{_QUEUE}.approximate_number_of_messages_delayed": "c3c1dadb0c42ed5f",
                      f"{_QUEUE}.approximate_number_of_messages_not_visible": "5dbecc4dda174358",
                      f"{_QUEUE}.messages": "03a531dbcbcf9aee", f"{_MESSAGE}.visible": "5129b573308de62a",
                      f"{_MESSAGE}.delayed": "e2fd48abf582683a"},
        build=_count_with_one_clock_read,
        why="re-implementation (the counts move with the clock): every SendMessage reads the queue's "
            "attributes, three counts that read the clock once per message; the same tests, one clock read each",
    ),
    Patch(
        "responses.method_names",
        sets=("moto.core.responses:method_names_from_class",),
        fingerprints={"moto.core.responses:method_names_from_class": "9dbac89d082b655f",
                      "moto.core.responses:BaseResponse.call_action": "26076963fd17fd1a"},  # only tests membership
        build=_cache_method_names,
        why="cache: every request lists its response class's methods with inspect.getmembers",
    ),
)

_applied: dict[str, tuple[tuple[str, Any], ...]] = {}  # patch name -> moto's own values at the points it set


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def installed_moto_version() -> str:
    import moto

    return moto.__version__


def apply(only: Iterable[str] | None = None, warn: Callable[[str], None] = _warn) -> list[str]:
    """Applies the patches (or `only` those named) that hold for the installed moto; returns the
    names of every patch now applied. Applying twice changes nothing."""
    version = installed_moto_version()
    if version != MOTO_VERSION:
        warn(f"moto_speedups: moto {version} is installed, the patches were written for {MOTO_VERSION}: "
             "none applied, stock moto throughout")
        return list(_applied)
    chosen = None if only is None else set(only)
    unknown = (chosen or set()) - {patch.name for patch in PATCHES}
    if unknown:
        raise ValueError(f"no such patch: {', '.join(sorted(unknown))}")
    for patch in PATCHES:
        if patch.name in _applied or (chosen is not None and patch.name not in chosen):
            continue
        changed = [path for path, expected in patch.fingerprints.items() if fingerprint(path) != expected]
        if changed:
            warn(f"moto_speedups: {patch.name} skipped, stock moto for it: {', '.join(changed)} differs from "
                 f"moto {MOTO_VERSION}'s")
            continue
        stock = tuple(value_at(path) for path in patch.sets)
        try:
            replacements = patch.build(*stock)
        except Exception as exc:  # Unfit, or a build that broke: that part of moto stays stock
            warn(f"moto_speedups: {patch.name} skipped, stock moto for it: "
                 f"{exc if isinstance(exc, Unfit) else f'its build failed: {exc!r}'}")
            continue
        for path, value in zip(patch.sets, replacements):
            owner, name = resolve(path)
            setattr(owner, name, value)
        _applied[patch.name] = tuple(zip(patch.sets, stock))
    return list(_applied)


def restore() -> None:
    """Puts moto's own functions back at every point a patch set, the last applied first."""
    for name in reversed(list(_applied)):
        for path, value in _applied.pop(name):
            owner, attribute = resolve(path)
            setattr(owner, attribute, value)


def applied() -> list[str]:
    return list(_applied)


def points() -> dict[str, Any]:
    """What each point the patches set holds now: moto's own values unless apply() ran."""
    return {path: value_at(path) for patch in PATCHES for path in patch.sets}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Compare the patches' fingerprints with the installed moto.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = {"moto": installed_moto_version(), "written_for": MOTO_VERSION, "patches": {
        patch.name: {path: {"expected": expected, "installed": fingerprint(path)}
                     for path, expected in patch.fingerprints.items()} for patch in PATCHES}}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"moto {report['moto']} installed, patches written for {MOTO_VERSION}")
    for name, paths in report["patches"].items():
        state = "holds" if all(p["expected"] == p["installed"] for p in paths.values()) else "SKIPPED"
        print(f"{name}: {state}")
        for path, p in paths.items():
            print(f"  {p['installed'] or 'missing':<16} {'=' if p['expected'] == p['installed'] else '!'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

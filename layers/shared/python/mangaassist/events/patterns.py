"""EventBridge event patterns, matched the way EventBridge (aws/event-ruler) matches them.

``compile_pattern`` validates a pattern once (rejecting what AWS rejects, with AWS's message)
and returns a function of an event. Semantics worth knowing (../shared/reference/eventbridge.md):

- fields AND, values in a field's list OR; ``$or`` at any level (expanded, at most 1000 ways);
  a key both outside and inside an ``$or`` takes the inner condition (event-ruler's override);
- numbers compare by value (pattern ``[300]`` matches ``300.0``), never a string ``"300"``;
- ``exists`` is about leaves: ``[]`` and ``{}`` are absent, ``null`` is present;
- arrays in the event match when any element matches, and fields matched inside one array of
  objects must all come from the same element (array consistency);
- dotted keys: ``{"a.b": ...}`` and ``{"a": {"b": ...}}`` are the same path, in patterns and events.
"""
from __future__ import annotations

import ipaddress
import json
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from itertools import product
from typing import Callable

PREFIX = "Event pattern is not valid. Reason: "
MAX_OR_COMBINATIONS = 1000
MAX_WILDCARDS = 5  # AWS's complexity check rejects e.g. "*:*:*:*:*:event-bus/*"
NUMERIC_OPS = {"<", "<=", ">", ">=", "="}


class InvalidEventPattern(ValueError):
    """A pattern AWS would reject (InvalidEventPatternException); the message is AWS's."""

    def __init__(self, reason: str):
        super().__init__(PREFIX + reason)
        self.reason = reason


# --- values -------------------------------------------------------------------------------------
def _is_number(value) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _num(value) -> Decimal | None:
    """A JSON number as an exact decimal; None for anything else (and for NaN/inf)."""
    if not _is_number(value):
        return None
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def _literal_key(value):
    """What exact matching compares: strings as themselves, numbers by value, true/false/null apart."""
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, bool):
        return ("b", value)
    if value is None:
        return ("n", None)
    number = _num(value)
    return ("d", number.normalize()) if number is not None else ("?", repr(value))


# --- leaf matchers: value -> bool ---------------------------------------------------------------
def _string_list(value, what: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise InvalidEventPattern(f"{what} match pattern must be a string")
    return values


def _wildcard_regex(pattern: str) -> re.Pattern:
    parts, i, stars = [], 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            if i + 1 < len(pattern) and pattern[i + 1] == "*":
                raise InvalidEventPattern(f"Consecutive wildcard characters at pos {i + 1}")
            stars += 1
            parts.append(".*")
        else:
            parts.append(re.escape(ch))
        i += 1
    if stars > MAX_WILDCARDS:
        raise InvalidEventPattern("Rule is too complex - try using fewer wildcard characters or fewer repeating "
                                  "character sequences after a wildcard character")
    return re.compile("".join(parts), re.DOTALL)


def _prefix_or_suffix(kind: str, operand) -> Callable:
    if isinstance(operand, dict):
        if set(operand) != {"equals-ignore-case"}:
            raise InvalidEventPattern(f"{kind} match pattern must be a string")
        text = operand["equals-ignore-case"]
        if not isinstance(text, str):
            raise InvalidEventPattern("equals-ignore-case match pattern must be a string")
        folded = text.lower()
        if kind == "prefix":
            return lambda v: isinstance(v, str) and v.lower().startswith(folded)
        return lambda v: isinstance(v, str) and v.lower().endswith(folded)
    if not isinstance(operand, str):
        raise InvalidEventPattern(f"{kind} match pattern must be a string")
    if kind == "prefix":
        return lambda v: isinstance(v, str) and v.startswith(operand)
    return lambda v: isinstance(v, str) and v.endswith(operand)


def _numeric(operand) -> Callable:
    if not isinstance(operand, list):
        raise InvalidEventPattern("Value of numeric must be an array.")
    if not operand:
        raise InvalidEventPattern("Empty arrays are not allowed")
    checks, i, seen = [], 0, set()
    while i < len(operand):
        op = operand[i]
        if not isinstance(op, str) or op not in NUMERIC_OPS:
            raise InvalidEventPattern(f"Unrecognized numeric range operator: {op}")
        if i + 1 >= len(operand) or _num(operand[i + 1]) is None:
            raise InvalidEventPattern(f"Value of {op} must be numeric")
        if op == "=" and len(operand) != 2:
            raise InvalidEventPattern("Bad numeric range operator: =")
        side = op[0]  # a range is one lower bound and one upper bound
        if side in seen or (checks and op == "="):
            raise InvalidEventPattern(f"Bad numeric range operator: {op}")
        seen.add(side)
        checks.append((op, _num(operand[i + 1])))
        i += 2
    if len(checks) == 2:
        (op1, low), (op2, high) = checks
        if op1[0] != ">" or op2[0] != "<" or low >= high:
            raise InvalidEventPattern(f"Bad numeric range operator: {op2 if op1[0] == '>' else op1}")
    compare = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
               ">=": lambda a, b: a >= b, "=": lambda a, b: a == b}

    def match(value) -> bool:
        cls = value.__class__
        if cls is float:  # the decimal the JSON text said (301.8), not its binary neighbour
            value = Decimal(repr(value))
        elif cls is not int and cls is not Decimal:  # bool is not a number here
            return False
        try:
            return all(compare[op](value, bound) for op, bound in checks)
        except (InvalidOperation, TypeError):  # NaN from a lenient JSON parser
            return False

    return match


def _cidr(operand) -> Callable:
    if not isinstance(operand, str):
        raise InvalidEventPattern("prefix match pattern must be a string")
    if operand.count("/") != 1:
        raise InvalidEventPattern("Malformed CIDR, one '/' required")
    address, bits = operand.split("/")
    if not bits.isdigit():
        raise InvalidEventPattern("Malformed CIDR, mask bits must be an integer")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise InvalidEventPattern(f"Nonstandard IP address: {address}") from None
    if int(bits) > ip.max_prefixlen:
        raise InvalidEventPattern(f"Malformed CIDR, mask bits must be no greater than {ip.max_prefixlen}")
    network = ipaddress.ip_network(operand, strict=False)  # event-ruler accepts host bits set

    def match(value) -> bool:
        if not isinstance(value, str):
            return False
        try:
            return ipaddress.ip_address(value) in network
        except ValueError:
            return False

    return match


def _anything_but(operand) -> Callable:
    if isinstance(operand, dict):
        if len(operand) != 1:
            raise InvalidEventPattern("Value of anything-but must be an array or single string/number value.")
        (kind, inner), = operand.items()
        if kind in ("prefix", "suffix"):
            if isinstance(inner, dict):
                raise InvalidEventPattern("Value of anything-but must be an array or single string/number value.")
            texts = _string_list(inner, "prefix/suffix")
            if any(t == "" for t in texts):
                raise InvalidEventPattern("Null prefix/suffix not allowed")
            if kind == "prefix":
                return lambda v: not (isinstance(v, str) and any(v.startswith(t) for t in texts))
            return lambda v: not (isinstance(v, str) and any(v.endswith(t) for t in texts))
        if kind == "equals-ignore-case":
            values = inner if isinstance(inner, list) else [inner]
            if not values or not all(isinstance(v, str) for v in values):
                raise InvalidEventPattern("Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.")
            folded = {v.lower() for v in values}
            return lambda v: not (isinstance(v, str) and v.lower() in folded)
        if kind == "wildcard":
            regexes = [_wildcard_regex(t) for t in _string_list(inner, "wildcard")]
            return lambda v: not (isinstance(v, str) and any(r.fullmatch(v) for r in regexes))
        raise InvalidEventPattern(f"Unsupported anything-but pattern: {kind}")
    if isinstance(operand, list):
        if not operand:
            raise InvalidEventPattern("Empty arrays are not allowed")
        if not all(isinstance(v, str) or _is_number(v) for v in operand):
            raise InvalidEventPattern("Inside anything but list, start|null|boolean is not supported.")
        excluded = {_literal_key(v) for v in operand}
        return lambda v: _literal_key(v) not in excluded
    if isinstance(operand, str) or _is_number(operand):
        excluded_key = _literal_key(operand)
        return lambda v: _literal_key(v) != excluded_key
    raise InvalidEventPattern("Value of anything-but must be an array or single string/number value.")


def _operator(spec: dict):
    """One ``{operator: operand}`` object -> a value matcher, or ("exists", bool)."""
    if len(spec) != 1:
        raise InvalidEventPattern("Only one key allowed in match expression")
    (name, operand), = spec.items()
    if name == "exists":
        if not isinstance(operand, bool):
            raise InvalidEventPattern("exists match pattern must be either true or false.")
        return ("exists", operand)
    if name in ("prefix", "suffix"):
        return _prefix_or_suffix(name, operand)
    if name == "equals-ignore-case":
        if not isinstance(operand, str):
            raise InvalidEventPattern("equals-ignore-case match pattern must be a string")
        folded = operand.lower()
        return lambda v: isinstance(v, str) and v.lower() == folded
    if name == "anything-but":
        return _anything_but(operand)
    if name == "numeric":
        return _numeric(operand)
    if name == "cidr":
        return _cidr(operand)
    if name == "wildcard":
        if not isinstance(operand, str):
            raise InvalidEventPattern("wildcard match pattern must be a string")
        regex = _wildcard_regex(operand)
        return lambda v: isinstance(v, str) and regex.fullmatch(v) is not None
    raise InvalidEventPattern(f"Unrecognized match type {name}")


def _split_absent_alternatives(fields: list["Field"]) -> list[list["Field"]]:
    """A field listing ``{"exists": false}`` beside other values matches when absent OR when a
    value matches the others: turn it into two alternatives."""
    alternatives = [[]]
    for field in fields:
        if field.exists is False and field.has_values:
            present, absent = field.without_exists(), Field(field.path, [{"exists": False}])
            alternatives = [alt + [choice] for alt in alternatives for choice in (present, absent)]
        else:
            alternatives = [alt + [field] for alt in alternatives]
    return alternatives


class Field:
    """The conditions on one path: any of its values may match (OR)."""

    __slots__ = ("path", "parts", "literals", "bools", "tests", "exists")

    def __init__(self, path: str, values: list):
        self.path = path
        self.parts = tuple(path.split("."))
        # Strings, numbers and null in one set: equal numbers hash alike across int, float and
        # Decimal, so [300] finds 300.0 without converting the event's value.
        self.literals: set = set()
        self.bools: set = set()  # apart, or True would find 1
        self.tests: list[Callable] = []
        self.exists: bool | None = None
        for value in values:
            if isinstance(value, dict):
                op = _operator(value)
                if isinstance(op, tuple):
                    self.exists = op[1]
                else:
                    self.tests.append(op)
            elif isinstance(value, list):
                raise InvalidEventPattern("Match value must be String, number, true, false, or null")
            elif isinstance(value, bool):
                self.bools.add(value)
            elif _is_number(value):
                number = _num(value)
                if number is not None:
                    self.literals.update((number, float(number)))  # exact, and as a float event would carry it
            else:
                self.literals.add(value)

    @property
    def has_values(self) -> bool:
        return bool(self.literals or self.bools or self.tests)

    def without_exists(self) -> "Field":
        clone = Field(self.path, [])
        clone.literals, clone.bools, clone.tests = self.literals, self.bools, self.tests
        return clone

    def accepts(self, value) -> bool:
        if value.__class__ is bool:
            if value in self.bools:
                return True
        elif value in self.literals:
            return True
        for test in self.tests:
            if test(value):
                return True
        return False


# --- pattern structure ----------------------------------------------------------------------------
def _parse(pattern) -> dict:
    if isinstance(pattern, (str, bytes)):
        try:
            pattern = json.loads(pattern, parse_float=Decimal)
        except ValueError:
            raise InvalidEventPattern("Filter is not valid JSON") from None
    if not isinstance(pattern, dict):
        raise InvalidEventPattern("Filter is not an object")
    return pattern


def _terms(obj: dict, base: str) -> list[dict[str, list]]:
    """Expand an object (with any ``$or``) into alternatives: each a {path: values} conjunction."""
    if not obj:
        raise InvalidEventPattern("Empty objects are not allowed")
    plain: dict[str, list] = {}
    nested: list[list[dict[str, list]]] = []
    for key, value in obj.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, dict) for v in value):
                raise InvalidEventPattern("Value of $or must be an array of at least 2 objects")
            alternatives = []
            for option in value:
                alternatives.extend(_terms(option, base))
            nested.append(alternatives)
            continue
        path = f"{base}.{key}" if base else key
        if isinstance(value, dict):
            nested.append(_terms(value, path))
        elif isinstance(value, list):
            if not value:
                raise InvalidEventPattern("Empty arrays are not allowed")
            plain[path] = value
        else:
            raise InvalidEventPattern(f'"{key}" must be an object or an array')
    combinations = 1
    for alternatives in nested:
        combinations *= len(alternatives)
        if combinations > MAX_OR_COMBINATIONS:
            raise InvalidEventPattern("The event pattern has too many combinations of $or (more than 1000)")
    out = []
    for choice in product(*nested):
        term = dict(plain)
        for part in choice:
            term.update(part)  # an inner condition on the same path wins, as in event-ruler
        out.append(term)
    return out


# --- events ---------------------------------------------------------------------------------------
_MISSING = object()


def _lookup_plan(paths: list[str]) -> dict[str, tuple]:
    """For each path prefix, the (event key, longer prefix) lookups to make in an event object.

    Keys are looked up rather than event objects scanned, and every grouping of a path's parts is
    a lookup (``a.b.c``: ``a`` then ``b.c``, ``a.b`` then ``c``, ...), which is how dotted keys in
    events reach the same path as nested ones.
    """
    plan: dict[str, set] = {}
    for path in paths:
        parts = path.split(".")
        for start in range(len(parts)):
            prefix = ".".join(parts[:start])
            for end in range(start + 1, len(parts) + 1):
                plan.setdefault(prefix, set()).add((".".join(parts[start:end]), ".".join(parts[:end])))
    return {prefix: tuple(sorted(lookups)) for prefix, lookups in plan.items()}


def _collector(paths: list[str]):
    """collect(event) -> ({path: [(value, membership)]}, crossed_object_arrays).

    membership is a tuple of (array id, element index) for each array of objects on the way to
    a value: array consistency compares them.
    """
    plan, wanted = _lookup_plan(paths), frozenset(paths)

    def collect(event: dict):
        out = {path: [] for path in paths}
        crossed = False

        def visit(node: dict, prefix: str, membership: tuple) -> None:
            for key, child in plan[prefix]:
                value = node.get(key, _MISSING)
                if value is not _MISSING:
                    place(value, child, membership)

        def place(value, path: str, membership: tuple) -> None:
            nonlocal crossed
            cls = value.__class__
            if cls is dict:
                if path in plan:
                    visit(value, path, membership)
            elif cls is list:
                for index, item in enumerate(value):
                    if item.__class__ is dict or item.__class__ is list:
                        crossed = True
                        place(item, path, membership + ((id(value), index),))
                    elif path in wanted:
                        out[path].append((item, membership))
            elif path in wanted:
                out[path].append((value, membership))

        visit(event, "", ())
        return out, crossed

    return collect


def _direct_values(event: dict, parts: tuple):
    """The leaf values at ``parts`` by plain lookups, or None when only the full walk can tell
    (an array of objects on the way, or a miss that a dotted event key could fill)."""
    node = event
    last = len(parts) - 1
    for i, part in enumerate(parts):
        cls = node.__class__
        if cls is not dict:
            return None if cls is list else ()  # under a scalar: absent
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return None if i < last else ()
    cls = node.__class__
    if cls is dict:
        return ()
    if cls is list:
        for item in node:
            if item.__class__ is dict or item.__class__ is list:
                return None
        return node
    return (node,)


def _consistent(a: tuple, bound: dict) -> bool:
    return all(bound.get(token, index) == index for token, index in a)


class _Term:
    """One alternative of a pattern: every field must match."""

    def __init__(self, fields: list[Field]):
        # exists:false is decided last, against the array elements the other fields chose.
        self.positive = [f for f in fields if f.exists is not False]
        self.absent = [f.path for f in fields if f.exists is False]
        self.absent_parts = [f.parts for f in fields if f.exists is False]

    def direct(self, event: dict) -> bool | None:
        """The answer from plain lookups, or None when the event needs the full walk."""
        for field in self.positive:
            present = _direct_values(event, field.parts)
            if present is None:
                return None
            if field.exists and (not field.has_values or present):
                if not present:
                    return False
                continue
            for value in present:
                if field.accepts(value):
                    break
            else:
                return False
        for parts in self.absent_parts:
            present = _direct_values(event, parts)
            if present is None:
                return None
            if present:
                return False
        return True

    def matches(self, values: dict[str, list], crossed: bool) -> bool:
        if not crossed:  # no arrays of objects: no consistency to keep, the common case
            for field in self.positive:
                present = values[field.path]
                if not (present if field.exists and not field.has_values
                        else any(field.accepts(v) for v, _ in present) or (field.exists and present)):
                    return False
            return not any(values[path] for path in self.absent)
        candidates = []
        for field in self.positive:
            present = values[field.path]
            if field.exists and (not field.has_values or present):
                chosen = present
            else:
                chosen = [(v, m) for v, m in present if field.accepts(v)]
            if not chosen:
                return False
            candidates.append(chosen)
        return self._search(candidates, 0, {}, values)

    def _search(self, candidates: list, i: int, bound: dict, values: dict) -> bool:
        if i == len(candidates):
            return not any(_consistent(m, bound) for path in self.absent for _, m in values[path])
        for _, membership in candidates[i]:
            if not _consistent(membership, bound):
                continue
            added = [(t, x) for t, x in membership if t not in bound]
            bound.update(added)
            if self._search(candidates, i + 1, bound, values):
                return True
            for token, _ in added:
                del bound[token]
        return False


def compile_pattern(pattern) -> Callable[[dict], bool]:
    """Validate ``pattern`` (a dict or JSON text) and return ``match(event) -> bool``."""
    terms = [
        _Term(fields)
        for term in _terms(_parse(pattern), "")
        for fields in _split_absent_alternatives([Field(path, values) for path, values in term.items()])
    ]
    collect = _collector(sorted({f.path for t in terms for f in t.positive} | {p for t in terms for p in t.absent}))

    def match(event: dict) -> bool:
        if event.__class__ is not dict:
            return False
        for term in terms:
            answer = term.direct(event)
            if answer is None:
                break
            if answer:
                return True
        else:
            return False
        values, crossed = collect(event)
        for term in terms:
            if term.matches(values, crossed):
                return True
        return False

    return match


def validate_pattern(pattern) -> None:
    compile_pattern(pattern)


@lru_cache(maxsize=1024)
def _compiled(text: str) -> Callable[[dict], bool]:
    return compile_pattern(text)


def matches(pattern, event: dict) -> bool:
    """One-off matching; compiled patterns are cached by their JSON text."""
    text = pattern if isinstance(pattern, str) else json.dumps(pattern, sort_keys=True, default=str)
    return _compiled(text)(event)

"""EventBridge event patterns, matched the way EventBridge's engine (aws/event-ruler) matches them.

``compile_pattern`` validates a pattern once, rejecting what AWS rejects with AWS's message, and
returns a function of a parsed event. The rules, with their sources, are in
../shared/reference/eventbridge.md (section 2). What is easy to get wrong:

- A pattern is read in document order, as event-ruler reads its token stream: a key inside an
  ``$or`` overrides the same key written before the ``$or``, and one written after it wins over it.
- Numbers: event-ruler compares a number by its double when the number's decimal text is exactly
  that double's shortest decimal ("comparable": ``300``, ``300.0``, ``3e2`` are equal), and by its
  text otherwise (``9007199254740993``). A number never equals a string.
- A string pattern that is an IP address literal matches the same address written differently.
  Addresses compare as hex digits from the left, so an IPv6 address can match an IPv4 CIDR.
- ``exists`` is about leaves: ``[]`` and ``{}`` are absent, ``null`` is present.
- Arrays in events match when any element does. Fields matched inside one array of objects must
  come from the same element (array consistency). ``exists: false`` is checked against the array
  elements chosen by the fields that sort before it, as event-ruler's machine walks fields in order.
- ``{"a.b": ...}`` and ``{"a": {"b": ...}}`` name the same path, in patterns and in events.

Not from AWS: the wildcard complexity limit (inferred, see MAX_WILDCARD_COMPLEXITY), and the
messages for malformed JSON, deep nesting and too many ``$or`` combinations.

Known differences, all in inputs nobody sends: an event holding one leaf both nested and under a
dotted key is read through the nested one; a non-comparable number is compared by its text as
Python's Decimal prints it (``1E+400`` for ``1e400``); characters outside the BMP in
``equals-ignore-case`` are case-folded here (event-ruler garbles them). "Comparable" uses the
shortest decimal of a double, which Java's Double.toString gives from JDK 19 on; older JDKs print
a few doubles with an extra digit (2e23 as 1.9999999999999998E23), changing which numbers compare.
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

PREFIX = "Event pattern is not valid. Reason: "
MAX_OR_COMBINATIONS = 1000
# AWS rejects wildcard patterns whose machine complexity (see _wildcard_complexity) exceeds a limit
# it does not publish. 10 is the per-rule limit event-ruler's README suggests, and it separates the
# data points we have: AWS rejects "*:*:*:*:*:event-bus/*" (11); a public report has three
# "*:stack/<name>/*" values in one field accepted (9) and four rejected (12).
MAX_WILDCARD_COMPLEXITY = 10
_COMPLEXITY_STATES = 20_000  # give up (as too complex) after exploring this many machine states

_OPERATORS_RESERVED_IN_OR = frozenset({
    "exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists", "wildcard", "numeric",
    "cidr", "=", "<", "<=", ">", ">=", "regex", "not-wildcard", "not-equals-ignore-case", "date-after",
    "date-on-or-after", "date-before", "date-on-or-before", "in-date-range", "ip-address-in-range",
    "ip-address-not-in-range",
})
_TOO_MANY_ELEMENTS = "Too many elements in numeric expression"  # event-ruler's text, for anything-but too
_ONLY_ONE_KEY = "Only one key allowed in match expression"


class InvalidEventPattern(ValueError):
    """A pattern AWS would reject (InvalidEventPatternException); the message is AWS's."""

    def __init__(self, reason: str):
        super().__init__(PREFIX + reason)
        self.reason = reason


# --- pattern text ---------------------------------------------------------------------------------
class _Object(tuple):
    """A JSON object as its (key, value) pairs, in document order with repeated keys kept."""


def _load(pattern):
    if isinstance(pattern, (bytes, bytearray)):
        try:
            pattern = pattern.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEventPattern("Filter is not valid JSON") from None
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern, parse_float=Decimal, parse_constant=_reject_constant,
                                 object_pairs_hook=_Object)
        except (ValueError, RecursionError):
            raise InvalidEventPattern("Filter is not valid JSON") from None
    if not _is_object(pattern):
        raise InvalidEventPattern("Filter is not an object")
    return pattern


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _is_object(value) -> bool:
    return isinstance(value, (dict, _Object))


def _pairs(obj) -> list:
    pairs = list(obj.items()) if isinstance(obj, dict) else list(obj)
    for key, _ in pairs:
        if not isinstance(key, str):
            raise InvalidEventPattern(f"Field names must be strings, not {key!r}")
    return pairs


def _token_text(value) -> str:
    """What event-ruler's messages quote for a JSON token (Jackson's getText())."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if _is_object(value):
        return "{"
    if isinstance(value, list):
        return "["
    return _number_text(value)


# --- numbers --------------------------------------------------------------------------------------
def _is_number(value) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _number_text(value) -> str:
    # Decimal prints an int of any length (str() refuses past 4300 digits)
    return repr(value) if isinstance(value, float) else str(Decimal(value))


def _double(value) -> float | None:
    """The double event-ruler compares a JSON number by, or None when it does not (not a number,
    or not "comparable": ComparableNumber.generate wants the decimal value to be exactly the
    shortest decimal of its double, so 9007199254740993 or 1.0000000000000001 are not)."""
    cls = value.__class__
    if cls is float:  # already a double; its text was its shortest decimal
        return value if math.isfinite(value) else None
    if not _is_number(value):
        return None
    if isinstance(value, int) and -2 ** 53 <= value <= 2 ** 53:
        return float(value)
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    try:
        double = float(value)
    except OverflowError:
        return None
    return double if math.isfinite(double) and Decimal(repr(double)) == value else None


def _number_key(value):
    """What exact matching compares for a number (None for anything else)."""
    if value.__class__ is int and -2 ** 53 <= value <= 2 ** 53:  # the common case, equal to its float
        return value
    double = _double(value)
    if double is None:
        return ("text", _number_text(value)) if _is_number(value) else None
    return double  # -0.0 == 0.0, as in event-ruler (it parses through BigDecimal, which has no -0)


def _comparable(value) -> float:
    """A pattern's number as a double, or AWS's rejection."""
    double = _double(value)
    if double is None:
        raise InvalidEventPattern(f"Cannot compare number : {_number_text(value)}")
    return double


def _numeric_range(low: float | None, low_open: bool, high: float | None, high_open: bool) -> Callable:
    def match(value) -> bool:
        double = _double(value)
        if double is None:  # strings, booleans, and numbers event-ruler cannot compare
            return False
        if low is not None and (double <= low if low_open else double < low):
            return False
        return high is None or (double < high if high_open else double <= high)

    return match


# The three functions below branch once per case of event-ruler's validation, in its order (which
# decides the message AWS answers with); splitting them would hide that order, so they stay whole.
def _numeric(operand) -> tuple[str, Any]:  # noqa: C901
    """A ``numeric`` operand -> ("key", number key) for "=", or ("test", range matcher)."""
    if not isinstance(operand, list):
        raise InvalidEventPattern("Value of numeric must be an array.")
    if not operand or not isinstance(operand[0], str):
        raise InvalidEventPattern(f"Invalid member in numeric match: {_token_text(operand[0]) if operand else ']'}")
    op, size = operand[0], len(operand)

    def number_at(index: int) -> bool:
        return index < size and _is_number(operand[index])

    if op in ("=", "<", "<="):
        if not number_at(1):
            raise InvalidEventPattern(f"Value of {'equals' if op == '=' else op} must be numeric")
        if size > 2:
            raise InvalidEventPattern(_TOO_MANY_ELEMENTS)
        bound = _comparable(operand[1])
        if op == "=":
            return "key", _number_key(bound)
        return "test", _numeric_range(None, False, bound, op == "<")
    if op not in (">", ">="):
        raise InvalidEventPattern(f"Unrecognized numeric range operator: {op}")
    if not number_at(1):
        raise InvalidEventPattern(f"Value of {op} must be numeric")
    if size == 2:
        return "test", _numeric_range(_comparable(operand[1]), op == ">", None, False)
    top_op = operand[2]
    if not isinstance(top_op, str):
        raise InvalidEventPattern(f"Bad value in numeric range: {_token_text(top_op)}")
    if top_op not in ("<", "<="):
        raise InvalidEventPattern(f"Bad numeric range operator: {top_op}")
    if not number_at(3):
        raise InvalidEventPattern(f"Value of {top_op} must be numeric")
    if size > 4:
        raise InvalidEventPattern("Too many terms in numeric range expression")
    low, high = _comparable(operand[1]), _comparable(operand[3])
    if low >= high:
        raise InvalidEventPattern("Bottom must be less than top")
    return "test", _numeric_range(low, op == ">", high, top_op == "<")


# --- IP addresses ---------------------------------------------------------------------------------
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")  # event-ruler's pre-checks, before parsing
_IPV6 = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")


def _ip_digits(text: str) -> str | None:
    """An address as event-ruler compares it: 8 (IPv4) or 32 (IPv6) upper-case hex digits, an
    IPv4-mapped IPv6 address as IPv4 (Java's InetAddress does that). None when not an address;
    raises ValueError for text that looks like one but does not parse."""
    if _IPV4.fullmatch(text):
        return ipaddress.IPv4Address(text).packed.hex().upper()
    if _IPV6.fullmatch(text):
        address = ipaddress.IPv6Address(text)
        return (address.ipv4_mapped or address).packed.hex().upper()
    return None


@lru_cache(maxsize=4096)
def _address(text: str) -> str | None:
    """_ip_digits, or None for anything that is not an address."""
    try:
        return _ip_digits(text)
    except ValueError:
        return None


def _in_digit_range(digits: str, low: str, high: str) -> bool:
    """event-ruler's byte machine over hex digits: a value matches once its first len(low) digits are
    in range, so an IPv6 address can match an IPv4 range by its first 32 bits; a shorter value (IPv4
    against an IPv6 range) matches only if some prefix of it already lies strictly inside."""
    width = len(low)
    if len(digits) >= width:
        return low <= digits[:width] <= high
    for end in range(1, len(digits) + 1):
        head = digits[:end]
        if low[:end] < head < high[:end]:
            return True
        if not low[:end] <= head <= high[:end]:
            return False
    return False


def _cidr(text: str) -> tuple[str, str]:
    parts = text.split("/")
    while parts and not parts[-1]:  # Java's String.split drops trailing empty strings
        parts.pop()
    if len(parts) != 2:
        raise InvalidEventPattern("Malformed CIDR, one '/' required")
    address, bits = parts
    if not re.fullmatch(r"[+-]?[0-9]{1,10}", bits) or not -2 ** 31 <= int(bits) < 2 ** 31:  # Integer.parseInt
        raise InvalidEventPattern("Malformed CIDR, mask bits must be an integer")
    mask = int(bits)
    if mask < 0:
        raise InvalidEventPattern("Malformed CIDR, mask bits must not be negative")
    try:
        digits = _ip_digits(address)
    except ValueError:
        raise InvalidEventPattern(f"Invalid IP address: {address}") from None
    if digits is None:
        raise InvalidEventPattern(f"Nonstandard IP address: {address}")
    width = len(digits) * 4
    if mask >= width:  # event-ruler's limits: /32 and /128 are rejected
        raise InvalidEventPattern(f"IPv{4 if width == 32 else 6} mask bits must be < {width}")
    host = (1 << (width - mask)) - 1
    network = int(digits, 16) & ~host
    return f"{network:0{len(digits)}X}", f"{network | host:0{len(digits)}X}"


# --- strings --------------------------------------------------------------------------------------
def _ignore_case(text: str, how: str) -> Callable[[str], bool]:
    """equals-ignore-case (how: "equals", "prefix" or "suffix") as event-ruler does it: each
    character of the pattern matches its lower- or its upper-case form, nothing else."""
    if text.isascii():
        folded, size = text.lower(), len(text)
        if how == "equals":
            return lambda v: _ascii_lower(v) == folded
        if how == "prefix":
            return lambda v: _ascii_lower(v[:size]) == folded
        return lambda v: len(v) >= size and _ascii_lower(v[len(v) - size:]) == folded
    # Every character escaped: no "." or anchor in the body for a flag to change.
    body = "".join(f"(?:{re.escape(c.lower())}|{re.escape(c.upper())})" for c in text)
    if how == "equals":
        regex = re.compile(body).fullmatch
    elif how == "prefix":
        regex = re.compile(body).match
    else:
        regex = re.compile(f"(?:{body})\\Z").search
    return lambda v: regex(v) is not None


def _ascii_lower(text: str) -> str | None:
    return text.lower() if text.isascii() else None


def _wildcard(text: str) -> tuple[Callable[[str], bool], list]:
    """A wildcard pattern -> (matcher, machine tokens for the complexity check).

    Parsed as event-ruler's WildcardParser parses it: over the UTF-8 bytes of the quoted value
    (error positions count the opening quote), ``\\*`` and ``\\\\`` escape, any other backslash is an
    error. Tokens are the bytes, quotes included, with None for ``*``.
    """
    data = ('"' + text + '"').encode("utf-8", "surrogatepass")
    last = len(data) - 1
    tokens: list[int | None] = []
    parts: list[str] = []
    part, i = bytearray(), 0
    while i <= last:
        byte = data[i]
        if byte == 0x2A:  # *
            if data[i + 1] == 0x2A:
                raise InvalidEventPattern(f"Consecutive wildcard characters at pos {i}")
            tokens.append(None)
            parts.append(part.decode("utf-8", "surrogatepass"))
            part = bytearray()
        elif byte == 0x5C:  # backslash
            if data[i + 1] not in (0x2A, 0x5C):  # the closing quote counts as "any other"
                raise InvalidEventPattern(f"Invalid escape character at pos {i}")
            tokens.append(data[i + 1])
            part.append(data[i + 1])
            i += 1
        else:
            tokens.append(byte)
            if 0 < i < last:  # not the quotes
                part.append(byte)
        i += 1
    parts.append(part.decode("utf-8", "surrogatepass"))
    return _glob(parts), tokens


def _glob(parts: list[str]) -> Callable[[str], bool]:
    """Match the literal parts in order with anything between them; leftmost-first search is exact
    for ``*``-only patterns and linear, where a regex could backtrack."""
    if len(parts) == 1:
        return parts[0].__eq__
    first, middle, last = parts[0], parts[1:-1], parts[-1]
    shortest = sum(map(len, parts))

    def match(value: str) -> bool:
        if len(value) < shortest or not value.startswith(first) or not value.endswith(last):
            return False
        position, end = len(first), len(value) - len(last)
        for part in middle:
            found = value.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return True

    return match


def _wildcard_complexity(patterns: Sequence[Sequence], cap: int = MAX_WILDCARD_COMPLEXITY) -> int:
    """event-ruler's MachineComplexityEvaluator for the wildcard patterns of one field: the most
    pattern prefixes one input can match at once (NFA states alive together, counted per pattern).
    Stops as soon as the answer exceeds ``cap``. Each pattern's live states are a bitmask: bit i
    means its first i tokens match the input read so far."""
    machines, alphabet = [], set()
    for tokens in patterns:
        by_byte: dict[int, int] = {}
        after_star = before_star = 0
        for i, token in enumerate(tokens):
            if token is None:
                before_star |= 1 << i
                after_star |= 1 << (i + 1)  # a star keeps its prefix alive on any byte
            else:
                by_byte[token] = by_byte.get(token, 0) | 1 << i
                alphabet.add(token)
        machines.append((by_byte, after_star, before_star))
    symbols = sorted(alphabet) + [b for b in range(256) if b not in alphabet][:1]  # plus one "other" byte

    def count(state: tuple) -> int:
        return sum((alive >> 1).bit_count() for alive in state)  # bit 0, the empty prefix, is no state

    start = tuple(1 | (1 & before) << 1 for _, _, before in machines)
    seen, todo, worst = {start}, [start], count(start)
    while todo and worst <= cap:
        state = todo.pop()
        for symbol in symbols:
            alive_next = []
            for alive, (by_byte, after_star, before_star) in zip(state, machines):
                alive = (alive & by_byte.get(symbol, 0)) << 1 | alive & after_star
                alive_next.append(alive | (alive & before_star) << 1)  # a star may match nothing
            following = tuple(alive_next)
            if following not in seen:
                if len(seen) >= _COMPLEXITY_STATES:
                    return cap + 1
                seen.add(following)
                todo.append(following)
                worst = max(worst, count(following))
    return worst


# --- one field's value list -----------------------------------------------------------------------
def _any(_value) -> bool:
    return True


class _Values:
    """The matchers of one field's value list (any may match), built as event-ruler reads them."""

    def __init__(self, values: list):
        self.strings: set[str] = set()
        self.addresses: list[tuple[str, str]] = []  # IP literals and CIDRs as hex digit ranges
        self.numbers: set = set()
        self.constants: list = []  # null, true, false, compared by identity
        self.tests: list[Callable] = []
        self.exists = False
        self.absent = False  # {"exists": false}
        self.wildcards: list[list] = []  # token lists, for the complexity check
        if not values:
            raise InvalidEventPattern("Empty arrays are not allowed")
        for value in values:
            self._add(value)
        self.test = self._test()

    def _add(self, value) -> None:
        if _is_object(value):
            self._operator(_pairs(value))
        elif isinstance(value, str):
            digits = _address(value)
            if digits is None:
                self.strings.add(value)
            else:  # event-ruler turns an IP literal into a one-address range
                self.addresses.append((digits, digits))
        elif value is None or isinstance(value, bool):
            self.constants.append(value)
        elif _is_number(value) and _finite(value):
            self.numbers.add(_number_key(value))
        else:
            raise InvalidEventPattern("Match value must be String, number, true, false, or null")

    def _operator(self, pairs: list) -> None:  # noqa: C901 (see _numeric)
        if not pairs:
            raise InvalidEventPattern("Match expression name not found")
        (name, operand), extra = pairs[0], pairs[1:]
        too_many = _ONLY_ONE_KEY  # what a second key in the expression is told
        if name == "exists":
            if not isinstance(operand, bool):
                raise InvalidEventPattern("exists match pattern must be either true or false.")
            if operand:
                self.exists = True
            else:
                self.absent = True
        elif name in ("prefix", "suffix"):
            if _is_object(operand):
                self.tests.append(_affix_ignoring_case(name, _pairs(operand)))
            elif isinstance(operand, str):
                test = str.startswith if name == "prefix" else str.endswith
                self.tests.append(lambda v: isinstance(v, str) and test(v, operand))
            else:
                raise InvalidEventPattern(f"{name} match pattern must be a string")
        elif name == "equals-ignore-case":
            if not isinstance(operand, str):
                raise InvalidEventPattern("equals-ignore-case match pattern must be a string")
            same = _ignore_case(operand, "equals")
            self.tests.append(lambda v: isinstance(v, str) and same(v))
        elif name == "exactly":  # undocumented, but event-ruler's compiler (AWS's validator) has it
            if not isinstance(operand, str):
                raise InvalidEventPattern("exact match pattern must be a string")
            self.strings.add(operand)
        elif name == "wildcard":
            if not isinstance(operand, str):
                raise InvalidEventPattern("wildcard match pattern must be a string")
            glob, tokens = _wildcard(operand)
            self.wildcards.append(tokens)
            self.tests.append(lambda v: isinstance(v, str) and glob(v))
        elif name == "cidr":
            if not isinstance(operand, str):
                raise InvalidEventPattern("prefix match pattern must be a string")  # sic
            self.addresses.append(_cidr(operand))
        elif name == "numeric":
            kind, matcher = _numeric(operand)
            if kind == "key":
                self.numbers.add(matcher)
            else:
                self.tests.append(matcher)
            too_many = _TOO_MANY_ELEMENTS
        elif name == "anything-but":
            self.tests.append(self._anything_but(operand))
            too_many = _TOO_MANY_ELEMENTS
        else:
            raise InvalidEventPattern(f"Unrecognized match type {name}")
        if extra:
            raise InvalidEventPattern(too_many)

    def _anything_but(self, operand) -> Callable:
        kind, extra = None, []
        if _is_object(operand):
            pairs = _pairs(operand)
            if not pairs:
                raise InvalidEventPattern("Anything-But expression name not found")
            (kind, operand), extra = pairs[0], pairs[1:]
            if kind not in ("equals-ignore-case", "prefix", "suffix", "wildcard"):
                raise InvalidEventPattern(f"Unsupported anything-but pattern: {kind}")
        if not (isinstance(operand, (str, list)) or _is_number(operand)):
            raise InvalidEventPattern("Value of anything-but must be an array or single string/number value.")
        items = operand if isinstance(operand, list) else [operand]
        if kind is None:
            return _anything_but_values(items, isinstance(operand, list))
        texts = []
        for item in items:
            if not isinstance(item, str):
                raise InvalidEventPattern({
                    "equals-ignore-case": "Inside anything-but/equals-ignore-case list, "
                                          "number|start|null|boolean is not supported.",
                    "wildcard": "wildcard match pattern must be a string",
                }.get(kind, "prefix/suffix match pattern must be a string"))
            if not item and kind in ("prefix", "suffix"):
                raise InvalidEventPattern("Null prefix/suffix not allowed")
            texts.append(item)
        affixes = tuple(texts)
        if kind == "prefix":
            excluded = lambda v: v.startswith(affixes)  # noqa: E731
        elif kind == "suffix":
            excluded = lambda v: v.endswith(affixes)  # noqa: E731
        elif kind == "equals-ignore-case":
            matchers = [_ignore_case(t, "equals") for t in texts]
            excluded = lambda v: any(m(v) for m in matchers)  # noqa: E731
        else:
            globs = []
            for text in texts:
                glob, tokens = _wildcard(text)
                globs.append(glob)
                self.wildcards.append(tokens)
            excluded = lambda v: any(g(v) for g in globs)  # noqa: E731
        if extra:
            raise InvalidEventPattern(_TOO_MANY_ELEMENTS)
        # Only strings can be excluded: the patterns are quoted strings in event-ruler's machine.
        return lambda v: not (isinstance(v, str) and excluded(v))

    def _test(self) -> Callable | None:  # noqa: C901 (see _numeric)
        """The field's value test (None when it only says ``exists: false``)."""
        if self.exists:
            return _any
        strings, addresses, numbers, tests = (frozenset(self.strings), tuple(self.addresses),
                                              frozenset(self.numbers), tuple(self.tests))
        constants = tuple(self.constants)
        if not (addresses or numbers or constants):  # the common cases: exact strings, or one operator
            if not tests:
                return (lambda v: isinstance(v, str) and v in strings) if strings else None
            if len(tests) == 1 and not strings:
                return tests[0]

        def test(value) -> bool:
            if isinstance(value, str):
                if value in strings:
                    return True
                if addresses:
                    digits = _address(value)
                    if digits is not None:
                        for low, high in addresses:
                            if _in_digit_range(digits, low, high):
                                return True
            elif value is None or value is True or value is False:
                for constant in constants:
                    if value is constant:
                        return True
            elif numbers and _number_key(value) in numbers:
                return True
            for each in tests:
                if each(value):
                    return True
            return False

        return test


def _finite(value) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else not isinstance(value, float) or math.isfinite(value)


def _affix_ignoring_case(kind: str, pairs: list) -> Callable:
    if not pairs:
        raise InvalidEventPattern(f"{kind.capitalize()} expression name not found")
    (name, text), extra = pairs[0], pairs[1:]
    if name != "equals-ignore-case":
        raise InvalidEventPattern(f"Unsupported {kind} pattern: {name}")
    if not isinstance(text, str):
        raise InvalidEventPattern("equals-ignore-case match pattern must be a string")
    if extra:
        raise InvalidEventPattern(_ONLY_ONE_KEY)
    same = _ignore_case(text, kind)
    return lambda v: isinstance(v, str) and same(v)


def _anything_but_values(items: list, listed: bool) -> Callable:
    """Plain anything-but: all strings or all numbers. A string is never a number, so "5" passes
    anything-but [5] and 5 passes anything-but ["5"]; null and booleans always pass."""
    strings, numbers = set(), set()
    for item in items:
        if isinstance(item, str):
            strings.add(item)
        elif _is_number(item):
            numbers.add(_number_key(_comparable(item)))
        else:
            raise InvalidEventPattern("Inside anything but list, start|null|boolean is not supported.")
    if listed and bool(strings) == bool(numbers):
        raise InvalidEventPattern("Inside anything but list, either all values are number or string, "
                                  "mixed type is not supported")
    if strings:
        excluded = frozenset(strings)
        return lambda v: not (isinstance(v, str) and v in excluded)
    excluded = frozenset(numbers)
    return lambda v: _number_key(v) not in excluded


# --- pattern structure ----------------------------------------------------------------------------
def _expand(obj, path: str, rules: list[dict], in_or: bool) -> None:
    """Read an object into ``rules`` (the alternatives so far, each {path: _Values}) the way
    event-ruler's JsonRuleCompiler does, key by key in document order: a field array is written
    into every alternative (replacing what it held), and ``$or`` forks the alternatives."""
    pairs = _pairs(obj)
    if not pairs:
        raise InvalidEventPattern("Empty objects are not allowed")
    for key, value in pairs:
        if key == "$or":
            _expand_or(value, path, rules)
            continue
        if in_or and key in _OPERATORS_RESERVED_IN_OR:
            raise InvalidEventPattern(f"{key} is Ruler reserved fieldName which cannot be used inside $or.")
        name = f"{path}.{key}" if path else key
        if _is_object(value):
            _expand(value, name, rules, in_or)
        elif isinstance(value, list):
            values = _Values(value)
            if not rules:
                rules.append({})
            for rule in rules:
                rule[name] = values
        else:
            raise InvalidEventPattern(f'"{key}" must be an object or an array')


def _expand_or(options, path: str, rules: list[dict]) -> None:
    if not isinstance(options, list):
        raise InvalidEventPattern("It must be an Array followed with $or.")
    before = [dict(rule) for rule in rules]
    rules.clear()
    for option in options:
        if not _is_object(option):
            raise InvalidEventPattern("Only JSON object is allowed in array of $or relationship.")
        branch = [dict(rule) for rule in before] or [{}]
        _expand(option, path, branch, True)
        rules.extend(branch)
        if len(rules) > MAX_OR_COMBINATIONS:
            raise InvalidEventPattern(f"The event pattern has too many combinations of $or (more than "
                                      f"{MAX_OR_COMBINATIONS})")
    if len(options) < 2:
        raise InvalidEventPattern("There must have at least 2 Objects in $or relationship.")


# --- events ---------------------------------------------------------------------------------------
_MISSING = object()


class _Field:
    """One path of one alternative, and how to find its values in an event."""

    __slots__ = ("parts", "plan", "test", "absent")

    def __init__(self, path: str, values: _Values):
        self.parts = tuple(path.split("."))
        # For each count of path parts consumed, the event keys to try next: every grouping of the
        # parts that follow, since an event key may hold dots ({"a.b": 1} is at path a.b).
        count = len(self.parts)
        self.plan = tuple(tuple((".".join(self.parts[start:end]), end) for end in range(start + 1, count + 1))
                          for start in range(count))
        self.test, self.absent = values.test, values.absent

    def lookup(self, event: dict):
        """(values, memberships): the leaf values at this path, and for each the (array, index) pairs
        of the arrays of objects or arrays it sits in; memberships is None when there are none."""
        node = event
        for part in self.parts:  # plain lookups first: the common case, no arrays of objects
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
            if node is _MISSING:  # absent, unless a dotted event key holds it
                return self._walk(event) if len(self.parts) > 1 else ((), None)
        if isinstance(node, dict):  # an object is no leaf, but a dotted key may hold one here
            return self._walk(event) if len(self.parts) > 1 else ((), None)
        if isinstance(node, list):
            for item in node:
                if isinstance(item, (dict, list)):
                    return self._walk(event)
            return node, None
        return (node,), None

    def _walk(self, event: dict):
        count = len(self.parts)
        values: list = []
        memberships: list = []
        stack: list[tuple] = [(event, 0, ())]
        while stack:
            node, done, membership = stack.pop()
            if isinstance(node, dict):
                if done < count:
                    for key, end in self.plan[done]:
                        child = node.get(key, _MISSING)
                        if child is not _MISSING:
                            stack.append((child, end, membership))
            elif isinstance(node, list):
                for index, item in enumerate(node):
                    if isinstance(item, (dict, list)):  # as event-ruler: scalars in an array are not members
                        stack.append((item, done, membership + ((id(node), index),)))
                    elif done == count:
                        values.append(item)
                        memberships.append(membership)
            elif done == count:
                values.append(node)
                memberships.append(membership)
        return values, (memberships if any(memberships) else None)


def _agrees(membership: tuple, chosen: dict) -> bool:
    return all(chosen.get(array, index) == index for array, index in membership)


def _choose(fields: list, i: int, chosen: dict, failed: set) -> bool:
    """Array consistency: pick values for fields[i:] (in event-ruler's field order) from the array
    elements ``chosen`` so far. An absent field is absent when no value of it agrees with the
    elements chosen before it."""
    if i == len(fields):
        return True
    state = (i, frozenset(chosen.items()))
    if state in failed:
        return False
    field, values, memberships = fields[i]
    if field.test is not None:
        for value, membership in zip(values, memberships):
            if field.test(value) and _agrees(membership, chosen):
                if _choose(fields, i + 1, {**chosen, **dict(membership)}, failed):
                    return True
    if field.absent and not any(_agrees(m, chosen) for m in memberships) and _choose(fields, i + 1, chosen, failed):
        return True
    failed.add(state)
    return False


def _matches_all(fields: tuple[_Field, ...], event: dict) -> bool:
    inside_arrays = []
    for field in fields:
        values, memberships = field.lookup(event)
        if memberships is not None:
            inside_arrays.append((field, values, memberships))
            continue
        test = field.test  # no array element to choose: this field decides alone
        if test is not None:
            for value in values:
                if test(value):
                    break
            else:
                if not (field.absent and not values):
                    return False
        elif values:
            return False
    return not inside_arrays or _choose(inside_arrays, 0, {}, set())


# --- API ------------------------------------------------------------------------------------------
def compile_pattern(pattern) -> Callable[[dict], bool]:
    """Validate ``pattern`` (a dict or JSON text) and return ``match(event) -> bool``."""
    rules: list[dict] = []  # the alternatives, each {path: _Values}
    try:
        _expand(_load(pattern), "", rules, False)
    except RecursionError:
        raise InvalidEventPattern("Filter is nested too deeply") from None
    # A field's distinct wildcard patterns, over all alternatives: exact for one value list, close for
    # $or, where event-ruler's machine may or may not share a field's state between alternatives.
    wildcards: dict[str, set[tuple]] = {}
    for rule in rules:
        for path, values in rule.items():
            wildcards.setdefault(path, set()).update(map(tuple, values.wildcards))
    for patterns in wildcards.values():
        if patterns and _wildcard_complexity(list(patterns)) > MAX_WILDCARD_COMPLEXITY:
            raise InvalidEventPattern("Rule is too complex - try using fewer wildcard characters or fewer "
                                      "repeating character sequences after a wildcard character")
    # event-ruler walks a rule's fields sorted by name (Java's UTF-16 order); exists:false depends on it.
    alternatives = [tuple(_Field(path, rule[path]) for path in sorted(rule, key=_java_order)) for rule in rules]

    if len(alternatives) == 1:
        (fields,) = alternatives
        return lambda event: isinstance(event, dict) and _matches_all(fields, event)

    def match(event: dict) -> bool:
        return isinstance(event, dict) and any(_matches_all(fields, event) for fields in alternatives)

    return match


def _java_order(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


def validate_pattern(pattern) -> None:
    """Raise InvalidEventPattern (with AWS's message) if AWS would reject ``pattern``."""
    compile_pattern(pattern)


@lru_cache(maxsize=1024)
def _compiled(text: str) -> Callable[[dict], bool]:
    return compile_pattern(text)


def matches(pattern, event: dict) -> bool:
    """One-off matching; compiled patterns are cached by their JSON text."""
    if isinstance(pattern, str):
        return _compiled(pattern)(event)
    try:
        text = json.dumps(pattern)  # key order kept: it matters for $or
    except (TypeError, ValueError, RecursionError):  # Decimals and the like: compile without caching
        return compile_pattern(pattern)(event)
    return _compiled(text)(event)

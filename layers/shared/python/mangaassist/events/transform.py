"""EventBridge input transformers: ``InputPathsMap`` + ``InputTemplate`` (eb-transform-target-input).

Rules copied from the user guide: a path missing from the event creates no variable (its
placeholder is left as is); extracted values are not escaped; a string variable used bare as a
JSON value is inserted with quotes; ``aws.events.event`` (the event without ``detail``) and
``aws.events.event.json`` (the whole event) are only usable as JSON values.
"""
from __future__ import annotations

import json
import re

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def extract(event: dict, path: str):
    """Resolve a ``$.detail.items[0].id`` style path; raises KeyError when it is absent."""
    if path == "$":
        return event
    if not path.startswith("$."):
        raise ValueError(f"input path must start with '$.': {path!r}")
    value = event
    for key, index in _SEGMENT.findall(path[2:]):
        if index:
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(path)
            value = value[int(index)]
        else:
            if not isinstance(value, dict) or key not in value:
                raise KeyError(path)
            value = value[key]
    return value


def transform(event: dict, transformer: dict, *, rule_arn: str, rule_name: str, ingestion_time: str) -> str:
    """The target input as the text EventBridge sends (JSON when the template is JSON)."""
    variables = {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_name,
        "aws.events.event.ingestion-time": ingestion_time,
        "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
        "aws.events.event.json": event,
    }
    for name, path in transformer.get("InputPathsMap", {}).items():
        try:
            variables[name] = extract(event, path)
        except KeyError:
            pass
    template = transformer["InputTemplate"]
    out, pos, in_string = [], 0, False
    for match in _PLACEHOLDER.finditer(template):
        literal = template[pos:match.start()]
        in_string = _inside_string(literal, in_string)
        out.append(literal)
        name = match.group(1)
        if name not in variables:
            out.append(match.group(0))
        else:
            out.append(_render(variables[name], quoted_context=in_string))
        pos = match.end()
    out.append(template[pos:])
    return "".join(out)


def _inside_string(literal: str, in_string: bool) -> bool:
    """Track whether the template is inside a JSON string after ``literal``."""
    escaped = False
    for ch in literal:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            in_string = not in_string
    return in_string


def _render(value, quoted_context: bool) -> str:
    if isinstance(value, str):
        # Not escaped, as AWS does; quoted when it stands bare as a JSON value.
        return value if quoted_context else f'"{value}"'
    return json.dumps(value, separators=(",", ":"))

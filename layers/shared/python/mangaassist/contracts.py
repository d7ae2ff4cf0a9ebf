"""The contracts in schemas/: checks built once, at import, and errors that name the path.

Schemas are draft-04 (what the EventBridge schema registry takes as JSONSchemaDraft4):
- ``events/<source>/<DetailType>.schema.json``: the ``detail`` of each event type;
- ``webhooks/<partner>.schema.json``: each partner's payload;
- ``envelope.schema.json``: the EventBridge envelope around every detail;
- ``api/<name>.schema.json``: the client API's request and response bodies (``api/tasks/``: each
  generation task's input), the same files API Gateway's request validators use (the OpenAPI document).
  A ``$ref`` to another file is inlined at load, so one resolved schema serves every use.

They are found at ``settings.schemas_dir()`` (MANGAASSIST_SCHEMAS_DIR), else inside the layer (``mangaassist/_schemas``,
where the build copies them), else in the repository's ``schemas/``.

A document is checked first by mangaassist.quick_check, which answers exactly whether it is valid
without importing jsonschema (~40 ms of a cold start); jsonschema's Draft4Validator is built, on
first need, for a document that check refuses, and its errors are the ones raised.

Paths in errors are dotted with list indexes, relative to the validated document:
``detail.items[0].quantity`` for an event, ``data.object.currency`` for a payload, and ``""``
for the document itself. A missing required field is named by its own path (``detail.amount``).
"""
from __future__ import annotations

import functools
import json
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from mangaassist import quick_check, settings

if TYPE_CHECKING:
    from jsonschema import Draft4Validator
    from jsonschema.exceptions import ValidationError

_PACKAGE = Path(__file__).resolve().parent
_MAX_MESSAGE = 300  # jsonschema quotes the offending value, which may be megabytes


def schemas_dir() -> Path:
    configured = settings.schemas_dir()
    if configured:  # an explicit setting that points nowhere is a deployment error, not a fallback
        if not Path(configured).is_dir():
            raise RuntimeError(f"MANGAASSIST_SCHEMAS_DIR={configured} is not a directory")
        return Path(configured)
    # In the repository the package is layers/shared/python/mangaassist, 4 levels below the root.
    # In Lambda it is /opt/python/mangaassist, which has only 3 parents: hence the slice.
    repo = [parent / "schemas" for parent in _PACKAGE.parents[3:4]]
    for candidate in (_PACKAGE / "_schemas", *repo):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("no schemas directory: set MANGAASSIST_SCHEMAS_DIR")


class ContractError(ValueError):
    """A document that breaks its contract, with the path of the failing field."""

    def __init__(self, path: str, message: str):
        if len(message) > _MAX_MESSAGE:
            message = message[:_MAX_MESSAGE - 3] + "..."
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message

    def to_dict(self) -> dict:
        return {"error": "contract_violation", "path": self.path, "message": self.message}


# jsonschema checks date-time only when the optional rfc3339-validator is installed, and the
# layer's lock does not carry it: without our own checkers, "yesterday" would pass in Lambda.
# These are the only formats checked (jsonschema's FormatChecker gets exactly these, see _format_checker).
_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)", re.ASCII)
_DATE_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:[Zz]|[+-](\d\d):(\d\d))", re.ASCII)


def _is_date(value) -> bool:
    if not isinstance(value, str):  # formats constrain strings only; "type" checks the rest
        return True
    match = _DATE.fullmatch(value)
    return match is not None and bool(date(*map(int, match.groups())))  # date() raises on 2026-02-30


def _is_date_time(value) -> bool:
    """RFC 3339 section 5.6 (a leap second allowed), with the calendar checked."""
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.fullmatch(value)
    if not match:
        return False
    year, month, day, hour, minute, second, offset_hours, offset_minutes = (int(g or 0) for g in match.groups())
    return bool(date(year, month, day)) and hour < 24 and minute < 60 and second <= 60 \
        and offset_hours < 24 and offset_minutes < 60


FORMATS = {"date": _is_date, "date-time": _is_date_time}  # each answers False or raises ValueError when invalid


@functools.cache
def _format_checker():
    """jsonschema's FormatChecker with FORMATS only, built with the first Draft4Validator."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    for name, check in FORMATS.items():
        checker.checks(name, raises=ValueError)(check)
    return checker


class Contract:
    """One schema: ``accepts`` answers without jsonschema; ``validator`` is jsonschema's, built on
    first use. Both check FORMATS."""

    def __init__(self, schema: dict):
        self.schema = schema
        try:
            self._quick: quick_check.Check | None = quick_check.compile(schema, FORMATS)
        except Exception:  # a keyword or form quick_check does not implement: jsonschema judges every document
            self._quick = None
        self._validator: Draft4Validator | None = None

    def accepts(self, document) -> bool:
        """True when the document is valid; False when it is not, or when only jsonschema can tell."""
        if self._quick is None:
            return False
        try:
            return self._quick(document)
        except Exception:  # a value JSON does not produce (a Decimal...), an odd comparison: ask jsonschema
            return False

    @property
    def validator(self) -> Draft4Validator:
        if self._validator is None:
            from jsonschema import Draft4Validator

            self._validator = Draft4Validator(self.schema, format_checker=_format_checker())
        return self._validator


def _load(path: Path) -> Contract:
    # The contract tests check every schema against the draft-04 metaschema; doing it here too
    # would cost ~25 ms of every cold start, more than all the rest of this module.
    return Contract(json.loads(path.read_text(encoding="utf-8")))


def _inlined(node, base: Path):
    """``node`` with each ``{"$ref": "<file>"}`` replaced by that file's schema (without ``$schema``)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.endswith(".schema.json"):
            target = (base / ref).resolve()
            loaded = json.loads(target.read_text(encoding="utf-8"))
            loaded.pop("$schema", None)
            return _inlined(loaded, target.parent)
        return {key: _inlined(value, base) for key, value in node.items()}
    if isinstance(node, list):
        return [_inlined(item, base) for item in node]
    return node


def api_schema(name: str) -> dict:
    """The resolved schema of ``api/<name>.schema.json`` (``chat.request``, ``tasks/review_summary``)."""
    path = _ROOT / "api" / f"{name}.schema.json"
    return _inlined(json.loads(path.read_text(encoding="utf-8")), path.parent)


_ROOT = schemas_dir()
_ENVELOPE = _load(_ROOT / "envelope.schema.json")
_DETAILS = {(p.parent.name, p.name.removesuffix(".schema.json")): _load(p)
            for p in sorted((_ROOT / "events").glob("*/*.schema.json"))}
_PAYLOADS = {p.name.removesuffix(".schema.json"): _load(p) for p in sorted((_ROOT / "webhooks").glob("*.schema.json"))}
_API: dict[str, Contract] = {}  # built on first use: most functions validate no API body


def api_names() -> list[str]:
    """Every API body contract: ``chat.request``, ..., ``tasks/product_description``."""
    root = _ROOT / "api"
    return sorted(str(p.relative_to(root)).removesuffix(".schema.json") for p in root.rglob("*.schema.json"))


def validate_api(name: str, document) -> None:
    """Check an API request or response body; ContractError names the failing path."""
    contract = _API.get(name)
    if contract is None:
        if name not in api_names():
            raise ContractError("", f"no API contract named {name}")
        contract = _API[name] = Contract(api_schema(name))
    _validate(contract, document)


def detail_types() -> list[tuple[str, str]]:
    """Every (source, detail-type) with a contract."""
    return sorted(_DETAILS)


def partners() -> list[str]:
    """Every partner with a webhook payload contract."""
    return sorted(_PAYLOADS)


def schema_path(source: str, detail_type: str) -> Path:
    """Where the detail contract of (source, detail-type) lives; its samples are beside it."""
    return _ROOT / "events" / source / f"{detail_type}.schema.json"


def validate_detail(source: str, detail_type: str, detail: dict) -> None:
    contract = _DETAILS.get((source, detail_type))
    if contract is None:
        raise ContractError("detail-type", f"no contract for {source} {detail_type}")
    _validate(contract, detail, "detail")


def validate_envelope(event: dict) -> None:
    """The envelope only: the detail is checked by validate_detail against its own contract."""
    _validate(_ENVELOPE, event)


def validate_payload(partner: str, payload) -> None:
    contract = _PAYLOADS.get(partner)
    if contract is None:
        raise ContractError("", f"no payload contract for {partner}")
    _validate(contract, payload)


def _validate(contract: Contract, document, prefix: str = "") -> None:
    if contract.accepts(document):
        return
    error = _most_relevant(list(contract.validator.iter_errors(document)))
    if error is None:
        return
    parts, message = list(error.absolute_path), error.message
    if error.validator == "required":  # name the missing field, not the object that lacks it
        missing = next(name for name in error.validator_value if name not in error.instance)
        parts, message = parts + [missing], f"{missing!r} is a required property"
    raise ContractError(_dotted(parts, prefix), message)


def _most_relevant(errors: list[ValidationError]) -> ValidationError | None:
    """jsonschema's best match, and inside anyOf/oneOf the branch the document meant.

    best_match gives up on a tie between branches. The branch whose first failure lies deepest
    in the document got furthest, so it is the one meant: a charge.refunded event without
    amount_refunded fails the checkout branch at ``type`` but the refund branch only deeper.
    A failure outside any branch says it better than a branch would (the whole enum of tasks, not
    the one a branch allows; "party" is no frame type, rather than "seq" is missing).
    """
    from jsonschema.exceptions import best_match

    direct = [e for e in errors if not e.context]
    if direct:
        return best_match(direct)
    error = best_match(errors)
    while error is not None and error.context:
        branches: dict = {}
        for child in error.context:
            branches.setdefault(child.relative_schema_path[0], []).append(child)
        meant = max(branches.values(), key=lambda errs: (min(len(e.absolute_path) for e in errs), -len(errs)))
        error = best_match(meant)
    return error


def _dotted(parts, prefix: str) -> str:
    out = prefix
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out

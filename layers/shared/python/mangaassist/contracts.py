"""The contracts in schemas/: validators built once, at import, and errors that name the path.

Schemas are draft-04 (what the EventBridge schema registry takes as JSONSchemaDraft4):
- ``events/<source>/<DetailType>.schema.json``: the ``detail`` of each event type;
- ``webhooks/<partner>.schema.json``: each partner's payload;
- ``envelope.schema.json``: the EventBridge envelope around every detail.

They are found at MANGAASSIST_SCHEMAS_DIR, else inside the layer (``mangaassist/_schemas``,
where the build copies them), else in the repository's ``schemas/``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import best_match

_PACKAGE = Path(__file__).resolve().parent


def schemas_dir() -> Path:
    candidates = [os.environ.get("MANGAASSIST_SCHEMAS_DIR"), _PACKAGE / "_schemas", _PACKAGE.parents[3] / "schemas"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise RuntimeError("no schemas directory: set MANGAASSIST_SCHEMAS_DIR")


class ContractError(ValueError):
    """A document that breaks its contract; ``path`` is like ``detail.items[0].quantity``."""

    def __init__(self, path: str, message: str):
        if len(message) > 300:  # jsonschema quotes the offending value, which may be megabytes
            message = message[:297] + "..."
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message

    def to_dict(self) -> dict:
        return {"error": "contract_violation", "path": self.path, "message": self.message}


def _path(parts, prefix: str = "") -> str:
    out = prefix
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _load(path: Path) -> Draft4Validator:
    schema = json.loads(path.read_text())
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=FormatChecker())


def _validate(validator: Draft4Validator, document, prefix: str = "") -> None:
    error = best_match(validator.iter_errors(document))
    # For anyOf/oneOf, the branch that got furthest into the document names the real problem
    # (e.g. a checkout event without amount_total), not the alternatives' discriminators.
    while error is not None and error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    if error is not None:
        raise ContractError(_path(error.absolute_path, prefix), error.message)


_ROOT = schemas_dir()
_ENVELOPE = _load(_ROOT / "envelope.schema.json")
_DETAILS = {
    (path.parent.name, path.name.removesuffix(".schema.json")): _load(path)
    for path in sorted((_ROOT / "events").glob("*/*.schema.json"))
}
_PAYLOADS = {path.name.removesuffix(".schema.json"): _load(path) for path in sorted((_ROOT / "webhooks").glob("*.schema.json"))}


def detail_types() -> list[tuple[str, str]]:
    return sorted(_DETAILS)


def validate_detail(source: str, detail_type: str, detail) -> None:
    validator = _DETAILS.get((source, detail_type))
    if validator is None:
        raise ContractError("detail-type", f"no contract for {source} {detail_type}")
    _validate(validator, detail, "detail")


def validate_envelope(event) -> None:
    _validate(_ENVELOPE, event)


def validate_payload(partner: str, payload) -> None:
    validator = _PAYLOADS.get(partner)
    if validator is None:
        raise ContractError("", f"no payload contract for {partner}")
    _validate(validator, payload)

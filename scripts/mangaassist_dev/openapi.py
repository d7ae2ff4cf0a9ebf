"""The client API's OpenAPI 3.0 document, generated from terraform/wiring.json's routes and the
request/response contracts in schemas/api (the same resolved schemas the handlers check).

``make openapi`` writes it to schemas/api/openapi.json; a contract test fails when the committed
file differs from what this module generates (drift). Terraform reads the committed file and adds
API Gateway's integrations, request validators and authorizer to it, so the deployed API, the
local gateway (GET /openapi.json) and schemathesis's oracle are one document.

JSON Schema draft-04 and OpenAPI 3.0's schema objects differ in a few words: ``$schema`` goes,
``"type": [T, "null"]`` becomes ``"type": T, "nullable": true``.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from mangaassist import contracts

DOCUMENT = Path(__file__).resolve().parents[2] / "schemas" / "api" / "openapi.json"
TITLE = "MangaAssist client API"
ERROR = "ErrorResponse"
PATH_PARAMETER = re.compile(r"\{([A-Za-z0-9_]+)\}")
# The failures every operation can answer, besides its own; API Gateway answers 403 (no key),
# 429 (throttled) and 504 (integration timeout) itself, with a {"message": ...} body.
COMMON_ERRORS = {"429": "Too many requests for this API key's usage plan", "500": "A bug, logged with the request id",
                 "503": "A dependency or model is unavailable: retry after Retry-After",
                 "504": "The answer took too long"}


def component_name(contract: str) -> str:
    """``chat.request`` -> ``ChatRequest``, ``job.response`` -> ``JobResponse``."""
    return "".join(part.capitalize() for part in re.split(r"[./_]", contract))


def to_openapi(schema):
    """A draft-04 schema as an OpenAPI 3.0 schema object."""
    if isinstance(schema, list):
        return [to_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: to_openapi(value) for key, value in schema.items() if key != "$schema"}
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        rest = [t for t in types if t != "null"]
        out["type"] = rest[0] if len(rest) == 1 else rest
        out["nullable"] = True
    return out


def _response(description: str, contract: str | None) -> dict:
    response: dict = {"description": description}
    if contract:
        response["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/"
                                                                        f"{component_name(contract)}"}}}
    return response


def operation(key: str, route: dict) -> dict:
    method, path = key.split(" ", 1)
    op: dict = {"operationId": route.get("operation_id") or re.sub(r"\W+", "_", f"{method} {path}".lower()).strip("_"),
                "summary": route.get("summary", key)}
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 128}}
                  for name in PATH_PARAMETER.findall(path)]
    parameters += route.get("parameters", [])
    if parameters:
        op["parameters"] = parameters
    if route.get("request"):
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "$ref": f"#/components/schemas/{component_name(route['request'])}"}}}}
    security = []
    if route.get("api_key_required", True):
        security.append({"api_key": []})
    op["security"] = security
    responses = {status: _response(f"{method} {path}: {status}", contract)
                 for status, contract in route.get("responses", {"200": None}).items()}
    if route.get("request") or parameters:
        responses["400"] = _response("Invalid request: the body or a parameter breaks the contract", "error.response")
    if route.get("request"):
        responses["413"] = _response("The body is too large", "error.response")
    if route.get("api_key_required", True):
        responses["403"] = _response("No valid API key", "error.response")
    if route.get("authorizer"):
        responses["401"] = _response("A bearer token that does not verify", "error.response")
    if PATH_PARAMETER.search(path) or route.get("request"):
        responses["404"] = _response("Not found (or not this client's)", "error.response")
    if route.get("request") == "generate.request":
        responses["409"] = _response("The same Idempotency-Key is being processed", "error.response")
        responses["422"] = _response("The Idempotency-Key was used with another body", "error.response")
    for status, description in COMMON_ERRORS.items():
        responses.setdefault(status, _response(description, "error.response"))
    op["responses"] = dict(sorted(responses.items()))
    return op


def document(wiring: dict) -> dict:
    paths: dict[str, dict] = {}
    contracts_used = {"error.response"}
    for key, route in wiring["routes"].items():
        method, path = key.split(" ", 1)
        paths.setdefault(path, {})[method.lower()] = operation(key, route)
        contracts_used |= {c for c in [route.get("request"), *route.get("responses", {}).values()] if c}
    return {
        "openapi": "3.0.3",
        "info": {"title": TITLE, "version": "1",
                 "description": "Generated from terraform/wiring.json and schemas/api by mangaassist_dev.openapi."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {component_name(c): to_openapi(contracts.api_schema(c)) for c in sorted(contracts_used)},
            "securitySchemes": {
                "api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "Optional end-user token (RS256/ES256) checked by the Lambda authorizer"},
            },
        },
    }


def render(wiring: dict) -> str:
    return json.dumps(document(wiring), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    from mangaassist_dev.routing import wiring_path

    text = render(json.loads(wiring_path().read_text()))
    if "--check" in sys.argv:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            print(f"{DOCUMENT} is out of date: run make openapi", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(text)
    print(f"wrote {DOCUMENT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

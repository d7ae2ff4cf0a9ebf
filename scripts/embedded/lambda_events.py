"""The events AWS hands to Lambda for HTTP requests, and how it renders a handler's answer.

- ``function_url_event``: a Lambda function URL request, payload format 2.0.
- ``rest_proxy_event``: an API Gateway REST API Lambda proxy integration request, format 1.0.
- ``lambda_answer``: a handler's return value as function URLs and proxy integrations turn it
  into a status, headers and body.

Pure functions of the request's parts, so the gateway and the tests build the very same events.
"""
from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
              "application/x-www-form-urlencoded", "+json", "+xml")


def is_text(content_type: str, body: bytes) -> bool:
    if not any(t in content_type for t in TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def function_url_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict:
    """Payload format 2.0, as a function URL sends it: lowercased headers, base64 for binary."""
    split = urlsplit(target)
    now = datetime.now(UTC)
    text = is_text(headers.get("content-type", ""), body)
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": split.path,
        "rawQueryString": split.query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {"method": method, "path": split.path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not text and bool(body),
    }
    if split.query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in parse_qs(split.query).items()}
    if body:
        event["body"] = body.decode("utf-8") if text else base64.b64encode(body).decode()
    return event


def route_pattern(path: str) -> re.Pattern:
    """/v1/products/{id} -> a regex with a named group per path parameter."""
    return re.compile("^" + re.sub(r"\{([A-Za-z0-9_]+)\+?\}", r"(?P<\1>[^/]+)", path) + "$")


def rest_proxy_event(method: str, resource: str, target: str, headers: dict[str, str], body: bytes,
                     params: dict, source_ip: str, api_key: str | None, api_key_id: str | None = None,
                     authorizer: dict | None = None) -> dict:
    """API Gateway REST proxy integration event (format 1.0). ``authorizer``: the Lambda
    authorizer's context (its values, and principalId), as ``requestContext.authorizer``."""
    split = urlsplit(target)
    query = parse_qs(split.query)
    text = is_text(headers.get("content-type", ""), body) or not body
    return {
        "resource": resource,
        "path": split.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            # The stack serves at its root, as a custom domain does (on the execute-api host the
            # stage comes first: /prod/v1/...); links the functions build from it must work here.
            "path": split.path,
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "123456789012",
            "apiId": "local",
            "identity": {"sourceIp": source_ip, "apiKey": api_key, "apiKeyId": api_key_id,
                         "userAgent": headers.get("user-agent")},
            **({"authorizer": authorizer} if authorizer is not None else {}),
        },
        "body": (body.decode("utf-8") if text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": not text,
    }


def request_id(event: dict) -> str | None:
    """The id AWS gives the request (and returns as x-amzn-RequestId)."""
    return (event.get("requestContext") or {}).get("requestId")


def lambda_answer(result) -> tuple[int, dict[str, str], bytes]:
    """A handler's return value as function URLs and proxy integrations render it: a dict with
    statusCode is a response; anything else is a 200 with the value as JSON."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, {"content-type": "application/json"}, json.dumps(result).encode()
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(key).lower()] = ",".join(map(str, values))
    headers.setdefault("content-type", "application/json")
    return int(result["statusCode"]), headers, data


def websocket_event(event_type: str, route_key: str, *, connection_id: str, connected_at: float, domain: str,
                    source_ip: str, identity: dict | None = None, authorizer: dict | None = None,
                    headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
                    body: bytes | str | None = None, extra_context: dict | None = None) -> dict:
    """An API Gateway WebSocket API's Lambda proxy event: CONNECT (with the handshake's headers and
    query string), MESSAGE (with the frame as ``body``, base64 when binary) or DISCONNECT."""
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    context = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "messageDirection": "IN",
        "stage": "local",
        "connectedAt": int(connected_at * 1000),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "identity": {"sourceIp": source_ip, **(identity or {})},
        "requestId": request_id,
        "domainName": domain,
        "connectionId": connection_id,
        "apiId": "local",
        **({"authorizer": authorizer} if authorizer is not None else {}),
        **(extra_context or {}),
    }
    event: dict = {"requestContext": context, "isBase64Encoded": False}
    if event_type == "MESSAGE":
        context["messageId"] = uuid.uuid4().hex[:16]
    if headers is not None:
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    if body is not None:
        if isinstance(body, bytes):
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"] = body
    return event

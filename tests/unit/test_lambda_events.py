"""The events the local gateway hands to Lambda, and how it renders their answers
(scripts/embedded/lambda_events.py): the shapes AWS documents, unchanged by the move to aiohttp."""
from __future__ import annotations

import base64
import json
from pathlib import Path

from embedded.lambda_events import function_url_event, lambda_answer, request_id, rest_proxy_event, route_pattern

EVENTS = Path(__file__).resolve().parents[1] / "events"


def test_a_function_url_event_has_the_shape_of_awss_fixture():
    fixture = json.loads((EVENTS / "lambdaFunctionUrlEvent.json").read_text())
    event = function_url_event("POST", "/webhooks/stripe?x=1&x=2", {"content-type": "application/json", "host": "h"},
                               '{"a": "あ"}'.encode(), "127.0.0.1")
    assert set(event) - {"queryStringParameters"} == set(fixture)
    assert set(event["requestContext"]) == set(fixture["requestContext"])
    assert set(event["requestContext"]["http"]) == set(fixture["requestContext"]["http"])
    assert event["rawPath"] == "/webhooks/stripe" and event["rawQueryString"] == "x=1&x=2"
    assert event["queryStringParameters"] == {"x": "1,2"}  # function URLs join repeated parameters
    assert event["body"] == '{"a": "あ"}' and event["isBase64Encoded"] is False


def test_binary_and_empty_bodies():
    binary = function_url_event("POST", "/webhooks/x", {"content-type": "application/octet-stream"}, b"\x00\xff", "ip")
    assert binary["isBase64Encoded"] and base64.b64decode(binary["body"]) == b"\x00\xff"
    empty = function_url_event("GET", "/webhooks/x", {}, b"", "ip")
    assert "body" not in empty and empty["isBase64Encoded"] is False
    not_utf8 = function_url_event("POST", "/webhooks/x", {"content-type": "application/json"}, b"\xff", "ip")
    assert not_utf8["isBase64Encoded"]


def test_a_rest_proxy_event_is_format_1_0():
    event = rest_proxy_event("GET", "/v1/products/{id}", "/v1/products/p1?q=a&q=b", {"x-api-key": "k"}, b"",
                             {"id": "p1"}, "127.0.0.1", "k")
    assert event["resource"] == "/v1/products/{id}" and event["pathParameters"] == {"id": "p1"}
    assert event["queryStringParameters"] == {"q": "b"}
    assert event["multiValueQueryStringParameters"] == {"q": ["a", "b"]}
    assert event["multiValueHeaders"] == {"x-api-key": ["k"]} and event["body"] is None
    assert event["requestContext"]["identity"]["apiKey"] == "k" and request_id(event)


def test_route_patterns_capture_path_parameters():
    assert route_pattern("/v1/products/{id}").match("/v1/products/p-1").groupdict() == {"id": "p-1"}
    assert not route_pattern("/v1/products/{id}").match("/v1/products/p/1")


def test_answers_are_rendered_as_function_urls_and_proxy_integrations_do():
    assert lambda_answer({"statusCode": 201, "headers": {"X-A": "1"}, "multiValueHeaders": {"Set-Cookie": ["a", "b"]},
                          "body": "{}"}) == (201, {"x-a": "1", "set-cookie": "a,b", "content-type": "application/json"},
                                             b"{}")
    assert lambda_answer({"statusCode": 200, "body": base64.b64encode(b"\x00").decode(), "isBase64Encoded": True,
                          "headers": {"content-type": "image/png"}})[2] == b"\x00"
    assert lambda_answer({"ok": True}) == (200, {"content-type": "application/json"}, b'{"ok": true}')

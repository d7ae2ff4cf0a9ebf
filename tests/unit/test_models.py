"""mangaassist.models: Bedrock Converse adapter, router with retries and fallback, the shared
circuit breaker (moto), pricing, InferenceCompleted details and the offline grounded provider."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EventStreamError, ReadTimeoutError
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from moto import mock_aws

from mangaassist import models
from mangaassist import settings as platform_settings
from mangaassist.models import (
    BedrockModel,
    CircuitBreaker,
    Completion,
    LocalProvider,
    ModelError,
    ModelRetry,
    ModelRouter,
    ModelUnavailable,
    Route,
    estimate_cost,
    inference_event,
    local_moderation,
)
from mangaassist.models.bedrock import parse_converse_stream
from mangaassist.models.local import approx_tokens
from mangaassist.models.pricing import PRICES, PRICES_AS_OF, pricing_key

ROOT = Path(__file__).resolve().parents[2]
FAST = "anthropic.claude-3-haiku-20240307-v1:0"
FALLBACK = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MESSAGES = [{"role": "user", "content": "Is One Piece volume 107 in stock?"}]
CONVERSE_MESSAGES = [{"role": "user", "content": [{"text": "Is One Piece volume 107 in stock?"}]}]


def converse_response(text="Yes, volume 107 is in stock.", input_tokens=1200, output_tokens=40, latency_ms=412,
                      stop_reason="end_turn"):
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                  "totalTokens": input_tokens + output_tokens},
        "metrics": {"latencyMs": latency_ms},
    }


def expected_request(model_id, system=None, max_tokens=512, temperature=0.2):
    request = {"modelId": model_id, "messages": CONVERSE_MESSAGES,
               "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature}}
    if system:
        request["system"] = [{"text": system}]
    return request


STREAM_EVENTS = [
    {"messageStart": {"role": "assistant"}},
    {"contentBlockDelta": {"delta": {"text": "Yes, "}, "contentBlockIndex": 0}},
    {"contentBlockDelta": {"delta": {"text": "volume 107 "}, "contentBlockIndex": 0}},
    {"contentBlockDelta": {"delta": {"text": "is in stock."}, "contentBlockIndex": 0}},
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {"messageStop": {"stopReason": "end_turn"}},
    {"metadata": {"usage": {"inputTokens": 950, "outputTokens": 12, "totalTokens": 962},
                  "metrics": {"latencyMs": 388}}},
]


@pytest.fixture
def bedrock():
    client = boto3.client("bedrock-runtime", region_name="ap-northeast-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


class Clock:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


class FakeStreamClient:
    """A bedrock-runtime stand-in for ConverseStream, whose event stream Stubber cannot fake."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)  # per call: a list of events, or an exception to raise
        self.calls = []

    def converse_stream(self, **request):
        self.calls.append(request)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return {"stream": iter(outcome), "ResponseMetadata": {"HTTPStatusCode": 200}}


def failing_events(error):
    yield {"contentBlockDelta": {"delta": {"text": "Yes, "}, "contentBlockIndex": 0}}
    raise error


def router(client, *, fast_breaker=None, fallback_breaker=None, attempts=2, sleeps=None):
    routes = [Route(BedrockModel(FAST, client)), Route(BedrockModel(FALLBACK, client))]
    if fast_breaker:
        routes[0] = Route(routes[0].model, fast_breaker)
    if fallback_breaker:
        routes[1] = Route(routes[1].model, fallback_breaker)
    return ModelRouter(routes, retry=ModelRetry(attempts=attempts, base_seconds=0.1, cap_seconds=1.0),
                       sleep=(sleeps if sleeps is not None else []).append, rng=lambda: 0.5)


# --- pricing ---------------------------------------------------------------------------------

def test_prices_per_million_tokens():
    assert estimate_cost(FAST, 1_000_000, 1_000_000) == pytest.approx(0.25 + 1.25)
    assert estimate_cost(FALLBACK, 1000, 500) == pytest.approx(0.003 + 0.0075)
    assert estimate_cost("anthropic.claude-3-sonnet-20240229-v1:0", 2000, 0) == pytest.approx(0.006)
    assert estimate_cost(FAST, 1000, 500) == 0.000875  # rounded, no float noise
    assert estimate_cost("local.grounded-v1", 10_000, 10_000) == 0.0
    assert re.fullmatch(r"2024-\d\d-\d\d", PRICES_AS_OF)


@pytest.mark.parametrize("model_id", [
    f"apac.{FAST}", f"us.{FAST}", f"eu.{FAST}", f"global.{FAST}",
    f"arn:aws:bedrock:ap-northeast-1:123456789012:inference-profile/apac.{FAST}",
    f"arn:aws:bedrock:ap-northeast-1::foundation-model/{FAST}",
])
def test_inference_profiles_are_priced_as_their_model(model_id):
    assert pricing_key(model_id) == FAST
    assert estimate_cost(model_id, 1000, 1000) == estimate_cost(FAST, 1000, 1000)


def test_unknown_model_costs_nothing_and_is_logged_once(caplog):
    with caplog.at_level(logging.WARNING, logger="mangaassist.models.pricing"):
        assert estimate_cost("mistral.unknown-model-v9:0", 100, 100) == 0.0
        assert estimate_cost("mistral.unknown-model-v9:0", 100, 100) == 0.0
    assert [r.message for r in caplog.records if "no price" in r.message] == [
        f"no price for model mistral.unknown-model-v9:0: cost reported as 0.0 (prices as of {PRICES_AS_OF})"]
    assert "mistral.unknown-model-v9:0" not in PRICES


# --- Bedrock Converse ------------------------------------------------------------------------

def test_converse_request_and_parsed_completion(bedrock):
    client, stubber = bedrock
    stubber.add_response("converse", converse_response(), expected_request(FAST, system="You are MangaAssist."))
    completion = BedrockModel(FAST, client).converse(MESSAGES, system="You are MangaAssist.")
    assert completion == Completion(
        text="Yes, volume 107 is in stock.", stop_reason="end_turn", input_tokens=1200, output_tokens=40,
        latency_ms=412, model_id=FAST, provider="bedrock", estimated_cost_usd=0.00035, fallback_used=False)


def test_converse_joins_text_blocks_and_keeps_the_stop_reason(bedrock):
    client, stubber = bedrock
    response = converse_response(stop_reason="max_tokens")
    response["output"]["message"]["content"] = [{"text": "Volume 107 "}, {"text": "is in"}]
    stubber.add_response("converse", response, expected_request(f"apac.{FAST}", max_tokens=5, temperature=0.0))
    completion = BedrockModel(f"apac.{FAST}", client).converse(MESSAGES, max_tokens=5, temperature=0.0)
    assert (completion.text, completion.stop_reason, completion.model_id) == ("Volume 107 is in", "max_tokens",
                                                                              f"apac.{FAST}")
    assert completion.estimated_cost_usd == estimate_cost(FAST, 1200, 40)


@pytest.mark.parametrize("code, retryable, fallback", [
    ("ThrottlingException", True, True),
    ("ServiceUnavailableException", True, True),
    ("InternalServerException", True, True),
    ("ModelNotReadyException", True, True),
    ("ModelErrorException", True, True),
    ("ModelTimeoutException", False, True),
    ("ValidationException", False, False),
    ("AccessDeniedException", False, False),
])
def test_service_errors_become_model_errors_with_their_code(bedrock, code, retryable, fallback):
    client, stubber = bedrock
    stubber.add_client_error("converse", service_error_code=code, service_message="nope", http_status_code=400)
    with pytest.raises(ModelError) as caught:
        BedrockModel(FAST, client).converse(MESSAGES)
    assert (caught.value.code, caught.value.retryable, caught.value.fallback) == (code, retryable, fallback)
    assert caught.value.model_id == FAST


def test_stream_parser_yields_deltas_and_returns_the_completion():
    stream = parse_converse_stream(STREAM_EVENTS, FAST)
    chunks = []
    with pytest.raises(StopIteration) as end:
        while True:
            chunks.append(next(stream))
    assert chunks == ["Yes, ", "volume 107 ", "is in stock."]
    assert end.value.value == Completion(
        text="Yes, volume 107 is in stock.", stop_reason="end_turn", input_tokens=950, output_tokens=12,
        latency_ms=388, model_id=FAST, provider="bedrock", estimated_cost_usd=estimate_cost(FAST, 950, 12))


def test_stream_parser_measures_latency_when_the_stream_has_no_metrics():
    events = [e for e in STREAM_EVENTS if "metadata" not in e]
    stream = models.CompletionStream(parse_converse_stream(events, FAST, started=0.0))
    assert "".join(stream) == "Yes, volume 107 is in stock."
    assert stream.completion.latency_ms > 0 and stream.completion.input_tokens == 0


def test_converse_stream_calls_the_client_like_converse():
    client = FakeStreamClient(STREAM_EVENTS)
    stream = BedrockModel(FAST, client).converse_stream(MESSAGES, system="Be brief.", max_tokens=64)
    assert list(stream) == ["Yes, ", "volume 107 ", "is in stock."]
    assert client.calls == [expected_request(FAST, system="Be brief.", max_tokens=64)]
    assert stream.completion.output_tokens == 12 and stream.completion.provider == "bedrock"


def test_errors_inside_the_event_stream_become_model_errors():
    error = EventStreamError({"Error": {"Code": "throttlingException", "Message": "Too many tokens"}}, "ConverseStream")
    stream = BedrockModel(FAST, FakeStreamClient(failing_events(error))).converse_stream(MESSAGES)
    assert next(stream) == "Yes, "
    with pytest.raises(ModelError) as caught:
        next(stream)
    assert caught.value.code == "ThrottlingException" and caught.value.retryable


# --- router: retries and fallback ------------------------------------------------------------

def test_throttled_fast_model_is_retried_with_jitter_then_the_fallback_answers(bedrock):
    client, stubber = bedrock
    for _ in range(2):
        stubber.add_client_error("converse", "ThrottlingException", "Too many requests", 429,
                                 expected_params=expected_request(FAST))
    stubber.add_response("converse", converse_response(text="In stock."), expected_request(FALLBACK))
    sleeps = []
    completion = router(client, sleeps=sleeps).converse(MESSAGES)
    assert (completion.text, completion.model_id, completion.fallback_used) == ("In stock.", FALLBACK, True)
    assert completion.estimated_cost_usd == estimate_cost(FALLBACK, 1200, 40)
    assert sleeps == [0.05]  # full jitter: rng() * min(cap, base * 2**0)


def test_a_retry_that_succeeds_stays_on_the_fast_model(bedrock):
    client, stubber = bedrock
    stubber.add_client_error("converse", "ServiceUnavailableException", "busy", 503,
                             expected_params=expected_request(FAST))
    stubber.add_response("converse", converse_response(), expected_request(FAST))
    completion = router(client).converse(MESSAGES)
    assert (completion.model_id, completion.fallback_used) == (FAST, False)


def test_client_errors_are_raised_at_once_without_fallback(bedrock):
    client, stubber = bedrock
    stubber.add_client_error("converse", "ValidationException", "messages: too long", 400,
                             expected_params=expected_request(FAST))
    with pytest.raises(ModelError) as caught:
        router(client).converse(MESSAGES)
    assert caught.value.code == "ValidationException" and not isinstance(caught.value, ModelUnavailable)


def test_a_timeout_falls_back_without_waiting_for_another_timeout():
    class TimingOut:
        def converse(self, **request):
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.ap-northeast-1.amazonaws.com")

    sleeps = []
    fallback = LocalProvider()
    completion = ModelRouter([Route(BedrockModel(FAST, TimingOut())), Route(fallback)],
                             sleep=sleeps.append).converse(MESSAGES)
    assert completion.fallback_used and completion.model_id == fallback.model_id
    assert sleeps == []


def test_when_every_model_fails_the_router_raises_model_unavailable(bedrock):
    client, stubber = bedrock
    for model_id in (FAST, FALLBACK):
        stubber.add_client_error("converse", "ThrottlingException", "slow down", 429,
                                 expected_params=expected_request(model_id))
    with pytest.raises(ModelUnavailable) as caught:
        router(client, attempts=1).converse(MESSAGES)
    assert [(c.code, c.model_id) for c in caught.value.causes] == [("ThrottlingException", FAST),
                                                                   ("ThrottlingException", FALLBACK)]
    assert caught.value.code == "ModelUnavailable"


def test_streams_fall_back_before_their_first_chunk():
    client = FakeStreamClient(
        EventStreamError({"Error": {"Code": "serviceUnavailableException", "Message": "busy"}}, "ConverseStream"),
        STREAM_EVENTS,
    )
    stream = router(client, attempts=1).converse_stream(MESSAGES)
    assert stream.model_id is None  # nothing has answered yet
    assert next(stream) == "Yes, "
    assert stream.model_id == FALLBACK  # known with the first chunk, before the answer ends (the frames name it)
    assert "".join(stream) == "volume 107 is in stock."
    assert [call["modelId"] for call in client.calls] == [FAST, FALLBACK]
    assert stream.completion.fallback_used and stream.completion.model_id == FALLBACK


def test_a_stream_failing_after_its_first_chunk_raises_to_the_caller():
    error = EventStreamError({"Error": {"Code": "modelStreamErrorException", "Message": "cut"}}, "ConverseStream")
    stream = router(FakeStreamClient(failing_events(error)), attempts=1).converse_stream(MESSAGES)
    assert next(stream) == "Yes, "
    with pytest.raises(ModelError, match="ModelStreamErrorException"):
        list(stream)


# --- the router passes everything on, and says what happened --------------------------------
class RecordingModel:
    """A model that answers (or fails, or streams nothing) and records how it was called."""

    def __init__(self, model_id: str, *, error: ModelError | None = None, chunks=("Yes.",)):
        self.model_id, self.error, self.chunks, self.calls = model_id, error, chunks, []

    def _completion(self, text: str) -> Completion:
        return Completion(text=text, stop_reason="end_turn", input_tokens=3, output_tokens=1, latency_ms=5,
                          model_id=self.model_id, provider="local", estimated_cost_usd=0.0)

    def converse(self, messages, **options):
        self.calls.append(("converse", messages, options))
        if self.error:
            raise self.error
        return self._completion("".join(self.chunks))

    def converse_stream(self, messages, **options):
        self.calls.append(("converse_stream", messages, options))
        if self.error:
            raise self.error

        def chunks():
            yield from self.chunks
            return self._completion("".join(self.chunks))

        return models.CompletionStream(chunks())


class RecordingBreaker:
    def __init__(self, permit=None, open_=False):
        self.permit, self.open, self.calls = permit or models.breaker.Permit(probe_at=123.0), open_, []

    def acquire(self):
        return None if self.open else self.permit

    def record_success(self, permit):
        self.calls.append(("success", permit))

    def record_failure(self, permit):
        self.calls.append(("failure", permit))


OPTIONS = {"system": "You sell manga.", "max_tokens": 77, "temperature": 0.9, "feature": "moderation"}


def test_the_router_passes_every_option_to_the_model_it_calls():
    fast = RecordingModel(FAST)
    ModelRouter([Route(fast)]).converse(MESSAGES, **OPTIONS)
    list(ModelRouter([Route(fast)]).converse_stream(MESSAGES, **OPTIONS))
    assert fast.calls == [("converse", MESSAGES, OPTIONS), ("converse_stream", MESSAGES, OPTIONS)]


def test_a_stream_with_no_chunks_ends_with_its_completion():
    stream = ModelRouter([Route(RecordingModel(FAST, chunks=()))]).converse_stream(MESSAGES)
    assert list(stream) == [] and stream.completion.text == "" and not stream.completion.fallback_used


def test_every_breaker_hears_of_its_own_permit():
    throttled = ModelError("ThrottlingException", "slow down")
    fast_breaker, fallback_breaker = RecordingBreaker(), RecordingBreaker()
    routed = ModelRouter([Route(RecordingModel(FAST, error=throttled), fast_breaker),
                          Route(RecordingModel(FALLBACK), fallback_breaker)], retry=ModelRetry(attempts=1))
    assert routed.converse(MESSAGES).fallback_used
    assert fast_breaker.calls == [("failure", fast_breaker.permit)]
    assert fallback_breaker.calls == [("success", fallback_breaker.permit)]
    refused = ModelError("ValidationException", "bad request")  # the service answered: the model is up
    rejecting = RecordingBreaker()
    with pytest.raises(ModelError, match="ValidationException"):
        ModelRouter([Route(RecordingModel(FAST, error=refused), rejecting)]).converse(MESSAGES)
    assert rejecting.calls == [("success", rejecting.permit)]


def test_when_every_circuit_is_open_the_error_names_each_model():
    routed = ModelRouter([Route(RecordingModel(FAST), RecordingBreaker(open_=True)),
                          Route(RecordingModel(FALLBACK), RecordingBreaker(open_=True))])
    with pytest.raises(ModelUnavailable) as caught:
        routed.converse(MESSAGES)
    assert [(c.code, c.message, c.model_id) for c in caught.value.causes] == [
        (models.base.CIRCUIT_OPEN, "circuit open", FAST), (models.base.CIRCUIT_OPEN, "circuit open", FALLBACK)]


def test_a_failing_model_is_logged_by_its_id_and_error_code(caplog):
    routed = ModelRouter([Route(RecordingModel(FAST, error=ModelError("ThrottlingException", "slow"))),
                          Route(RecordingModel(FALLBACK))], retry=ModelRetry(attempts=1))
    with caplog.at_level(logging.WARNING, logger="mangaassist.models.router"):
        routed.converse(MESSAGES)
    assert caplog.messages == [f"model {FAST} failed (ThrottlingException), trying the next model"]


def test_a_retry_policy_needs_an_attempt():
    with pytest.raises(ValueError) as caught:
        ModelRetry(attempts=0)
    assert str(caught.value) == "attempts must be >= 1"
    assert ModelRetry(attempts=1).attempts == 1


# --- circuit breaker (DynamoDB, shared by every container) ------------------------------------

@pytest.fixture
def breaker_table():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        client.create_table(TableName="breakers", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        yield client


def breaker(client, clock, model_id=FAST, **options):
    options = {"threshold": 3, "cooldown_seconds": 30, "cache_seconds": 2, **options}
    return CircuitBreaker(model_id, "breakers", client=client, clock=clock, **options)


def test_breaker_opens_after_threshold_consecutive_failures(breaker_table):
    clock = Clock()
    fast = breaker(breaker_table, clock)
    for _ in range(2):
        fast.record_failure(fast.acquire())
    assert fast.state().state == "closed" and fast.state().failures == 2
    fast.record_failure(fast.acquire())
    item = breaker_table.get_item(TableName="breakers", Key={"pk": {"S": f"breaker#{FAST}"}})["Item"]
    assert item["state"] == {"S": "open"} and item["failures"] == {"N": "3"}
    assert float(item["opened_at"]["N"]) == clock.now
    assert fast.acquire() is None


def test_a_success_resets_the_consecutive_count(breaker_table):
    fast = breaker(breaker_table, Clock())
    fast.record_failure(fast.acquire())
    fast.record_failure(fast.acquire())
    fast.record_success(fast.acquire())
    fast.record_failure(fast.acquire())
    assert fast.state() == models.breaker.BreakerState(state="closed", failures=1)


def test_an_open_breaker_sends_the_router_straight_to_the_fallback(breaker_table, bedrock):
    clock = Clock()
    client, stubber = bedrock
    fast_breaker = breaker(breaker_table, clock, threshold=2)
    routed = router(client, fast_breaker=fast_breaker, attempts=1)
    for _ in range(2):  # two calls fail on the fast model and succeed on the fallback: the circuit opens
        stubber.add_client_error("converse", "ThrottlingException", "slow down", 429,
                                 expected_params=expected_request(FAST))
        stubber.add_response("converse", converse_response(), expected_request(FALLBACK))
        assert routed.converse(MESSAGES).fallback_used
    assert fast_breaker.state().state == "open"
    # Stubber fails the test if the fast model is called now.
    stubber.add_response("converse", converse_response(text="From Sonnet."), expected_request(FALLBACK))
    completion = routed.converse(MESSAGES)
    assert (completion.text, completion.fallback_used) == ("From Sonnet.", True)


def test_after_cooldown_exactly_one_container_probes(breaker_table):
    clock = Clock()
    container_a, container_b = breaker(breaker_table, clock), breaker(breaker_table, clock)
    for _ in range(3):
        container_a.record_failure(container_a.acquire())
    assert container_b.acquire() is None  # B reads the open state
    clock.now += 29
    assert container_a.acquire() is None and container_b.acquire() is None
    clock.now += 2
    permits = [container_a.acquire(), container_b.acquire()]
    assert [p is not None and p.probe_at is not None for p in permits] == [True, False]
    assert container_a.state().state == "half_open"
    assert container_b.acquire() is None  # still rejected while the probe is out


def test_a_successful_probe_closes_the_circuit(breaker_table):
    clock = Clock()
    fast = breaker(breaker_table, clock)
    for _ in range(3):
        fast.record_failure(fast.acquire())
    clock.now += 31
    fast.record_success(fast.acquire())
    assert fast.state() == models.breaker.BreakerState(state="closed", failures=0)
    assert fast.acquire() is not None


def test_a_failed_probe_reopens_for_another_cooldown(breaker_table):
    clock = Clock()
    fast = breaker(breaker_table, clock)
    for _ in range(3):
        fast.record_failure(fast.acquire())
    clock.now += 31
    fast.record_failure(fast.acquire())
    state = fast.state()
    assert (state.state, state.opened_at, state.probe_at) == ("open", clock.now, None)
    clock.now += 29
    assert fast.acquire() is None
    clock.now += 2
    assert fast.acquire().probe_at == clock.now


def test_a_probe_that_never_reports_is_reclaimed_after_a_cooldown(breaker_table):
    clock = Clock()
    container_a, container_b = breaker(breaker_table, clock), breaker(breaker_table, clock)
    for _ in range(3):
        container_a.record_failure(container_a.acquire())
    clock.now += 31
    assert container_a.acquire().probe_at  # and container A dies mid-probe
    clock.now += 31
    assert container_b.acquire().probe_at == clock.now


@pytest.mark.parametrize("offset, probes", [(-0.001, False), (0.0, True)])
def test_the_cooldown_ends_exactly_cooldown_seconds_after_opening(breaker_table, offset, probes):
    clock = Clock(1_000.0)
    fast = breaker(breaker_table, clock, cache_seconds=0)
    for _ in range(3):
        fast.record_failure(fast.acquire())
    clock.now = 1_030.0 + offset
    assert (fast.acquire() is not None) is probes


@pytest.mark.parametrize("offset, reclaimed", [(-0.001, False), (0.0, True)])
def test_a_silent_probe_is_reclaimable_exactly_cooldown_seconds_after_it_was_claimed(breaker_table, offset, reclaimed):
    clock = Clock(1_000.0)
    fast = breaker(breaker_table, clock, cache_seconds=0)
    for _ in range(3):
        fast.record_failure(fast.acquire())
    clock.now = 1_030.0
    assert fast.acquire().probe_at == 1_030.0
    clock.now = 1_060.0 + offset
    assert (fast.acquire() is not None) is reclaimed


@pytest.fixture
def serialising_dynamodb():
    """The local stack's emulator (moto behind its one-request-at-a-time middleware), over HTTP:
    its conditional writes are atomic, as DynamoDB's are; moto's mock_aws in one process is not."""
    from moto.moto_api._internal.models import moto_api_backend

    from embedded.aws import Emulator

    moto_api_backend.reset()
    emulator = Emulator("unused-bus", lambda events: None).start()
    try:
        def client():  # one per container: their own connection pools, as two Lambda containers have
            return boto3.client("dynamodb", endpoint_url=emulator.endpoint_url, region_name="ap-northeast-1",
                                aws_access_key_id="test", aws_secret_access_key="test")

        client().create_table(TableName="breakers", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
        yield client
    finally:
        emulator.stop()
        moto_api_backend.reset()


def race_for_the_probe(client, clock, containers: int) -> list:
    """Open the circuit, let every container cache the open state, pass the cooldown, then have all
    of them ask for a permit at the same moment (a barrier): each acts on the same cached state."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    fleet = [breaker(client(), clock, cache_seconds=60) for _ in range(containers)]
    for _ in range(3):
        fleet[0].record_failure(fleet[0].acquire())
    assert all(container.acquire() is None for container in fleet)  # each has read "open" and keeps it
    clock.now += 31
    start = Barrier(containers)

    def acquire(container):
        start.wait()
        return container.acquire()

    with ThreadPoolExecutor(containers) as pool:
        return list(pool.map(acquire, fleet))


def test_containers_racing_on_a_cached_open_state_get_exactly_one_probe(serialising_dynamodb):
    for round_ in range(5):
        permits = race_for_the_probe(serialising_dynamodb, Clock(1_000.0 + round_ * 1_000), containers=4)
        assert sum(permit is not None for permit in permits) == 1, permits
        state = breaker(serialising_dynamodb(), Clock()).state()
        assert state.state == "half_open"
        serialising_dynamodb().delete_item(TableName="breakers", Key={"pk": {"S": f"breaker#{FAST}"}})


def test_the_race_is_real_without_the_conditional_write_every_container_probes(serialising_dynamodb, monkeypatch):
    """The test above can fail: with the probe claim's condition dropped, the same race hands out
    a permit to every container."""
    update = models.breaker.CircuitBreaker._update

    def unconditional(self, expression, values, condition=None):
        return update(self, expression, values, None if ":half_open, probe_at" in expression else condition)

    monkeypatch.setattr(models.breaker.CircuitBreaker, "_update", unconditional)
    permits = race_for_the_probe(serialising_dynamodb, Clock(1_000.0), containers=4)
    assert sum(permit is not None for permit in permits) == 4


def test_every_transition_is_logged_with_its_model(breaker_table, caplog):
    clock = Clock()
    fast = breaker(breaker_table, clock)
    with caplog.at_level(logging.WARNING, logger="mangaassist.models.breaker"):
        for _ in range(3):
            fast.record_failure(fast.acquire())
        clock.now += 31
        fast.record_failure(fast.acquire())
        clock.now += 31
        fast.record_success(fast.acquire())
    assert caplog.messages == [f"circuit for {FAST} opened after 3 consecutive failures",
                               f"circuit for {FAST} re-opened: the probe failed",
                               f"circuit for {FAST} closed: the probe succeeded"]


@pytest.mark.parametrize("state", ["open", "half_open"])
def test_a_state_written_without_its_time_is_long_past(breaker_table, state):
    """An operator opening a circuit by hand writes no opened_at: the next caller probes (one does)."""
    breaker_table.put_item(TableName="breakers", Item={"pk": {"S": f"breaker#{FAST}"}, "state": {"S": state}})
    first, second = breaker(breaker_table, Clock(30.0)), breaker(breaker_table, Clock(30.0))
    assert first.acquire().probe_at == 30.0  # exactly a cooldown after the epoch
    assert second.acquire() is None and second.state().state == "half_open"
    first.record_success(models.breaker.Permit(probe_at=30.0))
    assert first.state() == models.breaker.BreakerState(state="closed", failures=0)


def test_reads_are_consistent_and_a_failure_below_the_threshold_is_one_write(breaker_table):
    """A container must see the state another wrote a moment ago (an eventually consistent read could
    miss an open circuit); counting a failure is one UpdateItem on the hot path, no more."""
    calls = []
    breaker_table.meta.events.register("before-parameter-build.dynamodb.*",
                                       lambda params, model, **kw: calls.append((model.name, dict(params))))
    fast = breaker(breaker_table, Clock(), cache_seconds=0)
    fast.record_failure(fast.acquire())
    assert [name for name, _ in calls] == ["GetItem", "UpdateItem"]
    assert calls[0][1]["ConsistentRead"] is True


def test_an_unreachable_table_is_logged_and_left_alone_for_the_cache_window(caplog):
    with mock_aws():  # no table: every call is ResourceNotFoundException
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        calls = []
        client.meta.events.register("before-call.dynamodb.*", lambda **kw: calls.append(1))
        clock = Clock()
        fast = breaker(client, clock)
        with caplog.at_level(logging.WARNING, logger="mangaassist.models.breaker"):
            assert fast.acquire() == models.breaker.Permit()
        assert fast.acquire() == models.breaker.Permit() and len(calls) == 1  # the failure is cached too
    (message,) = caplog.messages
    assert message.startswith(f"breaker table breakers unreachable, calling {FAST} anyway: An error occurred "
                              "(ResourceNotFoundException)")


def test_the_cache_keeps_reads_off_the_hot_path(breaker_table):
    clock = Clock()
    fast = breaker(breaker_table, clock)
    calls = []
    breaker_table.meta.events.register("before-call.dynamodb.GetItem", lambda **kw: calls.append(1))
    for _ in range(5):
        fast.record_success(fast.acquire())
    assert len(calls) == 1
    clock.now += 2
    fast.acquire()
    assert len(calls) == 2


def test_an_unreachable_breaker_table_fails_open(caplog):
    with mock_aws():  # no table: every call is ResourceNotFoundException
        client = boto3.client("dynamodb", region_name="ap-northeast-1")
        fast = breaker(client, Clock())
        with caplog.at_level(logging.WARNING, logger="mangaassist.models.breaker"):
            permit = fast.acquire()
            fast.record_failure(permit)
    assert permit is not None
    assert "unreachable" in caplog.text


# --- InferenceCompleted ----------------------------------------------------------------------

COMPLETION = Completion(text="ok", stop_reason="end_turn", input_tokens=1200, output_tokens=40, latency_ms=412,
                        model_id=FAST, provider="bedrock", estimated_cost_usd=0.00035, fallback_used=False)


def test_inference_event_detail_has_exactly_the_contract_fields():
    detail = inference_event(COMPLETION, request_id="req-1", feature="chat", correlation_id="corr-9")
    assert detail == {
        "version": "1", "request_id": "req-1", "feature": "chat", "model_id": FAST, "provider": "bedrock",
        "input_tokens": 1200, "output_tokens": 40, "latency_ms": 412, "estimated_cost_usd": 0.00035,
        "stop_reason": "end_turn", "fallback_used": False, "correlation_id": "corr-9",
    }
    assert "correlation_id" not in inference_event(COMPLETION, request_id="req-1", feature="chat")
    json.dumps(detail)


def test_inference_event_detail_matches_its_schema():
    path = ROOT / "schemas" / "events" / "mangaassist.ai" / "InferenceCompleted.schema.json"
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not written yet")
    validator = Draft4Validator(json.loads(path.read_text()))
    local = LocalProvider().converse(MESSAGES)
    for detail in (inference_event(COMPLETION, request_id="req-1", feature="chat", correlation_id="c"),
                   inference_event(local, request_id="req-2", feature="moderation")):
        assert not list(validator.iter_errors(detail))


# --- configuration ---------------------------------------------------------------------------

def test_get_provider_follows_the_settings(monkeypatch):
    for name, value in {"MODEL_PROVIDER": "local", "MODEL_FAST_ID": "local.fast-v1", "MODEL_FALLBACK_ID":
                        "local.deep-v1", "LOCAL_MODEL_LATENCY_MS": "20", "LOCAL_MODEL_TOKENS_PER_SECOND": "50"}.items():
        monkeypatch.setenv(name, value)
    local = models.get_provider()
    assert [(type(r.model), r.model.model_id) for r in local.routes] == [(LocalProvider, "local.fast-v1"),
                                                                        (LocalProvider, "local.deep-v1")]
    assert (local.routes[0].model.latency_ms, local.routes[0].model.tokens_per_second) == (20, 50.0)
    assert [r.model.model_id for r in models.get_provider(first="local.deep-v1").routes] == ["local.deep-v1",
                                                                                            "local.fast-v1"]
    assert [r.model.model_id for r in models.get_provider(first="x", only=True).routes] == ["x"]
    monkeypatch.setenv("MODEL_FAST_ID", FAST)
    monkeypatch.setenv("MODEL_FALLBACK_ID", FALLBACK)
    monkeypatch.setenv("MODEL_PROVIDER", "bedrock")
    monkeypatch.setenv("MODEL_FAST_ID", f"apac.{FAST}")
    monkeypatch.setenv("BREAKER_TABLE", "breakers")
    platform_settings.reload()
    provider = models.get_provider()
    assert [r.model.model_id for r in provider.routes] == [f"apac.{FAST}", FALLBACK]
    assert all(isinstance(r.breaker, CircuitBreaker) for r in provider.routes)
    assert models.get_provider() is provider  # clients and breaker caches outlive an invocation


@pytest.mark.parametrize("change, message", [
    ({"MODEL_PROVIDER": "openai"}, "MODEL_PROVIDER='openai' must be one of bedrock, local"),
    ({"MODEL_FALLBACK_ID": None}, "MODEL_FALLBACK_ID is not set"),
    ({"MODEL_PROVIDER": None}, "MODEL_PROVIDER is not set"),
    ({"MODEL_PROVIDER": "local"}, "LOCAL_MODEL_LATENCY_MS is not set"),
])
def test_a_missing_or_unknown_model_setting_fails_with_its_name(monkeypatch, change, message):
    for name, value in {"MODEL_PROVIDER": "bedrock", "MODEL_FAST_ID": FAST, "MODEL_FALLBACK_ID": FALLBACK,
                        **change}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    with pytest.raises(platform_settings.MissingSetting) as caught:
        models.get_provider()
    assert str(caught.value) == message


# --- the local provider ----------------------------------------------------------------------

PRODUCT = "title: ワンピース 107\nprice: 528 JPY\nstock: 12\nrelease date: 2023-11-02"


def local_answer(content, system=None, **options):
    return LocalProvider().converse([{"role": "user", "content": content}], system=system, **options)


def test_local_answers_restate_the_facts_in_the_prompt():
    completion = local_answer(f"{PRODUCT}\n\nQuestion: How much is it and is it in stock?")
    assert completion.text == ("Based on the information provided:\n- title: ワンピース 107\n- price: 528 JPY\n"
                               "- stock: 12\n- release date: 2023-11-02")
    assert (completion.provider, completion.model_id, completion.estimated_cost_usd) == ("local", "local.grounded-v1",
                                                                                         0)
    assert "local" in completion.model_id and completion.stop_reason == "end_turn"


def test_local_answers_pick_the_relevant_passages():
    passages = "\n".join(f"[{i}] {title} costs {price} JPY." for i, (title, price) in enumerate([
        ("One Piece vol. 107", 528), ("Naruto vol. 72", 484), ("Bleach vol. 74", 484), ("Chainsaw Man vol. 15", 572),
        ("Spy x Family vol. 12", 528), ("Jujutsu Kaisen vol. 25", 528), ("Dandadan vol. 14", 528),
        ("Frieren vol. 13", 594), ("Kingdom vol. 71", 594)], 1))
    completion = local_answer(f"<context>\n{passages}\n</context>\nHow much is Chainsaw Man?")
    assert completion.text == "Based on the information provided:\n- Chainsaw Man vol. 15 costs 572 JPY."


def test_local_answers_read_json_and_tagged_system_context():
    order = '{"order_id": "A-1001", "items": [{"title": "進撃の巨人 34", "qty": 1, "price": 528}], "total": 528.00}'
    completion = local_answer(f"Write the order confirmation.\n{order}",
                              system="You are MangaAssist. Answer: be short.\n<shop>Manga Store Tokyo</shop>")
    assert completion.text == ("Based on the information provided:\n- shop: Manga Store Tokyo\n- order_id: A-1001\n"
                               "- items: title: 進撃の巨人 34, qty: 1, price: 528\n- total: 528.00")


def test_local_answers_in_japanese_to_japanese_questions():
    completion = local_answer(f"{PRODUCT}\n質問：在庫はありますか？")
    assert completion.text.startswith("ご提供いただいた情報によると")
    assert "- stock: 12" in completion.text


def test_local_answers_invent_nothing_without_facts():
    for question in ("How much is volume 108?", "108巻はいくらですか？"):
        text = local_answer(question).text
        assert not re.search(r"\d", text)
    assert local_answer("How much is volume 108?").text.startswith("I don't have enough information")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["title", "price", "stock", "volume", "巻", "価格"]),
                          st.text(alphabet="abcxyz 0123456789円巻.", min_size=1, max_size=20).map(str.strip)
                          .filter(bool)), min_size=0, max_size=12),
       st.text(alphabet="abc ?0123456789", max_size=30))
def test_local_answers_only_copy_facts_and_numbers_from_the_prompt(facts, question):
    prompt = "\n".join(f"{label}: {value}" for label, value in facts) + f"\nQuestion: {question}"
    text = local_answer(prompt).text
    assert set(re.findall(r"\d+", text)) <= set(re.findall(r"\d+", prompt))
    for line in text.splitlines()[1:]:
        assert line.startswith("- ") and line[2:] in prompt


def test_local_streams_chunks_that_add_up_to_the_completion():
    stream = LocalProvider().converse_stream([{"role": "user", "content": f"{PRODUCT}\nIs it in stock?"}])
    chunks = list(stream)
    assert len(chunks) > 3 and all(len(chunk) <= 30 for chunk in chunks)
    assert "".join(chunks) == stream.completion.text and stream.completion.output_tokens > 0


def test_local_respects_max_tokens():
    completion = local_answer(PRODUCT, max_tokens=10)
    assert completion.stop_reason == "max_tokens" and completion.output_tokens <= 10
    assert completion.text == local_answer(PRODUCT).text[:len(completion.text)]


def test_token_approximation():
    assert approx_tokens("") == 0
    assert approx_tokens("abcd" * 10) == 10
    assert approx_tokens("ワンピース") == 5
    completion = local_answer("title: One Piece")
    assert completion.input_tokens == approx_tokens("\ntitle: One Piece")


# --- review moderation -----------------------------------------------------------------------

MODERATION_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object", "required": ["categories", "sentiment"], "additionalProperties": False,
    "properties": {
        "categories": {"type": "array", "items": {
            "type": "object", "required": ["name", "severity"], "additionalProperties": False,
            "properties": {
                "name": {"enum": ["toxicity", "harassment", "hate", "sexual", "spam", "spoiler", "self_harm"]},
                "severity": {"enum": ["low", "medium", "high", "critical"]}}}},
        "sentiment": {"type": "object", "required": ["label", "score"], "additionalProperties": False, "properties": {
            "label": {"enum": ["positive", "neutral", "negative"]},
            "score": {"type": "number", "minimum": -1, "maximum": 1}}},
    },
}


def categories(text):
    return {c["name"]: c["severity"] for c in local_moderation(text)["categories"]}


@pytest.mark.parametrize("text, expected, label", [
    ("A masterpiece, I loved every chapter.", {}, "positive"),
    ("Not good. Really disappointing.", {}, "negative"),
    ("絵が綺麗で、話も面白い！おすすめです", {}, "positive"),
    ("正直、面白くなかった。", {}, "negative"),
    ("This volume is stupid.", {"toxicity": "low"}, "negative"),
    ("This volume is stupid!!!", {"toxicity": "medium"}, "negative"),
    ("you idiot", {"toxicity": "medium", "harassment": "medium"}, "negative"),
    ("WORST BOOK EVER!!! The author is a fucking idiot", {"toxicity": "high"}, "negative"),
    ("kill yourself", {"harassment": "critical"}, "neutral"),
    ("もう死にたい", {"self_harm": "critical"}, "neutral"),
    ("Spoiler: L dies at the end", {"spoiler": "high"}, "neutral"),
    ("No spoilers here, just great art.", {}, "positive"),
    ("ネタバレなし。最高でした", {}, "positive"),
    ("Buy now at http://cheap.example with promo code MANGA", {"spam": "high"}, "neutral"),
])
def test_local_moderation(text, expected, label):
    result = local_moderation(text)
    assert not list(Draft4Validator(MODERATION_SCHEMA).iter_errors(result))
    assert categories(text) == expected
    assert result["sentiment"]["label"] == label


def test_the_moderation_feature_answers_json_about_the_tagged_review():
    prompt = ("Classify the review. Answer with JSON valid against this schema: "
              f"{json.dumps(MODERATION_SCHEMA)}\n<review>\nThis manga is garbage, you idiot\n</review>")
    completion = LocalProvider().converse([{"role": "user", "content": prompt}], feature="moderation")
    assert json.loads(completion.text) == local_moderation("This manga is garbage, you idiot")
    assert categories("This manga is garbage, you idiot") == {"toxicity": "medium", "harassment": "medium"}

"""The AI workers: outputs valid against the contracts, no partial results, idempotent."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mangaassist.contracts import validate_detail
from mangaassist.events.publisher import Event, PublishError
from mangaassist.models import ModelError, ModelUnavailable
from mangaassist.models.local import LocalProvider
from mangaassist.search.embeddings import LocalEmbedder
from mangaassist.search.local_store import LocalVectorStore
from mangaassist.workers import catalog, moderation, orders
from mangaassist.workers.deps import Deps
from mangaassist.workers.runtime import event_worker

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"orders": "order_id", "products": "product_id", "reviews": "review_id", "idempotency": "id"}


def sample(source: str, detail_type: str, index: int = 0) -> dict:
    path = ROOT / "schemas" / "events" / source / f"{detail_type}.samples.json"
    return json.loads(path.read_text())["valid"][index]


class Recorder:
    """A publisher that validates like the real one and remembers what it was asked to send."""

    def __init__(self, fail: int = 0):
        self.events: list[Event] = []
        self.fail = fail

    def __call__(self, events: list[Event]) -> list[str]:
        for event in events:
            validate_detail(event.source, event.detail_type, event.detail)
        if self.fail:
            self.fail -= 1
            raise PublishError([{"ErrorCode": "InternalFailure"}], [])
        self.events += events
        return [f"id-{len(self.events) - len(events) + i}" for i in range(len(events))]

    def of(self, detail_type: str) -> list[dict]:
        return [e.detail for e in self.events if e.detail_type == detail_type]


class CountingProvider:
    def __init__(self, inner=None, answers=None, error=None):
        self.inner, self.answers, self.error, self.calls = inner or LocalProvider(), list(answers or []), error, 0

    def converse(self, messages, **kwargs):
        self.calls += 1
        if self.error:
            raise self.error
        completion = self.inner.converse(messages, **kwargs)
        if self.answers:
            from dataclasses import replace

            completion = replace(completion, text=self.answers.pop(0))
        return completion


class FakeDeps(Deps):
    def __init__(self, tmp_path, provider=None, publisher=None):
        self.provider = provider or CountingProvider()
        self.embedder = LocalEmbedder()
        self.store = LocalVectorStore(data_dir=tmp_path)
        self.publisher = publisher or Recorder()

    def publish(self, events):
        return self.publisher(events)


@pytest.fixture
def aws(monkeypatch):
    for name in TABLES:
        monkeypatch.setenv(f"{name.upper()}_TABLE", f"test-{name}")
    with mock_aws():
        ddb = boto3.client("dynamodb")
        for name, key in TABLES.items():
            ddb.create_table(TableName=f"test-{name}", BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
        yield boto3.resource("dynamodb")


def item(resource, table: str, key: str, value: str):
    return resource.Table(f"test-{table}").get_item(Key={key: value}).get("Item")


# --- order confirmation ----------------------------------------------------------------------
def test_order_confirmation_is_grounded_stored_and_announced(aws, tmp_path):
    aws.Table("test-products").put_item(Item={"product_id": "bk-onepiece-107", "title": "ONE PIECE 107"})
    deps = FakeDeps(tmp_path)
    event = sample("mangaassist.payments", "PaymentCompleted")
    orders.confirm_order(event, deps)
    order = item(aws, "orders", "order_id", "ord_1001")
    text = order["confirmation"]["text"]
    assert "ONE PIECE 107" in text and "¥1,500" in text
    assert "¥" not in text.replace("¥1,500", ""), "no other price is invented"
    assert order["status"] == "paid" and order["payment_id"] == "pi_3QmangaIntent0001"
    (confirmation,) = deps.publisher.of("OrderConfirmationGenerated")
    (usage,) = deps.publisher.of("InferenceCompleted")
    assert confirmation["text"] == text and usage["provider"] == "local" and usage["input_tokens"] > 0
    assert usage["request_id"] == confirmation["request_id"] == order["confirmation"]["request_id"]


def test_order_confirmation_without_a_model_leaves_no_order(aws, tmp_path):
    deps = FakeDeps(tmp_path, provider=CountingProvider(error=ModelUnavailable([ModelError("ThrottlingException", "slow")])))
    with pytest.raises(ModelUnavailable):
        orders.confirm_order(sample("mangaassist.payments", "PaymentCompleted"), deps)
    assert item(aws, "orders", "order_id", "ord_1001") is None
    assert deps.publisher.events == []


def test_a_failed_publish_raises_and_the_retry_completes_once(aws, tmp_path):
    publisher = Recorder(fail=1)
    deps = FakeDeps(tmp_path, publisher=publisher)
    orders_deps = deps
    handler = event_worker(lambda event: orders.confirm_order(event, orders_deps))
    event = sample("mangaassist.payments", "PaymentCompleted")
    with pytest.raises(PublishError):
        handler(event)
    handler(event)  # EventBridge retries: the claim was released
    handler(event)  # and a duplicate delivery after success does nothing
    assert len(publisher.of("OrderConfirmationGenerated")) == 1
    assert deps.provider.calls == 2


def test_a_replay_runs_the_work_again(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    handler = event_worker(lambda event: orders.confirm_order(event, deps))
    event = sample("mangaassist.payments", "PaymentCompleted")
    handler(event)
    handler({**event, "replay-name": "fix-1"})
    assert deps.provider.calls == 2


def test_workers_refuse_events_that_break_the_contract(aws, tmp_path):
    from mangaassist.contracts import ContractError

    deps = FakeDeps(tmp_path)
    handler = event_worker(lambda event: orders.confirm_order(event, deps))
    bad = sample("mangaassist.payments", "PaymentCompleted")
    bad["detail"] = {**bad["detail"], "amount": -1}
    with pytest.raises(ContractError):
        handler(bad)
    assert deps.provider.calls == 0


# --- review moderation -----------------------------------------------------------------------
def review_event(text: str, review_id: str = "rev_1") -> dict:
    event = sample("mangaassist.reviews", "ReviewSubmitted")
    return {**event, "id": f"evt-{review_id}", "detail": {**event["detail"], "review_id": review_id, "text": text}}


def test_toxic_review_is_quarantined_and_flagged(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    result = moderation.moderate_review(review_event("You are an idiot and a moron, I will hurt you! Worst trash ever!!!"), deps)
    assert result["decision"] == "quarantined"
    stored = item(aws, "reviews", "review_id", "rev_1")
    assert stored["status"] == "quarantined" and stored["moderation"]["max_severity"] in ("high", "critical")
    (flag,) = deps.publisher.of("ModerationFlagged")
    assert flag["severity"] in ("high", "critical") and flag["categories"]
    assert deps.publisher.of("ReviewModerated")[0]["decision"] == "quarantined"
    assert len(deps.publisher.of("InferenceCompleted")) == 1


def test_clean_review_is_approved_and_not_flagged(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    result = moderation.moderate_review(review_event("最高の巻でした！ The art is wonderful."), deps)
    assert result["decision"] == "approved"
    assert deps.publisher.of("ModerationFlagged") == []
    assert deps.publisher.of("ReviewModerated")[0]["sentiment"]["label"] == "positive"


def test_junk_answers_get_one_retry_then_need_a_person(aws, tmp_path):
    deps = FakeDeps(tmp_path, provider=CountingProvider(answers=["sure! it's fine", '{"categories": "none"}']))
    result = moderation.moderate_review(review_event("ok"), deps)
    assert result["decision"] == "needs_review" and deps.provider.calls == 2
    assert item(aws, "reviews", "review_id", "rev_1")["status"] == "needs_review"
    assert len(deps.publisher.of("InferenceCompleted")) == 2


def test_a_fenced_answer_is_accepted_after_a_corrective_retry(aws, tmp_path):
    good = '```json\n{"categories": [], "sentiment": {"label": "neutral", "score": 0}}\n```'
    deps = FakeDeps(tmp_path, provider=CountingProvider(answers=["nope", good]))
    assert moderation.moderate_review(review_event("ok"), deps)["decision"] == "approved"


@pytest.mark.parametrize("text, problem", [
    ("{", "not JSON"),
    ('{"categories": [{"name": "toxicity", "severity": "extreme"}], "sentiment": {"label": "neutral", "score": 0}}', "categories"),
    ('{"categories": [], "sentiment": {"label": "neutral", "score": 3}}', "sentiment"),
])
def test_parse_moderation_names_the_problem(text, problem):
    result, why = moderation.parse_moderation(text)
    assert result is None and problem in why


# --- catalog indexer and search ---------------------------------------------------------------
def catalog_event(kind: str, detail: dict) -> dict:
    event = sample("mangaassist.catalog", f"CatalogUpdate.{kind}")
    return {**event, "id": f"evt-{kind}-{detail.get('revision')}", "detail": {**event["detail"], **detail}}


def test_new_release_becomes_searchable_and_price_changes_follow(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    catalog.index_product(catalog_event("new_release", {}), deps)
    catalog.index_product(catalog_event("new_release", {"product_id": "bk-other", "title": "Cooking Daddy", "author": "X",
                                                          "synopsis": "A father cooks.", "genres": ["slice of life"]}), deps)
    hits = catalog.search_products("フリーレン", 5, None, deps)
    assert hits[0]["product_id"] == "bk-frieren-14" and hits[0]["price"] == 594
    catalog.index_product(catalog_event("price_change", {"price": 550, "revision": 4}), deps)
    assert catalog.search_products("フリーレン", 1, None, deps)[0]["price"] == 550
    assert item(aws, "products", "product_id", "bk-frieren-14")["price"] == 550
    assert item(aws, "products", "product_id", "bk-frieren-14")["title"] == "葬送のフリーレン 14"


def test_an_older_revision_is_skipped_and_never_touches_the_index(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    catalog.index_product(catalog_event("new_release", {"revision": 5}), deps)
    result = catalog.index_product(catalog_event("price_change", {"price": 1, "revision": 4}), deps)
    assert result["skipped"] == "stale revision"
    assert catalog.search_products("フリーレン", 1, None, deps)[0]["price"] == 594


def test_discontinued_leaves_the_index_and_is_marked(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    catalog.index_product(catalog_event("new_release", {"revision": 1}), deps)
    catalog.index_product(catalog_event("discontinued", {"product_id": "bk-frieren-14", "revision": 2}), deps)
    assert [h["product_id"] for h in catalog.search_products("フリーレン", 5, None, deps)] == []
    assert item(aws, "products", "product_id", "bk-frieren-14")["status"] == "discontinued"


def test_search_handler_answers_and_refuses_bad_input(aws, tmp_path, monkeypatch):
    import importlib.util

    deps = FakeDeps(tmp_path)
    catalog.index_product(catalog_event("new_release", {}), deps)
    monkeypatch.setattr(catalog, "_default", deps)
    spec = importlib.util.spec_from_file_location("search_handler", ROOT / "functions" / "search" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def call(params):
        response = module.lambda_handler({"queryStringParameters": params}, None)
        return response["statusCode"], json.loads(response["body"])

    status, body = call({"q": "フリーレン", "k": "3"})
    assert status == 200 and body["results"][0]["product_id"] == "bk-frieren-14"
    for params in (None, {"q": ""}, {"q": "x" * 501}, {"q": "x", "k": "0"}, {"q": "x", "k": "lots"}, {"q": "x", "k": "21"}):
        status, body = call(params)
        assert status == 400 and body["error"] == "invalid_request"

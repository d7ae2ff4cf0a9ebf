"""The AI workers: grounded outputs, no partial results, idempotent, revision-ordered."""
from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mangaassist.deps import Deps
from mangaassist.events.publisher import PublishError
from mangaassist.models import ModelError, ModelUnavailable
from mangaassist.models.local import LocalProvider
from mangaassist.search import VectorStoreError
from mangaassist.search.embeddings import LocalEmbedder
from mangaassist.search.local_store import LocalVectorStore
from mangaassist.workers import catalog, moderation, orders

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas" / "events"
TABLES = {"orders": "order_id", "products": "product_id", "reviews": "review_id", "idempotency": "id"}
TOXIC = "You are an idiot and a moron, I will hurt you! Worst trash ever!!!"
UNAVAILABLE = ModelUnavailable([ModelError("ThrottlingException", "slow")])


def sample(source: str, detail_type: str, index: int = 0) -> dict:
    return json.loads((SCHEMAS / source / f"{detail_type}.samples.json").read_text())["valid"][index]


def handler(function: str):
    """A function's handler.py, loaded fresh: its own per-container state, as in a new Lambda."""
    spec = importlib.util.spec_from_file_location(f"{function}_handler", ROOT / "functions" / function / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


class Recorder:
    """A publisher that remembers what it was asked to send; fails the first ``fail`` calls."""

    def __init__(self, fail: int = 0):
        self.events: list = []
        self.fail = fail

    def __call__(self, events: list) -> list[str]:
        if self.fail:
            self.fail -= 1
            raise PublishError([{"ErrorCode": "InternalFailure"}], [])
        self.events += events
        return [f"id-{len(self.events) - len(events) + i}" for i in range(len(events))]

    def of(self, detail_type: str) -> list[dict]:
        return [e.detail for e in self.events if e.detail_type == detail_type]


class CountingProvider:
    """The local provider, counted; optionally failing, or answering with given texts."""

    def __init__(self, answers=(), error=None):
        self.inner, self.answers, self.error, self.calls = LocalProvider(), list(answers), error, 0

    def converse(self, messages, **kwargs):
        self.calls += 1
        if self.error:
            raise self.error
        completion = self.inner.converse(messages, **kwargs)
        return replace(completion, text=self.answers.pop(0)) if self.answers else completion


class FakeDeps(Deps):
    """Real tables (moto), embedder and store (local, under tmp_path); fake model and publisher."""

    def __init__(self, tmp_path, provider=None, publisher=None):
        self.provider = provider or CountingProvider()
        self.embedder = LocalEmbedder()
        self.store = LocalVectorStore(data_dir=tmp_path)
        self.publisher = publisher or Recorder()

    def publish(self, events):
        return self.publisher(events)


@pytest.fixture
def aws(platform_env):
    with mock_aws():
        ddb = boto3.client("dynamodb")
        for name, key in TABLES.items():
            ddb.create_table(TableName=f"test-{name}", BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
        yield boto3.resource("dynamodb")


def item(resource, table: str, key: str, value: str):
    return resource.Table(f"test-{table}").get_item(Key={key: value}).get("Item")


def rows(resource, table: str) -> list[dict]:
    return resource.Table(f"test-{table}").scan()["Items"]


def review_event(text: str, review_id: str = "rev_1") -> dict:
    event = sample("mangaassist.reviews", "ReviewSubmitted")
    return {**event, "id": f"evt-{review_id}", "detail": {**event["detail"], "review_id": review_id, "text": text}}


def catalog_event(kind: str, detail: dict) -> dict:
    event = sample("mangaassist.catalog", f"CatalogUpdate.{kind}")
    return {**event, "id": f"evt-{kind}-{detail.get('revision')}", "detail": {**event["detail"], **detail}}


def payment_event() -> dict:
    return sample("mangaassist.payments", "PaymentCompleted")


# What each worker publishes in its main cases, for the contract test.
SCENARIOS = {
    "order": (lambda deps: orders.confirm_order(payment_event(), deps), {}),
    "toxic review": (lambda deps: moderation.moderate_review(review_event(TOXIC), deps), {}),
    "unusable answers": (lambda deps: moderation.moderate_review(review_event("ok"), deps), {"answers": ["?", "?"]}),
}


# --- order confirmation ----------------------------------------------------------------------
def test_order_confirmation_is_grounded_stored_and_announced(aws, tmp_path):
    aws.Table("test-products").put_item(Item={"product_id": "bk-onepiece-107", "title": "ONE PIECE 107 (ワンピース)"})
    deps = FakeDeps(tmp_path)
    summary = orders.confirm_order(payment_event(), deps)
    order = item(aws, "orders", "order_id", "ord_1001")
    text = order["confirmation"]["text"]
    assert "ONE PIECE 107 (ワンピース)" in text, "the catalog's title wins over the payment's"
    assert "¥1,500" in text and "¥" not in text.replace("¥1,500", ""), "no other price is invented"
    assert "never add" not in text, "the instructions are not restated as facts"
    assert order["status"] == "paid" and order["payment_id"] == "pi_3QmangaIntent0001"
    assert order["amount"] == 1500 and order["currency"] == "JPY" and order["items"][0]["quantity"] == 1
    assert order["confirmation"]["model_id"] == "local.grounded-v1" and order["confirmation"]["generated_at"]
    assert [e.detail_type for e in deps.publisher.events] == ["OrderConfirmationGenerated", "InferenceCompleted"]
    (confirmation,) = deps.publisher.of("OrderConfirmationGenerated")
    (usage,) = deps.publisher.of("InferenceCompleted")
    assert confirmation["text"] == text and confirmation["order_id"] == "ord_1001"
    assert usage["request_id"] == confirmation["request_id"] == order["confirmation"]["request_id"]
    assert usage["feature"] == "order_confirmation" and usage["provider"] == "local"
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0 and usage["estimated_cost_usd"] >= 0
    assert summary["events"] == ["id-0", "id-1"]


def test_order_titles_missing_from_the_catalog_come_from_the_payment(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    orders.confirm_order(payment_event(), deps)
    assert "ONE PIECE 107" in item(aws, "orders", "order_id", "ord_1001")["confirmation"]["text"]


@pytest.mark.parametrize("work", [
    lambda deps: orders.confirm_order(payment_event(), deps),
    lambda deps: moderation.moderate_review(review_event("great"), deps),
], ids=["order", "review"])
def test_without_a_model_nothing_is_stored_or_published(aws, tmp_path, work):
    deps = FakeDeps(tmp_path, provider=CountingProvider(error=UNAVAILABLE))
    with pytest.raises(ModelUnavailable):
        work(deps)
    assert rows(aws, "orders") == rows(aws, "reviews") == [] and deps.publisher.events == []


def test_a_failed_publish_raises_and_the_retry_completes_once(aws, tmp_path, monkeypatch):
    deps = FakeDeps(tmp_path, publisher=Recorder(fail=1))
    monkeypatch.setattr(orders, "_default", deps)
    lambda_handler = handler("order_confirmation")
    with pytest.raises(PublishError):
        lambda_handler(payment_event(), None)
    lambda_handler(payment_event(), None)  # EventBridge retries: the claim was released
    assert len(rows(aws, "orders")) == 1 and len(deps.publisher.of("OrderConfirmationGenerated")) == 1
    assert deps.provider.calls == 2


def test_a_duplicate_delivery_runs_once_and_a_replay_runs_again(aws, tmp_path, monkeypatch):
    deps = FakeDeps(tmp_path)
    monkeypatch.setattr(moderation, "_default", deps)
    lambda_handler = handler("review_moderation")
    event = review_event("Lovely art.")
    first = lambda_handler(event, None)
    assert lambda_handler(event, None) == first and deps.provider.calls == 1
    lambda_handler({**event, "replay-name": "fix-1"}, None)
    assert deps.provider.calls == 2 and len(deps.publisher.of("ReviewModerated")) == 2


def test_workers_refuse_events_that_break_the_contract(aws, tmp_path, monkeypatch):
    from mangaassist.contracts import ContractError

    deps = FakeDeps(tmp_path)
    monkeypatch.setattr(orders, "_default", deps)
    bad = payment_event()
    bad["detail"] = {**bad["detail"], "amount": -1}
    with pytest.raises(ContractError):
        handler("order_confirmation")(bad, None)
    assert deps.provider.calls == 0


# --- review moderation -----------------------------------------------------------------------
def test_toxic_review_is_quarantined_and_flagged(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    assert moderation.moderate_review(review_event(TOXIC), deps)["decision"] == "quarantined"
    stored = item(aws, "reviews", "review_id", "rev_1")
    assert stored["status"] == "quarantined" and stored["text"] == TOXIC and stored["rating"] == 5
    assert stored["customer_id"] == "cust_77" and stored["moderation"]["max_severity"] in ("high", "critical")
    assert stored["moderation"]["model_id"] == "local.grounded-v1"
    (flag,) = deps.publisher.of("ModerationFlagged")
    assert flag["severity"] == stored["moderation"]["max_severity"] and flag["categories"]
    assert deps.publisher.of("ReviewModerated")[0]["decision"] == "quarantined"
    (usage,) = deps.publisher.of("InferenceCompleted")
    assert usage["feature"] == "moderation" and usage["input_tokens"] > 0 and usage["correlation_id"] == "evt-rev_1"


def test_clean_review_is_approved_and_not_flagged(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    result = moderation.moderate_review(review_event("最高の巻でした！ The art is wonderful."), deps)
    assert result["decision"] == "approved"
    assert item(aws, "reviews", "review_id", "rev_1")["status"] == "approved"
    assert deps.publisher.of("ModerationFlagged") == []
    assert deps.publisher.of("ReviewModerated")[0]["sentiment"]["label"] == "positive"


def test_junk_answers_get_one_retry_then_need_a_person(aws, tmp_path):
    deps = FakeDeps(tmp_path, provider=CountingProvider(answers=["sure! it's fine", '{"categories": "none"}']))
    assert moderation.moderate_review(review_event("ok"), deps)["decision"] == "needs_review"
    assert deps.provider.calls == 2 and item(aws, "reviews", "review_id", "rev_1")["status"] == "needs_review"
    assert len(deps.publisher.of("InferenceCompleted")) == 2, "every model call is counted"
    assert deps.publisher.of("ModerationFlagged") == []


def test_a_fenced_answer_is_accepted_after_a_corrective_retry(aws, tmp_path):
    good = '```json\n{"categories": [], "sentiment": {"label": "neutral", "score": 0}}\n```'
    deps = FakeDeps(tmp_path, provider=CountingProvider(answers=["nope", good]))
    assert moderation.moderate_review(review_event("ok"), deps)["decision"] == "approved"


@pytest.mark.parametrize("text, problem", [
    ("{", "not JSON"),
    ('{"categories": [{"name": "toxicity", "severity": "extreme"}], "sentiment": {"label": "neutral", "score": 0}}',
     "categories/0/severity"),
    ('{"categories": [], "sentiment": {"label": "neutral", "score": 3}}', "sentiment/score"),
    ('{"categories": []}', "answer"),
])
def test_parse_moderation_names_the_problem(text, problem):
    result, why = moderation.parse_moderation(text)
    assert result is None and problem in why


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_published_details_honour_their_contracts(aws, tmp_path, scenario):
    contracts = pytest.importorskip("mangaassist.contracts")
    work, provider = SCENARIOS[scenario]
    deps = FakeDeps(tmp_path, provider=CountingProvider(**provider))
    work(deps)
    checked = 0
    for event in deps.publisher.events:
        if (SCHEMAS / event.source / f"{event.detail_type}.schema.json").exists():
            contracts.validate_detail(event.source, event.detail_type, event.detail)
            checked += 1
    if not checked:
        pytest.skip("no schema for what this worker publishes yet")


# --- catalog indexer and search ---------------------------------------------------------------
def test_new_release_becomes_searchable_and_price_changes_follow(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    assert catalog.index_product(catalog_event("new_release", {}), deps)["indexed"]
    other = {"product_id": "bk-other", "title": "Cooking Daddy", "author": "X", "synopsis": "A father cooks.",
             "genres": ["slice of life"]}
    catalog.index_product(catalog_event("new_release", other), deps)
    hits = catalog.search_products("フリーレン", 5, None, deps)
    assert hits[0]["product_id"] == "bk-frieren-14" and hits[0]["price"] == 594 and hits[0]["author"] == "山田鐘人"
    assert [h["product_id"] for h in catalog.search_products("フリーレン", 5, "slice of life", deps)] == ["bk-other"]
    catalog.index_product(sample("mangaassist.catalog", "CatalogUpdate.price_change"), deps)
    assert catalog.search_products("フリーレン", 1, None, deps)[0]["price"] == 550
    stored = item(aws, "products", "product_id", "bk-frieren-14")
    assert stored["price"] == 550 and stored["revision"] == 4 and stored["title"] == "葬送のフリーレン 14"
    assert stored["synopsis"] == "Frieren's journey north continues.", "fields the update does not carry are kept"


def test_an_older_revision_is_skipped_and_never_touches_the_index(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    catalog.index_product(catalog_event("new_release", {"revision": 5}), deps)
    result = catalog.index_product(catalog_event("price_change", {"price": 1, "revision": 4}), deps)
    assert result["skipped"] == "stale revision"
    assert catalog.search_products("フリーレン", 1, None, deps)[0]["price"] == 594
    assert item(aws, "products", "product_id", "bk-frieren-14")["price"] == 594


def test_a_failed_index_write_is_redone_by_the_retry_of_the_same_revision(aws, tmp_path, monkeypatch):
    deps = FakeDeps(tmp_path)
    def busy(docs):
        raise VectorStoreError(503, "busy")

    event = catalog_event("new_release", {})
    with monkeypatch.context() as patch:
        patch.setattr(deps.store, "upsert", busy)
        with pytest.raises(VectorStoreError):
            catalog.index_product(event, deps)
    assert item(aws, "products", "product_id", "bk-frieren-14")["revision"] == 3, "the table went first"
    assert catalog.index_product(event, deps)["indexed"]
    assert catalog.search_products("フリーレン", 1, None, deps)[0]["product_id"] == "bk-frieren-14"


def test_a_price_change_before_its_release_waits_for_it(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    with pytest.raises(LookupError):  # EventBridge retries it after the release arrives
        catalog.index_product(sample("mangaassist.catalog", "CatalogUpdate.price_change"), deps)
    assert rows(aws, "products") == [] and catalog.search_products("フリーレン", 5, None, deps) == []


def test_discontinued_leaves_the_index_and_is_marked(aws, tmp_path):
    deps = FakeDeps(tmp_path)
    catalog.index_product(catalog_event("new_release", {"revision": 1}), deps)
    catalog.index_product(catalog_event("discontinued", {"product_id": "bk-frieren-14", "revision": 2}), deps)
    assert catalog.search_products("フリーレン", 5, None, deps) == []
    stored = item(aws, "products", "product_id", "bk-frieren-14")
    assert stored["status"] == "discontinued" and stored["discontinued_reason"] == "out of print"
    assert catalog.index_product(catalog_event("new_release", {"revision": 1}), deps)["skipped"], "no revival"


def test_search_handler_answers_and_refuses_bad_input(aws, monkeypatch):
    monkeypatch.setattr(catalog, "_default", Deps())  # the real dependencies, from the environment
    handler("catalog_indexer")(sample("mangaassist.catalog", "CatalogUpdate.new_release"), None)
    lambda_handler = handler("search")

    def call(params):
        response = lambda_handler({"httpMethod": "GET", "path": "/v1/search", "queryStringParameters": params}, None)
        return response["statusCode"], json.loads(response["body"])

    status, body = call({"q": " フリーレン ", "k": "3", "genre": "fantasy"})
    assert status == 200 and body["query"] == "フリーレン"
    assert body["results"][0]["product_id"] == "bk-frieren-14"
    assert set(body["results"][0]) == {"product_id", "title", "author", "price", "currency", "score"}
    assert call({"q": "フリーレン", "genre": "romance"}) == (200, {"query": "フリーレン", "results": []})
    for params in (None, {"q": ""}, {"q": "  "}, {"q": "x" * 501}, {"q": "x", "k": "0"}, {"q": "x", "k": "lots"},
                   {"q": "x", "k": "21"}, {"q": "x", "k": "-1"}, {"q": "x", "k": ""}):
        status, body = call(params)
        assert status == 400 and body["error"] == "invalid_request" and body["message"], params


def test_deps_keep_one_table_object_per_name(monkeypatch):
    monkeypatch.setenv("ORDERS_TABLE", "orders-t")
    monkeypatch.setenv("PRODUCTS_TABLE", "products-t")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    deps = Deps()
    orders = deps.table("orders")
    assert deps.table("orders") is orders and orders.name == "orders-t"
    assert deps.table("products").name == "products-t"

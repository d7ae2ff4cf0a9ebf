"""mangaassist.search: the local and Titan embedders, the local vector store and the OpenSearch
Serverless store (SigV4-signed requests against a fake requests session, no sockets)."""
from __future__ import annotations

import hashlib
import io
import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.response import StreamingBody
from botocore.stub import Stubber

from mangaassist import search, settings
from mangaassist.search import Doc, EmbeddingError, Hit, LocalEmbedder, TitanEmbedder, VectorStoreError
from mangaassist.search.local_store import LocalVectorStore
from mangaassist.search.opensearch import OpenSearchVectorStore

LAYER = Path(__file__).resolve().parents[2] / "layers" / "shared" / "python"
ENDPOINT = "https://abc123xyz.ap-northeast-1.aoss.amazonaws.com"


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


# --- local embedder --------------------------------------------------------------------------

def test_local_embeddings_are_unit_vectors_of_the_configured_dimension():
    vectors = LocalEmbedder(dimension=128).embed(["One Piece volume 107", "進撃の巨人 第34巻", "!"])
    assert [len(v) for v in vectors] == [128, 128, 128]
    for vector in vectors[:2]:
        assert math.isclose(math.sqrt(dot(vector, vector)), 1.0)
    assert vectors[2] == [0.0] * 128  # nothing to hash: the zero vector, not a division by zero


def test_local_embeddings_are_the_same_in_every_process():
    text = "ワンピース 107巻 / One Piece vol. 107"
    code = (f"import sys, json; sys.path.insert(0, {str(LAYER)!r}); from mangaassist.search import LocalEmbedder; "
            f"print(json.dumps(LocalEmbedder().embed([{text!r}])[0]))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert json.loads(runs[0]) == json.loads(runs[1]) == LocalEmbedder().embed([text])[0]


def test_similar_titles_score_higher_than_unrelated_ones():
    embed = LocalEmbedder().embed
    query, near, far = embed(["One Piece Volume 107", "one piece vol. 107", "Cooking recipes for beginners"])
    assert dot(query, near) > 0.5 > dot(query, far) + 0.3


def test_japanese_titles_match_by_their_characters():
    embed = LocalEmbedder().embed
    titan, titan_short, demon = embed(["進撃の巨人 第34巻", "進撃の巨人", "鬼滅の刃 第23巻"])
    assert dot(titan, titan_short) > dot(titan, demon)
    giant, = embed(["巨人"])  # a word inside a title written without spaces
    assert dot(giant, titan_short) > dot(giant, demon) + 0.1
    fullwidth, = embed(["ＯＮＥ　ＰＩＥＣＥ"])  # NFKC: full-width letters are the same text
    assert dot(fullwidth, embed(["one piece"])[0]) == pytest.approx(1.0)


# --- Titan Text Embeddings v2 ----------------------------------------------------------------

@pytest.fixture
def bedrock():
    client = boto3.client("bedrock-runtime", region_name="ap-northeast-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def titan_response(embedding, tokens):
    payload = json.dumps({"embedding": embedding, "inputTextTokenCount": tokens}).encode()
    return {"body": StreamingBody(io.BytesIO(payload), len(payload)), "contentType": "application/json"}


def titan_request(text, dimension=256):
    return {"modelId": "amazon.titan-embed-text-v2:0", "contentType": "application/json",
            "accept": "application/json",
            "body": json.dumps({"inputText": text, "dimensions": dimension, "normalize": True})}


def test_titan_embeds_one_text_per_invoke_model_call(bedrock):
    client, stubber = bedrock
    first, second = [0.6, 0.8] + [0.0] * 510, [0.0, 1.0] + [0.0] * 510
    stubber.add_response("invoke_model", titan_response(first, 5), titan_request("One Piece", 512))
    stubber.add_response("invoke_model", titan_response(second, 7), titan_request("進撃の巨人", 512))
    embedder = TitanEmbedder(dimension=512, client=client)
    assert embedder.embed(["One Piece", "進撃の巨人"]) == [first, second]
    assert embedder.dimension == 512


def test_titan_errors_carry_the_service_code(bedrock):
    client, stubber = bedrock
    stubber.add_client_error("invoke_model", "ValidationException", "Input is too long", 400,
                             expected_params=titan_request("x" * 10))
    with pytest.raises(EmbeddingError) as caught:
        TitanEmbedder(client=client).embed(["x" * 10])
    assert caught.value.code == "ValidationException"


def test_titan_accepts_only_its_dimensions():
    with pytest.raises(ValueError):
        TitanEmbedder(dimension=300)


def search_settings(monkeypatch, **values):
    defaults = {"EMBEDDINGS_PROVIDER": "local", "EMBEDDINGS_MODEL_ID": "amazon.titan-embed-text-v2:0",
                "EMBEDDINGS_DIMENSION": "256", "VECTOR_STORE": "local", "VECTOR_INDEX": "products",
                "LOCAL_DATA_DIR": "/nowhere"}
    for name, value in {**defaults, **values}.items():
        monkeypatch.setenv(name, value)
    settings.reload()


def test_get_embedder_follows_the_settings(monkeypatch):
    search_settings(monkeypatch, EMBEDDINGS_DIMENSION="512")
    local = search.get_embedder()
    assert isinstance(local, LocalEmbedder) and local.dimension == 512
    search_settings(monkeypatch, EMBEDDINGS_DIMENSION="512", EMBEDDINGS_PROVIDER="bedrock")
    titan = search.get_embedder()
    assert isinstance(titan, TitanEmbedder) and (titan.model_id, titan.dimension) == ("amazon.titan-embed-text-v2:0",
                                                                                       512)
    search_settings(monkeypatch, EMBEDDINGS_PROVIDER="openai")
    with pytest.raises(settings.MissingSetting, match="EMBEDDINGS_PROVIDER"):
        search.get_embedder()
    search_settings(monkeypatch, EMBEDDINGS_DIMENSION="wide")
    with pytest.raises(settings.MissingSetting, match="EMBEDDINGS_DIMENSION='wide' is not valid"):
        search.get_embedder()


# --- local vector store ----------------------------------------------------------------------

CATALOG = {
    "op-107": ("One Piece 107", {"title": "One Piece 107", "genres": ["action", "adventure"], "lang": "ja"}),
    "aot-34": ("進撃の巨人 34", {"title": "進撃の巨人 34", "genres": ["action", "dark fantasy"], "lang": "ja"}),
    "frieren-1": ("Frieren: Beyond Journey's End 1", {"title": "Frieren 1", "genres": ["fantasy"], "lang": "en"}),
    "cook-1": ("Cooking with Wild Game 1", {"title": "Cooking with Wild Game 1", "genres": ["food"], "lang": "en"}),
}


def catalog_docs():
    embed = LocalEmbedder().embed
    return [Doc(doc_id, vector, fields) for (doc_id, (_, fields)), vector
            in zip(CATALOG.items(), embed([text for text, _ in CATALOG.values()]))]


@pytest.fixture
def store(tmp_path):
    store = LocalVectorStore(tmp_path)
    store.ensure_index()
    store.upsert(catalog_docs())
    return store


def query_vector(text):
    return LocalEmbedder().embed([text])[0]


def test_local_store_ranks_by_cosine(store):
    hits = store.query(query_vector("one piece vol 107"), k=2)
    assert [hit.id for hit in hits][0] == "op-107" and len(hits) == 2
    assert hits[0].score > hits[1].score
    assert hits[0].fields == CATALOG["op-107"][1]
    assert store.query(query_vector("進撃の巨人"), k=1)[0].id == "aot-34"


def test_local_store_filters_by_equality_list_membership_and_any_of(store):
    vector = query_vector("manga")
    assert {h.id for h in store.query(vector, k=10, filters={"lang": "en"})} == {"frieren-1", "cook-1"}
    assert {h.id for h in store.query(vector, k=10, filters={"genres": "action"})} == {"op-107", "aot-34"}
    assert {h.id for h in store.query(vector, k=10, filters={"genres": ["food", "fantasy"], "lang": "en"})} == {
        "frieren-1", "cook-1"}
    assert store.query(vector, k=10, filters={"lang": "fr"}) == []


def test_local_store_upserts_replace_and_deletes_remove(store):
    store.upsert([Doc("op-107", query_vector("One Piece 107"), {"title": "One Piece 107", "lang": "en"})])
    store.delete(["cook-1", "missing"])
    hits = store.query(query_vector("One Piece"), k=10)
    assert [h.id for h in hits].count("op-107") == 1 and "cook-1" not in {h.id for h in hits}
    assert next(h for h in hits if h.id == "op-107").fields["lang"] == "en"


def test_local_store_persists_across_instances(store, tmp_path):
    other = LocalVectorStore(tmp_path)
    assert {h.id for h in other.query(query_vector("x"), k=10)} == set(CATALOG)
    other.delete(["op-107"])
    assert "op-107" not in {h.id for h in store.query(query_vector("One Piece 107"), k=10)}
    assert {p.name for p in (tmp_path / "vectors").iterdir()} <= {"products.sqlite3", "products.sqlite3-wal",
                                                                   "products.sqlite3-shm"}  # no temporary files left


def test_local_store_is_thread_safe(tmp_path):
    stores = [LocalVectorStore(tmp_path, index="threads") for _ in range(2)]
    vector = [1.0, 0.0]

    def write(worker):
        for i in range(20):
            stores[worker % 2].upsert([Doc(f"{worker}-{i}", vector, {"worker": worker})])

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(LocalVectorStore(tmp_path, index="threads").query(vector, k=1000)) == 120


def test_local_store_sees_another_process_writes(store, tmp_path):
    code = (f"import sys; sys.path.insert(0, {str(LAYER)!r}); from mangaassist.search import Doc; "
            "from mangaassist.search.local_store import LocalVectorStore as S; "
            f"s = S({str(tmp_path)!r}); s.delete(['cook-1']); s.upsert([Doc('new-1', {query_vector('new title')!r}, "
            "{'title': 'new'})])")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    ids = {h.id for h in store.query(query_vector("x"), k=10)}
    assert "new-1" in ids and "cook-1" not in ids


def test_a_json_index_of_the_earlier_store_is_imported_once(tmp_path):
    vectors = tmp_path / "vectors"
    vectors.mkdir()
    (vectors / "products.json").write_text(json.dumps({"version": 1, "docs": {
        "op-107": {"vector": [1.0, 0.0], "fields": {"title": "One Piece 107"}}}}))
    store = LocalVectorStore(tmp_path)
    assert [h.id for h in store.query([1.0, 0.0], k=5)] == ["op-107"]
    assert (vectors / "products.json.imported").exists() and not (vectors / "products.json").exists()


def test_ties_rank_by_id_and_k_bounds_the_hits(tmp_path):
    store = LocalVectorStore(tmp_path, index="ties")
    store.upsert([Doc(doc_id, [1.0, 0.0], {}) for doc_id in ("b", "a", "c")] + [Doc("z", [0.0, 1.0], {})])
    assert [h.id for h in store.query([1.0, 0.0], k=2)] == ["a", "b"]
    assert [h.id for h in store.query([1.0, 0.0], k=10)] == ["a", "b", "c", "z"]
    assert store.query([0.0, 0.0], k=1)[0].score == 0.0  # a zero vector scores 0, no division by zero


def test_a_damaged_index_is_moved_aside_by_the_check(tmp_path):
    from mangaassist.search.local_store import check

    store = LocalVectorStore(tmp_path, index="broken")
    store.upsert([Doc("a", [1.0], {})])
    (tmp_path / "vectors" / "junk.sqlite3").write_bytes(b"not a database at all" * 100)
    notes = check(tmp_path)
    assert len(notes) == 1 and "junk.sqlite3: damaged" in notes[0]
    assert (tmp_path / "vectors" / "junk.damaged").exists() and (tmp_path / "vectors" / "broken.sqlite3").exists()


def test_local_store_rejects_a_vector_of_another_dimension(store):
    with pytest.raises(VectorStoreError, match="dimension"):
        store.query([1.0, 0.0], k=1)


# --- OpenSearch Serverless -------------------------------------------------------------------

class FakeAOSS:
    """A requests.Session whose send() records each prepared request and answers from a script."""

    def __init__(self, monkeypatch, *answers):
        self.session = requests.Session()
        self.answers = list(answers)  # (status, JSON body or bytes)
        self.sent: list[requests.PreparedRequest] = []
        monkeypatch.setattr(self.session, "send", self.send)

    def send(self, prepared, **kwargs):
        self.sent.append(prepared)
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.request = prepared
        return response

    def calls(self):
        return [(request.method, request.path_url) for request in self.sent]

    def body(self, index):
        return json.loads(self.sent[index].body)


def aoss(fake, **options):
    return OpenSearchVectorStore(ENDPOINT, session=fake.session, credentials=Credentials("AKIDEXAMPLE", "SECRET"),
                                 **options)


def search_response(*hits):
    return {"took": 3, "timed_out": False,
            "hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": list(hits)}}


def test_requests_are_signed_for_aoss(monkeypatch):
    fake = FakeAOSS(monkeypatch, (200, b""))
    aoss(fake).ensure_index()
    request = fake.sent[0]
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/ap-northeast-1/aoss/aws4_request" in authorization
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-content-sha256", "x-amz-date"} <= set(signed)
    assert request.headers["x-amz-content-sha256"] == hashlib.sha256(b"").hexdigest()
    assert request.url == f"{ENDPOINT}/products"


def test_the_signature_covers_the_bytes_sent(monkeypatch):
    fake = FakeAOSS(monkeypatch, (200, search_response()))
    aoss(fake).query([0.6, 0.8], k=1, filters={"lang": "ja"})
    sent = fake.sent[0]
    signed = sent.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    replay = AWSRequest(method=sent.method, url=sent.url, data=sent.body,
                        headers={name: sent.headers[name] for name in signed if name != "host"})
    replay.context["timestamp"] = sent.headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials("AKIDEXAMPLE", "SECRET"), "aoss", "ap-northeast-1")
    signature = auth.signature(auth.string_to_sign(replay, auth.canonical_request(replay)), replay)
    assert sent.headers["Authorization"].endswith(f"Signature={signature}")
    assert sent.headers["x-amz-content-sha256"] == hashlib.sha256(sent.body).hexdigest()


def test_session_credentials_add_the_security_token(monkeypatch):
    fake = FakeAOSS(monkeypatch, (200, b""))
    OpenSearchVectorStore(ENDPOINT, session=fake.session, credentials=Credentials("ASIA", "SECRET", "TOKEN")
                          ).ensure_index()
    assert fake.sent[0].headers["X-Amz-Security-Token"] == "TOKEN"
    assert "x-amz-security-token" in fake.sent[0].headers["Authorization"]


def test_ensure_index_creates_a_faiss_hnsw_inner_product_index_when_missing(monkeypatch):
    fake = FakeAOSS(monkeypatch, (404, b""), (200, {"acknowledged": True, "index": "products"}))
    aoss(fake, dimension=512).ensure_index()
    assert fake.calls() == [("HEAD", "/products"), ("PUT", "/products")]
    body = fake.body(1)
    assert body["settings"] == {"index": {"knn": True}}
    assert body["mappings"]["properties"]["vector"] == {
        "type": "knn_vector", "dimension": 512,
        "method": {"engine": "faiss", "name": "hnsw", "space_type": "innerproduct"}}
    assert body["mappings"]["properties"]["doc_id"] == {"type": "keyword"}
    assert body["mappings"]["dynamic_templates"][0]["strings_as_keywords"]["mapping"]["type"] == "keyword"
    assert fake.sent[1].headers["x-amz-content-sha256"] == hashlib.sha256(fake.sent[1].body).hexdigest()


def test_ensure_index_leaves_an_existing_index_alone(monkeypatch):
    fake = FakeAOSS(monkeypatch, (200, b""))
    aoss(fake).ensure_index()
    assert fake.calls() == [("HEAD", "/products")]


def test_ensure_index_tolerates_losing_a_creation_race(monkeypatch):
    exists = {"error": {"type": "resource_already_exists_exception", "reason": "index [products] already exists"},
              "status": 400}
    fake = FakeAOSS(monkeypatch, (404, b""), (400, exists))
    aoss(fake).ensure_index()
    fake = FakeAOSS(monkeypatch, (404, b""), (400, {"error": {"type": "mapper_parsing_exception"}, "status": 400}))
    with pytest.raises(VectorStoreError) as caught:
        aoss(fake).ensure_index()
    assert caught.value.status == 400 and "mapper_parsing_exception" in caught.value.message


def test_upsert_replaces_earlier_copies_in_one_bulk_request(monkeypatch):
    bulk_ok = {"took": 12, "errors": False, "items": [
        {"delete": {"_index": "products", "_id": "1%3A0%3AxQ", "status": 200, "result": "deleted"}},
        {"index": {"_index": "products", "_id": "1%3A0%3AyR", "status": 201, "result": "created"}},
        {"index": {"_index": "products", "_id": "1%3A0%3AzS", "status": 201, "result": "created"}}]}
    fake = FakeAOSS(monkeypatch, (200, search_response({"_index": "products", "_id": "1%3A0%3AxQ", "_score": 1.0})),
                    (200, bulk_ok))
    aoss(fake).upsert([Doc("op-107", [0.6, 0.8], {"title": "ワンピース 107", "genres": ["action"]}),
                       Doc("aot-34", [1.0, 0.0], {"title": "進撃の巨人 34"})])
    assert fake.calls() == [("POST", "/products/_search"), ("POST", "/products/_bulk")]
    assert fake.body(0) == {"size": 10000, "_source": False, "query": {"terms": {"doc_id": ["op-107", "aot-34"]}}}
    bulk = fake.sent[1]
    assert bulk.headers["Content-Type"] == "application/x-ndjson"
    assert bulk.headers["x-amz-content-sha256"] == hashlib.sha256(bulk.body).hexdigest()
    assert bulk.body.endswith(b"\n")
    assert [json.loads(line) for line in bulk.body.decode().splitlines()] == [
        {"delete": {"_id": "1%3A0%3AxQ"}},
        {"index": {}},
        {"title": "ワンピース 107", "genres": ["action"], "doc_id": "op-107", "vector": [0.6, 0.8]},
        {"index": {}},
        {"title": "進撃の巨人 34", "doc_id": "aot-34", "vector": [1.0, 0.0]},
    ]


def test_bulk_item_errors_raise(monkeypatch):
    failed = {"took": 3, "errors": True, "items": [{"index": {
        "_index": "products", "status": 400,
        "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [vector]"}}}]}
    fake = FakeAOSS(monkeypatch, (200, search_response()), (200, failed))
    with pytest.raises(VectorStoreError) as caught:
        aoss(fake).upsert([Doc("op-107", [0.6, 0.8, 0.0], {})])
    assert caught.value.status == 400
    assert "1 of 1 bulk actions failed" in caught.value.message and "failed to parse field" in caught.value.message


def test_delete_removes_every_copy_and_skips_the_bulk_when_none(monkeypatch):
    fake = FakeAOSS(monkeypatch,
                    (200, search_response({"_id": "a1", "_score": 1.0}, {"_id": "a2", "_score": 1.0})),
                    (200, {"took": 2, "errors": False, "items": [{"delete": {"_id": "a1", "status": 200}},
                                                                 {"delete": {"_id": "a2", "status": 200}}]}),
                    (200, search_response()))
    store = aoss(fake)
    store.delete(["op-107"])
    store.delete(["never-indexed"])
    assert fake.calls() == [("POST", "/products/_search"), ("POST", "/products/_bulk"), ("POST", "/products/_search")]
    assert fake.sent[1].body == b'{"delete": {"_id": "a1"}}\n{"delete": {"_id": "a2"}}\n'


def test_query_sends_a_filtered_knn_search_and_reads_the_hits(monkeypatch):
    fake = FakeAOSS(monkeypatch, (200, search_response(
        {"_id": "x1", "_score": 1.92, "_source": {"doc_id": "op-107", "title": "One Piece 107", "lang": "ja"}},
        {"_id": "x0", "_score": 1.90, "_source": {"doc_id": "op-107", "title": "One Piece 107 (old)"}},
        {"_id": "x2", "_score": 1.41, "_source": {"doc_id": "aot-34", "title": "進撃の巨人 34", "lang": "ja"}},
    )))
    hits = aoss(fake).query([0.6, 0.8], k=3, filters={"lang": "ja", "genres": ["action", "fantasy"]})
    assert fake.body(0) == {
        "size": 3,
        "_source": {"excludes": ["vector"]},
        "query": {"knn": {"vector": {"vector": [0.6, 0.8], "k": 3, "filter": {"bool": {"filter": [
            {"term": {"lang": "ja"}}, {"terms": {"genres": ["action", "fantasy"]}}]}}}}},
    }
    assert hits == [Hit("op-107", 1.92, {"title": "One Piece 107", "lang": "ja"}),
                    Hit("aot-34", 1.41, {"title": "進撃の巨人 34", "lang": "ja"})]


def test_http_errors_raise_with_status_and_body(monkeypatch):
    fake = FakeAOSS(monkeypatch, (403, {"status": 403, "message": "User does not have permissions for the requested "
                                                                  "resource"}))
    with pytest.raises(VectorStoreError) as caught:
        aoss(fake).query([1.0, 0.0], k=1)
    assert caught.value.status == 403 and "does not have permissions" in caught.value.message


def test_get_vector_store_follows_the_settings(monkeypatch, tmp_path):
    search_settings(monkeypatch, LOCAL_DATA_DIR=str(tmp_path), VECTOR_INDEX="catalog")
    local = search.get_vector_store()
    assert isinstance(local, LocalVectorStore) and local.path == tmp_path.resolve() / "vectors" / "catalog.sqlite3"
    search_settings(monkeypatch, VECTOR_STORE="opensearch", VECTOR_INDEX="catalog")
    with pytest.raises(settings.MissingSetting, match="OPENSEARCH_ENDPOINT is not set"):
        search.get_vector_store()
    search_settings(monkeypatch, VECTOR_STORE="opensearch", VECTOR_INDEX="catalog", EMBEDDINGS_DIMENSION="1024",
                    OPENSEARCH_ENDPOINT="abc123xyz.us-west-2.aoss.amazonaws.com")
    remote = search.get_vector_store()
    assert (remote.endpoint, remote.region, remote.index, remote.dimension) == (
        "https://abc123xyz.us-west-2.aoss.amazonaws.com", "us-west-2", "catalog", 1024)

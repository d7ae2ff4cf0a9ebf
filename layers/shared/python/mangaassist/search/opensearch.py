"""The vector store on an OpenSearch Serverless (AOSS) vector search collection, over HTTPS
signed with SigV4 for the ``aoss`` service (with the ``x-amz-content-sha256`` header AOSS needs).

Document ids: vector search collections reject a custom ``_id`` on index and create (400
"Document ID is not supported in create/index operation request"; the AWS guide: "For time
series and vector search collections, you can't index by custom document ID or update by
upsert requests"). So each document keeps its id in the keyword field ``doc_id``: an upsert
looks up the engine's ``_id`` of those doc_ids and sends one ``_bulk`` that deletes them and
indexes the new versions; a delete looks them up and deletes them. AOSS makes writes
searchable after a few seconds and has no refresh API, so an upsert right after another can
miss the first copy: queries keep only the best hit per doc_id, and the next upsert of that id
removes the stray copy. ``doc_id`` and ``vector`` are therefore reserved field names.

String fields are mapped as keywords (exact-match filters); strings over 256 characters stay
in ``_source`` but are not indexed.
"""
from __future__ import annotations

import hashlib
import json
import re

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from mangaassist.search import DEFAULT_INDEX, Doc, Hit, VectorStoreError
from mangaassist.search.embeddings import DEFAULT_DIMENSION

ID_FIELD, VECTOR_FIELD = "doc_id", "vector"
MAX_LOOKUP = 10_000  # OpenSearch's default index.max_result_window
REGION_IN_HOST = re.compile(r"\.([a-z0-9-]+)\.aoss\.amazonaws\.com$")


class OpenSearchVectorStore:
    def __init__(self, endpoint: str, *, index: str = DEFAULT_INDEX, dimension: int = DEFAULT_DIMENSION,
                 region: str | None = None, session: requests.Session | None = None, credentials=None,
                 timeout: float = 10.0):
        self.endpoint = (endpoint if "://" in endpoint else f"https://{endpoint}").rstrip("/")
        self.region = region or _region_of(self.endpoint)
        self.index = index
        self.dimension = dimension
        self.timeout = timeout
        self._session = session or requests.Session()
        self._credentials = credentials

    def ensure_index(self) -> None:
        if self._request("HEAD", f"/{self.index}", allowed=(404,)).status_code != 404:
            return
        body = {
            "settings": {"index": {"knn": True}},
            "mappings": {
                "dynamic_templates": [{"strings_as_keywords": {
                    "match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 256}}}],
                "properties": {
                    ID_FIELD: {"type": "keyword"},
                    VECTOR_FIELD: {"type": "knn_vector", "dimension": self.dimension,
                                   "method": {"engine": "faiss", "name": "hnsw", "space_type": "innerproduct"}},
                },
            },
        }
        response = self._request("PUT", f"/{self.index}", body, allowed=(400,))
        # Two indexers racing to create the index: the loser's 400 is success.
        if response.status_code == 400 and "resource_already_exists_exception" not in response.text:
            raise VectorStoreError(400, response.text[:300])

    def upsert(self, docs: list[Doc]) -> None:
        if not docs:
            return
        actions: list[dict] = [{"delete": {"_id": _id}} for _id in self._engine_ids([doc.id for doc in docs])]
        for doc in docs:
            actions += [{"index": {}}, {**doc.fields, ID_FIELD: doc.id, VECTOR_FIELD: list(doc.vector)}]
        self._bulk(actions)

    def delete(self, ids: list[str]) -> None:
        engine_ids = self._engine_ids(ids) if ids else []
        if engine_ids:
            self._bulk([{"delete": {"_id": _id}} for _id in engine_ids])

    def query(self, vector: list[float], k: int = 10, filters: dict | None = None) -> list[Hit]:
        knn: dict = {"vector": list(vector), "k": k}
        if filters:
            knn["filter"] = {"bool": {"filter": [
                {"terms": {name: value}} if isinstance(value, list) else {"term": {name: value}}
                for name, value in filters.items()
            ]}}
        body = {"size": k, "_source": {"excludes": [VECTOR_FIELD]}, "query": {"knn": {VECTOR_FIELD: knn}}}
        hits: dict[str, Hit] = {}
        for hit in self._request("POST", f"/{self.index}/_search", body).json()["hits"]["hits"]:
            fields = dict(hit["_source"])
            doc_id = fields.pop(ID_FIELD)
            hits.setdefault(doc_id, Hit(doc_id, hit["_score"], fields))  # hits come best first
        return list(hits.values())

    def _engine_ids(self, ids: list[str]) -> list[str]:
        body = {"size": MAX_LOOKUP, "_source": False, "query": {"terms": {ID_FIELD: ids}}}
        return [hit["_id"] for hit in self._request("POST", f"/{self.index}/_search", body).json()["hits"]["hits"]]

    def _bulk(self, actions: list[dict]) -> None:
        body = "".join(json.dumps(action, ensure_ascii=False) + "\n" for action in actions).encode()
        result = self._request("POST", f"/{self.index}/_bulk", body, content_type="application/x-ndjson").json()
        if result.get("errors"):
            failed = [outcome for item in result["items"] for outcome in item.values() if outcome.get("error")]
            first = failed[0] if failed else {}
            raise VectorStoreError(first.get("status"), f"{len(failed)} of {len(result['items'])} bulk actions "
                                                        f"failed, first: {json.dumps(first.get('error'))[:300]}")

    def _request(self, method: str, path: str, body: dict | bytes | None = None, *, allowed: tuple = (),
                 content_type: str = "application/json") -> requests.Response:
        """A signed request; non-2xx statuses other than ``allowed`` raise VectorStoreError."""
        data = body if body is None or isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        url = self.endpoint + path
        headers = {"x-amz-content-sha256": hashlib.sha256(data or b"").hexdigest()}
        if data is not None:
            headers["Content-Type"] = content_type
        signed = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(self._frozen_credentials(), "aoss", self.region).add_auth(signed)
        try:
            response = self._session.request(method, url, data=data, headers=dict(signed.headers.items()),
                                             timeout=self.timeout)
        except requests.RequestException as exc:
            raise VectorStoreError(None, f"{method} {path} failed: {exc}") from exc
        if not 200 <= response.status_code < 300 and response.status_code not in allowed:
            raise VectorStoreError(response.status_code, f"{method} {path}: {response.text[:300]}")
        return response

    def _frozen_credentials(self):
        if self._credentials is None:
            import boto3

            self._credentials = boto3.Session().get_credentials()
            if self._credentials is None:
                raise VectorStoreError(None, "no AWS credentials to sign OpenSearch requests with")
        return self._credentials.get_frozen_credentials()  # refreshed when they are about to expire


def _region_of(endpoint: str) -> str | None:
    """The region in an AOSS endpoint (``<id>.<region>.aoss.amazonaws.com``), else the Lambda's."""
    found = REGION_IN_HOST.search(endpoint.split("://", 1)[1].split("/", 1)[0])
    if found:
        return found.group(1)
    from mangaassist import settings

    return settings.runtime().region

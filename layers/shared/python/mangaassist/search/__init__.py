"""Embeddings and the vector store behind product search and recommendations.

Configuration (environment):
- ``VECTOR_STORE``: ``local`` (default: a JSON file under ``LOCAL_DATA_DIR``) or ``opensearch``
  (an OpenSearch Serverless collection at ``OPENSEARCH_ENDPOINT``).
- ``VECTOR_INDEX``: the index name (default ``products``).
- ``EMBEDDINGS_PROVIDER``, ``EMBEDDINGS_DIMENSION``, ``EMBEDDINGS_MODEL_ID``: see embeddings.py;
  the OpenSearch index is created with ``EMBEDDINGS_DIMENSION``.

Filters are ``{field: value}`` (the field equals the value, or a list field contains it) or
``{field: [values]}`` (any of them), combined with AND.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from mangaassist.search.embeddings import (
    DEFAULT_DIMENSION,
    Embedder,
    EmbeddingError,
    LocalEmbedder,
    TitanEmbedder,
    get_embedder,
)

DEFAULT_INDEX = "products"

__all__ = [
    "Doc", "Embedder", "EmbeddingError", "Hit", "LocalEmbedder", "TitanEmbedder", "VectorStore",
    "VectorStoreError", "get_embedder", "get_vector_store",
]


@dataclass(frozen=True)
class Doc:
    id: str
    vector: list[float]
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A match; ``score`` is higher for closer vectors (cosine locally, the engine's score on
    OpenSearch, so compare scores within one store only)."""

    id: str
    score: float
    fields: dict


class VectorStoreError(Exception):
    def __init__(self, status: int | None, message: str):
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message


class VectorStore(Protocol):
    def ensure_index(self) -> None: ...

    def upsert(self, docs: list[Doc]) -> None: ...

    def delete(self, ids: list[str]) -> None: ...

    def query(self, vector: list[float], k: int = 10, filters: dict | None = None) -> list[Hit]: ...


def get_vector_store() -> VectorStore:
    kind = os.environ.get("VECTOR_STORE", "local")
    index = os.environ.get("VECTOR_INDEX", DEFAULT_INDEX)
    if kind == "local":
        from mangaassist.search.local_store import LocalVectorStore

        return LocalVectorStore(index=index)
    if kind == "opensearch":
        from mangaassist.search.opensearch import OpenSearchVectorStore

        return OpenSearchVectorStore(os.environ["OPENSEARCH_ENDPOINT"], index=index,
                                     dimension=int(os.environ.get("EMBEDDINGS_DIMENSION", DEFAULT_DIMENSION)))
    raise ValueError(f"VECTOR_STORE must be local or opensearch, not {kind!r}")

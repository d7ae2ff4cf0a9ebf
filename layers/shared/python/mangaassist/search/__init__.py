"""Embeddings and the vector store behind product search and recommendations.

Configuration: ``settings.search()``: VECTOR_STORE ``opensearch`` (an OpenSearch Serverless
collection at OPENSEARCH_ENDPOINT) or ``local`` (a file under LOCAL_DATA_DIR), VECTOR_INDEX, and
the embeddings' EMBEDDINGS_PROVIDER, EMBEDDINGS_MODEL_ID and EMBEDDINGS_DIMENSION (the OpenSearch
index is created with that dimension).

Filters are ``{field: value}`` (the field equals the value, or a list field contains it) or
``{field: [values]}`` (any of them), combined with AND.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from mangaassist import settings
from mangaassist.search.embeddings import (
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
    config = settings.search()
    if config.vector_store == "local":
        from mangaassist.search.local_store import LocalVectorStore

        assert config.local_data_dir is not None  # settings.search() requires it with this store
        return LocalVectorStore(config.local_data_dir, index=config.vector_index)
    from mangaassist.search.opensearch import OpenSearchVectorStore

    assert config.opensearch_endpoint is not None  # settings.search() requires it with this store
    return OpenSearchVectorStore(config.opensearch_endpoint, index=config.vector_index,
                                 dimension=config.embeddings_dimension)

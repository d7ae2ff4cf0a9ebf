"""Text embeddings: Bedrock Titan Text Embeddings v2, or an offline hashed n-gram embedder.

Configuration: ``settings.search()``: EMBEDDINGS_PROVIDER ``bedrock`` or ``local``,
EMBEDDINGS_DIMENSION (Titan accepts 256, 512 or 1024; it must equal the vector index's) and
EMBEDDINGS_MODEL_ID. Both embedders return unit vectors, so inner product is cosine similarity.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterator
from typing import Protocol

DEFAULT_DIMENSION = 256
TITAN_MODEL_ID = "amazon.titan-embed-text-v2:0"
TITAN_DIMENSIONS = (256, 512, 1024)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


class EmbeddingError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Embedder(Protocol):
    model_id: str
    dimension: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class LocalEmbedder:
    """Signed feature hashing of words and character n-grams into ``dimension`` buckets.

    Features of the NFKC-normalised, casefolded text: each word (``\\w+``, so a Japanese phrase
    without spaces is one "word"), the character 3-grams of each word padded with ``<``/``>``
    (prefixes, suffixes and spelling variants still overlap: "vol" in "volume"), and for text
    in kana or kanji, character pairs (Japanese words are mostly two characters long, so "巨人"
    is found inside "進撃の巨人"). A stable hash (blake2b, not Python's salted ``hash()``) picks
    the bucket and the sign, so vectors are identical across processes and machines.
    """

    model_id = "local.hashed-ngrams-v1"

    def __init__(self, dimension: int = DEFAULT_DIMENSION):
        self.dimension = dimension

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dimension
        for feature in _features(text):
            digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
            vector[digest % self.dimension] += 1.0 if digest >> 63 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector  # no features: the zero vector


def _features(text: str) -> Iterator[str]:
    for word in re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()):
        yield "w:" + word
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            yield "c3:" + padded[i:i + 3]
        if CJK.search(word):
            for i in range(len(word) - 1):
                yield "c2:" + word[i:i + 2]


class TitanEmbedder:
    """Titan Text Embeddings v2 through InvokeModel, one text per call (the model takes one)."""

    def __init__(self, dimension: int = DEFAULT_DIMENSION, model_id: str = TITAN_MODEL_ID, client=None):
        if dimension not in TITAN_DIMENSIONS:
            raise ValueError(f"Titan v2 dimension must be one of {TITAN_DIMENSIONS}, not {dimension}")
        self.dimension = dimension
        self.model_id = model_id
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from mangaassist import clients

            # No fallback model here: let botocore retry throttling with its standard backoff.
            self._client = clients.client("bedrock-runtime")
        return self._client

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def _embed(self, text: str) -> list[float]:
        from botocore.exceptions import BotoCoreError, ClientError

        body = json.dumps({"inputText": text, "dimensions": self.dimension, "normalize": True})
        try:
            response = self.client.invoke_model(modelId=self.model_id, body=body,
                                                contentType="application/json", accept="application/json")
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise EmbeddingError(error.get("Code", "ClientError"), error.get("Message", str(exc))) from exc
        except BotoCoreError as exc:
            raise EmbeddingError(type(exc).__name__, str(exc)) from exc
        return json.loads(response["body"].read())["embedding"]


def get_embedder() -> Embedder:
    from mangaassist import settings

    config = settings.search()
    if config.embeddings_provider == "local":
        return LocalEmbedder(config.embeddings_dimension)
    return TitanEmbedder(config.embeddings_dimension, config.embeddings_model_id)

"""The offline vector store: exact cosine similarity over every document, kept in a JSON file.

One file per index, ``<LOCAL_DATA_DIR>/vectors/<index>.json`` (default data dir ``.local``, which
git ignores and ``make clean`` removes). Writes go to a temporary file renamed over the old one,
so a reader never sees half a file; every store on the same file in a process shares one lock,
and each operation reloads the file when another instance (or process) changed it. Concurrent
writers in different processes can still lose an update: this store is for one local process.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from pathlib import Path

from mangaassist.search import DEFAULT_INDEX, Doc, Hit, VectorStoreError

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


class LocalVectorStore:
    def __init__(self, data_dir: str | os.PathLike, index: str = DEFAULT_INDEX):
        root = Path(data_dir)
        self.path = (root / "vectors" / f"{index}.json").resolve()
        with _locks_guard:
            self._lock = _locks.setdefault(self.path, threading.Lock())
        self._docs: dict[str, dict] = {}
        self._loaded_version: tuple | None = None

    def ensure_index(self) -> None:
        with self._lock:
            if not self.path.exists():
                self._save({})

    def upsert(self, docs: list[Doc]) -> None:
        with self._lock:
            current = dict(self._load())
            current.update({doc.id: {"vector": list(doc.vector), "fields": doc.fields} for doc in docs})
            self._save(current)

    def delete(self, ids: list[str]) -> None:
        gone = set(ids)
        with self._lock:
            self._save({doc_id: doc for doc_id, doc in self._load().items() if doc_id not in gone})

    def query(self, vector: list[float], k: int = 10, filters: dict | None = None) -> list[Hit]:
        with self._lock:
            docs = self._load()
        hits = [
            Hit(doc_id, _cosine(vector, doc["vector"]), doc["fields"])
            for doc_id, doc in docs.items() if matches(doc["fields"], filters or {})
        ]
        hits.sort(key=lambda hit: (-hit.score, hit.id))
        return hits[:k]

    def _load(self) -> dict[str, dict]:
        try:
            version = _version(self.path)
        except FileNotFoundError:
            return {}
        if version != self._loaded_version:
            self._docs = json.loads(self.path.read_text(encoding="utf-8"))["docs"]
            self._loaded_version = version
        return self._docs

    def _save(self, docs: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump({"version": 1, "docs": docs}, file, ensure_ascii=False)
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise
        self._docs, self._loaded_version = docs, _version(self.path)


def _version(path: Path) -> tuple:
    # Each save renames a new file in: its inode changes even when the clock is too coarse.
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def matches(fields: dict, filters: dict) -> bool:
    """Every filter holds: the field equals the value or, for a list field, contains it; a list
    of values means any of them."""
    for name, wanted in filters.items():
        have = fields.get(name)
        have = have if isinstance(have, list) else [have]
        wanted = wanted if isinstance(wanted, list) else [wanted]
        if not any(value in have for value in wanted):
            return False
    return True


def _cosine(a: list[float], b: list[float]) -> float:
    if len(a) != len(b):
        raise VectorStoreError(None, f"vector dimension {len(a)} does not match the index's {len(b)}")
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b)) / norms if norms else 0.0

"""The offline vector store: exact cosine similarity over every document, kept in SQLite.

One database per index, ``<LOCAL_DATA_DIR>/vectors/<index>.sqlite3`` (settings.search(); the local
stack's data folder, ``.local`` by default, which git ignores and ``make clean`` removes), from the
standard library's sqlite3.

- A write is one transaction touching only its documents (the JSON file this replaces was
  rewritten whole, 5-8 MB, under the lock every search waited on).
- Searches read an in-memory copy of the vectors, one per database per process, brought up to
  date before each search with the rows written since (every write stamps its rows with the
  next version; a delete leaves a versioned tombstone), so another process's writes are seen too.
- The database is in WAL mode: a search never waits for a write in another process.

Exact cosine over a few thousand vectors is milliseconds of arithmetic; a real deployment uses
OpenSearch Serverless (opensearch.py). A ``<index>.json`` left by the earlier store is imported
once and renamed ``.json.imported``.
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from array import array
from heapq import nlargest
from operator import mul
from pathlib import Path

from mangaassist.search import DEFAULT_INDEX, Doc, Hit, VectorStoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    vector BLOB,           -- float64s; NULL: deleted (a tombstone other processes catch up with)
    norm REAL,
    fields TEXT            -- JSON
);
CREATE INDEX IF NOT EXISTS docs_by_version ON docs(version);
"""


class _Index:
    """One database file's connection and in-memory copy, shared by every store on it in a process."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.RLock()  # a first write may import a JSON index inside db()
        self.docs: dict[str, tuple[tuple[float, ...], float, dict]] = {}  # id -> (vector, norm, fields)
        self.version = 0
        self._db: sqlite3.Connection | None = None

    def db(self) -> sqlite3.Connection:
        with self.lock:
            return self._db or self._open()

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a process crash, not a power cut
                db.executescript(SCHEMA)
            except sqlite3.DatabaseError as exc:
                raise VectorStoreError(None, f"the local index {self.path} is unreadable: {exc}") from exc
            self._db = db
            self._import_json()
        return self._db

    def _import_json(self) -> None:
        legacy = self.path.with_suffix(".json")
        if not legacy.exists():
            return
        try:
            docs = json.loads(legacy.read_text(encoding="utf-8"))["docs"]
            self.write([Doc(doc_id, doc["vector"], doc["fields"]) for doc_id, doc in docs.items()], [])
        except (ValueError, KeyError, TypeError):
            return  # not ours to fix: left as it is
        os.replace(legacy, legacy.with_name(legacy.name + ".imported"))

    def sync(self) -> None:
        """Bring the in-memory copy up to the database's latest version (caller holds the lock)."""
        rows = self.db().execute("SELECT id, version, vector, norm, fields FROM docs WHERE version > ?",
                                 (self.version,)).fetchall()
        for doc_id, version, blob, norm, fields in rows:
            if blob is None:
                self.docs.pop(doc_id, None)
            else:
                self.docs[doc_id] = (tuple(array("d", blob)), norm, json.loads(fields))
            self.version = max(self.version, version)

    def write(self, upserts: list[Doc], deletes: list[str]) -> None:
        with self.lock:
            db = self.db()
            try:
                db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes too
                version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM docs").fetchone()[0]
                db.executemany(
                    "INSERT INTO docs (id, version, vector, norm, fields) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET version = excluded.version, vector = excluded.vector, "
                    "norm = excluded.norm, fields = excluded.fields",
                    [(doc.id, version, array("d", doc.vector).tobytes(), math.sqrt(sum(x * x for x in doc.vector)),
                      json.dumps(doc.fields, ensure_ascii=False)) for doc in upserts])
                db.executemany("UPDATE docs SET version = ?, vector = NULL, norm = NULL, fields = NULL WHERE id = ?",
                               [(version, doc_id) for doc_id in deletes])
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            self.sync()

    def snapshot(self) -> list[tuple[str, tuple[float, ...], float, dict]]:
        with self.lock:
            self.sync()
            return [(doc_id, vector, norm, fields) for doc_id, (vector, norm, fields) in self.docs.items()]


_indexes: dict[Path, _Index] = {}
_indexes_guard = threading.Lock()


class LocalVectorStore:
    def __init__(self, data_dir: str | os.PathLike, index: str = DEFAULT_INDEX):
        root = Path(data_dir)
        self.path = (root / "vectors" / f"{index}.sqlite3").resolve()
        with _indexes_guard:
            self._index = _indexes.setdefault(self.path, _Index(self.path))

    def ensure_index(self) -> None:
        with self._index.lock:
            self._index.db()

    def upsert(self, docs: list[Doc]) -> None:
        if docs:
            self._index.write(docs, [])

    def delete(self, ids: list[str]) -> None:
        if ids:
            self._index.write([], list(ids))

    def query(self, vector: list[float], k: int = 10, filters: dict | None = None) -> list[Hit]:
        docs = self._index.snapshot()
        if docs and len(docs[0][1]) != len(vector):
            raise VectorStoreError(None, f"vector dimension {len(vector)} does not match the index's {len(docs[0][1])}")
        query_norm = math.sqrt(sum(x * x for x in vector))
        scored = []
        for doc_id, doc_vector, norm, fields in docs:
            if filters and not matches(fields, filters):
                continue
            denominator = query_norm * norm
            scored.append((sum(map(mul, vector, doc_vector)) / denominator if denominator else 0.0, doc_id, fields))
        best = nlargest(k, scored, key=lambda hit: (hit[0], _Reverse(hit[1])))
        return [Hit(doc_id, score, fields) for score, doc_id, fields in best]


class _Reverse(str):
    """Orders ids descending, so ties on score rank ids ascending among the largest."""

    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)


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


def check(root: str | os.PathLike) -> list[str]:
    """For the local stack at start: each index database that SQLite finds damaged is moved aside
    (``.damaged``) so search starts empty instead of failing; what was done, one line each."""
    notes = []
    for path in sorted(Path(root, "vectors").glob("*.sqlite3")):
        try:
            with sqlite3.connect(path) as db:
                verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            db.close()
        except sqlite3.DatabaseError as exc:
            verdict = str(exc)
        if verdict != "ok":
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    os.replace(f"{path}{suffix}", f"{path.with_suffix('.damaged')}{suffix}")
            notes.append(f"vectors/{path.name}: damaged ({verdict}); moved to {path.with_suffix('.damaged').name}, "
                         "the index starts empty (replay the catalog events to rebuild it)")
    return notes

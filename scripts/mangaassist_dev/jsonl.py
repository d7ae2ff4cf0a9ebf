"""Append-only JSON-lines files that survive a crash: the archive and the delivery journal.

Each record is written whole with one write() of its line (the file is line-buffered), so a
process killed at any point leaves at most a torn last line; the operating system keeps what was
written even when the process dies (not a power cut: nothing is fsync'ed per record).

Reading never fails on damage: a line that is not a JSON object is skipped and counted, and a
torn last line is ended with a newline so the next record starts on a line of its own.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Damage:
    """What reading a file skipped: the 1-based numbers of lines that were not JSON objects."""

    path: Path
    lines: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.lines)

    def describe(self) -> str:
        shown = ", ".join(map(str, self.lines[:5])) + (", ..." if len(self.lines) > 5 else "")
        return f"{self.path.name}: skipped {len(self.lines)} damaged line(s) ({shown})"


def read_records(path: Path, damage: Damage) -> Iterator[tuple[int, dict]]:
    """(line number, JSON object) for each line of ``path``, in order; lines that are not JSON
    objects are recorded in ``damage``."""
    if not path.exists():
        return
    with path.open("rb") as file:
        data = file.read()
    if data and not data.endswith(b"\n"):
        with path.open("ab") as file:  # end the torn line: later records must not be glued to it
            file.write(b"\n")
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            yield number, record
        else:
            damage.lines.append(number)


class AppendLog:
    """One JSON object per line, appended; the file is opened on the first record and kept open
    (an open() per record was a hot spot under load)."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None
        self._lock = threading.Lock()

    def append(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", buffering=1, encoding="utf-8")  # line-buffered: one write per record
            self._file.write(line)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

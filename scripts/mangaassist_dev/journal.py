"""The delivery journal: which (event, rule, target) deliveries finished, and which replays started.

The archive is the log of every event the bus accepted. This file, beside it, gets a line when a
delivery finishes (delivered or dead-lettered, after its last attempt) and one when a replay
starts. Together they say what was accepted and not finished, which the local stack delivers
again when it starts: at least once, as EventBridge promises (consumers are idempotent).

A finished delivery counts only if it finished before the emulator state the stack restored was
taken (``trusted_until``): its effects (a table write, a DLQ message) are then in that state.
One that finished later is delivered again, because what it did was lost with the state.

Lines::

    {"finished": {"event_id", "rule", "target", "replay_name", "status", "finished_at", ...}}
    {"replay": {"name", "start", "end", "rules", "events", "deliveries", "started_at"}}
    {"baseline": {"archived_before": <epoch>}}  # the archive's events before this were delivered
                                                 # by a stack that kept no journal
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mangaassist_dev.delivery import replay_rules, replayed
from mangaassist_dev.jsonl import AppendLog, Damage, read_records
from mangaassist_dev.routing import Rule, Target, Wiring

Key = tuple[str, str, str, str]  # event id, rule, target resource, replay name ("" if none)


def delivery_key(event_id: str, rule: str, target: str, replay_name: str | None) -> Key:
    return event_id, rule, target, replay_name or ""


@dataclass
class Contents:
    finished: dict[Key, dict] = field(default_factory=dict)  # the latest record of each delivery
    replays: dict[str, dict] = field(default_factory=dict)
    baseline: float | None = None
    damage: Damage | None = None


@dataclass(frozen=True)
class Pending:
    """A delivery to make again: the event as its target receives it (with replay-name for a replay)."""

    event: dict
    rule: Rule
    target: Target


class Journal:
    def __init__(self, path: Path):
        self.path = path
        self._log = AppendLog(path)

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> Contents:
        contents = Contents(damage=Damage(self.path))
        for number, record in read_records(self.path, contents.damage):
            if isinstance(record.get("finished"), dict):
                done = record["finished"]
                try:
                    key = delivery_key(done["event_id"], done["rule"], done["target"], done.get("replay_name"))
                    float(done["finished_at"])
                except (KeyError, TypeError, ValueError):
                    contents.damage.lines.append(number)  # JSON, but it names no delivery
                    continue
                contents.finished[key] = done
            elif isinstance(record.get("replay"), dict) and isinstance(record["replay"].get("name"), str):
                contents.replays[record["replay"]["name"]] = record["replay"]
            elif isinstance(record.get("baseline"), dict):
                contents.baseline = float(record["baseline"].get("archived_before") or 0)
        return contents

    def finished(self, record: dict) -> None:
        self._log.append({"finished": record})

    def replay_started(self, replay: dict) -> None:
        self._log.append({"replay": replay})

    def baseline(self, archived_before: float) -> None:
        self._log.append({"baseline": {"archived_before": archived_before}})

    def close(self) -> None:
        self._log.close()


def trusted(contents: Contents, until: float) -> dict[Key, dict]:
    """The finished deliveries whose effects are in emulator state taken at ``until``."""
    return {key: done for key, done in contents.finished.items() if float(done["finished_at"]) <= until}


def unfinished(archived: Iterable[tuple[float, dict]], wiring: Wiring, contents: Contents, until: float,
               replay_events=None) -> list[Pending]:
    """What was accepted and not finished by ``until``: every archived event's matching rules'
    targets, and every started replay's, less the deliveries that finished.

    ``replay_events(start, end)`` gives a replay's archived events (Archive.between)."""
    done = trusted(contents, until)
    baseline = contents.baseline or 0.0
    pending: list[Pending] = []
    for archived_at, event in archived:
        if archived_at < baseline:
            continue
        for rule in wiring.matching_rules(event):
            pending += [Pending(event, rule, target) for target in rule.targets
                        if delivery_key(event["id"], rule.name, target.resource, None) not in done]
    for name, replay in contents.replays.items():
        if replay_events is None:
            break
        for original in replay_events(float(replay["start"]), float(replay["end"])):
            event = replayed(original, name)
            for rule in replay_rules(wiring.rules, event, replay.get("rules")):
                pending += [Pending(event, rule, target) for target in rule.targets
                            if delivery_key(event["id"], rule.name, target.resource, name) not in done]
    return pending


def now() -> float:
    return time.time()

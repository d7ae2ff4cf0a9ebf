"""The routing table: rules, their targets and the archive, read from terraform/wiring.json.

Terraform reads the same file with jsondecode(file(...)); the local stack and the operator CLI
read it through this module, so a rule added in one place is a rule everywhere.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mangaassist.events.patterns import compile_pattern

# EventBridge's defaults when a target sets no retry policy (eb-rule-dlq).
DEFAULT_MAX_RETRY_ATTEMPTS = 185
DEFAULT_MAX_EVENT_AGE = 86400


def wiring_path() -> Path:
    env = os.environ.get("MANGAASSIST_WIRING")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "terraform" / "wiring.json"


@dataclass(frozen=True)
class RetryPolicy:
    maximum_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    maximum_event_age_in_seconds: int = DEFAULT_MAX_EVENT_AGE

    def __post_init__(self):
        if not 0 <= self.maximum_retry_attempts <= 185:
            raise ValueError("maximum_retry_attempts must be 0-185")
        if not 60 <= self.maximum_event_age_in_seconds <= 86400:
            raise ValueError("maximum_event_age_in_seconds must be 60-86400")


@dataclass(frozen=True)
class Target:
    id: str
    function: str | None = None  # a Lambda function (folder name under functions/)
    queue: str | None = None  # or an SQS queue from wiring "queues", drained by its function
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    input_transformer: dict | None = None

    @property
    def kind(self) -> str:
        return "lambda" if self.function else "sqs"

    @property
    def resource(self) -> str:
        return self.function or self.queue


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    event_pattern: dict
    targets: tuple[Target, ...]

    @cached_property
    def matches(self) -> Callable[[dict], bool]:
        return compile_pattern(self.event_pattern)


@dataclass(frozen=True)
class ArchiveConfig:
    event_pattern: dict | None
    retention_days: int


@dataclass(frozen=True)
class Wiring:
    functions: dict
    queues: dict
    rules: tuple[Rule, ...]
    archive: ArchiveConfig | None
    sources: dict

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(f"no rule named {name!r}; rules: {', '.join(r.name for r in self.rules)}")

    def matching_rules(self, event: dict) -> list[Rule]:
        return [rule for rule in self.rules if rule.matches(event)]


def _target(target_id: str, spec: dict) -> Target:
    if bool(spec.get("function")) == bool(spec.get("queue")):
        raise ValueError(f"target {target_id!r} needs exactly one of 'function' or 'queue'")
    return Target(
        id=target_id,
        function=spec.get("function"),
        queue=spec.get("queue"),
        retry_policy=RetryPolicy(**spec.get("retry_policy", {})),
        input_transformer=spec.get("input_transformer"),
    )


def parse_wiring(doc: dict) -> Wiring:
    rules = tuple(
        Rule(
            name=name,
            description=spec.get("description", ""),
            event_pattern=spec["event_pattern"],
            targets=tuple(_target(tid, t) for tid, t in sorted(spec.get("targets", {}).items())),
        )
        for name, spec in sorted(doc.get("rules", {}).items())
    )
    archive = doc.get("archive")
    return Wiring(
        functions=doc.get("functions", {}),
        queues=doc.get("queues", {}),
        rules=rules,
        archive=ArchiveConfig(archive.get("event_pattern"), archive.get("retention_days", 0))
        if archive
        else None,
        sources=doc.get("sources", {}),
    )


def load_wiring(path: Path | None = None) -> Wiring:
    return parse_wiring(json.loads((path or wiring_path()).read_text()))

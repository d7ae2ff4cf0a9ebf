"""How every resource name is derived from a deployment's prefix: one rule, no truncation.

``<prefix>-<key>``, where ``key`` is the resource's key in terraform/wiring.json, with these
additions:

- S3 buckets: underscores become dashes and the account id is appended
  (``<prefix>-raw-payloads-<account>``), because bucket names are global and take no ``_``;
- a queue's own DLQ: ``<prefix>-<queue>-dlq``; a rule target's DLQ: ``<prefix>-dlq-<rule>-<target>``;
- the bus and the archive: ``<prefix>-bus``, ``<prefix>-archive``;
- webhook secrets: ``<prefix>/webhooks/<source>``; subscriptions' signing secrets:
  ``<prefix>/subscriptions/<subscription id>``;
- AppConfig: the application is ``<prefix>``, the feature flags' profile ``feature-flags`` (the
  environment is the deployment's: ``dev``, ``prod``; ``local`` offline).

Names are never cut or hashed to fit a service's limit: Terraform refuses, at plan time, a
prefix that would make any derived name too long (variables.tf, ``name_prefix``). Terraform's
locals derive the same names; ``terraform/tests/fixtures/names.json`` holds them for one prefix,
and both ``terraform test`` and pytest compare their derivation with it. After a change to the
wiring, rewrite it with ``python -m mangaassist_dev.naming``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[2] / "terraform" / "tests" / "fixtures" / "names.json"
FIXTURE_PREFIX, FIXTURE_ACCOUNT = "mangaassist-test", "123456789012"


def bucket_name(prefix: str, bucket: str, account: str) -> str:
    return f"{prefix}-{bucket.replace('_', '-')}-{account}"


def target_dlq_name(prefix: str, rule: str, target: str) -> str:
    return f"{prefix}-dlq-{rule}-{target}"


def derive(prefix: str, wiring: dict, account: str) -> dict:
    """Every name a deployment with ``prefix`` has, grouped by kind and keyed by wiring key."""
    return {
        "bus": f"{prefix}-bus",
        "archive": f"{prefix}-archive",
        "functions": {name: f"{prefix}-{name}" for name in wiring.get("functions", {})},
        "tables": {name: f"{prefix}-{name}" for name in wiring.get("tables", {})},
        "buckets": {name: bucket_name(prefix, name, account) for name in wiring.get("buckets", {})},
        "queues": {name: f"{prefix}-{name}" for name in wiring.get("queues", {})},
        "queue_dlqs": {name: f"{prefix}-{name}-dlq" for name in wiring.get("queues", {})},
        "rules": {name: f"{prefix}-{name}" for name in wiring.get("rules", {})},
        "target_dlqs": {f"{rule}/{target}": target_dlq_name(prefix, rule, target)
                        for rule, spec in wiring.get("rules", {}).items() for target in spec.get("targets", {})},
        "webhook_secret_prefix": f"{prefix}/webhooks/",
        "notification_secret_prefix": f"{prefix}/subscriptions/",
        "appconfig": {"application": prefix, "profile": "feature-flags"},
        "webhook_secrets": {name: f"{prefix}/webhooks/{name}" for name in wiring.get("sources", {})},
    }


def fixture() -> dict:
    from mangaassist_dev.routing import wiring_path

    wiring = json.loads(wiring_path().read_text())
    return {"name_prefix": FIXTURE_PREFIX, "account_id": FIXTURE_ACCOUNT,
            "names": derive(FIXTURE_PREFIX, wiring, FIXTURE_ACCOUNT)}


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(fixture(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {FIXTURE}", file=sys.stderr)

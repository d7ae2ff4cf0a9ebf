"""The local stack gives the functions the settings Terraform gives them on AWS (terraform/main.tf's
``environment``), so a function that reads one works offline too."""

from __future__ import annotations

import json
import re
from pathlib import Path

from embedded.stack import Settings, Stack

ROOT = Path(__file__).resolve().parents[2]


def test_every_queue_has_its_url_and_its_dlq_url_as_terraform_passes_them(tmp_path):
    stack = Stack(Settings(data_dir=tmp_path))
    env = stack._environment("http://127.0.0.1:4566")
    wiring = json.loads((ROOT / "terraform" / "wiring.json").read_text())
    for queue in wiring["queues"]:
        assert env[f"{queue.upper()}_QUEUE_URL"] == f"http://127.0.0.1:4566/123456789012/{stack.names['queues'][queue]}"
        assert (
            env[f"{queue.upper()}_DLQ_URL"] == f"http://127.0.0.1:4566/123456789012/{stack.names['queue_dlqs'][queue]}"
        )


def test_the_stack_sets_every_setting_terraform_sets(tmp_path):
    """The names in main.tf's function environment, fixed and per table/bucket/queue, are all set
    locally (the JWT ones and WEBSOCKET_CALLBACK_URL once the gateway listens: not checked here)."""
    main = (ROOT / "terraform" / "main.tf").read_text()
    block = main[main.index("environment = merge(") : main.index("functions = {")]
    fixed = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+)\s+=", block, re.MULTILINE))
    per_kind = set(re.findall(r'"\$\{upper\(\w\)\}_([A-Z_]+)"', block))
    assert per_kind == {"TABLE", "BUCKET", "QUEUE_URL", "DLQ_URL"}
    wiring = json.loads((ROOT / "terraform" / "wiring.json").read_text())
    expected = (
        fixed
        | {f"{t.upper()}_TABLE" for t in wiring["tables"]}
        | {f"{b.upper()}_BUCKET" for b in wiring["buckets"]}
        | {f"{q.upper()}_{kind}" for q in wiring["queues"] for kind in ("QUEUE_URL", "DLQ_URL")}
    )
    later = {"JWT_ISSUER", "JWT_AUDIENCE", "JWT_JWKS_URL", "WEBSOCKET_CALLBACK_URL"}  # _start_gateway sets them
    later.add("OPENSEARCH_ENDPOINT")  # VECTOR_STORE=local: the local index needs no endpoint
    env = Stack(Settings(data_dir=tmp_path))._environment("http://127.0.0.1:4566")
    assert sorted(expected - later - set(env)) == []

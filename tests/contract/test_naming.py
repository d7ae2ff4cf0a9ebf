"""One naming rule: the local stack and Terraform derive the same names.

``terraform/tests/fixtures/names.json`` holds every name for one prefix; this test derives them
with mangaassist_dev.naming (what the local stack uses) and ``terraform test`` plans the root
module with the same prefix and compares each resource's name with the same file.
"""
from __future__ import annotations

import json

from mangaassist_dev import naming
from mangaassist_dev.routing import wiring_path

# Each service's longest name: https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html
LIMITS = {"functions": 64, "tables": 255, "buckets": 63, "queues": 80, "queue_dlqs": 80, "target_dlqs": 80,
          "rules": 64}


def test_the_fixture_is_what_the_naming_rule_derives():
    stored = json.loads(naming.FIXTURE.read_text())
    assert stored == naming.fixture(), "the wiring changed: rewrite the fixture with python -m mangaassist_dev.naming"


def test_names_are_distinct_per_service_and_fit_their_limits():
    names = naming.derive("mangaassist-test", json.loads(wiring_path().read_text()), "123456789012")
    queues = [*names["queues"].values(), *names["queue_dlqs"].values(), *names["target_dlqs"].values()]
    assert len(set(queues)) == len(queues)
    for kind, limit in LIMITS.items():
        for name in names[kind].values():
            assert len(name) <= limit, (kind, name)
    assert all(name == name.lower() and "_" not in name for name in names["buckets"].values())


def test_nothing_is_cut_or_hashed():
    wiring = {"rules": {"r" * 40: {"targets": {"t" * 40: {}}}}}
    assert naming.derive("p", wiring, "1")["target_dlqs"] == {f"{'r' * 40}/{'t' * 40}": f"p-dlq-{'r' * 40}-{'t' * 40}"}

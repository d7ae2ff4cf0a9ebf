"""What is tested is what is deployed: every function's own lock pins the versions the dev lock
(where the tests get their packages) pins, and every lock carries hashes and no index."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", re.M)
LOCKS = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt", *sorted(ROOT.glob("functions/*/requirements.txt"))]


def pins(path: Path) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(path.read_text())}


@pytest.mark.parametrize("lock", sorted(ROOT.glob("functions/*/requirements.txt")), ids=lambda p: p.parent.name)
def test_a_function_lock_pins_what_the_tests_run(lock):
    dev = pins(ROOT / "requirements-dev.txt")
    assert {name: (version, dev.get(name)) for name, version in pins(lock).items() if dev.get(name) != version} == {}


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_lock_is_hashed_and_names_no_index(lock):
    text = lock.read_text()
    assert pins(lock) and text.count("--hash=sha256:") >= len(pins(lock))
    assert not re.search(r"^(-i|--index-url|--extra-index-url|-f|--find-links)", text, re.M)
